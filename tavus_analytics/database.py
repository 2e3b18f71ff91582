"""Where the callbacks live: a SQLite file (the default) or a PostgreSQL server.

``--db`` and ``TAVUS_ANALYTICS_DB`` take either a file path or a URL
``postgresql://user:password@host:port/database``; :func:`open_store` gives the store for it,
:class:`~tavus_analytics.store.Store` or :class:`~tavus_analytics.pgstore.PgStore`, two
implementations of one interface (:class:`StoreInterface`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(db: str | Path | None) -> bool:
    """Whether ``db`` names a PostgreSQL database (a ``postgresql://`` URL)."""
    return isinstance(db, str) and db.lower().startswith(_SCHEMES)


def display_url(db: str | Path) -> str:
    """``db`` as it may be printed: a URL's password (and any ``password=`` parameter) masked."""
    if not is_postgres(db):
        return str(db)
    parts = urlsplit(str(db))
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{host}"
    query = "&".join(
        (p.split("=", 1)[0] + "=***") if p.lower().startswith("password=") else p
        for p in parts.query.split("&")
        if p
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


class StoreInterface(Protocol):
    """What the collector, the importers and ``migrate`` need of a store."""

    name: str

    def migrate(self) -> int: ...
    def insert_callback(
        self, body: bytes, fields=None, *, received_at=None, remote_addr=None, user_agent=None
    ) -> tuple[int, bool]: ...
    def insert_batch(
        self,
        bodies: Iterable,
        *,
        remote_addr: str | None = None,
        user_agent: str | None = None,
        on_progress: Callable[[int], None] | None = None,
    ): ...
    def insert_rejected(self, reason: str, status: int, body: bytes, **kwargs) -> int: ...
    def same_event(self, key: tuple[str, str, str]) -> bool: ...
    def index_transcripts(self, *, chunk: int = 2000) -> int: ...
    def check_writable(self) -> None: ...
    def count_callbacks(self) -> int: ...
    def summary(self) -> dict: ...
    def select_bodies(
        self, *, since=None, until=None, event_types=(), conversations=()
    ) -> list[tuple[int, str]]: ...
    def read_callbacks(self, after: int, limit: int) -> list[tuple]: ...
    def read_rejected(self, after: int, limit: int) -> list[tuple]: ...
    def count_after(self, callback_id: int, rejected_id: int) -> int: ...
    def copy_progress(self, source: str) -> tuple[int, int]: ...
    def copy_in(self, source, callbacks, rejected, upto) -> tuple[int, int]: ...
    def close(self) -> None: ...


def open_store(db: str | Path, *, busy_timeout_ms: int = 5000, pool_size: int = 8):
    """The store for ``db``: :class:`~tavus_analytics.pgstore.PgStore` for a PostgreSQL URL,
    else :class:`~tavus_analytics.store.Store` on the SQLite file. Nothing is opened yet."""
    if is_postgres(db):
        from .pgstore import PgStore

        return PgStore(str(db), busy_timeout_ms=busy_timeout_ms, pool_size=pool_size)
    from .store import Store

    return Store(db, busy_timeout_ms=busy_timeout_ms)
