"""What a Tavus callback is: parsing, kinds, event types and the fields worth indexing.

See ``TAVUS.md`` in the project's shared notes for every payload shape. Three families of
callback reach a ``callback_url``:

* conversation callbacks: an envelope with ``conversation_id``, ``event_type``,
  ``message_type``, ``timestamp`` and ``properties``;
* video generation callbacks: the flat video object (``video_id``, ``status``, ...);
* replica training callbacks: flat ``{"replica_id": ..., "status": ...}``.

Anything else that is a JSON object is kept as kind ``unknown``: Tavus adds event types without
notice, so nothing well-formed is refused.
"""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple

import orjson

from .errors import InvalidCallback

KIND_CONVERSATION = "conversation"
KIND_OBJECTIVE = "objective"
KIND_GUARDRAIL = "guardrail"
KIND_CANVAS = "canvas"
KIND_VIDEO = "video"
KIND_REPLICA_TRAINING = "replica_training"
KIND_UNKNOWN = "unknown"
KINDS = (
    KIND_CONVERSATION,
    KIND_OBJECTIVE,
    KIND_GUARDRAIL,
    KIND_CANVAS,
    KIND_VIDEO,
    KIND_REPLICA_TRAINING,
    KIND_UNKNOWN,
)
#: Kinds whose identical bodies are separate events: a guardrail posts the same body each time
#: it is triggered, so every delivery counts (``deliveries``); other kinds count once.
EVERY_DELIVERY_COUNTS = (KIND_GUARDRAIL,)

REPLICA_JOINED = "system.replica_joined"
PAL_JOINED = "system.pal_joined"
SHUTDOWN = "system.shutdown"
TRANSCRIPTION_READY = "application.transcription_ready"
RECORDING_READY = "application.recording_ready"
RECORDING_COPY_FAILED = "application.recording_copy_failed"
PERCEPTION_ANALYSIS = "application.perception_analysis"
PERCEPTION_UNAVAILABLE = "application.perception_unavailable"
POST_CALL_ACTION = "application.post_call_action_executed"
MEMORY_CONSOLIDATION = "application.memory_consolidation"
OBJECTIVE_COMPLETED = "conversation.objective.completed"
CANVAS_INTERACTION = "canvas.interaction"
#: What the objective evaluator sends for an output variable it could not extract: missing.
NOTFOUND = "NOTFOUND"
JOIN_EVENTS = (REPLICA_JOINED, PAL_JOINED)

#: Shutdown categories, in display order; ``other`` catches reasons Tavus adds later.
SHUTDOWN_CATEGORIES = (
    "max_duration",
    "participant_left",
    "participant_absent",
    "bot_could_not_join",
    "room_deleted",
    "startup_exception",
    "ended_by_api",
    "internal_error",
    "other",
)

#: What each category means for the call.
OUTCOMES = ("completed", "no_show", "failed", "unknown")
CATEGORY_OUTCOME = {
    "max_duration": "completed",
    "participant_left": "completed",
    "ended_by_api": "completed",
    "participant_absent": "no_show",
    "bot_could_not_join": "failed",
    "room_deleted": "failed",
    "startup_exception": "failed",
    "internal_error": "failed",
    "other": "unknown",
}

#: Documented shutdown reasons (without " reached") and their categories.
EXACT_REASONS = {
    "max_call_duration": "max_duration",
    "participant_left_timeout": "participant_left",
    "participant_absent_timeout": "participant_absent",
    "bot_could_not_join_meeting_it_was_probably_ended": "bot_could_not_join",
    "daily_room_has_been_deleted": "room_deleted",
    "exception_encountered_during_conversation_startup": "startup_exception",
    "end_conversation_endpoint_hit": "ended_by_api",
}
# -- the rule book: what counts for a conversation --------------------------------------------
# The loader (tavus_analytics.tables) and the SQL views (tavus_analytics.store.views) both follow
# these rules; a test compares conversations_view with ds.conversations cell by cell.

