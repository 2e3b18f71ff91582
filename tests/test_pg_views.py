"""The SQL views on PostgreSQL give what SQLite's give, row by row.

The same callbacks go into a SQLite file and a PostgreSQL database: seeded demo data with its
duplicate deliveries, the loader tests' messy bodies, and bodies aimed at the views (timestamps
of every shape, odd shutdown reasons, several shutdowns for one call, refused bodies). Ids
differ between the stores (PostgreSQL's identity leaves gaps for duplicates), so id columns are
replaced by the SHA-256 of the callback they name before rows are compared. Values taken from
the JSON compare as the documented types say: text on PostgreSQL where SQLite returns a number
(``3`` for ``'3'``, ``1`` for ``'true'``), JSON compared parsed, numbers with a tolerance.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal

import psycopg
import pytest

from tavus_analytics import demo
from tavus_analytics import events as ev
from tavus_analytics.store import Store
from tavus_analytics.store.postgres import PgStore
from tavus_analytics.store.views import VIEWS
from tests.conftest import pg_query, query
from tests.test_load import cb
from tests.test_pg_load import messy_bodies, raw
from tests.test_pg_roles import GUIDE, analyst_role

SEED = 5
CONVERSATIONS = 150

#: A body with a duplicate key: SQLite's JSON functions read the first, jsonb keeps the last.
DUPLICATE_KEY = (
    b'{"event_type": "system.shutdown", "conversation_id": "v-dup", "message_type": "system", '
    b'"timestamp": "2025-07-11T07:00:00Z", "properties": {"shutdown_reason": '
    b'"max_call_duration", "shutdown_reason": "participant_left_timeout"}}'
)
#: A body jsonb cannot hold (``\u0000``): its JSON columns are NULL on PostgreSQL.
NUL = (
    b'{"event_type": "application.transcription_ready", "conversation_id": "v-nul", '
    b'"message_type": "application", "timestamp": "2025-07-11T07:00:00Z", "properties": '
    b'{"shutdown_reason": "x", "transcript": [{"role": "user", "content": "a\\u0000b"}, '
    b'{"role": "assistant", "content": "fine"}]}}'
)


def call(cid: str, joined: str, shutdown: str, reason) -> list[dict]:
    return [
        cb(ev.REPLICA_JOINED, cid, joined, replica_id="r9"),
        cb(ev.SHUTDOWN, cid, shutdown, replica_id="r9", shutdown_reason=reason),
    ]


def view_bodies() -> list[bytes]:
    """Bodies aimed at the views: durations from timestamps of every shape, reasons."""
    j = "2025-07-11T06:00:00Z"
    bodies = [
        *call("v-min", "2025-07-11 06:48", "2025-07-11T07:00:00.0005Z", " Max_Call_Duration "),
        *call("v-us", "2025-07-11T06:48:37.564961Z", "2025-07-11T06:59:01.1234Z", "x reached"),
        *call("v-off", "2025-07-11T08:45:47+02:00", "2025-07-11T06:46:00-00:30", "MAX reached"),
        *call(
            "v-feb", "2025-02-28T00:00:00Z", "2025-02-30T00:00:00Z", "Daily_Room_Has_Been_Deleted"
        ),
        *call(
            "v-24", "2025-07-11T00:00:00", "2025-07-11T24:00:00", "end_conversation_endpoint_hit"
        ),
        *call("v-sec", j, "2025-07-11T06:48:60Z", "participant_absent_timeout_reached"),
        *call("v-mon", j, "2025-13-01T00:00:00Z", "Internal Error occurred at step 3"),
        *call("v-day", j, "2025-07-11Z", "internal_error_occurred_at_step"),
        *call("v-word", "today", "2025-07-11T07:00:00Z", "internal error occurred at stepx"),
        *call("v-num", j, "1752217200.5", "bot_could_not_join_meeting_it_was_probably_ended"),
        *call("v-obj", j, "2025-07-11T06:00:01Z", {"code": "max_call_duration"}),
        *call("v-bool", j, "2025-07-11T06:00:01Z", True),
        *call("v-list", j, "2025-07-11T06:00:01Z", ["participant_left_timeout"]),
        *call("v-empty", j, "2025-07-11T06:00:01Z", ""),
        *call("v-tab", j, "2025-07-11T06:00:01Z", "\tmax_call_duration"),
        *call(
            "v-case", j, "2025-07-11T06:00:01Z", "EXCEPTION_ENCOUNTERED_DURING_CONVERSATION_STARTUP"
        ),
        # several shutdowns: the earliest counts, whatever its reason holds
        *call("v-mix", j, "2025-07-11T06:00:02Z", 42),
        cb(
            ev.SHUTDOWN, "v-mix", "2025-07-11T06:00:01Z", shutdown_reason="participant_left_timeout"
        ),
        *call("v-nums", j, "2025-07-11T06:00:02Z", 3),
        cb(ev.SHUTDOWN, "v-nums", "2025-07-11T06:00:03Z", shutdown_reason=10),
        cb(ev.SHUTDOWN, "v-nums", "2025-07-11T06:00:04Z", shutdown_reason=False),
        # numbers where text is expected, text where numbers are
        cb(ev.RECORDING_READY, "v-rec", j, bucket_name=7, s3_key=17.5, duration=12.25),
        cb(ev.POST_CALL_ACTION, "v-pca", j, tool_id=1.5, request="text", response=[1, {"a": 2}]),
        cb(
            ev.TRANSCRIPTION_READY,
            "v-turns",
            j,
            transcript=[
                [1, 2],
                None,
                {"role": "user", "content": "x", "seconds_from_start": 1e3, "duration": -0.5},
                {"role": "assistant", "content": {"k": "v"}, "timestamp": 17.0, "duration": 2},
            ],
        ),
    ]
    return [raw(b) for b in bodies] + [DUPLICATE_KEY, NUL]


REFUSED = [b"[1, 2]", b"not json", b'"a string"']


@pytest.fixture
def stores(tmp_path, pg_url):
    """(SQLite path, PostgreSQL URL), the same callbacks and refused bodies in each."""
    path = tmp_path / "tavus.db"
    results = [demo.write(db, conversations=CONVERSATIONS, seed=SEED) for db in (path, pg_url)]
    assert results[0] == results[1] and results[0].duplicate > 0
    bodies = messy_bodies()
    bodies += [
        (b, f"2025-07-12T08:{i // 60:02d}:{i % 60:02d}.000Z")
        for i, b in enumerate(view_bodies() + REFUSED)
    ]
    with Store(path) as s:
        sqlite_batch = s.insert_batch(bodies, remote_addr="10.0.0.1", user_agent="ua")
    with PgStore(pg_url) as s:
        pg_batch = s.insert_batch(bodies, remote_addr="10.0.0.1", user_agent="ua")
    assert sqlite_batch == pg_batch and sqlite_batch.rejected == len(REFUSED)
    return path, pg_url


def rows(db, view: str) -> tuple[list[str], list[dict]]:
    """The column names of ``view`` and its rows as dicts."""
    if isinstance(db, str):
        with psycopg.connect(db) as conn:
            cur = conn.execute(f"SELECT * FROM {view}")
            names = [d.name for d in cur.description]
            got = cur.fetchall()
    else:
        import sqlite3

        conn = sqlite3.connect(db)
        try:
            cur = conn.execute(f"SELECT * FROM {view}")
            names = [d[0] for d in cur.description]
            got = cur.fetchall()
        finally:
            conn.close()
    return names, [dict(zip(names, r, strict=True)) for r in got]


#: Columns holding a value taken from the JSON: text on PostgreSQL (``#>>``).
JSON_TEXT = {
    "shutdown_reason", "role", "content", "message_timestamp", "analysis", "unavailable_reason",
    "storage_provider", "storage_uri", "bucket_name", "s3_key", "error_message", "tool_id",
    "tool_name", "request", "response", "video_name", "status_details", "generation_progress",
    "created_at", "updated_at", "download_url", "hosted_url", "stream_url", "error_details",
    "script",
}  # fmt: skip
#: Numbers taken from the JSON (``numeric``): the object holding them in the body, their key.
JSON_NUMBERS = {
    ("turns_view", "seconds_from_start"): (
        lambda b, r: b["properties"]["transcript"][r["turn"]],
        "seconds_from_start",
    ),
    ("turns_view", "duration"): (lambda b, r: b["properties"]["transcript"][r["turn"]], "duration"),
    ("recordings_view", "duration_s"): (lambda b, r: b["properties"], "duration"),
}
KEYS = {"turns_view": ("callback_id", "turn"), "conversations_view": ("conversation_id",)}


def same_text(s, p) -> bool:
    """A ``json_extract`` value from SQLite against PostgreSQL's ``#>>`` text."""
    if s is None or p is None:
        return s is None and p is None
    if isinstance(s, str):
        if s == p:
            return True
        return s[:1] in "{[" and p[:1] in "{[" and json.loads(s) == json.loads(p)
    assert isinstance(p, str), p
    if p in ("true", "false"):
        return s == (p == "true")
    return isinstance(s, int | float) and math.isclose(float(p), s, rel_tol=1e-12)


