"""Collector throughput and latency, side by side with Tavus's sample webhook server.

Runs, in one go and on loopback, a bounded load (a fixed number of seconds and connections) against

* ``ceiling``: a trivial asyncio server that answers at once, to show the load generator's own
  ceiling on this machine;
* ``reference``: what Tavus's documented Flask sample does (parse the JSON, transcripts in a
  dict, no persistence, Flask's development server, threaded), ``reference_server.py``;
* ``collector``: exactly ``python collector.py --port N --db TMP --secret S``, the default
  server (granian, one worker process of 16 threads, every callback committed to SQLite before
  the 200);
* ``collector-waitress``: the same with ``--server waitress`` (one process, pure Python);
* ``collector-workers-2``: the same with ``--server gunicorn --workers 2`` (two gunicorn gthread
  processes);

prints requests/s, p50 and p99 latency of each and each collector's ratio to the reference
against the target, then checks that every collector's database holds exactly the callbacks
acknowledged. The exit status is 1 when a check fails or when the default (``collector``)
misses the target. ``--matrix`` adds the variants: more or fewer threads, more workers, and
``synchronous=NORMAL`` through a benchmark-only patch (:func:`_patch_synchronous`).

    python benchmarks/bench_collector.py                    # about 1 minute
    python benchmarks/bench_collector.py --repeat 3         # about 3 minutes
    python benchmarks/bench_collector.py --matrix           # about 2 minutes
    python benchmarks/bench_collector.py --configs reference,granian-8 --seconds 5 --repeat 3

``srvCPU`` and ``genCPU`` are the server's (all its processes) and the load generator's CPU time
over the run's wall time (100% = one core); ``fsync`` is the median fsync time measured just
before each collector run (what every durable commit waits for; it varies on a shared machine).
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
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from loadgen import LoadResult, free_port, make_templates, run_load  # noqa: E402

from tavus_analytics.testing import process_group  # noqa: E402

SECRET = "bench-secret"

#: Targets of the issue: collector/reference requests/s at 16 connections, and p99.
TARGET_RATIO = 3.5
TARGET_P99_MS = 25.0
#: The config that is ``python collector.py`` as shipped: the run fails if it misses the target.
DEFAULT_CONFIG = "collector"


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
    """One server to measure.

    ``kind``: ``trivial`` (the generator's ceiling), ``reference`` (Tavus's sample) or
    ``collector`` (``python collector.py``, with ``args`` added to its command line).
    ``synchronous``: ``FULL`` as shipped; anything else is applied by :func:`_patch_synchronous`,
    a benchmark-only patch.
    """

    name: str
    kind: str
    args: tuple[str, ...] = ()
    synchronous: str = "FULL"

    @property
    def is_collector(self) -> bool:
        return self.kind == "collector"

    @property
    def workers(self) -> int:
        """Processes of the collector (granian and gunicorn run them under a master)."""
        if "--workers" in self.args:
            return int(self.args[self.args.index("--workers") + 1])
        return 1

    @property
    def server(self) -> str:
        if "--server" in self.args:
            return self.args[self.args.index("--server") + 1]
        from tavus_analytics import Settings

        return Settings().server  # the collector's default

    @property
    def threads(self) -> int:
        if "--threads" in self.args:
            return int(self.args[self.args.index("--threads") + 1])
        from tavus_analytics import Settings

        return Settings().threads  # the collector's default

    def describe(self) -> str:
        if self.kind == "trivial":
            return "trivial asyncio server (generator ceiling)"
        if self.kind == "reference":
            return "Tavus sample: Flask dev server, dict in memory"
        if self.server == "waitress":
            what = f"waitress 1 process, {self.threads} threads"
        else:
            n = self.workers
            what = f"{self.server} {n} process{'es' if n > 1 else ''} x {self.threads} threads"
        extra = "" if self.synchronous == "FULL" else " (benchmark-only patch)"
        command = " ".join(["collector.py", *self.args]) if self.args else "collector.py"
        return f"{command}: {what}, synchronous={self.synchronous}{extra}"


CONFIGS = {
    c.name: c
    for c in [
        Config("ceiling", "trivial"),
        Config("reference", "reference"),
        Config("collector", "collector"),
        Config("collector-waitress", "collector", ("--server", "waitress")),
        Config("collector-workers-2", "collector", ("--server", "gunicorn", "--workers", "2")),
        Config("granian-workers-2", "collector", ("--server", "granian", "--workers", "2")),
        Config("collector-workers-3", "collector", ("--server", "gunicorn", "--workers", "3")),
        Config("granian-4", "collector", ("--server", "granian", "--threads", "4")),
        Config("granian-8", "collector", ("--server", "granian", "--threads", "8")),
        Config("waitress-4", "collector", ("--server", "waitress", "--threads", "4")),
        Config("waitress-8", "collector", ("--server", "waitress", "--threads", "8")),
        Config("collector-normal", "collector", synchronous="NORMAL"),
        Config(
            "collector-workers-2-normal",
            "collector",
            ("--server", "gunicorn", "--workers", "2"),
            "NORMAL",
        ),
    ]
}
DEFAULT_CONFIGS = ["ceiling", "reference", "collector", "collector-waitress", "collector-workers-2"]
#: ``--matrix``: every variant, side by side with the reference.
MATRIX = [name for name in CONFIGS if name != "ceiling"]


def _patch_synchronous(level: str) -> None:
    """BENCHMARK ONLY, never in the collector: every store connection gets
    ``PRAGMA synchronous = level`` after the shipped ``FULL``.

    Measures what durability costs. With ``NORMAL`` in WAL mode a power loss or OS crash can
    lose the last commits (a killed process loses nothing), so the collector ships ``FULL``.
    """
    from tavus_analytics.store import Store

    level = level.upper()
    if level not in ("OFF", "NORMAL", "FULL", "EXTRA"):
        raise ValueError(f"not a synchronous level: {level}")
    original_open = Store._open

    def _open(self):
        conn = original_open(self)
        conn.execute(f"PRAGMA synchronous = {level}")
        return conn

    Store._open = _open


def _serve_patched(argv: list[str]) -> None:
    """``--serve-synchronous LEVEL ARGS...``: ``python collector.py ARGS`` with
    :func:`_patch_synchronous` applied first (benchmark only)."""
    level, *args = argv
    _patch_synchronous(level)
    from tavus_analytics.cli import serve

    serve(args=args, prog_name="collector.py")


def _alarm(seconds: float):
    """A ``preexec_fn`` that makes the child end itself after ``seconds``: the pending SIGALRM
    survives ``exec``, and neither granian's supervisor, waitress nor gunicorn's master handles
    it (granian's and gunicorn's workers leave when their supervisor is gone). The benchmark
    stops its servers itself; this only bounds a server left behind when the benchmark is
    killed."""
    if not hasattr(signal, "alarm"):
        return None
    return lambda: signal.alarm(max(1, int(seconds)))


@dataclass
class Running:
    config: Config
    proc: subprocess.Popen
    port: int
    db: Path | None
    log: Path


def command(config: Config, port: int, db: Path | None, lifetime: float) -> list[str]:
    """The command line that starts ``config``'s server on ``port``."""
    py = sys.executable
    if config.kind == "trivial":
        return [py, str(HERE / "loadgen.py"), "--serve-trivial", str(port), str(lifetime)]
    if config.kind == "reference":
        return [
            py,
            str(HERE / "reference_server.py"),
            "--port",
            str(port),
            "--lifetime",
            str(lifetime),
        ]
    args = ["--port", str(port), "--db", str(db), "--secret", SECRET, *config.args]
    if config.synchronous.upper() != "FULL":
        return [
            py,
            str(HERE / "bench_collector.py"),
            "--serve-synchronous",
            config.synchronous,
            *args,
        ]
    return [py, "collector.py", *args]


