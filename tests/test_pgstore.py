"""The PostgreSQL store keeps the SQLite store's promises (a throwaway server, a test database)."""

from __future__ import annotations

import json
import threading

import psycopg
import pytest

from tavus_analytics.errors import StoreUnavailable
from tavus_analytics.store import display_url, is_postgres, open_store
from tavus_analytics.store.postgres import SCHEMA_VERSION, PgStore
from tests.conftest import SHUTDOWN_EXAMPLE, pg_query


@pytest.fixture
def pg(pg_url):
    s = PgStore(pg_url, busy_timeout_ms=3000)
    yield s
    s.close()


def body_of(obj) -> bytes:
    return json.dumps(obj).encode()


def test_urls_are_told_apart_and_passwords_masked():
    assert is_postgres("postgresql://u:pw@h:5432/db")
    assert is_postgres("postgres://h/db")
    assert not is_postgres("data/tavus.db")
    assert display_url("postgresql://u:s3cr%40t@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert "pw" not in display_url("postgresql://h/db?password=pw&sslmode=require")
    assert isinstance(open_store("postgresql://h/db"), PgStore)


def test_body_is_kept_byte_for_byte_with_a_jsonb_copy(pg, pg_url):
    body = (
        b'{"event_type": "system.shutdown",  "conversation_id": "c1", "x": 1.50,\n "u": "\\u00e9"}'
    )
    rowid, duplicate = pg.insert_callback(body, remote_addr="127.0.0.1", user_agent="ua/1")
    assert duplicate is False
    [(text, j, kind, cid, ua)] = pg_query(
        pg_url,
        "SELECT body, body_json, kind, conversation_id, user_agent FROM callbacks WHERE id = %s",
        rowid,
    )
    assert text.encode() == body
    assert j["x"] == 1.5 and j["u"] == "é"
    assert (kind, cid, ua) == ("conversation", "c1", "ua/1")
    assert pg_query(pg_url, "SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]


def test_duplicates_answer_the_first_id(pg, pg_url):
    body = body_of(SHUTDOWN_EXAMPLE)
    first = pg.insert_callback(body)
    again = pg.insert_callback(body)
    assert first == (first[0], False)
    assert again == (first[0], True)
    assert pg_query(pg_url, "SELECT count(*) FROM callbacks") == [(1,)]


def test_a_body_jsonb_cannot_hold_is_stored_all_the_same(pg, pg_url):
    body = b'{"event_type": "system.shutdown", "conversation_id": "c1", "t": "a\\u0000b"}'
    rowid, _ = pg.insert_callback(body)
    [(text, j)] = pg_query(pg_url, "SELECT body, body_json FROM callbacks WHERE id = %s", rowid)
    assert text.encode() == body and j is None


def test_concurrent_duplicates_store_one_row(pg, pg_url):
    bodies = [body_of({**SHUTDOWN_EXAMPLE, "conversation_id": f"c{i}"}) for i in range(20)]
    results: list[tuple[int, bool]] = []
    lock = threading.Lock()

    def send():
        for b in bodies:
            r = pg.insert_callback(b)
            with lock:
                results.append(r)

    threads = [threading.Thread(target=send) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert pg_query(pg_url, "SELECT count(*) FROM callbacks") == [(20,)]
    assert sum(not dup for _, dup in results) == 20
    assert len({rowid for rowid, _ in results}) == 20


def test_batch_counts_and_rejects_in_one_transaction(pg, pg_url):
    good = [body_of({**SHUTDOWN_EXAMPLE, "conversation_id": f"c{i}"}) for i in range(2500)]
    items = [*good, b"not json", (good[0], "2025-01-01T00:00:00.000Z")]
    r = pg.insert_batch(items, user_agent="import/1", chunk=700)
    assert (r.stored, r.duplicate, r.rejected) == (2500, 1, 1)
    assert pg_query(pg_url, "SELECT count(*), min(user_agent) FROM callbacks") == [
        (2500, "import/1")
    ]
    [(reason, status, kept)] = pg_query(pg_url, "SELECT reason, status, body FROM rejected")
    assert status == 400 and "not valid JSON" in reason and bytes(kept) == b"not json"


def test_a_failing_batch_stores_nothing(pg, pg_url):
    def items():
        yield body_of(SHUTDOWN_EXAMPLE)
        raise RuntimeError("reader failed")

    with pytest.raises(RuntimeError):
        pg.insert_batch(items())
    assert pg.count_callbacks() == 0


def test_same_event_sees_the_batch_so_far(pg):
    key = (SHUTDOWN_EXAMPLE["conversation_id"], "system.shutdown", SHUTDOWN_EXAMPLE["timestamp"])
    seen = []

    def items():
        seen.append(pg.same_event(key))
        yield body_of(SHUTDOWN_EXAMPLE)
        seen.append(pg.same_event(key))

    pg.insert_batch(items(), chunk=1)
    assert seen == [False, True]
    assert pg.same_event(key)


def test_rejected_keeps_evidence(pg, pg_url):
    rowid = pg.insert_rejected("too large", 413, b"x" * 70_000, size=90_000, content_type="a/b")
    [(size, truncated, n)] = pg_query(
        pg_url, "SELECT size, truncated, length(body) FROM rejected WHERE id = %s", rowid
    )
    assert (size, truncated, n) == (90_000, 1, 64 * 1024)


def test_summary_and_writable(pg):
    pg.insert_callback(body_of(SHUTDOWN_EXAMPLE), received_at="2025-07-11T06:48:38.000Z")
    pg.insert_rejected("empty", 400, b"")
    pg.check_writable()
    s = pg.summary()
    assert s["callbacks"] == 1 and s["rejected"] == 1
    assert s["by_event_type"] == [
        {"kind": "conversation", "event_type": "system.shutdown", "count": 1}
    ]
    assert s["last_received_at"] == "2025-07-11T06:48:38.000Z"


def test_a_read_only_server_is_unavailable(pg, pg_url):
    pg.migrate()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        name = conn.execute("SELECT current_database()").fetchone()[0]
        conn.execute(f"ALTER DATABASE {name} SET default_transaction_read_only = on")
    ro = PgStore(pg_url, busy_timeout_ms=2000)
    try:
        with pytest.raises(StoreUnavailable, match="read-only"):
            ro.check_writable()
        with pytest.raises(StoreUnavailable, match="read-only"):
            ro.insert_callback(body_of(SHUTDOWN_EXAMPLE))
    finally:
        ro.close()


def test_collectors_starting_together_migrate_once(pg_url):
    stores = [PgStore(pg_url) for _ in range(4)]
    errors = []

    def go(s):
        try:
            s.migrate()
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=go, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    assert errors == []
    assert pg_query(pg_url, "SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]


def test_a_newer_schema_is_refused(pg, pg_url):
    pg.migrate()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE schema_version SET version = 99")
    other = PgStore(pg_url)
    try:
        with pytest.raises(StoreUnavailable, match="newer than this"):
            other.migrate()
    finally:
        other.close()


def test_an_unreachable_server_is_unavailable_without_the_password():
    store = PgStore("postgresql://u:hunter2@127.0.0.1:1/db", busy_timeout_ms=500)
    try:
        with pytest.raises(StoreUnavailable) as info:
            store.insert_callback(body_of(SHUTDOWN_EXAMPLE))
    finally:
        store.close()
    assert "hunter2" not in str(info.value)
    assert "cannot be reached" in str(info.value) or "cannot be written" in str(info.value)


def test_a_write_stuck_behind_a_lock_gives_up_as_unavailable(pg, pg_url):
    pg.migrate()
    with psycopg.connect(pg_url) as holder:
        holder.execute("LOCK TABLE callbacks IN ACCESS EXCLUSIVE MODE")  # held until rollback
        quick = PgStore(pg_url, busy_timeout_ms=300)
        try:
            with pytest.raises(StoreUnavailable, match="statement timeout"):
                quick.insert_callback(body_of(SHUTDOWN_EXAMPLE))
        finally:
            quick.close()
        holder.rollback()
    assert pg.insert_callback(body_of(SHUTDOWN_EXAMPLE))[1] is False  # and it recovers


def test_a_collector_starting_during_a_long_migration_waits_for_it(pg_url):
    """Another collector holds the migration lock for longer than the busy timeout: this one
    waits, then finds the schema migrated, and its statements time out as before."""
    from tavus_analytics.store.postgres import _MIGRATE_LOCK

    done = []
    with psycopg.connect(pg_url, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (_MIGRATE_LOCK,))
        store = PgStore(pg_url, busy_timeout_ms=200)
        t = threading.Thread(target=lambda: done.append(store.migrate()))
        t.start()
        t.join(0.8)
        assert t.is_alive() and done == []  # still waiting, past the 200 ms timeout
        other.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATE_LOCK,))
        t.join(10)
    try:
        assert done == [0]
        assert pg_query(pg_url, "SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]
        with store.connection() as conn:
            assert conn.execute("SHOW statement_timeout").fetchone()[0] == "200ms"
    finally:
        store.close()


def test_a_commit_is_durable_whatever_the_database_says(pg_url):
    """A database (or role, or server) with synchronous_commit off would answer 200 for rows a
    crash can lose: the store's sessions set it back on."""
    import psycopg

    name = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE {name} SET synchronous_commit = off")
    with psycopg.connect(pg_url) as plain:
        assert plain.execute("SHOW synchronous_commit").fetchone() == ("off",)
    with PgStore(pg_url) as store, store.connection() as conn:
        assert conn.execute("SHOW synchronous_commit").fetchone() == ("on",)
