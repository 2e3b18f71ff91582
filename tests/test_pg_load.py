"""The loader on PostgreSQL gives the tables it gives on SQLite, cell by cell.

The same callbacks go into a SQLite file and a PostgreSQL database (a throwaway server, a fresh
database per test): seeded demo data, with its deliberate duplicate deliveries, and hand-made
messy bodies. Row ids differ between the two stores (PostgreSQL's identity column leaves a gap
where a duplicate was skipped), so every id is replaced by the SHA-256 of the row it points to
before the tables are compared.
"""

from __future__ import annotations

import json
import threading

import pandas as pd
import psycopg
import pytest

import tavus_analytics as ta
from tavus_analytics import demo
from tavus_analytics import events as ev
from tavus_analytics.errors import TavusAnalyticsError
from tavus_analytics.store import Store, display_url, open_store
from tavus_analytics.store import postgres as pgstore
from tavus_analytics.store.base import READ_CHUNK
from tavus_analytics.store.postgres import PgStore
from tavus_analytics.tables import TABLES
from tavus_analytics.testing import free_port
from tests.conftest import pg_query, query
from tests.test_load import TRANSCRIPT, cb, full_call

SEED = 11
CONVERSATIONS = 300
T = "2025-07-11T06:50:00Z"


def raw(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()


def messy_bodies() -> list[tuple[bytes, str]]:
    """Bodies that exercise every rule of the loader, with arrival times a second apart."""
    reason = "participant_left_timeout reached"
    bodies = [
        # a complete call, its shutdown delivered twice (a duplicate), a second later shutdown
        *full_call("m-full", "r1"),
        full_call("m-full", "r1")[1],
        cb(ev.SHUTDOWN, "m-full", "2025-07-11T06:59:00Z", shutdown_reason="max_call_duration"),
        # join timestamps of different shapes: the text minimum is not the earliest time
        cb(ev.REPLICA_JOINED, "m-mixed", "2025-07-11T06:45:47.472000Z", replica_id="r2"),
        cb(ev.PAL_JOINED, "m-mixed", "2025-07-11T06:45:47Z", face_id="f"),
        cb(ev.SHUTDOWN, "m-mixed", "2025-07-11 06:46:47.5", shutdown_reason=reason),
        cb(ev.REPLICA_JOINED, "m-offset", "2025-07-11T08:45:47+02:00", replica_id="r2"),
        # shutdowns that cannot be read: no reason, not text, null, properties not an object
        cb(ev.SHUTDOWN, "m-noreason", "2025-07-11T06:50:00Z"),
        cb(ev.SHUTDOWN, "m-number", "2025-07-11T06:50:00Z", shutdown_reason=42),
        cb(ev.SHUTDOWN, "m-null", "2025-07-11T06:50:00Z", shutdown_reason=None),
        {**cb(ev.SHUTDOWN, "m-props", "2025-07-11T06:50:00Z"), "properties": "left"},
        cb(ev.SHUTDOWN, "m-badtime", "not a time", shutdown_reason="max_call_duration"),
        {k: v for k, v in cb(ev.SHUTDOWN, "m-nots", "x").items() if k != "timestamp"},
        # transcripts: not a list, properties a list, odd messages, two for one call, unicode,
        # a NUL escape (jsonb refuses the body; the transcript pass reads the text itself)
        cb(ev.TRANSCRIPTION_READY, "m-tnl", "2025-07-11T06:50:00Z", transcript="hello"),
        {**cb(ev.TRANSCRIPTION_READY, "m-tpl", "2025-07-11T06:50:00Z"), "properties": [1]},
        cb(
            ev.TRANSCRIPTION_READY,
            "m-odd",
            "2025-07-11T06:50:00Z",
            transcript=[
                {"role": "system", "content": [{"type": "text", "text": "be brief"}]},
                {"role": "user", "content": None},
                "not a message",
                {"role": "assistant", "content": [{"type": "text", "text": "three word reply"}]},
                {"role": "user", "content": 42},
                {"role": 7},
                {
                    "role": "user",
                    "content": "hi",
                    "timestamp": 1752216352.25,
                    "seconds_from_start": "3.5",
                    "duration": True,
                    "inference_id": 12,
                    "tool_calls": [{"id": "t1"}],
                },
                {"role": "tool", "content": "ok", "tool_call_id": "t1", "timestamp": "bad"},
            ],
        ),
        cb(
            ev.TRANSCRIPTION_READY,
            "m-two",
            "2025-07-11T06:50:01Z",
            transcript=[{"role": "user", "content": "one two"}, {"role": "user", "content": "x"}],
        ),
        cb(
            ev.TRANSCRIPTION_READY,
            "m-two",
            "2025-07-11T06:50:00Z",
            transcript=[{"role": "user", "content": "earlier"}],
        ),
        cb(
            ev.TRANSCRIPTION_READY,
            "m-ü",
            "2025-07-11T06:50:00Z",
            transcript=[
                {"role": "user", "content": "héllo wörld 你好\u3000世界 🎉\u00a0ok\u2028new"},
                {"role": "assistant", "content": "nul\u0000inside a message"},
            ],
        ),
        cb(ev.TRANSCRIPTION_READY, "m-empty", "2025-07-11T06:50:00Z", transcript=[]),
        # perception, recordings and post-call actions in every shape
        cb(ev.PERCEPTION_ANALYSIS, "m-full", "2025-07-11T06:50:00Z", analysis="**A:** x\n**B** y"),
        cb(ev.PERCEPTION_ANALYSIS, "m-pnull", "2025-07-11T06:50:00Z", analysis=None),
        cb(ev.PERCEPTION_ANALYSIS, "m-pnum", "2025-07-11T06:50:00Z", analysis=3),
        cb(ev.PERCEPTION_UNAVAILABLE, "m-pnull", "2025-07-11T06:50:00Z", reason="no_vision"),
        cb(ev.RECORDING_READY, "m-full", T, bucket_name="b", s3_key="k1"),
        cb(ev.RECORDING_READY, "m-full", "2025-07-11T06:51:00Z", s3_key="k2", duration="61.5"),
        cb(ev.RECORDING_READY, "m-rec", T, storage_provider="s3", storage_uri="s3://x/y.mp4"),
        cb(ev.RECORDING_READY, "m-recnum", T, s3_key=17, duration=[1]),
        {**cb(ev.RECORDING_READY, "m-recprops", T), "properties": ["k"]},
        cb(
            ev.POST_CALL_ACTION,
            "m-full",
            T,
            tool_name="crm",
            status="success",
            request={"url": "https://x", "body": '{"a": 1}'},
            response={"status": 200},
        ),
        cb(ev.POST_CALL_ACTION, "m-full", T, tool_id=5, request={"body": "not json"}),
        {**cb(ev.POST_CALL_ACTION, "m-pca", T), "properties": None},
        # unknown event types, flat bodies, replicas, videos
        cb("application.something_new", "m-full", T, detail={"x": [1, 2]}),
        {**cb("system.later", "m-new", T), "properties": 5},
        {"hello": "world"},
        {"replica_id": "r1", "status": "ready"},
        {"replica_id": "r2", "status": "error", "error_message": {"code": 3}},
        {
            "video_id": "v-m",
            "replica_id": "r1",
            "status": "ready",
            "created_at": "2024-08-28 15:27:40.824457",
            "updated_at": "2024-08-28 15:29:10.824457",
            "data": {"script": "Hi"},
            "error_details": {"e": 1},
        },
        {"video_id": "v-m", "status": "queued", "updated_at": "2024-08-28 15:27:41"},
        {"video_id": None, "status": "queued"},
    ]
    return [
        (raw(b), f"2025-07-12T07:{i // 60:02d}:{i % 60:02d}.000Z") for i, b in enumerate(bodies)
    ]


@pytest.fixture
def stores(tmp_path, pg_url):
    """(SQLite path, PostgreSQL URL), the same callbacks stored in each."""
    path = tmp_path / "tavus.db"
    results = [demo.write(db, conversations=CONVERSATIONS, seed=SEED) for db in (path, pg_url)]
    assert results[0] == results[1]
    assert results[0].duplicate > 0  # the demo's deliberate duplicate deliveries
    messy = messy_bodies()
    with Store(path) as s:
        sqlite_batch = s.insert_batch(messy)
    with PgStore(pg_url) as s:
        pg_batch = s.insert_batch(messy)
    assert sqlite_batch == pg_batch and sqlite_batch.duplicate == 1
    for db in (path, pg_url):  # review labels, the same in both
        with open_store(db) as s:
            s.annotate("m-full", label="reviewed", note="ok", author="a", created_at=T)
            s.annotate("m-mixed", note="odd joins", author="b", created_at=T)
            s.annotate("m-full", label="gone", author="a", created_at=T)
            s.remove_annotation(3, author="a", removed_at=T)
    return path, pg_url


def shas(db) -> dict[int, str]:
    """Row id -> SHA-256 of the body, for every callback of the database."""
    if isinstance(db, str):
        return dict(pg_query(db, "SELECT id, sha256 FROM callbacks"))
    return dict(query(db, "SELECT id, sha256 FROM callbacks"))


def by_sha(table: pd.DataFrame, ids: dict[int, str]) -> pd.DataFrame:
    """``table`` with its id columns replaced by the SHA-256 of the rows they point to."""
    out = table.copy()
    for column in ("id", "callback_id"):
        if column in out:
            values = out[column].astype(object)
            assert values.dropna().isin(list(ids)).all(), f"{column} names a missing row"
            out[column] = pd.array(
                [None if pd.isna(v) else ids[int(v)] for v in values], dtype=object
            )
    return out


def test_every_table_is_the_same_from_both_stores(stores):
    path, url = stores
    lite, pg = ta.load(path), ta.load(url)
    lite_ids, pg_ids = shas(path), shas(url)
    assert sorted(lite_ids.values()) == sorted(pg_ids.values())
    # The skipped duplicates left gaps in PostgreSQL's ids: the raw ids cannot be compared.
    assert max(pg_ids) > len(pg_ids) and max(lite_ids) == len(lite_ids)
    for name, columns in TABLES.items():
        a, b = getattr(lite, name), getattr(pg, name)
        assert list(b.columns) == list(columns), name
        assert len(a) > 0, name  # every table has rows to compare
        for column in ("id", "callback_id"):
            if column in a:
                assert a[column].dtype == b[column].dtype, (name, column)
        pd.testing.assert_frame_equal(by_sha(a, lite_ids), by_sha(b, pg_ids), obj=name)
    # The mess is there, and reported the same way.
    problems = set(pg.problems["problem"])
    for expected in (
        "no shutdown_reason",
        "shutdown_reason is not text",
        "properties is not an object",
        "timestamp is not a time",
        "transcript is not a list: skipped",
        "1 transcript messages are not objects: skipped",
        "2 shutdown callbacks: the earliest is used",
        "analysis is not text: skipped",
    ):
        assert any(p.startswith(expected) for p in problems), expected


def test_metrics_and_filters_are_the_same_from_both_stores(stores):
    path, url = stores
    lite, pg = ta.load(path), ta.load(url)
    pd.testing.assert_frame_equal(lite.shutdown_breakdown(), pg.shutdown_breakdown())
    pd.testing.assert_frame_equal(
        lite.shutdown_breakdown(by="category", split="replica_id"),
        pg.shutdown_breakdown(by="category", split="replica_id"),
    )
    pd.testing.assert_frame_equal(lite.turn_stats(), pg.turn_stats())
    pd.testing.assert_frame_equal(lite.durations(by="replica_id"), pg.durations(by="replica_id"))
    joined = lite.conversations["joined_at"].dropna().sort_values()
    since, until = joined.iloc[len(joined) // 4], joined.iloc[len(joined) // 2]
    replicas = sorted(lite.conversations["replica_id"].dropna().unique())[:2]
    lite_ids, pg_ids = shas(path), shas(url)
    for filters in ({"since": since, "until": until}, {"replicas": replicas}):
        a, b = lite.filter(**filters), pg.filter(**filters)
        assert 0 < len(a.conversations) < len(lite.conversations), filters
        for name in ("conversations", "turns", "events", "perception", "videos"):
            pd.testing.assert_frame_equal(
                by_sha(getattr(a, name), lite_ids), by_sha(getattr(b, name), pg_ids), obj=name
            )
        pd.testing.assert_frame_equal(a.turn_stats(), b.turn_stats())


def test_a_body_jsonb_cannot_hold_loads_and_is_reported(tmp_path, pg_url):
    # A NUL escape is valid JSON that jsonb refuses: body_json stays NULL, the text is kept.
    call = full_call("c1")
    call[1]["properties"]["shutdown_reason"] = "max_call_duration\u0000 reached"
    items = [(raw(b), f"2025-07-11T07:00:0{i}.000Z") for i, b in enumerate(call)]
    path = tmp_path / "tavus.db"
    with Store(path) as s:
        s.insert_batch(items)
    with PgStore(pg_url) as s:
        s.insert_batch(items)
    assert pg_query(pg_url, "SELECT count(*) FROM callbacks WHERE body_json IS NULL") == [(1,)]
    lite, pg = ta.load(path), ta.load(pg_url)
    a = lite.conversations.set_index("conversation_id").loc["c1"]
    b = pg.conversations.set_index("conversation_id").loc["c1"]
    # SQLite's JSON functions read the reason (its text ends at the NUL); PostgreSQL has no
    # jsonb to read it from.
    assert a["shutdown_reason"] == "max_call_duration" and a["outcome"] == "completed"
    assert pd.isna(b["shutdown_reason"]) and b["outcome"] == "unknown"
    assert b["status"] == "complete" and b["duration_s"] == a["duration_s"] == 125.5
    assert lite.problems.empty
    assert pg.problems[["conversation_id", "event_type", "problem"]].values.tolist() == [
        ["c1", ev.SHUTDOWN, "body is not JSON that the database's JSON functions can read: skipped"]
    ]
    # Everything parsed in Python reads the text itself: the same from both stores.
    for name in ("turns", "events", "other_events"):
        pd.testing.assert_frame_equal(
            getattr(lite, name).drop(columns="id", errors="ignore"),
            getattr(pg, name).drop(columns="id", errors="ignore"),
        )


def test_a_dataset_is_a_snapshot(pg_url):
    with PgStore(pg_url) as s:
        s.insert_batch([raw(b) for b in full_call("c1")])
        ds = ta.load(pg_url)
        s.insert_batch([raw(b) for b in full_call("c2")])
        s.insert_callback(raw(cb(ev.PERCEPTION_ANALYSIS, "c1", T, analysis="x")))
    assert "callbacks=3, conversations=1" in repr(ds)  # counted in SQL, before any table
    assert ds.conversations["conversation_id"].tolist() == ["c1"]
    assert not ds.conversations["has_perception"].any()
    assert len(ds.events) == 3 and len(ds.turns) == len(TRANSCRIPT)
    assert ta.load(pg_url).conversations["conversation_id"].tolist() == ["c1", "c2"]


_INSERT = (
    "INSERT INTO callbacks (received_at, kind, event_type, conversation_id, timestamp, body, "
    "body_json, sha256) VALUES ('2025-07-11T07:00:00.000Z', 'conversation', %s, %s, %s, %s, "
    "%s::jsonb, %s)"
)


def insert_args(body: dict, sha: str) -> tuple:
    text = json.dumps(body)
    return body["event_type"], body["conversation_id"], body["timestamp"], text, text, sha


def test_opening_waits_for_an_insert_that_commits_after_a_later_id(pg_url):
    # Transaction A draws id 1 and has not committed when B (id 2) commits: a snapshot taken
    # now sees max(id) = 2 without row 1, which would turn up in a later query. Opening waits
    # for A to end, so every table of the dataset sees the same rows.
    with PgStore(pg_url) as s:
        s.migrate()
    slow = psycopg.connect(pg_url)
    try:
        slow.execute(_INSERT, insert_args(full_call("c1")[0], "a"))
        with psycopg.connect(pg_url, autocommit=True) as fast:
            fast.execute(_INSERT, insert_args(full_call("c2")[0], "b"))
        result: list = []
        thread = threading.Thread(target=lambda: result.append(ta.load(pg_url)))
        thread.start()
        thread.join(timeout=0.5)
        # The loader is waiting for A: it has not returned while A is open.
        assert thread.is_alive() and not result
        slow.commit()
        thread.join(timeout=10)
    finally:
        slow.close()
    [ds] = result
    assert ds.events["conversation_id"].tolist() == ["c1", "c2"]
    assert ds.conversations["conversation_id"].tolist() == ["c1", "c2"]


def test_opening_does_not_wait_for_ever(pg_url, monkeypatch):
    monkeypatch.setattr(pgstore, "_PIN_WAIT_S", 0.05)
    with PgStore(pg_url) as s:
        s.migrate()
    slow = psycopg.connect(pg_url)
    try:
        slow.execute(_INSERT, insert_args(full_call("c1")[0], "a"))
        ds = ta.load(pg_url)  # returns while the other transaction is still open
        assert slow.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        assert ds.conversations.empty
    finally:
        slow.close()


def test_bodies_are_streamed_through_a_server_side_cursor(pg_url, monkeypatch):
    with PgStore(pg_url) as s:
        s.insert_batch(
            [
                raw(b)
                for i in range(25)
                for b in full_call(f"c{i:02d}", start=f"2025-07-{i + 1:02d}")
            ]
        )
    stream = pgstore.PgReader.stream
    chunks: list[int] = []
    seen: list[tuple] = []

    def spy(self, sql, params=(), size=READ_CHUNK):
        for rows in stream(self, sql, params, size=10):
            chunks.append(len(rows))
            # While the loader works on a chunk, its session is in a transaction with the rest
            # of the result on the server, fetched 10 rows at a time (the next chunk may be on
            # its way already). Only this database's sessions: other tests may load at the same
            # time from theirs.
            seen.append(
                pg_query(
                    pg_url,
                    "SELECT state, xact_start IS NOT NULL, query FROM pg_stat_activity "
                    "WHERE datname = current_database() "
                    "AND application_name = 'tavus-analytics load' AND query LIKE 'FETCH%%'",
                )
            )
            yield rows

    monkeypatch.setattr(pgstore.PgReader, "stream", spy)
    ds = ta.load(pg_url)
    assert ds.conversations["user_words"].tolist() == [4] * 25
    assert chunks == [10, 10, 5]
    assert len(ds.turns) == 25 * len(TRANSCRIPT)
    assert chunks == [10, 10, 5] * 2
    assert len(seen) == 6
    for [(state, in_transaction, sql)] in seen:
        assert state in ("idle in transaction", "active") and in_transaction
        assert sql.startswith('FETCH FORWARD 10 FROM "tavus_analytics_stream"')


def test_a_server_that_cannot_be_reached_is_one_line_without_the_password():
    url = f"postgresql://analyst:hunter2secret@127.0.0.1:{free_port()}/tavus"
    with pytest.raises(TavusAnalyticsError) as info:
        ta.load(url)
    message = str(info.value)
    assert message.startswith(f"cannot connect to database {display_url(url)}: ")
    assert "postgresql://analyst:***@127.0.0.1" in message
    assert "hunter2secret" not in message and "\n" not in message


def password_of(url: str) -> str:
    return psycopg.conninfo.conninfo_to_dict(url)["password"]


def test_a_wrong_password_is_one_line_without_the_password(pg_url):
    wrong = pg_url.replace(":" + password_of(pg_url) + "@", ":not-the-password-42@", 1)
    assert wrong != pg_url
    with pytest.raises(TavusAnalyticsError) as info:
        ta.load(wrong)
    message = str(info.value)
    assert message.startswith(f"cannot connect to database {display_url(wrong)}: ")
    assert "not-the-password-42" not in message and "\n" not in message


def test_a_database_without_callbacks_says_so(pg_url):
    with pytest.raises(TavusAnalyticsError, match="is not a tavus-analytics database") as info:
        ta.load(pg_url)
    assert password_of(pg_url) not in str(info.value)


def test_search_on_postgresql_finds_the_messages_and_hides_the_password(pg_url):
    with PgStore(pg_url) as s:
        s.insert_batch([raw(b) for b in full_call("c1")] + [raw(b) for b in full_call("c2", "r2")])
    ds = ta.load(pg_url)
    password = password_of(pg_url)
    assert sorted(ds.search("hello").conversation_id) == ["c1", "c2"]
    assert list(ds.filter(replicas="r1").search("hello").conversation_id) == ["c1"]
    assert password not in repr(ds) and password not in ds._repr_html_()
    assert ds.name == display_url(pg_url)
