"""A tiny run of the collector benchmark's harness, so that it keeps working (no timing asserts)."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))

import bench_collector  # noqa: E402
import loadgen  # noqa: E402


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


@pytest.mark.parametrize("name", ["collector", "reference"])
def test_a_tiny_run_stores_every_acknowledged_callback(tmp_path, templates, name):
    args = argparse.Namespace(seconds=0.3, warmup=0.1, connections=2, processes=1)
    row = bench_collector.measure(bench_collector.CONFIGS[name], templates, args, tmp_path)
    assert row.load.completed == row.load.sent > 0
    assert row.load.statuses == {200: row.load.completed}
    assert row.load.duplicates == 0
    if name == "collector":
        assert row.stored == row.load.acked == row.load.completed
    else:
        assert row.stored is None