def same_json(s, p) -> bool:
    """SQLite's ``json_extract`` of ``properties`` against PostgreSQL's ``jsonb``."""
    if isinstance(p, dict | list):
        return json.loads(s) == p
    return s == p


def compare(view: str, sqlite_rows, pg_rows, ids: dict, bodies: dict, skip: set[str]) -> int:
    """Assert the rows are the same; return how many were compared."""

    def key(r):
        return tuple(str(r[k]) for k in KEYS.get(view, ("id",) if "id" in r else ("callback_id",)))

    def mapped(table_rows, id_map):
        out = []
        for r in table_rows:
            r = dict(r)
            for c in ("id", "callback_id"):
                if c in r and view != "rejected_view":
                    r[c] = id_map[r[c]]
            if (
                r.get("callback_id", r.get("id")) not in skip
                and r.get("conversation_id") not in skip
            ):
                out.append(r)
        return sorted(out, key=key)

    s_rows, p_rows = mapped(sqlite_rows, ids["sqlite"]), mapped(pg_rows, ids["pg"])
    assert [key(r) for r in s_rows] == [key(r) for r in p_rows], view
    for s, p in zip(s_rows, p_rows, strict=True):
        for column, sv in s.items():
            pv = p[column]
            where = f"{view}.{column} of {key(s)}: SQLite {sv!r}, PostgreSQL {pv!r}"
            if (view, column) in JSON_NUMBERS:
                holder, name = JSON_NUMBERS[view, column]
                found = holder(bodies[s["callback_id"]], s)
                value = found.get(name) if isinstance(found, dict) else None
                if isinstance(value, int | float) and not isinstance(value, bool):
                    assert isinstance(pv, Decimal) and math.isclose(pv, sv, rel_tol=1e-12), where
                else:  # SQLite gives whatever the JSON holds; PostgreSQL numbers only
                    assert pv is None, where
            elif column == "duration_s":
                assert (sv is None and pv is None) or math.isclose(sv, pv, abs_tol=1e-9), where
            elif column == "properties":
                assert same_json(sv, pv), where
            elif column in JSON_TEXT or (view, column) == ("post_call_actions_view", "status"):
                assert same_text(sv, pv), where
            else:
                assert sv == pv and type(sv) is type(pv), where
    return len(s_rows)


