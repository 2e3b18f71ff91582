"""The collector's Flask application: ``create_app(settings)``.

Routes
------
``POST /webhook``
    Store one callback. The token comes as ``?token=`` (so that a Tavus ``callback_url`` can
    carry it) or as the ``X-Webhook-Token`` header. Answers ``200 {"status": "ok", "id": N,
    "duplicate": false}`` only after the row is committed; ``401`` without the right token
    (nothing is stored); ``400`` for a body that is not a UTF-8 JSON object and ``413`` for one
    over the size limit (both kept in ``rejected``); ``503`` when the database cannot be written,
    so that the sender retries.
``GET /healthz``
    ``200 {"status": "ok", "callbacks": N}`` when the database is writable, else ``503``.
``GET /``
    A status page. Without the token it only says that the collector runs; with it, counts by
    event type and the time of the last callback. It never shows a callback's content.
``GET /dashboard``, ``GET /dashboard/data.json``, ``GET /dashboard/conversations/<id>``
    The live dashboard (:mod:`tavus_analytics.dashboard`): the report's key figures and charts
    for a period and a replica. ``401`` without the token (once in the URL, then a session
    cookie).

Every refusal has one JSON shape: ``{"ok": false, "status": 400, "error": "..."}``.

With ``settings.tail`` (``serve --tail``) each request also writes one line to standard output
(:mod:`tavus_analytics.tail`): never the token, never a transcript.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from http import HTTPStatus
from urllib.parse import parse_qsl

import orjson
from flask import Flask, Response, jsonify, render_template_string, request
from werkzeug.exceptions import HTTPException

from .config import Settings
from .dashboard import add_routes as add_dashboard
from .errors import InvalidCallback, StoreUnavailable
from .events import classify, parse_body
from .store import REJECTED_BODY_LIMIT, StoreInterface, open_store
from .tail import Tail

log = logging.getLogger("tavus_analytics.collector")

_READ_CHUNK = 64 * 1024


def _error(status: int, message: str, **headers) -> Response:
    resp = jsonify(_failure(status, message))
    resp.status_code = status
    resp.headers.update(headers)
    return resp


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def create_app(
    settings: Settings | None = None,
    *,
    store: StoreInterface | None = None,
    tail: Tail | None = None,
) -> Flask:
    """Build the collector app.

    Parameters
    ----------
    settings : Settings, optional
        Database path, secret, limits. ``Settings.from_env()`` when omitted. A secret is
        required unless ``settings.no_auth`` is true: :func:`tavus_analytics.server.resolve_secret`
        generates and keeps one for the command line.
    store : Store or PgStore, optional
        An open store to write to (default: one on ``settings.db``, a SQLite file or a
        PostgreSQL URL).
    tail : Tail, optional
        Where the line of each request goes; default, with ``settings.tail``, a
        :class:`~tavus_analytics.tail.Tail` on standard output.
    """
    settings = settings or Settings.from_env()
    if not settings.no_auth and not settings.secret:
        raise ValueError(
            "the collector needs a secret: pass Settings(secret=...) or no_auth=True explicitly"
        )
    app = Flask(__name__)
    app.config["TAVUS_SETTINGS"] = settings
    app.json.sort_keys = False
    store = store or open_store(
        settings.db, busy_timeout_ms=settings.busy_timeout_ms, pool_size=settings.threads
    )
    app.extensions["tavus_store"] = store
    secret_digest = None if settings.no_auth else _digest(settings.secret)

    def authorized() -> bool:
        if secret_digest is None:
            return True
        given = request.args.get("token") or request.headers.get("X-Webhook-Token") or ""
        # Compare digests: constant time whatever the length or how much of it is right.
        return hmac.compare_digest(_digest(given), secret_digest)

    if tail is None and settings.tail:
        tail = Tail()
    app.wsgi_app = _Webhook(settings, store, secret_digest, app.wsgi_app, tail)

    @app.get("/healthz")
    def healthz():
        try:
            store.check_writable()
            n = store.count_callbacks()
        except StoreUnavailable as e:
            log.error("health check failed: %s", e)
            return _error(503, "database is not writable")
        return jsonify({"ok": True, "status": "ok", "callbacks": n})

    @app.get("/")
    def status_page():
        details = None
        error = None
        if authorized():
            try:
                details = store.summary()
            except StoreUnavailable:
                error = "The database cannot be read right now."
        return render_template_string(
            _STATUS_PAGE, details=details, error=error, no_auth=secret_digest is None
        )

    add_dashboard(app, settings, secret_digest)

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException):
        return _error(e.code or 500, e.description or e.name)

    @app.errorhandler(Exception)
    def unexpected(e: Exception):  # pragma: no cover - a last resort, logged in full
        log.exception("unexpected error")
        return _error(500, "internal error, see the collector's log")

    return app


_UNAUTHORIZED = "missing or wrong token: pass ?token=SECRET or X-Webhook-Token"
_FIELDS = "tavus_analytics.fields"  # the WSGI environ key of a parsed callback's Fields
_UNAVAILABLE = "database unavailable, retry later"


class _Webhook:
    """``POST /webhook`` as a plain WSGI handler in front of the Flask app.

    This is the hot path: it reads the raw bytes (never a form), checks the token, parses,
    stores, and answers, without building a Flask request. Every other path goes to Flask.
    """

    def __init__(
        self,
        settings: Settings,
        store: StoreInterface,
        secret_digest: bytes | None,
        app,
        tail: Tail | None = None,
    ):
        self.settings = settings
        self.store = store
        self.secret_digest = secret_digest
        self.app = app
        self.activity = _ActivityLog()
        self.tail = tail

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") != "/webhook":
            if self.tail is not None:
                return self.app(environ, self._tailed(environ, start_response))
            return self.app(environ, start_response)
        if environ.get("REQUEST_METHOD") != "POST":
            if self.tail is not None:
                self.tail.callback(405, reason="use POST to send a callback")
            answer = _answer(
                start_response, 405, _failure(405, "use POST to send a callback"), ("Allow", "POST")
            )
            # A HEAD answer has headers only: a body would be read as the next answer.
            return [] if environ.get("REQUEST_METHOD") == "HEAD" else answer
        status, payload, headers = self.handle(environ)
        if self.tail is not None:
            self.tail.callback(
                status,
                environ.get(_FIELDS),
                rowid=payload.get("id"),
                duplicate=payload.get("duplicate", False),
                reason="missing or wrong token" if status == 401 else payload.get("error"),
            )
        return _answer(start_response, status, payload, *headers)

    def _tailed(self, environ, start_response):
        """``start_response`` that also writes the request's tail line."""

        def start(status, headers, exc_info=None):
            self.tail.request(
                environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"), status.split(" ", 1)[0]
            )
            return start_response(status, headers, exc_info)

        return start

    def authorized(self, environ) -> bool:
        if self.secret_digest is None:
            return True
        given = environ.get("HTTP_X_WEBHOOK_TOKEN") or ""
        query = environ.get("QUERY_STRING")
        if query:
            for key, value in parse_qsl(query, keep_blank_values=True):
                if key == "token":
                    given = value or given
                    break
        # Compare digests: constant time whatever the length or how much of it is right.
        return hmac.compare_digest(_digest(given), self.secret_digest)

    def read_body(self, environ) -> tuple[bytes, int, bool]:
        """The raw body (or its first 64 KiB when over the limit), its size as announced or
        read, and whether it is over the limit."""
        stream = environ["wsgi.input"]
        limit = self.settings.max_body
        try:
            declared = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            declared = None
        if declared is not None and declared >= 0:
            if declared > limit:
                return stream.read(min(declared, REJECTED_BODY_LIMIT)), declared, True
            chunks, size = [], 0
            while size < declared:
                chunk = stream.read(declared - size)
                if not chunk:
                    raise _Truncated(b"".join(chunks), size, declared)
                chunks.append(chunk)
                size += len(chunk)
            return b"".join(chunks), size, False
        if not environ.get("wsgi.input_terminated"):
            return b"", 0, False
        chunks, size = [], 0
        while chunk := stream.read(_READ_CHUNK):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                head = b"".join(chunks)[:REJECTED_BODY_LIMIT]
                while chunk := stream.read(_READ_CHUNK):  # drain what is left, counting it
                    size += len(chunk)
                return head, size, True
        return b"".join(chunks), size, False

    def handle(self, environ) -> tuple[int, dict, tuple]:
        remote = environ.get("REMOTE_ADDR")
        if not self.authorized(environ):
            log.warning("refused (401) from %s: missing or wrong token", remote)
            return 401, _failure(401, _UNAUTHORIZED), ()
        try:
            body, size, too_large = self.read_body(environ)
        except _Truncated as t:
            reason = (
                f"body ended after {t.size} of the {t.declared} bytes its Content-Length "
                "announced: send it again"
            )
            return self.reject(environ, 400, reason, t.body, t.size)
        if too_large:
            reason = (
                f"body is {size} bytes, over the limit of {self.settings.max_body} bytes "
                "(raise it with --max-body)"
            )
            return self.reject(environ, 413, reason, body, size)
        try:
            fields = classify(parse_body(body))
        except InvalidCallback as e:
            return self.reject(environ, 400, str(e), body, size)
        environ[_FIELDS] = fields  # for the tail: the envelope's event type and ids
        try:
            rowid, duplicate = self.store.insert_callback(
                body, fields, remote_addr=remote, user_agent=environ.get("HTTP_USER_AGENT")
            )
        except StoreUnavailable as e:
            log.error("callback not stored: %s", e)
            return 503, _failure(503, _UNAVAILABLE), (("Retry-After", "1"),)
        self.activity.stored(rowid, duplicate, fields)
        return 200, {"ok": True, "status": "ok", "id": rowid, "duplicate": duplicate}, ()

    def reject(self, environ, status: int, reason: str, body: bytes, size: int):
        remote = environ.get("REMOTE_ADDR")
        try:
            self.store.insert_rejected(
                reason,
                status,
                body,
                size=size,
                content_type=environ.get("CONTENT_TYPE") or None,
                remote_addr=remote,
                user_agent=environ.get("HTTP_USER_AGENT"),
            )
        except StoreUnavailable as e:
            log.error("could not keep a refused body as evidence: %s", e)
            return 503, _failure(503, _UNAVAILABLE), (("Retry-After", "1"),)
        log.warning("refused (%d) from %s: %s", status, remote, reason)
        return status, _failure(status, reason), ()


