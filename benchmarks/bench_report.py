"""How long the HTML report, the charts and the notebooks take.

Two measurements, each of whole processes run one after the other in the same run:

``report`` (on a demo database of ``--conversations`` conversations, default 100,000, made once
with ``tavus_analytics.demo.write(db, conversations=N, seed=0)`` and cached under
``benchmarks/out/``)
    ``load``: a process that builds ``ta.load(db).conversations`` only, the baseline every
    analysis pays; ``report``: ``tavus-analytics report --no-content --out ...`` (every table
    the charts need, the key figures and twelve charts); ``charts``: ``tavus-analytics charts
    --no-content --out DIR``; then the report with its "What callers say" section (content
    analysis, the nlp extra), first with an empty cache folder (``content, cold``), then again
    (``content, warm``: the analyses read back from the cache). Target: the report in under
    60 s.

``notebooks`` (on a small demo database like the test suite's, ``--notebook-conversations``,
default 120)
    The notebooks executed one after the other with nbclient, each in a fresh ``python3``
    kernel, as ``tests/test_notebooks.py`` does (content analysis cached in a folder of the
    run's own). Target: all of them in under 60 s.

The script prints a table with times and ratios and exits 1 when a target is missed.

Example:

    .venv/bin/python benchmarks/bench_report.py                        # 100,000 conversations
    .venv/bin/python benchmarks/bench_report.py --conversations 20000  # a quick run
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
NOTEBOOKS = ROOT / "notebooks"
REPORT_TARGET_S = 60.0
NOTEBOOKS_TARGET_S = 60.0


def database(conversations: int) -> Path:
    """The cached demo database of ``conversations`` conversations: the load benchmark's."""
    sys.path.insert(0, str(HERE))
    from bench_load import database as cached

    return cached(conversations)


def timed(cmd: list[str], timeout: float, env: dict | None = None) -> float:
    """Wall time of a whole process, in seconds; raises when it fails or runs out of time."""
    start = time.perf_counter()
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, check=False, env=env, cwd=ROOT
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} ... failed:\n{done.stderr[-2000:]}")
    return seconds


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "tavus_analytics.cli", *args]


def bench_report(conversations: int, timeout: float) -> tuple[list[tuple[str, float]], bool]:
    db = database(conversations)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        load = [
            sys.executable,
            "-c",
            f"import tavus_analytics as ta; ta.load({str(db)!r}).conversations",
        ]
        rows.append(("load (conversations only)", timed(load, timeout)))
        html = Path(tmp) / "report.html"
        report = cli("report", "--db", str(db), "--out", str(html))
        rows.append(("report", timed([*report, "--no-content"], timeout)))
        size = html.stat().st_size
        charts = Path(tmp) / "charts"
        rows.append(
            (
                "charts",
                timed(
                    cli("charts", "--db", str(db), "--out", str(charts), "--no-content"), timeout
                ),
            )
        )
        cached = {**os.environ, "TAVUS_ANALYTICS_CACHE_DIR": str(Path(tmp) / "cache")}
        rows.append(("report, content, cold", timed(report, timeout, cached)))
        rows.append(("report, content, warm", timed(report, timeout, cached)))
    print(
        f"\nreport on {conversations:,} conversations ({db.stat().st_size / 2**20:,.0f} MiB "
        f"database; report {size / 2**10:,.0f} KiB)"
    )
    base = rows[0][1]
    print(f"{'':28} {'seconds':>8} {'x load':>7}")
    for name, seconds in rows:
        print(f"{name:28} {seconds:8.1f} {seconds / base:7.2f}")
    report_s = rows[1][1]
    ok = report_s < REPORT_TARGET_S
    print(
        f"target: report under {REPORT_TARGET_S:.0f} s: {'met' if ok else 'MISSED'} "
        f"({report_s / REPORT_TARGET_S:.0%} of the budget)"
    )
    return rows, ok


def bench_notebooks(conversations: int, timeout: float) -> bool:
    import nbformat
    from nbclient import NotebookClient

    from tavus_analytics import demo

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "tavus.db"
        demo.write(db, conversations=conversations, seed=0)
        names = ("TAVUS_ANALYTICS_DB", "MPLBACKEND", "TAVUS_ANALYTICS_CACHE_DIR")
        saved = {k: os.environ.get(k) for k in names}
        os.environ.update(
            TAVUS_ANALYTICS_DB=str(db),
            MPLBACKEND="Agg",
            TAVUS_ANALYTICS_CACHE_DIR=str(Path(tmp) / "cache"),
        )
        try:
            for path in sorted(NOTEBOOKS.glob("*.ipynb")):
                nb = nbformat.read(path, as_version=4)
                client = NotebookClient(
                    nb,
                    kernel_name="python3",
                    timeout=timeout,
                    resources={"metadata": {"path": tmp}},
                )
                start = time.perf_counter()
                client.execute()
                rows.append((path.name, time.perf_counter() - start))
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    total = sum(s for _, s in rows)
    print(f"\nnotebooks on a {conversations:,}-conversation demo database (fresh kernel each)")
    for name, seconds in rows:
        print(f"{name:28} {seconds:8.1f} {seconds / total:7.0%}")
    print(f"{f'all {len(rows)}':28} {total:8.1f}")
    ok = total < NOTEBOOKS_TARGET_S
    print(
        f"target: all {len(rows)} under {NOTEBOOKS_TARGET_S:.0f} s: {'met' if ok else 'MISSED'} "
        f"({total / NOTEBOOKS_TARGET_S:.0%} of the budget)"
    )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--notebook-conversations", type=int, default=120)
    parser.add_argument("--skip-report", action="store_true")
    parser.add_argument("--skip-notebooks", action="store_true")
    parser.add_argument("--timeout", type=float, default=300, help="Seconds per process at most.")
    args = parser.parse_args()
    ok = True
    if not args.skip_report:
        ok &= bench_report(args.conversations, args.timeout)[1]
    if not args.skip_notebooks:
        ok &= bench_notebooks(args.notebook_conversations, args.timeout)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
