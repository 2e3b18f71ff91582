"""The collector's behaviour through Flask's test client, on a real SQLite file."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import sys

import pytest
from conftest import SECRET, SHUTDOWN_EXAMPLE

from tavus_analytics import Settings, Store, create_app
from tavus_analytics.store import REJECTED_BODY_LIMIT
from tavus_analytics.store.sqlite import SCHEMA_VERSION

URL = f"/webhook?token={SECRET}"


def rows(store, sql, *args):
    return store.connection().execute(sql, args).fetchall()


def post(client, body, url=URL, **kw):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(url, data=data, **kw)


# -- authentication -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url, headers",
    [
        ("/webhook", {}),
        ("/webhook?token=wrong", {}),
        ("/webhook?token=", {}),
        ("/webhook", {"X-Webhook-Token": "wrong"}),
        ("/webhook?token=" + SECRET[:-1], {}),
        ("/webhook?token=" + SECRET + "x", {}),
    ],
)
def test_missing_or_wrong_token_is_401_and_stores_nothing(client, store, url, headers):
    r = client.post(url, data=json.dumps(SHUTDOWN_EXAMPLE), headers=headers)
    assert r.status_code == 401
    assert r.json == {
        "ok": False,
        "status": 401,
        "error": "missing or wrong token: pass ?token=SECRET or X-Webhook-Token",
    }
    assert rows(store, "SELECT count(*) FROM callbacks") == [(0,)]
    assert rows(store, "SELECT count(*) FROM rejected") == [(0,)]


def test_token_in_header_is_accepted(client, store):
    r = client.post(
        "/webhook", data=json.dumps(SHUTDOWN_EXAMPLE), headers={"X-Webhook-Token": SECRET}
    )
    assert r.status_code == 200
    assert rows(store, "SELECT count(*) FROM callbacks") == [(1,)]


def test_no_auth_accepts_without_token(db_path):
    store = Store(db_path)
    try:
        client = create_app(Settings(db=str(db_path), no_auth=True), store=store).test_client()
        assert post(client, SHUTDOWN_EXAMPLE, url="/webhook").status_code == 200
    finally:
        store.close()


def test_app_refuses_to_start_without_secret_unless_no_auth(db_path):
    with pytest.raises(ValueError, match="needs a secret"):
        create_app(Settings(db=str(db_path)))


# -- what is stored -----------------------------------------------------------------------------
def test_answer_and_row_of_an_accepted_callback(client, store):
    raw = json.dumps(SHUTDOWN_EXAMPLE, indent=2).encode()
    r = client.post(
        URL,
        data=raw,
        headers={"User-Agent": "Tavus-Webhook/1.0"},
        environ_base={"REMOTE_ADDR": "203.0.113.9"},
    )
    assert r.status_code == 200
    assert r.json == {"ok": True, "status": "ok", "id": 1, "duplicate": False}
    (row,) = rows(
        store,
        "SELECT received_at, kind, event_type, message_type, conversation_id, replica_id, "
        "video_id, status, timestamp, body, sha256, remote_addr, user_agent FROM callbacks",
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", row[0])
    assert row[1:9] == (
        "conversation",
        "system.shutdown",
        "system",
        "c123456",
        "r79e1c033f",
        None,
        None,
        "2025-07-11T06:48:37.564961Z",
    )
    assert row[9].encode() == raw  # byte for byte, whitespace and key order kept
    assert row[10] == hashlib.sha256(raw).hexdigest()
    assert row[11:] == ("203.0.113.9", "Tavus-Webhook/1.0")


def test_unicode_body_is_kept_byte_for_byte(client, store):
    raw = '{"conversation_id":"c1","event_type":"application.transcription_ready",'
    raw += '"properties":{"transcript":[{"role":"user","content":"héllo 👋 你好 \\u0000"}]}}'
    assert post(client, raw.encode()).status_code == 200
    assert rows(store, "SELECT body FROM callbacks")[0][0].encode() == raw.encode()


@pytest.mark.parametrize(
    "body, kind",
    [
        (SHUTDOWN_EXAMPLE, "conversation"),
        (
            {
                "conversation_id": "c9",
                "event_type": "application.something_new",
                "message_type": "application",
                "properties": {},
            },
            "conversation",
        ),
        ({"replica_id": "r1", "status": "ready"}, "replica_training"),
        ({"replica_id": "r1", "status": "error", "error_message": "bad video"}, "replica_training"),
        (
            {
                "video_id": "v1",
                "video_name": "hello",
                "replica_id": "r1",
                "status": "ready",
                "created_at": "2024-08-28 15:27:40.824457",
                "updated_at": "2024-08-28 15:29:02.000001",
            },
            "video",
        ),
        ({"hello": "world"}, "unknown"),
        ({"event_type": "conversation.utterance", "seq": 4, "timestamp": 1720680517.5}, "unknown"),
    ],
)
def test_kinds(client, store, body, kind):
    r = post(client, body)
    assert r.status_code == 200
    assert rows(store, "SELECT kind FROM callbacks WHERE id = ?", r.json["id"]) == [(kind,)]


def test_video_callback_indexes_its_fields(client, store):
    body = {"video_id": "v7", "replica_id": "r2", "status": "generating", "updated_at": "x"}
    post(client, body)
    assert rows(store, "SELECT video_id, replica_id, status, timestamp FROM callbacks") == [
        ("v7", "r2", "generating", "x")
    ]


def test_non_string_index_fields_do_not_break_classification(client, store):
    body = {"conversation_id": 12345, "event_type": "system.shutdown", "properties": "oops"}
    assert post(client, body).status_code == 200
    assert rows(store, "SELECT kind, conversation_id, replica_id FROM callbacks") == [
        ("conversation", "12345", None)
    ]


def test_duplicate_body_is_stored_once(client, store):
    first = post(client, SHUTDOWN_EXAMPLE)
    again = post(client, SHUTDOWN_EXAMPLE)
    assert again.status_code == 200
    assert again.json == {"ok": True, "status": "ok", "id": first.json["id"], "duplicate": True}
    # The same JSON spelled differently is a different body: kept, as received.
    other = post(client, json.dumps(SHUTDOWN_EXAMPLE, indent=1).encode())
    assert other.json["duplicate"] is False
    assert rows(store, "SELECT count(*) FROM callbacks") == [(2,)]


@pytest.mark.parametrize(
    "content_type",
    [None, "application/json", "text/plain", "application/x-www-form-urlencoded", "foo/bar"],
)
def test_any_content_type_is_accepted(client, store, content_type):
    r = post(client, SHUTDOWN_EXAMPLE, content_type=content_type)
    assert r.status_code == 200
    assert rows(store, "SELECT count(*) FROM callbacks") == [(1,)]


# -- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "body, message",
    [
        (b"", "body is empty: send the callback as a JSON object"),
        (b"  \n", "body is empty: send the callback as a JSON object"),
        (b"\xff\xfe{}", "body is not valid UTF-8"),
        (b'{"a": "\xc3"}', "body is not valid UTF-8"),
        (b"{not json", "body is not valid JSON"),
        (b'{"a": 1', "body is not valid JSON"),
        (b'{"a": NaN}', "body is not valid JSON"),
        (b"\xef\xbb\xbf{}", "body starts with a UTF-8 byte order mark"),
        (b"[1, 2]", "body is JSON but not an object (got an array)"),
        (b'"hello"', "body is JSON but not an object (got a string)"),
        (b"42", "body is JSON but not an object (got a number)"),
        (b"null", "body is JSON but not an object (got null)"),
        (b"a=1&b=2", "body is not valid JSON"),
    ],
)
def test_bad_bodies_are_400_and_kept_as_evidence(client, store, body, message):
    r = client.post(URL, data=body, content_type="text/plain")
    assert r.status_code == 400
    assert r.json["ok"] is False and r.json["status"] == 400
    assert r.json["error"].startswith(message)
    assert rows(store, "SELECT count(*) FROM callbacks") == [(0,)]
    (row,) = rows(store, "SELECT reason, status, content_type, size, body, truncated FROM rejected")
    assert row == (r.json["error"], 400, "text/plain", len(body), body, 0)


def test_valid_json_that_orjson_refuses_is_accepted(client, store):
    raw = b'{"conversation_id": "c1", "event_type": "x", "properties": {"n": 1e400}}'
    assert post(client, raw).status_code == 200
    assert rows(store, "SELECT body FROM callbacks")[0][0].encode() == raw


def test_over_limit_body_is_413_and_its_head_kept(db_path):
    store = Store(db_path)
    try:
        app = create_app(Settings(db=str(db_path), secret=SECRET, max_body=100_000), store=store)
        client = app.test_client()
        big = b'{"x": "' + b"a" * 200_000 + b'"}'
        r = client.post(URL, data=big)
        assert r.status_code == 413
        assert r.json["error"] == (
            f"body is {len(big)} bytes, over the limit of 100000 bytes (raise it with --max-body)"
        )
        (row,) = rows(store, "SELECT status, size, length(body), truncated FROM rejected")
        assert row == (413, len(big), REJECTED_BODY_LIMIT, 1)
        # At the limit exactly: accepted.
        exact = b'{"x": "' + b"a" * (100_000 - 9) + b'"}'
        assert len(exact) == 100_000
        assert client.post(URL, data=exact).status_code == 200
        assert rows(store, "SELECT count(*) FROM callbacks") == [(1,)]
    finally:
        store.close()


def test_unknown_route_and_method_answer_json(client):
    r = client.get("/nope")
    assert r.status_code == 404 and r.json["ok"] is False and r.json["status"] == 404
    r = client.get("/webhook")
    assert r.status_code == 405 and r.json["status"] == 405


# -- the database cannot be written -------------------------------------------------------------
def test_locked_database_answers_503_then_recovers(db_path):
    store = Store(db_path, busy_timeout_ms=100)
    try:
        client = create_app(Settings(db=str(db_path), secret=SECRET), store=store).test_client()
        assert post(client, {"n": 0}).status_code == 200
        other = sqlite3.connect(db_path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        r = post(client, {"n": 1})
        assert r.status_code == 503
        assert r.headers["Retry-After"] == "1"
        assert r.json == {"ok": False, "status": 503, "error": "database unavailable, retry later"}
        assert client.get("/healthz").status_code == 503
        other.execute("ROLLBACK")
        other.close()
        assert post(client, {"n": 1}).status_code == 200
        assert client.get("/healthz").json == {"ok": True, "status": "ok", "callbacks": 2}
    finally:
        store.close()


def test_read_only_database_answers_503_and_keeps_what_it_had(readonly_fs):
    db = readonly_fs.path / "tavus.db"
    store = Store(db)
    store.insert_callback(b'{"kept": true}')
    store.close()
    readonly_fs.make_readonly(db)
    store = Store(db)
    try:
        client = create_app(Settings(db=str(db), secret=SECRET), store=store).test_client()
        r = post(client, {"n": 1})
        assert r.status_code == 503
        assert client.get("/healthz").status_code == 503
        assert post(client, b"not json").status_code == 503  # nor can evidence be kept
    finally:
        store.close()
    readonly_fs.make_writable(db)
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT body FROM callbacks").fetchall() == [('{"kept": true}',)]
    conn.close()


# -- health and status --------------------------------------------------------------------------
def test_healthz_counts_callbacks(client):
    assert client.get("/healthz").json == {"ok": True, "status": "ok", "callbacks": 0}
    post(client, SHUTDOWN_EXAMPLE)
    assert client.get("/healthz").json == {"ok": True, "status": "ok", "callbacks": 1}


def test_status_page_needs_the_token_for_details(client):
    post(client, SHUTDOWN_EXAMPLE)
    transcript = {
        "conversation_id": "c2",
        "event_type": "application.transcription_ready",
        "properties": {"transcript": [{"role": "user", "content": "my secret phrase"}]},
    }
    post(client, transcript)
    anonymous = client.get("/").get_data(as_text=True)
    assert "system.shutdown" not in anonymous and "callbacks stored" not in anonymous
    assert "?token=SECRET" in anonymous
    assert SECRET not in anonymous
    page = client.get(URL.replace("/webhook", "/")).get_data(as_text=True)
    assert "2 callbacks stored,\n0 refused." in page
    assert "system.shutdown" in page and "application.transcription_ready" in page
    assert "my secret phrase" not in page
    assert SECRET not in page


def test_status_page_escapes_what_senders_wrote(client):
    post(client, {"conversation_id": "c", "event_type": "<script>alert(1)</script>"})
    page = client.get("/?token=" + SECRET).get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page


# -- schema -------------------------------------------------------------------------------------
def test_schema_version_indexes_and_idempotent_migration(db_path):
    store = Store(db_path)
    assert store.migrate() == SCHEMA_VERSION  # already migrated on first connection
    store.close()
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    indexes = {r[1]: r[2] for r in conn.execute("PRAGMA index_list(callbacks)")}
    names = {
        tuple(c[2] for c in conn.execute(f"PRAGMA index_info('{name}')")): unique
        for name, unique in indexes.items()
    }
    assert names[("sha256",)] == 1
    for col in ("conversation_id", "event_type", "received_at"):
        assert (col,) in names
    conn.close()


def test_newer_schema_is_refused_with_advice(db_path):
    Store(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.close()
    from tavus_analytics.errors import StoreUnavailable

    with pytest.raises(StoreUnavailable, match="upgrade tavus-analytics"):
        Store(db_path).connection()


def test_batch_is_one_transaction(store):
    result = store.insert_batch(
        [b'{"a": 1}', b'{"a": 1}', b"[]", (b'{"b": 2}', "2025-01-01T00:00:00.000Z")]
    )
    assert (result.stored, result.duplicate, result.rejected) == (2, 1, 1)
    assert rows(store, "SELECT received_at FROM callbacks WHERE body = ?", '{"b": 2}') == [
        ("2025-01-01T00:00:00.000Z",)
    ]

    def boom():
        yield b'{"c": 3}'
        raise RuntimeError("disk fell off")

    with pytest.raises(RuntimeError):
        store.insert_batch(boom())
    assert rows(store, "SELECT count(*) FROM callbacks") == [(2,)]


def _fts(store):
    return rows(
        store,
        "SELECT content, role, conversation_id, turn FROM transcript_fts "
        "ORDER BY conversation_id, turn",
    )


def test_transcript_index_catches_up_off_the_write_path(tmp_path):
    from tavus_analytics import demo

    bodies = [body for body, _ in demo.generate(40, seed=3)]
    bodies.append(
        b'{"conversation_id": "cx", "event_type": "application.transcription_ready", '
        b'"properties": {"transcript": [{"role": "system", "content": "sys"}, '
        b'{"role": "user", "content": ""}, {"role": "user", "content": null}, 7, '
        b'{"role": "assistant", "content": "caf\\u00e9 \\u4f60 ok"}, {"role": 5, "content": "x"}]}}'
    )
    one_by_one = Store(tmp_path / "a.db")
    batched = Store(tmp_path / "b.db")
    try:
        for body in bodies:
            one_by_one.insert_callback(body)
        assert _fts(one_by_one) == []  # the collector's write does not index
        batched.insert_batch(bodies)
        n = one_by_one.index_transcripts(chunk=7)
        assert batched.index_transcripts() == n > 100
        assert _fts(batched) == _fts(one_by_one)
        assert ("café 你 ok", "assistant", "cx", 4) in _fts(batched)
        assert not any(
            role not in ("user", "assistant") or not text for text, role, _, _ in _fts(batched)
        )
        # Only what arrived since is read next time.
        extra = (
            b'{"conversation_id": "cy", "event_type": "application.transcription_ready", '
            b'"properties": {"transcript": [{"role": "user", "content": "late words"}]}}'
        )
        batched.insert_callback(extra)
        assert batched.index_transcripts() == 1
        assert batched.index_transcripts() == 0
        assert rows(
            batched, "SELECT conversation_id FROM transcript_fts WHERE content = ?", "late words"
        ) == [("cy",)]
    finally:
        one_by_one.close()
        batched.close()


def test_concurrent_callbacks_are_committed_in_groups_and_none_is_lost(store):
    import threading

    bodies = [json.dumps({"n": i}).encode() for i in range(400)]
    answers: dict[int, tuple[int, bool]] = {}

    def send(part):
        for i in part:
            answers[i] = store.insert_callback(bodies[i])
            answers[-1 - i] = store.insert_callback(bodies[i])  # a duplicate right after

    threads = [threading.Thread(target=send, args=(range(k, 400, 16),)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = {answers[i][0] for i in range(400)}
    assert len(ids) == 400 and not any(answers[i][1] for i in range(400))
    assert all(answers[-1 - i] == (answers[i][0], True) for i in range(400))
    stored = dict(rows(store, "SELECT id, body FROM callbacks"))
    assert {stored[answers[i][0]].encode() for i in range(400)} == set(bodies)


def test_a_failed_group_fails_every_callback_in_it(db_path):
    store = Store(db_path, busy_timeout_ms=50)
    try:
        store.insert_callback(b'{"first": 1}')
        other = sqlite3.connect(db_path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        from tavus_analytics.errors import StoreUnavailable

        with pytest.raises(StoreUnavailable, match="locked"):
            store.insert_callback(b'{"second": 2}')
        other.execute("ROLLBACK")
        other.close()
        assert store.insert_callback(b'{"second": 2}') == (2, False)
    finally:
        store.close()


@pytest.mark.skipif(sys.platform == "win32", reason="no file locks on Windows")
def test_writers_of_other_processes_take_turns_on_the_write_lock(db_path):
    import fcntl
    import os
    import threading

    from tavus_analytics.errors import StoreUnavailable

    store = Store(db_path, busy_timeout_ms=300)
    try:
        store.insert_callback(b'{"n": 0}')
        other = os.open(str(db_path) + "-writelock", os.O_RDWR)  # as another process would
        fcntl.flock(other, fcntl.LOCK_EX)
        with pytest.raises(StoreUnavailable, match="another process has been writing"):
            store.insert_callback(b'{"n": 1}')
        # Released while a write waits (well within its 300 ms): the write goes through.
        threading.Timer(0.1, fcntl.flock, (other, fcntl.LOCK_UN)).start()
        assert store.insert_callback(b'{"n": 1}') == (2, False)
        os.close(other)
    finally:
        store.close()


def test_a_body_shorter_than_its_content_length_is_refused_not_stored(client, store):
    import io

    r = client.post(
        URL,
        input_stream=io.BytesIO(b'{"a": 1}'),
        content_type="application/json",
        environ_overrides={"CONTENT_LENGTH": "100"},  # what a server passes on a cut connection
    )
    assert r.status_code == 400
    assert r.json["error"] == (
        "body ended after 8 of the 100 bytes its Content-Length announced: send it again"
    )
    assert rows(store, "SELECT count(*) FROM callbacks") == [(0,)]
    assert rows(store, "SELECT status, size, body FROM rejected") == [(400, 8, b'{"a": 1}')]
