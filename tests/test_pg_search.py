"""Full-text search on PostgreSQL: the same messages found as on SQLite, an index kept up to
date incrementally, never twice, whatever the bodies and however many searches run at once."""

from __future__ import annotations

import json
import threading

import psycopg
import pytest
from conftest import pg_query
from test_search import CALLS, callback, transcript

import tavus_analytics as ta
from tavus_analytics import demo
from tavus_analytics.errors import InvalidQuery
from tavus_analytics.store import Store
from tavus_analytics.store import postgres as pgstore
from tavus_analytics.store.postgres import MIGRATIONS, PgStore
from tavus_analytics.store.search import SEARCH_COLUMNS, search

# Ordinary words and phrases of the demo's transcripts and of CALLS: English word endings,
# accents, hyphens, apostrophes, numbers, words in the wrong order.
PHRASES = [
    "refund",
    "Refunds",
    "cancel my subscription?",
    "subscription my cancel",
    "CA MARCHE",
    "two weeks late",
    "late weeks two",
    "load balancer",
    "twenty-two",
    "twenty two",
    "two-factor reset",
    "web-prod-2",
    "proxima",
    "estaba cansado",
    "can't issue refunds",
    "thanks for calling",
    "the",
    "port",
    "salary",
    "connection pooler",
    "I would like a refund",
    "unicorn",
]


def found(frame) -> set[tuple[str, int, str]]:
    return set(zip(frame.conversation_id, frame.turn, frame.role, strict=True))


@pytest.fixture
def pg(pg_url):
    s = PgStore(pg_url)
    yield s
    s.close()


@pytest.fixture
def both(pg, tmp_path):
    """The same callbacks in a SQLite file and in PostgreSQL: (Store, PgStore)."""
    bodies = [*CALLS, *(body for body, _ in demo.generate(60, seed=3))]
    sqlite = Store(tmp_path / "tavus.db")
    assert sqlite.insert_batch(bodies) == pg.insert_batch(bodies)  # the demo sends duplicates
    yield sqlite, pg
    sqlite.close()


def test_both_stores_index_the_same_messages(both, pg_url):
    sqlite, pg = both
    assert pg.index_transcripts() == sqlite.index_transcripts() > 500
    on_sqlite = sqlite.connection().execute(
        "SELECT conversation_id, turn, role, content FROM transcript_fts"
    )
    on_pg = pg_query(pg_url, "SELECT conversation_id, turn, role, content FROM transcript_messages")
    assert sorted(on_pg) == sorted(on_sqlite)


def test_both_stores_find_the_same_messages(both):
    sqlite, pg = both
    matched = 0
    for phrase in PHRASES:
        on_sqlite = search(sqlite, phrase, limit=None)
        on_pg = search(pg, phrase, limit=None)
        assert found(on_pg) == found(on_sqlite), phrase
        assert list(on_pg.columns) == list(on_sqlite.columns) == SEARCH_COLUMNS
        assert dict(on_pg.dtypes) == dict(on_sqlite.dtypes)
        assert on_pg["score"].is_monotonic_increasing
        matched += len(on_pg) > 0
    assert matched >= len(PHRASES) - 3  # "subscription my cancel", "late weeks two", "unicorn"
    for kwargs in (
        {"role": "user"},
        {"role": "assistant"},
        {"conversation": "c1"},
        {"role": "assistant", "conversation": "c2"},
    ):
        on_sqlite = search(sqlite, "refund", limit=None, **kwargs)
        assert found(search(pg, "refund", limit=None, **kwargs)) == found(on_sqlite), kwargs
        assert len(on_sqlite) > 0
    everything = found(search(pg, "port", limit=None))
    assert len(everything) > 5
    first = search(pg, "port", limit=5)
    assert len(first) == len(search(sqlite, "port", limit=5)) == 5
    assert found(first) <= everything
    # Raw syntax, each engine's own: the same question gives the same answer.
    assert found(search(pg, "refund:* & !cancel", fts=True, limit=None)) == found(
        search(sqlite, "refund* NOT cancel", fts=True, limit=None)
    )


def test_snippets_mark_the_matching_words(pg):
    pg.insert_batch(CALLS)
    hits = search(pg, "refund", before="<b>", after="</b>").set_index(["conversation_id", "turn"])
    assert hits.loc[("c1", 1), "snippet"] == "Hi, I would like a <b>refund</b> for my order."
    assert "<b>Refunds</b>" in hits.loc[("c1", 2), "snippet"]
    long = "so " * 40 + "please refund me " + "now " * 40
    pg.insert_callback(transcript("c3", ("user", long)))
    [snippet] = search(pg, "refund", conversation="c3").snippet
    assert snippet.startswith("…") and snippet.endswith("…") and "[refund]" in snippet
    assert len(snippet.split()) <= 17