class _ActivityLog:
    """One INFO line per stored callback, at most one a second.

    A collector fed by a few calls a minute logs every callback; under load, each line also
    counts the callbacks stored since the previous line, so the log stays readable and costs
    next to nothing (formatting a log record per callback took a sixth of the CPU).
    """

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._next = 0.0
        self._stored = 0
        self._duplicates = 0

    def stored(self, rowid: int, duplicate: bool, fields) -> None:
        now = time.monotonic()
        with self._lock:
            if now < self._next:
                self._stored += not duplicate
                self._duplicates += duplicate
                return
            self._next = now + self.interval
            stored, duplicates = self._stored, self._duplicates
            self._stored = self._duplicates = 0
        more = ""
        if stored or duplicates:
            more = f" (and {stored} stored, {duplicates} duplicates since the previous line)"
        log.info(
            "%s #%d %s %s %s%s",
            "duplicate of" if duplicate else "stored",
            rowid,
            fields.kind,
            fields.event_type or fields.status or "-",
            fields.conversation_id or fields.video_id or fields.replica_id or "-",
            more,
        )


class _Truncated(Exception):
    """The connection ended before the body its Content-Length announced."""

    def __init__(self, body: bytes, size: int, declared: int) -> None:
        super().__init__(body, size, declared)
        self.body, self.size, self.declared = body, size, declared


