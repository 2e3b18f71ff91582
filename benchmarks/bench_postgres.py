"""PostgreSQL beside SQLite: collector ingest and ``ta.load`` time, side by side in one run.

Starts a throwaway PostgreSQL server (initdb and pg_ctl in a temporary folder, fsync on, on a
free ``127.0.0.1`` port) and measures, one after the other in the same run:

**Ingest.** The collector exactly as shipped (``python collector.py --port N --db DB --secret S``,
waitress) under the collector benchmark's load generator, bodies and helpers
(``bench_collector.py``, ``loadgen.py``):

* ``sqlite``: one collector into a temporary SQLite file;
* ``pg-1``: one collector into a PostgreSQL database;
* ``pg-2``: two collector processes on two ports into one PostgreSQL database, the connections
  split evenly between them (one generator process or more per port, every body unique across
  both).

It prints requests/s, p50/p99 latency, the CPU of the collectors, of PostgreSQL (all its
processes) and of the generator (100% = one core), the ratios ``pg-1/sqlite`` and
``pg-2/sqlite``, and checks that each database holds exactly the callbacks acknowledged.

**Load time.** A demo database of about ``--callbacks`` callbacks
(``tavus_analytics.demo.write``, cached in ``benchmarks/out/demo-N.db`` like ``bench_load.py``'s,
and reused from there) is copied into PostgreSQL with ``copy_history`` (``tavus-analytics
migrate``; its rate is printed), then ``ta.load(db).conversations``, ``.turns`` and ``.events``
are each built from a fresh Dataset, in a process of its own, from SQLite and from PostgreSQL,
interleaved, after one warm-up read of each store. Each process times its own work after its
imports and reports its peak resident memory (``ru_maxrss``; PostgreSQL's own memory is not in
it).

    python benchmarks/bench_postgres.py                  # about 5 min (+1 min to make the demo)
    python benchmarks/bench_postgres.py --skip-load      # the ingest part only (about 1 min)
    python benchmarks/bench_postgres.py --seconds 5 --connections 8 --callbacks 200000

Every server and process it starts is stopped by its PID at the end, on Ctrl-C and on error;
a watchdog process stops the PostgreSQL server if the benchmark itself is killed. Exits 1 when
a database does not hold exactly the callbacks acknowledged, or a load fails.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import multiprocessing
import os
import platform
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(ROOT))  # the tests package: tests.pgserver, the throwaway server

import bench_collector as bc  # noqa: E402
import loadgen  # noqa: E402

#: Callbacks per demo conversation (measured: 468,352 for 100,000, 1,169,283 for 250,000).
CALLBACKS_PER_CONVERSATION = 4.677
#: A cached demo database is reused when its callbacks are within this share of the size asked.
SIZE_TOLERANCE = 0.05
TABLES = ("conversations", "turns", "events")
_DB_ENV = "TAVUS_BENCH_POSTGRES_DB"  # how a load child gets its database (a URL has a password)


# -- the throwaway PostgreSQL server ------------------------------------------------------------
@dataclass
class Postgres:
    """A running throwaway server: its folder, URL (``postgres`` database) and postmaster PID."""

    folder: Path
    url: str
    pid: int
    watchdog: subprocess.Popen | None = None

    def database_url(self, name: str) -> str:
        """A new empty database ``name`` on this server; its URL."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            admin.execute(f"CREATE DATABASE {name}")
        return self.url.rsplit("/", 1)[0] + "/" + name

    def version(self) -> str:
        import psycopg

        with psycopg.connect(self.url) as conn:
            return conn.execute("SHOW server_version").fetchone()[0].split()[0]


def start_postgres() -> Postgres:
    """Start a durable throwaway server (fsync on) and a watchdog that stops it if this process
    is killed before it can."""
    from tests import pgserver

    if pgserver.bindir() is None:
        raise RuntimeError("PostgreSQL is not installed (no initdb/pg_ctl found)")
    folder = Path(tempfile.mkdtemp(prefix="tavus-bench-pg-"))  # the server's user can enter it
    try:
        url = pgserver.start(folder, durable=True)
    except BaseException:
        pgserver.stop(folder)
        shutil.rmtree(folder, ignore_errors=True)
        raise
    pid = int((folder / "data" / "postmaster.pid").read_text().split()[0])
    pg = Postgres(folder, url, pid)
    pg.watchdog = subprocess.Popen(
        [sys.executable, __file__, "--watchdog", str(os.getpid()), str(folder)],
        cwd=ROOT,
        start_new_session=True,  # Ctrl-C reaches the benchmark, not its watchdog
        stdout=subprocess.DEVNULL,
    )
    return pg


