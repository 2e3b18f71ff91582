"""`tavus-analytics backfill` against a local HTTP server that answers like Tavus's API."""

from __future__ import annotations

import json
import socket

import pytest
from conftest import SHUTDOWN_EXAMPLE, query, run, serving
from fake_tavus import API_KEY, FakeTavus, conversation, interaction

from tavus_analytics import Store
from tavus_analytics.importer import TavusApiError, TavusClient, backfill

NOT_RECOVERABLE = (
    "Not recoverable by backfill: objective completions and guardrail triggers are sent once and "
    "cannot be fetched from Tavus later: whatever the collector misses while it is stopped or "
    "unreachable is lost.\n"
)


@pytest.fixture
def api():
    convs = [
        conversation(f"c{i:03d}", f"2025-07-{1 + i % 9:02d} 09:00:00.000000") for i in range(7)
    ]
    with serving(FakeTavus(convs)) as server:
        yield server


def flags(api, db_path, *more):
    return ["backfill", "--base-url", api.base_url, "--db", db_path, "--rate", "0", *more]


def test_backfill_pages_through_and_stores_every_event(api, db_path):
    r = run(*flags(api, db_path, "--page-size", "3"), env={"TAVUS_API_KEY": API_KEY})
    assert r.exit_code == 0, r.output
    assert r.output == (
        f"{db_path}: 7 conversations listed, 7, 7 fetched: 21 events, 21 stored, 0 duplicates, "
        "0 rejected; 0 canvas interactions, 0 stored, 0 already stored (7 conversations without "
        "canvas history)\n" + NOT_RECOVERABLE
    )
    listing = [q for path, q, _ in api.seen if path == "/v2/conversations"]
    assert listing == [{"limit": "3", "page": str(p)} for p in (1, 2, 3)]
    details = [(p, q) for p, q, _ in api.seen if p != "/v2/conversations"]
    assert details == [
        request
        for i in range(7)
        for request in (
            (f"/v2/conversations/c{i:03d}", {"verbose": "true"}),
            (f"/v2/conversations/c{i:03d}/canvas/interactions", {}),
        )
    ]
    assert {key for _, _, key in api.seen} == {API_KEY}
    rows = query(
        db_path,
        "SELECT conversation_id, event_type, count(*), min(user_agent) FROM callbacks "
        "GROUP BY 1, 2 ORDER BY 1, 2",
    )
    assert len(rows) == 21
    assert rows[0] == ("c000", "application.transcription_ready", 1, "tavus-analytics backfill")
    # Running it again adds nothing.
    again = run(*flags(api, db_path), env={"TAVUS_API_KEY": API_KEY})
    assert "21 events, 0 stored, 21 duplicates" in again.output
    assert query(db_path, "SELECT count(*) FROM callbacks") == [(21,)]


def test_since_keeps_conversations_created_from_that_date(api, db_path):
    r = run(*flags(api, db_path, "--api-key", API_KEY, "--since", "2025-07-05"))
    assert r.exit_code == 0, r.output
    assert "7 conversations listed, 3 created since 2025-07-05 00:00:00 UTC, 3 fetched" in r.output
    fetched = sorted(p.split("/")[3] for p, q, _ in api.seen if q == {"verbose": "true"})
    assert fetched == ["c004", "c005", "c006"]
    assert query(db_path, "SELECT DISTINCT conversation_id FROM callbacks ORDER BY 1") == [
        ("c004",),
        ("c005",),
        ("c006",),
    ]


def test_events_the_collector_already_has_are_not_duplicated(api, db_path):
    # What the collector received live for c002: same event, other bytes (webhook_url, order).
    live = {
        **SHUTDOWN_EXAMPLE,
        "conversation_id": "c002",
        "timestamp": "2025-07-03T10:05:00.000000Z",
    }
    with Store(db_path) as store:
        store.insert_callback(json.dumps(live).encode())
    r = run(*flags(api, db_path, "--api-key", API_KEY, "--since", "2025-07-03"))
    assert r.exit_code == 0, r.output
    assert "5 fetched: 15 events, 14 stored, 1 duplicate, 0 rejected" in r.output
    rows = query(
        db_path,
        "SELECT count(*) FROM callbacks WHERE conversation_id = 'c002' AND "
        "event_type = 'system.shutdown'",
    )
    assert rows == [(1,)]


def test_429_and_500_are_retried_with_retry_after_and_backoff(api, db_path):
    api.faults["/v2/conversations"] = [(429, {"Retry-After": "0"}, {"message": "slow down"})]
    api.faults["/v2/conversations/c001"] = [(500, {}, {"message": "oops"}), (502, {}, "")]
    r = run(*flags(api, db_path, "--api-key", API_KEY, "--backoff", "0.01"))
    assert r.exit_code == 0, r.output
    assert "7 fetched: 21 events, 21 stored" in r.output
    paths = [p for p, _, _ in api.seen]
    assert paths.count("/v2/conversations") == 2
    assert paths.count("/v2/conversations/c001") == 3


