"""One rule book: ``conversations_view`` and ``turns_view`` give what the loader gives.

A database with the mess cases (two shutdowns, two transcripts arriving out of order, perception
unavailable, joins out of order and disagreeing on the replica, a reason that is not text, a
transcript that is not a list, duplicates, calls still in progress or without a join) is read
through the SQL views and through ``ta.load``, on SQLite and on PostgreSQL, and compared cell by
cell.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

import tavus_analytics as ta
from tavus_analytics import events as ev
from tavus_analytics.frames import parse_times
from tavus_analytics.store import open_store
from tests.conftest import pg_query, query
from tests.test_load import TRANSCRIPT, cb

T = "2025-07-11T06:{:02d}:{:02d}.{:03d}Z"


def at(minute: int, second: int = 0, ms: int = 0) -> str:
    return T.format(minute, second, ms)


def transcript(users: int) -> list[dict]:
    """A system prompt, then ``users`` user turns each answered once."""
    turns = [{"role": "system", "content": "prompt"}]
    for i in range(users):
        turns += [
            {"role": "user", "content": f"question {i}"},
            {"role": "assistant", "content": f"answer {i}"},
        ]
    return turns


def mess() -> list[dict | bytes]:
    """Bodies in arrival order."""
    return [
        # two shutdowns: the earliest by the sender's time counts, though it arrives last
        cb(ev.REPLICA_JOINED, "c-two-shutdowns", at(0), replica_id="r1"),
        cb(ev.SHUTDOWN, "c-two-shutdowns", at(9), shutdown_reason="participant_left_timeout"),
        cb(ev.SHUTDOWN, "c-two-shutdowns", at(5, 30), shutdown_reason="max_call_duration reached"),
        # two transcripts: the latest by time counts, though it arrives first
        cb(ev.REPLICA_JOINED, "c-two-transcripts", at(1), replica_id="r1"),
        cb(ev.TRANSCRIPTION_READY, "c-two-transcripts", at(8), transcript=transcript(3)),
        cb(ev.TRANSCRIPTION_READY, "c-two-transcripts", at(7), transcript=transcript(1)),
        cb(ev.SHUTDOWN, "c-two-transcripts", at(6), shutdown_reason=" Participant_Left_Timeout\t"),
        # perception unavailable: no perception; an analysis that is not text does not count
        cb(ev.REPLICA_JOINED, "c-no-perception", at(2), replica_id="r2"),
        cb(ev.PERCEPTION_UNAVAILABLE, "c-no-perception", at(9), reason="no_vision_history"),
        cb(ev.PERCEPTION_ANALYSIS, "c-no-perception", at(9, 1), analysis={"not": "text"}),
        cb(ev.SHUTDOWN, "c-no-perception", at(4), shutdown_reason="participant_absent_timeout"),
        # joins out of order, naming different replicas: the earliest join, the smallest replica
        cb(ev.PAL_JOINED, "c-joins", at(3, 2, 500), face_id="f1", replica_id="r9"),
        cb(ev.REPLICA_JOINED, "c-joins", at(3, 1, 250), replica_id="r3"),
        cb(ev.SHUTDOWN, "c-joins", at(13, 1, 250),
           shutdown_reason="Internal error occurred at step 7"),
        cb(ev.PERCEPTION_ANALYSIS, "c-joins", at(16), analysis="**User Appearance** calm"),
        cb(ev.RECORDING_READY, "c-joins", at(14), bucket_name="b", s3_key="k.mp4", duration=600),
        cb(ev.POST_CALL_ACTION, "c-joins", at(15), tool_id="t", tool_name="crm", status="ok"),
        # a reason that is not text: no reason, outcome unknown
        cb(ev.REPLICA_JOINED, "c-odd-reason", at(4), replica_id="r2"),
        cb(ev.SHUTDOWN, "c-odd-reason", at(5), shutdown_reason={"code": "max_call_duration"}),
        # a transcript that is not a list does not count; a recording without properties neither
        cb(ev.REPLICA_JOINED, "c-bad-transcript", at(5), replica_id="r1"),
        cb(ev.SHUTDOWN, "c-bad-transcript", at(6), shutdown_reason="end_conversation_endpoint_hit"),
        cb(ev.TRANSCRIPTION_READY, "c-bad-transcript", at(7), transcript="not a list"),
        {**cb(ev.RECORDING_READY, "c-bad-transcript", at(8)), "properties": None},
        # still in progress; and a call whose join never arrived
        cb(ev.REPLICA_JOINED, "c-in-progress", at(20), replica_id="r1"),
        cb(ev.SHUTDOWN, "c-no-join", at(21), replica_id="r4",
           shutdown_reason="daily_room_has_been_deleted"),
        cb(ev.TRANSCRIPTION_READY, "c-no-join", at(21, 1), transcript=TRANSCRIPT),
        # the same body twice is one callback; an internal error with no step number
        cb(ev.REPLICA_JOINED, "c-dup", at(30), replica_id="r1"),
        cb(ev.REPLICA_JOINED, "c-dup", at(30), replica_id="r1"),
        cb(ev.SHUTDOWN, "c-dup", at(31), shutdown_reason="internal_error_occurred_at_step"),
        # no timestamp: arrival time counts
        {k: v for k, v in cb(ev.REPLICA_JOINED, "c-no-time", "x", replica_id="r5").items()
         if k != "timestamp"},
        cb(ev.SHUTDOWN, "c-no-time", "not a time", shutdown_reason="max_call_duration"),
    ]  # fmt: skip


def fill(db) -> None:
    import json

    store = open_store(db)
    try:
        items = [
            (json.dumps(b).encode(), f"2025-07-11T09:{i // 60:02d}:{i % 60:02d}.000Z")
            for i, b in enumerate(mess())
        ]
        result = store.insert_batch(items)
        assert (result.stored, result.duplicate, result.rejected) == (len(items) - 1, 1, 0)
    finally:
        store.close()


def view_frame(db, sql: str) -> pd.DataFrame:
    if isinstance(db, str):
        import psycopg

        with psycopg.connect(db) as conn:
            cur = conn.execute(sql)
            names = [c.name for c in cur.description]
            return pd.DataFrame(cur.fetchall(), columns=names)
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        cur = conn.execute(sql)
        return pd.DataFrame(cur.fetchall(), columns=[c[0] for c in cur.description])
    finally:
        conn.close()


def cell(value):
    """A cell as a plain Python value: NA as None, numbers as float, flags as bool."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) or type(value).__name__ == "Decimal":
        return float(value)
    return value


