"""Reliability scenarios against real collector processes: crash, contention, disk full, soak.

Every scenario works in a directory it is given (a temporary one), talks to 127.0.0.1 only, is
bounded in requests and in time, and stops the processes it started by their PID. Each returns a
dict of figures with an ``ok`` flag; ``stress/run.py`` prints them, the test suite asserts them.

The invariant checked everywhere: every body the sender saw answered ``200`` is in the database
exactly once, byte for byte (its SHA-256 recomputed from the stored text), the sender's count of
acknowledged callbacks equals the number stored for them, and ``PRAGMA integrity_check`` is ``ok``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import secrets
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import requests

from tavus_analytics.testing import clean_environment, free_port, process_group

ROOT = Path(__file__).resolve().parent.parent

_ROLES = ("user", "assistant")
_WORDS = [
    "hello",
    "ça",
    "va",
    "日本語",
    "ok",
    "so",
    "the",
    "price",
    "is",
    "42",
    "€",
    "thanks",
    "bye",
    "👋",
    "déjà",
    "vu",
]


def new_secret() -> str:
    """A random token for one run."""
    return secrets.token_urlsafe(24)


def make_body(run: str, n: int, *, size: int = 0) -> bytes:
    """A unique, realistic callback body (the kind rotates with ``n``), about ``size`` bytes."""
    rng = random.Random(f"{run}-{n}")
    cid = f"c{run}{n:07d}"
    kind = n % 5
    ts = f"2025-07-11T06:{n // 60 % 60:02d}:{n % 60:02d}.{n % 1_000_000:06d}Z"
    if kind == 0:
        obj = {
            "properties": {"replica_id": "r79e1c033f", "shutdown_reason": "max_call_duration"},
            "conversation_id": cid,
            "event_type": "system.shutdown",
            "message_type": "system",
            "timestamp": ts,
        }
    elif kind == 1:
        turns = [{"role": "system", "content": "You are a helpful replica."}]
        for i in range(rng.randint(2, 12)):
            words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 30)))
            turns.append({"role": _ROLES[i % 2], "content": words})
        obj = {
            "properties": {"replica_id": "r79e1c033f", "transcript": turns},
            "conversation_id": cid,
            "event_type": "application.transcription_ready",
            "message_type": "application",
            "timestamp": ts,
        }
    elif kind == 2:
        obj = {"replica_id": f"r{run}{n}", "status": rng.choice(["ready", "error"])}
    elif kind == 3:
        obj = {
            "video_id": f"v{run}{n}",
            "status": "ready",
            "replica_id": "r79e1c033f",
            "updated_at": "2024-08-28 15:27:40.824457",
            "generation_progress": "100/100",
        }
    else:
        obj = {
            "conversation_id": cid,
            "event_type": "application.something_new",
            "timestamp": ts,
            "properties": {"n": n, "x": rng.random()},
        }
    obj["seq"] = n
    body = json.dumps(obj, ensure_ascii=n % 2 == 0).encode()
    if size > len(body):
        obj["padding"] = "p" * (size - len(body) - 15)
        body = json.dumps(obj, ensure_ascii=n % 2 == 0).encode()
    return body


def sha(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


# -- a collector process -----------------------------------------------------------------------
def is_url(db: str | Path) -> bool:
    """Whether ``db`` is a PostgreSQL URL rather than a SQLite file."""
    return isinstance(db, str) and db.lower().startswith(("postgresql://", "postgres://"))


def server_name(server: str | None) -> str:
    """The server a collector started with ``--server server`` runs (None: the default)."""
    if server:
        return server
    from tavus_analytics import Settings

    return Settings().server


class Collector:
    """``python collector.py --db DB --port N --secret S`` as a subprocess, log in ``logdir``.

    ``db`` is a SQLite file or a ``postgresql://`` URL; ``server`` adds ``--server SERVER``
    (None: the collector's default, granian). The process starts in a session of its own, so
    that granian's supervisor and its workers (or gunicorn's master and workers) are one
    process group: :meth:`kill` and :meth:`stop` end all of it, and wait until none is left.
    """

    def __init__(
        self,
        db: Path | str,
        secret: str,
        logdir: Path,
        *,
        name: str = "collector",
        port: int | None = None,
        env: dict[str, str] | None = None,
        extra_args: Sequence[str] = (),
        server: str | None = None,
    ) -> None:
        self.db = db if is_url(db) else Path(db)
        self.secret, self.logdir, self.name = secret, Path(logdir), name
        self.port = port or free_port()
        self.env = clean_environment(**(env or {}))
        self.server = server
        self.extra_args = (["--server", server] if server else []) + list(extra_args)
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.logs: list[Path] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self, timeout: float = 30.0) -> float:
        """Start and wait for the banner; return the seconds it took to be ready."""
        log = self.logdir / f"{self.name}-{self.starts:03d}.log"
        self.starts += 1
        self.logs.append(log)
        t0 = time.monotonic()
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, str(ROOT / "collector.py"), "--db", str(self.db)]
                + ["--port", str(self.port), "--secret", self.secret, *self.extra_args],
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,  # its own process group: the server and its workers
            )
        while time.monotonic() - t0 < timeout:
            if b"\nStatus page" in log.read_bytes():
                return time.monotonic() - t0
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited on start:\n{log.read_text()[-2000:]}")
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"{self.name} not ready after {timeout} s")

    def pids(self) -> list[int]:
        """The live processes of the collector's group: the server and its workers."""
        return group_pids(self.proc.pid) if self.proc is not None else []

    def kill(self, *, parent_only: bool = False) -> float | None:
        """SIGKILL the whole process group, by its ID (the server's PID), and wait until none
        of it is left, so that its port is free again.

        ``parent_only``: SIGKILL the server's own process only (granian's supervisor,
        gunicorn's master): its workers must end by themselves. Returns how long the last of
        them took, or None if one was still there after 10 s (it is then killed too).
        """
        if self.proc is None:
            return 0.0
        pgid = self.proc.pid
        t0 = time.monotonic()
        if self.proc.poll() is None or group_pids(pgid):
            with contextlib.suppress(ProcessLookupError):
                if parent_only:
                    os.kill(pgid, signal.SIGKILL)
                else:
                    os.killpg(pgid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        if _wait_group_gone(pgid, 10.0):
            return time.monotonic() - t0
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        _wait_group_gone(pgid, 10.0)
        return None

    def stop(self) -> None:
        """Stop cleanly (SIGINT: the server stops its workers, the store checkpoints), else
        SIGKILL the group."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
                return
        if not _wait_group_gone(self.proc.pid, 10.0):
            self.kill()

    def problems(self) -> list[str]:
        """Log lines that show a crash of a request: tracebacks and unexpected errors."""
        found = []
        for log in self.logs:
            for line in log.read_text(errors="replace").splitlines():
                if "Traceback" in line or "unexpected error" in line:
                    found.append(f"{log.name}: {line}")
        return found


def group_pids(pgid: int) -> list[int]:
    """The live processes (zombies excluded) of process group ``pgid``: ``/proc`` on Linux,
    elsewhere ``[pgid]`` while the group exists."""
    members = process_group(pgid)
    if members is None:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        return [pgid]
    return sorted(members)


def _wait_group_gone(pgid: int, timeout: float) -> bool:
    """Wait until no process of group ``pgid`` is left; False after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while group_pids(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def rss_and_fds(pids: int | Sequence[int]) -> tuple[float, int]:
    """Resident memory (MiB) and open file descriptors of a process, or summed over several
    (a server and its workers), from Linux's ``/proc``."""
    rss, fds = 0.0, 0
    for pid in [pids] if isinstance(pids, int) else pids:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1]) / 1024
        fds += len(os.listdir(f"/proc/{pid}/fd"))
    return rss, fds