def test_waits_obey_retry_after_else_double(api):
    api.faults["/v2/conversations"] = [
        (429, {"Retry-After": "7"}, {}),
        (503, {}, {}),
        (500, {}, {}),
    ]
    waits = []
    client = TavusClient(
        API_KEY, base_url=api.base_url, rate=0, backoff=0.5, sleep=waits.append, page_size=10
    )
    with client:
        assert len(list(client.list_conversations())) == 7
    assert waits == [7.0, 1.0, 2.0]  # Retry-After, then 0.5 * 2**1 and 0.5 * 2**2
    assert API_KEY not in repr(client)


def test_rate_limit_spaces_requests(api):
    waits = []
    with TavusClient(API_KEY, base_url=api.base_url, rate=0.5, sleep=waits.append) as client:
        client.get("/v2/conversations")
        client.get("/v2/conversations")
        client.get("/v2/conversations")
    assert len(waits) == 2 and all(0 < w <= 2.0 for w in waits)


def test_persistent_5xx_gives_up_with_a_clear_error(api, db_path):
    api.faults["/v2/conversations"] = [(503, {}, {"message": "maintenance"})] * 3
    r = run(*flags(api, db_path, "--api-key", API_KEY, "--backoff", "0", "--max-retries", "2"))
    assert r.exit_code == 1
    assert r.output == (
        "Error: Tavus API answered 503 to GET /v2/conversations 3 times (maintenance): "
        "try again later\n"
    )


def test_wrong_key_is_401_and_never_shown(api, db_path):
    wrong = "tvs-WRONG-key-0000"
    r = run(*flags(api, db_path, "--api-key", wrong))
    assert r.exit_code == 1
    assert r.output == (
        "Error: Tavus API refused the API key (401 Invalid access token): check --api-key or "
        "TAVUS_API_KEY\n"
    )
    assert wrong not in r.output
    assert not db_path.exists()  # refused before anything was written


def test_missing_key(api, db_path):
    r = run(*flags(api, db_path), env={"TAVUS_API_KEY": ""})
    assert r.exit_code == 1
    assert r.output == "Error: no Tavus API key: pass --api-key KEY or set TAVUS_API_KEY\n"
    assert api.seen == []


def test_400_on_one_conversation_is_reported_and_the_rest_stored(api, db_path):
    api.conversations.append(conversation("bad id", "2025-07-09 09:00:00"))
    api.faults["/v2/conversations/c003"] = [(404, {}, {"message": "Not found"})]
    r = run(*flags(api, db_path, "--api-key", API_KEY))
    assert r.exit_code == 1
    lines = r.output.splitlines()
    assert lines[0].endswith(
        "8 conversations listed, 8, 6 fetched: 18 events, 18 stored, 0 duplicates, 0 rejected; "
        "0 canvas interactions, 0 stored, 0 already stored (6 conversations without canvas "
        "history)"
    )
    assert lines[1] + "\n" == NOT_RECOVERABLE
    assert lines[2] == (
        "Error: 2 conversations could not be fetched: c003: Tavus API answered 404 to GET "
        "/v2/conversations/c003: Not found; bad id: Tavus API answered 400 to GET "
        "/v2/conversations/bad%20id: Invalid conversation_id"
    )
    assert query(db_path, "SELECT count(DISTINCT conversation_id) FROM callbacks") == [(6,)]


def test_400_on_the_listing_is_an_error(api, db_path):
    api.faults["/v2/conversations"] = [(400, {}, {"error": "Invalid limit"})]
    r = run(*flags(api, db_path, "--api-key", API_KEY))
    assert r.exit_code == 1
    assert r.output == "Error: Tavus API answered 400 to GET /v2/conversations: Invalid limit\n"