def test_every_view_is_the_same_row_by_row(stores):
    path, url = stores
    ids = {
        "sqlite": dict(query(path, "SELECT id, sha256 FROM callbacks")),
        "pg": dict(pg_query(url, "SELECT id, sha256 FROM callbacks")),
    }
    bodies = {
        sha: json.loads(body) for sha, body in query(path, "SELECT sha256, body FROM callbacks")
    }
    import hashlib

    different = {hashlib.sha256(b).hexdigest() for b in (DUPLICATE_KEY, NUL)} | {
        "v-dup",
        "v-nul",
        "m-ü",
    }
    # m-ü's body holds a \u0000 escape too (the loader tests' messy bodies)
    different |= {sha for sha, b in bodies.items() if b.get("conversation_id") == "m-ü"}
    compared = {}
    for view in VIEWS:
        s_names, s_rows = rows(path, view)
        p_names, p_rows = rows(url, view)
        assert p_names == s_names, view
        compared[view] = compare(view, s_rows, p_rows, ids, bodies, different)
        assert compared[view] > 0, view
    # JSON null reads as SQL NULL, as on SQLite (psycopg would load jsonb 'null' as None too)
    nulls = "SELECT count(*) FROM events_view WHERE properties IS NULL"
    assert pg_query(url, nulls) == [(query(path, nulls)[0][0] + 2,)]  # v-nul and m-ü: NULL
    # what the comparison covered
    _, conversations = rows(url, "conversations_view")
    by_id = {r["conversation_id"]: r for r in conversations}
    assert {r["shutdown_category"] for r in conversations} >= {
        "max_duration", "participant_left", "participant_absent", "bot_could_not_join",
        "room_deleted", "startup_exception", "ended_by_api", "internal_error", "other", None,
    }  # fmt: skip
    assert by_id["v-min"]["duration_s"] == 720.001  # seconds rounded to ms, as julianday
    assert by_id["v-feb"]["duration_s"] == 2 * 86400  # a day past the month's end rolls over
    assert by_id["v-sec"]["duration_s"] is None and by_id["v-word"]["duration_s"] is None
    assert (by_id["v-mix"]["shutdown_reason"], by_id["v-mix"]["shutdown_category"]) == (
        "participant_left_timeout",
        "participant_left",
    )
    # the earliest shutdown's reason is a number: no reason, an unknown outcome (the rule book)
    assert (by_id["v-nums"]["shutdown_reason"], by_id["v-nums"]["outcome"]) == (None, "unknown")
    assert compared["rejected_view"] == len(REFUSED)