#: conversations_view column -> ds.conversations column
SAME = {
    "conversation_id": "conversation_id",
    "replica_id": "replica_id",
    "shutdown_reason": "shutdown_reason",
    "shutdown_category": "shutdown_category",
    "outcome": "outcome",
    "user_turns": "user_turns",
    "assistant_turns": "assistant_turns",
    "status": "status",
    "shutdown_error_step": "shutdown_error_step",
}
FLAGS = {"has_transcript", "has_perception", "has_recording"}
TIMES = {
    "joined_at": "joined_at",
    "shutdown_at": "shutdown_at",
    "first_received_at": "first_seen",
    "last_received_at": "last_seen",
}


def compare(db) -> pd.DataFrame:
    view = view_frame(db, "SELECT * FROM conversations_view ORDER BY conversation_id")
    conv = ta.load(db).conversations.sort_values("conversation_id").reset_index(drop=True)
    assert len(view) == len(conv) == 10
    for v_col, d_col in SAME.items():
        for i in range(len(view)):
            assert cell(view.at[i, v_col]) == cell(conv.at[i, d_col]), (
                view.at[i, "conversation_id"],
                v_col,
            )
    for col in FLAGS:
        assert [bool(x) for x in view[col]] == [bool(x) for x in conv[col]], col
    for v_col, d_col in TIMES.items():
        parsed = parse_times(view[v_col])
        both = parsed.isna() == conv[d_col].isna()
        assert both.all(), v_col
        assert (parsed[~parsed.isna()] == conv[d_col][~conv[d_col].isna()]).all(), v_col
    for i in range(len(view)):
        v, d = cell(view.at[i, "duration_s"]), cell(conv.at[i, "duration_s"])
        assert (v is None) == (d is None), view.at[i, "conversation_id"]
        if v is not None:
            assert v == pytest.approx(d, abs=1e-3)
    # the turns of the transcript that counts, message by message
    turns = view_frame(db, "SELECT conversation_id, turn, role, content FROM turns_view")
    turns = turns.sort_values(["conversation_id", "turn"]).reset_index(drop=True)
    loaded = ta.load(db).turns[["conversation_id", "turn", "role", "content"]]
    loaded = loaded.sort_values(["conversation_id", "turn"]).reset_index(drop=True)
    assert turns.astype(object).values.tolist() == loaded.astype(object).values.tolist()
    return view.set_index("conversation_id")


