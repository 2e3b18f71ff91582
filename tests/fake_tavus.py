"""A local HTTP server on 127.0.0.1 that answers like Tavus's API, for backfill and setup tests.

Conversations (listing and verbose detail), their canvas history, objectives and guardrails
(listings and JSON Patch), with scripted failures.
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

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


def interaction(cid: str, n: int, created_at: str = "2026-06-09T21:14:03.518923") -> dict:
    """One canvas interaction object, as a live callback carries it in ``properties``."""
    return {
        "conversation_id": cid,
        "interaction_id": f"ci_call_{cid}_submit_{n}",
        "tool_call_id": f"call_{cid}",
        "component": "canvas.question",
        "component_version": "v1",
        "type": "submit",
        "value": {"selected_option_ids": [f"opt_{n}"], "skipped": False},
        "metadata": {"client": "kiosk-web"},
        "created_at": created_at,
    }


def objective(oid: str, name: str, callback_url: str | None, **more) -> dict:
    """One item of GET /v2/objectives (``callback_url=None`` leaves the member out)."""
    item = {
        "objectives_id": oid,
        "objective_name": name,
        "objective_prompt": f"Find out {name}.",
        "confirmation_mode": "auto",
        "output_variables": ["answer"],
        "modality": "verbal",
        "next_required_objective": None,
        "next_conditional_objectives": {},
        "created_at": "2026-05-01T10:00:00Z",
        "updated_at": "2026-05-01T10:00:00Z",
        **more,
    }
    if callback_url is not None:
        item["callback_url"] = callback_url
    return item


def guardrail(uuid: str, name: str, callback_url: str | None, **more) -> dict:
    """One item of GET /v2/guardrails?legacy=false."""
    item = {
        "uuid": uuid,
        "guardrail_name": name,
        "guardrail_prompt": f"Never break {name}.",
        "modality": "verbal",
        "tags": [],
        "app_message": True,
        "created_at": "2026-05-01T10:00:00Z",
        "updated_at": "2026-05-01T10:00:00Z",
        **more,
    }
    if callback_url is not None:
        item["callback_url"] = callback_url
    return item


class FakeTavus(ThreadingHTTPServer):
    """Tavus's API on 127.0.0.1, with scripted failures.

    ``faults[path]`` is a list of ``(status, headers, body)`` answered (one per request, any
    method) before the real answer. Every GET is kept in ``seen`` as ``(path, query, api key
    header)``; every PATCH in ``patches`` as ``(path, parsed body, content type, api key
    header)``. ``canvas[conversation_id]`` is its canvas history (no entry: 404). A PATCH of an
    id in ``ignore_patches`` is answered 200 and changes nothing; one of an id in ``new_ids``
    gives the resource that new id.
    """

    daemon_threads = True

    def __init__(
        self,
        conversations: list[dict],
        *,
        objectives: list[dict] | None = None,
        guardrails: list[dict] | None = None,
        canvas: dict[str, list] | None = None,
    ):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.conversations = conversations
        self.objectives = objectives or []
        self.guardrails = guardrails or []
        self.canvas = canvas or {}
        self.faults: dict[str, list] = {}
        self.seen: list[tuple[str, dict, str | None]] = []
        self.patches: list[tuple[str, object, str | None, str | None]] = []
        self.ignore_patches: set[str] = set()
        self.new_ids: dict[str, str] = {}
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
        limit = int(query.get("limit", 10))
        page = int(query.get("page", 1))
        if url.path == "/v2/conversations":
            data = server.conversations[(page - 1) * limit : page * limit]
            return self._answer(200, {"data": data, "total_count": len(server.conversations)})
        if url.path == "/v2/objectives":
            if page < 1:
                return self._answer(400, {"error": "Invalid page"})
            data = server.objectives[(page - 1) * limit : page * limit]
            return self._answer(200, {"data": data, "total_count": len(server.objectives)})
        if url.path == "/v2/guardrails":
            if query.get("legacy") != "false":  # the legacy sets: another shape altogether
                return self._answer(200, {"data": [{"guardrails_id": "gs1", "data": []}]})
            page = int(query.get("page", 0))  # 0-based here
            data = server.guardrails[page * limit : (page + 1) * limit]
            return self._answer(200, {"data": data, "total_count": len(server.guardrails)})
        parts = url.path.split("/")  # ['', 'v2', 'conversations', id, ...]
        cid = parts[3] if len(parts) > 3 else ""  # as sent: "bad%20id" is no id
        found = [c for c in server.conversations if c["conversation_id"] == cid]
        if parts[:3] != ["", "v2", "conversations"] or not found:
            return self._answer(400, {"error": "Invalid conversation_id"})
        if parts[4:] == ["canvas", "interactions"]:
            if cid not in server.canvas:
                return self._answer(404, {"message": "Not found"})
            return self._answer(200, {"data": server.canvas[cid]})
        detail = {**found[0], "shutdown_reason": "participant_left_timeout"}
        if query.get("verbose") == "true":
            detail["events"] = events(cid, found[0]["created_at"][:10])
        return self._answer(200, detail)

    def do_PATCH(self):
        url = urlsplit(self.path)
        server = self.server
        length = int(self.headers.get("Content-Length", 0))
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw
        server.patches.append(
            (url.path, body, self.headers.get("Content-Type"), self.headers.get("x-api-key"))
        )
        if server.faults.get(url.path):
            status, headers, payload = server.faults[url.path].pop(0)
            return self._answer(status, payload, headers)
        if self.headers.get("x-api-key") != API_KEY:
            return self._answer(401, {"message": "Invalid access token"})
        parts = url.path.split("/")
        kinds = {
            "objectives": ("objectives_id", server.objectives, "Objective"),
            "guardrails": ("uuid", server.guardrails, "Guardrails"),
        }
        if len(parts) != 4 or parts[2] not in kinds:
            return self._answer(404, {"error": "Not found"})
        key, items, noun = kinds[parts[2]]
        rid = unquote(parts[3])
        found = [item for item in items if item.get(key) == rid]
        if not found:
            return self._answer(404, {"error": f"{noun} not found"})
        if not isinstance(body, list):
            return self._answer(400, {"error": "Invalid patch operation"})
        if rid in server.ignore_patches:
            return self._answer(200, {"message": f"{noun} updated successfully"})
        document = json.loads(json.dumps(found[0]))
        for op in body:
            if not _apply(document, op):
                return self._answer(400, {"error": "Invalid patch operation"})
        found[0].clear()
        found[0].update(document)
        if rid in server.new_ids:  # a legacy edit gives the resource another id
            found[0][key] = server.new_ids[rid]
        return self._answer(200, {"message": f"{noun} updated successfully"})

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


def _apply(document, op) -> bool:
    """One ``add`` or ``replace`` of RFC 6902 on ``document``; False where it would fail (a
    ``replace`` of a missing member, a path into nothing)."""
    if not isinstance(op, dict) or op.get("op") not in ("add", "replace") or "value" not in op:
        return False
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in op.get("path", "").split("/")[1:]]
    if not tokens:
        return False
    target = document
    for token in tokens[:-1]:
        if isinstance(target, list) and token.isdigit() and int(token) < len(target):
            target = target[int(token)]
        elif isinstance(target, dict) and token in target:
            target = target[token]
        else:
            return False
    if not isinstance(target, dict) or (op["op"] == "replace" and tokens[-1] not in target):
        return False
    target[tokens[-1]] = op["value"]
    return True
