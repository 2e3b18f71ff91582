"""The real WSGI server on a loopback port, a real HTTP client, settings and the secret."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from conftest import SECRET, SHUTDOWN_EXAMPLE, banner_of, port_of

from tavus_analytics import Settings
from tavus_analytics.cli import cli
from tavus_analytics.config import settings_help
from tavus_analytics.server import SERVERS, banner, resolve_secret, start_in_thread, stop
from tavus_analytics.testing import clean_environment, free_port

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def live(db_path):
    """A waitress server with the collector on a free 127.0.0.1 port, in a thread."""
    server, base = start_in_thread(Settings(db=str(db_path), secret=SECRET, max_body=200_000))
    yield base
    stop(server)


def test_real_server_stores_what_a_real_client_posts(live, db_path):
    with requests.Session() as s:
        answers = [
            s.post(f"{live}/webhook?token={SECRET}", data=json.dumps({**SHUTDOWN_EXAMPLE, "n": i}))
            for i in range(20)
        ]
        again = s.post(
            f"{live}/webhook?token={SECRET}", data=json.dumps({**SHUTDOWN_EXAMPLE, "n": 0})
        )
        health = s.get(f"{live}/healthz").json()
    assert [a.status_code for a in answers] == [200] * 20
    assert again.json() == {
        "ok": True,
        "status": "ok",
        "id": answers[0].json()["id"],
        "duplicate": True,
    }
    assert health == {"ok": True, "status": "ok", "callbacks": 20}
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT count(DISTINCT sha256) FROM callbacks").fetchone() == (20,)
    conn.close()


def test_real_server_refuses_a_chunked_body_over_the_limit(live, db_path):
    def chunks():
        yield b'{"x": "'
        for _ in range(30):
            yield b"a" * 10_000
        yield b'"}'

    r = requests.post(f"{live}/webhook?token={SECRET}", data=chunks())
    assert r.status_code == 413
    assert r.json()["error"].startswith("body is 300009 bytes, over the limit of 200000 bytes")
    r = requests.post(f"{live}/webhook?token={SECRET}", data=iter([b'{"small"', b": 1}"]))
    assert r.status_code == 200
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT status, size, truncated FROM rejected").fetchall() == [
        (413, 300009, 1)
    ]
    conn.close()


def test_real_server_wrong_token(live):
    r = requests.post(f"{live}/webhook?token=nope", data=json.dumps(SHUTDOWN_EXAMPLE))
    assert r.status_code == 401
    assert r.headers["Content-Type"] == "application/json"


def test_python_collector_py_serves_and_prints_the_callback_url(tmp_path):
    db = tmp_path / "sub.db"
    port = free_port()
    env = clean_environment()
    proc = subprocess.Popen(
        [sys.executable, "collector.py", "--db", str(db), "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Status page"):
                break
        out = "".join(lines)
        secret = (tmp_path / "sub.db.secret").read_text().strip()
        assert f"callback URL:  http://127.0.0.1:{port}/webhook?token={secret}" in out
        assert f"ngrok http {port}" in out
        # Sent as soon as the banner shows, once, no retry: the server answers already.
        r = requests.post(
            f"http://127.0.0.1:{port}/webhook?token={secret}", data=json.dumps(SHUTDOWN_EXAMPLE)
        )
        assert r.status_code == 200 and r.json()["id"] == 1
    finally:
        proc.terminate()  # granian stops its worker too
        proc.wait(timeout=20)
        proc.stdout.close()
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT event_type FROM callbacks").fetchall() == [("system.shutdown",)]
    conn.close()


def test_collector_help_lists_the_options():
    out = subprocess.run(
        [sys.executable, "collector.py", "--help"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    for flag in ("--db", "--host", "--port", "--secret", "--no-auth", "--max-body"):
        assert flag in out
    assert "TAVUS_WEBHOOK_SECRET" in out and "TAVUS_ANALYTICS_DB" in out


# -- the secret ---------------------------------------------------------------------------------
def test_secret_is_generated_once_owner_only_and_reused(tmp_path):
    settings = Settings(db=str(tmp_path / "x.db"))
    first, source = resolve_secret(settings)
    assert source == "generated" and len(first.secret) >= 32
    path = tmp_path / "x.db.secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again, source = resolve_secret(settings)
    assert (again.secret, source) == (first.secret, "file")


def test_given_secret_and_no_auth_write_no_file(tmp_path):
    given, source = resolve_secret(Settings(db=str(tmp_path / "x.db"), secret="mine"))
    assert (given.secret, source) == ("mine", "given")
    _, source = resolve_secret(Settings(db=str(tmp_path / "x.db"), no_auth=True))
    assert source == "none"
    assert not (tmp_path / "x.db.secret").exists()


def test_banner_no_auth_warns_loudly():
    text = banner(Settings(no_auth=True), "none")
    assert "WARNING: token checking is OFF" in text
    assert "callback URL:  http://127.0.0.1:5000/webhook\n" in text


# -- settings -----------------------------------------------------------------------------------
def test_every_setting_is_documented():
    for name, env, help_text in settings_help():
        assert help_text.strip(), name
        assert env and env.startswith(("TAVUS_ANALYTICS_", "TAVUS_WEBHOOK_")), name


def test_every_setting_is_a_serve_option_made_from_its_declaration():
    import dataclasses

    from tavus_analytics.cli import cli

    params = {p.name: p for p in cli.commands["serve"].params}
    for f in dataclasses.fields(Settings):
        option = params[f.name]  # every setting, under its own name
        assert option.opts == ["--" + f.name.replace("_", "-")]
        assert option.help.startswith(f.metadata["help"]), f.name
        assert f"env {f.metadata['env']}" in option.help, f.name
        assert option.default is None, f.name  # so that the environment applies
    assert params["no_auth"].is_flag
    assert (
        list(params["server"].type.choices) == list(SERVERS) == ["granian", "waitress", "gunicorn"]
    )
    assert Settings().server == SERVERS[0]  # the default
    assert params["workers"].type.min == 1
    # and the --db of every other command is the same option
    assert cli.commands["stats"].params[0].help == params["db"].help


def test_settings_from_env_and_overrides():
    env = {
        "TAVUS_ANALYTICS_DB": "x.db",
        "TAVUS_ANALYTICS_PORT": "8080",
        "TAVUS_WEBHOOK_SECRET": "s",
    }
    s = Settings.from_env(env, port=9000)
    assert (s.db, s.port, s.secret, s.no_auth) == ("x.db", 9000, "s", False)
    assert Settings.from_env({"TAVUS_ANALYTICS_NO_AUTH": "yes"}).no_auth is True
    with pytest.raises(ValueError, match="TAVUS_ANALYTICS_PORT='eighty' is not a whole number"):
        Settings.from_env({"TAVUS_ANALYTICS_PORT": "eighty"})


def test_cli_reports_bad_environment_without_traceback(monkeypatch):
    monkeypatch.setenv("TAVUS_ANALYTICS_PORT", "eighty")
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code == 2
    assert "TAVUS_ANALYTICS_PORT='eighty' is not a whole number" in result.output
    assert "Traceback" not in result.output


def test_head_and_get_on_the_webhook_keep_the_connection_usable(live):
    with requests.Session() as s:
        head = s.head(f"{live}/webhook")
        assert head.status_code == 405 and head.headers["Allow"] == "POST"
        assert head.content == b""
        got = s.get(f"{live}/webhook")
        assert got.status_code == 405 and got.json()["error"] == "use POST to send a callback"
        after = s.post(f"{live}/webhook?token={SECRET}", data=json.dumps(SHUTDOWN_EXAMPLE))
        assert after.status_code == 200


def _start_collector(tmp_path, *args):
    db = tmp_path / "multi.db"
    port = free_port()
    env = clean_environment()
    proc = subprocess.Popen(
        [sys.executable, "collector.py", "--db", str(db), "--port", str(port)]
        + ["--secret", SECRET, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    for line in proc.stdout:
        if line.startswith("Status page"):
            break
    url = f"http://127.0.0.1:{port}"
    _wait_healthy(url)
    return proc, url, db


def _wait_healthy(url):
    for _ in range(200):  # gunicorn's workers start after its banner
        try:
            if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    pytest.fail(f"{url} did not become healthy")


def _post_twice(url):
    bodies = [json.dumps({**SHUTDOWN_EXAMPLE, "n": i}) for i in range(60)]
    with requests.Session() as s:
        first = [s.post(f"{url}/webhook?token={SECRET}", data=b).json() for b in bodies]
        again = [s.post(f"{url}/webhook?token={SECRET}", data=b).json() for b in bodies]
    assert all(a["duplicate"] is False for a in first)
    assert [a["id"] for a in again] == [a["id"] for a in first]
    assert all(a["duplicate"] is True for a in again)


def _stored(db):
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT count(*) FROM callbacks").fetchone()[0]
    finally:
        conn.close()


@pytest.mark.skipif(sys.platform == "win32", reason="gunicorn does not run on Windows")
def test_two_gunicorn_workers_store_everything_once(tmp_path):
    import signal

    proc, url, db = _start_collector(tmp_path, "--server", "gunicorn", "--workers", "2")
    try:
        _post_twice(url)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
        proc.stdout.close()
    assert _stored(db) == 60


def test_granian_stores_everything_once_and_dies_with_its_parent(tmp_path):
    import signal

    proc, url, db = _start_collector(tmp_path, "--server", "granian", "--threads", "4")
    try:
        _post_twice(url)
        os.kill(proc.pid, signal.SIGKILL)  # the supervisor only: its worker must follow
        proc.wait(timeout=10)
        for _ in range(100):
            try:
                requests.get(f"{url}/healthz", timeout=1)
            except requests.ConnectionError:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the granian worker kept serving after its parent was killed")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.stdout.close()
    assert _stored(db) == 60


def test_waitress_refuses_several_workers():
    args = ["serve", "--server", "waitress", "--workers", "2", "--secret", "s"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert "waitress runs one process: for --workers above 1 use --server granian" in result.output


@pytest.mark.parametrize("server", ["waitress", "granian", "gunicorn"])
def test_a_port_in_use_is_a_one_line_error(db_path, server):
    if server == "gunicorn" and sys.platform == "win32":
        pytest.skip("gunicorn does not run on Windows")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        args = ["serve", "--db", str(db_path), "--port", str(port), "--secret", "s"]
        result = CliRunner().invoke(cli, [*args, "--server", server])
    assert result.exit_code == 1
    assert f"Error: cannot listen on 127.0.0.1:{port}: Address already in use" in result.output
    assert "Traceback" not in result.output


def _post_raw(port: int, body: bytes) -> bytes:
    """One POST on a new connection, no retry: a refused connection is an error here."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(
            b"POST /webhook?token=%s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n%s" % (SECRET.encode(), len(body), body)
        )
        answer = b""
        while data := s.recv(65536):
            answer += data
    return answer


