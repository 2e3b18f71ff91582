"""Review labels and notes: stored in their own table with who and when, read back by the
loader, filtered and exported by, on SQLite and PostgreSQL, and never a change to ``callbacks``."""

from __future__ import annotations

import getpass
import hashlib
import json
import sqlite3

import pandas as pd
import pytest
import sqlite_utils
from conftest import pg_query, query, run

import tavus_analytics as ta
from tavus_analytics import events as ev
from tavus_analytics.errors import InvalidAnnotation
from tavus_analytics.store import open_store
from tavus_analytics.store.sqlite import MIGRATIONS
from tavus_analytics.tables import TABLES
from tests.test_load import cb, full_call


def calls() -> list[bytes]:
    """Three calls (c1, c2 on r1; c3 on r2, a day later), a guardrail trigger of c1, a replica
    training and a video."""
    bodies = [
        *full_call("c1", "r1", start="2025-07-01T10:00:00.000000Z"),
        *full_call("c2", "r1", start="2025-07-01T11:00:00.000000Z"),
        *full_call("c3", "r2", start="2025-07-02T10:00:00.000000Z"),
        {"conversation_id": "c1", "properties": {"guardrail": "g", "guardrail_uuid": "g1"}},
        {"replica_id": "r1", "status": "ready"},
        {"video_id": "v1", "replica_id": "r1", "status": "ready", "created_at": "2025-07-01"},
    ]
    return [json.dumps(b).encode() for b in bodies]


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path):
    """A database holding :func:`calls`: a SQLite file, or a PostgreSQL URL."""
    if request.param == "sqlite":
        target = tmp_path / "tavus.db"
    else:
        target = request.getfixturevalue("pg_url")
    with open_store(target) as store:
        store.insert_batch(calls())
    return target


def callbacks_of(db) -> tuple[int, str]:
    """How many callbacks, and one hash over every id, body and SHA-256."""
    sql = "SELECT id, body, sha256 FROM callbacks ORDER BY id"
    rows = pg_query(db, sql) if isinstance(db, str) else query(db, sql)
    digest = hashlib.sha256()
    for cb_id, body, sha in rows:
        assert hashlib.sha256(body.encode()).hexdigest() == sha
        digest.update(f"{cb_id}\0{body}\0{sha}\0".encode())
    return len(rows), digest.hexdigest()


def test_labels_and_notes_are_stored_with_who_and_when_and_callbacks_untouched(db, monkeypatch):
    monkeypatch.setattr(getpass, "getuser", lambda: "reviewer-1")
    before = callbacks_of(db)
    ds = ta.load(db)
    assert ds.annotations.empty
    first = ds.annotate("c1", label="escalated", note="asked twice for a manager")
    second = ds.annotate("c1", label="  refund\n request ", author="Ana Lima")
    third = ds.annotate("c2", note="  great call  ")
    assert (first, second, third) == (1, 2, 3)
    a = ds.annotations  # read again after annotate
    assert list(a.columns) == list(TABLES["annotations"])
    assert a["annotation_id"].tolist() == [1, 2, 3]
    assert a["conversation_id"].tolist() == ["c1", "c1", "c2"]
    assert a["label"].tolist()[:2] == ["escalated", "refund request"] and pd.isna(a["label"][2])
    assert a["note"][0] == "asked twice for a manager" and pd.isna(a["note"][1])
    assert a["note"][2] == "great call"
    assert a["author"].tolist() == ["reviewer-1", "Ana Lima", "reviewer-1"]
    now = pd.Timestamp.now(tz="UTC")
    assert ((now - a["created_at"]) < pd.Timedelta(minutes=5)).all()
    assert str(a["created_at"].dtype) == "datetime64[ns, UTC]"
    # Removing marks the row: it leaves the table, the database keeps who and when.
    assert ds.remove_annotation(2, author="lead") is True
    assert ds.remove_annotation(2) is False
    assert ds.annotations["annotation_id"].tolist() == [1, 3]
    with open_store(db) as store:
        rows = store.read_annotations(include_removed=True)
        assert [r[0] for r in store.read_annotations()] == [1, 3]
        assert [r[0] for r in store.read_annotations(conversation_id="c2")] == [3]
    assert rows[1][7] == "lead" and rows[1][6] is not None and rows[0][6] is None
    assert callbacks_of(db) == before
    # A new dataset reads them too; the callbacks' tables are as they were.
    fresh = ta.load(db)
    assert fresh.annotations["annotation_id"].tolist() == [1, 3]
    assert list(fresh.conversations.columns) == list(TABLES["conversations"])


