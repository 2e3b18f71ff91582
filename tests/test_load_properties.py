"""Property-based tests: whatever callbacks arrive, in whatever order, loading never fails."""

from __future__ import annotations

import json
import sqlite3
import tempfile
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tavus_analytics as ta
from tavus_analytics import events as ev
from tavus_analytics.frames import count_words
from tavus_analytics.store import Store
from tavus_analytics.tables import TABLES

EVENT_TYPES = [
    ev.REPLICA_JOINED,
    ev.PAL_JOINED,
    ev.SHUTDOWN,
    ev.TRANSCRIPTION_READY,
    ev.RECORDING_READY,
    ev.RECORDING_COPY_FAILED,
    ev.PERCEPTION_ANALYSIS,
    ev.PERCEPTION_UNAVAILABLE,
    ev.POST_CALL_ACTION,
    ev.MEMORY_CONSOLIDATION,
    "application.not_seen_before",
    "conversation.utterance",
]
REASONS = [
    "max_call_duration reached",
    "participant_left_timeout",
    "participant_absent_timeout reached",
    "internal error occurred at step 3",
    "internal error occurred at step ",
]

text = st.text(max_size=30)
scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), text)
json_value = st.recursive(
    scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
timestamp = st.one_of(
    st.none(),
    st.just("2025-07-11T06:45:47.472000Z"),
    st.just("2024-08-28 15:27:40.824457"),
    st.datetimes(
        min_value=pd.Timestamp("2000-01-01").to_pydatetime(),
        max_value=pd.Timestamp("2040-01-01").to_pydatetime(),
    ).map(lambda d: d.isoformat() + "Z"),
    st.floats(min_value=0, max_value=3e9),
    text,
)
message = st.one_of(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["system", "user", "assistant", "tool"]), "content": text},
        optional={"timestamp": timestamp, "seconds_from_start": scalar, "tool_calls": json_value},
    ),
    st.fixed_dictionaries({"role": json_value, "content": json_value}),
    json_value,
)
properties = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "replica_id": st.sampled_from(["r1", "r2"]),
            "shutdown_reason": st.one_of(st.sampled_from(REASONS), json_value),
            "transcript": st.one_of(st.lists(message, max_size=6), json_value),
            "analysis": st.one_of(text.map(lambda t: f"**User Appearance** {t}"), json_value),
            "s3_key": scalar,
            "storage_uri": scalar,
            "duration": scalar,
            "request": json_value,
            "reason": scalar,
        },
    ),
    json_value,
)
conversation_callback = st.fixed_dictionaries(
    {
        "conversation_id": st.sampled_from(["c1", "c2", "c3", "ü-ñ", ""]),
        "event_type": st.sampled_from(EVENT_TYPES),
        "timestamp": timestamp,
        "properties": properties,
    },
    optional={"message_type": scalar},
)
other_callback = st.one_of(
    st.fixed_dictionaries(
        {"video_id": text, "status": st.sampled_from(["queued", "ready", "error"])},
        optional={"created_at": timestamp, "updated_at": timestamp, "data": json_value},
    ),
    st.fixed_dictionaries(
        {"replica_id": text, "status": text}, optional={"error_message": json_value}
    ),
    st.dictionaries(st.text(max_size=5), json_value, max_size=3),
)
callbacks = st.lists(
    st.one_of(conversation_callback, conversation_callback, other_callback), max_size=25
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(callbacks)
def test_any_callbacks_load_and_give_one_row_per_conversation(bodies):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tavus.db"
        with Store(path) as store:
            store.insert_batch([json.dumps(b).encode() for b in bodies])
        ds = ta.load(path)
        for name in TABLES:
            table = getattr(ds, name)
            assert list(table.columns) == list(TABLES[name])
        conn = sqlite3.connect(path)
        expected = {
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT conversation_id FROM callbacks WHERE kind = 'conversation'"
            )
        }
        conn.close()
        conv = ds.conversations
        assert conv["conversation_id"].is_unique
        assert set(conv["conversation_id"]) == expected
        # Words and turns agree between the two tables that count them.
        with_transcript = conv[conv["has_transcript"].astype(bool)]
        for role in ("user", "assistant"):
            turns = ds.turns[ds.turns["role"] == role].groupby("conversation_id")["words"].sum()
            got = with_transcript.set_index("conversation_id")[f"{role}_words"]
            assert got.astype("int64").to_dict() == turns.reindex(got.index, fill_value=0).to_dict()
        ds.shutdown_breakdown(by="category", split="week")
        ds.durations(by="replica_id")
        ds.volume("W", by_replica=True)
        ds.funnel()
        ds.perception_summary(by="replica_id")
        ds.perception_terms(n=2)


@given(st.lists(st.text(), max_size=20))
def test_count_words_is_len_of_split(texts):
    assert count_words(texts).tolist() == [len(t.split()) for t in texts]


# Every branch of count_words: single spaces, other ASCII white space (lines, tabs, the
# separators \x1c-\x1f), NUL (not a space), Unicode spaces and characters that share their
# first UTF-8 byte (U+00E9, U+2014, U+2019), a lone surrogate, a character outside the BMP.
_SPACEY = st.sampled_from(
    [" ", "  ", "\n", "\t", "\r\n", "\x1c", "\x1f", "\x00", "\x85", "\xa0", "\u1680", "\u2003"]
    + ["\u2028", "\u202f", "\u205f", "\u3000", "\xe9", "\u2014", "\u2019", "\ud800", "\U0001f600"]
    + ["a", "word", "x y"]
)


@given(st.lists(st.lists(_SPACEY, max_size=12).map("".join), max_size=20))
def test_count_words_is_len_of_split_for_any_white_space(texts):
    assert count_words(texts).tolist() == [len(t.split()) for t in texts]