def test_new_transcripts_are_found_by_the_next_search(pg, pg_url):
    pg.insert_callback(CALLS[0])
    assert {c for c, _, _ in found(search(pg_url, "refund"))} == {"c1"}
    pg.insert_callback(CALLS[1])
    assert {c for c, _, _ in found(search(pg_url, "refund"))} == {"c1", "c2"}
    [(mark,)] = pg_query(pg_url, "SELECT last_callback_id FROM transcript_messages_state")
    assert mark == pg_query(pg_url, "SELECT max(id) FROM callbacks")[0][0]
    assert pg.index_transcripts() == 0
    # The same transcript delivered again (other bytes): indexed, and found once.
    again = json.loads(CALLS[0])
    again["webhook_url"] = "https://example.ngrok.app/other"
    pg.insert_callback(json.dumps(again).encode())
    assert pg.index_transcripts() == 3
    assert len(search(pg, "refund", conversation="c1")) == 2


def test_repeated_and_concurrent_indexing_never_indexes_twice(pg, pg_url):
    bodies = [body for body, _ in demo.generate(80, seed=5)]
    pg.insert_batch(bodies)
    expected = pg_query(
        pg_url,
        "SELECT count(*) FROM callbacks AS c, jsonb_array_elements(c.body_json "
        "#> '{properties,transcript}') AS m WHERE c.event_type = "
        "'application.transcription_ready' AND m ->> 'role' IN ('user', 'assistant') "
        "AND coalesce(m ->> 'content', '') <> ''",
    )[0][0]
    assert expected > 500
    counts, errors = [], []

    def index():
        try:
            with PgStore(pg_url) as s:
                counts.append(s.index_transcripts(chunk=7))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=index) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(counts) == expected
    assert pg.index_transcripts() == pg.index_transcripts(chunk=1) == 0
    assert pg_query(pg_url, "SELECT count(*), count(DISTINCT (callback_id, turn)) "
                    "FROM transcript_messages") == [(expected, expected)]  # fmt: skip


@pytest.fixture
def opened():
    """Connections the test opens, closed at the end whatever happens."""
    conns: list[psycopg.Connection] = []
    yield conns
    for conn in conns:
        conn.close()


def _open_insert(pg_url, cid: str, opened: list) -> psycopg.Connection:
    """A transaction that has inserted a transcript callback and not committed yet."""
    body = transcript(cid, ("user", "late refund")).decode()
    conn = psycopg.connect(pg_url)
    opened.append(conn)
    conn.execute(
        "INSERT INTO callbacks (received_at, kind, event_type, conversation_id, body, body_json, "
        "sha256) VALUES ('2025-07-11T00:00:00.000Z', 'conversation', "
        "'application.transcription_ready', %s, %s, %s::jsonb, %s)",
        (cid, body, body, cid),
    )
    return conn


def test_a_row_committed_late_with_a_smaller_id_is_not_skipped(pg, pg_url, monkeypatch, opened):
    pg.migrate()
    slow = _open_insert(pg_url, "early", opened)  # draws the smaller id, commits last
    pg.insert_callback(transcript("later", ("user", "late refund")))
    indexer = threading.Thread(target=pg.index_transcripts)
    indexer.start()
    indexer.join(0.3)
    assert indexer.is_alive()  # waiting for the insert in flight
    slow.commit()
    indexer.join()
    assert pg_query(pg_url, "SELECT conversation_id FROM transcript_messages ORDER BY 1") == [
        ("early",),
        ("later",),
    ]

    # A writer still running after the wait: what is visible is indexed, the mark stays, and
    # the row is indexed by a later search once it has committed.
    monkeypatch.setattr(pgstore, "_PIN_WAIT_S", 0.05)
    [(mark,)] = pg_query(pg_url, "SELECT last_callback_id FROM transcript_messages_state")
    slow = _open_insert(pg_url, "early2", opened)
    pg.insert_callback(transcript("later2", ("user", "late refund")))
    assert pg.index_transcripts() == 1
    assert pg_query(pg_url, "SELECT last_callback_id FROM transcript_messages_state") == [(mark,)]
    slow.commit()
    assert {c for c, _, _ in found(search(pg, "late refund"))} == {
        "early",
        "later",
        "early2",
        "later2",
    }
    assert pg.index_transcripts() == 0