def test_what_cannot_be_stored_is_refused_in_words(db):
    ds = ta.load(db)
    cases = [
        ({"conversation_id": "c1"}, "give a label, a note or both (neither can be empty)"),
        ({"conversation_id": "c1", "label": "  ", "note": ""}, "give a label, a note or both"),
        ({"conversation_id": " "}, "give the id of the conversation to annotate"),
        (
            {"conversation_id": "c1", "label": "x" * 65},
            "a label is at most 64 characters, not 65: put longer text in the note",
        ),
        ({"conversation_id": "c1", "note": "x" * 10_001}, "a note is at most 10,000 characters"),
        ({"conversation_id": "c1", "label": "a", "author": " "}, "the author is a name of 1 to"),
    ]
    for kwargs, message in cases:
        with pytest.raises(InvalidAnnotation) as info:
            ds.annotate(kwargs.pop("conversation_id"), **kwargs)
        assert str(info.value).startswith(message), str(info.value)
    name = ta.display_url(db)
    with pytest.raises(InvalidAnnotation) as info:
        ds.annotate("c-missing", label="x")
    assert str(info.value) == (
        f"{name} holds no callback of conversation 'c-missing': check the id "
        "(ds.conversations lists them)"
    )
    with pytest.raises(InvalidAnnotation, match=r"has no annotation 41: tavus-analytics labels"):
        ds.remove_annotation(41)
    assert ds.annotations.empty


def test_filter_by_label_keeps_the_labeled_calls_and_what_belongs_to_them(db):
    ds = ta.load(db)
    ds.annotate("c1", label="escalated")
    ds.annotate("c1", label="refund")
    ds.annotate("c3", label="refund", note="wants money back")
    ds.annotate("c2", note="a note, no label")
    assert sorted(ds.filter(labels="refund").conversations["conversation_id"]) == ["c1", "c3"]
    assert sorted(ds.filter(labels=["escalated", "nope"]).conversations.conversation_id) == ["c1"]
    both = ds.filter(labels="refund").filter(labels="escalated")
    assert both.conversations["conversation_id"].tolist() == ["c1"]
    assert both.filters["labels"] == (frozenset({"refund"}), frozenset({"escalated"}))
    assert ds.filter(labels="nobody").conversations.empty
    # Other filters combine; turns, events and annotations follow their conversations.
    refunds = ds.filter(labels="refund", replicas="r2")
    assert refunds.conversations["conversation_id"].tolist() == ["c3"]
    assert set(refunds.turns["conversation_id"]) == {"c3"}
    assert set(refunds.annotations["conversation_id"]) == {"c3"}
    escalated = ta.load(db, labels="escalated")
    assert set(escalated.events["conversation_id"].dropna()) == {"c1"}
    assert len(escalated.guardrail_triggers) == 1  # c1's
    assert ds.filter(
        since="2025-07-02", labels="refund"
    ).conversations.conversation_id.tolist() == ["c3"]
    # Replica trainings and videos are not conversations: a label filter leaves them.
    assert len(escalated.replicas) == len(ds.replicas) == 1
    assert len(escalated.videos) == 1
    assert "labels=escalated" in repr(escalated)
    # The whole dataset is unchanged.
    assert len(ds.conversations) == 3 and ds.filters["labels"] is None


