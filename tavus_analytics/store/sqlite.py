"""The SQLite schema and the only code that writes it.

Two tables, both append-only:

``callbacks``
    One row per distinct callback body accepted (deduplicated by the SHA-256 of the raw bytes).
    ``body`` holds the body exactly as received (valid UTF-8 JSON, stored as TEXT so that
    SQLite's JSON functions read it); the other columns are copies of the envelope fields, for
    indexing only.
``rejected``
    What was refused (not JSON, not an object, empty, too large), kept as evidence: the reason, the
    HTTP status answered, and at most the first 64 KiB of the body as a BLOB.

Beside them, ``transcript_fts`` (FTS5 over transcript messages, brought up to date by
:meth:`Store.index_transcripts`, off the collector's write path), read-only SQL views, and
``annotations``: the review labels and notes people give conversations (:meth:`Store.annotate`),
kept apart from ``callbacks``, which they never touch.
:meth:`Store.index_transcripts`, off the collector's write path), read-only SQL views, and the
state of live operations: ``alert_state`` (each alert rule's state) and ``digest_ledger``
(which digests were sent), written by :mod:`tavus_analytics.alerts` and
:mod:`tavus_analytics.digest`, never by the collector's hot path.

The schema version is SQLite's ``PRAGMA user_version``; :data:`MIGRATIONS` brings any older
database up to date on open. Writes are ``BEGIN IMMEDIATE ... COMMIT`` transactions on a WAL
database with ``synchronous=FULL``: once a write method returns, the row survives a crash of the
process or of the machine. Concurrent :meth:`Store.insert_callback` calls are committed in
groups: each thread queues its row, and whichever thread holds the writer lock commits every
queued row in one transaction (one fsync), then each caller returns its own row's result. In a
process, writers take turns on a Python lock, and between processes on a file lock beside the
database (``DB-writelock``), rather than sleeping in SQLite's busy handler; the busy timeout
still bounds every wait. Errors that mean "cannot write now"
(locked past the busy timeout, read-only, disk full, I/O error) are raised as
:class:`StoreUnavailable`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlite_utils

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

from ..errors import (
    DatabaseNotFound,
    InvalidCallback,
    NotOurDatabase,
    StoreUnavailable,
)
from ..events import Fields
from . import views
from .base import (
    ALERT_STATE_TABLE,
    CALLBACK_COLUMNS,
    DIGEST_LEDGER_TABLE,
    READ_CHUNK,
    RECLASSIFY_WHERE,
    REJECTED_COLUMNS,
    BatchResult,
    LiveState,
    Query,
    accept,
    annotation_values,
    annotations_query,
    author_name,
    callback_row,
    no_annotation,
    no_conversation,
    reclassified,
    rejected_row,
    status_summary,
    utc_now,
)
from .queries import FIRST_CALLBACK, INDEXED_KINDS
from .search import invalid_query, phrase_query

#: :meth:`Store.check_writable` reports a disk with less free space than this as full.
MIN_FREE_BYTES = 1024 * 1024
#: How long opening a database and bringing its schema up to date wait, at least, for another
#: process doing the same (the default busy timeout): a shorter busy timeout is a write's wait
#: for another writer, and a collector started beside another on a new database does not give up
#: while the other one creates and migrates it.
SETUP_WAIT_MS = 5_000


_INSERT_CALLBACK = (
    f"INSERT INTO callbacks ({', '.join(CALLBACK_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in CALLBACK_COLUMNS)}) "
    "ON CONFLICT(sha256) DO NOTHING RETURNING id"
)
_INSERT_DELIVERY = (
    "INSERT INTO deliveries (callback_id, received_at, remote_addr, user_agent) VALUES (?, ?, ?, ?)"
)
_SAME_EVENT = (
    "SELECT 1 FROM callbacks WHERE conversation_id = ? AND event_type = ? AND timestamp = ? LIMIT 1"
)
_INSERT_REJECTED = (
    f"INSERT INTO rejected ({', '.join(REJECTED_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in REJECTED_COLUMNS)})"
)


def _migration_1(db: sqlite_utils.Database) -> None:
    db["callbacks"].create(
        {
            "id": int,
            "received_at": str,
            "kind": str,
            "event_type": str,
            "message_type": str,
            "conversation_id": str,
            "replica_id": str,
            "video_id": str,
            "status": str,
            "timestamp": str,
            "body": str,
            "sha256": str,
            "remote_addr": str,
            "user_agent": str,
        },
        pk="id",
        not_null={"received_at", "kind", "body", "sha256"},
    )
    db["callbacks"].create_index(["sha256"], unique=True)
    db["callbacks"].create_index(["conversation_id"])
    db["callbacks"].create_index(["event_type"])
    db["callbacks"].create_index(["received_at"])
    db["rejected"].create(
        {
            "id": int,
            "received_at": str,
            "reason": str,
            "status": int,
            "content_type": str,
            "size": int,
            "body": bytes,
            "truncated": int,
            "remote_addr": str,
            "user_agent": str,
        },
        pk="id",
        not_null={"received_at", "reason", "status"},
    )
    db["rejected"].create_index(["received_at"])


# A body when it is valid JSON holding a transcript list, else NULL (json_each(NULL) is
# empty). CASE, unlike AND, is documented to evaluate only the branch it takes.
_TRANSCRIPT_OF = (
    "CASE WHEN json_valid({b}) THEN CASE WHEN json_type({b}, '$.properties.transcript') "
    "= 'array' THEN {b} END END"
)
_MESSAGE_COLUMNS = (
    "CAST(m.key AS INTEGER) AS turn, "
    "CASE WHEN m.type = 'object' THEN json_extract(m.value, '$.role') END AS role, "
    "CASE WHEN m.type = 'object' THEN CASE WHEN json_type(m.value, '$.content') = 'text' "
    "THEN json_extract(m.value, '$.content') END END AS content"
)
#: Index the transcript messages of callbacks with ids in (:after, :upto].
_INDEX_TRANSCRIPTS = (
    "INSERT INTO transcript_fts (content, role, conversation_id, callback_id, turn) "
    "SELECT content, role, conversation_id, callback_id, turn FROM ("
    f"SELECT c.conversation_id, c.id AS callback_id, {_MESSAGE_COLUMNS} "
    f"FROM callbacks AS c, json_each({_TRANSCRIPT_OF.format(b='c.body')}, "
    "'$.properties.transcript') AS m "
    "WHERE c.event_type = 'application.transcription_ready' AND c.id > :after AND c.id <= :upto"
    ") WHERE role IN ('user', 'assistant') AND content <> '' ORDER BY callback_id, turn"
)


def _migration_2(db: sqlite_utils.Database) -> None:
    """Full-text search over transcript messages, and readable SQL views.

    ``transcript_fts`` (FTS5) holds one row per user or assistant message (with text content) of
    every stored ``application.transcription_ready`` callback: ``content`` (indexed), ``role``,
    ``conversation_id``, ``callback_id`` and ``turn`` (the message's index in the transcript
    list, 0 being the system prompt), tokenized with Porter stemming (``refund`` matches
    "Refunds") without accents. The trigger ``callbacks_transcript_fts`` fills it on each
    INSERT into ``callbacks``; it only acts on bodies that are valid JSON with a transcript
    list, so that no body can make the collector's INSERT fail. Existing rows are indexed here.

    (This migration also made the first SQL views; views are derived, and are now made by
    :func:`refresh_views` whenever their definition changes.)
    """
    run = db.execute
    transcript_of = _TRANSCRIPT_OF
    message_columns = _MESSAGE_COLUMNS
    run(
        "CREATE VIRTUAL TABLE transcript_fts USING fts5(content, role UNINDEXED, "
        "conversation_id UNINDEXED, callback_id UNINDEXED, turn UNINDEXED, "
        "tokenize = 'porter unicode61 remove_diacritics 2')"
    )
    run(
        "INSERT INTO transcript_fts (content, role, conversation_id, callback_id, turn) "
        "SELECT content, role, conversation_id, callback_id, turn FROM ("
        f"SELECT c.conversation_id, c.id AS callback_id, {message_columns} "
        f"FROM callbacks AS c, json_each({transcript_of.format(b='c.body')}, "
        "'$.properties.transcript') AS m "
        "WHERE c.event_type = 'application.transcription_ready'"
        ") WHERE role IN ('user', 'assistant') AND content <> '' ORDER BY callback_id, turn"
    )
    run(
        "CREATE TRIGGER callbacks_transcript_fts AFTER INSERT ON callbacks "
        "WHEN new.event_type = 'application.transcription_ready' "
        "AND CASE WHEN json_valid(new.body) "
        "THEN json_type(new.body, '$.properties.transcript') = 'array' ELSE 0 END "
        "BEGIN "
        "INSERT INTO transcript_fts (content, role, conversation_id, callback_id, turn) "
        "SELECT content, role, new.conversation_id, new.id, turn FROM ("
        f"SELECT {message_columns} FROM json_each(new.body, '$.properties.transcript') AS m"
        ") WHERE role IN ('user', 'assistant') AND content <> ''; "
        "END"
    )


#: ``MIGRATIONS[n]`` brings a database at version ``n`` to version ``n + 1``.
def _migration_3(db: sqlite_utils.Database) -> None:
    """Take the transcript index off the write path.

    The trigger of migration 2 parsed every transcript inside the collector's write transaction.
    ``transcript_fts`` is now brought up to date by :meth:`Store.index_transcripts` (which
    ``search`` calls first); ``transcript_fts_state`` remembers the last callback indexed.
    """
    db.execute("DROP TRIGGER IF EXISTS callbacks_transcript_fts")
    db.execute(
        "CREATE TABLE transcript_fts_state (id INTEGER PRIMARY KEY CHECK (id = 1), "
        "last_callback_id INTEGER NOT NULL)"
    )
    db.execute(
        "INSERT INTO transcript_fts_state (id, last_callback_id) "
        "SELECT 1, coalesce(max(id), 0) FROM callbacks"
    )


def _migration_4(db: sqlite_utils.Database) -> None:
    """What ``tavus-analytics migrate`` has copied into this database from each source."""
    db.execute(
        "CREATE TABLE copy_progress (source TEXT PRIMARY KEY, "
        "callbacks_upto INTEGER NOT NULL DEFAULT 0, rejected_upto INTEGER NOT NULL DEFAULT 0, "
        "updated_at TEXT NOT NULL)"
    )


def _migration_5(db: sqlite_utils.Database) -> None:
    """Which definition the SQL views were made from (:func:`refresh_views`)."""
    db.execute(
        "CREATE TABLE derived_views (id INTEGER PRIMARY KEY CHECK (id = 1), "
        "fingerprint TEXT NOT NULL)"
    )


def _migration_6(db: sqlite_utils.Database) -> None:
    """Every delivery, and the kinds of 2026.

    ``deliveries`` holds one row per arrival of a stored callback (the first one included): a
    guardrail posts the same body each time it is triggered, and each of those is an event.
    Existing callbacks get their one known delivery. Callbacks stored before objectives,
    guardrails and canvas interactions had kinds of their own are classified again from their
    bodies (only the ``kind`` index column changes; the body never does).
    """
    db.execute(
        "CREATE TABLE deliveries (id INTEGER PRIMARY KEY, "
        "callback_id INTEGER NOT NULL REFERENCES callbacks (id), received_at TEXT NOT NULL, "
        "remote_addr TEXT, user_agent TEXT)"
    )
    db.execute("CREATE INDEX deliveries_callback_id ON deliveries (callback_id)")
    for kind in INDEXED_KINDS:  # few callbacks of these kinds: found without a table scan
        db.execute(
            f"CREATE INDEX callbacks_{kind} ON callbacks (conversation_id) WHERE kind = '{kind}'"
        )
    db.execute(
        "INSERT INTO deliveries (callback_id, received_at, remote_addr, user_agent) "
        "SELECT id, received_at, remote_addr, user_agent FROM callbacks ORDER BY id"
    )
    rows = db.execute(f"SELECT id, body, kind FROM callbacks WHERE {RECLASSIFY_WHERE}").fetchall()
    db.conn.executemany("UPDATE callbacks SET kind = ? WHERE id = ?", reclassified(rows))


def _migration_7(db: sqlite_utils.Database) -> None:
    """Review labels and notes: ``annotations`` holds one row per label or note a person gave a
    conversation, with who and when; removing one marks it (``removed_at``, ``removed_by``)
    rather than deleting it. ``callbacks`` is not touched."""
    db.execute(
        "CREATE TABLE annotations (id INTEGER PRIMARY KEY, conversation_id TEXT NOT NULL, "
        "label TEXT, note TEXT, author TEXT NOT NULL, created_at TEXT NOT NULL, "
        "removed_at TEXT, removed_by TEXT, CHECK (label IS NOT NULL OR note IS NOT NULL))"
    )
    db.execute("CREATE INDEX annotations_conversation_id ON annotations (conversation_id)")


def _migration_8(db: sqlite_utils.Database) -> None:
    """The state of live operations (:data:`~tavus_analytics.store.base.STATE_TABLES`).

    ``alert_state`` holds each alert rule's state (``OK``, ``FIRING``, ``RESOLVED``), when it
    changed and which channels were told, so that each change is notified once;
    ``digest_ledger`` which period's digest went to which channel, so that a scheduled digest
    is sent once. Neither is derived from the callbacks, and neither is copied by ``migrate``.
    """
    db.execute(ALERT_STATE_TABLE.format(text="TEXT", real="REAL"))
    db.execute(DIGEST_LEDGER_TABLE.format(text="TEXT"))


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    _migration_1,
    _migration_2,
    _migration_3,
    _migration_4,
    _migration_5,
    _migration_6,
    _migration_7,
    _migration_8,
]
SCHEMA_VERSION = len(MIGRATIONS)

_VIEWS_FINGERPRINT = views.fingerprint(views.SQLITE)


def _views_current(conn: sqlite3.Connection) -> bool:
    row = conn.execute("SELECT fingerprint FROM derived_views").fetchone()
    return row is not None and row[0] == _VIEWS_FINGERPRINT


def refresh_views(conn: sqlite3.Connection) -> None:
    """Make every SQL view of :mod:`tavus_analytics.store.views` again, inside the caller's
    write transaction, and remember their fingerprint."""
    for name in views.VIEWS:
        conn.execute(f"DROP VIEW IF EXISTS {name}")
    for sql in views.statements(views.SQLITE):
        conn.execute(sql)
    conn.execute(
        "INSERT INTO derived_views (id, fingerprint) VALUES (1, ?) "
        "ON CONFLICT (id) DO UPDATE SET fingerprint = excluded.fingerprint",
        (_VIEWS_FINGERPRINT,),
    )


def _refuse_foreign(conn: sqlite3.Connection, path: Path) -> None:
    """Raise :class:`NotOurDatabase` when a database without our schema already holds tables:
    tavus-analytics never creates its tables in another program's database."""
    names = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name"
        )
    ]
    if names:
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        raise NotOurDatabase(
            f"{path} is a SQLite database of another program (tables {shown}), not a "
            "tavus-analytics database: give --db a new file, or the collector's database"
        )