def _failure(status: int, message: str) -> dict:
    return {"ok": False, "status": status, "error": message}


def _answer(start_response, status: int, payload: dict, *headers: tuple[str, str]):
    data = orjson.dumps(payload) + b"\n"
    start_response(
        f"{status} {HTTPStatus(status).phrase}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(data))), *headers],
    )
    return [data]


_STATUS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tavus-analytics collector</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:46rem;color:#222}
table{border-collapse:collapse}
td,th{padding:.2rem .8rem;border-bottom:1px solid #ddd;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}.warn{color:#a00;font-weight:600}
</style></head><body>
<h1>tavus-analytics collector</h1>
<p>The collector is running and accepts Tavus callbacks at <code>POST /webhook</code>.</p>
{% if no_auth %}<p class="warn">Token checking is off (--no-auth): anyone who can reach this
collector can write to it.</p>{% endif %}
{% if error %}<p class="warn">{{ error }}</p>
{% elif details is none %}<p>Add <code>?token=SECRET</code> to this page's address to see
counts.</p>
{% else %}
<p>{{ details.callbacks }} callback{{ "" if details.callbacks == 1 else "s" }} stored,
{{ details.rejected }} refused.
Last callback received at {{ details.last_received_at or "never" }} (UTC).</p>
<table><tr><th>kind</th><th>event type</th><th>count</th></tr>
{% for row in details.by_event_type %}<tr><td>{{ row.kind }}</td>
<td>{{ row.event_type or "" }}</td><td class="n">{{ row.count }}</td></tr>{% endfor %}
</table>{% endif %}
</body></html>
"""