def stop_postgres(pg: Postgres) -> None:
    """Stop the server (``pg_ctl stop`` on its data folder), remove its folder, end the
    watchdog by its PID."""
    from tests import pgserver

    try:
        pgserver.stop(pg.folder)
    finally:
        shutil.rmtree(pg.folder, ignore_errors=True)
        if pg.watchdog is not None and pg.watchdog.poll() is None:
            pg.watchdog.terminate()
            pg.watchdog.wait(10)


def _watchdog(parent: int, folder: str) -> None:
    """Wait for ``parent`` to end, then stop the server of ``folder`` if it still runs."""
    from tests import pgserver

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            break
        time.sleep(1)
    if Path(folder, "data").exists():
        pgserver.stop(folder)
        shutil.rmtree(folder, ignore_errors=True)


# -- ingest -------------------------------------------------------------------------------------
def start_collector(name: str, db: str, workdir: Path, lifetime: float) -> bc.Running:
    """``python collector.py --port N --db DB --secret S`` on a free port, in its own process
    group, bounded by an alarm; waits for ``/healthz``. (``bench_collector.start`` with the
    database given instead of made in ``workdir``.)"""
    config = bc.Config(name, "collector")
    port = loadgen.free_port()
    log = workdir / f"{name}-{time.monotonic_ns()}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            bc.command(config, port, db, lifetime),  # type: ignore[arg-type]
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=bc._alarm(lifetime),
        )
    running = bc.Running(config, proc, port, None, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited at start:\n{log.read_text()[-2000:]}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return running
        time.sleep(0.1)
    bc.stop(running)
    raise RuntimeError(f"{name} did not answer /healthz within 30 s")


def run_load_ports(
    ports: list[int],
    templates: list[loadgen.Template],
    *,
    seconds: float,
    connections: int,
    processes: int,
    warmup: float,
) -> loadgen.LoadResult:
    """:func:`loadgen.run_load` against several ports of 127.0.0.1 at once, connections split
    evenly: generator process ``i`` sends to ``ports[i % len(ports)]``, and every process of
    every port renders distinct bodies (one counter stride over all of them)."""
    if len(ports) == 1:
        return loadgen.run_load(
            "127.0.0.1",
            ports[0],
            f"/webhook?token={bc.SECRET}",
            templates,
            seconds=seconds,
            connections=connections,
            processes=processes,
            warmup=warmup,
        )
    per_port = max(1, min(processes, connections) // len(ports))
    total = per_port * len(ports)
    if connections < total:
        raise ValueError(f"{connections} connections cannot keep {total} generator processes busy")
    drain = 30.0
    cfg = {
        "host": "127.0.0.1",
        "path": f"/webhook?token={bc.SECRET}",
        "seconds": seconds,
        "warmup": warmup,
        "drain_timeout": drain,
        "processes": total,  # the stride of the body counter
        "ack_any_200": False,
        "start_at": time.monotonic() + 0.3 + 0.1 * total,
    }
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    ctx = multiprocessing.get_context(method)
    procs, pipes = [], []
    try:
        for i in range(total):
            n = connections // total + (1 if i < connections % total else 0)
            parent, child = ctx.Pipe(duplex=False)
            p = ctx.Process(
                target=loadgen._worker,
                args=({**cfg, "port": ports[i % len(ports)]}, templates, i, n, child),
                daemon=True,
            )
            p.start()
            child.close()
            procs.append(p)
            pipes.append(parent)
        results = []
        deadline = time.monotonic() + 5 + warmup + seconds + drain + 10
        for pipe in pipes:
            if not pipe.poll(max(0.0, deadline - time.monotonic())):
                raise RuntimeError("a load generator process did not report in time")
            got = pipe.recv()
            if isinstance(got, BaseException):
                raise RuntimeError(f"load generator process failed: {got!r}") from got
            results.append(got)
    finally:
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join(5)
    return loadgen._merge(results, seconds, connections, total)


@dataclass
class IngestRow:
    name: str
    what: str
    load: loadgen.LoadResult
    collectors_cpu_s: float | None
    postgres_cpu_s: float | None
    stored: int
    fsync_ms: float

    @property
    def durable(self) -> bool:
        return (
            self.stored == self.load.acked
            and self.load.unanswered == 0
            and self.load.duplicates == 0
        )


def postgres_cpu(postmaster: int) -> float | None:
    """CPU seconds of the PostgreSQL server: the postmaster and its live children (backends
    call ``setsid``, so they are not in its process group)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    ticks = 0
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if entry.name == str(postmaster) or fields[1] == str(postmaster):
                ticks += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
    return ticks / os.sysconf("SC_CLK_TCK")


def _sum_cpu(pids: list[int]) -> float | None:
    values = [bc._cpu_seconds(pid) for pid in pids]
    return None if any(v is None for v in values) else sum(values)


def count_stored(db: str) -> int:
    if db.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(db) as conn:
            return conn.execute("SELECT count(*) FROM callbacks").fetchone()[0]
    return bc.stored_count(Path(db))


def measure_ingest(
    name: str, what: str, dbs: list[str], templates, args, workdir: Path, pg: Postgres
) -> IngestRow:
    """One bounded run against ``len(dbs)`` collectors (collector ``i`` on ``dbs[i]``); they
    are stopped, by their process groups, before this returns."""
    lifetime = args.warmup + args.seconds + 120
    fsync = bc.fsync_ms(workdir)
    runnings: list[bc.Running] = []
    try:
        for i, db in enumerate(dbs):
            runnings.append(start_collector(f"{name}-{i}", db, workdir, lifetime))
        pids = [r.proc.pid for r in runnings]
        uses_pg = any(db.startswith("postgresql://") for db in dbs)
        cpu0, pg0 = _sum_cpu(pids), postgres_cpu(pg.pid) if uses_pg else None
        load = run_load_ports(
            [r.port for r in runnings],
            templates,
            seconds=args.seconds,
            connections=args.connections,
            processes=args.processes,
            warmup=args.warmup,
        )
        cpu1, pg1 = _sum_cpu(pids), postgres_cpu(pg.pid) if uses_pg else None
    finally:
        for running in runnings:
            bc.stop(running)
    cpu = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
    pg_cpu = None if pg0 is None or pg1 is None else pg1 - pg0
    return IngestRow(name, what, load, cpu, pg_cpu, count_stored(dbs[0]), fsync)


def ingest(args, pg: Postgres, workdir: Path) -> tuple[list[IngestRow], bool]:
    bodies, source = bc.make_bodies(args.conversations, seed=args.seed)
    templates, skipped = loadgen.make_templates(bodies)
    mix = bc.describe_mix(templates) + (f" ({skipped} bodies skipped)" if skipped else "")
    print(f"bodies from {source}: {mix}", flush=True)
    pg1 = pg.database_url("bench_ingest_1")
    pg2 = pg.database_url("bench_ingest_2")
    plan = [
        ("sqlite", "1 collector -> SQLite file", [str(workdir / "ingest.db")]),
        ("pg-1", "1 collector -> PostgreSQL", [pg1]),
        ("pg-2", "2 collectors (2 ports) -> one PostgreSQL db", [pg2, pg2]),
    ]
    rows = []
    for name, what, dbs in plan:
        print(f"{name}: {what} ...", end=" ", flush=True)
        row = measure_ingest(name, what, dbs, templates, args, workdir, pg)
        print(row.load.summary(), flush=True)
        rows.append(row)
    wall = args.warmup + args.seconds

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{value / wall:.0%}"

    print()
    print(
        f"{'config':8s} {'req/s':>7s} {'p50 ms':>7s} {'p99 ms':>7s} {'srvCPU':>6s} {'pgCPU':>6s} "
        f"{'genCPU':>6s} {'fsync':>6s} {'errors':>6s}  what"
    )
    for r in rows:
        errors = sum(n for code, n in r.load.statuses.items() if code != 200) + sum(
            r.load.errors.values()
        )
        pg_cpu = "" if r.postgres_cpu_s is None else pct(r.postgres_cpu_s)
        print(
            f"{r.name:8s} {r.load.rps:7.0f} {r.load.p50_ms:7.2f} {r.load.p99_ms:7.2f} "
            f"{pct(r.collectors_cpu_s):>6s} {pg_cpu:>6s} {pct(r.load.generator_cpu_s):>6s} "
            f"{r.fsync_ms:6.2f} {errors:6d}  {r.what}"
        )
    base = rows[0].load.rps
    print()
    print("requests/s against one collector into SQLite, same run:")
    for r in rows[1:]:
        ratio = r.load.rps / base if base else float("nan")
        print(f"  ratio {r.name}/sqlite {ratio:5.2f}x  (p99 {r.load.p99_ms:.2f} ms)")
    print()
    print("durability (rows stored == callbacks acknowledged):")
    ok = True
    for r in rows:
        verdict = "ok" if r.durable else "MISMATCH"
        ok = ok and r.durable
        extra = ""
        if r.load.unanswered or r.load.duplicates:
            extra = f" ({r.load.unanswered} unanswered, {r.load.duplicates} duplicates)"
        print(f"  {r.name:8s} {r.stored} stored == {r.load.acked} acknowledged: {verdict}{extra}")
    return rows, ok


# -- load time ----------------------------------------------------------------------------------
def _count_callbacks(path: Path) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT count(*) FROM callbacks").fetchone()[0]
    finally:
        conn.close()


def demo_database(callbacks: int, cache: Path) -> tuple[Path, int]:
    """A demo database of about ``callbacks`` callbacks: a cached ``demo-N.db`` of ``cache``
    within :data:`SIZE_TOLERANCE` of it, else one made with ``demo.write`` and kept there
    (named as ``bench_load.py`` names its own, so either reuses the other's)."""
    cache.mkdir(parents=True, exist_ok=True)
    candidates = []
    for path in cache.glob("demo-*.db"):
        try:
            conversations = int(path.stem.split("-", 1)[1])
        except ValueError:
            continue
        guess = conversations * CALLBACKS_PER_CONVERSATION
        if abs(guess - callbacks) <= 2 * SIZE_TOLERANCE * callbacks:
            candidates.append(path)
    for path in sorted(candidates, key=lambda p: p.stat().st_size):
        n = _count_callbacks(path)
        if abs(n - callbacks) <= SIZE_TOLERANCE * callbacks:
            return path, n
    conversations = max(10, round(callbacks / CALLBACKS_PER_CONVERSATION))
    if conversations >= 10_000:
        conversations = round(conversations, -2)
    path = cache / f"demo-{conversations}.db"
    partial = path.with_suffix(".partial")
    for leftover in cache.glob(partial.name + "*"):
        leftover.unlink()
    from tavus_analytics import demo

    print(f"making {path.name} ({conversations:,} conversations, seed 0) ...", flush=True)
    started = time.perf_counter()
    demo.write(partial, conversations=conversations, seed=0)
    conn = sqlite3.connect(partial)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
    conn.close()
    partial.rename(path)
    print(f"made in {time.perf_counter() - started:.0f} s", flush=True)
    return path, _count_callbacks(path)


def load_child(table: str) -> None:
    """``--child TABLE``: ``len(ta.load(db).TABLE)`` from a fresh Dataset, timed after the
    imports; prints one JSON line."""
    import numpy  # noqa: F401
    import pandas  # noqa: F401

    import tavus_analytics as ta

    db = os.environ[_DB_ENV]
    start, cpu = time.perf_counter(), time.process_time()
    rows = len(getattr(ta.load(db), table))
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "peak_mib": peak_mib, "rows": rows}))


