"""Metrics on a hand-built database of five calls; every expected number is worked out here."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import tavus_analytics as ta
from tavus_analytics import events as ev
from tavus_analytics import metrics
from tavus_analytics.store import Store


def cb(event_type, cid, ts, **props):
    return {
        "properties": props,
        "conversation_id": cid,
        "event_type": event_type,
        "message_type": event_type.split(".")[0],
        "timestamp": ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if hasattr(ts, "strftime") else ts,
    }


def call(cid, replica, joined, seconds=None, reason=None, user=(), assistant=(), **extra):
    start = pd.Timestamp(joined, tz="UTC")
    out = [cb(ev.REPLICA_JOINED, cid, start, replica_id=replica)]
    if seconds is not None:
        end = start + pd.Timedelta(seconds=seconds)
        out.append(cb(ev.SHUTDOWN, cid, end, replica_id=replica, shutdown_reason=reason))
        if user or assistant:
            transcript = [{"role": "system", "content": "Be kind."}]
            transcript += [{"role": "user", "content": t} for t in user]
            transcript += [{"role": "assistant", "content": t} for t in assistant]
            out.append(cb(ev.TRANSCRIPTION_READY, cid, end, transcript=transcript))
        if "analysis" in extra:
            out.append(cb(ev.PERCEPTION_ANALYSIS, cid, end, analysis=extra["analysis"]))
        if "unavailable" in extra:
            out.append(cb(ev.PERCEPTION_UNAVAILABLE, cid, end, reason=extra["unavailable"]))
        if "s3_key" in extra:
            out.append(cb(ev.RECORDING_READY, cid, end, bucket_name="b", s3_key=extra["s3_key"]))
    return out


A_ANALYSIS = (
    "**User Appearance**\nRed hat and glasses.\n**Emotional States**\nThe user seems happy."
)
B_ANALYSIS = "**User Appearance**\nBlue hat.\n**Emotional States**\nCalm and happy."


@pytest.fixture
def ds(db_path):
    bodies = [
        # a: Monday 7 July, r1, 60 s, left; user 2 turns / 3 words, assistant 1 turn / 3 words
        *call(
            "a",
            "r1",
            "2025-07-07 10:00",
            60,
            "participant_left_timeout",
            user=["one two", "three"],
            assistant=["four five six"],
            analysis=A_ANALYSIS,
        ),
        # b: r1, 3600 s, max duration; user 1 turn / 1 word, assistant 2 turns / 4 words
        *call(
            "b",
            "r1",
            "2025-07-07 12:00",
            3600,
            "max_call_duration reached",
            user=["hi"],
            assistant=["hello there friend", "bye"],
            analysis=B_ANALYSIS,
        ),
        # c: Tuesday, r2, 300 s, nobody came; no transcript; perception unavailable
        *call(
            "c",
            "r2",
            "2025-07-08 09:00",
            300,
            "participant_absent_timeout reached",
            unavailable="no_vision_history",
        ),
        # d: next Monday 14 July, r2, 30 s, internal error at step 4; a recording
        *call(
            "d",
            "r2",
            "2025-07-14 09:00",
            30,
            "internal error occurred at step 4",
            s3_key="d.mp4",
        ),
        # e: r2, still in progress
        *call("e", "r2", "2025-07-14 10:00"),
    ]
    with Store(db_path) as store:
        store.insert_batch([json.dumps(b).encode() for b in bodies])
    return ta.load(db_path)


def test_shutdown_breakdown_by_category(ds):
    got = ds.shutdown_breakdown(by="category").set_index("shutdown_category")
    assert list(got.index) == list(ev.SHUTDOWN_CATEGORIES)
    # a, b, c, d ended (e has not): one each of four categories
    for category in ("participant_left", "max_duration", "participant_absent", "internal_error"):
        assert got.loc[category, "count"] == 1
        assert got.loc[category, "share"] == 0.25
    assert got["count"].sum() == 4
    assert got.loc["other", "count"] == 0
    assert got["share"].sum() == pytest.approx(1.0)


def test_shutdown_breakdown_by_reason_and_replica(ds):
    got = ds.shutdown_breakdown(by="reason")
    assert sorted(got["shutdown_reason"]) == sorted(
        [
            "participant_left_timeout",
            "max_call_duration reached",
            "participant_absent_timeout reached",
            "internal error occurred at step 4",
        ]
    )
    assert got["share"].tolist() == [0.25] * 4
    split = ds.shutdown_breakdown(by="category", split="replica")
    r1 = split[(split["replica_id"] == "r1") & (split["count"] > 0)]
    assert dict(zip(r1["shutdown_category"], r1["share"], strict=True)) == {
        "max_duration": 0.5,
        "participant_left": 0.5,
    }
    assert split.groupby("replica_id")["share"].sum().tolist() == [1.0, 1.0]


def test_shutdown_breakdown_by_week(ds):
    got = ds.shutdown_breakdown(by="category", split="week")
    weeks = got.groupby("week")["count"].sum()
    assert weeks.index.tolist() == [
        pd.Timestamp("2025-07-07", tz="UTC"),
        pd.Timestamp("2025-07-14", tz="UTC"),
    ]
    assert weeks.tolist() == [3, 1]  # a, b, c; then d


def test_durations(ds):
    got = ds.durations().iloc[0]
    # durations 60, 3600, 300, 30 s; sorted 30, 60, 300, 3600
    assert got["count"] == 4
    assert got["mean"] == (60 + 3600 + 300 + 30) / 4
    assert got["median"] == (60 + 300) / 2
    assert got["p90"] == pytest.approx(300 + 0.7 * (3600 - 300))  # position 0.9 * 3 = 2.7
    assert got["p95"] == pytest.approx(300 + 0.85 * (3600 - 300))
    assert got["max"] == 3600
    assert got["max_duration_share"] == 0.25
    by = ds.durations(by="replica_id").set_index("replica_id")
    assert by.loc["r1", "mean"] == (60 + 3600) / 2 and by.loc["r2", "mean"] == (300 + 30) / 2
    assert by.loc["r1", "max_duration_share"] == 0.5
    cat = ds.durations(by="shutdown_category").set_index("shutdown_category")
    assert cat.loc["participant_absent", "median"] == 300
    week = ds.durations(by="week").set_index("week")
    assert week["count"].tolist() == [3, 1]


def test_turn_stats_and_talk_ratio(ds):
    got = ds.turn_stats().set_index("role")
    # transcripts of a and b: user 3 turns / 4 words, assistant 3 turns / 7 words
    assert got.loc["user", "conversations"] == 2
    assert (got.loc["user", "turns"], got.loc["user", "words"]) == (3, 4)
    assert (got.loc["assistant", "turns"], got.loc["assistant", "words"]) == (3, 7)
    assert got.loc["user", "turns_per_conversation"] == 1.5
    assert got.loc["user", "words_per_turn"] == pytest.approx(4 / 3)
    assert got.loc["assistant", "words_per_turn"] == pytest.approx(7 / 3)
    assert got.loc["user", "word_share"] == pytest.approx(4 / 11)
    ratio = ds.talk_ratio().set_index("conversation_id")["user_share"]
    assert ratio.to_dict() == {"a": 3 / 6, "b": 1 / 5}


def test_volume_by_week_and_day(ds):
    week = ds.volume("W")
    assert week["conversations"].tolist() == [3, 2]
    assert week["ended"].tolist() == [3, 1]
    assert week["completion_rate"].tolist() == [2 / 3, 0.0]
    assert week["no_show_rate"].tolist() == [1 / 3, 0.0]
    assert week["error_rate"].tolist() == [0.0, 1.0]
    day = ds.volume("D")
    assert len(day) == 8  # 7 to 14 July, every day listed
    assert day["conversations"].tolist() == [2, 1, 0, 0, 0, 0, 0, 2]
    assert np.isnan(day["completion_rate"].iloc[3])
    by = ds.volume("W", by_replica=True).set_index(["period", "replica_id"])
    assert by.loc[(pd.Timestamp("2025-07-14", tz="UTC"), "r2"), "failed"] == 1
    assert by.loc[(pd.Timestamp("2025-07-14", tz="UTC"), "r1"), "conversations"] == 0


def test_funnel(ds):
    got = ds.funnel().set_index("stage")
    assert got["count"].to_dict() == {
        "joined": 5,
        "shutdown": 4,
        "transcript": 2,
        "recording": 1,
        "perception": 2,
    }
    assert got["share"].tolist() == [1.0, 0.8, 0.4, 0.2, 0.4]


def test_perception_summary_terms_and_analyses(ds):
    s = ds.perception_summary().iloc[0]
    assert (s["conversations"], s["with_analysis"], s["unavailable"]) == (5, 2, 1)
    assert s["coverage"] == 0.4
    assert s["analysis_words_mean"] == (len(A_ANALYSIS.split()) + len(B_ANALYSIS.split())) / 2
    by = ds.perception_summary(by="replica_id").set_index("replica_id")
    assert by.loc["r1", "coverage"] == 1.0 and by.loc["r2", "coverage"] == 0.0
    terms = ds.perception_terms(top=2)
    # "hat" and "happy" are in both analyses; "the", "and", "user", "seems" are stop words
    assert terms["term"].tolist() == ["happy", "hat"]
    assert terms["share"].tolist() == [1.0, 1.0]
    all_terms = set(ds.perception_terms(top=100)["term"])
    assert all_terms == {"happy", "hat", "red", "glasses", "blue", "calm"}
    phrases = ds.perception_terms(n=2, top=100)
    assert "red hat" in set(phrases["term"]) and set(phrases["analyses"]) == {1}
    read = ds.analyses(section="appearance")
    assert read["conversation_id"].tolist() == ["a", "b"]
    assert read["text"].tolist() == ["Red hat and glasses.", "Blue hat."]


def test_metrics_follow_filters(ds):
    r2 = ds.filter(replicas=["r2"])
    assert r2.durations().iloc[0]["mean"] == (300 + 30) / 2
    late = ds.filter(since="2025-07-14")
    assert late.funnel().set_index("stage")["count"].tolist() == [2, 1, 0, 1, 0]
    assert late.perception_summary().iloc[0]["conversations"] == 2
    early = ta.load(ds.path, until="2025-07-08")
    assert early.turn_stats().set_index("role").loc["user", "words"] == 4


def test_metric_functions_take_tables(ds):
    conv = ds.conversations
    only_b = conv[conv["conversation_id"] == "b"]
    assert metrics.durations(only_b).iloc[0]["max_duration_share"] == 1.0
    assert metrics.funnel(only_b)["count"].tolist() == [1, 1, 1, 0, 1]


def test_metrics_on_an_empty_database(db_path):
    Store(db_path).connection()
    empty = ta.load(db_path)
    assert empty.shutdown_breakdown(by="category")["count"].sum() == 0
    assert empty.durations().iloc[0]["count"] == 0
    assert empty.volume("D").empty
    assert empty.funnel()["count"].tolist() == [0] * 5
    assert empty.turn_stats()["conversations"].tolist() == [0, 0]
    assert empty.perception_terms().empty
    assert empty.analyses().empty
    assert empty.perception_summary().iloc[0]["conversations"] == 0


def test_bad_arguments_say_what_is_allowed(ds):
    with pytest.raises(ValueError, match="'reason' or 'category'"):
        ds.shutdown_breakdown(by="replica")
    with pytest.raises(ValueError, match="'D' \\(day\\) or 'W' \\(week\\)"):
        ds.volume("M")


def _utc(text):
    return pd.Timestamp(text, tz="UTC") if text else pd.NaT


def test_perception_coverage_per_period_on_hand_built_frames():
    # a, b: Monday 7 July; c: no join, first seen Wednesday 9; d: Monday 14; e: Tuesday 15.
    conversations = pd.DataFrame(
        {
            "conversation_id": ["a", "b", "c", "d", "e"],
            "replica_id": ["r1", "r1", "r2", "r2", "r1"],
            "joined_at": pd.Series(
                [_utc(t) for t in ["2025-07-07 10:00", "2025-07-07 23:59", None, "2025-07-14"]]
                + [_utc("2025-07-15 08:00")],
                dtype="datetime64[ns, UTC]",
            ),
            "first_seen": pd.Series(
                [_utc(t) for t in ["2025-07-07 09:59", "2025-07-08 00:01", "2025-07-09 08:00"]]
                + [_utc("2025-07-13 23:59"), _utc("2025-07-15 07:59")],
                dtype="datetime64[ns, UTC]",
            ),
            "has_perception": pd.array([True, False, True, False, False], dtype="boolean"),
        }
    )
    # a has an analysis (10 words) and a perception_unavailable: it counts as analysed. b and e
    # got perception_unavailable only, d nothing; zz is not one of these conversations.
    perception = pd.DataFrame(
        {
            "conversation_id": ["a", "a", "b", "c", "e", "zz"],
            "available": pd.array([True, False, False, True, False, True], dtype="boolean"),
            "words": pd.array([10, None, None, 30, None, 99], dtype="Int64"),
        }
    )
    week = metrics.perception_coverage(conversations, perception, freq="W")
    assert week["period"].tolist() == [_utc("2025-07-07"), _utc("2025-07-14")]
    assert week["conversations"].tolist() == [3, 2]  # a, b, c; d, e
    assert week["with_analysis"].tolist() == [2, 0]
    assert week["unavailable"].tolist() == [1, 1]  # b; e
    assert week["coverage"].tolist() == [2 / 3, 0.0]
    assert week["unavailable_share"].tolist() == [1 / 3, 0.5]
    assert week["analysis_words_mean"].iloc[0] == 20.0  # (10 + 30) / 2
    assert week["analysis_words_median"].iloc[0] == 20.0
    assert np.isnan(week["analysis_words_mean"].iloc[1])
    assert str(week["period"].dtype) == "datetime64[ns, UTC]"
    assert week[["conversations", "with_analysis", "unavailable"]].dtypes.eq("int64").all()

    day = metrics.perception_coverage(conversations, perception, freq="D")
    assert len(day) == 9  # 7 to 15 July, every day listed
    assert day["period"].iloc[0] == _utc("2025-07-07")
    assert day["conversations"].tolist() == [2, 0, 1, 0, 0, 0, 0, 1, 1]
    assert day["with_analysis"].tolist() == [1, 0, 1, 0, 0, 0, 0, 0, 0]
    assert day["unavailable"].tolist() == [1, 0, 0, 0, 0, 0, 0, 0, 1]
    assert day["coverage"].iloc[[0, 2, 7, 8]].tolist() == [0.5, 1.0, 0.0, 0.0]
    assert day["unavailable_share"].iloc[[0, 2, 7, 8]].tolist() == [0.5, 0.0, 0.0, 1.0]
    assert day["coverage"].iloc[[1, 3, 4, 5, 6]].isna().all()  # no call: no share
    assert day["unavailable_share"].iloc[[1, 3, 4, 5, 6]].isna().all()
    assert day["analysis_words_median"].iloc[[0, 2]].tolist() == [10.0, 30.0]

    none = metrics.perception_coverage(conversations.iloc[:0], perception, freq="W")
    assert none.empty and list(none.columns) == list(week.columns)
    assert str(none["period"].dtype) == "datetime64[ns, UTC]"
    with pytest.raises(ValueError, match="'D' \\(day\\) or 'W' \\(week\\)"):
        metrics.perception_coverage(conversations, perception, freq="M")


def test_perception_coverage_is_perception_summary_of_each_filtered_period(ds):
    for freq, step in (("D", pd.Timedelta(days=1)), ("W", pd.Timedelta(days=7))):
        got = metrics.perception_coverage(ds.conversations, ds.perception, freq=freq)
        assert got["conversations"].sum() == len(ds.conversations)
        for row in got.itertuples():
            expected = ds.filter(since=row.period, until=row.period + step).perception_summary()
            expected = expected.iloc[0]
            assert row.conversations == expected["conversations"]
            assert row.with_analysis == expected["with_analysis"]
            assert row.unavailable == expected["unavailable"]
            assert row.coverage == expected["coverage"] or (
                np.isnan(row.coverage) and np.isnan(expected["coverage"])
            )
    week = metrics.perception_coverage(ds.conversations, ds.perception, freq="W")
    assert week["with_analysis"].tolist() == [2, 0]  # a, b; then nothing
    assert week["unavailable"].tolist() == [1, 0]  # c


def test_replica_training_on_a_hand_built_frame():
    replicas = pd.DataFrame(
        {
            "replica_id": ["r1", "r1", "r2", "r2", "r3", "r4", "r5"],
            "status": ["started", "ready", "started", "error", "error", "error", None],
            "error_message": [None, None, None, "no face", "no face", None, None],
        }
    )
    got = metrics.replica_training(replicas)
    # most frequent first; ready and unknown tie and are in alphabetical order
    assert got["status"].tolist() == ["error", "started", "ready", "unknown"]
    assert got["count"].tolist() == [3, 2, 1, 1]
    assert got["share"].tolist() == [3 / 7, 2 / 7, 1 / 7, 1 / 7]
    errors = metrics.replica_training(replicas, by="error_message")
    assert errors["error_message"].iloc[0] == "no face" and pd.isna(errors["error_message"].iloc[1])
    assert errors["count"].tolist() == [2, 1]
    assert errors["share"].tolist() == [2 / 3, 1 / 3]
    assert metrics.replica_training(replicas.iloc[:0])["count"].sum() == 0
    with pytest.raises(ValueError, match="'status' or 'error_message'"):
        metrics.replica_training(replicas, by="replica_id")


def test_video_generation_on_a_hand_built_frame():
    videos = pd.DataFrame(
        {
            "status": ["ready", "ready", "error", "ready", "deleted", None, "ready"],
            # the ready video without a generation time (no created_at) has no duration
            "generation_s": [60.0, 300.0, 10.0, 120.0, 5.0, np.nan, np.nan],
        }
    )
    got = metrics.video_generation(videos).set_index("status")
    assert got.index.tolist() == ["ready", "deleted", "error", "unknown"]
    assert got["count"].tolist() == [4, 1, 1, 1]
    assert got["share"].tolist() == [4 / 7, 1 / 7, 1 / 7, 1 / 7]
    assert got.loc["ready", "generation_median_s"] == 120.0  # of 60, 120, 300
    assert got.loc["ready", "generation_p90_s"] == pytest.approx(120 + 0.8 * (300 - 120))
    # the time an error or a deletion took is not a generation time
    assert got.drop(index="ready")[["generation_median_s", "generation_p90_s"]].isna().all().all()
    assert metrics.video_generation(videos.iloc[:0]).empty


def test_the_dataset_methods_call_the_new_metrics(tmp_path):
    from tavus_analytics import demo

    db = tmp_path / "t.db"
    demo.write(db, conversations=40, seed=3)
    ds = ta.load(db)
    pd.testing.assert_frame_equal(
        ds.perception_coverage("W"),
        metrics.perception_coverage(ds.conversations, ds.perception, freq="W"),
    )
    pd.testing.assert_frame_equal(ds.replica_training(), metrics.replica_training(ds.replicas))
    pd.testing.assert_frame_equal(ds.video_generation(), metrics.video_generation(ds.videos))
    assert len(ds.perception_coverage("W")) > 0


# -- calls to look at ----------------------------------------------------------------------------
def test_objectives_missed_are_those_of_the_set_a_call_started():
    conv = pd.DataFrame(
        {"conversation_id": list("abcde"), "replica_id": ["r1", "r1", "r1", "r2", "r1"]}
    )
    objectives = pd.DataFrame(
        {
            "conversation_id": ["a", "a", "b", "d", "d", "e"],
            "objective_name": ["identify", "resolve", "identify", "identify", "book", "other"],
        }
    )
    # b started the identify/resolve set of r1 (a did both) and stopped; c completed nothing
    # (its set is unknown); on r2, identify goes with book, which d did
    assert metrics.objectives_missed(conv, objectives).values.tolist() == [["b", "r1", "resolve"]]
    assert metrics.objectives_missed(conv, objectives.iloc[:0]).empty


def test_calls_to_look_at_ranks_each_reason_by_hand():
    day = pd.Timestamp("2026-06-01", tz="UTC")
    nat = pd.NaT
    conv = pd.DataFrame(
        {
            "conversation_id": ["c1", "c2", "c3", "c4", "c5", "c6"],
            "replica_id": ["r1"] * 6,
            "joined_at": [
                day + pd.Timedelta(days=d) if d is not None else nat for d in (1, None, 0, 2, 3, 4)
            ],  # fmt: skip
            "first_seen": [day + pd.Timedelta(days=d) for d in (1, 4, 0, 2, 3, 4)],
            "outcome": ["failed", "failed", "completed", "completed", "completed", "no_show"],
            "shutdown_reason": ["internal error occurred at step 3", None, "x", "x", "x", "y"],
            "duration_s": [5.0, np.nan, 30.0, 12.0, 12.0, 300.0],
            "guardrail_triggers": pd.array([0, 0, 0, 2, 1, 0], dtype="Int64"),
            "answer_delay_p90_s": [np.nan, np.nan, 1.0, 3.0, np.nan, np.nan],
            "answer_delay_median_s": [np.nan, np.nan, 0.5, 1.0, np.nan, np.nan],
        }
    )
    objectives = pd.DataFrame(
        {
            "conversation_id": ["c3", "c3", "c4"],
            "objective_name": ["identify", "resolve", "identify"],
        }
    )
    evaluation = pd.DataFrame(
        {
            "conversation_id": ["c1", "c3", "c6"],
            "result": ["success", "failure", "failure"],
            "rule": ["r", "min_user_turns = 3", "outcome = completed"],
            "score": [1.0, 0.5, 0.0],
        }
    )
    out = metrics.calls_to_look_at(conv, objectives, evaluation=evaluation, n=2)
    got = [(r.reason, r.rank, r.conversation_id, r.detail) for r in out.itertuples()]
    assert got == [
        ("failed", 1, "c2", "no readable reason"),  # the latest: first seen on day 4
        ("failed", 2, "c1", "internal error occurred at step 3"),
        ("shortest", 1, "c5", "lasted 12 s"),  # a tie: the latest first
        ("shortest", 2, "c4", "lasted 12 s"),
        ("guardrail triggered", 1, "c4", "2 triggers"),
        ("guardrail triggered", 2, "c5", "1 trigger"),
        ("missed objectives", 1, "c4", "missed resolve"),
        ("slowest answers", 1, "c4", "answer delay p90 3.00 s, median 1.00 s"),
        ("slowest answers", 2, "c3", "answer delay p90 1.00 s, median 0.50 s"),
        ("criteria failed", 1, "c6", "outcome = completed; score 0.00"),
        ("criteria failed", 2, "c3", "min_user_turns = 3; score 0.50"),
    ]
    assert out["value"].tolist()[2:5] == [12.0, 12.0, 2.0]
    assert out["joined_at"].iloc[0] == day + pd.Timedelta(days=4)
    assert list(metrics.calls_to_look_at(conv, objectives, n=0)["reason"]) == []
    assert "criteria failed" not in set(metrics.calls_to_look_at(conv, objectives)["reason"])