@pytest.mark.parametrize(
    "args",
    [(), ("--server", "granian", "--workers", "2"), ("--server", "waitress")],
    ids=["default", "granian-2-workers", "waitress"],
)
def test_a_callback_sent_as_soon_as_the_banner_shows_is_answered(tmp_path, args):
    """The banner says "listening" only once the port answers: granian's supervisor prints it
    after its worker has answered a probe, not when it starts the worker. ``--port 0`` picks a
    free port (granian's workers each bind it: the supervisor chooses it first)."""
    import signal

    env = clean_environment()
    proc = subprocess.Popen(
        [sys.executable, "collector.py", "--db", str(tmp_path / "b.db"), "--port", "0"]
        + ["--secret", SECRET, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        out = banner_of(proc)
        port = port_of(out)
        answer = _post_raw(port, json.dumps(SHUTDOWN_EXAMPLE).encode())
        assert answer.startswith(b"HTTP/1.1 200 OK"), answer[:200]
        assert json.loads(answer.partition(b"\r\n\r\n")[2])["id"] == 1
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
        proc.stdout.close()
    assert _stored(tmp_path / "b.db") == 1


def test_the_default_falls_back_to_waitress_where_granian_cannot_run(tmp_path):
    """Where granian has no wheel (here: a stand-in whose import fails), the default server is
    waitress, said in one line; a chosen --server granian is an error naming what to install."""
    import signal

    standin = tmp_path / "standin"
    standin.mkdir()
    (standin / "granian.py").write_text('raise ImportError("no wheel for this platform")\n')
    env = clean_environment(PYTHONPATH=os.pathsep.join([str(standin), str(ROOT)]))
    base = [sys.executable, "collector.py", "--db", str(tmp_path / "f.db"), "--secret", SECRET]
    proc = subprocess.Popen(
        [*base, "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        out = banner_of(proc)
        port = port_of(out)
        assert _post_raw(port, b'{"replica_id": "r1", "status": "ready"}').startswith(
            b"HTTP/1.1 200 OK"
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    notice = [line for line in err.splitlines() if "granian" in line]
    assert len(notice) == 1 and notice[0].endswith(
        f"WARNING granian is not installed ({platform.system()} on {platform.machine()}: it has "
        "no wheel for every platform): serving with waitress, the pure-Python server"
    ), err
    assert "Traceback" not in err
    for chosen, extra_env in (
        (["--server", "granian"], {}),
        ([], {"TAVUS_ANALYTICS_SERVER": "granian"}),
    ):
        done = subprocess.run(
            [*base, "--port", str(free_port()), *chosen],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**env, **extra_env},
            timeout=60,
        )
        assert done.returncode == 2, done.stderr
        assert done.stderr.strip().splitlines() == [
            "Error: --server granian needs the optional package granian: "
            "pip install 'tavus-analytics[granian]'"
        ]


def test_granian_says_it_closes_a_connection_whose_body_was_not_read(tmp_path):
    """A response given before the request's body was read (here a 401: the token is checked
    first) says ``Connection: close``, which granian then does: a client does not send its next
    request on a connection that is going away. A body read to its end keeps the connection."""
    import signal

    proc, url, _ = _start_collector(tmp_path, "--server", "granian")
    port = int(url.rsplit(":", 1)[1])
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(
                b"POST /webhook?token=wrong HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
                + b"{" * 10
            )
            answer = b""
            while data := s.recv(65536):  # the server closes: the loop ends
                answer += data
        head = answer.partition(b"\r\n\r\n")[0].lower()
        assert head.startswith(b"http/1.1 401") and b"\r\nconnection: close" in head
        with requests.Session() as session:
            ok = [
                session.post(f"{url}/webhook?token={SECRET}", data=json.dumps({"n": i}))
                for i in range(3)
            ]
        assert [r.status_code for r in ok] == [200] * 3
        assert all("connection" not in r.headers for r in ok)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
        proc.stdout.close()