def expected(view: pd.DataFrame) -> None:
    """What the rules say, by hand."""
    row = view.loc
    assert row["c-two-shutdowns", "shutdown_reason"] == "max_call_duration reached"
    assert row["c-two-shutdowns", "duration_s"] == pytest.approx(330.0)
    assert row["c-two-transcripts", "user_turns"] == 3
    assert row["c-two-transcripts", "shutdown_category"] == "participant_left"
    assert not row["c-no-perception", "has_perception"]
    assert row["c-no-perception", "outcome"] == "no_show"
    assert row["c-joins", "replica_id"] == "r3"
    assert row["c-joins", "duration_s"] == pytest.approx(600.0)
    assert (row["c-joins", "shutdown_category"], row["c-joins", "shutdown_error_step"]) == (
        "internal_error",
        7,
    )
    assert bool(row["c-joins", "has_perception"]) and bool(row["c-joins", "has_recording"])
    assert pd.isna(row["c-odd-reason", "shutdown_reason"])
    assert row["c-odd-reason", "outcome"] == "unknown"
    assert not row["c-bad-transcript", "has_transcript"]
    assert not row["c-bad-transcript", "has_recording"]
    assert row["c-in-progress", "status"] == "in_progress"
    assert row["c-no-join", "status"] == "incomplete" and row["c-no-join", "user_turns"] == 2
    assert row["c-dup", "callbacks"] == 2 and row["c-dup", "shutdown_category"] == "internal_error"
    assert row["c-dup", "shutdown_error_step"] is None or pd.isna(
        row["c-dup", "shutdown_error_step"]
    )


def test_views_follow_the_loaders_rules_on_sqlite(db_path):
    fill(db_path)
    expected(compare(db_path))
    assert query(db_path, "SELECT count(*) FROM derived_views") == [(1,)]


def test_views_follow_the_loaders_rules_on_postgresql(pg_url):
    fill(pg_url)
    expected(compare(pg_url))
    assert pg_query(pg_url, "SELECT count(*) FROM derived_views") == [(1,)]


def test_views_are_made_again_when_their_definition_changes(db_path):
    fill(db_path)
    import sqlite3

    conn = sqlite3.connect(db_path)
    conn.execute("DROP VIEW conversations_view")
    conn.execute("CREATE VIEW conversations_view AS SELECT 1 AS stale")
    conn.execute("UPDATE derived_views SET fingerprint = 'an older definition'")
    conn.commit()
    conn.close()
    with open_store(db_path) as store:
        store.migrate()
    names = [c[1] for c in query(db_path, "PRAGMA table_info(conversations_view)")]
    assert "stale" not in names and "outcome" in names
