"""The harness on PostgreSQL: a server to run on, a fresh database per scenario, the checks, and
the scenario only PostgreSQL has: the server itself restarted under load.

:class:`PgServer` is either a throwaway server started here (``tests/pgserver.py``: initdb and
pg_ctl in a temporary folder, 127.0.0.1 only, a free port, fsync on) or an existing server given
by URL. :func:`database` makes an empty database on it for one scenario and drops it afterwards.
:func:`verify` is :func:`stress.harness.verify` for PostgreSQL: the same figures, amcheck in
place of ``PRAGMA integrity_check``. :func:`restart` stops PostgreSQL (``pg_ctl stop -m fast``
or ``-m immediate``) under load and starts it again, on a throwaway server of its own.

The collectors are asked through HTTP and the database checked through SQL, so that none of
this depends on how the package arranges its modules.
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests

from .harness import ROOT, Collector, Sender, make_body, new_secret, server_name, sha


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


# -- PostgreSQL restarted under load -----------------------------------------------------------
def _post(session: requests.Session, base: str, secret: str, body: bytes, timeout: float):
    return session.post(
        f"{base}/webhook",
        params={"token": secret},
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=(2, timeout),
    )


def _each(work: Callable[[int], dict], n: int, timeout: float) -> list[dict | None]:
    """``work(i)`` for i in range(n), in parallel threads; the results (None if unfinished)."""
    out: list[dict | None] = [None] * n

    def run(i: int) -> None:
        out[i] = work(i)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    end = time.monotonic() + timeout
    for t in threads:
        t.join(timeout=max(0.0, end - time.monotonic()))
    return out


def _while_away(col: Collector, secret: str, body: bytes) -> dict:
    """A new callback and ``/healthz``, once each, while the server is away."""
    with requests.Session() as s:
        try:
            r = _post(s, col.url, secret, body, 60)
            h = s.get(f"{col.url}/healthz", timeout=(2, 60))
        except requests.RequestException as e:
            return {"error": type(e).__name__}
    return {
        "webhook": r.status_code,
        "retry_after": r.headers.get("Retry-After"),
        "webhook_answer_s": round(r.elapsed.total_seconds(), 2),
        "healthz": h.status_code,
        "healthz_answer_s": round(h.elapsed.total_seconds(), 2),
        "duplicate": r.json().get("duplicate") if r.status_code == 200 else None,
    }


def _until_stored(col: Collector, secret: str, body: bytes, since: float, within: float) -> dict:
    """``body`` sent again and again (50 ms apart) until ``200``, for ``within`` seconds after
    ``since``; the answers, and the seconds from ``since`` to the ``200``."""
    answers: Counter = Counter()
    with requests.Session() as s:
        while time.monotonic() - since < within:
            try:
                r = _post(s, col.url, secret, body, within)
            except requests.RequestException as e:
                answers[type(e).__name__] += 1
                time.sleep(0.05)
                continue
            answers[r.status_code] += 1
            if r.status_code == 200:
                return {
                    "stored_after_s": round(time.monotonic() - since, 2),
                    "duplicate": r.json().get("duplicate"),
                    "answers": answers,
                }
            if r.status_code != 503 or not r.headers.get("Retry-After"):
                break
            time.sleep(0.05)
    return {"stored_after_s": None, "duplicate": None, "answers": answers}


def _outage(
    server: PgServer,
    cols: list[Collector],
    secret: str,
    sender: Sender,
    *,
    mode: str,
    tag: str,
    min_down: float,
    recover_within: float,
) -> tuple[dict, set[str], list[bytes]]:
    """One stop and start of the server under load: its figures, the digests the probes got
    acknowledged, and the bodies refused while the server was away."""
    before, errors_before = sender.snapshot()
    down_at = time.monotonic()
    server.stop(mode)
    stopped_at = time.monotonic()
    away_bodies = [make_body(f"away{tag}", i) for i in range(len(cols))]
    away = _each(lambda i: _while_away(cols[i], secret, away_bodies[i]), len(cols), 150)
    rest = min_down - (time.monotonic() - down_at)
    if rest > 0:
        time.sleep(rest)
    up_at = time.monotonic()
    server.start()
    back_at = time.monotonic()
    back_bodies = [make_body(f"back{tag}", i) for i in range(len(cols))]
    back = _each(
        lambda i: _until_stored(cols[i], secret, back_bodies[i], back_at, recover_within),
        len(cols),
        recover_within + 30,
    )
    answers, errors = sender.snapshot()
    during, errors_during = answers - before, errors - errors_before
    acked = {
        sha(b)
        for b, a in zip(back_bodies, back, strict=True)
        if a and a["stored_after_s"] is not None
    }
    refused = [b for b, a in zip(away_bodies, away, strict=True) if a and a.get("webhook") == 503]
    acked |= {
        sha(b) for b, a in zip(away_bodies, away, strict=True) if a and a.get("webhook") == 200
    }
    figures = {
        "mode": mode,
        "stop_took_s": round(stopped_at - down_at, 2),
        "away_s": round(up_at - down_at, 2),
        "start_took_s": round(back_at - up_at, 2),
        "answers_while_away": away,
        "recovered_s_after_start": [a["stored_after_s"] if a else None for a in back],
        "probe_answers_after_start": [dict(a["answers"]) if a else None for a in back],
        "sender_answers_until_recovered": dict(sorted(during.items())),
        "sender_connection_errors_until_recovered": errors_during,
    }
    return figures, acked, refused


def restart(
    workdir: Path,
    *,
    restarts: int = 3,
    modes: tuple[str, ...] = ("fast", "immediate"),
    collectors: int = 2,
    threads: int = 4,
    gap: tuple[float, float] = (1.0, 3.0),
    min_down: float = 2.0,
    recover_within: float = 60.0,
    busy_timeout_ms: int | None = None,
    seed: int = 0,
    server: str | None = None,
    log: Callable[[str], None] = lambda s: None,
) -> dict:
    """PostgreSQL stopped and started again under load; the collectors are left running.

    On a throwaway server of its own (fsync and synchronous commit on), ``collectors``
    processes share one database behind ``threads`` senders. ``restarts`` times, after
    ``gap`` seconds of load: the server is stopped (``modes`` in turn: ``fast`` ends the
    sessions and shuts down cleanly, ``immediate`` aborts like a crash, recovered from the WAL on
    start). While it is away each collector is asked once directly, a new callback and
    ``/healthz``, both must answer ``503`` (the webhook with ``Retry-After``); the server stays
    away at least ``min_down`` seconds and until those answers came. Started again, each collector
    is sent a new callback until it answers ``200`` (``recover_within`` seconds at most): the
    time that takes is the recovery. At the end the callbacks refused while away are sent again
    and must be stored (and not found stored already); every callback acknowledged, to the
    senders or to these probes, is stored once, byte for byte; the collectors were never
    restarted (same PIDs, alive).
    """
    workdir = Path(workdir)
    secret, rng = new_secret(), random.Random(seed)
    env = {}
    if busy_timeout_ms is not None:
        env["TAVUS_ANALYTICS_BUSY_TIMEOUT_MS"] = str(busy_timeout_ms)
    t0 = time.monotonic()
    acked: set[str] = set()  # acknowledged to the probes
    refused: list[bytes] = []  # answered 503 while the server was away
    outages: list[dict] = []
    resent: Counter = Counter()
    with PgServer(durable=True) as pg_server, database(pg_server.url, "restart") as url:
        described = pg_server.describe()
        cols = [
            Collector(url, secret, workdir, name=f"pgrestart{i}", env=env, server=server)
            for i in range(collectors)
        ]
        bound = restarts * (gap[1] + min_down + recover_within + 180) + 60
        sender = Sender(
            [c.url for c in cols], secret, run=f"r{seed}", threads=threads, deadline=bound
        )
        try:
            _each(lambda i: {"ready_s": cols[i].start()}, len(cols), 120)
            if not all(c.proc is not None and c.proc.poll() is None for c in cols):
                raise RuntimeError(
                    "a collector did not start: " + str(sum((c.problems() for c in cols), []))
                )
            pids = [c.pid for c in cols]
            sender.start()
            for k in range(restarts):
                time.sleep(rng.uniform(*gap))
                got, ok, no = _outage(
                    pg_server,
                    cols,
                    secret,
                    sender,
                    mode=modes[k % len(modes)],
                    tag=f"{seed}k{k}",
                    min_down=min_down,
                    recover_within=recover_within,
                )
                outages.append(got)
                acked |= ok
                refused += no
                log(
                    f"restart {k + 1}/{restarts} (-m {got['mode']}): away {got['away_s']} s, "
                    f"{got['sender_answers_until_recovered'].get(503, 0)} x 503 to the senders, "
                    f"stored again {got['recovered_s_after_start']} s after the start; "
                    f"{len(sender.acked)} acknowledged so far"
                )
            time.sleep(rng.uniform(*gap))  # load after the last recovery
            for j, body in enumerate(refused):  # what was refused while away, sent again
                got = _until_stored(cols[j % len(cols)], secret, body, time.monotonic(), 30)
                if got["stored_after_s"] is None:
                    resent["not stored"] += 1
                else:
                    acked.add(sha(body))
                    resent["stored before" if got["duplicate"] else "stored now"] += 1
            sender.stop_new()
            sender.join(timeout=sender.grace + 5)
            never_restarted = all(
                c.proc.poll() is None and c.pid == pid and c.starts == 1
                for c, pid in zip(cols, pids, strict=True)
            )
        finally:
            sender.stop_new()
            for c in cols:
                c.stop()
        figures = {
            "scenario": "pg-restart",
            "server": described,
            "collector_server": server_name(server),
            "collectors": collectors,
            "busy_timeout_ms": busy_timeout_ms or 5000,
            "restarts": len(outages),
            "outages": outages,
            "recovered_s_median": _median(
                [s for o in outages for s in o["recovered_s_after_start"] if s is not None]
            ),
            "answer_while_away_s_median": _median(
                [a["webhook_answer_s"] for o in outages for a in o["answers_while_away"] if a]
            ),
            "collectors_alive_and_never_restarted": never_restarted,
            "refused_while_away": len(refused),
            "resent_after": dict(resent),
            **sender.figures(),
            **verify(
                url,
                set(sender.acked) | acked,
                not_acknowledged=sender.unacked | ({sha(b) for b in refused} - acked),
            ),
            "collector_log_problems": sum((c.problems() for c in cols), []),
            "password_in_logs": log_leaks(cols, url),
            "elapsed_s": round(time.monotonic() - t0, 1),
        }
    away_ok = all(
        a is not None and a.get("webhook") == 503 and a["retry_after"] and a["healthz"] == 503
        for o in outages
        for a in o["answers_while_away"]
    )
    figures["ok"] = (
        figures["ok"]
        and len(outages) == restarts
        and away_ok
        and all(s is not None for o in outages for s in o["recovered_s_after_start"])
        and never_restarted
        and resent["stored now"] == len(refused)
        and not sender.bad
        and set(sender.answers) <= {200, 503}
        and not figures["collector_log_problems"]
        and not figures["password_in_logs"]
    )
    return figures


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None
