"""A tiny run of the collector benchmark's harness, so that it keeps working (no timing asserts)."""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))

import bench_collector  # noqa: E402
import loadgen  # noqa: E402

needs_gunicorn = pytest.mark.skipif(
    sys.platform == "win32" or importlib.util.find_spec("gunicorn") is None,
    reason="--workers N needs gunicorn (Linux and macOS)",
)


@pytest.fixture(scope="module")
def templates():
    bodies, _ = bench_collector.make_bodies(20, seed=1)
    tpls, skipped = loadgen.make_templates(bodies)
    # Only bodies that repeat another (the demo sends a few duplicates on purpose) are skipped.
    assert len(tpls) + skipped == len(bodies)
    assert skipped <= len(bodies) // 10
    return tpls


def test_builtin_bodies_have_the_kinds_and_sizes_of_a_deployment():
    bodies = bench_collector.builtin_bodies(60, seed=3)
    objs = [json.loads(b) for b in bodies]
    events = [o.get("event_type") for o in objs]
    assert events.count("system.replica_joined") == 60
    assert events.count("system.shutdown") == 60
    transcripts = [b for b, e in zip(bodies, events, strict=True) if e and "transcription" in e]
    assert transcripts and all(4_000 < len(b) < 60_000 for b in transcripts)
    small = [b for b in bodies if len(b) < 2000]
    assert len(small) > len(bodies) / 2  # most bodies are small envelopes
    assert bench_collector.builtin_bodies(60, seed=3) == bodies


def test_templates_render_valid_distinct_bodies_across_processes(templates):
    rendered = [
        t.render(k * 3 + worker) for t in templates for k in range(4) for worker in range(3)
    ]
    assert len({hashlib.sha256(b).digest() for b in rendered}) == len(rendered)
    for body in rendered[:50]:
        assert isinstance(json.loads(body), dict)


def test_generator_against_the_trivial_server(templates):
    server, port = loadgen.start_trivial_server(lifetime=30)
    try:
        r = loadgen.run_load(
            "127.0.0.1",
            port,
            "/webhook",
            templates,
            seconds=0.3,
            warmup=0.1,
            connections=3,
            processes=2,
        )
    finally:
        server.terminate()
        server.wait(5)
    assert r.completed == r.sent > 0
    assert r.acked == r.completed
    assert r.statuses == {200: r.completed}
    assert r.unanswered == 0 and not r.errors


def test_the_default_run_measures_the_collector_as_shipped(tmp_path):
    assert bench_collector.DEFAULT_CONFIGS == [
        "ceiling",
        "reference",
        "collector",
        "collector-waitress",
        "collector-workers-2",
    ]
    assert bench_collector.DEFAULT_CONFIG == "collector"  # the run fails if it misses the target
    assert bench_collector.CONFIGS["collector"].server == "granian"
    db = tmp_path / "c.db"
    shipped = [
        "collector.py",
        "--port",
        "5123",
        "--db",
        str(db),
        "--secret",
        bench_collector.SECRET,
    ]
    cmd = bench_collector.command(bench_collector.CONFIGS["collector"], 5123, db, 60)
    assert cmd == [sys.executable, *shipped]
    cmd = bench_collector.command(bench_collector.CONFIGS["collector-workers-2"], 5123, db, 60)
    assert cmd == [sys.executable, *shipped, "--server", "gunicorn", "--workers", "2"]
    cmd = bench_collector.command(bench_collector.CONFIGS["collector-waitress"], 5123, db, 60)
    assert cmd == [sys.executable, *shipped, "--server", "waitress"]
    # Only the synchronous=NORMAL variants go through the benchmark's own entry (the patch).
    patched = [
        name
        for name, config in bench_collector.CONFIGS.items()
        if config.is_collector
        and bench_collector.command(config, 5123, db, 60)[1] != "collector.py"
    ]
    assert patched and all(bench_collector.CONFIGS[n].synchronous == "NORMAL" for n in patched)


