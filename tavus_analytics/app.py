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

Every refusal has one JSON shape: ``{"ok": false, "status": 400, "error": "..."}``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re

import orjson
from flask import Flask, Response, jsonify, render_template_string, request
from werkzeug.exceptions import HTTPException

from .config import Settings
from .errors import InvalidCallback, StoreUnavailable
from .events import classify, parse_body
from .store import REJECTED_BODY_LIMIT, Store

log = logging.getLogger("tavus_analytics.collector")

_READ_CHUNK = 64 * 1024
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _refuse_lone_surrogates(body: bytes, obj: dict) -> None:
    """Refuse a body holding a lone UTF-16 surrogate escape (``"\\ud800"`` with no pair).

    Such a string is not Unicode: SQLite's JSON functions turn it into invalid UTF-8, and every
    later read of that value (the loader, the SQL views, the search index) fails.
    """
    if _SURROGATE_ESCAPE.search(body) is None:
        return
    try:
        orjson.loads(body)  # orjson refuses lone surrogates: what it reads is Unicode
        return
    except orjson.JSONDecodeError:
        pass
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidCallback(
            "body holds a lone UTF-16 surrogate escape (such as \\ud800 without its pair): "
            "not valid Unicode"
        ) from None
    except RecursionError:
        raise InvalidCallback("body is nested too deeply: send at most 900 levels") from None


def _error(status: int, message: str, **headers) -> Response:
    resp = jsonify({"ok": False, "status": status, "error": message})
    resp.status_code = status
    resp.headers.update(headers)
    return resp


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def create_app(settings: Settings | None = None, *, store: Store | None = None) -> Flask:
    """Build the collector app.

    Parameters
    ----------
    settings : Settings, optional
        Database path, secret, limits. ``Settings.from_env()`` when omitted. A secret is
        required unless ``settings.no_auth`` is true: :func:`tavus_analytics.server.resolve_secret`
        generates and keeps one for the command line.
    store : Store, optional
        An open store to write to (default: one on ``settings.db``).
    """
    settings = settings or Settings.from_env()
    if not settings.no_auth and not settings.secret:
        raise ValueError(
            "the collector needs a secret: pass Settings(secret=...) or no_auth=True explicitly"
        )
    app = Flask(__name__)
    app.config["TAVUS_SETTINGS"] = settings
    app.json.sort_keys = False
    store = store or Store(settings.db, busy_timeout_ms=settings.busy_timeout_ms)
    app.extensions["tavus_store"] = store
    secret_digest = None if settings.no_auth else _digest(settings.secret)

    def authorized() -> bool:
        if secret_digest is None:
            return True
        given = request.args.get("token") or request.headers.get("X-Webhook-Token") or ""
        # Compare digests: constant time whatever the length or how much of it is right.
        return hmac.compare_digest(_digest(given), secret_digest)

    def read_body() -> tuple[bytes, int, bool]:
        """The raw body (at most max_body + 1 bytes, or its first 64 KiB when over the limit),
        the size announced or read, and whether it is over the limit."""
        stream = request.stream
        limit = settings.max_body
        declared = request.content_length
        if declared is not None and declared > limit:
            return stream.read(REJECTED_BODY_LIMIT), declared, True
        chunks, size = [], 0
        while True:
            chunk = stream.read(_READ_CHUNK)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                head = b"".join(chunks)[:REJECTED_BODY_LIMIT]
                while stream.read(_READ_CHUNK):  # drain what is left, counting it
                    pass
                return head, size, True
        return b"".join(chunks), size, False

    def reject(status: int, reason: str, body: bytes, size: int) -> Response:
        try:
            store.insert_rejected(
                reason,
                status,
                body,
                size=size,
                content_type=request.content_type,
                remote_addr=request.remote_addr,
                user_agent=request.user_agent.string or None,
            )
        except StoreUnavailable as e:
            log.error("could not keep a refused body as evidence: %s", e)
            return _error(503, "database unavailable, retry later", **{"Retry-After": "1"})
        log.warning("refused (%d) from %s: %s", status, request.remote_addr, reason)
        return _error(status, reason)

    @app.post("/webhook")
    def webhook():
        if not authorized():
            log.warning("refused (401) from %s: missing or wrong token", request.remote_addr)
            return _error(401, "missing or wrong token: pass ?token=SECRET or X-Webhook-Token")
        body, size, too_large = read_body()
        if too_large:
            return reject(
                413,
                f"body is {size} bytes, over the limit of {settings.max_body} bytes "
                "(raise it with --max-body)",
                body,
                size,
            )
        try:
            obj = parse_body(body)
            _refuse_lone_surrogates(body, obj)
            fields = classify(obj)
        except InvalidCallback as e:
            return reject(400, str(e), body, size)
        try:
            rowid, duplicate = store.insert_callback(
                body,
                fields,
                remote_addr=request.remote_addr,
                user_agent=request.user_agent.string or None,
            )
        except StoreUnavailable as e:
            log.error("callback not stored: %s", e)
            return _error(503, "database unavailable, retry later", **{"Retry-After": "1"})
        log.info(
            "%s #%d %s %s %s",
            "duplicate of" if duplicate else "stored",
            rowid,
            fields.kind,
            fields.event_type or fields.status or "-",
            fields.conversation_id or fields.video_id or fields.replica_id or "-",
        )
        return jsonify({"ok": True, "status": "ok", "id": rowid, "duplicate": duplicate})

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

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException):
        return _error(e.code or 500, e.description or e.name)

    @app.errorhandler(Exception)
    def unexpected(e: Exception):  # pragma: no cover - a last resort, logged in full
        log.exception("unexpected error")
        return _error(500, "internal error, see the collector's log")

    return app


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
