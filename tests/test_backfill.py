"""`tavus-analytics backfill` against a local HTTP server that answers like Tavus's API."""

from __future__ import annotations

import json
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import SHUTDOWN_EXAMPLE, query, run, serving

from tavus_analytics import Store
from tavus_analytics.importer import TavusApiError, TavusClient, backfill

API_KEY = "tvs-test-KEY-6f1d0c2b9a"


def conversation(cid: str, created_at: str) -> dict:
    """One item of GET /v2/conversations."""
    return {
        "conversation_id": cid,
        "conversation_name": f"Call {cid}",
        "status": "ended",
        "conversation_url": f"https://tavus.daily.co/{cid}",
        "callback_url": "https://example.ngrok.app/webhook",
        "replica_id": "r79e1c033f",
        "persona_id": "p5317866",
        "created_at": created_at,
        "updated_at": created_at,
    }


def events(cid: str, day: str) -> list[dict]:
    """The events of a verbose conversation answer: no conversation_id on them."""
    return [
        {
            "event_type": "system.replica_joined",
            "message_type": "system",
            "timestamp": f"{day}T10:00:01.000000Z",
            "properties": {"replica_id": "r79e1c033f"},
        },
        {
            "event_type": "system.shutdown",
            "message_type": "system",
            "timestamp": f"{day}T10:05:00.000000Z",
            "properties": {
                "replica_id": "r79e1c033f",
                "shutdown_reason": "participant_left_timeout",
            },
        },
        {
            "event_type": "application.transcription_ready",
            "message_type": "application",
            "timestamp": f"{day}T10:05:00.001000Z",
            "properties": {
                "replica_id": "r79e1c033f",
                "transcript": [
                    {"role": "system", "content": "You are Anna."},
                    {"role": "user", "content": f"Hi, this is {cid}."},
                    {"role": "assistant", "content": "Hello!"},
                ],
            },
        },
    ]


class FakeTavus(ThreadingHTTPServer):
    """Tavus's conversation API on 127.0.0.1, with scripted failures.

    ``faults[path]`` is a list of ``(status, headers, body)`` answered (one per request) before
    the real answer; every request is kept in ``seen`` as ``(path, query, api key header)``.
    """

    daemon_threads = True

    def __init__(self, conversations: list[dict]):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.conversations = conversations
        self.faults: dict[str, list] = {}
        self.seen: list[tuple[str, dict, str | None]] = []
        self.base_url = f"http://127.0.0.1:{self.server_port}"


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        server = self.server
        server.seen.append((url.path, query, self.headers.get("x-api-key")))
        if server.faults.get(url.path):
            status, headers, body = server.faults[url.path].pop(0)
            return self._answer(status, body, headers)
        if self.headers.get("x-api-key") != API_KEY:
            return self._answer(401, {"message": "Invalid access token"})
        if url.path == "/v2/conversations":
            limit, page = int(query.get("limit", 10)), int(query.get("page", 1))
            data = server.conversations[(page - 1) * limit : page * limit]
            return self._answer(200, {"data": data, "total_count": len(server.conversations)})
        cid = url.path.rsplit("/", 1)[-1]
        found = [c for c in server.conversations if c["conversation_id"] == cid]
        if not url.path.startswith("/v2/conversations/") or not found:
            return self._answer(400, {"error": "Invalid conversation_id"})
        detail = {**found[0], "shutdown_reason": "participant_left_timeout"}
        if query.get("verbose") == "true":
            detail["events"] = events(cid, found[0]["created_at"][:10])
        return self._answer(200, detail)

    def _answer(self, status, payload, headers=()):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in dict(headers).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


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
        "0 rejected\n"
    )
    listing = [q for path, q, _ in api.seen if path == "/v2/conversations"]
    assert listing == [{"limit": "3", "page": str(p)} for p in (1, 2, 3)]
    details = [(p, q) for p, q, _ in api.seen if p != "/v2/conversations"]
    assert details == [(f"/v2/conversations/c{i:03d}", {"verbose": "true"}) for i in range(7)]
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
    fetched = sorted(p.rsplit("/", 1)[1] for p, _, _ in api.seen if p != "/v2/conversations")
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
        "8 conversations listed, 8, 6 fetched: 18 events, 18 stored, 0 duplicates, 0 rejected"
    )
    assert lines[1] == (
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