def test_unreachable_api(db_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    args = ["backfill", "--base-url", base, "--db", db_path, "--api-key", API_KEY]
    r = run(*args, "--backoff", "0", "--max-retries", "1")
    assert r.exit_code == 1
    assert r.output == f"Error: cannot reach the Tavus API at {base}: connection refused\n"


def test_the_key_is_stored_nowhere(api, db_path, tmp_path, caplog):
    caplog.set_level("DEBUG")
    r = run(*flags(api, db_path, "--api-key", API_KEY))
    assert r.exit_code == 0, r.output
    assert API_KEY not in r.output
    assert API_KEY not in caplog.text
    for f in tmp_path.iterdir():
        if f.is_file():
            assert API_KEY.encode() not in f.read_bytes(), f.name


def test_library_backfill_result(api, store):
    with TavusClient(API_KEY, base_url=api.base_url, rate=0) as client:
        result = backfill(store, client, since="2025-07-07T00:00:00Z")
    assert (result.listed, result.selected, result.fetched, result.stored) == (7, 1, 1, 3)
    with (
        TavusClient("nope", base_url=api.base_url, rate=0) as client,
        pytest.raises(TavusApiError) as e,
    ):
        backfill(store, client)
    assert e.value.status == 401


# -- canvas interactions ---------------------------------------------------------------------------
def envelope(cid: str | None, n: int, timestamp: str = "2026-06-09T21:14:03.498Z") -> dict:
    """A whole canvas.interaction callback, as the history may answer it."""
    body = {
        "message_type": "canvas",
        "event_type": "canvas.interaction",
        "conversation_id": cid,
        "timestamp": timestamp,
        "properties": interaction(cid or "c001", n),
    }
    return {k: v for k, v in body.items() if v is not None}


@pytest.fixture
def canvas_api():
    convs = [conversation(f"c{i:03d}", "2026-06-09 21:00:00.000000") for i in range(3)]
    history = {
        "c000": [
            interaction("c000", 1),
            interaction("c000", 2, "2026-06-09T21:15:00.000001"),
            interaction("c000", 1, "2026-06-09T21:16:00"),  # the same interaction again
        ],
        "c001": [envelope(None, 1), envelope("c001", 2)],
        # c002: no canvas history (404)
    }
    with serving(FakeTavus(convs, canvas=history)) as server:
        yield server


def canvas_rows(db_path):
    return query(
        db_path,
        "SELECT conversation_id, json_extract(body, '$.properties.interaction_id'), body, "
        "user_agent FROM callbacks WHERE event_type = 'canvas.interaction' ORDER BY id",
    )


def test_canvas_interactions_are_stored_once_as_the_callback_tavus_sends(canvas_api, db_path):
    r = run(*flags(canvas_api, db_path, "--api-key", API_KEY))
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[0] == (
        f"{db_path}: 3 conversations listed, 3, 3 fetched: 9 events, 9 stored, 0 duplicates, "
        "0 rejected; 5 canvas interactions, 4 stored, 1 already stored (1 conversation without "
        "canvas history)"
    )
    rows = canvas_rows(db_path)
    assert [(cid, iid) for cid, iid, _, _ in rows] == [
        ("c000", "ci_call_c000_submit_1"),
        ("c000", "ci_call_c000_submit_2"),
        ("c001", "ci_call_c001_submit_1"),
        ("c001", "ci_call_c001_submit_2"),
    ]
    assert {agent for *_, agent in rows} == {"tavus-analytics backfill"}
    # An interaction object becomes the callback, compact, timestamp from created_at (UTC).
    assert rows[0][2] == (
        '{"message_type":"canvas","event_type":"canvas.interaction","conversation_id":"c000",'
        '"timestamp":"2026-06-09T21:14:03.518923Z","properties":{"conversation_id":"c000",'
        '"interaction_id":"ci_call_c000_submit_1","tool_call_id":"call_c000",'
        '"component":"canvas.question","component_version":"v1","type":"submit","value":'
        '{"selected_option_ids":["opt_1"],"skipped":false},"metadata":{"client":"kiosk-web"},'
        '"created_at":"2026-06-09T21:14:03.518923"}}'
    )
    assert json.loads(rows[1][2])["timestamp"] == "2026-06-09T21:15:00.000001Z"
    # A whole callback lacking its conversation_id gets it; a complete one keeps its bytes.
    assert json.loads(rows[2][2]) == {**envelope(None, 1), "conversation_id": "c001"}
    assert rows[3][2] == json.dumps(envelope("c001", 2))
    assert set(query(db_path, "SELECT DISTINCT kind FROM callbacks")) == {
        ("conversation",),
        ("canvas",),  # a canvas interaction is a kind of its own
    }

    again = run(*flags(canvas_api, db_path, "--api-key", API_KEY))
    assert again.exit_code == 0, again.output
    assert "9 events, 0 stored, 9 duplicates, 0 rejected; 5 canvas interactions, 0 stored, " in (
        again.output
    )
    assert "5 already stored (1 conversation without canvas history)" in again.output
    assert canvas_rows(db_path) == rows


def test_a_canvas_interaction_received_live_is_not_stored_again(canvas_api, db_path):
    live = {  # what the collector received: other bytes, another timestamp
        "message_type": "canvas",
        "event_type": "canvas.interaction",
        "conversation_id": "c000",
        "timestamp": "2026-06-09T21:14:03.498Z",
        "properties": interaction("c000", 1),
    }
    with Store(db_path) as store:
        store.insert_callback(json.dumps(live, indent=1).encode(), user_agent="Tavus")
    r = run(*flags(canvas_api, db_path, "--api-key", API_KEY))
    assert r.exit_code == 0, r.output
    assert "5 canvas interactions, 3 stored, 2 already stored" in r.output
    rows = canvas_rows(db_path)
    assert [(iid, agent) for _, iid, _, agent in rows if iid.endswith("c000_submit_1")] == [
        ("ci_call_c000_submit_1", "Tavus")
    ]
    assert len(rows) == 4


def test_canvas_history_errors_other_than_404_are_reported_and_the_rest_stored(canvas_api, db_path):
    canvas_api.faults["/v2/conversations/c000/canvas/interactions"] = [(502, {}, "")]
    canvas_api.faults["/v2/conversations/c001/canvas/interactions"] = [
        (400, {}, {"error": "Invalid conversation_id"})
    ]
    canvas_api.canvas["c002"] = []
    canvas_api.faults["/v2/conversations/c002/canvas/interactions"] = [(200, {}, {"items": []})]
    r = run(*flags(canvas_api, db_path, "--api-key", API_KEY, "--backoff", "0"))
    assert r.exit_code == 1
    lines = r.output.splitlines()
    assert lines[0].endswith(
        "9 events, 9 stored, 0 duplicates, 0 rejected; 3 canvas interactions, 2 stored, "
        "1 already stored"
    )
    assert lines[2] == (
        "Error: 2 conversations could not be fetched: c001: Tavus API answered 400 to GET "
        "/v2/conversations/c001/canvas/interactions: Invalid conversation_id; c002: unexpected "
        "answer to GET /v2/conversations/{id}/canvas/interactions: no 'data' list"
    )
    assert [iid for _, iid, _, _ in canvas_rows(db_path)] == [
        "ci_call_c000_submit_1",
        "ci_call_c000_submit_2",
    ]


def test_library_backfill_counts_canvas_apart(canvas_api, store):
    with TavusClient(API_KEY, base_url=canvas_api.base_url, rate=0) as client:
        result = backfill(store, client)
    assert (result.records, result.stored, result.no_canvas) == (9, 9, 1)
    c = result.canvas
    assert (c.records, c.stored, c.duplicate, c.same_interaction, c.rejected) == (5, 4, 1, 1, 0)


def canvas_body(cid: str, interaction_id, event_type: str = "canvas.interaction") -> bytes:
    props = {} if interaction_id is ... else {"interaction_id": interaction_id}
    return json.dumps(
        {"event_type": event_type, "conversation_id": cid, "properties": props}
    ).encode()


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_canvas_interaction_ids_read_the_bodies(engine, request, db_path):
    if engine == "postgres":
        from tavus_analytics.store.postgres import PgStore

        store = PgStore(request.getfixturevalue("pg_url"))
    else:
        store = Store(db_path)
    with store:
        store.insert_batch(
            [
                canvas_body("c1", "a"),
                canvas_body("c1", 42),  # not text: no id
                canvas_body("c1", ...),  # no id at all
                canvas_body("c1", "x", event_type="application.transcription_ready"),
                canvas_body("c2", "b"),
                canvas_body("c1", "c"),
                canvas_body("c1", "a") + b" ",  # the same id twice
            ]
        )
        assert store.canvas_interaction_ids("c1") == {"a", "c"}
        assert store.canvas_interaction_ids("c2") == {"b"}
        assert store.canvas_interaction_ids("c3") == set()


def test_canvas_backfill_on_postgres(canvas_api, pg_url):
    from conftest import pg_query

    from tavus_analytics.store.postgres import PgStore

    live = envelope("c000", 1)
    live["timestamp"] = "2026-06-09T21:14:03.4Z"
    with PgStore(pg_url) as store:
        store.insert_callback(json.dumps(live).encode())
        with TavusClient(API_KEY, base_url=canvas_api.base_url, rate=0) as client:
            first = backfill(store, client)
            second = backfill(store, client)
    assert (first.canvas.records, first.canvas.stored, first.canvas.same_interaction) == (5, 3, 2)
    assert (second.canvas.records, second.canvas.stored, second.canvas.duplicate) == (5, 0, 5)
    ids = pg_query(
        pg_url,
        "SELECT body_json #>> '{properties,interaction_id}', count(*) FROM callbacks "
        "WHERE event_type = 'canvas.interaction' GROUP BY 1 ORDER BY 1",
    )
    assert ids == [
        ("ci_call_c000_submit_1", 1),
        ("ci_call_c000_submit_2", 1),
        ("ci_call_c001_submit_1", 1),
        ("ci_call_c001_submit_2", 1),
    ]
