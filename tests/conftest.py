"""Shared fixtures: every test gets its own SQLite file under tmp_path."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import threading
import uuid

import matplotlib
import pytest

from tavus_analytics import Settings, Store, create_app

matplotlib.use("Agg")

SECRET = "test-secret-token"

#: The documented example payload (DESIGN.md / TAVUS.md).
SHUTDOWN_EXAMPLE = {
    "properties": {"replica_id": "r79e1c033f", "shutdown_reason": "participant_left_timeout"},
    "conversation_id": "c123456",
    "webhook_url": "https://example.ngrok.app/webhook",
    "event_type": "system.shutdown",
    "message_type": "system",
    "timestamp": "2025-07-11T06:48:37.564961Z",
}


def run(*args, **kwargs):
    """``tavus-analytics ARGS`` through click's CliRunner (``env=``, ``input=`` pass through)."""
    from click.testing import CliRunner

    from tavus_analytics.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args], **kwargs)


def query(db, sql, *args):
    """Rows of ``sql`` on the database file ``db``, through a connection of its own."""
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


#: Tests that run in one worker, one after another, when the suite runs over several processes
#: (pytest-xdist, ``-n``): a module whose module-scoped fixtures are costly, so that they are
#: made once; and the load runs, which take turns rather than share the cores with one another.
#: Each group is handed out whole, before the single tests. Keys are node-id prefixes.
GROUPS = {
    "tests/test_report.py": "report",
    "tests/test_benchmarks_smoke.py": "load",
    "tests/test_pg_stress.py": "load",
    "tests/test_pg_collector.py": "load",
    "tests/test_pg_reliability.py::test_sigkill_under_load_loses_nothing_acknowledged": "load",
}


def group_of(nodeid: str) -> str | None:
    """The group of GROUPS the test ``nodeid`` belongs to, or None."""
    for prefix, group in GROUPS.items():
        if nodeid == prefix or nodeid.startswith((prefix + "::", prefix + "[")):
            return group
    return None


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist load`` (the default of ``-n``), with the GROUPS each sent to one worker.

    (The ``xdist_group`` mark with ``--dist loadgroup`` does the same, but renames the node ids
    to do it, which newer pytest releases no longer allow: the groups are silently lost.)
    """
    if config.getoption("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        # A work unit is a group, or one test; units with more tests are handed out first.
        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid) or nodeid

    return GroupScheduling(config, log)


@contextlib.contextmanager
def serving(server):
    """Run a ``socketserver`` server in a thread for the block, then shut it down."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="session")
def pg_server():
    """The URL of a PostgreSQL server the test run started (its ``postgres`` database).

    ``.ci/run`` starts one and passes its URL in ``TAVUS_ANALYTICS_TEST_PG``; without it, one is
    started here for the session, in a temporary folder, and stopped at the end. Tests that
    need it are skipped when PostgreSQL is not installed, unless
    ``TAVUS_ANALYTICS_TEST_PG_REQUIRED=1`` (as in CI), where that is an error.
    """
    url = os.environ.get("TAVUS_ANALYTICS_TEST_PG")
    if url:
        yield url
        return
    from tests import pgserver

    if pgserver.bindir() is None:
        if os.environ.get("TAVUS_ANALYTICS_TEST_PG_REQUIRED") == "1":
            pytest.fail("PostgreSQL is not installed, and TAVUS_ANALYTICS_TEST_PG_REQUIRED=1")
        pytest.skip("PostgreSQL is not installed (initdb/pg_ctl not found)")
    folder = tempfile.mkdtemp(prefix="tavus-pg-")  # under /tmp: the server's user can enter it
    try:
        yield pgserver.start(folder)
    finally:
        pgserver.stop(folder)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server):
    """A new, empty PostgreSQL database for this test, dropped afterwards."""
    import psycopg

    name = "t_" + uuid.uuid4().hex[:16]
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield pg_server.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(pg_server, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def pg_query(url, sql, *args):
    """Rows of ``sql`` on the PostgreSQL database ``url``, through a connection of its own."""
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute(sql, args).fetchall()


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "tavus.db"


@pytest.fixture
def settings(db_path):
    return Settings(db=str(db_path), secret=SECRET)


@pytest.fixture
def store(db_path):
    s = Store(db_path)
    yield s
    s.close()


@pytest.fixture
def app(settings, store):
    return create_app(settings, store=store)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(autouse=True)
def _user_cache(tmp_path_factory, monkeypatch):
    """Caches that do not go beside their database go to a folder of the test run, never to
    the user's own cache folder."""
    monkeypatch.setenv("TAVUS_ANALYTICS_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


class _ReadOnlyFS:
    """A folder whose files can be made read-only for real, even for root.

    As an ordinary user, file modes do it. Root ignores modes, so for root the folder is a small
    tmpfs that is remounted read-only (skipped where mounting is not permitted).
    """

    def __init__(self, path, mounted):
        self.path = path
        self.mounted = mounted

    def make_readonly(self, db):
        if self.mounted:
            _mount("-o", "remount,ro", str(self.path))
        else:
            for p in [db, *db.parent.glob(db.name + "-*")]:
                p.chmod(0o444)
            self.path.chmod(0o555)

    def make_writable(self, db):
        if self.mounted:
            _mount("-o", "remount,rw", str(self.path))
        else:
            self.path.chmod(0o755)
            for p in [db, *db.parent.glob(db.name + "-*")]:
                p.chmod(0o644)


def _mount(*args):
    import subprocess

    return subprocess.run(["mount", *args], capture_output=True, text=True, check=True)


@pytest.fixture
def readonly_fs(tmp_path):
    import os
    import subprocess

    path = tmp_path / "fs"
    path.mkdir()
    if os.geteuid() != 0:
        fs = _ReadOnlyFS(path, mounted=False)
        yield fs
        path.chmod(0o755)
        return
    try:
        _mount("-t", "tmpfs", "-o", "size=16m", "tmpfs", str(path))
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("running as root without permission to mount a tmpfs")
    try:
        yield _ReadOnlyFS(path, mounted=True)
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.fixture(autouse=True)
def _content_cache_in_the_test_run(tmp_path_factory, monkeypatch):
    """Content analysis keeps results in a cache folder: the test run's own, never the user's."""
    folder = tmp_path_factory.getbasetemp() / "content-cache"
    monkeypatch.setenv("TAVUS_ANALYTICS_CACHE_DIR", str(folder))
    return folder


def banner_of(proc) -> str:
    """What a collector process printed up to its banner's last line (``Status page``)."""
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("Status page"):
            break
    return "".join(lines)


def port_of(banner: str) -> int:
    """The port a collector's banner says it listens on."""
    return int(re.search(r"listening on http://127\.0\.0\.1:(\d+)", banner).group(1))
