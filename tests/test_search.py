"""Full-text search (an FTS5 index brought up to date before each search) and the SQL views."""

from __future__ import annotations

import hashlib
import json
import sqlite3

import pytest
import sqlite_utils
from conftest import SECRET, run

from tavus_analytics import Store
from tavus_analytics.events import CATEGORY_OUTCOME, shutdown_category
from tavus_analytics.store.search import InvalidQuery, search
from tavus_analytics.store.sqlite import MIGRATIONS, SCHEMA_VERSION


def callback(cid, event_type, timestamp, **properties):
    return json.dumps(
        {
            "properties": {"replica_id": "r79e1c033f", **properties},
            "conversation_id": cid,
            "event_type": event_type,
            "message_type": "application" if event_type.startswith("app") else "system",
            "timestamp": timestamp,
        },
        ensure_ascii=False,
    ).encode()


def transcript(cid, *messages, timestamp="2025-07-11T06:48:38.000000Z"):
    body = [{"role": "system", "content": "You are Anna, a support agent. Mention refunds."}]
    body += [{"role": r, "content": c} for r, c in messages]
    return callback(cid, "application.transcription_ready", timestamp, transcript=body)


CALLS = [
    transcript(
        "c1",
        ("user", "Hi, I would like a refund for my order."),
        ("assistant", "Of course. Refunds take three days. Ça marche?"),
        ("user", "Great, thank you!"),
    ),
    transcript(
        "c2",
        ("user", "Can I cancel my subscription?"),
        ("assistant", "Yes: cancel it in settings, and ask for a refund if you like."),
    ),
]


@pytest.fixture
def filled(store, db_path):
    store.insert_batch(CALLS)
    return db_path


# -- the index follows what the collector stores ------------------------------------------------
def test_what_the_collector_stores_is_found(client, store):
    for body in CALLS:
        assert client.post(f"/webhook?token={SECRET}", data=body).status_code == 200
    found = search(store, "refund")
    assert sorted(zip(found.conversation_id, found.turn, found.role, strict=True)) == [
        ("c1", 1, "user"),
        ("c1", 2, "assistant"),
        ("c2", 2, "assistant"),
    ]
    assert set(found.columns) == {
        "conversation_id",
        "turn",
        "role",
        "snippet",
        "content",
        "callback_id",
        "score",
    }
    assert str(found["turn"].dtype) == "int64" and str(found["score"].dtype) == "float64"
    assert "[refund]" in found.set_index(["conversation_id", "turn"]).loc[("c1", 1), "snippet"]
    # The system prompt (turn 0) mentions refunds too, and is not indexed.
    assert 0 not in set(found.turn)


def test_role_conversation_limit_phrase_and_accents(filled):
    assert list(search(filled, "refund", role="user").conversation_id) == ["c1"]
    assert list(search(filled, "refund", conversation="c2").turn) == [2]
    assert len(search(filled, "refund", limit=1)) == 1
    assert len(search(filled, "refund", limit=None)) == 3
    # A phrase: the words side by side, in this order; punctuation is no syntax.
    assert list(search(filled, "cancel my subscription?").conversation_id) == ["c2"]
    assert search(filled, "subscription my cancel").empty
    assert list(search(filled, "CA MARCHE").conversation_id) == ["c1"]
    assert list(search(filled, "refund* NOT cancel", fts=True).conversation_id) == ["c1", "c1"]


def test_invalid_queries(filled):
    with pytest.raises(InvalidQuery, match="not a valid full-text query"):
        search(filled, "refund AND", fts=True)
    with pytest.raises(InvalidQuery, match="empty"):
        search(filled, "  ")
    with pytest.raises(InvalidQuery, match="role must be one of user, assistant"):
        search(filled, "refund", role="system")


def test_the_same_transcript_twice_is_found_once(store, db_path):
    store.insert_batch(CALLS)
    # The API's copy of c1's transcript: other bytes, same messages.
    again = json.loads(CALLS[0])
    again["webhook_url"] = "https://example.ngrok.app/webhook"
    store.insert_batch([json.dumps(again).encode()])
    assert len(search(db_path, "refund", conversation="c1")) == 2