def check_ours(path: Path) -> None:
    """Raise unless ``path`` is a tavus-analytics database, reading it without changing it:
    :class:`DatabaseNotFound` when it does not exist, :class:`NotOurDatabase` when it is empty,
    not a SQLite file, or another program's database."""
    if not path.is_file():
        raise DatabaseNotFound(path)
    if path.stat().st_size == 0:
        raise NotOurDatabase(
            f"{path} is an empty file, not a tavus-analytics database: make one with "
            f"tavus-analytics demo --db {path} (demo data) or tavus-analytics serve --db {path}"
        )
    uri = "file:" + quote(str(path.resolve())) + "?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as e:
        raise NotOurDatabase(f"cannot open {path}: {e}") from None
    try:
        ours = conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'callbacks'"
        ).fetchone()[0]
    except sqlite3.DatabaseError as e:
        raise _not_sqlite(path, e) from None
    finally:
        conn.close()
    if not ours:
        conn = sqlite3.connect(uri, uri=True)
        try:
            _refuse_foreign(conn, path)
        finally:
            conn.close()
        raise NotOurDatabase(f"{path} is not a tavus-analytics database (it has no tables)")


def _not_sqlite(path: Path, error: Exception) -> NotOurDatabase:
    return NotOurDatabase(
        f"{path} is not a SQLite database ({error}): point --db or TAVUS_ANALYTICS_DB at the "
        "collector's database"
    )


