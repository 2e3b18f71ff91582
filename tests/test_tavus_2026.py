"""Tavus's 2026 callbacks: objectives (both shapes), guardrails (every trigger), timed turns,
canvas interactions and recording copy failures, from the collector to the tables."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pandas as pd
import pytest
import requests
import sqlite_utils

import tavus_analytics as ta
from tavus_analytics import events as ev
from tavus_analytics.config import Settings
from tavus_analytics.server import start_in_thread, stop
from tavus_analytics.store import open_store
from tavus_analytics.store.copy import copy_history
from tavus_analytics.store.sqlite import MIGRATIONS
from tests.conftest import SECRET, pg_query, query
from tests.test_load import cb, put

GUARDRAIL = {
    "conversation_id": "c1",
    "properties": {"guardrail": "no_medical_advice", "guardrail_uuid": "g1234567890ab"},
}
FLAT = {
    "conversation_id": "c1",
    "objective_name": "qualify_lead",
    "output_variables": {"budget": "50k", "timeline": "NOTFOUND", "products": ["a", "b"]},
}
NESTED = {
    "conversation_id": "c2",
    "event_type": "conversation.objective.completed",
    "message_type": "conversation",
    "properties": {
        "objective_name": "qualify_lead",
        "output_variables": {"budget": "50k", "timeline": "NOTFOUND", "products": ["a", "b"]},
    },
}
CANVAS = {
    "message_type": "canvas",
    "event_type": "canvas.interaction",
    "conversation_id": "c1",
    "timestamp": "2026-06-09T21:14:03.498Z",
    "properties": {
        "conversation_id": "c1",
        "interaction_id": "ci_call_8f2d41_submit_5e0b7c2a",
        "tool_call_id": "call_8f2d41",
        "component": "canvas.question",
        "component_version": "v1",
        "type": "submit",
        "value": {"selected_option_ids": ["opt_2"], "skipped": False},
        "metadata": {"client": "kiosk-web"},
        "created_at": "2026-06-09T21:14:03.518923",
    },
}
COPY_FAILED = {
    "properties": {
        "recording_id": "rec_1",
        "s3_key": "calls/c1.mp4",
        "duration": 312,
        "storage_provider": "s3",
        "error_code": "DESTINATION_AUTH_FAILED",
        "error_message": "Access denied",
    },
    "conversation_id": "c1",
    "event_type": "application.recording_copy_failed",
    "message_type": "application",
    "timestamp": "2026-04-30T22:11:14Z",
}


def body(obj) -> bytes:
    return json.dumps(obj).encode()


# -- kinds ----------------------------------------------------------------------------------------
def test_every_new_shape_gets_a_kind_by_its_shape():
    kinds = {
        "guardrail": GUARDRAIL,
        "objective": FLAT,
        "canvas": CANVAS,
        "conversation": COPY_FAILED,
    }
    for kind, obj in kinds.items():
        assert ev.classify(obj).kind == kind
    assert ev.classify(NESTED).kind == "objective"
    assert ev.objective_shape(FLAT) == "flat" and ev.objective_shape(NESTED) == "nested"
    # the in-call guardrail message, forwarded by a web page, is a guardrail too
    forwarded = {"conversation_id": "c1", "event_type": "conversation.guardrail.triggered"}
    assert ev.classify(forwarded).kind == "guardrail"
    # a shape nobody knows is still stored
    assert ev.classify({"something": "new"}).kind == "unknown"


# -- the collector: every delivery ------------------------------------------------------------
@pytest.fixture
def live(db_path):
    server, base = start_in_thread(Settings(db=str(db_path), secret=SECRET))
    yield f"{base}/webhook?token={SECRET}"
    stop(server)


def test_a_guardrail_posted_three_times_is_three_triggers_and_a_retry_is_one_event(live, db_path):
    with requests.Session() as s:
        join = cb(ev.REPLICA_JOINED, "c1", "2026-06-09T21:00:00Z", replica_id="r1")
        answers = [s.post(live, data=body(join)).json() for _ in range(2)]
        triggers = [s.post(live, data=body(GUARDRAIL)).json() for _ in range(3)]
    # the answers stay as they were: the first stored, the repeats duplicates of it
    assert [a["duplicate"] for a in answers] == [False, True]
    assert [a["duplicate"] for a in triggers] == [False, True, True]
    assert len({a["id"] for a in triggers}) == 1
    assert query(db_path, "SELECT count(*) FROM callbacks") == [(2,)]
    assert query(db_path, "SELECT callback_id, count(*) FROM deliveries GROUP BY 1 ORDER BY 1") == [
        (answers[0]["id"], 2),
        (triggers[0]["id"], 3),
    ]
    ds = ta.load(db_path)
    assert len(ds.events) == 2  # the retried join is one event
    g = ds.guardrail_triggers
    assert g["delivery"].tolist() == [1, 2, 3]
    assert set(g["guardrail"]) == {"no_medical_advice"}
    assert g["triggered_at"].is_monotonic_increasing and g["triggered_at"].notna().all()
    assert ds.conversations.set_index("conversation_id").at["c1", "guardrail_triggers"] == 3


def test_a_batch_counts_repeats_within_it_but_not_bodies_stored_before(db_path):
    put(db_path, GUARDRAIL, GUARDRAIL, GUARDRAIL)
    assert query(db_path, "SELECT count(*) FROM deliveries") == [(3,)]
    put(db_path, GUARDRAIL)  # importing the same file again adds no trigger
    assert query(db_path, "SELECT count(*) FROM deliveries") == [(3,)]
    assert len(ta.load(db_path).guardrail_triggers) == 3


# -- objectives -------------------------------------------------------------------------------
def test_objective_completions_in_both_shapes_give_the_same_rows(db_path):
    put(db_path, FLAT, NESTED)
    ds = ta.load(db_path)
    done = ds.objectives.sort_values("conversation_id").reset_index(drop=True)
    assert done["shape"].tolist() == ["flat", "nested"]
    assert done["objective_name"].tolist() == ["qualify_lead"] * 2
    assert done["variables"].tolist() == [3, 3] and done["found"].tolist() == [2, 2]
    assert done["completed_at"].notna().all()  # timed by arrival
    out = ds.objective_outputs
    columns = ["objective_name", "variable", "value", "value_type", "found"]
    by_call = {cid: g[columns].reset_index(drop=True) for cid, g in out.groupby("conversation_id")}
    pd.testing.assert_frame_equal(by_call["c1"], by_call["c2"])
    timeline = out[out["variable"] == "timeline"]
    assert timeline["value"].isna().all() and not timeline["found"].any()  # NOTFOUND is NA
    assert set(timeline["value_type"]) == {"notfound"}
    products = out[out["variable"] == "products"].iloc[0]
    assert products["value"] == '["a","b"]' and products["raw"] == ["a", "b"]


def test_objective_outputs_that_are_not_an_object_are_kept_and_reported(db_path):
    odd = {"conversation_id": "c3", "objective_name": "x", "output_variables": "oops"}
    put(db_path, odd)
    ds = ta.load(db_path)
    assert ds.objectives["output_variables"].tolist() == ["oops"]
    assert ds.objectives["variables"].tolist() == [0]
    assert "output_variables is not an object" in " ".join(ds.problems["problem"])


# -- timed turns ------------------------------------------------------------------------------
TIMED = [
    {"role": "system", "content": "You are Anna."},
    {"role": "user", "content": "Hi.", "seconds_from_start": 4.0, "duration": 0.5},
    {"role": "assistant", "content": "Hello!", "seconds_from_start": 5.25, "duration": 1.5},
    {"role": "user", "content": "Can you", "seconds_from_start": 8.0, "duration": 2.0},
    # the replica starts before the caller has finished: an interruption
    {"role": "assistant", "content": "Sure.", "seconds_from_start": 9.5, "duration": 1.0},
    {"role": "assistant", "content": "", "tool_calls": [{"id": "t"}], "seconds_from_start": 11},
    {"role": "tool", "content": "{}", "tool_call_id": "t"},
    {"role": "user", "content": "Thanks a lot", "seconds_from_start": 14.0, "duration": 1.0},
    {"role": "assistant", "content": "Bye!", "seconds_from_start": 16.0, "duration": 0.75},
]


def test_answer_delays_overlaps_and_talk_times_equal_the_hand_computed_ones(db_path):
    put(
        db_path,
        cb(ev.REPLICA_JOINED, "c1", "2026-05-22T10:00:00Z", replica_id="r1"),
        cb(ev.TRANSCRIPTION_READY, "c1", "2026-05-22T10:01:00Z", transcript=TIMED),
        cb(ev.REPLICA_JOINED, "old", "2025-05-22T10:00:00Z", replica_id="r1"),
        cb(ev.TRANSCRIPTION_READY, "old", "2025-05-22T10:01:00Z", transcript=[
            {"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"},
        ]),
    )  # fmt: skip
    ds = ta.load(db_path)
    t = ds.turns[ds.turns["conversation_id"] == "c1"].set_index("turn")
    # assistant 2: 5.25 - (4.0 + 0.5); assistant 4: 9.5 - (8.0 + 2.0); assistant 8: 16 - 15
    assert t["answer_delay_s"].dropna().to_dict() == {2: 0.75, 4: -0.5, 8: 1.0}
    assert t.at[3, "end_s"] == 10.0 and np.isnan(t.at[6, "end_s"])
    assert t["overlap"].dropna().to_dict() == {2: False, 3: False, 4: True, 7: False, 8: False}
    assert t["overlap"].isna().tolist() == [
        True,
        True,
        False,
        False,
        False,
        True,
        True,
        False,
        False,
    ]
    c = ds.conversations.set_index("conversation_id")
    assert c.at["c1", "answer_delay_median_s"] == 0.75
    assert c.at["c1", "answer_delay_p90_s"] == pytest.approx(0.95)  # linear, 0.75 + 0.8 * 0.25
    assert c.at["c1", "user_talk_s"] == 3.5 and c.at["c1", "assistant_talk_s"] == 3.25
    # pauses: 4.5->5.25, 6.75->8.0, (10.5 after an overlap), 10.5->14.0, 15.0->16.0
    assert c.at["c1", "longest_pause_s"] == 3.5
    assert c.at["c1", "overlaps"] == 1
    # a transcript without timing: missing, never 0
    for name in ("answer_delay_median_s", "user_talk_s", "longest_pause_s", "overlaps"):
        assert pd.isna(c.at["old", name]), name
    assert ds.turns[ds.turns["conversation_id"] == "old"]["answer_delay_s"].isna().all()


def test_perception_markers_are_stripped_before_words_are_counted(db_path):
    marked = "USER_SPEECH: Yeah I'd love to hear it. VISUAL_SCENE: The image shows a desk."
    put(
        db_path,
        cb(ev.REPLICA_JOINED, "c1", "2026-05-22T10:00:00Z", replica_id="r1"),
        cb(ev.TRANSCRIPTION_READY, "c1", "2026-05-22T10:01:00Z", transcript=[
            {"role": "user", "content": marked}, {"role": "assistant", "content": "Great."},
        ]),
    )  # fmt: skip
    ds = ta.load(db_path)
    assert ds.conversations["user_words"].tolist() == [6]
    assert ds.turns["words"].tolist() == [6, 1]
    assert ds.turns["content"].iloc[0] == marked  # the text stays as sent


# -- canvas and recording failures ------------------------------------------------------------
def test_canvas_interactions_and_recording_failures_have_tables(db_path):
    from_history = {**CANVAS, "timestamp": "2026-06-09T21:14:03.518923"}  # other bytes, same id
    put(db_path, CANVAS, from_history, COPY_FAILED)
    ds = ta.load(db_path)
    c = ds.canvas_interactions
    assert len(c) == 1
    row = c.iloc[0]
    assert (row["component"], row["type"], row["skipped"], row["client"]) == (
        "canvas.question",
        "submit",
        False,
        "kiosk-web",
    )
    assert row["selected_option_ids"] == ["opt_2"]
    assert row["created_at"] == pd.Timestamp("2026-06-09T21:14:03.518923", tz="UTC")
    f = ds.recording_failures
    assert f[["error_code", "storage_provider", "duration"]].values.tolist() == [
        ["DESTINATION_AUTH_FAILED", "s3", 312.0]
    ]
    assert ds.other_events.empty  # tabulated, not left in other_events


# -- migration and copies ---------------------------------------------------------------------
def test_an_older_database_gets_its_deliveries_and_the_new_kinds(db_path):
    conn = sqlite3.connect(db_path, isolation_level=None)
    db = sqlite_utils.Database(conn)
    for step in MIGRATIONS[:5]:
        step(db)
    conn.execute("PRAGMA user_version = 5")
    for i, (obj, kind) in enumerate([(GUARDRAIL, "unknown"), (CANVAS, "conversation")]):
        raw = body(obj)
        conn.execute(
            "INSERT INTO callbacks (received_at, kind, event_type, conversation_id, body, sha256) "
            "VALUES (?, ?, ?, 'c1', ?, ?)",
            (f"2026-06-09T21:00:0{i}.000Z", kind, obj.get("event_type"), raw.decode(), str(i)),
        )
    conn.close()
    with open_store(db_path) as store:
        store.migrate()
    assert query(db_path, "SELECT kind FROM callbacks ORDER BY id") == [("guardrail",), ("canvas",)]
    assert query(db_path, "SELECT callback_id, received_at FROM deliveries ORDER BY id") == [
        (1, "2026-06-09T21:00:00.000Z"),
        (2, "2026-06-09T21:00:01.000Z"),
    ]
    assert len(ta.load(db_path).guardrail_triggers) == 1


def test_postgresql_counts_every_delivery_and_a_copy_keeps_them(db_path, pg_url):
    store = open_store(pg_url)
    try:
        ids = [store.insert_callback(body(GUARDRAIL))[0] for _ in range(3)]
        store.insert_callback(body(FLAT))
        store.insert_batch([body(NESTED), body(NESTED), body(GUARDRAIL)])
    finally:
        store.close()
    assert len(set(ids)) == 1
    # 3 live + 0 (already stored before the batch); FLAT 1; NESTED 2 within the batch
    assert pg_query(pg_url, "SELECT count(*) FROM deliveries") == [(6,)]
    ds = ta.load(pg_url)
    assert len(ds.guardrail_triggers) == 3 and len(ds.objectives) == 2
    copy_history(pg_url, db_path)
    assert query(db_path, "SELECT count(*) FROM deliveries") == [(6,)]
    copied = ta.load(db_path)
    assert len(copied.guardrail_triggers) == 3
    pd.testing.assert_frame_equal(
        copied.objective_outputs.drop(columns="completed_at"),
        ds.objective_outputs.drop(columns="completed_at"),
    )


# -- metrics ----------------------------------------------------------------------------------
def call(cid, replica, minute, reason="participant_left_timeout"):
    start = f"2026-06-0{1 + minute // 60}T10:{minute % 60:02d}:00Z"
    return [
        cb(ev.REPLICA_JOINED, cid, start, replica_id=replica),
        cb(ev.SHUTDOWN, cid, start.replace(":00Z", ":30Z"), shutdown_reason=reason),
    ]


def test_objective_completion_guardrail_and_canvas_metrics_by_hand(db_path):
    done = {"objective_name": "qualify_lead", "output_variables": {"budget": "NOTFOUND"}}
    put(
        db_path,
        *call("a", "r1", 0), *call("b", "r1", 1), *call("c", "r1", 2), *call("d", "r2", 3),
        *call("e", "r1", 4, reason="participant_absent_timeout"),
        {"conversation_id": "a", **done},
        {"conversation_id": "b", **{**done, "output_variables": {"budget": "10k"}}},
        {"conversation_id": "b", **{**done, "output_variables": {"budget": "10k", "x": 1}}},
        {**GUARDRAIL, "conversation_id": "a"}, {**GUARDRAIL, "conversation_id": "a"},
        {"conversation_id": "c", "properties": {"guardrail": "other", "guardrail_uuid": "u"}},
        CANVAS,
        {**CANVAS, "properties": {**CANVAS["properties"], "interaction_id": "i2", "type": "skip"}},
    )  # fmt: skip
    ds = ta.load(db_path)
    # r1 uses the objective (r2 never completed it: its calls do not count); a, b of a..e
    rates = ds.objective_completion()
    assert rates[["objective_name", "calls", "completed"]].values.tolist() == [
        ["qualify_lead", 4, 2]
    ]
    assert rates["completion_rate"].tolist() == [0.5]
    by_replica = ds.objective_completion(by="replica")
    assert by_replica["replica_id"].tolist() == ["r1"]
    fill = ds.output_fill().set_index("variable")
    assert fill.loc["budget", ["completions", "found"]].tolist() == [3, 2]
    assert fill.loc["budget", "fill_rate"] == pytest.approx(2 / 3)
    values = ds.output_values("budget")
    assert values[["value", "count", "share"]].values.tolist() == [["10k", 2, 1.0]]
    g = ds.guardrail_summary().set_index("guardrail")
    assert g.loc["all", ["calls", "triggers", "calls_triggered"]].tolist() == [5, 3, 2]
    assert g.loc["all", "triggers_per_100_calls"] == 60.0
    assert g.loc["no_medical_advice", "share_of_calls"] == 0.2
    weekly = ds.guardrail_summary(by="week")
    assert weekly[weekly["guardrail"] == "all"]["triggers"].sum() == 3
    canvas = ds.canvas_outcomes().set_index("component")
    assert canvas.loc["canvas.question", ["interactions", "submit", "skip"]].tolist() == [2, 1, 1]
    assert canvas.loc["canvas.question", "skip_rate"] == 0.5


def test_answer_delay_metrics_by_hand(db_path):
    put(
        db_path,
        cb(ev.REPLICA_JOINED, "c1", "2026-05-22T10:00:00Z", replica_id="r1"),
        cb(ev.TRANSCRIPTION_READY, "c1", "2026-05-22T10:01:00Z", transcript=TIMED),
    )
    ds = ta.load(db_path)
    d = ds.answer_delays()
    assert d[["calls", "answers"]].values.tolist() == [[1, 3]]
    assert (d.at[0, "median_s"], d.at[0, "mean_s"]) == (0.75, pytest.approx(1.25 / 3))
    assert d.at[0, "overlap_share"] == pytest.approx(1 / 3)
    assert ds.answer_delays(by="replica")["replica_id"].tolist() == ["r1"]


def test_the_new_charts_draw_the_demo_and_say_when_there_is_nothing(tmp_path):
    from matplotlib.figure import Figure

    from tavus_analytics import charts, demo

    db = tmp_path / "demo.db"
    demo.write(db, conversations=300, seed=2)
    ds = ta.load(db)
    for name in (
        "objective_completion",
        "guardrail_triggers",
        "answer_delays",
        "answer_delay_trend",
        "canvas_outcomes",
        "recording_failures",
    ):
        fig = charts.CHARTS[name](ds)
        assert isinstance(fig, Figure) and fig.axes[0].get_title(loc="left"), name
        assert fig.axes[0].patches or fig.axes[0].lines, name  # something is drawn
        empty = charts.CHARTS[name](ds.filter(since="2099-01-01"))
        texts = " ".join(t.get_text() for t in empty.axes[0].texts)
        assert "no " in texts and "2099-01-01" in texts, name


def test_the_demo_has_every_2026_shape(tmp_path):
    from tavus_analytics import demo

    db = tmp_path / "demo.db"
    demo.write(db, conversations=500, seed=0)
    ds = ta.load(db)
    assert set(ds.objectives["shape"]) == {"flat", "nested"}
    assert (ds.objective_outputs["value_type"] == "notfound").any()
    assert (ds.objective_outputs["value_type"] == "list").any()
    per_call = ds.guardrail_triggers.groupby("conversation_id").size()
    assert (per_call == 3).any()  # a guardrail firing three times in one call
    assert ds.turns["answer_delay_s"].notna().sum() > 100 and ds.turns["overlap"].sum() > 0
    assert 0.5 < ds.turns["answer_delay_s"].median() < 3.0  # realistic delays
    assert set(ds.canvas_interactions["type"]) >= {"submit", "skip"}
    assert ds.recording_failures["error_code"].notna().all() and len(ds.recording_failures)