def start(config: Config, workdir: Path, lifetime: float) -> Running:
    """Start ``config``'s server on a free 127.0.0.1 port, in its own process group, and wait
    for ``/healthz``."""
    port = free_port()
    run = f"{config.name}-{time.monotonic_ns()}"
    db = workdir / f"{run}.db" if config.is_collector else None
    log = workdir / f"{run}.log"
    cmd = command(config, port, db, lifetime)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: gunicorn's master and workers
            preexec_fn=_alarm(lifetime) if config.is_collector else None,
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
    """Stop the server's process group (SIGTERM, then SIGKILL after 10 s).

    The group is the one the server was started in (``start_new_session``): the server alone
    for waitress, granian's supervisor and its workers, gunicorn's master and its workers.
    """
    proc = running.proc
    pgid = proc.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(10)
    deadline = time.monotonic() + 10
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _group_alive(pgid) or proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        proc.wait(5)


def _group(pgid: int) -> list[list[str]] | None:
    """The ``/proc/PID/stat`` fields (after the command name) of the live processes of group
    ``pgid``; None where there is no ``/proc``."""
    members = process_group(pgid)
    return None if members is None else list(members.values())


def _group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` still runs (zombies waiting for init do not)."""
    members = _group(pgid)
    if members is not None:
        return bool(members)
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _cpu_seconds(pgid: int) -> float | None:
    """CPU time of the live processes of group ``pgid`` (gunicorn's master and workers)."""
    members = _group(pgid)
    if members is None:
        return None
    try:
        ticks = sum(int(f[11]) + int(f[12]) for f in members)
    except (ValueError, IndexError):
        return None
    return ticks / os.sysconf("SC_CLK_TCK")


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


def load_average() -> str:
    """The 1, 5 and 15-minute load averages, or ``n/a``."""
    try:
        return "/".join(f"{x:.2f}" for x in os.getloadavg())
    except (AttributeError, OSError):
        return "n/a"


def report(rows: list[Row], args, source: str, mix: str, load_at_start: str = "n/a") -> bool:
    """Print the table (medians over repeats), the ratios to the reference and the durability
    check of each collector config; False if a check failed or the default config (measured
    beside the reference) missed the target."""
    wall = args.warmup + args.seconds
    summaries: dict[str, Summary] = {}
    for row in rows:
        summaries.setdefault(row.config.name, Summary(row.config, [])).runs.append(row)
    print()
    print(
        f"{os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{datetime.now(UTC):%Y-%m-%d}; {args.connections} connections, {args.processes} "
        f"generator processes, {args.seconds:g} s measured after {args.warmup:g} s warm-up, "
        f"{args.repeat} run(s) per server, medians; load average at start {load_at_start}"
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
                default = summary.config.name == DEFAULT_CONFIG
                print(
                    f"  {summary.config.name:27s} {ratio:5.2f}x  p99 {summary.p99_ms:6.2f} ms  "
                    f"{'target met' if met else 'target missed'}"
                    + (f" (the default, {summary.config.server})" if default else "")
                )
                if default and not met:
                    ok = False
    collectors = [s for s in summaries.values() if s.config.is_collector]
    if collectors:
        print()
        print("durability (rows stored == callbacks acknowledged, every run):")
        for summary in collectors:
            print(
                f"  {summary.config.name:27s} {summary.stored} stored, {summary.acked} "
                f"acknowledged: {'ok' if summary.durable else 'MISMATCH'}"
            )
    return ok


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--serve-synchronous"]:
        _serve_patched(argv[1:])
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
    parser.add_argument("--matrix", action="store_true", help="every variant: " + ", ".join(MATRIX))
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per server, interleaved; medians are shown"
    )
    args = parser.parse_args(argv)
    if args.matrix:
        names = list(MATRIX)
    else:
        names = [n.strip() for n in args.configs.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        parser.error(f"unknown config(s) {', '.join(unknown)}: choose from {', '.join(CONFIGS)}")

    load_at_start = load_average()
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
    return 0 if report(rows, args, source, mix, load_at_start) else 1


if __name__ == "__main__":
    sys.exit(main())
