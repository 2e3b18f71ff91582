"""The cache of derived facts: a table built from it is the table built without it.

Callbacks arrive in steps (demo data, then messy bodies, duplicates, out-of-order arrivals, a
late transcript and an earlier shutdown that change old conversations, a guardrail delivered
again, a repeated canvas interaction); after each step every table of a load that uses the cache
(kept facts, then the facts of the newer callbacks) is compared, cell by cell, with a load
without it, on SQLite and on PostgreSQL. Then what the cache promises besides: invalidation,
a database that cannot be written, two loaders at once, a loader killed while writing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest

import tavus_analytics as ta
from tavus_analytics import cache as derived
from tavus_analytics import demo
from tavus_analytics import events as ev
from tavus_analytics.store import Store, open_store
from tavus_analytics.tables import BUILDERS, TABLES
from tests.conftest import pg_query, query, run
from tests.test_load import TRANSCRIPT, cb, full_call
from tests.test_pg_load import messy_bodies
from tests.test_rule_book import mess
from tests.test_tavus_2026 import CANVAS, COPY_FAILED, FLAT, GUARDRAIL, NESTED

ROOT = Path(__file__).resolve().parent.parent


def raw(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()


def store_bodies(db, bodies, start: str = "2025-08-01T00") -> None:
    items = []
    for i, body in enumerate(bodies):
        data = body if isinstance(body, bytes) else raw(body)
        items.append((data, f"{start}:{i // 60 % 60:02d}:{i % 60:02d}.000Z"))
    store = open_store(db)
    try:
        store.insert_batch(items)
    finally:
        store.close()


def deliver_again(db, body) -> None:
    """One more delivery of a body already stored (as the collector records it)."""
    store = open_store(db)
    try:
        _, duplicate = store.insert_callback(raw(body))
        assert duplicate
    finally:
        store.close()


def rows(db, sql: str) -> list[tuple]:
    return pg_query(db, sql) if isinstance(db, str) else query(db, sql)


def a_conversation_with_a_transcript(db) -> tuple[str, str]:
    return rows(
        db,
        "SELECT conversation_id, max(timestamp) FROM callbacks "
        "WHERE event_type = 'application.transcription_ready' GROUP BY conversation_id "
        "ORDER BY conversation_id LIMIT 1",
    )[0]


def steps(db):
    """Fill ``db`` in steps, yielding after each one."""
    demo.write(db, conversations=40, seed=5)
    yield "demo"
    bodies = [b for b, _ in messy_bodies()]
    store_bodies(db, bodies[: len(bodies) // 2], "2025-08-01T01")
    yield "messy, first half"
    store_bodies(db, bodies[len(bodies) // 2 :] + [raw(b) for b in mess()], "2025-08-01T02")
    yield "messy, second half, rule book"
    cid, ts = a_conversation_with_a_transcript(db)
    later = pd.Timestamp(ts) + pd.Timedelta(minutes=5)
    late_transcript = cb(
        ev.TRANSCRIPTION_READY,
        cid,
        later.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        transcript=[
            {"role": "system", "content": "a prompt no call had before"},
            {"role": "user", "content": "one two three four", "seconds_from_start": 1.0,
             "duration": 2.0},
            {"role": "assistant", "content": "five six", "seconds_from_start": 3.5,
             "duration": 1.0},
        ],
    )  # fmt: skip
    earlier_shutdown = cb(
        ev.SHUTDOWN, cid, "2000-01-01T00:00:00Z", shutdown_reason="daily_room_has_been_deleted"
    )
    store_bodies(
        db,
        [
            late_transcript,
            earlier_shutdown,
            *reversed(full_call("c-late", "r7")),  # out of order
            full_call("c-late", "r7")[0],  # a duplicate
            cb(ev.PAL_JOINED, "c-late", "2025-07-11T06:45:46Z", face_id="f"),  # another shape
            GUARDRAIL,
            FLAT,
            NESTED,
            CANVAS,
            COPY_FAILED,
        ],
        "2025-08-01T03",
    )
    yield "late callbacks that change old conversations"
    deliver_again(db, GUARDRAIL)
    store_bodies(db, [{**CANVAS, "timestamp": "2026-06-09T21:15:00.000Z"}], "2025-08-01T04")
    yield "a guardrail delivered again, a canvas interaction seen again"
    store_bodies(db, [raw(b) for b in full_call("c-last", "r1")], "2025-08-01T05")
    yield "one more call"


def assert_same_tables(db, cache) -> None:
    cached, cold = ta.load(db, cache=cache), ta.load(db, cache=False)
    assert cold.cache is None
    for name in TABLES:
        pd.testing.assert_frame_equal(getattr(cached, name), getattr(cold, name), obj=name)


def segments(folder: Path, builder: str) -> list[str]:
    return sorted(p.name for p in folder.glob(f"*/{builder}/*-*") if not p.name.startswith("."))


@pytest.mark.parametrize("parallel", [False, True], ids=["one process", "several processes"])
def test_a_cached_table_is_the_table_without_the_cache(db_path, monkeypatch, parallel):
    if parallel:
        monkeypatch.setattr(derived, "PARALLEL_MIN_IDS", 10)
        monkeypatch.setenv(derived.PROCESSES_ENV, "2")
    monkeypatch.setattr(derived, "MAX_SEGMENTS", 3)  # merged as they pile up
    folder = Path(str(db_path) + ".cache")
    for step in steps(db_path):
        assert_same_tables(db_path, True), step
        top = query(db_path, "SELECT max(id) FROM callbacks")[0][0]
        for name in BUILDERS:  # every builder kept facts up to the last callback
            kept = segments(folder, name)
            assert kept and max(int(s.split("-")[1]) for s in kept) == top, (step, name)
            assert len(kept) <= 3
    assert not list(folder.glob("*/*/.*")), "no temporary folder is left"


def test_a_cached_table_is_the_table_without_the_cache_on_postgresql(pg_url, tmp_path):
    folder = tmp_path / "cache"
    for step in steps(pg_url):
        assert_same_tables(pg_url, folder), step
    assert list(folder.glob("tables/*/*/conversations/*-*"))


def test_a_load_without_the_cache_keeps_nothing(db_path, tmp_path, monkeypatch):
    monkeypatch.setenv(derived.ENV, str(tmp_path / "elsewhere"))
    store_bodies(db_path, [raw(b) for b in full_call()])
    ds = ta.load(db_path, cache=False)
    for name in TABLES:
        getattr(ds, name)
    assert not Path(str(db_path) + ".cache").exists()
    assert not (tmp_path / "elsewhere").exists()


def test_the_cache_is_beside_the_database_and_used(db_path, monkeypatch):
    store_bodies(db_path, [raw(b) for b in full_call()])
    ds = ta.load(db_path)
    assert len(ds.turns) == len(TRANSCRIPT)
    for name in TABLES:
        getattr(ds, name)
    assert ds.cache.path.parent == Path(str(db_path) + ".cache")
    assert ds.cache.size() > 0
    # The next load reads the kept facts, and no callback body.
    read: list[tuple] = []
    for name, builder in list(BUILDERS.items()):

        def spy(reader, after, upto, _extract=builder.extract, _name=name):
            read.append((_name, after, upto))
            return _extract(reader, after, upto)

        monkeypatch.setitem(BUILDERS, name, dataclasses.replace(builder, extract=spy))
    again = ta.load(db_path)
    for name in TABLES:
        getattr(again, name)
    assert read == []
    store_bodies(db_path, [raw(b) for b in full_call("c2")])
    again = ta.load(db_path)
    for name in TABLES:
        getattr(again, name)
    assert {(after, upto) for _, after, upto in read} == {(3, 6)}  # only the new callbacks


def test_a_new_loader_version_or_another_database_at_the_same_path_is_not_read(
    db_path, monkeypatch
):
    store_bodies(db_path, [raw(b) for b in full_call("c1")])
    first = ta.load(db_path)
    assert first.conversations["conversation_id"].tolist() == ["c1"]
    old_key = first.cache.path
    monkeypatch.setattr(derived, "LOADER_VERSION", derived.LOADER_VERSION + 1)
    newer = ta.load(db_path)
    assert newer.conversations["conversation_id"].tolist() == ["c1"]
    assert newer.cache.path != old_key and not old_key.exists()  # the other key is removed
    # The database made again at the same path: another file, other callbacks.
    for p in db_path.parent.glob(db_path.name + "*"):
        if p.is_file():
            p.unlink()
    store_bodies(db_path, [raw(b) for b in full_call("c2")])
    assert ta.load(db_path).conversations["conversation_id"].tolist() == ["c2"]
    assert_same_tables(db_path, True)


def test_kept_facts_are_checked_against_the_callbacks_they_came_from(db_path):
    store_bodies(db_path, [raw(b) for b in full_call("c1")])
    ds = ta.load(db_path)
    assert ds.conversations["user_words"].tolist() == [4]
    # Same file, same first callback, but the last one is another (edited by hand): the facts
    # kept up to it are not used.
    conn = __import__("sqlite3").connect(db_path)
    body = raw(cb(ev.TRANSCRIPTION_READY, "c1", "2025-07-11T06:50:00Z", transcript=[
        {"role": "user", "content": "a b c d e f"}]))  # fmt: skip
    conn.execute("UPDATE callbacks SET body = ?, sha256 = 'edited' WHERE id = 3", (body,))
    conn.commit()
    conn.close()
    assert ta.load(db_path).conversations["user_words"].tolist() == [6]
    assert_same_tables(db_path, True)


def test_a_database_in_a_folder_that_cannot_be_written_keeps_its_cache_elsewhere(
    readonly_fs, tmp_path, monkeypatch
):
    db = readonly_fs.path / "tavus.db"
    store_bodies(db, [raw(b) for b in full_call()])
    open_store(db).close()
    readonly_fs.make_readonly(db)
    try:
        elsewhere = tmp_path / "user-cache"
        monkeypatch.setenv(derived.ENV, str(elsewhere))
        ds = ta.load(db)
        assert len(ds.conversations) == 1
        assert ds.cache.path.is_relative_to(elsewhere)
        assert list(elsewhere.glob("tables/tavus.db-*/*/conversations/*-*"))
        assert not Path(str(db) + ".cache").exists()
        assert_same_tables(db, True)
    finally:
        readonly_fs.make_writable(db)


def test_the_user_cache_folder(monkeypatch, tmp_path):
    monkeypatch.setenv(derived.ENV, str(tmp_path / "x"))
    assert derived.user_cache_dir() == tmp_path / "x"
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    if sys.platform.startswith("linux"):
        assert derived.user_cache_dir(env) == tmp_path / "xdg" / "tavus-analytics"


LOADER = """
import sys, tavus_analytics as ta
ds = ta.load(sys.argv[1])
print(len(ds.events), len(ds.conversations), len(ds.turns))
"""


def test_two_loaders_at_once(db_path, monkeypatch):
    demo.write(db_path, conversations=60, seed=2)
    env = {**os.environ, derived.PROCESSES_ENV: "1"}
    procs = [
        subprocess.Popen([sys.executable, "-c", LOADER, str(db_path)], cwd=ROOT, env=env,
                         stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]  # fmt: skip
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert outs[0] == outs[1]
    assert_same_tables(db_path, True)
    store_bodies(db_path, [raw(b) for b in full_call("c-new")])
    assert_same_tables(db_path, True)


KILLED = """
import os, sys
import pyarrow as pa
import tavus_analytics as ta
from tavus_analytics import cache

