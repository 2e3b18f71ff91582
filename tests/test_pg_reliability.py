"""The collector's promises on PostgreSQL under the harshest cases the SQLite store is tested with:
SIGKILL under load, and hostile bodies."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
import time

import pytest
import requests
from conftest import SECRET, pg_query
from test_pg_collector import _start, _wait_healthy
from test_reliability import NASTY

import tavus_analytics as ta
from stress import hostile
from tavus_analytics import Settings, create_app
from tavus_analytics.store.postgres import PgStore
from tavus_analytics.testing import free_port


def test_sigkill_under_load_loses_nothing_acknowledged(pg_url):
    """Three senders post distinct callbacks while the collector is killed with SIGKILL three
    times (and started again): every callback answered 200 is stored, each once."""
    port = free_port()
    acked: set[bytes] = set()
    lock = threading.Lock()
    stop = threading.Event()

    def sender(k: int) -> None:
        n = 0
        with requests.Session() as s:
            while not stop.is_set():
                body = json.dumps(
                    {"event_type": "system.shutdown", "conversation_id": f"s{k}-{n}", "n": n}
                ).encode()
                n += 1
                try:
                    r = s.post(
                        f"http://127.0.0.1:{port}/webhook?token={SECRET}", data=body, timeout=5
                    )
                except requests.RequestException:
                    time.sleep(0.02)  # killed mid-request, or not up yet: no answer, no promise
                    continue
                if r.status_code == 200:
                    with lock:
                        acked.add(body)

    proc = _start(pg_url, port)
    senders = [threading.Thread(target=sender, args=(k,)) for k in range(3)]
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", proc)
        for t in senders:
            t.start()
        for _ in range(3):
            time.sleep(0.4)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            proc.stdout.close()
            proc = _start(pg_url, port)
            _wait_healthy(f"http://127.0.0.1:{port}", proc)
        time.sleep(0.3)
    finally:
        stop.set()
        for t in senders:
            t.join(10)
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
        proc.stdout.close()
    stored = [row[0].encode() for row in pg_query(pg_url, "SELECT body FROM callbacks")]
    assert len(acked) > 50, len(acked)
    assert acked <= set(stored)  # nothing acknowledged is lost
    assert len(stored) == len(set(stored))  # nothing stored twice


@pytest.mark.parametrize("body", NASTY, ids=range(len(NASTY)))
def test_nasty_bodies_never_500_and_never_stored_altered(pg_url, body):
    settings = Settings(db=pg_url, secret=SECRET, max_body=hostile.FUZZ_MAX_BODY)
    with PgStore(pg_url) as store:
        client = create_app(settings, store=store).test_client()
        with hostile.default_recursion_limit():
            r = client.post(f"/webhook?token={SECRET}", data=body, content_type="application/json")
    assert r.status_code in (200, 400, 413), r.get_data()[:300]
    answer = r.get_json()
    digest = hashlib.sha256(body).hexdigest()
    rows = pg_query(pg_url, "SELECT id, body FROM callbacks WHERE sha256 = %s", digest)
    if r.status_code == 200:
        assert rows == [(answer["id"], body.decode())]  # byte for byte
    else:
        assert rows == [] and answer["ok"] is False and answer["error"]
        assert pg_query(pg_url, "SELECT status FROM rejected") == [(r.status_code,)]
    ds = ta.load(pg_url)  # whatever was stored loads
    assert len(ds.events) == len(rows)
    ds.conversations, ds.turns, ds.problems  # noqa: B018 - every table builds
