"""Collector throughput and latency, side by side with Tavus's sample webhook server.

Runs, in one go and on loopback, a bounded load (a fixed number of seconds and connections) against

* ``ceiling``: a trivial asyncio server that answers at once, to show the load generator's own
  ceiling on this machine;
* ``reference``: what Tavus's documented Flask sample does (parse the JSON, transcripts in a
  dict, no persistence, Flask's development server, threaded), ``reference_server.py``;
* ``collector``: the collector as ``python collector.py`` serves it (waitress, every callback
  committed to SQLite before the 200);

prints requests/s, p50 and p99 latency of each and the collector/reference ratio, then checks
that the collector's database holds exactly the callbacks acknowledged. ``--matrix`` adds the
server variants measured to choose the production WSGI server (waitress threads, gunicorn sync
and gthread workers, ``synchronous=FULL`` vs ``NORMAL``).

    python benchmarks/bench_collector.py                    # about 40 s
    python benchmarks/bench_collector.py --matrix           # about 2 minutes
    python benchmarks/bench_collector.py --proposals        # about 2 minutes
    python benchmarks/bench_collector.py --configs reference,waitress-16 --seconds 5 --repeat 3

``srvCPU`` and ``genCPU`` are the server's and the load generator's CPU time over the run's
wall time (100% = one core); ``fsync`` is the median fsync time measured just before each
collector run (what every durable commit waits for; it varies on a shared machine).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from loadgen import LoadResult, free_port, make_templates, run_load  # noqa: E402

SECRET = "bench-secret"

#: Targets of the issue: collector/reference requests/s at 16 connections, and p99.
TARGET_RATIO = 3.0
TARGET_P99_MS = 25.0


# -- bodies -------------------------------------------------------------------------------------


def make_bodies(conversations: int, seed: int = 0) -> tuple[list[bytes], str]:
    """Callback bodies in a real deployment's mix; returns them and where they came from.

    Uses ``tavus_analytics.demo.generate(conversations, seed=...)`` when the package has it, else
    :func:`builtin_bodies`.
    """
    try:
        from tavus_analytics.demo import generate
    except ImportError:
        return builtin_bodies(conversations, seed), "built-in generator"
    return [body for body, _ in generate(conversations, seed=seed)], "tavus_analytics.demo"


_WORDS = [
    "the",
    "a",
    "to",
    "and",
    "of",
    "I",
    "you",
    "that",
    "it",
    "is",
    "we",
    "for",
    "on",
    "with",
    "can",
    "this",
    "your",
    "have",
    "be",
    "are",
    "what",
    "so",
    "about",
    "plan",
    "account",
    "order",
    "price",
    "time",
    "help",
    "would",
    "like",
    "need",
    "could",
    "call",
    "today",
    "week",
    "next",
    "thanks",
    "please",
    "sure",
    "right",
    "great",
    "question",
    "schedule",
    "booking",
    "meeting",
    "team",
    "project",
    "report",
    "update",
]

_SHUTDOWN_REASONS = (
    ["participant_left_timeout reached"] * 40
    + ["participant_left_timeout"] * 10
    + ["max_call_duration reached"] * 8
    + ["participant_absent_timeout reached"] * 12
    + ["end_conversation_endpoint_hit"] * 15
    + ["bot_could_not_join_meeting_it_was_probably_ended"] * 5
    + ["daily_room_has_been_deleted"] * 4
    + ["exception_encountered_during_conversation_startup"] * 3
    + ["internal error occurred at step 4"] * 3
)


def _text(rng: random.Random, n_chars: int) -> str:
    out, size = [], 0
    while size < n_chars:
        w = rng.choice(_WORDS)
        out.append(w)
        size += len(w) + 1
    return " ".join(out).capitalize() + "."


def _ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def builtin_bodies(conversations: int, seed: int = 0) -> list[bytes]:
    """A small stand-in for the demo generator: the same kinds in realistic proportions.

    Per conversation: a join (half with its ``system.pal_joined`` twin), a shutdown, a
    transcript most of the time (5 to 50 KB), sometimes a recording, a perception analysis or a
    post-call action; plus video and replica training callbacks now and then.
    """
    rng = random.Random(seed)
    start = datetime(2025, 6, 1, tzinfo=UTC)
    replicas = [f"r{rng.getrandbits(40):010x}" for _ in range(6)]
    out: list[bytes] = []

    def conv(cid, event, mtype, t, props):
        return {
            "properties": props,
            "conversation_id": cid,
            "webhook_url": "https://example.ngrok.app/webhook",
            "event_type": event,
            "message_type": mtype,
            "timestamp": _ts(t),
        }

    for _ in range(conversations):
        cid = f"c{rng.getrandbits(48):012x}"
        replica = rng.choice(replicas)
        t0 = start + timedelta(seconds=rng.uniform(0, 60 * 86400))
        t1 = t0 + timedelta(seconds=rng.uniform(20, 1800))
        events = [conv(cid, "system.replica_joined", "system", t0, {"replica_id": replica})]
        if rng.random() < 0.5:
            events.append(conv(cid, "system.pal_joined", "system", t0, {"face_id": replica}))
        reason = rng.choice(_SHUTDOWN_REASONS)
        events.append(
            conv(
                cid,
                "system.shutdown",
                "system",
                t1,
                {"replica_id": replica, "shutdown_reason": reason},
            )
        )
        if rng.random() < 0.85:
            target = int(5000 * 10 ** rng.uniform(0, 1))  # 5 to 50 KB, log-uniform
            transcript = [{"role": "system", "content": _text(rng, min(4000, target // 3))}]
            size = len(transcript[0]["content"])
            while size < target:
                turn = {
                    "role": rng.choice(("user", "assistant")),
                    "content": _text(rng, rng.randint(20, 700)),
                }
                transcript.append(turn)
                size += len(turn["content"]) + 40
            events.append(
                conv(
                    cid,
                    "application.transcription_ready",
                    "application",
                    t1 + timedelta(milliseconds=1),
                    {"replica_id": replica, "transcript": transcript},
                )
            )
        if rng.random() < 0.15:
            events.append(
                conv(
                    cid,
                    "application.recording_ready",
                    "application",
                    t1 + timedelta(seconds=30),
                    {"bucket_name": "recordings", "s3_key": f"{cid}/rec.mp4", "duration": 300},
                )
            )
        if rng.random() < 0.25:
            analysis = "Here's a summary of the visual observations: " + " ".join(
                f"**{h}** {_text(rng, 300)}" for h in ("User Appearance", "User Behavior & Actions")
            )
            events.append(
                conv(
                    cid,
                    "application.perception_analysis",
                    "application",
                    t1 + timedelta(minutes=3),
                    {"analysis": analysis},
                )
            )
        if rng.random() < 0.15:
            events.append(
                conv(
                    cid,
                    "application.post_call_action_executed",
                    "application",
                    t1 + timedelta(minutes=2),
                    {
                        "tool_id": "t1",
                        "tool_name": "crm",
                        "status": "success",
                        "request": {},
                        "response": {},
                    },
                )
            )
        if rng.random() < 0.1:
            vid = f"v{rng.getrandbits(40):010x}"
            stamp = (t1 + timedelta(seconds=5)).strftime("%Y-%m-%d %H:%M:%S.%f")
            events.append(
                {
                    "video_id": vid,
                    "video_name": "demo",
                    "replica_id": replica,
                    "status": rng.choice(("ready", "ready", "ready", "error", "generating")),
                    "created_at": stamp,
                    "updated_at": stamp,
                    "generation_progress": "100/100",
                    "download_url": f"https://example.com/{vid}.mp4",
                }
            )
        if rng.random() < 0.05:
            events.append({"replica_id": f"r{rng.getrandbits(40):010x}", "status": "ready"})
        out.extend(json.dumps(e).encode() for e in events)
    return out


def describe_mix(templates) -> str:
    """Share of each body label and the median body size, for the report."""
    sizes = [len(t.prefix) + 6 + len(t.suffix) for t in templates]
    labels: dict[str, int] = {}
    for t in templates:
        labels[t.label] = labels.get(t.label, 0) + 1
    top = sorted(labels.items(), key=lambda kv: -kv[1])
    mix = ", ".join(f"{k.split('.')[-1]} {100 * v / len(templates):.0f}%" for k, v in top[:6])
    return (
        f"{len(templates)} distinct bodies, median {statistics.median(sizes) / 1000:.1f} KB, "
        f"mean {statistics.mean(sizes) / 1000:.1f} KB; {mix}"
    )


# -- servers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    """One server to measure."""

    name: str
    kind: str  # trivial, reference, waitress, gunicorn
    threads: int = 8
    workers: int = 1
    worker_class: str = "sync"
    synchronous: str = "FULL"
    write: str = "each"
    quiet: bool = False
    fts: bool = True
    fast: bool = False

    @property
    def is_collector(self) -> bool:
        return self.kind in ("waitress", "gunicorn")

    def describe(self) -> str:
        if self.kind == "trivial":
            return "trivial asyncio server (generator ceiling)"
        if self.kind == "reference":
            return "Tavus sample: Flask dev server, dict in memory"
        if self.kind == "waitress":
            what = f"waitress {self.threads} threads"
        elif self.worker_class == "sync":
            what = f"gunicorn {self.workers} sync workers"
        else:
            what = f"gunicorn {self.workers}x{self.threads} gthread"
        extra = {"each": "", "lock": ", writes under a process lock", "group": ", group commit"}
        return (
            f"collector, {what}, synchronous={self.synchronous}{extra[self.write]}"
            + ("" if self.fts else ", without the transcript FTS trigger")
            + (", plain-WSGI fast path for POST /webhook" if self.fast else "")
            + (", no per-callback log" if self.quiet else "")
        )


CONFIGS = {
    c.name: c
    for c in [
        Config("ceiling", "trivial"),
        Config("reference", "reference"),
        Config("collector", "waitress", threads=8),
        Config("waitress-4", "waitress", threads=4),
        Config("waitress-16", "waitress", threads=16),
        Config("waitress-8-normal", "waitress", threads=8, synchronous="NORMAL"),
        Config("waitress-8-quiet", "waitress", threads=8, quiet=True),
        Config("waitress-8-lock", "waitress", threads=8, write="lock"),
        Config("waitress-8-group", "waitress", threads=8, write="group"),
        Config("waitress-16-group", "waitress", threads=16, write="group"),
        Config("waitress-8-nofts", "waitress", threads=8, fts=False),
        Config("waitress-16-group-fast", "waitress", threads=16, write="group", fast=True),
        Config(
            "waitress-16-group-fast-nofts",
            "waitress",
            threads=16,
            write="group",
            fast=True,
            fts=False,
        ),
        Config("waitress-16-group-nofts", "waitress", threads=16, write="group", fts=False),
        Config("gunicorn-sync-2", "gunicorn", workers=2),
        Config("gunicorn-sync-3", "gunicorn", workers=3),
        Config("gunicorn-sync-4", "gunicorn", workers=4),
        Config("gunicorn-sync-4-normal", "gunicorn", workers=4, synchronous="NORMAL"),
        Config("gunicorn-gthread-2x8", "gunicorn", workers=2, worker_class="gthread", threads=8),
        Config("gunicorn-gthread-1x16", "gunicorn", workers=1, worker_class="gthread", threads=16),
    ]
}
DEFAULT_CONFIGS = ["ceiling", "reference", "collector"]
#: ``--matrix``: the production WSGI server choice.
MATRIX = [
    "reference",
    "collector",
    "waitress-4",
    "waitress-16",
    "waitress-8-normal",
    "gunicorn-sync-2",
    "gunicorn-sync-4",
    "gunicorn-sync-4-normal",
    "gunicorn-gthread-2x8",
]
#: ``--proposals``: changes to app.py/store.py, measured through benchmark-only patches.
PROPOSALS = [
    "reference",
    "collector",
    "waitress-8-quiet",
    "waitress-8-lock",
    "waitress-16-group",
    "waitress-8-nofts",
    "waitress-16-group-fast",
    "waitress-16-group-fast-nofts",
]


def _patch_store(synchronous: str = "FULL", write: str = "each") -> None:
    """Benchmark only: change how the collector's store writes, to measure a proposed change.

    ``synchronous``: the PRAGMA on every connection. ``write``: ``each`` (as shipped: every
    thread runs its own BEGIN IMMEDIATE/INSERT/COMMIT and waits for SQLite's lock in its busy
    handler), ``lock`` (the same transaction under a process-wide ``threading.Lock``, so threads
    queue on the lock instead of SQLite's sleeping busy handler), ``group`` (group commit: the
    thread that gets the lock commits every row queued meanwhile in one transaction, on one
    writer connection shared under the lock; each request still returns only after its own row
    is committed).
    """
    from tavus_analytics.errors import StoreUnavailable
    from tavus_analytics.store import Store, _unavailable

    if synchronous.upper() != "FULL":
        original_open = Store._open

        def _open(self):
            conn = original_open(self)
            conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
            return conn

        Store._open = _open
    if write == "lock":
        original_insert = Store.insert_callback
        write_lock = threading.Lock()

        def insert_callback(self, *args, **kwargs):
            with write_lock:
                return original_insert(self, *args, **kwargs)

        Store.insert_callback = insert_callback
    elif write == "group":
        write_lock = threading.Lock()
        queue_lock = threading.Lock()
        pending: list[list] = []
        writer: dict = {}

        def insert_callback(
            self, body, fields=None, *, received_at=None, remote_addr=None, user_agent=None
        ):
            from tavus_analytics.events import classify, parse_body

            if fields is None:
                fields = classify(parse_body(body))
            entry = [self._callback_row(body, fields, received_at, remote_addr, user_agent), None]
            with queue_lock:
                pending.append(entry)
            with write_lock:
                if entry[1] is None:  # nobody committed it yet: commit everything queued
                    with queue_lock:
                        batch = pending[:]
                        pending.clear()
                    # One writer connection for the whole process (SQLite's page cache
                    # stays warm); the lock makes sharing it safe.
                    conn = writer.get("conn")
                    if conn is None:
                        conn = writer["conn"] = self._open()
                    try:
                        conn.execute("BEGIN IMMEDIATE")
                        try:
                            results = [self._insert_row(conn, e[0]) for e in batch]
                            conn.execute("COMMIT")
                        except BaseException:
                            if conn.in_transaction:
                                conn.execute("ROLLBACK")
                            raise
                    except sqlite3.Error as e:
                        error = _unavailable(e)
                        for item in batch:
                            item[1] = error
                    else:
                        for item, result in zip(batch, results, strict=True):
                            item[1] = result
            if isinstance(entry[1], StoreUnavailable):
                raise entry[1]
            return entry[1]

        Store.insert_callback = insert_callback


def _patch_fast_path() -> None:
    """Benchmark only: serve the happy path of ``POST /webhook`` without Flask.

    A WSGI function in front of the Flask app handles a request with the right token, a
    Content-Length within the limit and a body that is a JSON object: it reads the body, stores
    it and answers the same JSON as the Flask route. Anything else (another route, no or wrong
    token, no length, too large, not JSON, database unavailable) goes to the Flask app
    untouched, the body put back when it was read. Measures what Flask's per-request work costs.
    """
    import hmac
    import io
    import logging
    from urllib.parse import parse_qs

    import orjson

    import tavus_analytics.app as app_module
    from tavus_analytics.errors import InvalidCallback, StoreUnavailable
    from tavus_analytics.events import classify, parse_body

    log = logging.getLogger("tavus_analytics.collector")
    original = app_module.create_app

    def create_app(settings=None, *, store=None):
        flask_app = original(settings, store=store)
        settings = flask_app.config["TAVUS_SETTINGS"]
        store = flask_app.extensions["tavus_store"]
        secret = None if settings.no_auth else app_module._digest(settings.secret)
        limit = settings.max_body

        def app(environ, start_response):
            if environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO") != "/webhook":
                return flask_app(environ, start_response)
            if secret is not None:
                query = parse_qs(environ.get("QUERY_STRING", ""))
                given = (query.get("token") or [""])[0] or environ.get("HTTP_X_WEBHOOK_TOKEN", "")
                if not hmac.compare_digest(app_module._digest(given), secret):
                    return flask_app(environ, start_response)
            try:
                length = int(environ.get("CONTENT_LENGTH") or "")
            except ValueError:
                return flask_app(environ, start_response)
            if not 0 < length <= limit:
                return flask_app(environ, start_response)
            body = environ["wsgi.input"].read(length)
            try:
                fields = classify(parse_body(body))
                rowid, duplicate = store.insert_callback(
                    body,
                    fields,
                    remote_addr=environ.get("REMOTE_ADDR"),
                    user_agent=environ.get("HTTP_USER_AGENT") or None,
                )
            except (InvalidCallback, StoreUnavailable):
                environ["wsgi.input"] = io.BytesIO(body)
                return flask_app(environ, start_response)
            log.info(
                "%s #%d %s %s %s",
                "duplicate of" if duplicate else "stored",
                rowid,
                fields.kind,
                fields.event_type or fields.status or "-",
                fields.conversation_id or fields.video_id or fields.replica_id or "-",
            )
            out = orjson.dumps({"ok": True, "status": "ok", "id": rowid, "duplicate": duplicate})
            start_response(
                "200 OK",
                [("Content-Type", "application/json"), ("Content-Length", str(len(out)))],
            )
            return [out]

        app.config = flask_app.config  # what callers of create_app look at
        app.extensions = flask_app.extensions
        return app

    app_module.create_app = create_app


def _stop_later(pid: int, lifetime: float) -> None:
    timer = threading.Timer(lifetime, os.kill, (pid, signal.SIGTERM))
    timer.daemon = True
    timer.start()


def gunicorn_app():
    """The gunicorn entry: ``bench_collector:gunicorn_app()``, settings from the environment.

    Logs like ``python collector.py`` does (one INFO line per callback, unless BENCH_QUIET=1)
    and stops the gunicorn master after BENCH_LIFETIME seconds.
    """
    import logging

    from tavus_analytics.app import create_app

    quiet = os.environ.get("BENCH_QUIET") == "1"
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    _patch_store(os.environ.get("BENCH_SYNCHRONOUS", "FULL"), os.environ.get("BENCH_WRITE", "each"))
    _stop_later(os.getppid(), float(os.environ.get("BENCH_LIFETIME", "600")))
    if os.environ.get("BENCH_FAST") == "1":
        _patch_fast_path()
        from tavus_analytics.app import create_app
    return create_app()


def _serve_collector(argv: list[str]) -> None:
    """``--serve-collector SYNC WRITE FAST QUIET LIFETIME ARGS...``: ``python collector.py ARGS``
    with the benchmark's knobs applied first."""
    import logging

    synchronous, write, fast, quiet, lifetime, *args = argv
    if quiet == "1":  # serve() calls basicConfig(INFO), which is then a no-op
        logging.basicConfig(level=logging.WARNING)
    _patch_store(synchronous, write)
    if fast == "1":
        _patch_fast_path()
    _stop_later(os.getpid(), float(lifetime))
    from tavus_analytics.cli import serve

    serve(args=args, prog_name="collector.py")


