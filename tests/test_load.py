"""The loader on hand-built databases: every expected number is worked out here, by hand."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

import tavus_analytics as ta
from tavus_analytics import events as ev
from tavus_analytics.config import find_database
from tavus_analytics.errors import DatabaseNotFound, TavusAnalyticsError
from tavus_analytics.events import split_sections
from tavus_analytics.frames import count_words, parse_times
from tavus_analytics.store import Store
from tavus_analytics.tables import TABLES

T0 = "2025-07-11T06:45:47.472000Z"


def cb(event_type, cid, ts, message_type=None, **props):
    """A conversation callback as Tavus sends it."""
    return {
        "properties": props,
        "conversation_id": cid,
        "webhook_url": "https://example.ngrok.app/webhook",
        "event_type": event_type,
        "message_type": message_type or event_type.split(".")[0],
        "timestamp": ts,
    }


def put(path, *bodies, received_at=None):
    """Store bodies (dicts or raw strings) in order, with arrival times a second apart."""
    items = []
    for i, body in enumerate(bodies):
        if isinstance(body, (str, bytes)):
            raw = body
        else:
            try:
                raw = json.dumps(body, ensure_ascii=False).encode()
            except UnicodeEncodeError:  # lone surrogates: send them escaped, as JSON allows
                raw = json.dumps(body)
        raw = raw.encode() if isinstance(raw, str) else raw
        when = received_at or f"2025-07-11T07:{i // 60:02d}:{i % 60:02d}.000Z"
        items.append((raw, when))
    with Store(path) as store:
        return store.insert_batch(items)


def row(ds, cid):
    frame = ds.conversations.set_index("conversation_id")
    return frame.loc[cid]


TRANSCRIPT = [
    {"role": "system", "content": "You are Anna, a friendly guide."},
    {"role": "user", "content": "hello there"},
    {"role": "assistant", "content": "Hi! How can I help?"},
    {"role": "user", "content": "  two   words\n"},
]


def full_call(cid="c1", replica="r1", start="2025-07-11T06:45:47.000000Z", seconds=125.5):
    end = pd.Timestamp(start) + pd.Timedelta(seconds=seconds)
    end_s = end.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return [
        cb(ev.REPLICA_JOINED, cid, start, replica_id=replica),
        cb(
            ev.SHUTDOWN,
            cid,
            end_s,
            replica_id=replica,
            shutdown_reason="participant_left_timeout reached",
        ),
        cb(ev.TRANSCRIPTION_READY, cid, end_s, replica_id=replica, transcript=TRANSCRIPT),
    ]


# -- opening ---------------------------------------------------------------------------------
def test_missing_database_is_a_clear_error(tmp_path):
    missing = tmp_path / "nope.db"
    with pytest.raises(DatabaseNotFound) as info:
        ta.load(missing)
    message = str(info.value)
    assert str(missing) in message
    assert "tavus-analytics demo" in message
    assert not missing.exists()


def test_a_file_that_is_not_a_callbacks_database_says_so(tmp_path):
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(TavusAnalyticsError, match="not a tavus-analytics database"):
        ta.load(other)


def test_default_database_comes_from_the_environment(db_path, monkeypatch):
    put(db_path, *full_call())
    monkeypatch.setenv("TAVUS_ANALYTICS_DB", str(db_path))
    assert ta.load().conversations["conversation_id"].tolist() == ["c1"]


def test_the_default_database_is_found_from_a_notebooks_folder(tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / "notebooks").mkdir(parents=True)
    (project / "data").mkdir()
    put(project / "data" / "tavus.db", *full_call())
    monkeypatch.delenv("TAVUS_ANALYTICS_DB", raising=False)
    monkeypatch.chdir(project / "notebooks")
    assert find_database() == str(project / "data" / "tavus.db")
    assert ta.load().conversations["conversation_id"].tolist() == ["c1"]
    monkeypatch.chdir(project)
    assert find_database() == str(Path("data") / "tavus.db")
    # Nothing there: the default in the current folder, which then says how to make one.
    assert find_database(cwd=tmp_path) == str(Path("data") / "tavus.db")
    # A name given is taken as it is, even when a default database exists.
    assert find_database({"TAVUS_ANALYTICS_DB": "elsewhere.db"}) == "elsewhere.db"
    monkeypatch.setenv("TAVUS_ANALYTICS_DB", str(tmp_path / "missing.db"))
    with pytest.raises(DatabaseNotFound, match="missing.db"):
        ta.load()


def test_dataset_filters_are_keyword_arguments_and_a_misspelled_one_is_an_error(db_path):
    put(db_path, *full_call())
    with pytest.raises(TypeError, match="sinse"):
        ta.Dataset(db_path, sinse="2025-07-01")
    assert len(ta.Dataset(db_path, since="2025-07-01").conversations) == 1
    assert len(ta.Dataset(db_path, since="2099-01-01").conversations) == 0
    assert ta.Dataset(db_path, replicas="r-none").filters["replicas"] == frozenset({"r-none"})


@pytest.mark.parametrize("name", [n for n in TABLES])
def test_empty_database_gives_empty_tables_with_their_columns_and_dtypes(db_path, name):
    Store(db_path).connection()
    table = getattr(ta.load(db_path), name)
    assert len(table) == 0
    assert list(table.columns) == list(TABLES[name])
    for column, dtype in TABLES[name].items():
        assert_dtype(table[column], dtype)


def assert_dtype(column, dtype):
    if dtype == "category":
        assert isinstance(column.dtype, pd.CategoricalDtype), column.name
    else:
        assert column.dtype == pd.Series([], dtype=dtype).dtype, column.name


def test_loading_never_writes_the_database(db_path):
    put(db_path, *full_call())
    Store(db_path).close()
    before = hashlib.sha256(db_path.read_bytes()).hexdigest()
    ds = ta.load(db_path)
    for name in TABLES:
        getattr(ds, name)
    assert hashlib.sha256(db_path.read_bytes()).hexdigest() == before


def test_a_dataset_is_a_snapshot(db_path):
    put(db_path, *full_call("c1"))
    ds = ta.load(db_path)
    put(db_path, *full_call("c2"))
    assert ds.conversations["conversation_id"].tolist() == ["c1"]
    assert len(ds.events) == 3
    assert sorted(ta.load(db_path).conversations["conversation_id"]) == ["c1", "c2"]


def test_tables_load_lazily(db_path):
    put(db_path, *full_call())
    ds = ta.load(db_path)
    assert len(ds.conversations) == 1
    assert "conversations" in ds.__dict__
    assert "turns" not in ds.__dict__ and "events" not in ds.__dict__
    assert "c1" in repr(ds) or "conversations=1" in repr(ds)
    assert "<table>" in ds._repr_html_()


# -- the conversations table ------------------------------------------------------------------
def test_a_complete_call(db_path):
    put(db_path, *full_call())
    ds = ta.load(db_path)
    c = row(ds, "c1")
    assert c["replica_id"] == "r1"
    assert c["joined_at"] == pd.Timestamp("2025-07-11T06:45:47Z")
    assert c["shutdown_at"] == pd.Timestamp("2025-07-11T06:47:52.500Z")
    assert c["duration_s"] == 125.5
    assert c["shutdown_reason"] == "participant_left_timeout reached"
    assert c["shutdown_category"] == "participant_left"
    assert c["outcome"] == "completed"
    assert pd.isna(c["shutdown_error_step"])
    assert c["status"] == "complete"
    assert c["has_transcript"] and not c["has_recording"] and not c["has_perception"]
    # user: "hello there" (2) + "  two   words\n" (2); assistant: "Hi! How can I help?" (5)
    assert (c["user_turns"], c["user_words"]) == (2, 4)
    assert (c["assistant_turns"], c["assistant_words"]) == (1, 5)
    assert c["system_prompt"] == "You are Anna, a friendly guide."
    assert c["first_seen"] == pd.Timestamp("2025-07-11T07:00:00Z")
    assert c["last_seen"] == pd.Timestamp("2025-07-11T07:00:02Z")
    assert ds.problems.empty


def test_conversation_dtypes(db_path):
    put(db_path, *full_call())
    conv = ta.load(db_path).conversations
    for column, dtype in TABLES["conversations"].items():
        assert_dtype(conv[column], dtype)
    assert list(conv["shutdown_category"].cat.categories) == list(ev.SHUTDOWN_CATEGORIES)


def test_callbacks_out_of_order_give_the_same_row(db_path, tmp_path):
    put(db_path, *full_call())
    reversed_db = tmp_path / "reversed.db"
    put(reversed_db, *reversed(full_call()))
    a = ta.load(db_path).conversations.drop(columns=["first_seen", "last_seen"])
    b = ta.load(reversed_db).conversations.drop(columns=["first_seen", "last_seen"])
    pd.testing.assert_frame_equal(a, b)
    assert row(ta.load(reversed_db), "c1")["duration_s"] == 125.5


def test_duplicates_are_counted_once_and_the_earliest_join_counts(db_path):
    call = full_call()
    # pal_joined arrives beside replica_joined, 0.25 s earlier; the shutdown arrives twice.
    pal = cb(ev.PAL_JOINED, "c1", "2025-07-11T06:45:46.750000Z", face_id="f1")
    result = put(db_path, *call, pal, call[1], call[0])
    assert (result.stored, result.duplicate) == (4, 2)
    ds = ta.load(db_path)
    assert len(ds.conversations) == 1
    c = row(ds, "c1")
    assert c["joined_at"] == pd.Timestamp("2025-07-11T06:45:46.75Z")
    assert c["duration_s"] == 125.75
    assert c["replica_id"] == "r1"


def test_two_different_shutdowns_the_earliest_wins_and_is_reported(db_path):
    call = full_call()
    late = cb(ev.SHUTDOWN, "c1", "2025-07-11T06:50:00Z", shutdown_reason="max_call_duration")
    put(db_path, late, *call)
    ds = ta.load(db_path)
    assert row(ds, "c1")["shutdown_category"] == "participant_left"
    assert row(ds, "c1")["duration_s"] == 125.5
    assert ds.problems["problem"].str.contains("2 shutdown callbacks").sum() == 1


def test_partial_calls(db_path):
    put(
        db_path,
        cb(ev.REPLICA_JOINED, "joined-only", T0, replica_id="r1"),
        cb(ev.SHUTDOWN, "shutdown-only", T0, shutdown_reason="participant_absent_timeout"),
        cb(ev.PERCEPTION_UNAVAILABLE, "app-only", T0, reason="no_vision_history"),
    )
    conv = ta.load(db_path).conversations.set_index("conversation_id")
    j = conv.loc["joined-only"]
    assert j["status"] == "in_progress"
    assert pd.isna(j["shutdown_at"]) and pd.isna(j["duration_s"])
    assert pd.isna(j["outcome"]) and pd.isna(j["shutdown_category"])
    assert not j["has_transcript"] and pd.isna(j["user_words"]) and pd.isna(j["user_turns"])
    s = conv.loc["shutdown-only"]
    assert s["status"] == "incomplete"
    assert pd.isna(s["joined_at"]) and pd.isna(s["duration_s"])
    assert s["shutdown_category"] == "participant_absent" and s["outcome"] == "no_show"
    a = conv.loc["app-only"]
    assert a["status"] == "incomplete" and not a["has_perception"]
    assert pd.isna(a["replica_id"])


@pytest.mark.parametrize(
    ("reason", "category", "outcome", "step"),
    [
        ("max_call_duration reached", "max_duration", "completed", None),
        ("MAX_CALL_DURATION", "max_duration", "completed", None),
        ("participant_left_timeout", "participant_left", "completed", None),
        ("participant_absent_timeout reached", "participant_absent", "no_show", None),
        ("bot_could_not_join_meeting_it_was_probably_ended", "bot_could_not_join", "failed", None),
        ("daily_room_has_been_deleted", "room_deleted", "failed", None),
        ("exception_encountered_during_conversation_startup", "startup_exception", "failed", None),
        ("end_conversation_endpoint_hit", "ended_by_api", "completed", None),
        ("internal error occurred at step 7", "internal_error", "failed", 7),
        ("internal error occurred at step x", "internal_error", "failed", None),
        ("a_reason_tavus_added_later", "other", "unknown", None),
    ],
)
def test_shutdown_reasons(db_path, reason, category, outcome, step):
    put(db_path, cb(ev.SHUTDOWN, "c1", T0, shutdown_reason=reason))
    c = row(ta.load(db_path), "c1")
    assert c["shutdown_reason"] == reason
    assert c["shutdown_category"] == category
    assert c["outcome"] == outcome
    assert pd.isna(c["shutdown_error_step"]) if step is None else c["shutdown_error_step"] == step


def test_timestamps_in_every_shape_become_utc(db_path):
    put(
        db_path,
        # no zone (the video payload's format): UTC
        cb(ev.REPLICA_JOINED, "a", "2024-08-28 15:27:40.824457", replica_id="r1"),
        cb(ev.SHUTDOWN, "a", "2024-08-28T15:29:40.824457Z", shutdown_reason="max_call_duration"),
        # a zone offset, no fraction
        cb(ev.REPLICA_JOINED, "b", "2024-08-28T17:00:00+02:00", replica_id="r1"),
        cb(ev.SHUTDOWN, "b", "2024-08-28T15:00:30.5Z", shutdown_reason="max_call_duration"),
    )
    conv = ta.load(db_path).conversations.set_index("conversation_id")
    assert conv.loc["a", "duration_s"] == 120.0
    assert conv.loc["b", "joined_at"] == pd.Timestamp("2024-08-28T15:00:00Z")
    assert conv.loc["b", "duration_s"] == 30.5
    assert str(conv["joined_at"].dtype) == "datetime64[ns, UTC]"


def test_join_timestamps_of_different_shapes_compare_as_times(db_path):
    # As text, "...47Z" sorts after "...47.472000Z"; as times it is earlier.
    put(
        db_path,
        cb(ev.REPLICA_JOINED, "c1", "2025-07-11T06:45:47.472000Z", replica_id="r1"),
        cb(ev.PAL_JOINED, "c1", "2025-07-11T06:45:47Z", face_id="f"),
        cb(ev.SHUTDOWN, "c1", "2025-07-11T06:46:47Z", shutdown_reason="max_call_duration"),
    )
    assert row(ta.load(db_path), "c1")["duration_s"] == 60.0


def test_parse_times_accepts_every_shape():
    got = parse_times(
        [
            "2025-07-11T06:45:47.472000Z",
            "2024-08-28 15:27:40.824457",
            "2025-07-11T06:45:47Z",
            1720680347.5,
            "1720680347.5",
            None,
            "not a time",
            "9999-01-01T00:00:00Z",
        ]
    )
    assert str(got.dtype) == "datetime64[ns, UTC]"
    assert got[0] == pd.Timestamp("2025-07-11 06:45:47.472", tz="UTC")
    assert got[1] == pd.Timestamp("2024-08-28 15:27:40.824457", tz="UTC")
    assert got[2] == pd.Timestamp("2025-07-11 06:45:47", tz="UTC")
    assert got[3] == got[4] == pd.Timestamp(1720680347.5, unit="s", tz="UTC")
    assert got[5:].isna().all()


# -- mess --------------------------------------------------------------------------------------
def test_properties_not_an_object(db_path):
    bad_shutdown = cb(ev.SHUTDOWN, "c1", T0)
    bad_shutdown["properties"] = "participant_left_timeout"
    bad_transcript = cb(ev.TRANSCRIPTION_READY, "c1", T0)
    bad_transcript["properties"] = [TRANSCRIPT]
    put(db_path, cb(ev.REPLICA_JOINED, "c1", T0, replica_id="r1"), bad_shutdown, bad_transcript)
    ds = ta.load(db_path)
    c = row(ds, "c1")
    assert c["status"] == "complete"  # a shutdown arrived, even if its reason cannot be read
    assert c["duration_s"] == 0.0
    assert pd.isna(c["shutdown_reason"]) and pd.isna(c["shutdown_category"])
    assert c["outcome"] == "unknown"
    assert not c["has_transcript"] and pd.isna(c["user_words"])
    problems = ds.problems.set_index("event_type")["problem"]
    assert "properties is not an object" in problems[ev.SHUTDOWN]
    assert "properties is not an object" in problems[ev.TRANSCRIPTION_READY]
    assert len(ds.turns) == 0


def test_transcript_not_a_list(db_path):
    put(db_path, cb(ev.TRANSCRIPTION_READY, "c1", T0, transcript="hello"))
    ds = ta.load(db_path)
    assert not row(ds, "c1")["has_transcript"]
    assert ds.problems["problem"].tolist() == ["transcript is not a list: skipped"]
    assert ds.problems["callback_id"].tolist() == [1]


def test_null_and_odd_content(db_path):
    transcript = [
        {"role": "user", "content": None},
        {"role": "assistant", "content": [{"type": "text", "text": "three word reply"}]},
        "not a message",
        {"role": "user", "content": 42},
        {"role": "user"},
    ]
    put(db_path, cb(ev.TRANSCRIPTION_READY, "c1", T0, transcript=transcript))
    ds = ta.load(db_path)
    c = row(ds, "c1")
    assert (c["user_turns"], c["user_words"]) == (3, 0)
    assert (c["assistant_turns"], c["assistant_words"]) == (1, 3)
    assert pd.isna(c["system_prompt"])
    turns = ds.turns
    assert turns["turn"].tolist() == [0, 1, 2, 3]
    assert turns["role"].tolist() == ["user", "assistant", "user", "user"]
    assert turns["content"].isna().tolist() == [True, False, True, True]
    assert turns["words"].tolist() == [0, 3, 0, 0]
    assert "1 transcript messages are not objects" in ds.problems["problem"].iloc[0]


def test_huge_transcript(db_path):
    transcript = [{"role": "system", "content": "prompt " * 10_000}]
    for i in range(3000):
        transcript.append({"role": "user" if i % 2 else "assistant", "content": f"w{i} x y"})
    put(db_path, cb(ev.TRANSCRIPTION_READY, "c1", T0, transcript=transcript))
    ds = ta.load(db_path)
    c = row(ds, "c1")
    assert (c["user_turns"], c["assistant_turns"]) == (1500, 1500)
    assert (c["user_words"], c["assistant_words"]) == (4500, 4500)
    assert len(ds.turns) == 3001
    assert ds.turns["words"].iloc[0] == 10_000


def test_any_unicode(db_path):
    text = "héllo wörld 你好\u3000世界 🎉\u00a0ok\u2028new line"
    transcript = [
        {"role": "user", "content": text},
        {"role": "assistant", "content": "\ud83d\ude00 \u200b zero-width-joins"},
    ]
    put(db_path, cb(ev.TRANSCRIPTION_READY, "c-ü", T0, transcript=transcript))
    ds = ta.load(db_path)
    c = row(ds, "c-ü")
    assert c["user_words"] == len(text.split()) == 8
    # U+200B is not whitespace for str.split(): "😀", "\u200b", "zero-width-joins"
    assert c["assistant_words"] == 3
    assert ds.turns["content"].iloc[0] == text


def test_count_words_is_str_split():
    texts = ["", " ", "a", " a ", "a  b\tc\nd\r\ne", "\x1c\x1fa\x0b\x0cb", "x\u3000y\u00a0z\u2009w"]
    assert count_words(texts).tolist() == [len(t.split()) for t in texts]
    assert count_words([]).tolist() == []
    # every character Python counts as whitespace separates words; look-alikes do not
    spaces = [chr(c) for c in range(0x110000) if chr(c).isspace()]
    assert len(spaces) == 29
    assert count_words([f"é{s}b" for s in spaces]).tolist() == [2] * len(spaces)
    lookalikes = ["\u200b", "\u2060", "\u2800", "\u2019", "\u3001", "\u1681", "\x00"]
    assert count_words([f"a{s}b" for s in lookalikes]).tolist() == [1] * len(lookalikes)


def test_two_different_transcripts_the_later_wins_and_is_reported(db_path):
    early = cb(
        ev.TRANSCRIPTION_READY,
        "c1",
        "2025-07-11T06:50:00.000000Z",
        transcript=[{"role": "user", "content": "one"}],
    )
    late = cb(
        ev.TRANSCRIPTION_READY,
        "c1",
        "2025-07-11T06:50:01.000000Z",
        transcript=[{"role": "user", "content": "one two"}, {"role": "user", "content": "three"}],
    )
    put(db_path, late, early)  # the later one arrives first
    ds = ta.load(db_path)
    c = row(ds, "c1")
    assert (c["user_turns"], c["user_words"]) == (2, 3)
    assert ds.turns["content"].tolist() == ["one two", "three"]
    problems = ds.problems
    assert problems["callback_id"].tolist() == [2]
    assert "later transcription_ready" in problems["problem"].iloc[0]


def test_unknown_event_types_are_kept(db_path):
    put(
        db_path,
        cb("application.something_new", "c1", T0, detail={"x": 1}),
        cb(ev.MEMORY_CONSOLIDATION, "c1", T0),
        {"hello": "world"},
    )
    ds = ta.load(db_path)
    other = ds.other_events
    assert other["event_type"].tolist() == ["application.something_new", ev.MEMORY_CONSOLIDATION]
    assert other["properties"].iloc[0] == {"detail": {"x": 1}}
    assert ds.events["kind"].tolist() == ["conversation", "conversation", "unknown"]
    assert row(ds, "c1")["status"] == "incomplete"


def test_a_body_sqlite_cannot_read_is_reported_not_fatal(db_path):
    put(db_path, *full_call())
    # A row written by something other than the collector: SQLite's JSON functions refuse it.
    conn = sqlite3.connect(db_path)
    conn.execute(
        "INSERT INTO callbacks (received_at, kind, event_type, conversation_id, timestamp, body, "
        "sha256) VALUES ('2025-07-11T08:00:00.000Z', 'conversation', ?, 'c2', ?, ?, 'x')",
        (ev.SHUTDOWN, T0, '{"properties": {"shutdown_reason": "max_call_duration"'),
    )
    conn.commit()
    conn.close()
    ds = ta.load(db_path)
    assert row(ds, "c1")["duration_s"] == 125.5
    c2 = row(ds, "c2")
    assert pd.isna(c2["shutdown_reason"])
    assert (
        ds.problems.set_index("conversation_id")
        .loc["c2", "problem"]
        .startswith("body is not JSON that the database")
    )


# -- the other tables --------------------------------------------------------------------------
def test_events_table(db_path):
    put(db_path, *full_call(), {"replica_id": "r9", "status": "ready"})
    e = ta.load(db_path).events
    assert e["id"].tolist() == [1, 2, 3, 4]
    assert e["kind"].tolist() == ["conversation"] * 3 + ["replica_training"]
    assert e["timestamp"].iloc[1] == pd.Timestamp("2025-07-11T06:47:52.5Z")
    assert pd.isna(e["timestamp"].iloc[3])
    assert e["received_at"].iloc[3] == pd.Timestamp("2025-07-11T07:00:03Z")


def test_turns_table_with_newer_fields(db_path):
    transcript = [
        {"role": "system", "content": "prompt"},
        {
            "role": "user",
            "content": "hi",
            "timestamp": "2025-07-11T06:45:50.000000Z",
            "seconds_from_start": 3.0,
            "duration": 1.5,
            "inference_id": "inf-1",
        },
        {
            "role": "assistant",
            "content": "",
            "timestamp": 1752216352.25,
            "tool_calls": [{"id": "t1", "function": {"name": "lookup"}}],
        },
        {"role": "tool", "content": "result", "tool_call_id": "t1"},
        {"role": "system", "content": "Information from documents: ..."},
    ]
    put(db_path, cb(ev.TRANSCRIPTION_READY, "c1", T0, transcript=transcript))
    ds = ta.load(db_path)
    t = ds.turns
    assert t["role"].tolist() == ["system", "user", "assistant", "tool", "system"]
    assert t["words"].tolist() == [1, 1, 0, 1, 4]
    assert t["chars"].tolist() == [6, 2, 0, 6, 31]
    assert t["timestamp"].iloc[1] == pd.Timestamp("2025-07-11T06:45:50Z")
    assert t["timestamp"].iloc[2] == pd.Timestamp(1752216352.25, unit="s", tz="UTC")
    assert t["seconds_from_start"].iloc[1] == 3.0 and t["duration"].iloc[1] == 1.5
    assert t["inference_id"].iloc[1] == "inf-1"
    assert json.loads(t["tool_calls"].iloc[2])[0]["id"] == "t1"
    assert t["tool_call_id"].iloc[3] == "t1"
    c = row(ds, "c1")
    assert c["system_prompt"] == "prompt"
    assert (c["user_turns"], c["assistant_turns"]) == (1, 1)


def test_perception(db_path):
    analysis = (
        "Here's a summary of the visual observations taken during the video call over the last "
        "60 seconds:\n\n"
        "**User Appearance:** A person in a blue shirt.\n\n"
        "**User Behavior & Actions**\n- Nods often.\n\n"
        "**Emotional States & Patterns**\nCalm.\n\n"
        "**Notable Screen Activities**\nNone.\n\n"
        "**Is the user wearing glasses?**\nYes."
    )
    put(
        db_path,
        cb(ev.PERCEPTION_ANALYSIS, "c1", T0, analysis=analysis),
        cb(ev.PERCEPTION_UNAVAILABLE, "c2", T0, reason="no_vision_history"),
        cb(ev.PERCEPTION_ANALYSIS, "c3", T0, analysis=None),
    )
    ds = ta.load(db_path)
    p = ds.perception
    assert p["available"].tolist() == [True, False]
    assert p["analysis"].iloc[0] == analysis
    assert p["words"].iloc[0] == len(analysis.split())
    assert p["appearance"].iloc[0] == "A person in a blue shirt."
    assert p["behavior"].iloc[0] == "- Nods often."
    assert p["emotions"].iloc[0] == "Calm."
    assert p["screen_activity"].iloc[0] == "None."
    assert p["sections"].iloc[0]["Is the user wearing glasses?"] == "Yes."
    assert p["reason"].iloc[1] == "no_vision_history"
    conv = ds.conversations.set_index("conversation_id")["has_perception"]
    assert conv.to_dict() == {"c1": True, "c2": False, "c3": False}
    assert ds.problems["problem"].tolist() == ["analysis is not text: skipped"]


def test_split_sections_keeps_the_preamble_and_custom_queries():
    got = split_sections("Summary:\n1. **A:** x\n2. **B**\ny\n\n**C?**: z")
    assert got == {"": "Summary:", "A": "x", "B": "y", "C?": "z"}
    assert split_sections("no headers") == {"": "no headers"}


def test_recordings_in_both_shapes(db_path):
    put(
        db_path,
        cb(ev.RECORDING_READY, "c1", T0, bucket_name="b", s3_key="k/c1.mp4", duration=61),
        cb(ev.RECORDING_READY, "c2", T0, storage_provider="s3", storage_uri="s3://x/c2.mp4"),
    )
    ds = ta.load(db_path)
    r = ds.recordings
    assert r["uri"].tolist() == ["s3://b/k/c1.mp4", "s3://x/c2.mp4"]
    assert r["duration"].iloc[0] == 61.0 and pd.isna(r["duration"].iloc[1])
    conv = ds.conversations.set_index("conversation_id")
    assert conv["has_recording"].tolist() == [True, True]
    assert conv.loc["c1", "recording_s3_key"] == "k/c1.mp4"
    assert pd.isna(conv.loc["c2", "recording_s3_key"])


def test_post_call_actions(db_path):
    put(
        db_path,
        cb(
            ev.POST_CALL_ACTION,
            "c1",
            T0,
            tool_id="t1",
            tool_name="crm",
            status="success",
            request={"url": "https://x", "body": '{"a": 1}'},
            response={"status": 200},
        ),
        cb(ev.POST_CALL_ACTION, "c1", T0, tool_name="mail", request={"body": {"b": 2}}),
    )
    p = ta.load(db_path).post_call_actions
    assert p["tool_name"].tolist() == ["crm", "mail"]
    assert p["request_body"].tolist() == [{"a": 1}, {"b": 2}]
    assert p["response"].iloc[0] == {"status": 200}


def test_replicas_and_videos(db_path):
    video = {
        "video_id": "v1",
        "video_name": "hello",
        "replica_id": "r1",
        "status": "ready",
        "created_at": "2024-08-28 15:27:40.824457",
        "updated_at": "2024-08-28 15:29:10.824457",
        "generation_progress": "100/100",
        "download_url": "https://d",
        "hosted_url": "https://h",
        "data": {"script": "Hi there"},
    }
    queued = {**video, "status": "queued", "updated_at": "2024-08-28 15:27:41.000000"}
    put(
        db_path,
        video,
        queued,  # arrives after, but is older
        {"replica_id": "r1", "status": "ready"},
        {"replica_id": "r2", "status": "error", "error_message": "bad footage"},
    )
    ds = ta.load(db_path)
    v = ds.videos
    assert len(v) == 1
    assert v["status"].iloc[0] == "ready"
    assert v["generation_s"].iloc[0] == 90.0
    assert v["script"].iloc[0] == "Hi there"
    assert v["callbacks"].iloc[0] == 2
    r = ds.replicas
    assert r["status"].tolist() == ["ready", "error"]
    assert r["error_message"].isna().tolist() == [True, False]


# -- filters -----------------------------------------------------------------------------------
def test_filters(db_path):
    put(
        db_path,
        *full_call("a", "r1", start="2025-07-01T10:00:00Z"),
        *full_call("b", "r2", start="2025-07-02T10:00:00Z"),
        *full_call("c", "r1", start="2025-07-03T10:00:00Z"),
        cb(ev.SHUTDOWN, "d", "2025-07-03T09:00:00Z", replica_id="r1", shutdown_reason="x"),
    )
    ds = ta.load(db_path)
    assert ds.filter(replicas="r1").conversations["conversation_id"].tolist() == ["a", "c", "d"]
    july2 = ds.filter(since="2025-07-02", until="2025-07-03")
    assert july2.conversations["conversation_id"].tolist() == ["b"]
    assert set(july2.turns["conversation_id"]) == {"b"}
    assert set(july2.events["conversation_id"]) == {"b"}
    # "d" has no join: it is placed by its first arrival (2025-07-11, the test's clock)
    late = ta.load(db_path, since="2025-07-03", replicas=["r1", "r2"])
    assert late.conversations["conversation_id"].tolist() == ["c", "d"]
    both = late.filter(until="2025-07-04")
    assert both.conversations["conversation_id"].tolist() == ["c"]
    assert both.filters["replicas"] == frozenset({"r1", "r2"})
    assert both.filter(replicas=["r2"]).conversations.empty
