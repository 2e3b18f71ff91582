"""How fast ``ta.load`` turns raw callbacks into tables, against a naive loader and a floor.

Each variant runs as a whole process of its own, one after the other in the same run, on the
same demo database (made once with ``tavus_analytics.demo.write(db, conversations=N, seed=0)``
and cached under ``benchmarks/out/``). A process times its own work (after its imports) and
reports its peak resident memory (``ru_maxrss``):

``floor``
    Read every raw body into Python (a list of every ``body``) and nothing else: the issue's
    floor.
``floor-streamed``
    The same bodies read one batch at a time and dropped: a stricter floor, for information.
``conversations``
    ``ta.load(db).conversations``.
``events+conversations+turns``
    ``ta.load(db)`` then ``events``, ``conversations`` and ``turns``.
``naive``
    ``pandas.read_sql`` of the raw rows, ``json.loads`` per row, ``pandas.json_normalize``, then
    groupby to the same per-conversation columns (join, shutdown, reason, turns and words).

Targets (from the analytics issue): ``conversations`` at least 10x faster than ``naive``,
within 4x of ``floor``, under 1/10 of ``naive``'s peak memory; all three tables at least 5x
faster than ``naive`` and under 1/4 of its memory. The script prints a table and exits 1 when a
target is missed.

Example:

    .venv/bin/python benchmarks/bench_load.py                       # 250,000 conversations
    .venv/bin/python benchmarks/bench_load.py --conversations 20000  # a quick run
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
VARIANTS = ("floor", "floor-streamed", "conversations", "events+conversations+turns", "naive")


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
}


def child(variant: str, db: str) -> None:
    # Imports happen before the clock starts, the same for every variant.
    import numpy  # noqa: F401
    import orjson  # noqa: F401
    import pandas  # noqa: F401

    import tavus_analytics  # noqa: F401

    start, cpu = time.perf_counter(), time.process_time()
    rows = RUNNERS[variant](db)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
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
def database(conversations: int) -> Path:
    """The cached demo database of ``conversations`` conversations (made on first use)."""
    OUT.mkdir(exist_ok=True)
    path = OUT / f"demo-{conversations}.db"
    if path.exists():
        return path
    from tavus_analytics import demo

    partial = path.with_suffix(".partial")
    for leftover in OUT.glob(partial.name + "*"):
        leftover.unlink()
    print(f"making {path} ({conversations:,} conversations, seed 0) ...", file=sys.stderr)
    start = time.perf_counter()
    demo.write(partial, conversations=conversations, seed=0, progress=True)
    conn = sqlite3.connect(partial)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
    conn.close()
    partial.rename(path)
    print(f"made in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return path


#: Peak memory of the naive loader, measured here, per byte of database (with some margin).
NAIVE_BYTES_PER_DB_BYTE = 7


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


def measure(variant: str, db: Path, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--child", variant, "--db", str(db)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"variant": variant, "error": f"took more than {timeout:.0f} s"}
    if done.returncode != 0:
        return {"variant": variant, "error": done.stderr.strip().splitlines()[-1:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=250_000, help="demo size")
    parser.add_argument("--db", help="use this database instead of the cached demo one")
    parser.add_argument(
        "--repeat", type=int, default=2, help="runs of each fast variant; the best counts"
    )
    parser.add_argument("--timeout", type=float, default=900, help="seconds per process")
    parser.add_argument(
        "--force", action="store_true", help="run the naive loader even if memory looks short"
    )
    parser.add_argument(
        "--no-naive",
        action="store_true",
        help="skip the naive loader (it needs about 7x the database in memory); only the "
        "floor target is then checked",
    )
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.db)
        return 0

    db = Path(args.db) if args.db else database(args.conversations)
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
            "(--conversations 100000) or pass --force",
            file=sys.stderr,
        )
        return 2

    measure("floor-streamed", db, args.timeout)  # warm the page cache: all then read from RAM
    results = {}
    variants = [v for v in VARIANTS if not (args.no_naive and v == "naive")]
    for variant in variants:
        runs = 1 if variant == "naive" else max(1, args.repeat)
        best = None
        for _ in range(runs):
            r = measure(variant, db, args.timeout)
            if "error" in r:
                best = r
                break
            if best is None or r["seconds"] < best["seconds"]:
                best = r
        results[variant] = best

    failed = [v for v, r in results.items() if "error" in r]
    for v in failed:
        print(f"{v}: FAILED: {results[v]['error']}")
    if failed:
        return 1
    floor, naive = results["floor"], results.get("naive")
    print()
    print(
        f"{'variant':<28} {'seconds':>8} {'cpu s':>7} {'peak MiB':>9} {'x floor':>8} "
        + (f"{'x faster':>9} {'mem/naive':>10}" if naive else "")
    )
    for v in variants:
        r = results[v]
        line = (
            f"{v:<28} {r['seconds']:>8.2f} {r['cpu_seconds']:>7.2f} {r['peak_mib']:>9.0f} "
            f"{r['seconds'] / floor['seconds']:>8.2f} "
        )
        if naive:
            line += (
                f"{naive['seconds'] / r['seconds']:>9.1f} "
                f"{r['peak_mib'] / naive['peak_mib']:>10.3f}"
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
    print()
    for name, ok in checks:
        print(f"{'ok  ' if ok else 'MISS'} {name}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