@dataclass
class Running:
    config: Config
    proc: subprocess.Popen
    port: int
    db: Path | None
    log: Path


def start(config: Config, workdir: Path, lifetime: float) -> Running:
    """Start ``config``'s server on a free 127.0.0.1 port and wait for ``/healthz``."""
    port = free_port()
    py = sys.executable
    run = f"{config.name}-{time.monotonic_ns()}"
    db = workdir / f"{run}.db" if config.is_collector else None
    log = workdir / f"{run}.log"
    env = dict(os.environ)
    if config.kind == "trivial":
        cmd = [py, str(HERE / "loadgen.py"), "--serve-trivial", str(port), str(lifetime)]
    elif config.kind == "reference":
        cmd = [
            py,
            str(HERE / "reference_server.py"),
            "--port",
            str(port),
            "--lifetime",
            str(lifetime),
        ]
    elif config.kind == "waitress":
        cmd = [
            py,
            str(HERE / "bench_collector.py"),
            "--serve-collector",
            config.synchronous,
            config.write,
            "1" if config.fast else "0",
            "1" if config.quiet else "0",
            str(lifetime),
            "--port",
            str(port),
            "--db",
            str(db),
            "--secret",
            SECRET,
            "--threads",
            str(config.threads),
        ]
    else:
        cmd = [
            py,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(config.workers),
            "--worker-class",
            config.worker_class,
            "--threads",
            str(config.threads),
            "--pythonpath",
            str(HERE),
            "bench_collector:gunicorn_app()",
        ]
        env.update(
            TAVUS_ANALYTICS_DB=str(db),
            TAVUS_WEBHOOK_SECRET=SECRET,
            BENCH_SYNCHRONOUS=config.synchronous,
            BENCH_WRITE=config.write,
            BENCH_FAST="1" if config.fast else "0",
            BENCH_QUIET="1" if config.quiet else "0",
            BENCH_LIFETIME=str(lifetime),
        )
    if db is not None:  # create the schema first, as an operator's first start would
        from tavus_analytics.store import Store

        with Store(db) as store:
            store.migrate()
            if not config.fts:  # measure what the trigger costs on the write path
                store.connection().execute("DROP TRIGGER IF EXISTS callbacks_transcript_fts")
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    running = Running(config, proc, port, db, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{config.name} exited at start:\n{log.read_text()[-2000:]}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return running
        time.sleep(0.1)
    stop(running)
    raise RuntimeError(f"{config.name} did not answer /healthz within 30 s")


def stop(running: Running) -> None:
    """Stop the server by its PID (SIGTERM, then SIGKILL of its own process group)."""
    proc = running.proc
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def _cpu_seconds(pid: int) -> float | None:
    """CPU time of a process and its live children (gunicorn workers), from /proc."""
    try:
        tick = os.sysconf("SC_CLK_TCK")
        pids = [pid]
        with contextlib.suppress(OSError):
            pids += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        total = 0
        for p in pids:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        return total / tick
    except (OSError, ValueError, IndexError):
        return None


def stored_count(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT count(*) FROM callbacks").fetchone()[0]
    finally:
        conn.close()


def fsync_ms(folder: Path, n: int = 30) -> float:
    """Median time of an fsync after a 4 KB append in ``folder``, in ms: what a durable commit
    waits for. It varies a lot on a shared machine, and the collector's figures with it."""
    path = folder / f"fsync-probe-{time.monotonic_ns()}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    times = []
    try:
        for _ in range(n):
            t = time.perf_counter()
            os.write(fd, b"x" * 4096)
            os.fsync(fd)
            times.append(time.perf_counter() - t)
    finally:
        os.close(fd)
        path.unlink()
    return 1000 * statistics.median(times)


@dataclass
class Row:
    config: Config
    load: LoadResult
    server_cpu_s: float | None
    stored: int | None
    fsync_ms: float | None = None


def measure(config: Config, templates, args, workdir: Path) -> Row:
    """One bounded run against one server; the server is stopped before this returns."""
    lifetime = args.warmup + args.seconds + 120
    fsync = fsync_ms(workdir) if config.is_collector else None
    running = start(config, workdir, lifetime)
    try:
        cpu0 = _cpu_seconds(running.proc.pid)
        load = run_load(
            "127.0.0.1",
            running.port,
            f"/webhook?token={SECRET}",
            templates,
            seconds=args.seconds,
            connections=args.connections,
            processes=args.processes,
            warmup=args.warmup,
            ack_any_200=not config.is_collector,
        )
        cpu1 = _cpu_seconds(running.proc.pid)
    finally:
        stop(running)
    server_cpu = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
    stored = None
    if running.db is not None:
        stored = stored_count(running.db)
        for path in running.db.parent.glob(running.db.name + "*"):
            path.unlink()
    return Row(config, load, server_cpu, stored, fsync)


# -- report -------------------------------------------------------------------------------------


@dataclass
class Summary:
    """The runs of one config, summarized by their medians."""

    config: Config
    runs: list[Row]

    def _median(self, values) -> float:
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else float("nan")

    @property
    def rps(self) -> float:
        return self._median(r.load.rps for r in self.runs)

    @property
    def p50_ms(self) -> float:
        return self._median(r.load.p50_ms for r in self.runs)

    @property
    def p99_ms(self) -> float:
        return self._median(r.load.p99_ms for r in self.runs)

    @property
    def stored(self) -> int | None:
        if self.runs[0].stored is None:
            return None
        return sum(r.stored for r in self.runs)

    @property
    def acked(self) -> int:
        return sum(r.load.acked for r in self.runs)

    @property
    def durable(self) -> bool:
        return all(r.stored == r.load.acked and r.load.unanswered == 0 for r in self.runs)

    def line(self, wall: float) -> str:
        cpu = self._median(r.server_cpu_s for r in self.runs) / wall
        gen = self._median(r.load.generator_cpu_s for r in self.runs) / wall
        bad = sum(
            sum(n for code, n in r.load.statuses.items() if code != 200)
            + sum(r.load.errors.values())
            for r in self.runs
        )
        if self.stored is None:
            durable = "not stored"
        else:
            durable = f"{self.stored}/{self.acked} {'ok' if self.durable else 'MISMATCH'}"
        spread = ""
        if len(self.runs) > 1:
            rates = [r.load.rps for r in self.runs]
            spread = f" ({min(rates):.0f}-{max(rates):.0f})"
        fsync = self._median(r.fsync_ms for r in self.runs)
        fsync_text = "" if fsync != fsync else f"{fsync:.2f}"
        return (
            f"{self.config.name:28s} {self.rps:7.0f}{spread:14s} {self.p50_ms:7.2f} "
            f"{self.p99_ms:7.2f} {cpu:6.0%} {gen:6.0%} {fsync_text:>6s} {bad:6d}  {durable}"
        )


def report(rows: list[Row], args, source: str, mix: str) -> bool:
    """Print the table (medians over repeats) and the ratios; False if a check failed."""
    wall = args.warmup + args.seconds
    summaries: dict[str, Summary] = {}
    for row in rows:
        summaries.setdefault(row.config.name, Summary(row.config, [])).runs.append(row)
    print()
    print(
        f"{os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{datetime.now(UTC):%Y-%m-%d}; {args.connections} connections, {args.processes} "
        f"generator processes, {args.seconds:g} s measured after {args.warmup:g} s warm-up, "
        f"{args.repeat} run(s) per server, medians"
    )
    print(f"bodies from {source}: {mix}")
    print()
    print(
        f"{'server':28s} {'req/s':>7s}{'':14s} {'p50 ms':>7s} {'p99 ms':>7s} {'srvCPU':>6s} "
        f"{'genCPU':>6s} {'fsync':>6s} {'errors':>6s}  stored/acknowledged"
    )
    for summary in summaries.values():
        print(summary.line(wall))
    print()
    for summary in summaries.values():
        print(f"  {summary.config.name}: {summary.config.describe()}")
    ok = True
    for row in rows:
        if row.stored is not None and (row.stored != row.load.acked or row.load.unanswered):
            ok = False
            print(
                f"DURABILITY MISMATCH in {row.config.name}: {row.stored} rows stored, "
                f"{row.load.acked} acknowledged, {row.load.unanswered} unanswered"
            )
        if row.load.duplicates:
            ok = False
            print(f"{row.config.name}: {row.load.duplicates} bodies were duplicates (should be 0)")
    ref = summaries.get("reference")
    if ref is not None:
        print()
        print(
            f"collector / reference requests/s (target: >= {TARGET_RATIO:g}x with p99 < "
            f"{TARGET_P99_MS:g} ms at {args.connections} connections):"
        )
        for summary in summaries.values():
            if summary.config.is_collector:
                ratio = summary.rps / ref.rps if ref.rps else float("inf")
                met = ratio >= TARGET_RATIO and summary.p99_ms < TARGET_P99_MS
                print(
                    f"  {summary.config.name:28s} {ratio:5.2f}x  p99 {summary.p99_ms:6.2f} ms  "
                    f"{'target met' if met else 'target missed'}; database holds "
                    f"{summary.stored} callbacks, {summary.acked} acknowledged"
                )
    return ok


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--serve-collector"]:
        _serve_collector(argv[1:])
        return 0
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per server")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before measuring")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--processes", type=int, default=2, help="load generator processes")
    parser.add_argument(
        "--conversations", type=int, default=300, help="demo conversations the bodies come from"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--configs",
        default=",".join(DEFAULT_CONFIGS),
        help=f"comma-separated, from: {', '.join(CONFIGS)}",
    )
    parser.add_argument(
        "--matrix", action="store_true", help="the WSGI server choice: " + ", ".join(MATRIX)
    )
    parser.add_argument(
        "--proposals",
        action="store_true",
        help="proposed changes to the collector: " + ", ".join(PROPOSALS),
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per server, interleaved; medians are shown"
    )
    args = parser.parse_args(argv)
    if args.matrix or args.proposals:
        names = list(
            dict.fromkeys((MATRIX if args.matrix else []) + (PROPOSALS if args.proposals else []))
        )
    else:
        names = [n.strip() for n in args.configs.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        parser.error(f"unknown config(s) {', '.join(unknown)}: choose from {', '.join(CONFIGS)}")

    bodies, source = make_bodies(args.conversations, seed=args.seed)
    templates, skipped = make_templates(bodies)
    mix = describe_mix(templates) + (f" ({skipped} bodies skipped)" if skipped else "")
    print(f"bodies from {source}: {mix}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="tavus-bench-") as tmp:
        for _ in range(max(1, args.repeat)):
            for name in names:
                config = CONFIGS[name]
                print(f"{name}: {config.describe()} ...", end=" ", flush=True)
                row = measure(config, templates, args, Path(tmp))
                print(row.load.summary(), flush=True)
                rows.append(row)
    return 0 if report(rows, args, source, mix) else 1


if __name__ == "__main__":
    sys.exit(main())
