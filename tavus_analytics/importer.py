"""Callbacks from files and from Tavus's API, stored through the collector's storage path.

Files
-----
:func:`read_records` reads one file and returns the callback bodies it holds. Four shapes are
recognised, whatever the file's name:

* one JSON object (a saved callback body);
* a JSON array of objects;
* JSON Lines: one JSON value per line (blank lines are skipped; a line that is not JSON is kept as
  a bad record, and ends up in ``rejected``);
* a saved ``GET /v2/conversations/{id}?verbose=true`` response (anywhere one of the above holds a
  record): an object with ``conversation_id`` and an ``events`` list and no ``event_type``.
  Each event becomes a conversation callback body (see :func:`conversation_events`).

Each record keeps its own bytes, exactly as they appear in the file (surrounding whitespace and a
leading UTF-8 byte order mark aside), so that a callback saved from a request body is deduplicated
against the copy the collector stored. A file that is not JSON at all, nor JSON Lines with at
least one JSON line, is one bad record.

Events taken from an API response
---------------------------------
An event that already carries ``conversation_id`` (and ``timestamp``) keeps its own bytes. One
that lacks them is re-serialised with ``conversation_id`` filled from the response and
``timestamp`` from its ``created_at``: compact JSON, keys in their original order, non-ASCII kept.
The same input always gives the same bytes, so a second import of the same file is deduplicated;
but those bytes differ from what Tavus POSTed to the collector, so the SHA-256 dedupe cannot see
that they are the same callback. Events from an API response are therefore also skipped when a
callback with the same ``conversation_id``, ``event_type`` and ``timestamp`` is already stored
(counted as duplicates).

Tavus's API
-----------
:class:`TavusClient` talks to ``GET /v2/conversations`` (paged),
``GET /v2/conversations/{id}?verbose=true`` and ``GET /v2/conversations/{id}/canvas/interactions``
with a rate limit and retries; :func:`backfill` stores the events and the canvas interactions of
every conversation created since a date. It also lists objectives and guardrails and patches
their ``callback_url`` (see :mod:`tavus_analytics.callback_urls`). The API key travels only in the
``x-api-key`` header: it is never printed, logged or stored.

Canvas interactions
-------------------
The history endpoint answers ``{"data": [...]}``, oldest first; each item is an interaction
object (what a live ``canvas.interaction`` callback carries in ``properties``), or a whole
callback. An interaction object is stored as the callback Tavus would have sent:
``{"message_type": "canvas", "event_type": "canvas.interaction", "conversation_id": ...,
"timestamp": ..., "properties": item}``, compact JSON, ``timestamp`` from the item's
``created_at`` (UTC, ISO 8601 with ``Z``), so that the same item always gives the same bytes. An
interaction whose ``interaction_id`` is already stored for the conversation (received live, with
other bytes, or by an earlier backfill) is skipped and counted as a duplicate.
"""

from __future__ import annotations

import email.utils
import json
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

import orjson
import requests

from .errors import ImportFileError, TavusApiError
from .progress import progress as progress_bar
from .store import Store

DEFAULT_BASE_URL = "https://tavusapi.com"
IMPORT_USER_AGENT = "tavus-analytics import"
BACKFILL_USER_AGENT = "tavus-analytics backfill"

#: What no backfill can recover, said wherever these figures are set up or recovered.
LOST_IF_MISSED = (
    "objective completions and guardrail triggers are sent once and cannot be fetched from "
    "Tavus later: whatever the collector misses while it is stopped or unreachable is lost"
)

_BOM = b"\xef\xbb\xbf"
_WS = re.compile(r"[ \t\r\n]*")
_DECODER = json.JSONDecoder()
_NOT_JSON = object()


class Record(NamedTuple):
    """One callback body to store, and whether it was taken from an API response's events;
    ``interaction`` is ``(conversation_id, interaction_id)`` for a canvas interaction taken from
    its history, skipped when that interaction is already stored."""

    body: bytes
    from_api: bool = False
    interaction: tuple[str, str] | None = None