def test_weird_bodies_never_make_the_insert_fail(store):
    weird = [
        callback("w1", "application.transcription_ready", "t", transcript="not a list"),
        callback("w2", "application.transcription_ready", "t", transcript={"role": "user"}),
        callback(
            "w3",
            "application.transcription_ready",
            "t",
            transcript=[
                "a string",
                42,
                None,
                [1, 2],
                {"role": "user"},
                {"role": "user", "content": ["part", {"type": "text"}]},
                {"role": 7, "content": "number role"},
                {"role": "user", "content": ""},
                {"role": "user", "content": "the only real message"},
            ],
        ),
        b'{"conversation_id": "w4", "event_type": "application.transcription_ready",'
        b' "properties": "flat"}',
        b'{"conversation_id": "w5", "event_type": "application.transcription_ready",'
        b' "properties": {"transcript": [{"role": "user", "content": "lone \\ud800 half"}]}}',
    ]
    result = store.insert_batch(weird)
    assert (result.stored, result.rejected) == (4, 1)  # the lone surrogate is refused
    # Written past every check, SQLite turns it into bytes that are not UTF-8.
    store.connection().execute(
        "INSERT INTO callbacks (received_at, kind, event_type, conversation_id, body, sha256) "
        "VALUES ('2025-07-11T00:00:00.000Z', 'conversation', 'application.transcription_ready',"
        " 'w5', ?, 'y')",
        (weird[-1].decode(),),
    )
    conn = store.connection()
    # A body SQLite does not read as JSON at all, written past the collector's checks.
    conn.execute(
        "INSERT INTO callbacks (received_at, kind, event_type, conversation_id, body, sha256) "
        "VALUES ('2025-07-11T00:00:00.000Z', 'conversation', 'application.transcription_ready',"
        " 'w6', '{not json', 'x')"
    )
    assert store.index_transcripts() == 2
    rows = conn.execute("SELECT conversation_id, turn, role FROM transcript_fts").fetchall()
    assert sorted(rows) == [("w3", 8, "user"), ("w5", 0, "user")]
    # SQLite turns the lone surrogate into bytes that are not UTF-8: read back as U+FFFD.
    assert list(search(store, "half").content) == ["lone \ufffd\ufffd\ufffd half"]


def test_migration_indexes_transcripts_stored_before_it(db_path):
    conn = sqlite3.connect(db_path, isolation_level=None)
    MIGRATIONS[0](sqlite_utils.Database(conn))
    conn.execute("PRAGMA user_version = 1")
    for body in CALLS:
        conn.execute(
            "INSERT INTO callbacks (received_at, kind, event_type, conversation_id, body, sha256)"
            " VALUES (?, 'conversation', 'application.transcription_ready', ?, ?, ?)",
            (
                "2025-07-11T00:00:00.000Z",
                json.loads(body)["conversation_id"],
                body.decode(),
                hashlib.sha256(body).hexdigest(),
            ),
        )
    conn.close()
    with Store(db_path) as store:
        assert store.migrate() == SCHEMA_VERSION  # already migrated on first use
        assert len(search(store, "refund")) == 3
        version = store.connection().execute("PRAGMA user_version").fetchone()[0]
    assert version == SCHEMA_VERSION


# -- the command --------------------------------------------------------------------------------
def test_search_command_prints_conversation_turn_role_and_snippet(filled):
    r = run("search", "refund", "--role", "user", "--db", filled)
    assert r.exit_code == 0, r.output
    assert r.output.splitlines() == [
        "conversation  turn  role       text",
        "c1               1  user       Hi, I would like a refund for my order.",
        "1 message",
    ]
    r = run("search", "refund", "--limit", "2", "--db", filled)
    assert r.output.splitlines()[-1] == "2 messages (--limit reached)"
    r = run("search", "unicorn", "--db", filled)
    assert r.exit_code == 0
    assert r.output == "No transcript message matches 'unicorn'.\n"


def test_search_command_errors(filled, tmp_path):
    r = run("search", "NEAR(", "--fts", "--db", filled)
    assert r.exit_code == 1
    assert r.output.startswith("Error: 'NEAR(' is not a valid full-text query (")
    assert r.output.endswith("drop --fts to search for the words as a phrase\n")
    missing = tmp_path / "none.db"
    r = run("search", "refund", "--db", missing)
    assert r.exit_code == 1
    assert r.output.startswith(f"Error: no database at {missing}: ")
    assert "Traceback" not in r.output


# -- views --------------------------------------------------------------------------------------
REASONS = [
    "participant_left_timeout",
    "participant_left_timeout reached",
    "Max_Call_Duration reached",
    "participant_absent_timeout reached",
    "bot_could_not_join_meeting_it_was_probably_ended",
    "daily_room_has_been_deleted",
    "exception_encountered_during_conversation_startup",
    "end_conversation_endpoint_hit",
    "internal error occurred at step 3",
    "internal_error_occurred_at_step_x",
    "  end_conversation_endpoint_hit_reached ",
    "something new",
]