_UNAVAILABLE_MARKERS = (
    "locked",
    "busy",
    "readonly",
    "read-only",
    "full",
    "disk i/o",
    "unable to open",
    "cannot commit",
)


def _unavailable(exc: sqlite3.Error) -> StoreUnavailable:
    msg = str(exc)
    low = msg.lower()
    if any(m in low for m in _UNAVAILABLE_MARKERS):
        return StoreUnavailable(f"database cannot be written right now: {msg}")
    return StoreUnavailable(f"database error: {msg}")


@contextmanager
def _immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``; rolled back if anything in the block raises."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class _Pending:
    """A callback row waiting for a group commit, and what became of it."""

    __slots__ = ("row", "result", "error", "done")

    def __init__(self, row: tuple) -> None:
        self.row = row
        self.result: tuple[int, bool] | None = None
        self.error: BaseException | None = None
        self.done = False


class Store(LiveState):
    """A SQLite database of callbacks, safe to share between threads.

    Each thread gets its own connection (SQLite connections must not be shared). The database
    file and its folder are created, and the schema migrated, on first use.

    Parameters
    ----------
    path : str or Path
        The database file.
    busy_timeout_ms : int
        How long a write waits for another writer before giving up with ``StoreUnavailable``.
    """

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 5000) -> None:
        self.path = Path(path)
        self.name = str(path)
        self.busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._migrated = False
        # Group commit: callbacks queue up; whoever holds the writer lock commits all of them.
        self._writer = threading.Lock()
        self._queue_lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._lock_fd: int | None = None

    # -- connections ------------------------------------------------------------------------
    def connection(self) -> sqlite3.Connection:
        """This thread's connection, opened (and the schema migrated) on first call."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
            if not self._migrated:
                self.migrate(conn)
        return conn

    def _open(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path,
                isolation_level=None,
                check_same_thread=False,
                timeout=self.busy_timeout_ms / 1000,
            )
            conn.execute(f"PRAGMA busy_timeout = {self._setup_wait_ms}")
            if conn.execute("PRAGMA user_version").fetchone()[0] == 0:
                _refuse_foreign(conn, self.path)  # before WAL changes the file's header
            self._wal(conn)  # a read-only file stays as it is; writes will fail and say so
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
        except sqlite3.DatabaseError as e:
            if "not a database" in str(e):
                raise _not_sqlite(self.path, e) from None
            raise StoreUnavailable(f"cannot open database {self.path}: {e}") from None
        except (OSError, sqlite3.Error) as e:
            raise StoreUnavailable(f"cannot open database {self.path}: {e}") from None
        return conn

    def _wal(self, conn: sqlite3.Connection) -> None:
        """Switch to WAL. SQLite answers "locked" at once, without its busy handler, when
        another process is creating the same new database: try again for the setup wait."""
        deadline = time.monotonic() + self._setup_wait_ms / 1000
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL").fetchone()
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)

    def ping(self) -> None:
        """Raise now, without creating anything, what would stand in the way of writing: a
        file that is another program's database or not a database, a database that cannot be
        written. A file that does not exist yet is made on first write: nothing to check."""
        if not self.path.exists():
            return
        self.connection()
        self.check_writable()

    def close(self) -> None:
        """Close every connection this store opened."""
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None
        self._local = threading.local()

    @contextmanager
    def _process_turn(self) -> Iterator[None]:
        """Take turns with the writers of other processes (``--workers``, imports).

        SQLite's own busy handler sleeps 1, 2, 5, 10... ms between tries, which shows in the
        collector's tail latency when two processes write at once. A lock on the file
        ``DB-writelock``, tried every fraction of a millisecond, hands the turn over at once;
        past the busy timeout the write gives up as SQLite would, with :class:`StoreUnavailable`.
        Where file locks are not available (Windows), SQLite's lock alone takes turns.
        """
        fd = self._write_lock_fd()
        if fd is None:
            yield
            return
        deadline = time.monotonic() + self.busy_timeout_ms / 1000
        pause = 0.0001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StoreUnavailable(
                        "database cannot be written right now: another process has been "
                        f"writing for over {self.busy_timeout_ms} ms"
                    ) from None
                time.sleep(pause)
                pause = min(pause * 2, 0.002)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def _write_lock_fd(self) -> int | None:
        if fcntl is None:
            return None
        if self._lock_fd is None:
            with self._lock:
                if self._lock_fd is None:
                    try:
                        self._lock_fd = os.open(
                            str(self.path) + "-writelock", os.O_RDWR | os.O_CREAT, 0o600
                        )
                    except OSError:
                        return None  # a read-only folder: the write itself will say so
        return self._lock_fd

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- schema -----------------------------------------------------------------------------
    def migrate(self, conn: sqlite3.Connection | None = None) -> int:
        """Bring the schema to :data:`SCHEMA_VERSION`; return the version found before."""
        conn = conn or self.connection()
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreUnavailable(
                    f"database {self.path} has schema version {version}, newer than this "
                    f"tavus-analytics understands ({SCHEMA_VERSION}): upgrade tavus-analytics"
                )
            if version < SCHEMA_VERSION or not _views_current(conn):
                with self._setup_wait(conn), _immediate(conn):
                    # Re-read under the write lock: another process may have migrated meanwhile.
                    current = conn.execute("PRAGMA user_version").fetchone()[0]
                    if current == 0:
                        _refuse_foreign(conn, self.path)
                    db = sqlite_utils.Database(conn)
                    for step in MIGRATIONS[current:]:
                        step(db)
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                    if not _views_current(conn):  # views are derived: made again when changed
                        refresh_views(conn)
        except sqlite3.Error as e:
            raise _unavailable(e) from None
        self._migrated = True
        return version

    @property
    def _setup_wait_ms(self) -> int:
        return int(max(self.busy_timeout_ms, SETUP_WAIT_MS))

    @contextmanager
    def _setup_wait(self, conn: sqlite3.Connection) -> Iterator[None]:
        """The busy timeout of ``conn`` is the setup wait for the block (a migration)."""
        conn.execute(f"PRAGMA busy_timeout = {self._setup_wait_ms}")
        try:
            yield
        finally:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")

    # -- writes -----------------------------------------------------------------------------
    def insert_callback(
        self,
        body: bytes,
        fields: Fields | None = None,
        *,
        received_at: str | None = None,
        remote_addr: str | None = None,
        user_agent: str | None = None,
    ) -> tuple[int, bool]:
        """Store one accepted callback body; return ``(row id, duplicate)``.

        ``fields`` is the body's :func:`~tavus_analytics.events.classify` result (parsed here
        when not given). A body already stored (same SHA-256) is not stored again: the id of the
        first copy comes back with ``duplicate=True``. The row is committed before this returns.
        """
        if fields is None:
            fields = accept(body)
        pending = _Pending(callback_row(body, fields, received_at, remote_addr, user_agent))
        with self._queue_lock:
            self._queue.append(pending)
        with self._writer:
            # While this thread waited, the previous holder may have committed our row too.
            if not pending.done:
                with self._queue_lock:
                    group, self._queue = self._queue, []
                self._commit_group(group)
        if pending.error is not None:
            raise pending.error
        return pending.result

    def _commit_group(self, group: list[_Pending]) -> None:
        """Insert every queued row in one transaction: one fsync for all of them."""
        try:
            conn = self.connection()
            with self._process_turn(), _immediate(conn):
                results = [self._insert_delivered(conn, p.row) for p in group]
        except sqlite3.Error as e:
            error: BaseException = _unavailable(e)
        except StoreUnavailable as e:
            error = e
        except Exception as e:  # a row that cannot be written fails its whole group
            error = e
        else:
            for p, result in zip(group, results, strict=True):
                p.result, p.done = result, True
            return
        for p in group:
            p.error, p.done = error, True

    def insert_batch(
        self,
        bodies: Iterable[bytes | tuple[bytes, str | None]],
        *,
        remote_addr: str | None = None,
        user_agent: str | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> BatchResult:
        """Store many callback bodies in one transaction (all or nothing).

        Each item is a raw body, or ``(body, received_at)``. Bodies that are not JSON objects go
        to ``rejected`` (in the same transaction), exactly as the collector would refuse them.
        Each item stored is a delivery; an item that repeats one stored earlier in the same batch
        is a delivery too (a guardrail triggered twice), one already stored before the batch is
        not (importing a file again adds nothing).
        """
        result = BatchResult()
        conn = self.connection()
        new_ids: set[int] = set()
        try:
            with self._writer, self._process_turn(), _immediate(conn):
                for n, item in enumerate(bodies, 1):
                    body, received_at = item if isinstance(item, tuple) else (item, None)
                    try:
                        fields = accept(body)
                    except InvalidCallback as e:
                        conn.execute(
                            _INSERT_REJECTED,
                            rejected_row(
                                str(e),
                                400,
                                body,
                                len(body),
                                None,
                                remote_addr,
                                user_agent,
                                received_at,
                            ),
                        )
                        result.rejected += 1
                    else:
                        row = callback_row(body, fields, received_at, remote_addr, user_agent)
                        cb_id, duplicate = self._insert_row(conn, row)
                        if duplicate:
                            result.duplicate += 1
                        else:
                            result.stored += 1
                            new_ids.add(cb_id)
                        if cb_id in new_ids:
                            conn.execute(_INSERT_DELIVERY, (cb_id, row[0], row[11], row[12]))
                    if on_progress is not None and n % 1000 == 0:
                        on_progress(1000)
        except sqlite3.Error as e:
            raise _unavailable(e) from None
        return result

    def index_transcripts(self, *, chunk: int = 2000) -> int:
        """Bring the full-text index ``transcript_fts`` up to date; return the messages indexed.

        Transcripts stored since the last call are indexed in transactions of at most ``chunk``
        callbacks, so that a running collector waits at most one short transaction.
        """
        conn = self.connection()
        done = 0
        try:
            while True:
                with self._writer, self._process_turn(), _immediate(conn):
                    after = conn.execute(
                        "SELECT last_callback_id FROM transcript_fts_state"
                    ).fetchone()[0]
                    upto = conn.execute(
                        "SELECT max(id) FROM (SELECT id FROM callbacks WHERE id > ? "
                        "ORDER BY id LIMIT ?)",
                        (after, chunk),
                    ).fetchone()[0]
                    if upto is None:
                        return done  # nothing new: the empty transaction commits
                    cur = conn.execute(_INDEX_TRANSCRIPTS, {"after": after, "upto": upto})
                    conn.execute("UPDATE transcript_fts_state SET last_callback_id = ?", (upto,))
                done += max(cur.rowcount, 0)
        except sqlite3.Error as e:
            raise _unavailable(e) from None

    def insert_rejected(
        self,
        reason: str,
        status: int,
        body: bytes,
        *,
        size: int | None = None,
        content_type: str | None = None,
        remote_addr: str | None = None,
        user_agent: str | None = None,
        received_at: str | None = None,
    ) -> int:
        """Keep a refused body as evidence (at most its first 64 KiB); return the row id."""
        row = rejected_row(
            reason,
            status,
            body,
            len(body) if size is None else size,
            content_type,
            remote_addr,
            user_agent,
            received_at,
        )
        try:
            with self._writer, self._process_turn():
                return self.connection().execute(_INSERT_REJECTED, row).lastrowid
        except sqlite3.Error as e:
            raise _unavailable(e) from None

    @classmethod
    def _insert_delivered(cls, conn: sqlite3.Connection, row: tuple) -> tuple[int, bool]:
        """Insert a callback row (or find its first copy) and record this delivery of it."""
        result = cls._insert_row(conn, row)
        conn.execute(_INSERT_DELIVERY, (result[0], row[0], row[11], row[12]))
        return result

    @staticmethod
    def _insert_row(conn: sqlite3.Connection, row: tuple) -> tuple[int, bool]:
        got = conn.execute(_INSERT_CALLBACK, row).fetchone()
        if got is not None:
            return got[0], False
        first = conn.execute("SELECT id FROM callbacks WHERE sha256 = ?", (row[10],)).fetchone()
        return first[0], True

    def same_event(self, key: tuple[str, str, str]) -> bool:
        """Whether a callback with this (conversation, event type, timestamp) is stored; inside
        :meth:`insert_batch` (same thread, same connection), rows stored earlier count."""
        return self.connection().execute(_SAME_EVENT, key).fetchone() is not None

    def select_bodies(
        self,
        *,
        since: str | None = None,
        until: str | None = None,
        event_types: Sequence[str] = (),
        conversations: Sequence[str] = (),
    ) -> list[tuple[int, str]]:
        """``(id, body)`` of the callbacks that arrived in [since, until) (ISO 8601 UTC text),
        of these event types and conversations (all when empty), in arrival order."""
        where, args = [], []
        if since is not None:
            where.append("julianday(received_at) >= julianday(?)")
            args.append(since)
        if until is not None:
            where.append("julianday(received_at) < julianday(?)")
            args.append(until)
        if event_types:
            where.append(f"event_type IN ({', '.join('?' for _ in event_types)})")
            args.extend(event_types)
        if conversations:
            where.append(f"conversation_id IN ({', '.join('?' for _ in conversations)})")
            args.extend(conversations)
        sql = "SELECT id, body FROM callbacks"
        if where:
            sql += " WHERE " + " AND ".join(where)
        try:
            return self.connection().execute(sql + " ORDER BY id", args).fetchall()
        except sqlite3.Error as e:
            raise _unavailable(e) from None

    # -- full-text search -----------------------------------------------------------------
    def search_messages(
        self,
        query: str,
        *,
        role: str | None = None,
        conversation: str | None = None,
        limit: int | None = 20,
        fts: bool = False,
        before: str = "[",
        after: str = "]",
    ) -> list[tuple]:
        """Rows of :data:`~tavus_analytics.store.search.SEARCH_COLUMNS` for the transcript
        messages matching ``query`` (an FTS5 query with ``fts``, else a phrase), best first;
        the index is brought up to date first. See :func:`tavus_analytics.store.search.search`.
        """
        match = query if fts else phrase_query(query)
        filters, args = "", {"q": match, "before": before, "after": after}
        if role is not None:
            filters += " AND role = :role"
            args["role"] = role
        if conversation is not None:
            filters += " AND conversation_id = :conversation"
            args["conversation"] = conversation
        sql = (
            "SELECT conversation_id, turn, role, "
            "snippet(transcript_fts, 0, :before, :after, '…', 16) AS snippet, content, "
            "callback_id, rank AS score FROM transcript_fts "
            f"WHERE transcript_fts MATCH :q{filters} AND rowid IN ("
            "SELECT min(rowid) FROM transcript_fts "
            f"WHERE transcript_fts MATCH :q{filters} GROUP BY conversation_id, turn, content) "
            "ORDER BY rank, conversation_id, turn"
        )
        if limit is not None:
            sql += " LIMIT :limit"
            args["limit"] = int(limit)
        self.index_transcripts()
        conn = self.connection()
        previous = conn.text_factory
        # A transcript may hold a lone surrogate escape, which SQLite turns into bytes that are
        # not UTF-8: show them as U+FFFD rather than fail.
        conn.text_factory = _replace_invalid
        try:
            return conn.execute(sql, args).fetchall()
        except sqlite3.OperationalError as e:
            if "fts5" in str(e) or "syntax" in str(e) or "no such column" in str(e):
                raise invalid_query(query, e) from None
            raise
        finally:
            conn.text_factory = previous

    # -- copies (tavus-analytics migrate) ---------------------------------------------------
    def read_callbacks(self, after: int, limit: int) -> list[tuple]:
        """Up to ``limit`` callback rows with id > ``after``: (id, *CALLBACK_COLUMNS)."""
        try:
            return (
                self.connection()
                .execute(
                    f"SELECT id, {', '.join(CALLBACK_COLUMNS)} FROM callbacks WHERE id > ? "
                    "ORDER BY id LIMIT ?",
                    (after, limit),
                )
                .fetchall()
            )
        except sqlite3.Error as e:
            raise _unavailable(e) from None

    def read_deliveries(self, callback_ids: Sequence[int]) -> list[tuple]:
        """The deliveries of these callbacks: (callback id, received_at, remote_addr,
        user_agent), in arrival order."""
        if not callback_ids:
            return []
        try:
            return (
                self.connection()
                .execute(
                    "SELECT callback_id, received_at, remote_addr, user_agent FROM deliveries "
                    f"WHERE callback_id IN ({', '.join('?' for _ in callback_ids)}) ORDER BY id",
                    tuple(callback_ids),
                )
                .fetchall()
            )
        except sqlite3.Error as e:
            raise _unavailable(e) from None

    def read_rejected(self, after: int, limit: int) -> list[tuple]:
        """Up to ``limit`` rejected rows with id > ``after``: (id, *columns)."""
        try:
            return (
                self.connection()
                .execute(
                    "SELECT id, received_at, reason, status, content_type, size, body, truncated, "
                    "remote_addr, user_agent FROM rejected WHERE id > ? ORDER BY id LIMIT ?",
                    (after, limit),
                )
                .fetchall()
            )
        except sqlite3.Error as e:
            raise _unavailable(e) from None

    def count_after(self, callback_id: int, rejected_id: int) -> int:
        """How many callback and rejected rows have ids above these."""
        try:
            return (
                self.connection()
                .execute(
                    "SELECT (SELECT count(*) FROM callbacks WHERE id > ?) "
                    "+ (SELECT count(*) FROM rejected WHERE id > ?)",
                    (callback_id, rejected_id),
                )
                .fetchone()[0]
            )
        except sqlite3.Error as e:
            raise _unavailable(e) from None

    def copy_progress(self, source: str) -> tuple[int, int]:
        """(last callback id, last rejected id) copied from ``source``; (0, 0) at first."""
        try:
            row = (
                self.connection()
                .execute(
                    "SELECT callbacks_upto, rejected_upto FROM copy_progress WHERE source = ?",
                    (source,),
                )
                .fetchone()
            )
        except sqlite3.Error as e:
            raise _unavailable(e) from None
        return (row[0], row[1]) if row else (0, 0)

    def copy_in(
        self,
        source: str,
        callbacks: Sequence[tuple],
        rejected: Sequence[tuple],
        upto: tuple[int, int],
        deliveries: Sequence[tuple] = (),
    ) -> tuple[int, int]:
        """Store rows read from another store and the progress mark, in one transaction.

        ``callbacks`` rows are (id, *CALLBACK_COLUMNS) and keep every column; bodies already
        stored are skipped. ``deliveries`` (source callback id, received_at, remote_addr,
        user_agent) are kept for the callbacks stored here. Returns (callbacks stored, rejected
        stored).
        """
        conn = self.connection()
        stored = 0
        new_ids: dict[int, int] = {}
        try:
            with self._writer, self._process_turn(), _immediate(conn):
                for row in callbacks:
                    cb_id, duplicate = self._insert_row(conn, tuple(row[1:]))
                    stored += not duplicate
                    if not duplicate:
                        new_ids[row[0]] = cb_id
                conn.executemany(
                    _INSERT_DELIVERY,
                    [(new_ids[d[0]], *d[1:]) for d in deliveries if d[0] in new_ids],
                )
                conn.executemany(_INSERT_REJECTED, [tuple(r[1:]) for r in rejected])
                conn.execute(
                    "INSERT INTO copy_progress (source, callbacks_upto, rejected_upto, "
                    "updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (source) DO UPDATE SET "
                    "callbacks_upto = excluded.callbacks_upto, "
                    "rejected_upto = excluded.rejected_upto, updated_at = excluded.updated_at",
                    (source, *upto, utc_now()),
                )
        except sqlite3.Error as e:
            raise _unavailable(e) from None
        return stored, len(rejected)

    # -- reads for the status page ----------------------------------------------------------
    def count_callbacks(self) -> int:
        try:
            return self.connection().execute("SELECT count(*) FROM callbacks").fetchone()[0]
        except sqlite3.Error as e:
            raise _unavailable(e) from None

    def check_writable(self) -> None:
        """Raise :class:`StoreUnavailable` unless a write could be committed now.

        A full disk only shows when a commit needs a new page, which this rolled-back write
        never does: less than :data:`MIN_FREE_BYTES` free beside the database counts as full.
        """
        conn = self.connection()
        try:
            with self._writer, self._process_turn():
                conn.execute("BEGIN IMMEDIATE")
                # Touch the file for real: a read-only database only complains on a write.
                conn.execute("PRAGMA user_version = " + str(SCHEMA_VERSION))
                conn.execute("ROLLBACK")
        except sqlite3.Error as e:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise _unavailable(e) from None
        try:
            free = shutil.disk_usage(self.path.resolve().parent).free
        except OSError:
            return
        if free < MIN_FREE_BYTES:
            raise StoreUnavailable(
                f"database cannot be written right now: the disk is full ({free} bytes free)"
            )

    def summary(self) -> dict:
        """Counts by kind and event type, rejected count and the last arrival, for ``GET /``."""
        try:
            return status_summary(self.connection())
        except sqlite3.Error as e:
            raise _unavailable(e) from None

    # -- canvas interactions, for backfill ---------------------------------------------------
    def canvas_interaction_ids(self, conversation_id: str) -> set[str]:
        """The ``properties.interaction_id`` of every ``canvas.interaction`` callback stored for
        this conversation, read from the body's JSON (an id that is not text is no id); inside
        :meth:`insert_batch` (same thread, same connection), rows stored earlier count."""
        sql = (
            "SELECT DISTINCT json_extract(body, '$.properties.interaction_id') FROM callbacks "
            "WHERE conversation_id = ? AND event_type = 'canvas.interaction' AND CASE "
            "WHEN json_valid(body) THEN json_type(body, '$.properties.interaction_id') END = 'text'"
        )
        try:
            rows = self.connection().execute(sql, (conversation_id,)).fetchall()
        except sqlite3.Error as e:
            raise _unavailable(e) from None
        return {row[0] for row in rows}

    # -- review labels and notes ------------------------------------------------------------
    def annotate(
        self,
        conversation_id: str,
        *,
        label: str | None = None,
        note: str | None = None,
        author: str | None = None,
        created_at: str | None = None,
    ) -> int:
        """Give a conversation a review label, a note or both; return the annotation's id.

        ``author`` defaults to the operating system's user, ``created_at`` to now (ISO 8601
        UTC). :class:`~tavus_analytics.errors.InvalidAnnotation` when neither label nor note is
        given, one is too long, or no callback of the conversation is stored. Only
        ``annotations`` is written.
        """
        row = annotation_values(conversation_id, label, note, author)
        conn = self.connection()
        try:
            with self._writer, self._process_turn(), _immediate(conn):
                if conn.execute(_HAS_CONVERSATION, (row[0],)).fetchone() is None:
                    raise no_conversation(row[0], self.name)
                return conn.execute(
                    "INSERT INTO annotations (conversation_id, label, note, author, created_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (*row, created_at or utc_now()),
                ).lastrowid
        except sqlite3.Error as e:
            raise _unavailable(e) from None

    def remove_annotation(
        self, annotation_id: int, *, author: str | None = None, removed_at: str | None = None
    ) -> bool:
        """Mark an annotation removed, by ``author`` (default: the operating system's user) at
        ``removed_at`` (default now); False when it already was. The row is kept.
        :class:`~tavus_analytics.errors.InvalidAnnotation` when there is no such annotation."""
        who = author_name(author)
        conn = self.connection()
        try:
            with self._writer, self._process_turn(), _immediate(conn):
                cur = conn.execute(
                    "UPDATE annotations SET removed_at = ?, removed_by = ? "
                    "WHERE id = ? AND removed_at IS NULL",
                    (removed_at or utc_now(), who, int(annotation_id)),
                )
                if cur.rowcount:
                    return True
                found = conn.execute(
                    "SELECT 1 FROM annotations WHERE id = ?", (int(annotation_id),)
                ).fetchone()
        except sqlite3.Error as e:
            raise _unavailable(e) from None
        if found is None:
            raise no_annotation(annotation_id, self.name)
        return False

    def read_annotations(
        self, *, conversation_id: str | None = None, include_removed: bool = False
    ) -> list[tuple]:
        """Annotations as rows of :data:`~tavus_analytics.store.base.ANNOTATION_COLUMNS`, oldest
        first: of one conversation or all, the removed ones too with ``include_removed``."""
        sql, args = annotations_query(conversation_id, include_removed)
        try:
            return self.connection().execute(sql, args).fetchall()
        except sqlite3.Error as e:
            raise _unavailable(e) from None

    # -- live operations: alert states and the digest ledger ---------------------------------
    def _state_write(self, sql: str, params: tuple) -> int:
        """Run one write of the state tables in its own transaction; the rows it changed."""
        try:
            with self._writer, self._process_turn():
                conn = self.connection()
                with _immediate(conn):
                    return conn.execute(sql, params).rowcount
        except sqlite3.Error as e:
            raise _unavailable(e) from None

    def _state_read(self, sql: str, params: tuple = ()) -> list[tuple]:
        try:
            return self.connection().execute(sql, params).fetchall()
        except sqlite3.Error as e:
            raise _unavailable(e) from None


_HAS_CONVERSATION = "SELECT 1 FROM callbacks WHERE conversation_id = ? LIMIT 1"


def _replace_invalid(data: bytes) -> str:
    return data.decode("utf-8", "replace")


# -- reading, for the loader ------------------------------------------------------------------
class SqliteReader:
    """Read-only access to one SQLite database, pinned to the rows present when it was opened."""

    engine = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.location = path
        self.name = str(path)
        if not path.is_file():
            raise DatabaseNotFound(path)
        self._immutable = False
        with self.connect() as conn:
            try:
                self.max_id = conn.execute("SELECT coalesce(max(id), 0) FROM callbacks").fetchone()[
                    0
                ]
            except sqlite3.DatabaseError as e:
                raise NotOurDatabase(
                    f"{path} is not a tavus-analytics database ({e}): point --db or "
                    "TAVUS_ANALYTICS_DB at the collector's database, or make one with "
                    "tavus-analytics serve (callbacks) or tavus-analytics demo (demo data)"
                ) from None

    @contextlib.contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        uri = "file:" + quote(str(self.path.resolve())) + "?mode=ro"
        try:
            conn = sqlite3.connect(uri + ("&immutable=1" if self._immutable else ""), uri=True)
            conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        except sqlite3.OperationalError:
            # A WAL database in a folder we cannot write to (no -shm file can be made): nobody
            # can be writing it either, so read it as an immutable file.
            self._immutable = True
            conn = sqlite3.connect(uri + "&immutable=1", uri=True)
        except sqlite3.DatabaseError as e:
            raise _not_sqlite(self.path, e) from None
        try:
            yield conn
        finally:
            conn.close()

    #: Every row at or below ``max_id`` is committed and visible (SQLite has one writer).
    settled = True

    def identity(self) -> dict[str, Any]:
        """What makes this database this one, for a cache of what is derived from it: its file
        (resolved path and inode: a database made again at the same path is a new file), its
        schema version and its first callback. The database is only read."""
        resolved = self.path.resolve()
        with self.connect() as conn:
            first = conn.execute(FIRST_CALLBACK).fetchone()
            schema = conn.execute("PRAGMA user_version").fetchone()[0]
        return {
            "engine": self.engine,
            "place": str(resolved),
            "inode": resolved.stat().st_ino,
            "schema": schema,
            "first": list(first) if first else None,
        }

    def beside(self) -> Path:
        """The folder beside the database for files derived from it: ``DB.cache``."""
        return self.path.with_name(self.path.name + ".cache")

    @staticmethod
    def sql(query: str | Query) -> str:
        return query.sqlite if isinstance(query, Query) else query

    def query(self, sql: str | Query, params: Sequence = (), conn: Any = None) -> list[tuple]:
        """All rows of ``sql`` (on ``conn`` when given, else on a connection of its own)."""
        if conn is not None:
            return conn.execute(self.sql(sql), (*params,)).fetchall()
        with self.connect() as conn:
            return conn.execute(self.sql(sql), (*params,)).fetchall()

    def stream(
        self, sql: str | Query, params: Sequence = (), size: int = READ_CHUNK
    ) -> Iterator[list[tuple]]:
        """The rows of ``sql`` in lists of at most ``size``."""
        with self.connect() as conn:
            cur = conn.execute(self.sql(sql), (*params,))
            while rows := cur.fetchmany(size):
                yield rows
