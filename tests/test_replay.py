"""`tavus-analytics replay`: stored bodies POSTed byte for byte, selection, rate, errors."""

from __future__ import annotations

import hashlib
import json
import socket
import sqlite3
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import SHUTDOWN_EXAMPLE, pg_query, run, serving

from tavus_analytics import Settings, Store, open_store
from tavus_analytics.replay import ReplayError, replay
from tavus_analytics.server import start_in_thread, stop
from tavus_analytics.store import is_postgres

TARGET_SECRET = "staging-token-xyz"


def bodies():
    """Four callbacks with bytes a re-serialisation would change."""
    return [
        (json.dumps(SHUTDOWN_EXAMPLE, indent=4).encode(), "2025-07-01T10:00:00.000Z"),
        (
            json.dumps(
                {**SHUTDOWN_EXAMPLE, "conversation_id": "c2", "event_type": "system.replica_joined"}
            ).encode(),
            "2025-07-02T10:00:00.000Z",
        ),
        (
            '{"conversation_id":"c2","event_type":"application.transcription_ready",'
            '"properties":{"transcript":[{"role":"user","content":"Grüß dich"}]},'
            '"timestamp":"2025-07-02T10:05:00Z"}'.encode(),
            "2025-07-02T10:05:01.000Z",
        ),
        (b'{"video_id": "v1",  "status": "ready"}', "2025-07-03T00:00:00.000Z"),
    ]


@pytest.fixture
def source(db_path):
    with Store(db_path) as store:
        store.insert_batch(bodies())
    return db_path


@pytest.fixture(params=["sqlite", "postgresql"])
def any_source(request, db_path):
    """The same callbacks in a SQLite file, or in a PostgreSQL database (a URL)."""
    db = str(db_path) if request.param == "sqlite" else request.getfixturevalue("pg_url")
    with open_store(db) as store:
        store.insert_batch(bodies())
    return db


@pytest.fixture
def collector(tmp_path):
    """A real collector on a free loopback port, writing its own database."""
    target_db = tmp_path / "staging.db"
    server, base = start_in_thread(Settings(db=str(target_db), secret=TARGET_SECRET, threads=2))
    yield f"{base}/webhook?token={TARGET_SECRET}", target_db
    stop(server)


class _Capture(BaseHTTPRequestHandler):
    """Keeps each body and answers with the next status of the server's script."""

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.seen.append((body, self.headers["Content-Type"]))
        status = self.server.script.pop(0) if self.server.script else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def capture():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    server.seen, server.script = [], []
    with serving(server):
        yield server


def shas(db):
    if is_postgres(db):
        return {s for (s,) in pg_query(db, "SELECT sha256 FROM callbacks")}
    conn = sqlite3.connect(db)
    try:
        return {s for (s,) in conn.execute("SELECT sha256 FROM callbacks")}
    finally:
        conn.close()


def test_replay_to_a_real_collector_reproduces_the_same_bytes(any_source, collector):
    source = any_source
    url, target_db = collector
    r = run("replay", "--to", url, "--db", source, "--rate", "0")
    assert r.exit_code == 0, r.output
    port = url.split(":")[2].split("/")[0]
    assert r.output == f"Sent 4 callbacks to http://127.0.0.1:{port}/webhook?...; answers: 200: 4\n"
    assert TARGET_SECRET not in r.output
    assert shas(target_db) == shas(source) == {hashlib.sha256(b).hexdigest() for b, _ in bodies()}
    # A second replay is deduplicated by the target, and still answered 200.
    again = run("replay", "--to", url, "--db", source, "--rate", "0")
    assert again.exit_code == 0
    assert len(shas(target_db)) == 4


def test_selection_by_event_type_conversation_and_arrival_time(any_source, capture):
    source = any_source
    url = f"http://127.0.0.1:{capture.server_port}/hook"
    r = run("replay", "--to", url, "--db", source, "--event-type", "system.shutdown")
    assert r.exit_code == 0, r.output
    assert [b for b, _ in capture.seen] == [bodies()[0][0]]
    capture.seen.clear()
    r = run("replay", "--to", url, "--db", source, "--conversation", "c2", "--rate", "0")
    assert "Sent 2 callbacks" in r.output
    assert [b for b, _ in capture.seen] == [bodies()[1][0], bodies()[2][0]]
    assert {ct for _, ct in capture.seen} == {"application/json"}
    capture.seen.clear()
    r = run("replay", "--to", url, "--db", source, "--since", "2025-07-02", "--until", "2025-07-03")
    assert [b for b, _ in capture.seen] == [bodies()[1][0], bodies()[2][0]]
    r = run("replay", "--to", url, "--db", source, "--since", "2030-01-01")
    assert r.exit_code == 0
    assert r.output == "No stored callback matches: nothing sent.\n"


def test_answers_other_than_2xx_are_summed_up_and_exit_1(source, capture):
    capture.script = [200, 500, 400, 200]
    url = f"http://127.0.0.1:{capture.server_port}/hook"
    r = run("replay", "--to", url, "--db", source, "--rate", "0")
    assert r.exit_code == 1
    assert r.output.splitlines() == [
        f"Sent 4 callbacks to {url}; answers: 200: 2, 400: 1, 500: 1",
        "Error: 2 of 4 callbacks got an answer other than 2xx",
    ]


def test_unreachable_target_is_a_clear_error(source):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = run("replay", "--to", f"http://127.0.0.1:{port}/webhook?token=abc", "--db", source)
    assert r.exit_code == 1
    assert r.output == (
        f"Error: cannot reach http://127.0.0.1:{port}/webhook?...: connection refused\n"
    )


def test_not_a_url_and_missing_database(source, tmp_path):
    r = run("replay", "--to", "localhost:5000/webhook", "--db", source)
    assert r.exit_code == 1
    assert r.output == (
        "Error: 'localhost:5000/webhook' is not an http(s) URL: use --to http://HOST:PORT/PATH\n"
    )
    missing = tmp_path / "nothing.db"
    r = run("replay", "--to", "http://127.0.0.1:9/x", "--db", missing)
    assert r.exit_code == 1
    assert r.output == (
        f"Error: no database at {missing}: start the collector (tavus-analytics serve) or make "
        f"demo data (tavus-analytics demo --db {missing})\n"
    )
    assert not missing.exists()


def test_rate_limit_spaces_requests(source, capture):
    waits = []
    with Store(source) as store:
        result = replay(
            store, f"http://127.0.0.1:{capture.server_port}/", rate=0.5, sleep=waits.append
        )
    assert result.sent == 4 and result.answers == {200: 4}
    assert len(waits) == 3
    assert all(0 < w <= 2.0 for w in waits)  # the sleep is recorded, not slept


def test_library_raises_replay_error(source):
    with Store(source) as store, pytest.raises(ReplayError, match="is not an http"):
        replay(store, "ftp://example.com/")