#: A callback's time is the sender's ``timestamp``, else its arrival (``received_at``). When a
#: conversation has several callbacks of one kind, this one counts: ``earliest`` is the
#: smallest time (times that cannot be read last), then the first to arrive; ``latest`` is the
#: largest time, then the last to arrive.
#:
#: * ``join``: the earliest ``system.replica_joined`` or ``system.pal_joined`` (Tavus sends
#:   both for one join) gives ``joined_at``;
#: * ``shutdown``: the earliest ``system.shutdown`` gives ``shutdown_at`` and the reason (a
#:   reason that is not text is no reason: the outcome is then ``unknown``);
#: * ``transcript``: the latest ``application.transcription_ready`` whose transcript is a list
#:   gives the turn counts (a transcript sent again, corrected, replaces the first).
#:
#: The replica is the one a join names (the smallest id when joins disagree), else the one any
#: callback of the conversation names. A perception analysis counts when its ``analysis`` is
#: text (``perception_unavailable`` does not), a recording when its ``properties`` is an object.
COUNTS = {"join": "earliest", "shutdown": "earliest", "transcript": "latest"}

#: What :func:`normalize_reason` trims from both ends of a reason.
REASON_WHITESPACE = " \t\n\r\x0b\x0c"
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_INTERNAL_ERROR = re.compile(r"^internal[ _]error[ _]occurred[ _]at[ _]step")
_INTERNAL_ERROR_STEP = re.compile(
    r"^internal[ _]error[ _]occurred[ _]at[ _]step[ _]*([0-9]{1,18})$"
)
_REACHED = (" reached", "_reached")


def normalize_reason(reason: str) -> str:
    """Lower-case (ASCII letters), trim (:data:`REASON_WHITESPACE`) and drop the " reached"
    (or ``_reached``) suffix Tavus adds to some reasons."""
    norm = reason.strip(REASON_WHITESPACE).translate(_ASCII_LOWER)
    if norm.endswith(_REACHED):
        norm = norm[: -len(" reached")].strip(REASON_WHITESPACE)
    return norm


def shutdown_category(reason: Any) -> str | None:
    """The category of a ``shutdown_reason`` (``None`` when there is no reason).

    >>> shutdown_category("participant_left_timeout reached")
    'participant_left'
    >>> shutdown_category("Internal error occurred at step 3")
    'internal_error'
    """
    if reason is None or not isinstance(reason, str):
        return None if reason is None else "other"
    norm = normalize_reason(reason)
    if norm in EXACT_REASONS:
        return EXACT_REASONS[norm]
    if _INTERNAL_ERROR.match(norm):
        return "internal_error"
    return "other"


def shutdown_error_step(reason: Any) -> int | None:
    """The N of ``internal error occurred at step N`` when N is a whole number, else ``None``."""
    if not isinstance(reason, str):
        return None
    m = _INTERNAL_ERROR_STEP.match(normalize_reason(reason))
    return int(m.group(1)) if m else None


class Fields(NamedTuple):
    """The fields the collector indexes beside the raw body."""

    kind: str
    event_type: str | None
    message_type: str | None
    conversation_id: str | None
    replica_id: str | None
    video_id: str | None
    status: str | None
    timestamp: str | None


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


_LONE_SURROGATE = (
    "body holds a lone UTF-16 surrogate escape (such as \\ud800 without its pair): "
    "not valid Unicode"
)
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def parse_body(body: bytes) -> dict:
    """Parse a raw callback body; raise :class:`InvalidCallback` saying why it is refused.

    Refused: an empty body, bytes that are not UTF-8, a byte order mark, text that is not JSON,
    nesting deeper than 1024 levels, a lone UTF-16 surrogate escape (``"\\ud800"`` unpaired:
    SQLite's JSON functions would turn it into invalid UTF-8 and break every later read of the
    row), and JSON that is not an object.
    """
    if not body or not body.strip():
        raise InvalidCallback("body is empty: send the callback as a JSON object")
    try:
        obj = orjson.loads(body)  # refuses lone surrogates and deep nesting itself
    except orjson.JSONDecodeError as first:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as e:
            raise InvalidCallback(f"body is not valid UTF-8: {e}") from None
        if text.startswith("\ufeff"):
            raise InvalidCallback(
                "body starts with a UTF-8 byte order mark: send plain JSON"
            ) from None
        reason = str(first)
        if "depth limit" in reason:
            raise InvalidCallback(
                "body is nested too deeply: at most 1024 levels of arrays and objects"
            ) from None
        if "surrogate" in reason:
            raise InvalidCallback(_LONE_SURROGATE) from None
        # orjson refuses a few inputs that are valid JSON (numbers beyond a double's range);
        # give the standard library the last word before refusing.
        try:
            obj = json.loads(text, parse_constant=_reject_constant)
        except (ValueError, RecursionError):
            raise InvalidCallback(f"body is not valid JSON: {first}") from None
        if _SURROGATE_ESCAPE.search(body) is not None:
            try:
                json.dumps(obj, ensure_ascii=False).encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidCallback(_LONE_SURROGATE) from None
    if not isinstance(obj, dict):
        raise InvalidCallback(
            f"body is JSON but not an object (got {_json_type(obj)}): a callback is a JSON object"
        )
    return obj