def test_conversations_with_labels(db):
    ds = ta.load(db)
    ds.annotate("c1", label="refund")
    ds.annotate("c1", label="escalated", note="manager")
    ds.annotate("c1", label="refund")  # a second reviewer, the same label
    ds.annotate("c2", note="fine")
    table = ds.conversations_with_labels().set_index("conversation_id")
    assert list(table.columns)[-3:] == ["labels", "notes", "annotated_at"]
    assert table.loc["c1", "labels"] == ["escalated", "refund"]
    assert table.loc["c2", "labels"] == [] and table.loc["c3", "labels"] == []
    assert table["notes"].to_dict() == {"c1": 1, "c2": 1, "c3": 0}
    assert pd.isna(table.loc["c3", "annotated_at"])
    assert table.loc["c1", "annotated_at"] == ds.annotations["created_at"][2]
    assert str(table["annotated_at"].dtype) == "datetime64[ns, UTC]"
    exploded = ds.conversations_with_labels().explode("labels").dropna(subset=["labels"])
    assert sorted(exploded["labels"]) == ["escalated", "refund"]
    # ds.conversations itself is as it was.
    assert list(ds.conversations.columns) == list(TABLES["conversations"])


def test_notes_are_redacted_with_the_rest(db):
    ds = ta.load(db)
    ds.annotate("c1", label="callback", note="call her on +44 20 7946 0958 or jane@example.com")
    red = ds.redacted()
    assert red.annotations["note"][0] == "call her on [PHONE] or [EMAIL]"
    assert red.annotations["label"][0] == "callback"
    assert ds.annotations["note"][0].startswith("call her on +44")


# -- older databases ----------------------------------------------------------------------------
def test_an_older_sqlite_database_is_read_and_gets_the_table_when_a_store_opens_it(db_path):
    conn = sqlite3.connect(db_path, isolation_level=None)
    db = sqlite_utils.Database(conn)
    for step in MIGRATIONS[:6]:
        step(db)
    conn.execute("PRAGMA user_version = 6")
    body = json.dumps(cb(ev.SHUTDOWN, "c1", "2025-07-01T10:00:00Z"))
    conn.execute(
        "INSERT INTO callbacks (received_at, kind, event_type, conversation_id, body, sha256) "
        "VALUES ('2025-07-01T10:00:00.000Z', 'conversation', ?, 'c1', ?, ?)",
        (ev.SHUTDOWN, body, hashlib.sha256(body.encode()).hexdigest()),
    )
    conn.close()
    before = hashlib.sha256(db_path.read_bytes()).hexdigest()
    ds = ta.load(db_path)
    assert ds.annotations.empty and list(ds.annotations.columns) == list(TABLES["annotations"])
    assert ds.filter(labels="x").conversations.empty
    assert hashlib.sha256(db_path.read_bytes()).hexdigest() == before  # the loader only reads
    assert ds.annotate("c1", label="old") == 1  # the store migrates, then writes
    assert query(db_path, "PRAGMA user_version") == [(len(MIGRATIONS),)]
    assert ds.annotations["label"].tolist() == ["old"]


def test_an_older_postgresql_database_gets_the_table(pg_url):
    import psycopg

    from tavus_analytics.store import postgres as pgstore

    with psycopg.connect(pg_url, autocommit=True) as conn, conn.transaction():
        cur = conn.cursor()
        cur.execute("CREATE TABLE schema_version (version integer NOT NULL)")
        for step in pgstore.MIGRATIONS[:5]:
            step(cur)
        cur.execute("INSERT INTO schema_version VALUES (5)")
    with open_store(pg_url) as store:
        store.insert_callback(json.dumps(cb(ev.SHUTDOWN, "c9", "2025-07-01T10:00:00Z")).encode())
        assert store.annotate("c9", label="late") == 1
    assert pg_query(pg_url, "SELECT version FROM schema_version") == [(len(pgstore.MIGRATIONS),)]
    assert ta.load(pg_url).annotations["label"].tolist() == ["late"]


