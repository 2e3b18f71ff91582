"""How fast the collector's dashboard answers: computed, cached, and stale while it refreshes.

A demo database of ``--conversations`` conversations (default 500, seed 0: the README's demo)
is made in a temporary folder; the collector serves it exactly as ``python collector.py --db DB
--port N --secret S --dashboard-cache C`` does (waitress, a free 127.0.0.1 port, stopped by its
PID at the end, and by an alarm if the script dies). Then, with one HTTP client:

``healthz``
    ``GET /healthz``, the baseline: one small request through the same server.
``page, computed``
    The first ``GET /dashboard?period=all`` after signing in: the dataset loaded from the live
    database, the key figures and every chart drawn (the cost a refresh storm pays once).
``page, cached`` and ``data.json, cached``
    ``--requests`` requests each while the page is kept.
``page, stale``
    The first request after the cache time: answered from the kept page while one computation
    in the background replaces it (the collector is started with ``--dashboard-cache 3`` for
    this, and the script waits 3.5 s).

The table shows the median, 95th percentile and maximum of each, and the ratio of the computed
page to the cached one. The target: a cached page within 0.5 s (exit 1 otherwise).

Example:

    .venv/bin/python benchmarks/bench_dashboard.py
    .venv/bin/python benchmarks/bench_dashboard.py --conversations 5000 --requests 100
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from tavus_analytics.testing import clean_environment, free_port

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 0.5
SECRET = "bench-dashboard-token"


def start(db: Path, cache_s: int, lifetime: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = clean_environment(MPLBACKEND="Agg")
    proc = subprocess.Popen(
        [sys.executable, "collector.py", "--db", str(db), "--port", str(port)]
        + ["--secret", SECRET, "--dashboard-cache", str(cache_s)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # The collector ends itself after its lifetime, whatever happens to this script.
        preexec_fn=lambda: signal.alarm(lifetime),
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                return proc, base
        except requests.ConnectionError:
            time.sleep(0.1)
    stop(proc)
    raise SystemExit("the collector did not start")


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def timed(session: requests.Session, url: str) -> float:
    start = time.perf_counter()
    r = session.get(url, timeout=300)
    seconds = time.perf_counter() - start
    if r.status_code != 200:
        raise SystemExit(f"{url}: {r.status_code}")
    return seconds


def row(name: str, times: list[float]) -> tuple[str, float, float, float, int]:
    times = sorted(times)
    p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
    return name, statistics.median(times), p95, times[-1], len(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=500)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--lifetime", type=int, default=600, help="seconds each collector lives")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tavus_analytics import demo

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "tavus.db"
        demo.write(db, conversations=args.conversations, seed=0)
        proc, base = start(db, cache_s=30, lifetime=args.lifetime)
        try:
            with requests.Session() as s:
                rows.append(row("healthz", [timed(s, f"{base}/healthz") for _ in range(20)]))
                s.get(f"{base}/dashboard?token={SECRET}", allow_redirects=False, timeout=10)
                computed = timed(s, f"{base}/dashboard?period=all")
                rows.append(row("page, computed", [computed]))
                page = [timed(s, f"{base}/dashboard?period=all") for _ in range(args.requests)]
                rows.append(row("page, cached", page))
                data = [
                    timed(s, f"{base}/dashboard/data.json?period=all") for _ in range(args.requests)
                ]
                rows.append(row("data.json, cached", data))
        finally:
            stop(proc)
        proc, base = start(db, cache_s=3, lifetime=args.lifetime)
        try:
            with requests.Session() as s:
                s.get(f"{base}/dashboard?token={SECRET}", allow_redirects=False, timeout=10)
                timed(s, f"{base}/dashboard?period=all")
                time.sleep(3.5)
                rows.append(
                    row("page, stale (refreshing)", [timed(s, f"{base}/dashboard?period=all")])
                )
        finally:
            stop(proc)
    print(f"dashboard of {args.conversations:,} demo conversations ({args.requests} requests each)")
    print(f"{'':26} {'median':>9} {'p95':>9} {'max':>9} {'n':>4}")
    for name, median, p95, top, n in rows:
        print(f"{name:26} {median * 1000:7.1f}ms {p95 * 1000:7.1f}ms {top * 1000:7.1f}ms {n:>4}")
    cached = rows[2][1]
    print(
        f"computed / cached: {computed / cached:,.0f}x; target: a cached page within {TARGET_S} s"
    )
    return 0 if rows[2][3] <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
