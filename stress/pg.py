"""The harness on PostgreSQL: a server to run on, a fresh database per scenario, the checks.

:class:`PgServer` is either a throwaway server started here (``tests/pgserver.py``: initdb and
pg_ctl in a temporary folder, 127.0.0.1 only, a free port, fsync on) or an existing server given
by URL. :func:`database` makes an empty database on it for one scenario and drops it afterwards.
:func:`verify` is :func:`stress.harness.verify` for PostgreSQL: the same figures, amcheck in
place of ``PRAGMA integrity_check``.

The collectors are asked through HTTP and the database checked through SQL, so that none of
this depends on how the package arranges its modules.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .harness import ROOT, Collector, sha


def _pgserver():
    """``tests/pgserver.py``, the throwaway server the test suite uses too."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests import pgserver

    return pgserver


def installed() -> bool:
    """Whether initdb and pg_ctl are here, so that a throwaway server can be started."""
    return _pgserver().bindir() is not None


def with_database(url: str, name: str) -> str:
    """``url`` naming the database ``name`` instead."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def password(url: str) -> str | None:
    return urlsplit(url).password


# -- a server --------------------------------------------------------------------------------
class PgServer:
    """A PostgreSQL server for the harness: ``PgServer()`` starts a throwaway one (stopped and
    its folder removed on exit); ``PgServer(url)`` uses an existing one, whose role may create
    databases. Only a throwaway server can be stopped and started again (:meth:`stop`,
    :meth:`start`).

    ``durable=True`` (the default) keeps PostgreSQL's own settings: fsync and synchronous
    commit on, so that a commit survives an immediate shutdown, as on a production server.
    """

    def __init__(self, url: str | None = None, *, durable: bool = True) -> None:
        self.url = url
        self.durable = durable
        self.folder: Path | None = None

    def __enter__(self) -> PgServer:
        if self.url is None:
            # directly under the temporary folder: the server's own user must be able to enter it
            self.folder = Path(tempfile.mkdtemp(prefix="stress-pg-"))
            try:
                self.url = _pgserver().start(self.folder, durable=self.durable)
            except BaseException:
                self.__exit__(None, None, None)
                raise
        return self

    def __exit__(self, *exc) -> None:
        if self.folder is not None:
            try:
                _pgserver().stop(self.folder)
            finally:
                shutil.rmtree(self.folder, ignore_errors=True)

    @property
    def throwaway(self) -> bool:
        return self.folder is not None

    def describe(self) -> str:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
            fsync = conn.execute("SHOW fsync").fetchone()[0]
            sync = conn.execute("SHOW synchronous_commit").fetchone()[0]
        how = "throwaway server" if self.throwaway else "existing server"
        return f"PostgreSQL {version} ({how}, fsync={fsync}, synchronous_commit={sync})"

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m MODE`` and wait until the server is gone."""
        if self.folder is None:
            raise RuntimeError("only a throwaway server is stopped by the harness")
        if mode not in ("smart", "fast", "immediate"):
            raise ValueError(f"unknown shutdown mode {mode!r}")
        pgserver = _pgserver()
        cmd = [str(pgserver.bindir() / "pg_ctl"), "-D", str(self.folder / "data")]
        cmd += ["-m", mode, "-w", "-t", "60", "stop"]
        if os.geteuid() == 0:  # the server runs as postgres (initdb refuses root)
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, timeout=90)

    def start(self) -> None:
        """Start the stopped server again (same data, port and password), waiting until it
        accepts connections."""
        if self.folder is None:
            raise RuntimeError("only a throwaway server is started by the harness")
        _pgserver().resume(self.folder)


@contextlib.contextmanager
def database(server_url: str, prefix: str = "stress") -> Iterator[str]:
    """A new, empty database on the server of ``server_url`` for the block; its URL. Dropped
    afterwards (with any connection still open to it)."""
    import psycopg

    name = f"{prefix}_{secrets.token_hex(6)}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield with_database(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# -- checks ----------------------------------------------------------------------------------
def amcheck(conn) -> str:
    """``ok`` when amcheck finds every B-tree index of ``callbacks`` consistent, with every row
    of the table in it (``heapallindexed``): the unique index on ``sha256`` is what keeps a
    callback from being stored twice. Else what it found, or why it could not run."""
    import psycopg

    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS amcheck")
    except psycopg.Error as e:
        conn.rollback()
        return f"not run: {str(e).strip().splitlines()[0]}"
    try:
        indexes = conn.execute(
            "SELECT c.oid::regclass::text FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam "
            "WHERE i.indrelid = 'callbacks'::regclass AND a.amname = 'btree'"
        ).fetchall()
        for (index,) in indexes:
            conn.execute("SELECT bt_index_check(%s::regclass, true)", (index,))
    except psycopg.Error as e:
        conn.rollback()
        return f"failed: {str(e).strip()[:300]}"
    conn.commit()
    return "ok"


def verify(url: str, acknowledged: Iterable[str], *, not_acknowledged: Iterable[str] = ()) -> dict:
    """Compare what a sender had acknowledged with what PostgreSQL stored; writers stopped.

    The same figures as for SQLite: each stored body's SHA-256 recomputed from its bytes
    (``convert_to(body, 'UTF8')``), acknowledged callbacks missing or stored twice;
    ``json_invalid_rows`` counts the bodies ``jsonb`` could not hold (``body_json`` NULL, none
    expected of the harness's bodies), ``integrity_check`` is amcheck's verdict.
    """
    import psycopg

    acked = set(acknowledged)
    stored: Counter = Counter()
    mismatched = json_invalid = 0
    with psycopg.connect(url) as conn:
        with conn.cursor(name="verify") as cur:  # server side: streamed, not all in memory
            cur.itersize = 2000
            cur.execute("SELECT sha256, convert_to(body, 'UTF8'), body_json IS NULL FROM callbacks")
            for digest, body, no_json in cur:
                stored[digest] += 1
                mismatched += sha(bytes(body)) != digest
                json_invalid += no_json
        conn.commit()
        integrity = amcheck(conn)
    acked_stored = sum(1 for d in acked if d in stored)
    figures = {
        "integrity_check": integrity,
        "integrity_check_by": "amcheck bt_index_check(heapallindexed) on callbacks' indexes",
        "stored_rows": sum(stored.values()),
        "checked_acknowledged": len(acked),
        "acknowledged_and_stored": acked_stored,
        "acknowledged_missing": len(acked) - acked_stored,
        "stored_more_than_once": sum(1 for v in stored.values() if v > 1),
        "body_differs_from_sha256": mismatched,
        "json_invalid_rows": json_invalid,
        "stored_but_never_acknowledged": sum(1 for d in set(not_acknowledged) if d in stored),
    }
    figures["ok"] = (
        not integrity.startswith("failed")
        and acked_stored == len(acked)
        and figures["stored_more_than_once"] == 0
        and mismatched == 0
        and json_invalid == 0
    )
    return figures


def other_sessions(url: str) -> int:
    """Sessions on the database of ``url`` other than the one asking: the collectors'."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()[0]


def log_leaks(collectors: Iterable[Collector], url: str) -> list[str]:
    """Lines of the collectors' logs that show the database password."""
    secret = password(url)
    if not secret:
        return []
    return [
        f"{log.name}: shows the database password"
        for c in collectors
        for log in c.logs
        if secret in log.read_text(errors="replace")
    ]