# -- a bounded load generator --------------------------------------------------------------------
class Sender:
    """Threads that POST unique bodies and retry each one until ``200`` (or the deadline).

    Retries follow a connection error or a ``503`` after a short pause (50 ms, not the full
    ``Retry-After``, to keep runs short). Any other answer is recorded in ``bad``. The token goes
    in the query string for even bodies and in the ``X-Webhook-Token`` header for odd ones.

    Parameters
    ----------
    urls : list of str
        Collector base URLs; body ``n`` goes to ``urls[n % len(urls)]`` (retries rotate).
    total : int
        At most this many distinct bodies.
    deadline : float
        Seconds after ``start()`` when no new body is started; a body already started is retried
        for ``grace`` more seconds.
    rate : float, optional
        Bodies per second over all threads (default: as fast as answers come).
    """

    def __init__(
        self,
        urls: Sequence[str],
        secret: str,
        *,
        run: str,
        threads: int = 4,
        total: int = 1_000_000,
        deadline: float = 60.0,
        grace: float = 30.0,
        rate: float | None = None,
        size: int = 0,
        timeout: float = 15.0,
    ) -> None:
        self.urls, self.secret, self.run = list(urls), secret, run
        self.threads, self.total, self.deadline, self.grace = threads, total, deadline, grace
        self.rate, self.size, self.timeout = rate, size, timeout
        self.acked: dict[str, int] = {}
        self.unacked: set[str] = set()
        self.answers: Counter = Counter()
        self.duplicates = 0
        self.conn_errors = 0
        self.bad: list[str] = []
        self.in_flight = 0
        self.latencies: list[float] = []
        self._next = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._t0 = 0.0

    def start(self) -> Sender:
        self._t0 = time.monotonic()
        for i in range(self.threads):
            t = threading.Thread(target=self._work, name=f"sender-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop_new(self) -> None:
        """Start no new body; bodies in progress are still retried until acknowledged."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        end = time.monotonic() + (timeout if timeout is not None else self.deadline + self.grace)
        for t in self._threads:
            t.join(timeout=max(0.0, end - time.monotonic()))

    @property
    def sent(self) -> int:
        return self._next

    def snapshot(self) -> tuple[Counter, int]:
        """The answers so far (by status) and the connection errors so far."""
        with self._lock:
            return Counter(self.answers), self.conn_errors

    def _take(self) -> int | None:
        with self._lock:
            if self._stop.is_set() or self._next >= self.total:
                return None
            if time.monotonic() - self._t0 > self.deadline:
                return None
            n = self._next
            self._next += 1
            return n

    def _work(self) -> None:
        session = requests.Session()
        try:
            while (n := self._take()) is not None:
                if self.rate:
                    wait = self._t0 + n / self.rate - time.monotonic()
                    if wait > 0:
                        time.sleep(min(wait, self.deadline))
                self._send(session, n)
        finally:
            session.close()

    def _send(self, session: requests.Session, n: int) -> None:
        body = make_body(self.run, n, size=self.size)
        digest = sha(body)
        if n % 2:
            params, headers = None, {"X-Webhook-Token": self.secret}
        else:
            params, headers = {"token": self.secret}, {}
        headers["Content-Type"] = "application/json"
        hard_end = self._t0 + self.deadline + self.grace
        attempt = 0
        while time.monotonic() < hard_end:
            url = self.urls[(n + attempt) % len(self.urls)] + "/webhook"
            attempt += 1
            with self._lock:
                self.in_flight += 1
            t = time.monotonic()
            try:
                r = session.post(
                    url, params=params, data=body, headers=headers, timeout=(2, self.timeout)
                )
            except requests.RequestException:
                with self._lock:
                    self.conn_errors += 1
                time.sleep(0.05)
                continue
            finally:
                with self._lock:
                    self.in_flight -= 1
            with self._lock:
                self.answers[r.status_code] += 1
            if r.status_code == 200:
                answer = r.json()
                with self._lock:
                    self.latencies.append(time.monotonic() - t)
                    self.acked[digest] = n
                    self.duplicates += bool(answer.get("duplicate"))
                if answer.get("ok") is not True or not isinstance(answer.get("id"), int):
                    self.bad.append(f"200 with an odd answer: {r.text[:200]}")
                return
            if r.status_code == 503 and r.headers.get("Retry-After"):
                time.sleep(0.05)
                continue
            with self._lock:
                self.bad.append(f"{r.status_code}: {r.text[:200]}")
            break
        with self._lock:
            self.unacked.add(digest)

    def figures(self) -> dict:
        lat = sorted(self.latencies)
        return {
            "bodies_sent": self.sent,
            "acknowledged": len(self.acked),
            "never_acknowledged": len(self.unacked),
            "answers": dict(sorted(self.answers.items())),
            "answered_duplicate": self.duplicates,
            "connection_errors": self.conn_errors,
            "bad_answers": len(self.bad),
            "latency_p50_ms": round(1000 * lat[len(lat) // 2], 1) if lat else None,
            "latency_p99_ms": round(1000 * lat[int(len(lat) * 0.99)], 1) if lat else None,
        }


# -- checks on the database ----------------------------------------------------------------------
def verify(
    db: Path | str, acknowledged: Iterable[str], *, not_acknowledged: Iterable[str] = ()
) -> dict:
    """Compare what a sender had acknowledged with what is stored. Run with writers stopped.

    A PostgreSQL URL is checked by :func:`stress.pg.verify` (the same figures, with amcheck
    in place of ``PRAGMA integrity_check``).
    """
    if is_url(db):
        from . import pg

        return pg.verify(db, acknowledged, not_acknowledged=not_acknowledged)
    acked = set(acknowledged)
    conn = sqlite3.connect(db)
    try:
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        stored: Counter = Counter()
        mismatched = 0
        for digest, body in conn.execute("SELECT sha256, CAST(body AS BLOB) FROM callbacks"):
            stored[digest] += 1
            mismatched += sha(body) != digest
        json_invalid = conn.execute(
            "SELECT count(*) FROM callbacks WHERE NOT json_valid(body)"
        ).fetchone()[0]
    finally:
        conn.close()
    acked_stored = sum(1 for d in acked if d in stored)
    figures = {
        "integrity_check": integrity,
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
        integrity == "ok"
        and acked_stored == len(acked)
        and figures["stored_more_than_once"] == 0
        and mismatched == 0
        and json_invalid == 0
    )
    return figures


def notebook_load(db: Path) -> tuple[str, int]:
    """Load the database the way an analyst does; return (how, rows read).

    ``tavus_analytics.load`` when the package has it; otherwise a read-only SQLite reader that
    parses every stored body with ``json``.
    """
    try:
        from tavus_analytics import load
    except ImportError:
        load = None
    if load is not None:
        dataset = load(db)
        rows = len(dataset.events)
        for table in ("conversations", "turns"):
            getattr(dataset, table)
        return "tavus_analytics.load (events, conversations, turns)", rows
    conn = sqlite3.connect(f"{Path(db).resolve().as_uri()}?mode=ro", uri=True)
    try:
        n = 0
        for (body,) in conn.execute("SELECT body FROM callbacks"):
            json.loads(body)
            n += 1
        return "read-only sqlite3 + json", n
    finally:
        conn.close()


def import_file(db: Path, path: Path, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """``tavus-analytics import PATH --db DB`` in a subprocess."""
    return subprocess.run(
        [sys.executable, "-c", "from tavus_analytics.cli import cli; cli()", "import"]
        + [str(path), "--db", str(db)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=clean_environment(),
    )


def _has_import_command() -> bool:
    from tavus_analytics import cli

    return "import" in cli.cli.commands


# -- crash ---------------------------------------------------------------------------------------
def crash(
    workdir: Path,
    *,
    kills: int = 20,
    threads: int = 4,
    gap: tuple[float, float] = (0.05, 0.8),
    deadline: float = 150.0,
    seed: int = 0,
    db: Path | str | None = None,
    collectors: int = 1,
    server: str | None = None,
    log: Callable[[str], None] = lambda s: None,
) -> dict:
    """SIGKILL the collector at random moments under load, restart it, check nothing is lost.

    ``db`` defaults to a new SQLite file in ``workdir``; a PostgreSQL URL names an empty
    database. With ``collectors`` above 1, that many processes share the database, the senders
    spread bodies over them (a retry goes to the next one) and each kill picks one at random.

    A kill is a SIGKILL of the collector's whole process group (the server and its workers at
    once, as the OOM killer or a crash of the machine would). With a server that has worker
    processes (granian, gunicorn), every other kill hits the supervisor alone: its workers
    must end by themselves (``orphan_exit_s_max``), none may keep serving or keep the port.
    """
    workdir = Path(workdir)
    db = workdir / "crash.db" if db is None else db
    secret, rng = new_secret(), random.Random(seed)
    cols = [
        Collector(
            db, secret, workdir, name="crash" if collectors == 1 else f"crash{i}", server=server
        )
        for i in range(collectors)
    ]
    has_workers = server_name(server) != "waitress"
    orphan_exits: list[float] = []
    orphans_left = 0
    t0 = time.monotonic()
    for c in cols:
        c.start()
    ready: list[float] = []  # seconds from each restart to ready
    sender = Sender(
        [c.url for c in cols], secret, run=f"k{seed}", threads=threads, deadline=deadline
    )
    sender.start()
    in_flight, done, victims = [], 0, Counter()
    try:
        for k in range(kills):
            if time.monotonic() - t0 > deadline - 5:
                break
            time.sleep(rng.uniform(*gap))
            col = cols[rng.randrange(len(cols))] if len(cols) > 1 else cols[0]
            in_flight.append(sender.in_flight)
            parent_only = has_workers and k % 2 == 1
            took = col.kill(parent_only=parent_only)
            if parent_only:
                if took is None:
                    orphans_left += 1
                else:
                    orphan_exits.append(took)
            done += 1
            victims[col.name] += 1
            ready.append(col.start())
            log(
                f"kill {k + 1}/{kills} ({col.name}): {in_flight[-1]} requests in flight, "
                f"{len(sender.acked)} acknowledged so far"
            )
        time.sleep(0.3)
        sender.stop_new()
        sender.join(timeout=sender.grace + 5)
    finally:
        sender.stop_new()
        for c in cols:
            c.stop()
    figures = {
        "scenario": "crash",
        "server": server_name(server),
        "collectors": collectors,
        "kills": done,
        "kills_of_the_supervisor_alone": len(orphan_exits) + orphans_left,
        "orphan_exit_s_max": round(max(orphan_exits), 3) if orphan_exits else None,
        "workers_left_after_their_supervisor_died": orphans_left,
        "kills_with_requests_in_flight": sum(1 for n in in_flight if n > 0),
        "restart_to_ready_s_median": round(statistics.median(ready), 2) if ready else None,
        **sender.figures(),
        **verify(db, sender.acked, not_acknowledged=sender.unacked),
        "collector_log_problems": sum((c.problems() for c in cols), []),
        "elapsed_s": round(time.monotonic() - t0, 1),
    }
    if collectors > 1:
        figures["kills_per_collector"] = dict(sorted(victims.items()))
    if is_url(db):
        from . import pg

        figures["password_in_logs"] = pg.log_leaks(cols, db)
    figures["ok"] = (
        figures["ok"]
        and done == kills
        and not orphans_left
        and not sender.bad
        and not figures["collector_log_problems"]
        and not figures.get("password_in_logs")
        and set(sender.answers) <= {200, 503}
    )
    return figures


# -- contention ----------------------------------------------------------------------------------
def contention(
    workdir: Path,
    *,
    collectors: int = 2,
    threads: int = 4,
    duration: float = 20.0,
    busy_timeout_ms: int | None = None,
    import_batch: int = 300,
    seed: int = 0,
    server: str | None = None,
    log: Callable[[str], None] = lambda s: None,
) -> dict:
    """Several collector processes, repeated imports and notebook loads on one database at once.

    The collectors start at the same moment on a database that does not exist yet (so they race
    to create and migrate it). ``busy_timeout_ms`` lowers the collectors' wait for a lock
    (``TAVUS_ANALYTICS_BUSY_TIMEOUT_MS``) so that some senders do meet a locked database.
    """
    workdir = Path(workdir)
    db, secret = workdir / "contention.db", new_secret()
    env = {}
    if busy_timeout_ms is not None:
        env["TAVUS_ANALYTICS_BUSY_TIMEOUT_MS"] = str(busy_timeout_ms)
    cols = [
        Collector(db, secret, workdir, name=f"contention{i}", env=env, server=server)
        for i in range(collectors)
    ]
    t0 = time.monotonic()
    starters = [threading.Thread(target=c.start) for c in cols]
    for t in starters:
        t.start()
    for t in starters:
        t.join(timeout=40)
    if not all(c.proc is not None and c.proc.poll() is None for c in cols):
        for c in cols:
            c.kill()
        raise RuntimeError(
            "a collector did not start: " + "; ".join(sum((c.problems() for c in cols), []))
        )

    stop = threading.Event()
    imported: set[str] = set()
    import_runs: Counter = Counter()
    import_errors: list[str] = []
    loads: Counter = Counter()
    load_errors: list[str] = []
    use_cli = _has_import_command()

    def importer() -> None:
        from tavus_analytics import Store, StoreUnavailable

        batch_no = 0
        while not stop.is_set():
            bodies = [make_body(f"i{seed}b{batch_no}", i) for i in range(import_batch)]
            batch_no += 1
            while not stop.is_set():
                if use_cli:
                    path = workdir / "import.jsonl"
                    path.write_bytes(b"\n".join(bodies) + b"\n")
                    done = import_file(db, path)
                    if done.returncode == 0:
                        import_runs["ok"] += 1
                        imported.update(sha(b) for b in bodies)
                        break
                    import_runs["refused"] += 1
                    if "Traceback" in done.stderr or "locked" not in done.stderr + done.stdout:
                        import_errors.append((done.stderr or done.stdout)[-300:])
                else:
                    store = Store(db)
                    try:
                        store.insert_batch(bodies)
                        import_runs["ok"] += 1
                        imported.update(sha(b) for b in bodies)
                        break
                    except StoreUnavailable as e:
                        import_runs["refused"] += 1
                        if "locked" not in str(e):
                            import_errors.append(str(e))
                    finally:
                        store.close()
                time.sleep(0.1)

    def reader() -> None:
        while not stop.is_set():
            try:
                how, n = notebook_load(db)
                loads[how] += 1
                loads["rows_last"] = n
            except Exception as e:  # any failure of a reader is a finding
                load_errors.append(f"{type(e).__name__}: {e}")
            time.sleep(0.05)

    helpers = [threading.Thread(target=f, daemon=True) for f in (importer, reader)]
    sender = Sender(
        [c.url for c in cols], secret, run=f"s{seed}", threads=threads, deadline=duration
    )
    sender.start()
    for t in helpers:
        t.start()
    try:
        time.sleep(duration)
        stop.set()
        sender.stop_new()
        sender.join(timeout=sender.grace + 5)
        for t in helpers:
            t.join(timeout=90)
    finally:
        stop.set()
        sender.stop_new()
        for c in cols:
            c.stop()
    loads_done = sum(v for k, v in loads.items() if k != "rows_last")
    figures = {
        "scenario": "contention",
        "server": server_name(server),
        "collectors": collectors,
        "busy_timeout_ms": busy_timeout_ms or 5000,
        **sender.figures(),
        "import_via": "tavus-analytics import" if use_cli else "Store.insert_batch",
        "imports_committed": import_runs["ok"],
        "imports_refused_locked": import_runs["refused"],
        "import_errors": import_errors[:5],
        "notebook_loads": loads_done,
        "notebook_load_via": next((k for k in loads if k != "rows_last"), None),
        "notebook_load_errors": load_errors[:5],
        **verify(db, set(sender.acked) | imported, not_acknowledged=sender.unacked),
        "imported_bodies": len(imported),
        "collector_log_problems": sum((c.problems() for c in cols), []),
        "elapsed_s": round(time.monotonic() - t0, 1),
    }
    figures["ok"] = (
        figures["ok"]
        and not sender.bad
        and set(sender.answers) <= {200, 503}
        and not import_errors
        and not load_errors
        and loads_done > 0
        and not figures["collector_log_problems"]
    )
    return figures


# -- disk full and read-only ---------------------------------------------------------------------
def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], capture_output=True, text=True, check=True, timeout=30)


@contextlib.contextmanager
def tmpfs(path: Path, size: str = "16m"):
    """Mount a tmpfs of ``size`` on ``path`` (root only); unmount it on exit."""
    path.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)


def _fill(path: Path) -> int:
    """Write zeros to ``path`` until the filesystem is full; return the bytes written."""
    written = 0
    block = b"\0" * 65536
    with open(path, "wb", buffering=0) as f:
        while True:
            try:
                n = f.write(block)
            except OSError:
                break
            written += n
            if n < len(block):
                break
    with contextlib.suppress(OSError):
        while True:  # the last few bytes, one small block at a time
            with open(path, "ab", buffering=0) as f:
                if f.write(b"\0" * 512) < 512:
                    break
            written += 512
    return written


def diskfull(
    fs: Path,
    workdir: Path,
    *,
    body_size: int = 8192,
    max_bodies: int = 400,
    server: str | None = None,
    log: Callable[[str], None] = lambda s: None,
) -> dict:
    """A collector whose database is on the (tmpfs) folder ``fs``, which then fills up.

    Phases: some callbacks stored; the disk filled to the last byte; callbacks sent until five
    ``503`` in a row; the space freed; every refused callback resent and acknowledged; more
    stored. All of it through a collector process (``server``: its ``--server``). Then the
    database is made read-only under a running in-process server (its connections closed, the
    filesystem remounted read-only): ``503``; writable again: ``200``. That phase runs the app
    on waitress in this process whatever ``server``: Linux refuses to remount a filesystem
    read-only while a process holds files on it open for writing, and only an in-process
    server's store can be told to close them; what it checks (the store's ``503``, ``/healthz``)
    is the app's, not the HTTP server's.
    """
    fs, workdir = Path(fs), Path(workdir)
    db, secret = fs / "full.db", new_secret()
    acked: set[str] = set()
    pending: list[bytes] = []
    answers: Counter = Counter()
    bad: list[str] = []
    health_when_full = None
    t0 = time.monotonic()

    def post(session, base, body) -> int:
        r = session.post(f"{base}/webhook", params={"token": secret}, data=body, timeout=30)
        answers[r.status_code] += 1
        if r.status_code == 200:
            acked.add(sha(body))
        elif r.status_code != 503 or not r.headers.get("Retry-After"):
            bad.append(f"{r.status_code}: {r.text[:200]}")
        elif secret in r.text or str(fs) in r.text:
            bad.append(f"503 leaks: {r.text[:200]}")
        return r.status_code

    n = 0
    col = Collector(db, secret, workdir, name="diskfull", server=server)
    col.start()
    filler = fs / "filler"
    try:
        with requests.Session() as s:
            for _ in range(10):
                post(s, col.url, make_body("d", n, size=body_size))
                n += 1
            filled = _fill(filler)
            log(f"filled the disk with {filled} bytes")
            in_a_row = 0
            accepted_while_full = 0
            while in_a_row < 5 and n < max_bodies:
                body = make_body("d", n, size=body_size)
                n += 1
                if post(s, col.url, body) == 503:
                    pending.append(body)
                    in_a_row += 1
                else:
                    accepted_while_full += 1
                    in_a_row = 0
            health_when_full = s.get(f"{col.url}/healthz", timeout=30).status_code
            refused_while_full = len(pending)
            filler.unlink()
            for body in pending:
                for _ in range(40):
                    if post(s, col.url, body) == 200:
                        break
                    time.sleep(0.05)
            pending = [b for b in pending if sha(b) not in acked]
            for _ in range(10):
                post(s, col.url, make_body("d", n, size=body_size))
                n += 1
    finally:
        col.stop()
    log("disk full phase done; read-only phase")
    ro = _readonly_phase(fs, db, secret, acked, answers, bad)
    figures = {
        "scenario": "diskfull",
        "server": server_name(server),
        "read_only_phase_server": "waitress, in-process",
        "filesystem": "tmpfs",
        "accepted_after_disk_filled": accepted_while_full,
        "refused_503_while_full": refused_while_full,
        "healthz_while_full": health_when_full,
        "resent_and_acknowledged_after_space_freed": refused_while_full - len(pending),
        **ro,
        "answers": dict(sorted(answers.items())),
        "bad_answers": bad[:5],
        **verify(db, acked),
        "collector_log_problems": col.problems(),
        "elapsed_s": round(time.monotonic() - t0, 1),
    }
    figures["ok"] = (
        figures["ok"]
        and not bad
        and not pending
        and refused_while_full > 0
        and health_when_full == 503
        and ro["readonly_answers"] == [503]
        and ro["healthz_while_readonly"] == 503
        and ro["after_writable_again"] == 200
        and not figures["collector_log_problems"]
    )
    return figures


def _readonly_phase(fs, db, secret, acked, answers, bad) -> dict:
    from tavus_analytics import Settings
    from tavus_analytics.server import start_in_thread, stop

    server, base = start_in_thread(Settings(db=str(db), secret=secret, threads=2))
    ro_answers = []
    health = after = ro_seconds = None
    try:
        with requests.Session() as s:
            body = make_body("ro", 0)
            r = s.post(f"{base}/webhook", params={"token": secret}, data=body, timeout=30)
            answers[r.status_code] += 1
            if r.status_code == 200:
                acked.add(sha(body))
            server.store.close()  # the server holds no file open: the kernel allows ro
            _mount("-o", "remount,ro", str(fs))
            try:
                body = make_body("ro", 1)
                t = time.monotonic()
                r = s.post(f"{base}/webhook", params={"token": secret}, data=body, timeout=30)
                ro_seconds = round(time.monotonic() - t, 2)
                answers[r.status_code] += 1
                ro_answers.append(r.status_code)
                if r.status_code == 200 or "Retry-After" not in r.headers:
                    bad.append(f"read-only answered {r.status_code}")
                health = s.get(f"{base}/healthz", timeout=30).status_code
                server.store.close()
            finally:
                _mount("-o", "remount,rw", str(fs))
            r = s.post(f"{base}/webhook", params={"token": secret}, data=body, timeout=30)
            answers[r.status_code] += 1
            after = r.status_code
            if r.status_code == 200:
                acked.add(sha(body))
    finally:
        stop(server)
    return {
        "readonly_answers": ro_answers,
        "readonly_answer_took_s": ro_seconds,
        "healthz_while_readonly": health,
        "after_writable_again": after,
    }


# -- soak ----------------------------------------------------------------------------------------
def soak(
    workdir: Path,
    *,
    duration: float = 600.0,
    rate: float = 20.0,
    threads: int = 2,
    sample_every: float = 5.0,
    db: Path | str | None = None,
    server: str | None = None,
    log: Callable[[str], None] = lambda s: None,
) -> dict:
    """A steady rate for ``duration`` seconds; memory and open descriptors sampled throughout,
    summed over the collector's processes (granian's supervisor and its workers).

    ``db`` defaults to a new SQLite file in ``workdir``; a PostgreSQL URL names an empty
    database (the descriptors then include the pool's connections to the server).
    """
    workdir = Path(workdir)
    db = workdir / "soak.db" if db is None else db
    secret = new_secret()
    col = Collector(db, secret, workdir, name="soak", server=server)
    col.start()
    t0 = time.monotonic()
    sender = Sender(
        [col.url], secret, run="soak", threads=threads, deadline=duration, rate=rate, grace=10
    )
    sender.start()
    samples: list[tuple[float, float, int]] = []
    sessions: list[int] = []  # on PostgreSQL: the collector's sessions on the server
    nprocs: list[int] = []  # processes sampled: the server and its workers
    pages = Counter()
    try:
        with requests.Session() as s:
            while time.monotonic() - t0 < duration:
                time.sleep(min(sample_every, max(0.0, duration - (time.monotonic() - t0))))
                pages[s.get(f"{col.url}/healthz", timeout=10).status_code] += 1
                pages[s.get(f"{col.url}/", params={"token": secret}, timeout=10).status_code] += 1
                pids = col.pids()
                nprocs.append(len(pids))
                rss, fds = rss_and_fds(pids)
                samples.append((round(time.monotonic() - t0, 1), round(rss, 1), fds))
                more = ""
                if is_url(db):
                    from . import pg

                    sessions.append(pg.other_sessions(db))
                    more = f" server sessions={sessions[-1]}"
                log(
                    f"t={samples[-1][0]:>6}s rss={rss:.1f} MiB fds={fds} "
                    f"processes={len(pids)}{more} acknowledged={len(sender.acked)}"
                )
        sender.stop_new()
        sender.join(timeout=20)
    finally:
        sender.stop_new()
        col.stop()
    # Compare the second tenth of the run (after warm-up) with the last tenth.
    k = max(1, len(samples) // 10)
    early, late = samples[k : 2 * k] or samples[:1], samples[-k:]
    rss_early = statistics.median(r for _, r, _ in early)
    rss_late = statistics.median(r for _, r, _ in late)
    fds_after_warmup = [f for _, _, f in samples[k:]] or [samples[-1][2]]
    figures = {
        "scenario": "soak",
        "server": server_name(server),
        "processes_sampled": sorted(set(nprocs)),
        "duration_s": duration,
        "target_rate_per_s": rate,
        "achieved_rate_per_s": round(len(sender.acked) / duration, 1),
        **sender.figures(),
        "status_and_health_answers": dict(pages),
        "rss_mib_first_last_max": [samples[0][1], samples[-1][1], max(r for _, r, _ in samples)],
        "rss_growth_mib_after_warmup": round(rss_late - rss_early, 1),
        "fds_first_last_max": [samples[0][2], samples[-1][2], max(f for _, _, f in samples)],
        "fds_spread_after_warmup": max(fds_after_warmup) - min(fds_after_warmup),
        "samples": len(samples),
        **verify(db, sender.acked, not_acknowledged=sender.unacked),
        "collector_log_problems": col.problems(),
    }
    if is_url(db):
        from . import pg

        figures["server_sessions_first_last_max"] = [sessions[0], sessions[-1], max(sessions)]
        figures["password_in_logs"] = pg.log_leaks([col], db)
    figures["ok"] = (
        figures["ok"]
        and not sender.bad
        and set(pages) == {200}
        and figures["rss_growth_mib_after_warmup"] < max(5.0, 0.1 * rss_early)
        and figures["fds_spread_after_warmup"] <= 2
        and not figures["collector_log_problems"]
        and not figures.get("password_in_logs")
    )
    return figures
