"""How fast ``ta.load`` turns raw callbacks into tables: cold against a naive loader and a floor,
warm (a database grown by 1 % since its cache was made) against the same floor.

Each variant runs as a whole process of its own, one after the other in the same run, on the
same demo database (made once with ``tavus_analytics.demo.write(db, conversations=N, seed=0)``
and kept under ``benchmarks/out/``). A process times its own work after its imports; its CPU
time includes the processes it starts (the loader extracts large ranges in forked processes),
and its peak memory is the largest of its own peak resident memory and its resident memory
plus its children's proportional set sizes (PSS), sampled every 0.1 s. Sampling a child's PSS
slows it (the kernel walks its memory under the lock that page faults and allocations need):
a variant's time is the best of ``--repeat`` runs with its children unobserved, and its memory
is taken in one more run that samples them.

Cold, with no cache (it is removed before each run):

``floor``
    Read every raw body into Python (a list of every ``body``) and nothing else: the floor.
``floor-streamed``
    The same bodies read one batch at a time and dropped: a stricter floor, for information.
``conversations``
    ``ta.load(db).conversations``, which also makes the cache.
``events+conversations+turns``
    ``ta.load(db)`` then ``events``, ``conversations`` and ``turns``.
``naive``
    ``pandas.read_sql`` of the raw rows, ``json.loads`` per row, ``pandas.json_normalize``, then
    groupby to the same per-conversation columns (join, shutdown, reason, turns and words).

Warm: a copy of the database without its last 1 % of callbacks is loaded (events,
conversations, turns: the cache is made), the 1 % is put back, and each run starts from that
cache:

``warm-conversations``, ``warm-events+conversations+turns``
    The same as cold, reading the kept facts and only the callbacks that arrived since.

Targets (from the issue): cold ``conversations`` at least 10x faster than ``naive``, within 4x
of ``floor``, under 1/10 of ``naive``'s peak memory; all three tables at least 5x faster than
``naive`` and under 1/4 of its memory; warm ``conversations`` within 1x ``floor``, all three
within 3x. The script prints a table and exits 1 when a target is missed.

Example:

    .venv/bin/python benchmarks/bench_load.py                       # 250,000 conversations
    .venv/bin/python benchmarks/bench_load.py --conversations 20000  # a quick run
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
COLD = ("floor", "floor-streamed", "conversations", "events+conversations+turns", "naive")
WARM = ("warm-conversations", "warm-events+conversations+turns")
VARIANTS = COLD + WARM
#: Share of the callbacks that arrive after the cache was made, in the warm runs.
GROWTH = 0.01


# -- the variants (run in a child process) -------------------------------------------------------
def run_floor(db: str) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    bodies = [body for (body,) in conn.execute("SELECT body FROM callbacks")]
    conn.close()
    return len(bodies)


def run_floor_streamed(db: str) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    total = 0
    cur = conn.execute("SELECT body FROM callbacks")
    while rows := cur.fetchmany(2000):
        total += len(rows)
    conn.close()
    return total


def run_conversations(db: str) -> int:
    import tavus_analytics as ta

    return len(ta.load(db).conversations)


def run_all_three(db: str) -> int:
    import tavus_analytics as ta

    ds = ta.load(db)
    return len(ds.events) + len(ds.conversations) + len(ds.turns)


def run_naive(db: str) -> int:
    """What one writes first: every row, every body parsed, flattened, then grouped."""
    import pandas as pd

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    raw = pd.read_sql("SELECT * FROM callbacks", conn)
    conn.close()
    bodies = [json.loads(b) for b in raw["body"]]
    flat = pd.json_normalize(bodies, max_level=1)
    flat["time"] = pd.to_datetime(flat["timestamp"], utc=True, format="ISO8601", errors="coerce")
    conv = flat[flat["conversation_id"].notna() & flat["event_type"].notna()]
    joins = conv[conv["event_type"].isin(["system.replica_joined", "system.pal_joined"])]
    joined = joins.groupby("conversation_id")["time"].min().rename("joined_at")
    shut = (
        conv[conv["event_type"] == "system.shutdown"]
        .sort_values("time")
        .groupby("conversation_id")
        .agg(shutdown_at=("time", "first"), shutdown_reason=("properties.shutdown_reason", "first"))
    )
    tr = conv[conv["event_type"] == "application.transcription_ready"]
    messages = tr[["conversation_id", "properties.transcript"]].explode("properties.transcript")
    messages = messages[messages["properties.transcript"].map(lambda m: isinstance(m, dict))]
    msg = pd.json_normalize(messages["properties.transcript"].tolist())
    msg["conversation_id"] = messages["conversation_id"].to_numpy()
    msg["words"] = msg["content"].astype(str).str.split().str.len()
    counts = msg.groupby(["conversation_id", "role"]).agg(
        turns=("words", "size"), words=("words", "sum")
    )
    counts = counts.unstack("role")
    counts.columns = [f"{role}_{what}" for what, role in counts.columns]
    result = (
        pd.DataFrame(index=pd.Index(conv["conversation_id"].unique(), name="conversation_id"))
        .join(joined)
        .join(shut)
        .join(counts)
    )
    result["duration_s"] = (result["shutdown_at"] - result["joined_at"]).dt.total_seconds()
    return len(result)


RUNNERS = {
    "floor": run_floor,
    "floor-streamed": run_floor_streamed,
    "conversations": run_conversations,
    "events+conversations+turns": run_all_three,
    "naive": run_naive,
    "warm-conversations": run_conversations,
    "warm-events+conversations+turns": run_all_three,
}


def _pss_kib(pid: int) -> int:
    """A process's proportional set size (its share of pages shared after a fork)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


_PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024 if hasattr(os, "sysconf") else 4


def _rss_kib(pid: int) -> int:
    """A process's resident set size, from ``statm``: a counter read, where ``smaps_rollup``
    walks the whole address space under the lock that page faults need."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * _PAGE_KIB
    except (OSError, IndexError, ValueError):
        return 0


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/task/{p}/children") as f:
                kids = [int(k) for k in f.read().split()]
        except OSError:
            kids = []
        found.extend(kids)
        todo.extend(kids)
    return found


class TreeMemory:
    """The peak memory of this process and its children together, sampled in a thread (Linux):
    this process's resident set plus its children's proportional set sizes (pages a child
    shares with this process are then counted a little more than once: never less).

    This process is sampled from ``statm`` only: reading its ``smaps_rollup`` every few
    milliseconds slowed a process that faults in gigabytes (the floor) two to three times. Its
    own exact peak is ``ru_maxrss`` anyway; the children, which exist only while a load
    extracts ranges, are sampled every 0.1 s, and that slows them too (events, conversations
    and turns at 250,000 conversations: 28.4 to 31.5 s sampled, 26.1 to 27.3 s not, three
    alternating runs each), so the time of a variant is taken in runs that do not sample
    (``sample`` False: then only this process's own peak is known).
    """

    def __init__(self, sample: bool = True) -> None:
        self.sample = sample
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        me = os.getpid()
        while not self._stop.wait(0.1):
            kids = _descendants(me)
            if kids:
                total = _rss_kib(me) + sum(_pss_kib(p) for p in kids)
                self.peak_kib = max(self.peak_kib, total)

    def __enter__(self) -> TreeMemory:
        if self.sample and Path("/proc/self/smaps_rollup").exists():
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def child(variant: str, db: str, sample: bool) -> None:
    # Imports happen before the clock starts, the same for every variant.
    import numpy  # noqa: F401
    import orjson  # noqa: F401
    import pandas  # noqa: F401
    import pyarrow  # noqa: F401

    import tavus_analytics  # noqa: F401

    start, before = time.perf_counter(), os.times()
    with TreeMemory(sample) as tree:
        rows = RUNNERS[variant](db)
    seconds, after = time.perf_counter() - start, os.times()
    cpu = sum(after[:4]) - sum(before[:4])  # user and system, of this process and its children
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    peak_mib = max(own, kids, tree.peak_kib) / 1024
    print(
        json.dumps(
            {
                "variant": variant,
                "seconds": seconds,
                "cpu_seconds": cpu,
                "peak_mib": peak_mib,
                "rows": rows,
            }
        )
    )


# -- the driver ----------------------------------------------------------------------------------
def database(conversations: int, out: Path) -> Path:
    """The kept demo database of ``conversations`` conversations (made on first use)."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"demo-{conversations}.db"
    if path.exists():
        return path
    from tavus_analytics import demo

    partial = path.with_suffix(".partial")
    for leftover in out.glob(partial.name + "*"):
        leftover.unlink()
    print(f"making {path} ({conversations:,} conversations, seed 0) ...", file=sys.stderr)
    start = time.perf_counter()
    demo.write(partial, conversations=conversations, seed=0, progress=True)
    conn = sqlite3.connect(partial)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
    conn.close()
    partial.rename(path)
    for leftover in out.glob(partial.name + "*"):
        leftover.unlink()
    print(f"made in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return path


def cache_of(db: Path) -> Path:
    return db.with_name(db.name + ".cache")


def warm_database(db: Path, timeout: float) -> Path:
    """A copy of ``db`` whose cache was made when it lacked its last :data:`GROWTH` of
    callbacks, which were put back since; and that cache, kept aside (``.cache-base``) so that
    every warm run starts from it."""
    warm = db.with_name("warm-" + db.name)
    base = warm.with_name(warm.name + ".cache-base")
    if warm.exists() and base.is_dir():
        return warm
    print(f"making {warm} and its cache ...", file=sys.stderr)
    for stale in (warm, base, cache_of(warm)):
        if stale.is_dir():
            shutil.rmtree(stale)
        elif stale.exists():
            stale.unlink()
    shutil.copyfile(db, warm)
    conn = sqlite3.connect(warm)
    top = conn.execute("SELECT max(id) FROM callbacks").fetchone()[0]
    cut = int(top * (1 - GROWTH))
    later = conn.execute("SELECT * FROM callbacks WHERE id > ? ORDER BY id", (cut,)).fetchall()
    delivered = conn.execute(
        "SELECT * FROM deliveries WHERE callback_id > ? ORDER BY id", (cut,)
    ).fetchall()
    conn.execute("DELETE FROM deliveries WHERE callback_id > ?", (cut,))
    conn.execute("DELETE FROM callbacks WHERE id > ?", (cut,))
    conn.commit()
    measure("warm-events+conversations+turns", warm, timeout)  # makes the cache
    shutil.move(cache_of(warm), base)
    width = len(later[0]) if later else 0
    conn.executemany(f"INSERT INTO callbacks VALUES ({', '.join('?' * width)})", later)
    if delivered:
        marks = ", ".join("?" * len(delivered[0]))
        conn.executemany(f"INSERT INTO deliveries VALUES ({marks})", delivered)
    conn.commit()
    conn.close()
    print(f"  {len(later):,} of {top:,} callbacks arrived after the cache", file=sys.stderr)
    return warm


def restore_cache(warm: Path) -> None:
    """The warm database's cache as it was made (hard links: nothing is copied)."""
    target = cache_of(warm)
    if target.exists():
        shutil.rmtree(target)
    base = warm.with_name(warm.name + ".cache-base")
    shutil.copytree(base, target, copy_function=os.link)


#: Peak memory of the naive loader, measured here, per byte of database (with some margin).
NAIVE_BYTES_PER_DB_BYTE = 5


def available_memory() -> int | None:
    """Bytes of memory available now (Linux), or None when unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


#: A variant is stopped when the machine has less memory available than this (bytes), rather
#: than let the system's out-of-memory killer choose a process of another job.
MIN_AVAILABLE = 1 << 30


def measure(variant: str, db: Path, timeout: float, sample: bool = True) -> dict:
    """Run one variant in a process of its own. A variant stopped for want of memory still
    tells how long it ran and how much memory it held then: lower bounds of its figures.
    ``sample``: whether its children's memory is sampled (see :class:`TreeMemory`)."""
    cmd = [sys.executable, __file__, "--child", variant, "--db", str(db)]
    cmd += [] if sample else ["--no-sample"]
    start = time.perf_counter()
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        reader = threading.Thread(target=lambda: setattr(proc, "out", proc.communicate()))
        reader.start()
        deadline, why, held = time.monotonic() + timeout, None, 0
        while reader.is_alive():
            reader.join(0.2)
            held = max(held, sum(_rss_kib(p) for p in [proc.pid, *_descendants(proc.pid)]))
            free = available_memory()
            if reader.is_alive() and free is not None and free < MIN_AVAILABLE:
                why = f"stopped: less than {MIN_AVAILABLE >> 20} MiB of memory left"
            elif reader.is_alive() and time.monotonic() > deadline:
                why = f"took more than {timeout:.0f} s"
            if why:
                proc.kill()
                reader.join()
                return {
                    "variant": variant,
                    "error": why,
                    "at_least": True,
                    "seconds": time.perf_counter() - start,
                    "cpu_seconds": float("nan"),
                    "peak_mib": held / 1024,
                    "rows": 0,
                }
        out, err = proc.out
    if proc.returncode != 0:
        return {"variant": variant, "error": err.strip().splitlines()[-1:]}
    return json.loads(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=250_000, help="demo size")
    parser.add_argument("--db", help="use this database instead of the kept demo one")
    parser.add_argument("--out", default=str(OUT), help="where demo databases are kept")
    parser.add_argument(
        "--repeat",
        type=int,
        default=2,
        help="timed runs of each fast variant, the best counts (one more run takes its memory)",
    )
    parser.add_argument("--timeout", type=float, default=900, help="seconds per process")
    parser.add_argument(
        "--force", action="store_true", help="run the naive loader even if memory looks short"
    )
    parser.add_argument(
        "--no-naive",
        action="store_true",
        help="skip the naive loader (it needs about 5x the database in memory); only the "
        "floor targets are then checked",
    )
    parser.add_argument("--no-warm", action="store_true", help="skip the warm runs")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--no-sample", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.db, not args.no_sample)
        return 0

    db = Path(args.db) if args.db else database(args.conversations, Path(args.out))
    size_mib = os.path.getsize(db) / 2**20
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    callbacks = conn.execute("SELECT count(*) FROM callbacks").fetchone()[0]
    conn.close()
    print(f"database: {db.name}, {callbacks:,} callbacks, {size_mib:,.0f} MiB")
    need = os.path.getsize(db) * NAIVE_BYTES_PER_DB_BYTE
    free = available_memory()
    if free is not None and need > free and not args.force and not args.no_naive:
        print(
            f"the naive loader needs about {need / 2**30:.0f} GiB on this database and "
            f"{free / 2**30:.0f} GiB are available: run a smaller database "
            "(--conversations 100000), pass --no-naive, or --force",
            file=sys.stderr,
        )
        return 2

    warm = None if args.no_warm else warm_database(db, args.timeout)
    measure("floor-streamed", db, args.timeout)  # warm the page cache: all then read from RAM
    if warm is not None:
        measure("floor-streamed", warm, args.timeout)
    results = {}
    variants = [v for v in COLD if not (args.no_naive and v == "naive")]
    variants += [] if warm is None else list(WARM)
    for variant in variants:
        # The naive loader runs once (it starts no process); the others run --repeat times
        # for their time, their children unobserved, then once more for their memory.
        sampled = [True] if variant == "naive" else [False] * max(1, args.repeat) + [True]
        best, peak = None, 0.0
        for sample in sampled:
            target = warm if variant in WARM else db
            if variant in WARM:
                restore_cache(warm)
            elif cache_of(db).exists():
                shutil.rmtree(cache_of(db))  # cold: nothing kept
            r = measure(variant, target, args.timeout, sample)
            if "error" in r:
                best = r
                break
            peak = max(peak, r["peak_mib"])
            if not sample or variant == "naive":
                best = r if best is None or r["seconds"] < best["seconds"] else best
        if "error" not in best:
            best = {**best, "peak_mib": peak}
        results[variant] = best

    failed = [v for v, r in results.items() if "error" in r and not r.get("at_least")]
    for v, r in results.items():
        if "error" in r:
            print(f"{v}: {'FAILED' if v in failed else 'STOPPED'}: {r['error']}")
    if failed:
        return 1
    floor, naive = results["floor"], results.get("naive")
    # A naive loader stopped for want of memory ran at least this long and held at least this
    # much: the ratios against it are then bounds (marked >= and <=).
    bound = bool(naive and naive.get("at_least"))
    print()
    print(
        f"{'variant':<32} {'seconds':>8} {'cpu s':>7} {'peak MiB':>9} {'x floor':>8} "
        + (f"{'x faster':>9} {'mem/naive':>10}" if naive else "")
    )
    for v in variants:
        r = results[v]
        line = (
            f"{v:<32} {r['seconds']:>8.2f} {r['cpu_seconds']:>7.2f} {r['peak_mib']:>9.0f} "
            f"{r['seconds'] / floor['seconds']:>8.2f} "
        )
        if naive:
            ge, le = (">=", "<=") if bound and v != "naive" else ("", "")
            line += (
                f"{ge + format(naive['seconds'] / r['seconds'], '.1f'):>9} "
                f"{le + format(r['peak_mib'] / naive['peak_mib'], '.3f'):>10}"
            )
        print(line)
    conv, all3 = results["conversations"], results["events+conversations+turns"]
    checks = [("conversations within 4x of floor", conv["seconds"] / floor["seconds"] <= 4)]
    if naive:
        checks += [
            ("conversations >= 10x faster than naive", naive["seconds"] / conv["seconds"] >= 10),
            ("conversations < 1/10 of naive's memory", conv["peak_mib"] < naive["peak_mib"] / 10),
            ("all three >= 5x faster than naive", naive["seconds"] / all3["seconds"] >= 5),
            ("all three < 1/4 of naive's memory", all3["peak_mib"] < naive["peak_mib"] / 4),
        ]
    if warm is not None:
        wconv, wall3 = results["warm-conversations"], results["warm-events+conversations+turns"]
        checks += [
            ("warm conversations within 1x floor", wconv["seconds"] / floor["seconds"] <= 1),
            ("warm all three within 3x floor", wall3["seconds"] / floor["seconds"] <= 3),
        ]
    print()
    for name, ok in checks:
        print(f"{'ok  ' if ok else 'MISS'} {name}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