def measure_load(table: str, db: str, timeout: float) -> dict:
    """One child process; its result, or ``{"error": ...}``."""
    cmd = [sys.executable, __file__, "--child", table]
    env = {**os.environ, _DB_ENV: db}
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, check=False, env=env, cwd=ROOT
        )
    except subprocess.TimeoutExpired:
        return {"error": f"took more than {timeout:.0f} s"}
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        error = lines[-1] if lines else f"exit status {done.returncode}"
        password = urlsplit(db).password if db.startswith("postgresql://") else None
        if password:
            error = error.replace(password, "***")
        return {"error": error[:300]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def warm(db: str) -> float:
    """Read every body once (into the page cache); seconds taken."""
    started = time.perf_counter()
    if db.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(db) as conn:
            conn.execute(
                "SELECT sum(length(body)), count(body_json -> 'properties') FROM callbacks"
            ).fetchone()
    else:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            conn.execute("SELECT sum(length(body)) FROM callbacks").fetchone()
        finally:
            conn.close()
    return time.perf_counter() - started


def load_time(args, pg: Postgres) -> bool:
    from tavus_analytics.store.copy import copy_history

    path, n = demo_database(args.callbacks, args.cache)
    size_mib = path.stat().st_size / 2**20
    print(f"\ndemo database {path.name}: {n:,} callbacks, {size_mib:,.0f} MiB", flush=True)
    url = pg.database_url("bench_load")
    print("copying it into PostgreSQL (copy_history, as `tavus-analytics migrate`) ...", flush=True)
    copied = copy_history(path, url)
    rate = copied.callbacks / copied.seconds if copied.seconds else float("nan")
    print(
        f"copied {copied.callbacks:,} callbacks ({copied.stored:,} stored, {copied.rejected:,} "
        f"rejected rows) in {copied.seconds:.1f} s: {rate:,.0f} rows/s",
        flush=True,
    )
    stores = {"sqlite": str(path), "postgres": url}
    for name, db in stores.items():
        print(f"warm-up read of {name}: {warm(db):.1f} s", flush=True)
    results: dict[tuple[str, str], dict] = {}
    for table in TABLES:
        for name, db in stores.items():
            best = None
            for _ in range(max(1, args.repeat)):
                r = measure_load(table, db, args.timeout)
                if "error" in r:
                    best = r
                    break
                if best is None or r["seconds"] < best["seconds"]:
                    best = r
            results[table, name] = best
            shown = best.get("error") or f"{best['seconds']:.2f} s, {best['peak_mib']:,.0f} MiB"
            print(f"  {table} from {name}: {shown}", flush=True)
    print()
    print(
        f"{'table':14s} {'SQLite s':>9s} {'PG s':>9s} {'PG/SQLite':>9s} {'SQLite MiB':>10s} "
        f"{'PG MiB':>8s} {'rows':>10s}"
    )
    ok = True
    for table in TABLES:
        lite, post = results[table, "sqlite"], results[table, "postgres"]
        if "error" in lite or "error" in post:
            ok = False
            print(
                f"{table:14s} FAILED: sqlite {lite.get('error', 'ok')}; "
                f"postgres {post.get('error', 'ok')}"
            )
            continue
        same = lite["rows"] == post["rows"]
        ok = ok and same
        rows = f"{lite['rows']:,}" if same else f"{lite['rows']:,} != {post['rows']:,}"
        print(
            f"{table:14s} {lite['seconds']:9.2f} {post['seconds']:9.2f} "
            f"{post['seconds'] / lite['seconds']:8.2f}x {lite['peak_mib']:10,.0f} "
            f"{post['peak_mib']:8,.0f} {rows:>10s}"
        )
    if ok:
        lite = sum(results[t, "sqlite"]["seconds"] for t in TABLES)
        post = sum(results[t, "postgres"]["seconds"] for t in TABLES)
        print(f"{'all three':14s} {lite:9.2f} {post:9.2f} {post / lite:8.2f}x")
    return ok


# -- main ---------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--watchdog"]:
        _watchdog(int(argv[1]), argv[2])
        return 0
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per config")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before measuring")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--processes", type=int, default=2, help="load generator processes (at least 1 per port)"
    )
    parser.add_argument(
        "--conversations", type=int, default=300, help="demo conversations the bodies come from"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--callbacks", type=int, default=1_000_000, help="size of the load-time database"
    )
    parser.add_argument(
        "--cache", type=Path, default=HERE / "out", help="where demo databases are kept"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of each load; the best counts")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per load process")
    parser.add_argument("--skip-load", action="store_true", help="measure ingest only")
    parser.add_argument("--skip-ingest", action="store_true", help="measure load time only")
    parser.add_argument("--child", choices=TABLES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        load_child(args.child)
        return 0
    if args.connections < 2:
        parser.error("--connections must be at least 2 (two collectors share them)")

    load_at_start = bc.load_average()
    pg = start_postgres()
    try:
        print(
            f"{os.cpu_count()} cores, Python {platform.python_version()}, SQLite "
            f"{sqlite3.sqlite_version}, PostgreSQL {pg.version()} (fsync on), "
            f"{datetime.now(UTC):%Y-%m-%d}; load average at start {load_at_start}",
            flush=True,
        )
        ok = True
        if not args.skip_ingest:
            print(
                f"ingest: {args.connections} connections, {args.seconds:g} s measured after "
                f"{args.warmup:g} s warm-up",
                flush=True,
            )
            with tempfile.TemporaryDirectory(prefix="tavus-bench-") as tmp:
                _, ok = ingest(args, pg, Path(tmp))
        if not args.skip_load:
            ok = load_time(args, pg) and ok
    finally:
        stop_postgres(pg)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