def _json_type(obj: Any) -> str:
    if isinstance(obj, list):
        return "an array"
    if isinstance(obj, str):
        return "a string"
    if isinstance(obj, bool):
        return "a boolean"
    if obj is None:
        return "null"
    return "a number"


def scalar_text(value: Any) -> str | None:
    """A JSON scalar as text (for index columns and tables); objects, arrays and null give
    ``None``."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return None


def objective_shape(obj: dict) -> str | None:
    """``"nested"`` or ``"flat"`` for an objective completion, else ``None``.

    Nested (seen in real traffic): ``event_type`` ``conversation.objective.completed`` and the
    objective in ``properties``; flat (documented): ``objective_name`` and
    ``output_variables`` beside ``conversation_id``, no ``event_type``.
    """
    event_type = obj.get("event_type")
    if event_type == OBJECTIVE_COMPLETED:
        return "nested"
    if event_type is None and "objective_name" in obj and "conversation_id" in obj:
        return "flat"
    return None


def is_guardrail(obj: dict) -> bool:
    """A guardrail trigger: ``conversation_id`` and ``properties`` naming a guardrail
    (``guardrail``, ``guardrail_uuid``) and no ``event_type``; or an event type that names a
    guardrail (the in-call app message, forwarded)."""
    event_type = obj.get("event_type")
    if isinstance(event_type, str):
        return "guardrail" in event_type.lower() and "conversation_id" in obj
    props = obj.get("properties")
    return (
        event_type is None
        and "conversation_id" in obj
        and isinstance(props, dict)
        and ("guardrail" in props or "guardrail_uuid" in props)
    )


def classify(obj: dict) -> Fields:
    """Decide the kind of a parsed callback, by its shape, and pull out its index fields.

    In this order: an objective completion (:func:`objective_shape`), a guardrail trigger
    (:func:`is_guardrail`), a canvas interaction (``event_type`` ``canvas.interaction`` or
    ``message_type`` ``canvas``, with ``conversation_id``); a body with ``event_type`` and
    ``conversation_id`` is a conversation callback; one with ``video_id`` and ``status`` a video
    callback (tested first: it carries ``replica_id`` too); one with ``replica_id`` and
    ``status`` and no ``event_type`` a replica training callback; anything else ``unknown``.
    """
    get = obj.get
    props = get("properties")
    props = props if isinstance(props, dict) else {}
    event_type = scalar_text(get("event_type"))
    conversation_id = scalar_text(get("conversation_id"))
    video_id = scalar_text(get("video_id"))
    status = scalar_text(get("status"))
    replica_id = scalar_text(get("replica_id"))
    if conversation_id is not None and objective_shape(obj) is not None:
        kind = KIND_OBJECTIVE
    elif conversation_id is not None and is_guardrail(obj):
        kind = KIND_GUARDRAIL
    elif conversation_id is not None and (
        event_type == CANVAS_INTERACTION or get("message_type") == "canvas"
    ):
        kind = KIND_CANVAS
    elif event_type is not None and conversation_id is not None:
        kind = KIND_CONVERSATION
        replica_id = replica_id or scalar_text(props.get("replica_id"))
    elif video_id is not None and status is not None:
        kind = KIND_VIDEO
    elif replica_id is not None and status is not None and "event_type" not in obj:
        kind = KIND_REPLICA_TRAINING
    else:
        kind = KIND_UNKNOWN
    timestamp = get("timestamp")
    if timestamp is None and kind == KIND_VIDEO:
        timestamp = get("updated_at")
    return Fields(
        kind=kind,
        event_type=event_type,
        message_type=scalar_text(get("message_type")),
        conversation_id=conversation_id,
        replica_id=replica_id,
        video_id=video_id,
        status=status,
        timestamp=scalar_text(timestamp),
    )


# -- reading stored bodies ----------------------------------------------------------------------
def loads(body: Any) -> Any:
    """Parse a stored body (orjson, then the standard library for what orjson refuses)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body.decode("utf-8", "surrogatepass") if isinstance(body, bytes) else body
        return json.loads(text)


