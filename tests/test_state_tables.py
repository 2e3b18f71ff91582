"""The state tables of live operations, on SQLite and PostgreSQL: ``alert_state`` changes once
per transition even when two checkers race, and ``digest_ledger`` lets a period through once."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from tavus_analytics.store import open_store
from tavus_analytics.store import sqlite as sqlite_store
from tavus_analytics.store.base import ALERT_STATE_COLUMNS, STATE_TABLES


@pytest.fixture(params=["sqlite", "postgres"])
def db(request, tmp_path):
    if request.param == "sqlite":
        return str(tmp_path / "state.db")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store(db):
    s = open_store(db)
    yield s
    s.close()


def test_a_rule_starts_ok_and_keeps_its_last_check(store):
    assert store.alert_states() == []
    store.note_alert_check("failed calls", "2026-11-04T10:00:00.000Z", 0.05, "1 of 20 failed")
    store.note_alert_check("failed calls", "2026-11-04T10:05:00.000Z", 0.1, "2 of 20 failed")
    [row] = store.alert_states()
    assert dict(zip(ALERT_STATE_COLUMNS, row, strict=True)) == {
        "rule": "failed calls",
        "state": "OK",
        "changed_at": "2026-11-04T10:00:00.000Z",
        "checked_at": "2026-11-04T10:05:00.000Z",
        "value": 0.1,
        "detail": "2 of 20 failed",
        "notified": "",
    }


def test_a_change_is_made_once_and_its_notification_recorded(store):
    store.note_alert_check("r", "2026-11-04T10:00:00.000Z", 0.0, "")
    first = store.change_alert_state(
        "r", "2026-11-04T10:00:00.000Z", "FIRING", "2026-11-04T10:05:00.000Z", 0.4, "8 of 20"
    )
    # A second checker saw the same OK row: it loses, and so does not notify.
    second = store.change_alert_state(
        "r", "2026-11-04T10:00:00.000Z", "FIRING", "2026-11-04T10:05:01.000Z", 0.4, "8 of 20"
    )
    assert (first, second) == (True, False)
    store.alert_notified("r", "2026-11-04T10:05:00.000Z", "ops,mail")
    store.alert_notified("r", "2026-11-04T09:00:00.000Z", "stale")  # an older change: ignored
    [row] = store.alert_states()
    assert row[1:3] == ("FIRING", "2026-11-04T10:05:00.000Z") and row[-1] == "ops,mail"
    assert store.change_alert_state(
        "r", "2026-11-04T10:05:00.000Z", "RESOLVED", "2026-11-04T10:10:00.000Z", 0.0, "0 of 20"
    )
    assert store.alert_states()[0][1] == "RESOLVED" and store.alert_states()[0][-1] == ""


def test_racing_checkers_make_one_change(db):
    stores = [open_store(db) for _ in range(4)]
    try:
        stores[0].note_alert_check("r", "t0", 0.0, "")
        won = []
        barrier = threading.Barrier(len(stores))

        def race(s, i):
            barrier.wait()
            won.append(s.change_alert_state("r", "t0", "FIRING", f"t{i + 1}", 1.0, ""))

        threads = [threading.Thread(target=race, args=(s, i)) for i, s in enumerate(stores)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert sorted(won) == [False, False, False, True]
    finally:
        for s in stores:
            s.close()


def test_the_digest_ledger_lets_a_period_through_once(store):
    assert store.claim_digest("week", "2026-10-19", "mail", "2026-10-26T08:00:00Z")
    assert not store.claim_digest("week", "2026-10-19", "mail", "2026-10-26T09:00:00Z")
    assert store.claim_digest("week", "2026-10-19", "ops", "2026-10-26T08:00:01Z")
    assert store.claim_digest("day", "2026-10-19", "mail", "2026-10-20T08:00:00Z")
    assert store.digests_sent("week", "2026-10-19") == {
        "mail": "2026-10-26T08:00:00Z",
        "ops": "2026-10-26T08:00:01Z",
    }
    store.release_digest("week", "2026-10-19", "ops")  # its sending failed: try again later
    assert store.claim_digest("week", "2026-10-19", "ops", "2026-10-26T09:00:00Z")


def test_an_older_sqlite_database_gains_the_state_tables(tmp_path):
    db = tmp_path / "old.db"
    s = open_store(db)
    s.connection()
    s.close()
    conn = sqlite3.connect(db)
    for table in STATE_TABLES:
        conn.execute(f"DROP TABLE {table}")
    conn.execute(f"PRAGMA user_version = {sqlite_store.SCHEMA_VERSION - 1}")
    conn.commit()
    conn.close()
    s = open_store(db)
    try:
        assert s.claim_digest("week", "2026-10-19", "mail", "now")  # migrated on first use
    finally:
        s.close()
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA user_version").fetchone() == (sqlite_store.SCHEMA_VERSION,)
    finally:
        conn.close()