def test_the_benchmark_only_patch_sets_synchronous(tmp_path, monkeypatch):
    from tavus_analytics.store import Store

    monkeypatch.setattr(Store, "_open", Store._open)  # restored after the test
    with Store(tmp_path / "full.db") as store:
        assert store.connection().execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    bench_collector._patch_synchronous("normal")
    with Store(tmp_path / "normal.db") as store:
        assert store.connection().execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    with pytest.raises(ValueError):
        bench_collector._patch_synchronous("sometimes")


@pytest.mark.parametrize(
    "name",
    [
        "collector",
        "collector-waitress",
        pytest.param("collector-workers-2", marks=needs_gunicorn),
        "collector-normal",
        "reference",
    ],
)
def test_a_tiny_run_stores_every_acknowledged_callback(tmp_path, templates, name):
    args = argparse.Namespace(seconds=0.3, warmup=0.1, connections=2, processes=1)
    config = bench_collector.CONFIGS[name]
    row = bench_collector.measure(config, templates, args, tmp_path)
    assert row.load.completed == row.load.sent > 0
    assert row.load.statuses == {200: row.load.completed}
    assert row.load.duplicates == 0
    if config.is_collector:
        assert row.stored == row.load.acked == row.load.completed
        assert not list(tmp_path.glob("*.db"))  # the run's database is removed after counting
    else:
        assert row.stored is None


