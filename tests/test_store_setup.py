"""A SQLite store opened beside another process that is creating or migrating the same new
database waits for it, however short its busy timeout: the busy timeout is a write's wait."""

from __future__ import annotations

import sqlite3
import threading

from tavus_analytics.store import Store
from tavus_analytics.store import sqlite as sqlite_store

#: Longer than the busy timeout of the stores below, far shorter than the setup wait.
HOLD_S = 0.3
BUSY_MS = 50


def _opened_and_migrated(db) -> tuple[int, int]:
    """(schema version, busy timeout) of a store with a short busy timeout, opened on ``db``."""
    with Store(db, busy_timeout_ms=BUSY_MS) as store:
        conn = store.connection()
        return (
            conn.execute("PRAGMA user_version").fetchone()[0],
            conn.execute("PRAGMA busy_timeout").fetchone()[0],
        )


def test_opening_waits_for_another_process_creating_the_database(tmp_path):
    db = tmp_path / "new.db"
    other = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN EXCLUSIVE")  # as a process does while it makes the file a database
    release = threading.Timer(HOLD_S, lambda: other.execute("ROLLBACK"))
    release.start()
    try:
        assert _opened_and_migrated(db) == (sqlite_store.SCHEMA_VERSION, BUSY_MS)
    finally:
        release.join()
        other.close()


def test_migrating_waits_for_another_process_migrating_the_database(tmp_path, monkeypatch):
    db = tmp_path / "new.db"
    inside, release = threading.Event(), threading.Event()
    last = sqlite_store.MIGRATIONS[-1]

    def slow(database):
        inside.set()
        release.wait(30)
        last(database)

    monkeypatch.setattr(sqlite_store, "MIGRATIONS", [*sqlite_store.MIGRATIONS[:-1], slow])
    first = Store(db)
    migrating = threading.Thread(target=first.connection)
    migrating.start()
    try:
        assert inside.wait(30)  # the first store holds the write lock, in its last migration
        timer = threading.Timer(HOLD_S, release.set)
        timer.start()
        assert _opened_and_migrated(db) == (sqlite_store.SCHEMA_VERSION, BUSY_MS)
        timer.join()
    finally:
        release.set()
        migrating.join(30)
        first.close()
