"""The collector on PostgreSQL, over real HTTP: one process, three processes on one database, and
a server that goes away and comes back."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests
from conftest import SECRET, SHUTDOWN_EXAMPLE, pg_query

from tavus_analytics import Settings
from tavus_analytics.errors import TavusAnalyticsError
from tavus_analytics.server import banner, resolve_secret, start_in_thread, stop
from tavus_analytics.testing import clean_environment
from tests import pgserver

ROOT = Path(__file__).resolve().parent.parent


def bodies(n: int, tag: str = "") -> list[bytes]:
    return [
        json.dumps({**SHUTDOWN_EXAMPLE, "conversation_id": f"c{tag}{i}", "n": i}).encode()
        for i in range(n)
    ]


@pytest.fixture
def live_pg(pg_url):
    server, base = start_in_thread(Settings(db=pg_url, secret=SECRET, max_body=200_000))
    yield base
    stop(server)


def test_one_collector_stores_refuses_and_dedupes(live_pg, pg_url):
    hook = f"{live_pg}/webhook?token={SECRET}"
    with requests.Session() as s:
        first = s.post(hook, data=bodies(1)[0], headers={"User-Agent": "tavus/1"})
        again = s.post(hook, data=bodies(1)[0])
        bad = s.post(hook, data=b"{not json")
        large = s.post(hook, data=b"x" * 300_000)
        denied = s.post(f"{live_pg}/webhook?token=wrong", data=bodies(1, "x")[0])
        health = s.get(f"{live_pg}/healthz")
    assert first.status_code == 200 and first.json()["duplicate"] is False
    assert again.json() == {**first.json(), "duplicate": True}
    assert bad.status_code == 400 and "not valid JSON" in bad.json()["error"]
    assert large.status_code == 413
    assert denied.status_code == 401
    assert health.json() == {"ok": True, "status": "ok", "callbacks": 1}
    [(body, ua, addr)] = pg_query(pg_url, "SELECT body, user_agent, remote_addr FROM callbacks")
    assert body.encode() == bodies(1)[0] and ua == "tavus/1" and addr == "127.0.0.1"
    assert pg_query(pg_url, "SELECT status, truncated FROM rejected ORDER BY id") == [
        (400, 0),
        (413, 1),
    ]


def test_postgres_needs_an_explicit_secret_and_never_prints_the_password(pg_url):
    with pytest.raises(TavusAnalyticsError, match="give the secret explicitly"):
        resolve_secret(Settings(db=pg_url))
    password = pg_url.split("@")[0].rsplit(":", 1)[1]
    text = banner(Settings(db=pg_url, secret=SECRET), "given", 5000)
    assert "postgresql://tavus_test:***@127.0.0.1" in text and password not in text


def _start(url: str, port: int, *args: str, **extra_env: str) -> subprocess.Popen:
    """``python collector.py`` on ``url`` and ``port`` (plus ``args``), TAVUS_ variables
    cleared but ``extra_env``."""
    env = clean_environment(**extra_env)
    return subprocess.Popen(
        [sys.executable, "collector.py", "--db", url, "--port", str(port), "--secret", SECRET]
        + list(args),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )


def _wait_healthy(base: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"collector exited: {proc.stdout.read()}")
        try:
            if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    pytest.fail(f"{base} did not become healthy")


def test_three_collectors_on_one_database_lose_nothing_and_store_nothing_twice(pg_url):
    from tavus_analytics.testing import free_port

    ports = [free_port() for _ in range(3)]
    procs = [_start(pg_url, p) for p in ports]
    sent = bodies(150)
    answers: dict[int, list[dict]] = {}
    try:
        bases = [f"http://127.0.0.1:{p}" for p in ports]
        for base, proc in zip(bases, procs, strict=True):
            _wait_healthy(base, proc)

        def send(k: int, base: str) -> None:
            # each collector gets every body, in its own order, all three at once
            order = sent[k::] + sent[:k] if k % 2 == 0 else list(reversed(sent))
            with requests.Session() as s:
                got = [s.post(f"{base}/webhook?token={SECRET}", data=b, timeout=30) for b in order]
            answers[k] = [
                dict(r.json(), body=b, code=r.status_code) for r, b in zip(got, order, strict=True)
            ]

        threads = [threading.Thread(target=send, args=(k, b)) for k, b in enumerate(bases)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=20)
            proc.stdout.close()
    everything = [a for k in range(3) for a in answers[k]]
    assert len(everything) == 3 * len(sent)
    assert all(a["code"] == 200 for a in everything)
    rows = dict(pg_query(pg_url, "SELECT body, id FROM callbacks"))
    assert len(rows) == len(sent)  # every body once
    for body in sent:
        mine = [a for a in everything if a["body"] == body]
        assert {a["id"] for a in mine} == {rows[body.decode()]}  # all three name the one row
        assert sorted(a["duplicate"] for a in mine) == [False, True, True]


@pytest.fixture
def own_pg():
    """A PostgreSQL server of this test's own, which it may stop and start again."""
    if pgserver.bindir() is None:
        pytest.skip("PostgreSQL is not installed")
    folder = tempfile.mkdtemp(prefix="tavus-pg-")
    try:
        yield folder, pgserver.start(folder)
    finally:
        pgserver.stop(folder)
        shutil.rmtree(folder, ignore_errors=True)