@needs_gunicorn
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="counts processes through /proc")
def test_stopping_workers_ends_the_master_and_every_worker(tmp_path):
    running = bench_collector.start(bench_collector.CONFIGS["collector-workers-2"], tmp_path, 60)
    try:
        deadline = time.monotonic() + 20
        while len(bench_collector._group(running.proc.pid)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(bench_collector._group(running.proc.pid)) == 3  # the master and 2 workers
    finally:
        bench_collector.stop(running)
    assert not bench_collector._group_alive(running.proc.pid)
    assert running.proc.returncode is not None
    conn = sqlite3.connect(running.db)
    try:
        assert conn.execute("SELECT count(*) FROM callbacks").fetchone()[0] == 0
    finally:
        conn.close()


def test_the_postgres_benchmark_measures_both_stores_and_checks_every_database(tmp_path):
    """A tiny run of ``bench_postgres.py``: ingest into SQLite and into PostgreSQL through one
    and two collectors, then a demo database of about 2,000 callbacks copied into PostgreSQL
    and each table loaded from both stores."""
    from tests import pgserver

    if pgserver.bindir() is None:
        pytest.skip("PostgreSQL is not installed (initdb/pg_ctl not found)")
    cmd = [sys.executable, str(BENCH / "bench_postgres.py"), "--seconds", "0.5", "--warmup"]
    cmd += ["0.2", "--connections", "4", "--callbacks", "2000", "--cache", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    durable = re.findall(r"^ +(\S+) +(\d+) stored == (\d+) acknowledged: (\w+)$", out, re.M)
    assert [name for name, *_ in durable] == ["sqlite", "pg-1", "pg-2"], out
    for _, stored, acked, verdict in durable:
        assert int(stored) == int(acked) > 0
        assert verdict == "ok"
    ratios = dict(re.findall(r"ratio (pg-[12])/sqlite +(\d+\.\d+)x", out))
    assert set(ratios) == {"pg-1", "pg-2"} and all(float(r) > 0 for r in ratios.values())

    copied = re.search(r"copied ([\d,]+) callbacks \(([\d,]+) stored.* ([\d,]+) rows/s", out)
    assert copied and copied.group(1) == copied.group(2), out
    demo = re.search(r"demo database demo-\d+\.db: ([\d,]+) callbacks", out)
    assert demo and demo.group(1) == copied.group(1)
    # about 4.6 callbacks a conversation, with objectives, guardrails and canvas answers
    assert 2100 <= int(demo.group(1).replace(",", "")) <= 2600
    assert list(tmp_path.glob("demo-*.db"))  # the demo database is cached where it was asked
    for table in ("conversations", "turns", "events"):
        row = re.search(rf"^{table} +([\d.]+) +([\d.]+) +([\d.]+)x .* ([\d,]+)$", out, re.M)
        assert row and "!=" not in row.group(0), out
        assert int(row.group(4).replace(",", "")) > 0  # the same rows from both stores
    assert re.search(r"^all three +[\d.]+ +[\d.]+ +[\d.]+x$", out, re.M)


def test_the_pages_benchmark_measures_and_prints(tmp_path, capsys):
    import bench_pages

    from tavus_analytics import demo

    db = tmp_path / "demo.db"
    demo.write(db, conversations=30, seed=1)
    assert bench_pages.main(["--db", str(db), "--pages", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{db}: 3 pages of the longest transcripts"
    names = [line.split("  ")[0] for line in out[2:]]
    assert [n.split(" (")[0] for n in names] == ["tables", "select", "html", "text"]
    assert re.search(r"^html \(\d+ KiB a page\)\s+3\s+\d+\.\d\d\s+\d+\.\d\s+\d+\.\dx$", out[4])


def test_the_content_benchmark_measures_every_analysis_and_its_quality(tmp_path):
    """A tiny run of ``bench_content.py`` on a small demo database (no timing asserted)."""
    from tavus_analytics import demo

    db = tmp_path / "demo.db"
    demo.write(db, conversations=400, seed=0)
    cmd = [sys.executable, str(BENCH / "bench_content.py"), "--db", str(db)]
    cmd += ["--keyword-sample", "20", "--topics", "7"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert re.search(r"content analysis of 400 conversations \([\d,]+ transcripts", out), out
    for step in ("load", "languages", "sentiment", "topics", "questions", "all four analyses"):
        assert re.search(rf"^{step} +[\d.]+ +[\d.]+ +[\d.]+$", out, re.M), step
    assert re.search(r"^keywords \(YAKE, projected\) .*\(20 calls measured\)$", out, re.M)
    assert re.search(r"^reopen \(from the cache\) +[\d.]+ +[\d.]+$", out, re.M)
    assert re.search(r"^tavus-analytics content: [\d.]+ s cold, [\d.]+ s warm", out, re.M)
    purity = float(re.search(r"topics: purity ([\d.]+) against 7 planted themes", out).group(1))
    assert 0 < purity <= 1
    for mood in ("neutral", "sour", "delighted"):
        assert re.search(rf"^sentiment, {mood} +calls \([\d,]+\): \d+% negative", out, re.M)
    assert re.search(r"\(precision\) [\d.]+, right pairs grouped \(recall\) [\d.]+$", out, re.M)


def test_the_load_benchmark_measures_cold_and_warm_loads(tmp_path):
    """A tiny run of ``bench_load.py``: every variant runs and is printed with its ratios (the
    targets are not met on 200 conversations, where fixed costs dominate: not checked)."""
    cmd = [sys.executable, str(BENCH / "bench_load.py"), "--conversations", "200"]
    cmd += ["--repeat", "1", "--out", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    out = done.stdout
    assert done.returncode in (0, 1), out + done.stderr
    for variant in (
        "floor",
        "conversations",
        "events+conversations+turns",
        "naive",
        "warm-conversations",
        "warm-events+conversations+turns",
    ):
        assert re.search(rf"^{re.escape(variant)} +[\d.]+ +[\d.]+ +\d+ +[\d.]+ ", out, re.M), out
    checks = re.findall(r"^(ok  |MISS) (.+)$", out, re.M)
    assert len(checks) == 7, out
    # The warm database grew by 1 % after its cache was made, and that cache was used.
    assert re.search(r"of [\d,]+ callbacks arrived after the cache", done.stderr)
    assert list(tmp_path.glob("warm-demo-200.db.cache/*/conversations/*-*"))