def test_weird_bodies_do_not_break_indexing(pg, pg_url, tmp_path):
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
        # jsonb cannot hold \u0000: body_json is NULL, the text is kept, nothing is indexed.
        b'{"conversation_id": "w5", "event_type": "application.transcription_ready",'
        b' "properties": {"transcript": [{"role": "user", "content": "nul \\u0000 here"}]}}',
        b'{"conversation_id": "w6", "event_type": "application.transcription_ready",'
        b' "properties": {"transcript": [[{"role": "user", "content": "nested"}]]}}',
    ]
    assert pg.insert_batch(weird).stored == len(weird)
    assert pg_query(pg_url, "SELECT count(*) FROM callbacks WHERE body_json IS NULL") == [(1,)]
    assert pg.index_transcripts() == 1
    assert pg_query(pg_url, "SELECT conversation_id, turn, role FROM transcript_messages") == [
        ("w3", 8, "user")
    ]
    assert list(search(pg, "real message").content) == ["the only real message"]
    # The same bodies on SQLite: the same message found.
    with Store(tmp_path / "tavus.db") as sqlite:
        sqlite.insert_batch(weird)
        assert found(search(sqlite, "real message")) == {("w3", 8, "user")}


def test_the_migration_indexes_what_was_stored_before_it(pg_url):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        with conn.transaction(), conn.cursor() as cur:
            MIGRATIONS[0](cur)
            cur.execute("CREATE TABLE schema_version (version integer NOT NULL)")
            cur.execute("INSERT INTO schema_version VALUES (1)")
        for i, body in enumerate(CALLS):
            conn.execute(
                "INSERT INTO callbacks (received_at, kind, event_type, conversation_id, body, "
                "body_json, sha256) VALUES ('2025-07-11T00:00:00.000Z', 'conversation', "
                "'application.transcription_ready', %s, %s, %s::jsonb, %s)",
                (json.loads(body)["conversation_id"], body.decode(), body.decode(), str(i)),
            )
    with PgStore(pg_url) as pg:
        pg.migrate()
        assert pg_query(pg_url, "SELECT version FROM schema_version") == [(len(MIGRATIONS),)]
        # Indexed by the migration itself, before any search.
        assert pg_query(pg_url, "SELECT count(*) FROM transcript_messages") == [(5,)]
        assert pg_query(pg_url, "SELECT last_callback_id FROM transcript_messages_state") == [(2,)]
        assert pg.index_transcripts() == 0
        assert len(search(pg, "refund")) == 3


def test_invalid_queries_are_clear_errors(pg):
    pg.insert_batch(CALLS)
    with pytest.raises(InvalidQuery, match="not a valid full-text query .*drop --fts"):
        search(pg, "refund &", fts=True)
    with pytest.raises(InvalidQuery, match="not a valid full-text query"):
        search(pg, "NEAR(", fts=True)
    with pytest.raises(InvalidQuery, match="empty"):
        search(pg, "  ")
    with pytest.raises(InvalidQuery, match="role must be one of user, assistant"):
        search(pg, "refund", role="system")
    # A phrase is never syntax: quotes, operators and brackets are just punctuation.
    assert len(search(pg, 'refund & "for (my" order!')) == 1


def test_dataset_search_on_postgres_respects_its_filter(pg, pg_url):
    def call(cid, replica, words):
        joined = {"replica_id": replica}
        return [
            callback(cid, "system.replica_joined", "2025-07-11T06:00:00.000000Z", **joined),
            transcript(cid, ("user", words)).replace(b"r79e1c033f", replica.encode()),
        ]

    pg.insert_batch(call("a1", "rA", "a refund please") + call("b1", "rB", "refund now"))
    ds = ta.load(pg_url)
    assert sorted(ds.search("refund").conversation_id) == ["a1", "b1"]
    only_b = ds.filter(replicas=["rB"])
    assert list(only_b.search("refund").conversation_id) == ["b1"]
    assert list(only_b.search("refund", limit=1).turn) == [1]


def test_redacted_snippets_on_postgresql_show_no_personal_data(pg, tmp_path):
    """ts_headline cuts differently from FTS5: the redacted snippets still hide every number."""
    long = (
        "Well, to be honest I wanted to say that my card number is 4242 4242 4242 4242 and that "
        "you can also write to jane.planted@example.com or ring +44 20 7946 0958 when the "
        "refund has gone through, because I have been waiting for a very long time now."
    )
    bodies = [transcript("p1", ("user", long), ("assistant", "Call 415-555-2671 for refunds."))]
    pg.insert_batch(bodies)
    with Store(tmp_path / "t.db") as lite:
        lite.insert_batch(bodies)
    for db in (pg, tmp_path / "t.db"):
        for phrase in ("card number", "refund", "write", "ring"):
            got = search(db, phrase, redact=True)
            assert len(got) >= 1, (db, phrase)
            text = " ".join(got["snippet"]) + " ".join(got["content"])
            for secret in ("4242", "jane.planted", "7946", "555-2671"):
                assert secret not in text, (db, phrase, secret)
            assert any(p in text for p in ("[CARD]", "[EMAIL]", "[PHONE]")), (db, phrase)
        # A snippet stays a snippet: shorter than the whole message.
        snippet = search(db, "ring", redact=True)["snippet"][0]
        assert "[PHONE]" in snippet and len(snippet) < len(long) - 40, snippet