real = pa.ipc.new_file
def dies(*args, **kwargs):  # the loader is killed while it writes a segment
    writer = real(*args, **kwargs)
    os.kill(os.getpid(), 9)
    return writer
pa.ipc.new_file = dies
ta.load(sys.argv[1]).conversations
"""


def test_a_loader_killed_while_writing_leaves_nothing_half_written(db_path, monkeypatch):
    demo.write(db_path, conversations=30, seed=4)
    env = {**os.environ, derived.PROCESSES_ENV: "1"}
    done = subprocess.run([sys.executable, "-c", KILLED, str(db_path)], cwd=ROOT, env=env,
                          timeout=120, check=False)  # fmt: skip
    assert done.returncode == -signal.SIGKILL
    folder = Path(str(db_path) + ".cache")
    assert not segments(folder, "conversations")  # only a temporary folder was left
    assert list(folder.glob("*/conversations/.tmp-*"))
    assert_same_tables(db_path, True)
    monkeypatch.setattr(derived, "STALE_S", 0)
    store_bodies(db_path, [raw(b) for b in full_call("c-new")])
    assert_same_tables(db_path, True)
    assert not list(folder.glob("*/conversations/.tmp-*"))  # swept once stale


def test_a_cache_that_cannot_be_read_only_makes_a_load_slower(db_path):
    store_bodies(db_path, [raw(b) for b in full_call()])
    ds = ta.load(db_path)
    assert len(ds.turns) == len(TRANSCRIPT)
    for part in ds.cache.path.glob("turns/*/*.arrow"):
        part.write_bytes(b"not arrow")
    assert len(ta.load(db_path).turns) == len(TRANSCRIPT)
    assert_same_tables(db_path, True)


def test_the_cache_command_shows_and_clears_it(db_path, tmp_path):
    store_bodies(db_path, [raw(b) for b in full_call()])
    result = run("cache", "--db", db_path)
    assert result.exit_code == 0, result.output
    assert "no cache yet" in result.output
    assert len(ta.load(db_path).conversations) == 1
    result = run("cache", "--db", db_path)
    assert result.exit_code == 0, result.output
    assert str(Path(str(db_path) + ".cache")) in result.output and "MiB" in result.output
    stats = run("stats", "--db", db_path)
    assert "Cache" in stats.output and str(Path(str(db_path) + ".cache")) in stats.output
    figures = json.loads(run("stats", "--db", db_path, "--json").output)
    assert figures["cache"]["path"] == str(Path(str(db_path) + ".cache"))
    assert figures["cache"]["bytes"] > 0
    result = run("cache", "--db", db_path, "--clear")
    assert result.exit_code == 0, result.output
    assert "Removed" in result.output
    assert not Path(str(db_path) + ".cache").exists()
    assert_same_tables(db_path, True)


def test_loading_with_the_cache_never_writes_the_database(db_path):
    demo.write(db_path, conversations=20, seed=1)
    open_store(db_path).close()
    before = db_path.read_bytes()
    ds = ta.load(db_path)
    for name in TABLES:
        getattr(ds, name)
    assert db_path.read_bytes() == before
    shutil.rmtree(ds.cache.root)


def test_the_collector_never_waits_for_a_load(db_path, monkeypatch):
    store_bodies(db_path, [raw(b) for b in full_call("c1")])
    reading, done_writing = threading.Event(), threading.Event()
    builder = BUILDERS["conversations"]

    def slow(reader, after, upto):
        facts = builder.extract(reader, after, upto)
        reading.set()  # the load is between reading callbacks and writing its cache
        done_writing.wait(30)
        return facts

    monkeypatch.setitem(BUILDERS, "conversations", dataclasses.replace(builder, extract=slow))
    loaded: list = []
    loader = threading.Thread(target=lambda: loaded.append(ta.load(db_path).conversations))
    loader.start()
    try:
        assert reading.wait(30)
        # A write that found the database locked would give up at once: it does not.
        with Store(db_path, busy_timeout_ms=1) as store:
            _, duplicate = store.insert_callback(raw(full_call("c2")[0]))
        assert not duplicate
    finally:
        done_writing.set()
        loader.join(30)
    assert loaded[0]["conversation_id"].tolist() == ["c1"]  # the load's snapshot
    assert sorted(ta.load(db_path).conversations["conversation_id"]) == ["c1", "c2"]


def test_prompts_of_a_range_are_numbered_as_the_ranges_before_continue():
    """A prompt seen in an earlier range keeps its number; one with the same short key but
    another text (same length, start and end) is a new prompt; the new ones follow in order."""
    import pyarrow as pa

    from tavus_analytics import transcripts
    from tavus_analytics.tables import _rebase_prompts

    head, tail = "h" * 80, "t" * 80
    a, b, c, d = "prompt a", head + "middle one" + tail, head + "middle two" + tail, "prompt d"
    assert transcripts.key(b) == transcripts.key(c) and b != c

    def facts(prompts: list[str], codes: list[int]) -> dict:
        return {
            "prompts": pa.table(
                {
                    "prompt": pa.array(prompts, pa.large_string()),
                    "key": pa.array([transcripts.key(p) for p in prompts], pa.large_string()),
                }
            ),
            "transcripts": pa.table({"prompt": pa.array(codes, pa.int64())}),
        }

    before = facts([a, b], [0, 1])
    rebased = _rebase_prompts([before], facts([c, a, d], [0, 1, 2, -1, 1]))
    assert rebased["prompts"]["prompt"].to_pylist() == [c, d]
    assert rebased["transcripts"]["prompt"].to_pylist() == [2, 0, 3, -1, 0]