def test_conversations_view_matches_the_python_classification(store):
    bodies = []
    for i, reason in enumerate(REASONS):
        cid = f"v{i:02d}"
        bodies += [
            callback(cid, "system.replica_joined", "2025-07-11T06:40:00.000000Z"),
            callback(cid, "system.pal_joined", "2025-07-11T06:40:01.000000Z", face_id="f"),
            callback(
                cid,
                "system.shutdown",
                f"2025-07-11T06:4{i % 10}:30.250000Z",
                shutdown_reason=reason,
            ),
        ]
    bodies.append(transcript("v00", ("user", "hello"), ("assistant", "hi"), ("user", "bye")))
    bodies.append(callback("v00", "application.perception_analysis", "t", analysis="**A**"))
    bodies.append(callback("v01", "application.post_call_action_executed", "t", tool_id="x"))
    bodies.append(callback("v99", "system.replica_joined", "2025-07-11T06:40:00Z"))
    store.insert_batch(bodies)
    conn = store.connection()
    rows = conn.execute(
        "SELECT conversation_id, shutdown_reason, shutdown_category, outcome, duration_s, "
        "user_turns, assistant_turns, has_transcript, has_perception, post_call_actions, "
        "callbacks FROM conversations_view ORDER BY conversation_id"
    ).fetchall()
    assert len(rows) == len(REASONS) + 1
    for i, (cid, reason, category, outcome, duration, *_rest) in enumerate(rows[:-1]):
        assert (cid, reason) == (f"v{i:02d}", REASONS[i])
        assert category == shutdown_category(reason), reason
        assert outcome == CATEGORY_OUTCOME[category]
        assert duration == pytest.approx((i % 10) * 60 + 30.25, abs=1e-3)
    assert rows[0][5:] == (2, 1, 1, 1, 0, 5)
    assert rows[1][5:] == (None, None, 0, 0, 1, 4)
    assert rows[-1][:5] == ("v99", None, None, None, None)


def test_turns_events_and_other_views(store):
    store.insert_batch(
        [
            *CALLS,
            callback(
                "c1",
                "application.recording_ready",
                "t",
                bucket_name="b",
                s3_key="k/1.mp4",
                duration=61,
            ),
            callback(
                "c2",
                "application.recording_ready",
                "t",
                storage_provider="gcs",
                storage_uri="gs://x/y.mp4",
            ),
            b'{"video_id": "v1", "video_name": "Hi", "status": "ready", "replica_id": "r1",'
            b' "data": {"script": "Hello"}}',
            b'{"replica_id": "r2", "status": "error", "error_message": "bad footage"}',
        ]
    )
    conn = store.connection()
    turns = conn.execute(
        "SELECT conversation_id, turn, role, content FROM turns_view ORDER BY callback_id, turn"
    ).fetchall()
    assert [t[:3] for t in turns] == [
        ("c1", 0, "system"),
        ("c1", 1, "user"),
        ("c1", 2, "assistant"),
        ("c1", 3, "user"),
        ("c2", 0, "system"),
        ("c2", 1, "user"),
        ("c2", 2, "assistant"),
    ]
    assert turns[3][3] == "Great, thank you!"
    assert conn.execute("SELECT count(*), count(properties) FROM events_view").fetchone() == (
        6,
        4,
    )
    assert conn.execute(
        "SELECT conversation_id, storage_uri, duration_s FROM recordings_view ORDER BY 1"
    ).fetchall() == [("c1", "s3://b/k/1.mp4", 61), ("c2", "gs://x/y.mp4", None)]
    assert conn.execute("SELECT video_id, status, script FROM videos_view").fetchall() == [
        ("v1", "ready", "Hello")
    ]
    assert conn.execute(
        "SELECT replica_id, status, error_message FROM replica_trainings_view"
    ).fetchall() == [("r2", "error", "bad footage")]


def test_every_view_answers_on_an_empty_database(store):
    conn = store.connection()
    views = [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'view'")]
    assert set(views) >= {"conversations_view", "turns_view", "events_view", "perception_view"}
    for view in views:
        assert conn.execute(f"SELECT * FROM {view}").fetchall() == []


def test_dataset_search_respects_its_filter(store, db_path):
    import tavus_analytics as ta

    def call(cid, replica, words):
        joined = {"replica_id": replica}
        return [
            callback(cid, "system.replica_joined", "2025-07-11T06:00:00.000000Z", **joined),
            transcript(cid, ("user", words)).replace(b"r79e1c033f", replica.encode()),
        ]

    store.insert_batch(call("a1", "rA", "a refund please") + call("b1", "rB", "refund now"))
    ds = ta.load(db_path)
    assert sorted(ds.search("refund").conversation_id) == ["a1", "b1"]
    only_b = ds.filter(replicas=["rB"])
    assert list(only_b.search("refund").conversation_id) == ["b1"]
    assert list(only_b.search("refund", limit=1).turn) == [1]
