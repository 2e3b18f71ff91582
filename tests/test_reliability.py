"""Reliability: crashes, contention, disk full, hostile input and access, in a fast subset.

The full harness is ``python -m stress.run`` (see ``stress/README.md``); these tests run the same
scenarios with small, bounded parameters against real collector processes and servers on
127.0.0.1, each on its own temporary database.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import sys
from pathlib import Path

import pytest
from conftest import SECRET

from tavus_analytics import Settings, Store, create_app

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the harness lives beside the package, in stress/
    sys.path.insert(0, str(ROOT))

from stress import harness, hostile  # noqa: E402


# -- regressions found by the harness -----------------------------------------------------------
def test_lone_surrogate_escape_is_refused_by_every_storage_path(store, db_path):
    """Once a 500 in the collector, then stored by imports; now refused everywhere alike."""
    body = b'{"event_type": "system.shutdown", "conversation_id": "c\\ud800", "status": "\\udfff"}'
    batch = store.insert_batch([body, b'{"replica_id": "\\ud83d", "status": "ready"}'])
    assert (batch.stored, batch.rejected) == (0, 2)
    conn = sqlite3.connect(db_path)
    rows = conn.execute("SELECT reason, body FROM rejected ORDER BY id").fetchall()
    conn.close()
    assert rows[0] == (
        "body holds a lone UTF-16 surrogate escape (such as \\ud800 without its pair): "
        "not valid Unicode",
        body,
    )


def test_index_columns_never_hold_text_sqlite_cannot_store(store, db_path):
    from tavus_analytics.events import classify

    fields = classify(json.loads('{"event_type": "x", "conversation_id": "c\\ud800"}'))
    body = b'{"event_type": "x", "conversation_id": "c"}'
    store.insert_callback(body, fields)  # a caller that classified on its own
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT conversation_id, sha256 FROM callbacks").fetchall() == [
        ("c\ufffd", hashlib.sha256(body).hexdigest())
    ]
    conn.close()


@pytest.mark.parametrize(
    "body",
    [
        b'{"event_type": "x", "conversation_id": "c\\ud800"}',
        b'{"conversation_id": "c1", "event_type": "system.shutdown", '
        b'"properties": {"shutdown_reason": "x\\udfff"}}',
        b'{"conversation_id": "c1", "event_type": "application.transcription_ready", '
        b'"properties": {"transcript": [{"role": "user", "content": "hi \\ud83d"}]}, "n": 1e400}',
        b'{"\\ud800": 1}',
    ],
)
def test_lone_surrogate_escape_is_refused_and_the_database_still_loads(client, db_path, body):
    r = client.post(f"/webhook?token={SECRET}", data=body)
    assert r.status_code == 400
    assert r.json["error"].startswith("body holds a lone UTF-16 surrogate escape")
    ok = b'{"conversation_id": "c1", "event_type": "x", "pair": "\\ud83d\\ude00", "s": "\\\\ud800"}'
    assert client.post(f"/webhook?token={SECRET}", data=ok).status_code == 200
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT status FROM rejected").fetchall() == [(400,)]
    conn.close()
    assert hostile.loads_cleanly(db_path)["ok"]


def test_healthz_is_503_when_the_disk_is_full(client, monkeypatch):
    import shutil
    from collections import namedtuple

    assert client.get("/healthz").status_code == 200
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(1 << 20, 1 << 20, 4096))
    r = client.get("/healthz")
    assert r.status_code == 503
    assert r.json == {"ok": False, "status": 503, "error": "database is not writable"}


# -- the harness's scenarios, small ---------------------------------------------------------------
def _no_loss(r: dict) -> None:
    assert r["integrity_check"] == "ok"
    assert r["acknowledged"] > 0
    assert r["acknowledged_and_stored"] == r["checked_acknowledged"]
    assert r["acknowledged_missing"] == 0
    assert r["stored_more_than_once"] == 0
    assert r["body_differs_from_sha256"] == 0
    assert r["json_invalid_rows"] == 0
    assert r["bad_answers"] == 0
    assert set(r["answers"]) <= {200, 503}
    assert r["collector_log_problems"] == []


@pytest.mark.parametrize("server", ["granian", "waitress"])
def test_sigkill_under_load_loses_nothing_acknowledged(tmp_path, server):
    r = harness.crash(tmp_path, kills=3, threads=3, gap=(0.05, 0.3), deadline=60, server=server)
    assert r["kills"] == 3
    _no_loss(r)
    assert r["checked_acknowledged"] == r["acknowledged"]  # the sender's count, all stored
    if server == "granian":  # the 2nd kill hits the supervisor alone: its worker follows
        assert r["kills_of_the_supervisor_alone"] == 1
        assert r["workers_left_after_their_supervisor_died"] == 0
    assert r["ok"], r


def test_two_collectors_an_import_and_a_notebook_load_share_one_database(tmp_path):
    r = harness.contention(
        tmp_path, collectors=2, threads=3, duration=2, busy_timeout_ms=50, import_batch=100
    )
    _no_loss(r)
    assert r["imports_committed"] > 0 and r["import_errors"] == []
    assert r["imported_bodies"] == 100 * r["imports_committed"]
    assert r["notebook_loads"] > 0 and r["notebook_load_errors"] == []
    assert r["checked_acknowledged"] == r["acknowledged"] + r["imported_bodies"]
    assert r["ok"], r


def test_disk_full_answers_503_recovers_and_loses_nothing(readonly_fs, tmp_path):
    if not readonly_fs.mounted:
        pytest.skip("a full disk needs a tmpfs, which only root can mount")
    harness._mount("-o", "remount,size=8m", str(readonly_fs.path))
    r = harness.diskfull(readonly_fs.path, tmp_path)
    assert r["refused_503_while_full"] > 0
    assert r["healthz_while_full"] == 503
    assert r["resent_and_acknowledged_after_space_freed"] == r["refused_503_while_full"]
    assert r["readonly_answers"] == [503] and r["healthz_while_readonly"] == 503
    assert r["after_writable_again"] == 200
    assert r["bad_answers"] == []
    assert r["acknowledged_missing"] == 0 and r["integrity_check"] == "ok"
    assert r["ok"], r


# -- hostile input --------------------------------------------------------------------------------
NASTY = [
    b"",
    b"\xef\xbb\xbf{}",
    b'{"a": "\xff"}',
    b'{"a": "\xed\xa0\x80"}',
    b'{"a": 1}\x00',
    b'{"a": "\x00"}',
    b'{"a": "\\u0000"}',
    b'{"a": 1e400}',
    b'{"event_type": "x", "conversation_id": ' + b"9" * 5000 + b"}",
    b'{"a": NaN}',
    b'{"a":' * 1100 + b"1" + b"}" * 1100,
    b'{"a":' + b"[" * 5000 + b"]" * 5000 + b"}",
    b'{"conversation_id": "\\ud800", "event_type": "x"}',
    b'{"s": "' + b"x" * (hostile.FUZZ_MAX_BODY + 1) + b'"}',
    b"[" * 100_000,
    b'{"a":1,"a":2}',
]


@pytest.mark.parametrize("body", NASTY, ids=range(len(NASTY)))
def test_nasty_bodies_never_500_and_never_stored_altered(tmp_path, body):
    db = tmp_path / "n.db"
    settings = Settings(db=str(db), secret=SECRET, max_body=hostile.FUZZ_MAX_BODY)
    with Store(db) as store:
        client = create_app(settings, store=store).test_client()
        conn = sqlite3.connect(db)
        try:
            for content_type in (None, "application/json", "multipart/form-data; boundary=x"):
                with hostile.default_recursion_limit():
                    r = client.post(
                        f"/webhook?token={SECRET}", data=body, content_type=content_type
                    )
                hostile.check_answer(r.status_code, r.get_data(), body, conn)
        finally:
            conn.close()
    assert hostile.loads_cleanly(db)["ok"]


def test_fuzz_webhook_through_the_test_client(tmp_path):
    r = hostile.fuzz_app(tmp_path, examples=150)
    assert r["examples"] > 0 and 200 in r["answers"] and 400 in r["answers"]
    assert set(r["answers"]) <= {200, 400, 413}
    assert r["load"]["ok"], r["load"]


@pytest.mark.parametrize("server", ["granian", "waitress"])
def test_fuzz_real_collector_with_chunked_truncated_and_broken_framing(tmp_path, server):
    r = hostile.fuzz_server(tmp_path, examples=40, server=server)
    assert r["collector_alive_after"] and r["healthz_after"] == 200
    assert r["collector_log_problems"] == []
    assert r["load"]["ok"], r["load"]


#: What each server answers to each framing of a 20 KB body, sent by a sender that half-closes
#: its side of the connection once it has sent what it sends (``raw_exchange``).
FRAMING_OUTCOMES = {
    "waitress": {
        "content-length": "200",
        "chunked": "200",
        # waitress waits for the rest of the body, then drops the request: nothing reaches
        # the app
        "truncated-content-length": "no answer",
        "truncated-chunked": "no answer",
        "bad-chunk-size": "400",
        "content-length-too-large": "no answer",
    },
    "granian": {
        # hyper drops a half-closed connection once the request is read: no answer. The body
        # may be stored; the retry (on an ordinary connection) is answered 200, and the body is
        # stored once (check_raw). The unanswered request may also race its processing and get
        # its answer out first: then it is a plain 200.
        "content-length": ("no answer (half-closed), retry 200", "200"),
        "chunked": ("no answer (half-closed), retry 200", "200"),
        # the cut body reaches the app, which refuses it (what arrived is not a JSON object)
        "truncated-content-length": "400",
        "truncated-chunked": "400",
        "bad-chunk-size": "400",
        "content-length-too-large": "400",
    },
}


@pytest.mark.parametrize("server", ["granian", "waitress"])
def test_each_framing_once_against_a_real_collector(tmp_path, server):
    db = tmp_path / "framing.db"
    col = harness.Collector(db, SECRET, tmp_path, name="framing", server=server)
    col.start()
    conn = sqlite3.connect(db)
    seen = {}
    path = f"/webhook?token={SECRET}"
    cuts = [7, 900, 5000]
    try:
        for i, mode in enumerate(FRAMING_OUTCOMES[server]):
            body = harness.make_body("framing", i, size=20_000)
            before = conn.execute("SELECT count(*) FROM callbacks").fetchone()[0]
            answer = hostile.raw_exchange(col.port, path, body, mode, cuts)

            def resend(body=body, mode=mode):
                return hostile.raw_exchange(col.port, path, body, mode, cuts, half_close=False)

            seen[mode] = hostile.check_raw(
                answer, body, mode, before, conn, server=server, cuts=cuts, resend=resend
            )
        assert col.proc.poll() is None
    finally:
        conn.close()
        col.stop()
    for mode, expected in FRAMING_OUTCOMES[server].items():
        assert seen[mode] in ((expected,) if isinstance(expected, str) else expected), mode
    assert col.problems() == []


def test_granian_stores_a_cut_chunked_body_only_as_it_arrived(tmp_path):
    """granian reads a chunked body that ends early (the last chunk or the terminating one
    never sent, or a broken chunk size) as complete: what arrived is refused unless it is a
    JSON object on its own, which is then stored as it arrived, never as the sender meant it.
    waitress answers none of these (a cut body) or refuses it (a broken chunk size)."""
    db = tmp_path / "cut.db"
    cases = [
        ("truncated-chunked", b'{"a": 1} \n', [8], "200 (what arrived)", b'{"a": 1}'),
        ("bad-chunk-size", b'{"b": 2}   ', [8, 1, 1], "200 (what arrived)", b'{"b": 2} '),
        ("truncated-chunked", b'{"c": 3}', [3], "400", None),
    ]
    col = harness.Collector(db, SECRET, tmp_path, name="cut", server="granian")
    col.start()
    conn = sqlite3.connect(db)
    try:
        for mode, body, cuts, outcome, kept in cases:
            before = conn.execute("SELECT count(*) FROM callbacks").fetchone()[0]
            answer = hostile.raw_exchange(col.port, f"/webhook?token={SECRET}", body, mode, cuts)
            got = hostile.check_raw(answer, body, mode, before, conn, server="granian", cuts=cuts)
            assert got == outcome, (mode, body)
            assert hostile.is_stored(conn, kept) if kept else not hostile.is_stored(conn, body)
            assert not hostile.is_stored(conn, body)  # never the whole body: it never arrived
    finally:
        conn.close()
        col.stop()
    assert col.problems() == []


# -- access ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("server", [None, "granian"], ids=["waitress-in-process", "granian"])
def test_every_route_with_and_without_the_token_leaks_nothing(tmp_path, server):
    r = hostile.access(tmp_path, server=server)
    assert r["requests"] == len(hostile.ROUTES) * r["token_variants"] * 2
    assert r["log_records_checked"] > 0
    assert r["problems"] == []
    assert 500 not in r["answers"]
    assert r["answers"][401] > 0 and r["answers"][503] > 0