def test_the_differences_the_guide_lists(stores):
    """A duplicate key and a body jsonb cannot hold: asserted here as docs/deployment.md says."""
    path, url = stores
    sql = "SELECT shutdown_reason, shutdown_category FROM conversations_view WHERE "
    assert query(path, sql + "conversation_id = 'v-dup'") == [
        ("max_call_duration", "max_duration")  # SQLite: the first of the two keys
    ]
    assert pg_query(url, sql + "conversation_id = 'v-dup'") == [
        ("participant_left_timeout", "participant_left")  # jsonb: the last
    ]
    turns = "SELECT turn, role, content FROM turns_view WHERE conversation_id = 'v-nul'"
    sqlite_turns = query(path, turns)  # SQLite 3.40's json_extract stops at the NUL
    assert sqlite_turns[1:] == [(1, "assistant", "fine")] and sqlite_turns[0][2] in ("a", "a\x00b")
    assert pg_query(url, turns) == []
    counts = "SELECT user_turns, assistant_turns, has_transcript FROM conversations_view "
    counts += "WHERE conversation_id = 'v-nul'"
    assert query(path, counts) == [(1, 1, 1)]
    assert pg_query(url, counts) == [(None, None, 0)]  # jsonb cannot read it: no transcript
    event = "SELECT shutdown_reason, properties IS NULL FROM events_view WHERE conversation_id = "
    assert query(path, event + "'v-nul'") == [("x", 0)]
    assert pg_query(url, event + "'v-nul'") == [(None, True)]


def test_the_views_have_sqlites_columns_on_an_empty_database(tmp_path, pg_url):
    path = tmp_path / "empty.db"
    with Store(path) as s:
        assert s.count_callbacks() == 0
    with PgStore(pg_url) as s:
        s.migrate()
    for view in VIEWS:
        assert rows(pg_url, view) == rows(path, view) == (rows(path, view)[0], []), view
    assert set(VIEWS) == {
        name for (name,) in query(path, "SELECT name FROM sqlite_master WHERE type = 'view'")
    }


# What SQLite's julianday reads (ISO 8601) and what it does not; each gives NULL on PostgreSQL
# where SQLite gives NULL.
TIMES = [
    "2025-07-11T06:48:37.564961Z", "2025-07-11 06:48", "2025-07-11T06:48:37", "2025-07-11",
    "2025-07-11T06:48:37.0005Z", "2025-07-11T06:48:37.0004z", "2025-07-11T06:48:37.123456789Z",
    "2025-07-11T06:48:37+02:00", "2025-07-11T06:48:37 -05:30", "2025-07-11T24:00:00",
    "2025-02-30T00:00:00Z", "2024-12-31T23:59:59.9999Z", "1970-01-01T00:00:00Z",
    "2025-07-11T06:48:60Z", "2025-13-01T00:00:00Z", "2025-07-11Z", "2025-7-11",
    "2025-07-11T06:48:37.5+0200", "2025-07-11T06:48:37.Z", "not a time", "", "today",
    "2025-07-11T06:48:37.5Zjunk",
]  # fmt: skip
#: Read by SQLite's julianday, not as ISO 8601: NULL on PostgreSQL (see docs/deployment.md).
SQLITE_ONLY = ["now", "2460500.5", "12:00"]


def test_timestamps_are_read_as_sqlites_julianday_reads_them(pg_url):
    import sqlite3

    with PgStore(pg_url) as s:
        s.migrate()
    conn = sqlite3.connect(":memory:")
    epoch_ms = "CAST(round((julianday(?) - 2440587.5) * 86400000.0) AS INTEGER)"
    with psycopg.connect(pg_url) as pg:
        for t in TIMES + SQLITE_ONLY:
            expected = conn.execute(f"SELECT {epoch_ms}", (t,)).fetchone()[0]
            got = pg.execute("SELECT tavus_time_ms(%s)", (t,)).fetchone()[0]
            if t in SQLITE_ONLY:
                assert expected is not None and got is None, t
            else:
                assert got == expected, t
        assert (
            sum(pg.execute("SELECT tavus_time_ms(%s)", (t,)).fetchone()[0] is None for t in TIMES)
            >= 8
        )
    conn.close()


def test_an_analyst_with_the_guides_grants_reads_every_view(pg_url):
    demo.write(pg_url, conversations=10, seed=3)
    with analyst_role(pg_url) as analyst:
        for view in VIEWS:
            assert rows(analyst, view)[1] == rows(pg_url, view)[1], view
        assert pg_query(analyst, "SELECT count(*) FROM conversations_view") == [(10,)]


def test_the_guides_example_on_conversations_view_runs(pg_url):
    demo.write(pg_url, conversations=40, seed=4)
    blocks = re.findall(r"```sql\n(.*?)```", GUIDE.read_text(), re.S)
    (example,) = [b for b in blocks if "FROM conversations_view" in b]
    got = pg_query(pg_url, example)
    assert sum(calls for _, _, calls, _ in got) == 40
    assert {outcome for outcome, *_ in got} <= {"completed", "no_show", "failed", "unknown", None}
    assert any(avg is not None and avg > 0 for *_, avg in got)