# -- the command line ---------------------------------------------------------------------------
def test_annotate_labels_unannotate_and_export_by_label(db, tmp_path, monkeypatch):
    monkeypatch.setattr(getpass, "getuser", lambda: "reviewer-1")
    before = callbacks_of(db)
    name = ta.display_url(db)
    r = run("annotate", "c1", "--label", "escalated", "--note", "asked for a manager", "--db", db)
    assert r.exit_code == 0, r.output
    assert r.output == f"{name}: annotation 1 on c1 by reviewer-1: label 'escalated' and a note\n"
    r = run("annotate", "c3", "--label", "refund", "--author", "Ana", "--db", db)
    assert r.output == f"{name}: annotation 2 on c3 by Ana: label 'refund'\n"
    r = run("annotate", "c2", "--note", "fine", "--db", db)
    assert r.output == f"{name}: annotation 3 on c2 by reviewer-1: a note\n"
    r = run("annotate", "c1", "--db", db)
    assert (r.exit_code, r.output) == (
        1,
        "Error: give a label, a note or both (neither can be empty)\n",
    )
    r = run("annotate", "zz", "--label", "x", "--db", db)
    assert r.exit_code == 1 and r.output.startswith(f"Error: {name} holds no callback of ")

    listed = run("labels", "--db", db)
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[0].split() == ["id", "conversation", "label", "by", "at", "note"]
    assert lines[1].split()[:4] == ["1", "c1", "escalated", "reviewer-1"]
    assert lines[1].endswith("asked for a manager")
    assert lines[-1] == "3 annotations"
    shown = json.loads(run("labels", "--json", "--label", "refund", "--db", db).output)
    assert [(a["annotation_id"], a["conversation_id"], a["author"]) for a in shown] == [
        (2, "c3", "Ana")
    ]
    assert set(shown[0]) == {
        "annotation_id", "conversation_id", "label", "note", "author", "created_at",
        "removed_at", "removed_by",
    }  # fmt: skip

    out = tmp_path / "turns.csv"
    r = run("export", "--table", "turns", "--format", "csv", "--out", out, "--db", db,
            "--label", "escalated", "--label", "refund")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert set(pd.read_csv(out)["conversation_id"]) == {"c1", "c3"}
    out = tmp_path / "annotations.jsonl"
    r = run("export", "--table", "annotations", "--format", "jsonl", "--out", out, "--db", db)
    assert r.output == f"Wrote 3 rows of annotations to {out}\n"
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [a["label"] for a in rows] == ["escalated", "refund", None]
    assert rows[0]["created_at"].endswith("Z")

    r = run("unannotate", "2", "--db", db)
    assert r.output == f"{name}: annotation 2 removed\n"
    assert (
        run("unannotate", "2", "--db", db).output == f"{name}: annotation 2 was already removed\n"
    )
    r = run("unannotate", "99", "--db", db)
    assert r.exit_code == 1 and "has no annotation 99" in r.output
    assert run("labels", "--db", db).output.splitlines()[-1] == "2 annotations"
    everything = run("labels", "--all", "--db", db).output
    assert "(removed " in everything and "by reviewer-1)" in everything
    assert run("labels", "--conversation", "c3", "--db", db).output == "No annotation.\n"
    assert callbacks_of(db) == before


def test_labels_on_a_missing_database_say_how_to_make_one(tmp_path):
    missing = tmp_path / "none.db"
    for args in (["labels"], ["annotate", "c1", "--label", "x"], ["unannotate", "1"]):
        r = run(*args, "--db", missing)
        assert r.exit_code == 1 and r.output.startswith(f"Error: no database at {missing}")
    assert not missing.exists()