def test_server_down_answers_503_and_recovers_when_it_returns(own_pg):
    from tavus_analytics.testing import free_port

    folder, url = own_pg
    port = free_port()
    proc = _start(url, port, TAVUS_ANALYTICS_BUSY_TIMEOUT_MS="500")
    base = f"http://127.0.0.1:{port}"
    hook = f"{base}/webhook?token={SECRET}"
    acked = []
    try:
        _wait_healthy(base, proc)
        with requests.Session() as s:
            for b in bodies(5, "a"):
                assert s.post(hook, data=b).status_code == 200
                acked.append(b)
            pgserver.stop(folder)
            down = s.post(hook, data=bodies(1, "b")[0])
            health = s.get(f"{base}/healthz")
            pgserver.resume(folder)
            deadline = time.monotonic() + 30
            while (back := s.post(hook, data=bodies(1, "b")[0])).status_code != 200:
                assert time.monotonic() < deadline, back.text
                time.sleep(0.2)
            acked.append(bodies(1, "b")[0])
            for b in bodies(5, "c"):
                assert s.post(hook, data=b).status_code == 200
                acked.append(b)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
        log = proc.stdout.read()
        proc.stdout.close()
    assert down.status_code == 503 and down.headers["Retry-After"] == "1"
    assert down.json() == {"ok": False, "status": 503, "error": "database unavailable, retry later"}
    assert health.status_code == 503
    stored = {r[0].encode() for r in pg_query(url, "SELECT body FROM callbacks")}
    assert stored == set(acked)
    assert "cannot be reached right now" in log  # the collector said why it answered 503
    assert url.split("@")[0].rsplit(":", 1)[1] not in log  # and never printed the password


def test_after_a_restart_broken_pooled_connections_are_replaced_at_once(own_pg):
    from contextlib import ExitStack

    from tavus_analytics.store.postgres import PgStore

    folder, url = own_pg
    store = PgStore(url, pool_size=4)
    try:
        store.migrate()
        with ExitStack() as stack:  # four connections in the pool
            held = [stack.enter_context(store._get_pool().connection()) for _ in range(4)]
            assert len({id(c) for c in held}) == 4
        pgserver.stop(folder)
        pgserver.resume(folder)
        # every pooled connection is broken now; each write still succeeds on its first call
        results = [store.insert_callback(b) for b in bodies(6, "r")]
    finally:
        store.close()
    assert [dup for _, dup in results] == [False] * 6
    assert pg_query(url, "SELECT count(*) FROM callbacks") == [(6,)]


@pytest.mark.skipif(sys.platform == "win32", reason="gunicorn does not run on Windows")
@pytest.mark.parametrize("server", ["gunicorn", "granian"])
def test_multi_process_servers_on_postgresql_store_everything_once(pg_url, server):
    from tavus_analytics.testing import free_port

    port = free_port()
    proc = _start(pg_url, port, "--server", server, "--workers", "2")
    base = f"http://127.0.0.1:{port}"
    sent = bodies(40, server)
    try:
        _wait_healthy(base, proc)
        with requests.Session() as s:
            first = [s.post(f"{base}/webhook?token={SECRET}", data=b).json() for b in sent]
            again = [s.post(f"{base}/webhook?token={SECRET}", data=b).json() for b in sent]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
        proc.stdout.close()
    assert [a["duplicate"] for a in first] == [False] * 40
    assert [a["id"] for a in again] == [a["id"] for a in first]
    assert all(a["duplicate"] for a in again)
    assert pg_query(pg_url, "SELECT count(*) FROM callbacks") == [(40,)]
