"""`tavus-analytics migrate`: history copied between stores, resumable and idempotent."""

from __future__ import annotations

import json

import pytest
from conftest import SHUTDOWN_EXAMPLE, pg_query, query, run

from tavus_analytics import demo
from tavus_analytics.errors import DatabaseNotFound, TavusAnalyticsError
from tavus_analytics.store import Store
from tavus_analytics.store.copy import copy_history, source_key
from tavus_analytics.store.postgres import PgStore

COLUMNS = (
    "sha256, received_at, kind, event_type, message_type, conversation_id, replica_id, "
    "video_id, status, timestamp, body, remote_addr, user_agent"
)
REJECTED = (
    "received_at, reason, status, content_type, size, body, truncated, remote_addr, user_agent"
)


@pytest.fixture
def history(tmp_path):
    """A SQLite file with demo data, two refused bodies and collector-set columns."""
    db = tmp_path / "laptop.db"
    demo.write(db, conversations=60, seed=3)
    with Store(db) as s:
        s.insert_callback(
            json.dumps(SHUTDOWN_EXAMPLE).encode(),
            received_at="2025-07-11T06:48:38.000Z",
            remote_addr="203.0.113.9",
            user_agent="Tavus-Webhook/1",
        )
        s.insert_rejected("body is empty", 400, b"", user_agent="curl/8")
        s.insert_rejected("too large", 413, b"\x00\xff" * 40_000, size=200_000, content_type="x/y")
    return db


def sqlite_rows(db):
    callbacks = sorted(query(db, f"SELECT {COLUMNS} FROM callbacks"))
    rejected = query(db, f"SELECT {REJECTED} FROM rejected ORDER BY id")
    return callbacks, rejected


def pg_rows(url):
    callbacks = sorted(pg_query(url, f"SELECT {COLUMNS} FROM callbacks"))
    rejected = [
        (*r[:5], bytes(r[5]), *r[6:])
        for r in pg_query(url, f"SELECT {REJECTED} FROM rejected ORDER BY id")
    ]
    return callbacks, rejected


def test_sqlite_to_postgres_keeps_every_column(history, pg_url):
    result = copy_history(history, pg_url, chunk=100)
    callbacks, rejected = sqlite_rows(history)
    assert (result.callbacks, result.stored, result.duplicate) == (len(callbacks),) * 2 + (0,)
    assert result.rejected == 2
    assert pg_rows(pg_url) == (callbacks, rejected)
    # and the jsonb copy is there for querying
    assert pg_query(pg_url, "SELECT count(*) FROM callbacks WHERE body_json IS NULL") == [(0,)]


def test_a_second_run_copies_nothing(history, pg_url):
    copy_history(history, pg_url, chunk=100)
    before = pg_rows(pg_url)
    again = copy_history(history, pg_url, chunk=100)
    assert (again.callbacks, again.stored, again.rejected) == (0, 0, 0)
    assert again.resumed_from[0] == query(history, "SELECT max(id) FROM callbacks")[0][0]
    assert pg_rows(pg_url) == before


def test_an_interrupted_copy_resumes_where_it_stopped(history, pg_url):
    calls = []

    def interrupt(n):
        calls.append(n)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        copy_history(history, pg_url, chunk=50, on_progress=interrupt)
    partial = pg_query(pg_url, "SELECT count(*) FROM callbacks")[0][0]
    assert partial == 100  # two transactions of 50 committed, nothing of the third
    rest = copy_history(history, pg_url, chunk=50)
    callbacks, rejected = sqlite_rows(history)
    assert rest.resumed_from[0] > 0 and rest.callbacks == len(callbacks) - 100
    assert pg_rows(pg_url) == (callbacks, rejected)  # the rejected bodies only once


def test_callbacks_the_target_holds_are_duplicates(history, pg_url):
    with PgStore(pg_url) as pg:
        pg.insert_callback(json.dumps(SHUTDOWN_EXAMPLE).encode())
    result = copy_history(history, pg_url)
    assert result.duplicate == 1
    assert result.stored == result.callbacks - 1
    assert pg_query(pg_url, "SELECT count(*) FROM callbacks")[0][0] == result.callbacks


def test_postgres_back_to_sqlite_and_merging_two_files(history, pg_url, tmp_path):
    copy_history(history, pg_url)
    back = tmp_path / "back.db"
    copy_history(pg_url, back, chunk=77)
    assert sqlite_rows(back) == sqlite_rows(history)
    other = tmp_path / "other.db"
    demo.write(other, conversations=10, seed=99)
    merged = copy_history(other, back)
    assert merged.stored + merged.duplicate == merged.callbacks > 0
    n = query(back, "SELECT count(*) FROM callbacks")[0][0]
    assert n == len(sqlite_rows(history)[0]) + merged.stored


def test_errors_are_clear(history, tmp_path):
    with pytest.raises(DatabaseNotFound):
        copy_history(tmp_path / "missing.db", tmp_path / "x.db")
    with pytest.raises(TavusAnalyticsError, match="same database"):
        copy_history(history, str(history.parent / "." / history.name))
    assert source_key("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"


def test_cli_prints_counts_and_never_the_password(history, pg_url):
    password = pg_url.split("@")[0].rsplit(":", 1)[1]
    first = run("migrate", "--from", history, "--to", pg_url)
    assert first.exit_code == 0, first.output
    assert password not in first.output
    n = query(history, "SELECT count(*) FROM callbacks")[0][0]
    assert f"{n} callbacks read, {n} stored, 0 duplicates already there" in first.output
    assert "2 rejected bodies copied" in first.output
    second = run("migrate", "--from", history, "--to", pg_url)
    assert second.exit_code == 0 and "0 callbacks read" in second.output
    assert "resumed after callback" in second.output
    missing = run("migrate", "--from", history.parent / "nope.db", "--to", pg_url)
    assert missing.exit_code != 0 and "nope.db" in missing.output


def test_review_labels_follow_the_callbacks_once_with_their_removals(history, pg_url, tmp_path):
    rows = "SELECT conversation_id, label, note, author, created_at, removed_at, removed_by "
    rows += "FROM annotations ORDER BY id"
    cid = query(history, "SELECT conversation_id FROM callbacks WHERE kind = 'conversation'")[0][0]
    with Store(history) as s:
        s.annotate(cid, label="escalated", note="manager", author="ana")
        s.annotate("c123456", label="refund", author="bo")
        gone = s.annotate(cid, note="wrong call", author="ana")
        s.remove_annotation(gone, author="lead")
    first = copy_history(history, pg_url)
    assert first.annotations == 3
    assert pg_query(pg_url, rows) == query(history, rows)
    # Run again: nothing new. A label given and one removed since then follow.
    with Store(history) as s:
        s.annotate(cid, label="late", author="bo")
        s.remove_annotation(1, author="lead")
    again = copy_history(history, pg_url)
    assert (again.callbacks, again.annotations) == (0, 1)
    assert pg_query(pg_url, rows) == query(history, rows)
    # And back into a new file, as the CLI says.
    r = run("migrate", "--from", pg_url, "--to", tmp_path / "back.db")
    assert r.exit_code == 0 and ", 4 annotations in " in r.output
    assert query(tmp_path / "back.db", rows) == query(history, rows)