def content_text(content: Any) -> str | None:
    """The text of a message's ``content``: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            p["text"] if isinstance(p, dict) and isinstance(p.get("text"), str) else p
            for p in content
        ]
        if all(isinstance(p, str) for p in parts):
            return "\n".join(parts)
    return None


def number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def json_text(value: Any) -> str | None:
    if value is None:
        return None
    return orjson.dumps(value).decode() if not isinstance(value, str) else value


# -- perception analyses ------------------------------------------------------------------------

# Bold Markdown spans are the section headers, as in Tavus's own example app
# ("**User Appearance**", "**Emotional States & Patterns:**").
_HEADER = re.compile(r"\*\*(?P<title>[^*\n]{1,200}?)\*\*[ \t]*:?")

_MARKERS = re.compile(r"(?:^|\n)[ \t]*(?:[-*+]|\d+[.)]|#{1,6})?[ \t]*$")

_SECTION_NAMES = (
    ("appearance", "appearance"),
    ("behavio", "behavior"),
    ("emotion", "emotions"),
    ("screen", "screen_activity"),
)


def split_sections(analysis: str) -> dict[str, str]:
    """Split a perception analysis on its bold headers: ``{header: text}`` in order.

    The text before the first header is kept under ``""`` (Tavus's "Here's a summary of the
    visual observations..." preamble).
    """
    sections: dict[str, str] = {}
    matches = list(_HEADER.finditer(analysis))
    pre = _MARKERS.sub("", analysis[: matches[0].start()]) if matches else analysis
    if pre.strip():
        sections[""] = pre.strip()
    for i, m in enumerate(matches):
        title = m.group("title").strip().rstrip(":").strip()
        end = matches[i + 1].start() if i + 1 < len(matches) else len(analysis)
        # Drop the list marker or heading mark that introduces the next header.
        text = _MARKERS.sub("", analysis[m.end() : end]).strip()
        if title in sections:
            sections[title] = (sections[title] + "\n" + text).strip()
        else:
            sections[title] = text
    return sections


def standard_sections(sections: dict[str, str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {name: None for _, name in _SECTION_NAMES}
    for title, text in sections.items():
        low = title.lower()
        for needle, name in _SECTION_NAMES:
            if needle in low and out[name] is None:
                out[name] = text
                break
    return out


# -- transcripts --------------------------------------------------------------------------------
_PERCEPTION_MARKER = re.compile(r"\b(USER_SPEECH|VISUAL_SCENE):")


def spoken_text(content: Any) -> Any:
    """What was said in a turn: raven-0-era user turns embed what perception saw
    (``"USER_SPEECH: Yes please. VISUAL_SCENE: The image shows ..."``); keep the speech, drop
    the scene. Text without these markers (and anything that is not text) is returned as is.

    >>> spoken_text("USER_SPEECH: Yeah I'd love to hear it. VISUAL_SCENE: The image shows a desk.")
    "Yeah I'd love to hear it."
    """
    if type(content) is not str or (
        "USER_SPEECH:" not in content and "VISUAL_SCENE:" not in content
    ):
        return content
    parts = _PERCEPTION_MARKER.split(content)  # [before, marker, text, marker, text, ...]
    kept = [parts[0]] + [parts[i + 1] for i in range(1, len(parts), 2) if parts[i] == "USER_SPEECH"]
    return " ".join(p.strip() for p in kept if p.strip())


def output_value(value: Any) -> tuple[str | None, str]:
    """An objective's output variable as text, and what it was: ``notfound`` (the evaluator's
    ``"NOTFOUND"``: missing, never a value), ``null``, ``string``, ``number``, ``boolean``,
    ``list`` or ``object`` (kept as JSON text)."""
    if value is None:
        return None, "null"
    if isinstance(value, str):
        return (None, "notfound") if value.strip() == NOTFOUND else (value, "string")
    if isinstance(value, bool):
        return ("true" if value else "false"), "boolean"
    if isinstance(value, (int, float)):
        return str(value), "number"
    kind = "list" if isinstance(value, list) else "object"
    return orjson.dumps(value).decode(), kind


def valid_utf8(value: Any) -> Any:
    """Text as valid UTF-8 (anything that is not text as it is).

    JSON may escape a lone UTF-16 surrogate (``"\\ud800"``); the parsed string then cannot be
    encoded to UTF-8 for the database. The raw body keeps the escape; the index copy gets U+FFFD.
    """
    if type(value) is not str or value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in value)
    return value