@dataclass
class ImportResult:
    """Counts of one import (or backfill).

    ``duplicate`` counts records already stored with the same bytes, events from an API
    response already stored under the same conversation, event type and timestamp
    (``same_event`` of them), and canvas interactions whose ``interaction_id`` is already stored
    for the conversation (``same_interaction`` of them).
    """

    records: int = 0
    stored: int = 0
    duplicate: int = 0
    rejected: int = 0
    same_event: int = 0
    same_interaction: int = 0

    def add(self, other: ImportResult) -> None:
        self.records += other.records
        self.stored += other.stored
        self.duplicate += other.duplicate
        self.rejected += other.rejected
        self.same_event += other.same_event
        self.same_interaction += other.same_interaction


# -- JSON without losing bytes ------------------------------------------------------------------
def _loads(data: bytes | str) -> Any:
    """Parsed JSON, or ``_NOT_JSON``. orjson first; the standard library for what orjson refuses
    but is valid JSON (numbers beyond a double's range)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        return _NOT_JSON


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _ws(text: str, pos: int) -> int:
    return _WS.match(text, pos).end()


def _array_items(text: str, pos: int) -> list[tuple[Any, int, int]]:
    """``(value, start, end)`` of each item of the (valid) JSON array at ``text[pos]``."""
    items = []
    pos = _ws(text, pos + 1)
    if text[pos] == "]":
        return items
    while True:
        value, end = _DECODER.raw_decode(text, pos)
        items.append((value, pos, end))
        pos = _ws(text, end)
        if text[pos] == "]":
            return items
        pos = _ws(text, pos + 1)  # past the comma


def _member_span(text: str, pos: int, key: str) -> tuple[int, int] | None:
    """Where the value of ``key`` is in the (valid) JSON object at ``text[pos]`` (the last one
    when the key repeats, as parsers do)."""
    found = None
    pos = _ws(text, pos + 1)
    if text[pos] == "}":
        return None
    while True:
        name, end = _DECODER.raw_decode(text, pos)
        pos = _ws(text, _ws(text, end) + 1)  # past the colon
        _, end = _DECODER.raw_decode(text, pos)
        if name == key:
            found = (pos, end)
        pos = _ws(text, end)
        if text[pos] == "}":
            return found
        pos = _ws(text, pos + 1)


def is_conversation_response(obj: Any) -> bool:
    """Whether ``obj`` is a ``GET /v2/conversations/{id}?verbose=true`` response."""
    return (
        isinstance(obj, dict)
        and isinstance(obj.get("events"), list)
        and isinstance(obj.get("conversation_id"), str)
        and "event_type" not in obj
    )


def event_body(event: Any, conversation_id: str | None, raw: bytes | None = None) -> bytes:
    """One event of an API response as a conversation callback body.

    Parameters
    ----------
    event : Any
        The parsed event.
    conversation_id : str or None
        The response's ``conversation_id``, filled in when the event has none.
    raw : bytes, optional
        The event's own bytes, kept when nothing needs filling in.
    """
    if isinstance(event, dict):
        missing_id = not event.get("conversation_id") and conversation_id
        missing_ts = "timestamp" not in event and isinstance(event.get("created_at"), str)
        if missing_id or missing_ts:
            event = dict(event)
            if missing_id:
                event["conversation_id"] = conversation_id
            if missing_ts:
                event["timestamp"] = event["created_at"]
            return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
    if raw is not None:
        return raw
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()


def conversation_events(obj: dict, text: str | None = None, start: int = 0) -> list[Record]:
    """The callbacks held in a verbose conversation response.

    Parameters
    ----------
    obj : dict
        The parsed response.
    text : str, optional
        The JSON text the response was parsed from, and ``start``, where the response's object
        begins in it: when given, each event keeps its own bytes where possible.
    start : int
        Offset of the response's opening brace in ``text``.
    """
    spans = None
    if text is not None:
        member = _member_span(text, start, "events")
        if member is not None:
            spans = _array_items(text, member[0])
    parent = obj.get("conversation_id")
    records = []
    for i, event in enumerate(obj["events"]):
        raw = text[spans[i][1] : spans[i][2]].encode("utf-8") if spans else None
        records.append(Record(event_body(event, parent, raw), from_api=True))
    return records


def _records_of(value: Any, text: str, start: int, end: int) -> list[Record]:
    if is_conversation_response(value):
        return conversation_events(value, text, start)
    return [Record(text[start:end].encode("utf-8"))]


def split_records(data: bytes) -> list[Record]:
    """The callback bodies held in the content of one file (see the module's notes)."""
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    data = data.strip()
    if not data:
        return []
    parsed = _loads(data)
    if parsed is not _NOT_JSON:
        text = data.decode("utf-8")
        if isinstance(parsed, list):
            records: list[Record] = []
            for value, start, end in _array_items(text, 0):
                records.extend(_records_of(value, text, start, end))
            return records
        return _records_of(parsed, text, 0, len(text))
    lines = [line.strip() for line in data.split(b"\n")]
    lines = [line for line in lines if line]
    values = [_loads(line) for line in lines]
    if len(lines) > 1 and any(v is not _NOT_JSON for v in values):
        records = []
        for line, value in zip(lines, values, strict=True):
            if value is not _NOT_JSON and is_conversation_response(value):
                records.extend(conversation_events(value, line.decode("utf-8"), 0))
            else:
                records.append(Record(line))
        return records
    return [Record(data)]


def read_records(path: str | Path) -> list[Record]:
    """The callback bodies in one file (``-`` reads standard input).

    Raises
    ------
    ImportFileError
        When the file is missing or cannot be read.
    """
    try:
        data = sys.stdin.buffer.read() if str(path) == "-" else Path(path).read_bytes()
    except FileNotFoundError:
        raise ImportFileError(f"cannot read {path}: no such file") from None
    except IsADirectoryError:
        raise ImportFileError(f"cannot read {path}: it is a folder, not a file") from None
    except OSError as e:
        raise ImportFileError(f"cannot read {path}: {e.strerror or e}") from None
    return split_records(data)


# -- storing ------------------------------------------------------------------------------------


def store_records(
    store: Store,
    records: Iterable[Record],
    *,
    user_agent: str = IMPORT_USER_AGENT,
    on_progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Store records in one transaction (all or nothing), through ``Store.insert_batch``.

    Bodies that are not JSON objects go to ``rejected``; a body already stored is a duplicate;
    an event from an API response already stored under the same conversation, event type and
    timestamp is skipped and counted as a duplicate, and so is a canvas interaction whose
    ``interaction_id`` is already stored for its conversation.
    """
    result = ImportResult()
    interactions: dict[str, set[str]] = {}

    def bodies() -> Iterator[bytes]:
        # Runs inside insert_batch's transaction: same_event and canvas_interaction_ids see the
        # rows stored earlier in the same batch.
        for record in records:
            result.records += 1
            if record.from_api:
                key = _event_key(record.body)
                if key is not None and store.same_event(key):
                    result.same_event += 1
                    continue
            if record.interaction is not None:
                conversation_id, interaction_id = record.interaction
                known = interactions.get(conversation_id)
                if known is None:
                    known = interactions[conversation_id] = store.canvas_interaction_ids(
                        conversation_id
                    )
                if interaction_id in known:
                    result.same_interaction += 1
                    continue
                known.add(interaction_id)
            yield record.body

    batch = store.insert_batch(bodies(), user_agent=user_agent, on_progress=on_progress)
    result.stored = batch.stored
    result.duplicate = batch.duplicate + result.same_event + result.same_interaction
    result.rejected = batch.rejected
    return result


def _event_key(body: bytes) -> tuple[str, str, str] | None:
    obj = _loads(body)
    if not isinstance(obj, dict):
        return None
    key = (obj.get("conversation_id"), obj.get("event_type"), obj.get("timestamp"))
    return key if all(isinstance(k, str) for k in key) else None


def import_files(
    store: Store, paths: Iterable[str | Path], *, progress: bool = False
) -> ImportResult:
    """Read every file, then store all their records in one transaction.

    Every file is read and split before anything is written: a missing or unreadable file
    raises :class:`ImportFileError` and leaves the database untouched.

    Parameters
    ----------
    store : Store
        Where to store.
    paths : iterable of str or Path
        The files (``-`` for standard input).
    progress : bool
        Show a progress bar on standard error (only on a terminal).
    """
    records: list[Record] = []
    for path in paths:
        records.extend(read_records(path))
    bar = progress_bar("importing", total=len(records), enabled=progress)
    try:
        result = store_records(store, records, on_progress=bar.update)
        bar.update(bar.total - bar.n)
    finally:
        bar.close()
    return result


# -- times --------------------------------------------------------------------------------------
def parse_time(value: str | datetime | None) -> datetime | None:
    """A date or a date and time as a tz-aware UTC datetime (naive means UTC).

    Accepts ``2025-07-01``, ``2025-07-01T12:00``, ``2025-07-01 12:00:00.5``, ``...Z`` and
    ``...+02:00``.

    Raises
    ------
    ValueError
        When the text is not such a date.
    """
    if value is None or isinstance(value, datetime):
        when = value
    else:
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a date: use YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM]"
            ) from None
    if when is None:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


# -- Tavus's API --------------------------------------------------------------------------------
class TavusClient:
    """A small client of Tavus's REST API, for backfill.

    Parameters
    ----------
    api_key : str
        Sent in the ``x-api-key`` header only; never shown in messages or ``repr``.
    base_url : str
        The API's root (``https://tavusapi.com``).
    rate : float
        At most this many requests per second (``0``: no limit).
    max_retries : int
        How many times a request answered 429 or 5xx (or not answered) is tried again.
    backoff : float
        First wait between tries, in seconds; doubled at each try. A ``Retry-After`` header, when
        present, is obeyed instead. Waits are capped at ``max_wait`` seconds.
    max_wait : float
        Longest single wait, in seconds.
    timeout : float
        Seconds to wait for an answer.
    page_size : int
        Items asked for per page of a listing.
    session : requests.Session, optional
        The HTTP session (one is made when omitted).
    sleep : callable
        How to wait (``time.sleep``); tests pass a recorder.
    user_agent : str
        The ``User-Agent`` header (``tavus-analytics backfill``).
    """

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        rate: float = 5.0,
        max_retries: int = 5,
        backoff: float = 1.0,
        max_wait: float = 60.0,
        timeout: float = 30.0,
        page_size: int = 100,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        user_agent: str = BACKFILL_USER_AGENT,
    ) -> None:
        if not api_key or not api_key.strip():
            raise TavusApiError("no Tavus API key: pass --api-key KEY or set TAVUS_API_KEY")
        self.base_url = base_url.rstrip("/")
        self.rate = rate
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_wait = max_wait
        self.timeout = timeout
        self.page_size = page_size
        self.requests = 0
        self._sleep = sleep
        self._last: float | None = None
        self._session = session or requests.Session()
        self._session.headers["x-api-key"] = api_key.strip()
        self._session.headers["User-Agent"] = user_agent

    def __repr__(self) -> str:
        return f"TavusClient(base_url={self.base_url!r})"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> TavusClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _throttle(self) -> None:
        if self.rate and self.rate > 0:
            now = time.monotonic()
            if self._last is not None:
                wait = self._last + 1.0 / self.rate - now
                if wait > 0:
                    self._sleep(wait)
            self._last = time.monotonic()

    def _wait(self, response: requests.Response | None, attempt: int) -> float:
        if response is not None:
            after = _retry_after(response.headers.get("Retry-After"))
            if after is not None:
                return min(after, self.max_wait)
        return min(self.backoff * 2**attempt, self.max_wait)

    def get(self, path: str, params: dict | None = None) -> requests.Response:
        """GET ``path`` with the rate limit and retries; raise :class:`TavusApiError` on
        refusal."""
        return self.request("GET", path, params)

    def request(
        self, method: str, path: str, params: dict | None = None, *, json_body: Any = None
    ) -> requests.Response:
        """``method`` on ``path`` (with ``json_body`` as ``application/json`` when given), with
        the rate limit and retries on 429, 5xx or no answer; raise :class:`TavusApiError` on
        refusal. Only idempotent requests go through here: they may be sent more than once."""
        url = self.base_url + path
        what = f"{method} {path}"
        for attempt in range(self.max_retries + 1):
            self._throttle()
            self.requests += 1
            try:
                response = self._session.request(
                    method, url, params=params, json=json_body, timeout=self.timeout
                )
            except requests.RequestException as e:
                if attempt == self.max_retries:
                    raise TavusApiError(
                        f"cannot reach the Tavus API at {self.base_url}: {connection_error(e)}"
                    ) from None
                self._sleep(self._wait(None, attempt))
                continue
            status = response.status_code
            if status == 429 or status >= 500:
                if attempt == self.max_retries:
                    raise TavusApiError(
                        f"Tavus API answered {status} to {what} {attempt + 1} times "
                        f"({_message(response)}): try again later",
                        status,
                    )
                self._sleep(self._wait(response, attempt))
                continue
            if status == 401:
                raise TavusApiError(
                    f"Tavus API refused the API key (401 {_message(response)}): check --api-key "
                    "or TAVUS_API_KEY",
                    status,
                )
            if status >= 400:
                raise TavusApiError(
                    f"Tavus API answered {status} to {what}: {_message(response)}", status
                )
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def list_conversations(self, *, limit: int | None = None) -> Iterator[dict]:
        """Every conversation of the account, page by page (pages are 1-based, ``limit``
        conversations a page, ``page_size`` by default), until ``total_count`` is reached or a
        page comes back empty."""
        return self._pages("/v2/conversations", {}, first_page=1, limit=limit)

    def _pages(
        self, path: str, params: dict, *, first_page: int, limit: int | None
    ) -> Iterator[dict]:
        """The objects of a paged listing (``{"data": [...], "total_count": N}``), from page
        ``first_page`` on, until ``total_count`` is reached or a page comes back empty."""
        limit = limit or self.page_size
        page, seen = first_page, 0
        while True:
            response = self.get(path, {**params, "limit": limit, "page": page})
            payload = _json(response, f"GET {path}")
            data = payload.get("data") if isinstance(payload, dict) else None
            if not isinstance(data, list):
                raise TavusApiError(
                    f"unexpected answer to GET {path}: no 'data' list "
                    "(is --base-url the Tavus API?)"
                )
            yield from (c for c in data if isinstance(c, dict))
            seen += len(data)
            total = payload.get("total_count")
            if not data or (isinstance(total, int) and seen >= total):
                return
            page += 1

    def conversation(self, conversation_id: str) -> bytes:
        """The raw ``GET /v2/conversations/{id}?verbose=true`` answer."""
        path = f"/v2/conversations/{quote(conversation_id, safe='')}"
        return self.get(path, {"verbose": "true"}).content

    def canvas_interactions(self, conversation_id: str) -> bytes:
        """The raw ``GET /v2/conversations/{id}/canvas/interactions`` answer (a 404 raises
        :class:`TavusApiError` with ``status`` 404: no canvas history)."""
        path = f"/v2/conversations/{quote(conversation_id, safe='')}/canvas/interactions"
        return self.get(path).content

    def list_objectives(self, *, limit: int | None = None) -> Iterator[dict]:
        """Every objective of the account: ``GET /v2/objectives?limit=&page=``, pages 1-based."""
        return self._pages("/v2/objectives", {}, first_page=1, limit=limit)

    def list_guardrails(self, *, limit: int | None = None) -> Iterator[dict]:
        """Every guardrail of the account, one object each:
        ``GET /v2/guardrails?legacy=false&limit=&page=``, pages **0-based** there."""
        return self._pages("/v2/guardrails", {"legacy": "false"}, first_page=0, limit=limit)

    def patch(self, collection: str, resource_id: str, operations: list[dict]) -> int:
        """``PATCH /v2/{collection}/{id}`` with a JSON Patch array (RFC 6902, sent as
        ``application/json``, as Tavus documents it for personas, objectives and guardrails);
        return the status (200, or 304 when Tavus made no change)."""
        path = f"/v2/{collection}/{quote(resource_id, safe='')}"
        return self.request("PATCH", path, json_body=operations).status_code


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _message(response: requests.Response) -> str:
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        for key in ("message", "error", "detail"):
            if isinstance(payload.get(key), str):
                return payload[key]
    text = response.text.strip().replace("\n", " ")
    return text[:200] or response.reason or "no details"


def _json(response: requests.Response, what: str) -> Any:
    value = _loads(response.content)
    if value is _NOT_JSON:
        raise TavusApiError(f"unexpected answer to {what}: not JSON")
    return value


_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")


def connection_error(exc: Exception) -> str:
    """Why a request could not be made, in a few words: "connection refused", "timed out"."""
    m = _ERRNO.search(str(exc))
    if m:
        return m.group(1).strip().lower()
    if isinstance(exc, requests.Timeout):
        return "timed out"
    return type(exc).__name__


@dataclass
class BackfillResult(ImportResult):
    """Counts of one backfill: conversations listed, selected (created since the date) and
    fetched, plus the import counts of their events; ``canvas`` the import counts of their canvas
    interactions, ``no_canvas`` the conversations whose canvas history answered 404 (an account
    or a conversation without canvas); ``failed`` holds ``(conversation_id, reason)`` of what
    Tavus refused with another 4xx."""

    listed: int = 0
    selected: int = 0
    fetched: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    canvas: ImportResult = field(default_factory=ImportResult)
    no_canvas: int = 0


def backfill(
    store: Store,
    client: TavusClient,
    *,
    since: datetime | str | None = None,
    progress: bool = False,
) -> BackfillResult:
    """Store the events and canvas interactions of every conversation created at or after
    ``since``.

    Lists all conversations (the API has no date filter), keeps those whose ``created_at`` is at
    or after ``since`` (all when ``since`` is None; a conversation without a readable
    ``created_at`` is kept), fetches the verbose detail of each and stores its events as
    callbacks, then its canvas interactions (see the module's notes), one transaction for each
    (so an interrupted backfill keeps what it finished, and running it again only adds what is
    missing). Objective completions and guardrail triggers have no history in Tavus's API:
    no backfill can recover them.

    Raises
    ------
    TavusApiError
        On a refused key (401), a refused listing, retries exhausted or an unreachable API. A
        conversation whose detail or canvas history is refused with a 4xx (other than 404 for
        the canvas history, counted in ``no_canvas``) is listed in ``failed`` instead.
    """
    since = parse_time(since)
    result = BackfillResult()
    conversations = list(client.list_conversations())
    result.listed = len(conversations)
    selected = []
    for conv in conversations:
        cid = conv.get("conversation_id")
        if not isinstance(cid, str) or not cid:
            continue
        created = _created_at(conv.get("created_at"))
        if since is None or created is None or created >= since:
            selected.append(cid)
    result.selected = len(selected)
    bar = progress_bar("backfilling", total=len(selected), enabled=progress)
    bar.unit = " conversations"
    try:
        for cid in selected:
            try:
                body = client.conversation(cid)
            except TavusApiError as e:
                if e.status in (None, 401, 429) or not 400 <= e.status < 500:
                    raise
                result.failed.append((cid, str(e)))
                bar.update(1)
                continue
            result.fetched += 1
            result.add(store_records(store, _response_events(body), user_agent=BACKFILL_USER_AGENT))
            _backfill_canvas(store, client, cid, result)
            bar.update(1)
    finally:
        bar.close()
    return result


def _backfill_canvas(store: Store, client: TavusClient, cid: str, result: BackfillResult) -> None:
    try:
        answer = client.canvas_interactions(cid)
    except TavusApiError as e:
        if e.status == 404:
            result.no_canvas += 1
            return
        if e.status in (None, 401, 429) or not 400 <= e.status < 500:
            raise
        result.failed.append((cid, str(e)))
        return
    try:
        records = canvas_records(answer, cid)
    except TavusApiError as e:
        result.failed.append((cid, str(e)))
        return
    result.canvas.add(store_records(store, records, user_agent=BACKFILL_USER_AGENT))


def canvas_records(body: bytes, conversation_id: str) -> list[Record]:
    """The canvas interactions of a ``GET /v2/conversations/{id}/canvas/interactions`` answer,
    as ``canvas.interaction`` callbacks (see the module's notes).

    Raises
    ------
    TavusApiError
        When the answer is not ``{"data": [...]}``.
    """
    what = "GET /v2/conversations/{id}/canvas/interactions"
    data = body.strip()
    obj = _loads(data)
    if not isinstance(obj, dict) or not isinstance(obj.get("data"), list):
        raise TavusApiError(f"unexpected answer to {what}: no 'data' list")
    text = data.decode("utf-8")
    member = _member_span(text, 0, "data")
    spans = _array_items(text, member[0])
    records = []
    for item, (_, start, end) in zip(obj["data"], spans, strict=True):
        raw = text[start:end].encode("utf-8")
        if not isinstance(item, dict):
            records.append(Record(raw))  # not an object: kept in rejected, as evidence
            continue
        props = item.get("properties")
        if item.get("event_type") == CANVAS_EVENT and isinstance(props, dict):
            body_bytes = _canvas_envelope(item, props, conversation_id, raw)
        else:
            props = item
            body_bytes = _compact(
                {
                    "message_type": "canvas",
                    "event_type": CANVAS_EVENT,
                    "conversation_id": conversation_id,
                    **_canvas_timestamp(item.get("created_at")),
                    "properties": item,
                }
            )
        interaction_id = props.get("interaction_id")
        key = (conversation_id, interaction_id) if isinstance(interaction_id, str) else None
        records.append(Record(body_bytes, interaction=key))
    return records


#: The event type of a canvas interaction callback.
CANVAS_EVENT = "canvas.interaction"


def _canvas_envelope(envelope: dict, props: dict, conversation_id: str, raw: bytes) -> bytes:
    """A whole callback from the history: its own bytes, or, when it lacks them, compact JSON
    with ``conversation_id`` and ``timestamp`` (from the interaction's ``created_at``) filled."""
    missing_id = not isinstance(envelope.get("conversation_id"), str)
    missing_ts = "timestamp" not in envelope
    if not (missing_id or missing_ts):
        return raw
    filled = dict(envelope)
    if missing_id:
        filled["conversation_id"] = conversation_id
    if missing_ts:
        filled.update(_canvas_timestamp(props.get("created_at")))
    return _compact(filled)


def _canvas_timestamp(created_at: Any) -> dict:
    """``{"timestamp": ...}`` from an interaction's ``created_at`` (no zone: UTC), as ISO 8601
    UTC with ``Z``; empty when there is no readable ``created_at``."""
    when = _created_at(created_at)
    if when is None:
        return {}
    return {"timestamp": when.isoformat(timespec="microseconds").replace("+00:00", "Z")}


def _compact(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def _response_events(body: bytes) -> list[Record]:
    data = body.strip()
    obj = _loads(data)
    if not is_conversation_response(obj):
        return []
    return conversation_events(obj, data.decode("utf-8"), 0)


def _created_at(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None
