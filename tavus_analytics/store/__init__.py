"""Where the callbacks live: a SQLite file (the default) or a PostgreSQL server.

Everything that knows an engine is in this package, and this module is the only place that
decides which one: ``--db`` and ``TAVUS_ANALYTICS_DB`` take either a file path or a URL
``postgresql://user:password@host:port/database``.

* :func:`open_store` gives the store the collector, the importers and ``migrate`` write to:
  :class:`~tavus_analytics.store.sqlite.Store` or
  :class:`~tavus_analytics.store.postgres.PgStore`, two implementations of
  :class:`~tavus_analytics.store.base.StoreInterface`.
* :func:`open_reader` gives the loader read-only access, pinned to the rows present when it
  was opened (:class:`~tavus_analytics.store.base.ReaderInterface`).
* :func:`describe` names a database the way it may be printed (never its password).

Beside them: ``base`` (the interfaces, the rows both stores write, the rule for refusing a
body), ``sqlite`` and ``postgres`` (the stores, their schemas and readers), ``views`` (the SQL
views, generated for both engines from the rules in :mod:`tavus_analytics.events`),
``queries`` (what the loader asks of a reader), ``search`` (full-text search) and ``copy``
(history from one store into another).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DatabaseNotFound
from ..extras import require
from ..masking import mask_url
from .base import (
    CALLBACK_COLUMNS,
    REJECTED_BODY_LIMIT,
    BatchResult,
    ReaderInterface,
    StoreInterface,
    utc_now,
)
from .sqlite import Store, check_ours

__all__ = [
    "CALLBACK_COLUMNS",
    "REJECTED_BODY_LIMIT",
    "BatchResult",
    "ReaderInterface",
    "Store",
    "StoreInterface",
    "describe",
    "display_url",
    "open_reader",
    "open_store",
    "utc_now",
]

_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(db: object) -> bool:
    """Whether ``db`` names a PostgreSQL database (a ``postgresql://`` URL) or is a store or
    reader on one. Only this package asks."""
    if isinstance(db, str):
        return db.lower().startswith(_SCHEMES)
    return getattr(db, "engine", None) == "postgresql"


def display_url(db: str | Path) -> str:
    """``db`` as it may be printed: a URL's password (and any ``password=`` parameter) masked;
    a file path as given."""
    return mask_url(str(db)) if is_postgres(db) else str(db)


def describe(db: str | Path) -> str:
    """``db`` as a report names it: a SQLite file's absolute path, a PostgreSQL URL with its
    password masked."""
    return display_url(db) if is_postgres(db) else str(Path(db).resolve())


def location(db: str | Path) -> str | Path:
    """``db`` as the library keeps it: a Path for a SQLite file, the URL (a str) otherwise."""
    return str(db) if is_postgres(db) else Path(db)


def open_store(
    db: str | Path,
    *,
    busy_timeout_ms: int = 5000,
    pool_size: int = 8,
    must_exist: bool = False,
) -> StoreInterface:
    """The store for ``db``: :class:`~tavus_analytics.store.postgres.PgStore` for a PostgreSQL
    URL, else :class:`~tavus_analytics.store.sqlite.Store` on the SQLite file. Nothing is opened
    yet. With ``must_exist`` (commands that only read), a SQLite file must already be a
    tavus-analytics database: :class:`DatabaseNotFound` when it does not exist,
    :class:`NotOurDatabase` when it is empty or another program's; it is only read to check.
    A store that writes never creates its tables beside another program's either."""
    if is_postgres(db):
        require("psycopg", "postgres", "a PostgreSQL database")
        require("psycopg_pool", "postgres", "a PostgreSQL database")
        from .postgres import PgStore

        store = PgStore(str(db), busy_timeout_ms=busy_timeout_ms, pool_size=pool_size)
        if must_exist:
            store.check_ours()
        return store
    path = Path(db)
    if must_exist:
        check_ours(path)  # read-only: a store on a file that is not ours would create tables
    return Store(path, busy_timeout_ms=busy_timeout_ms)


def existing(db: str | Path) -> str | Path:
    """``db`` when it can be read: a PostgreSQL URL, or a SQLite file that exists (else
    :class:`DatabaseNotFound`, saying how to make one)."""
    if is_postgres(db):
        return str(db)
    path = Path(db)
    if not path.is_file():
        raise DatabaseNotFound(path)
    return path


def needs_shared_secret(db: str | Path) -> bool:
    """Whether collectors on ``db`` must be given their secret: a PostgreSQL database is shared
    by collectors on several machines, which cannot share a generated secret file."""
    return is_postgres(db)


def open_reader(db: str | Path) -> ReaderInterface:
    """Read-only access to ``db`` for the loader (:class:`DatabaseNotFound` for a missing file,
    :class:`~tavus_analytics.errors.TavusAnalyticsError` for a database that is not ours or a
    server that cannot be reached)."""
    if is_postgres(db):
        require("psycopg", "postgres", "a PostgreSQL database")
        from .postgres import PgReader

        return PgReader(str(db))
    from .sqlite import SqliteReader

    return SqliteReader(Path(db))
