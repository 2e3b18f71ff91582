"""The table builders: raw callbacks, read through a store's reader, to typed pandas frames.

One function per table (:func:`read_conversations`, :func:`read_turns`, ...), each reading only
what it needs through a :class:`~tavus_analytics.store.base.ReaderInterface` (the queries are in
:mod:`tavus_analytics.store.queries`; the builders never know the engine) and applying the rules
of :mod:`tavus_analytics.events` (which shutdown, which transcript, which replica count for a
conversation). What cannot be interpreted is left out and returned as problem rows; a load never
fails because of one row. :data:`TABLES` lists every table's columns and dtypes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from . import events as ev
from . import frames as fr
from .frames import STR, TIME, count_words, parse_times
from .store import queries as q
from .store.base import ReaderInterface

SHUTDOWN_CATEGORY_DTYPE = pd.CategoricalDtype(list(ev.SHUTDOWN_CATEGORIES))

OUTCOME_DTYPE = pd.CategoricalDtype(list(ev.OUTCOMES))

STATUS_DTYPE = pd.CategoricalDtype(["complete", "in_progress", "incomplete"])

# -- table schemas (column -> dtype); the column names are part of the public API ---------------
_EVENTS = {
    "id": "int64",
    "received_at": TIME,
    "kind": STR,
    "event_type": STR,
    "message_type": STR,
    "conversation_id": STR,
    "replica_id": STR,
    "video_id": STR,
    "status": STR,
    "timestamp": TIME,
}
_CONVERSATIONS = {
    "conversation_id": STR,
    "replica_id": STR,
    "joined_at": TIME,
    "shutdown_at": TIME,
    "duration_s": "float64",
    "shutdown_reason": STR,
    "shutdown_category": SHUTDOWN_CATEGORY_DTYPE,
    "outcome": OUTCOME_DTYPE,
    "shutdown_error_step": "Int64",
    "status": STATUS_DTYPE,
    "has_transcript": "boolean",
    "has_recording": "boolean",
    "has_perception": "boolean",
    "user_turns": "Int64",
    "assistant_turns": "Int64",
    "user_words": "Int64",
    "assistant_words": "Int64",
    "system_prompt": "category",
    "recording_s3_key": STR,
    "first_seen": TIME,
    "last_seen": TIME,
}
_TURNS = {
    "conversation_id": STR,
    "turn": "int64",
    "role": STR,
    "content": STR,
    "words": "int64",
    "chars": "int64",
    "timestamp": TIME,
    "seconds_from_start": "float64",
    "duration": "float64",
    "inference_id": STR,
    "tool_call_id": STR,
    "tool_calls": STR,
}
_PERCEPTION = {
    "conversation_id": STR,
    "timestamp": TIME,
    "available": "boolean",
    "reason": STR,
    "analysis": STR,
    "words": "Int64",
    "appearance": STR,
    "behavior": STR,
    "emotions": STR,
    "screen_activity": STR,
    "sections": object,
}
_RECORDINGS = {
    "conversation_id": STR,
    "timestamp": TIME,
    "bucket_name": STR,
    "s3_key": STR,
    "duration": "float64",
    "storage_provider": STR,
    "storage_uri": STR,
    "uri": STR,
}
_REPLICAS = {
    "replica_id": STR,
    "status": STR,
    "received_at": TIME,
    "error_message": STR,
}
_VIDEOS = {
    "video_id": STR,
    "replica_id": STR,
    "video_name": STR,
    "status": STR,
    "status_details": STR,
    "created_at": TIME,
    "updated_at": TIME,
    "generation_s": "float64",
    "generation_progress": STR,
    "script": STR,
    "download_url": STR,
    "hosted_url": STR,
    "stream_url": STR,
    "error_details": STR,
    "callbacks": "int64",
}
_POST_CALL_ACTIONS = {
    "conversation_id": STR,
    "timestamp": TIME,
    "tool_id": STR,
    "tool_name": STR,
    "status": STR,
    "request": object,
    "request_body": object,
    "response": object,
}
_OTHER_EVENTS = {
    "conversation_id": STR,
    "event_type": STR,
    "timestamp": TIME,
    "properties": object,
}
_PROBLEMS = {
    "callback_id": "Int64",
    "conversation_id": STR,
    "event_type": STR,
    "table": STR,
    "problem": STR,
}
#: Every table of a :class:`Dataset` and its columns with their dtypes.
TABLES: dict[str, dict[str, Any]] = {
    "events": _EVENTS,
    "conversations": _CONVERSATIONS,
    "turns": _TURNS,
    "perception": _PERCEPTION,
    "recordings": _RECORDINGS,
    "replicas": _REPLICAS,
    "videos": _VIDEOS,
    "post_call_actions": _POST_CALL_ACTIONS,
    "other_events": _OTHER_EVENTS,
    "problems": _PROBLEMS,
}

#: Conversation event types that have a table of their own (everything else is ``other_events``).
_TABULATED = (
    ev.REPLICA_JOINED,
    ev.PAL_JOINED,
    ev.SHUTDOWN,
    ev.TRANSCRIPTION_READY,
    ev.RECORDING_READY,
    ev.PERCEPTION_ANALYSIS,
    ev.PERCEPTION_UNAVAILABLE,
    ev.POST_CALL_ACTION,
)


class Problems:
    """Collects what a table builder skipped, and why."""

    def __init__(self, table: str) -> None:
        self.table = table
        self.rows: list[tuple] = []

    def add(self, callback_id, conversation_id, event_type, problem: str) -> None:
        self.rows.append((callback_id, conversation_id, event_type, self.table, problem))


# -- table builders ------------------------------------------------------------------------------
def read_events(reader: ReaderInterface) -> pd.DataFrame:
    cols = [c for c in _EVENTS]
    rows = reader.query(q.events(cols), (reader.max_id,))
    data = dict(zip(cols, map(list, zip(*rows, strict=True)), strict=True)) if rows else {}
    return fr.frame(_EVENTS, data)


_JSON_PROBLEM = "body is not JSON that the database's JSON functions can read: skipped"


def _sql_side(reader: ReaderInterface) -> dict[str, list[np.ndarray]]:
    """Every SQL query ``conversations`` needs, as columns; run in a thread beside the
    transcript pass (the database works with Python's GIL released, so the two use two cores)."""
    kind, top = ev.KIND_CONVERSATION, reader.max_id
    queries = {
        "calls": (q.CONVERSATIONS, (*ev.JOIN_EVENTS, kind, top), 6),
        "shutdowns": (q.SHUTDOWNS, (ev.SHUTDOWN, kind, top), 5),
        "recordings": (q.RECORDINGS, (ev.RECORDING_READY, kind, top), 7),
        "perception": (q.PERCEPTION_TYPES, (ev.PERCEPTION_ANALYSIS, kind, top), 3),
    }
    out = {}
    with reader.connect() as conn:
        for name, (sql, params, width) in queries.items():
            out[name] = fr.columns_of(reader.query(sql, params, conn), width)
    return out


def read_conversations(reader: ReaderInterface) -> tuple[pd.DataFrame, list[tuple]]:
    problems = Problems("conversations")
    with ThreadPoolExecutor(max_workers=1) as pool:
        sql = pool.submit(_sql_side, reader)
        transcripts = _transcript_counts(reader, problems)
        found = sql.result()
    if not len(found["calls"][0]):
        return fr.frame(_CONVERSATIONS), problems.rows
    cid, replica, jmin, mixed, first, last = found["calls"]
    n = len(cid)
    index = pd.Index(cid, dtype=object)  # one row per conversation (GROUP BY)

    # The earliest join: the text minimum is the time minimum when every join timestamp of the
    # call has the same shape (one sender, one format); otherwise compare parsed times.
    joined_at = parse_times(jmin).copy()  # assigned into below (a view on pandas 2)
    mixed = mixed == 1
    if mixed.any():
        ids = cid[mixed].tolist()
        jc, jt = fr.columns_of(
            reader.query(
                q.joins_of(ids),
                (*ev.JOIN_EVENTS, ev.KIND_CONVERSATION, reader.max_id, *ids),
            ),
            2,
        )
        earliest = parse_times(jt).groupby(jc).min()
        joined_at[mixed] = earliest.reindex(cid[mixed]).to_numpy()
    has_join = ~pd.isna(jmin)
    for i in np.flatnonzero(has_join & joined_at.isna().to_numpy()):
        problems.add(None, cid[i], ev.REPLICA_JOINED, "join timestamp is not a time: join unknown")

    # Shutdown: the earliest shutdown of each call, with its reason (narrow SQL extraction).
    s_id, s_cid, s_time, s_type, s_reason = found["shutdowns"]
    s_at = parse_times(s_time)
    readable = s_type == "text"
    for i in np.flatnonzero(~readable | s_at.isna().to_numpy()):
        what = {
            "invalid": _JSON_PROBLEM,
            "properties": "properties is not an object",
            None: "no shutdown_reason",
            "text": "timestamp is not a time",
        }.get(s_type[i], "shutdown_reason is not text")
        problems.add(s_id[i], s_cid[i], ev.SHUTDOWN, what)
    s_reason = np.where(readable, s_reason, None)
    s_pos = index.get_indexer(s_cid)
    per_call = np.bincount(s_pos, minlength=n) if len(s_pos) else np.zeros(n, dtype=np.int64)
    for i in np.flatnonzero(per_call > 1):
        problems.add(
            None, cid[i], ev.SHUTDOWN, f"{per_call[i]} shutdown callbacks: the earliest is used"
        )
    firsts = fr.first_per_group(s_pos, fr.time_key(s_at), s_id.astype(np.int64))
    has_shutdown = per_call > 0
    shutdown_ns = np.full(n, fr.NAT, dtype=np.int64)
    shutdown_ns[s_pos[firsts]] = fr.ns(s_at)[firsts]
    joined_ns = fr.ns(joined_at)
    timed = (shutdown_ns != fr.NAT) & (joined_ns != fr.NAT)
    duration = np.full(n, np.nan)
    duration[timed] = (shutdown_ns[timed] - joined_ns[timed]) / 1e9
    reasons = np.full(n, None, dtype=object)
    reasons[s_pos[firsts]] = s_reason[firsts]

    status = np.where(
        has_join & has_shutdown, "complete", np.where(has_join, "in_progress", "incomplete")
    )
    columns: dict[str, Any] = {
        "conversation_id": cid,
        "replica_id": replica,
        "joined_at": joined_at,
        "shutdown_at": shutdown_ns.view("datetime64[ns]"),
        "duration_s": duration,
        "shutdown_reason": reasons,
        "status": status,
        "first_seen": first,
        "last_seen": last,
    }
    columns.update(_categorise(reasons, has_shutdown))

    # Transcripts (counted by the pass above): scatter into one row per call.
    t_pos = index.get_indexer(transcripts["conversation_id"])
    has_transcript = np.zeros(n, dtype=bool)
    has_transcript[t_pos] = True
    columns["has_transcript"] = has_transcript
    for name in ("user_turns", "assistant_turns", "user_words", "assistant_words"):
        values = np.zeros(n, dtype=np.int64)
        values[t_pos] = transcripts[name]
        columns[name] = pd.arrays.IntegerArray(values, ~has_transcript)
    codes = np.full(n, -1, dtype=np.int64)
    codes[t_pos] = transcripts["prompt_code"]
    columns["system_prompt"] = pd.Categorical.from_codes(
        codes, dtype=pd.CategoricalDtype(pd.Index(transcripts["prompts"], dtype=object))
    )

    # Recordings: the S3 key of the latest recording of each call.
    r_id, r_cid, r_time, r_valid, r_ptype, r_type, r_key = found["recordings"]
    for i in np.flatnonzero(r_valid != 1):
        problems.add(r_id[i], r_cid[i], ev.RECORDING_READY, _JSON_PROBLEM)
    r_pos = index.get_indexer(r_cid)
    has_recording = np.zeros(n, dtype=bool)
    has_recording[r_pos[r_ptype == "object"]] = True
    keyed = np.flatnonzero(r_type == "text")
    latest = keyed[
        fr.first_per_group(
            r_pos[keyed],
            -fr.time_key(parse_times(r_time[keyed]), missing_last=False),
            -r_id[keyed].astype(np.int64),
        )
    ]
    s3_key = np.full(n, None, dtype=object)
    s3_key[r_pos[latest]] = r_key[latest]
    columns["has_recording"] = has_recording
    columns["recording_s3_key"] = s3_key

    # Perception: an analysis that is text (perception_unavailable does not count).
    p_id, p_cid, p_type = found["perception"]
    for i in np.flatnonzero(p_type == "invalid"):
        problems.add(p_id[i], p_cid[i], ev.PERCEPTION_ANALYSIS, _JSON_PROBLEM)
    has_perception = np.zeros(n, dtype=bool)
    has_perception[index.get_indexer(p_cid[p_type == "text"])] = True
    columns["has_perception"] = has_perception
    return fr.frame(_CONVERSATIONS, columns), problems.rows


def _categorise(reasons: np.ndarray, has_shutdown: np.ndarray) -> dict[str, Any]:
    """shutdown_category, outcome and shutdown_error_step, computed once per distinct reason."""
    codes, unique = pd.factorize(reasons)  # few distinct reasons; -1: none
    category = [ev.shutdown_category(r) for r in unique]
    steps = [ev.shutdown_error_step(r) for r in unique]
    outcome = [ev.CATEGORY_OUTCOME[c] for c in category]
    # A call that ended without a reason we can read ended for an unknown reason.
    none_outcome = np.where(has_shutdown, "unknown", None)

    def take(per_reason: list, missing: Any) -> np.ndarray:
        values = np.empty(len(per_reason) + 1, dtype=object)
        values[:-1] = per_reason
        values[-1] = None
        out = values[codes]  # code -1 picks the last slot: None
        if missing is not None:
            out[codes == -1] = missing[codes == -1]
        return out

    return {
        "shutdown_category": pd.Categorical(take(category, None), dtype=SHUTDOWN_CATEGORY_DTYPE),
        "outcome": pd.Categorical(take(outcome, none_outcome), dtype=OUTCOME_DTYPE),
        "shutdown_error_step": pd.array(take(steps, None), dtype="Int64"),
    }


def _transcript_rows(reader: ReaderInterface) -> Iterator[list[tuple]]:
    return reader.stream(
        q.TRANSCRIPTS,
        (ev.TRANSCRIPTION_READY, ev.KIND_CONVERSATION, reader.max_id),
    )


def _transcript_of(body: bytes, problems: Problems, cid: Any, cb_id: int) -> list | None:
    """The transcript list of a transcription_ready body, or ``None`` (and a problem)."""
    try:
        obj = ev.loads(body)
    except (ValueError, RecursionError):
        problems.add(cb_id, cid, ev.TRANSCRIPTION_READY, "body is not JSON: skipped")
        return None
    props = obj.get("properties") if isinstance(obj, dict) else None
    if not isinstance(props, dict):
        problems.add(cb_id, cid, ev.TRANSCRIPTION_READY, "properties is not an object: skipped")
        return None
    transcript = props.get("transcript")
    if not isinstance(transcript, list):
        problems.add(cb_id, cid, ev.TRANSCRIPTION_READY, "transcript is not a list: skipped")
        return None
    return transcript


def _winners(ids: list, cids: list, times: list, problems: Problems) -> np.ndarray:
    """Which transcripts count: the latest (sender's time, then arrival) per conversation."""
    keep = np.ones(len(ids), dtype=bool)
    dup = pd.Index(cids, dtype=object).duplicated(keep=False)
    if dup.any():
        frame = pd.DataFrame(
            {
                "id": ids,
                "conversation_id": pd.Series(cids, dtype=object),
                "time": parse_times(times).array,
            }
        )
        latest = set(fr.latest(frame[dup], "conversation_id", "time")["id"])
        for i in np.flatnonzero(dup):
            cb_id = frame.at[i, "id"]
            if cb_id not in latest:
                keep[i] = False
                problems.add(
                    int(cb_id),
                    frame.at[i, "conversation_id"],
                    ev.TRANSCRIPTION_READY,
                    "a later transcription_ready for the same conversation replaces this one",
                )
    return keep


def _transcript_counts(reader: ReaderInterface, problems: Problems) -> dict[str, Any]:
    """Turn and word counts and the system prompt of the transcript that counts for each call.

    Returns a dict of equal-length arrays (``conversation_id``, ``user_turns``,
    ``assistant_turns``, ``user_words``, ``assistant_words``, ``prompt_code``) and ``prompts``,
    the distinct system prompts that ``prompt_code`` indexes (-1: none).
    """
    # (callback id, conversation id, time, user turns, assistant turns, prompt code) each
    meta: list[tuple] = []
    prompts: dict[str, int] = {}  # system prompts repeat across calls: keep each once
    words: list[np.ndarray] = []
    for rows in _transcript_rows(reader):
        texts: list[str] = []
        for cb_id, cid, ts, body in rows:
            transcript = _transcript_of(body, problems, cid, cb_id)
            if transcript is None:
                continue
            try:  # the common case, in comprehensions: every message is an object
                roles = [m.get("role") for m in transcript]
                messages = transcript
            except AttributeError:
                messages = [m for m in transcript if type(m) is dict]
                roles = [m.get("role") for m in messages]
                problems.add(
                    cb_id,
                    cid,
                    ev.TRANSCRIPTION_READY,
                    f"{len(transcript) - len(messages)} transcript messages are not objects: "
                    "skipped",
                )
            user = [m.get("content") for m, r in zip(messages, roles, strict=True) if r == "user"]
            assistant = [
                m.get("content") for m, r in zip(messages, roles, strict=True) if r == "assistant"
            ]
            code = -1
            if "system" in roles:
                prompt = messages[roles.index("system")].get("content")
                if type(prompt) is not str:
                    prompt = ev.content_text(prompt)
                if prompt is not None:
                    code = prompts.setdefault(prompt, len(prompts))
            meta.append((cb_id, cid, ts, len(user), len(assistant), code))
            texts.append(_joined_text(user))
            texts.append(_joined_text(assistant))
        words.append(count_words(texts))
    counts = np.concatenate(words) if words else np.zeros(0, dtype=np.int64)
    ids, cids, times, user_turns, assistant_turns, codes = (
        map(list, zip(*meta, strict=True)) if meta else ([] for _ in range(6))
    )
    keep = _winners(ids, cids, times, problems)
    cid_arr = np.empty(len(cids), dtype=object)
    cid_arr[:] = cids
    return {
        "conversation_id": cid_arr[keep],
        "user_turns": np.asarray(user_turns, dtype=np.int64)[keep],
        "assistant_turns": np.asarray(assistant_turns, dtype=np.int64)[keep],
        "user_words": counts[0::2][keep],
        "assistant_words": counts[1::2][keep],
        "prompt_code": np.asarray(codes, dtype=np.int64)[keep],
        "prompts": list(prompts),
    }


def _joined_text(contents: list) -> str:
    """The text of messages' contents, joined by spaces (which adds no word)."""
    try:
        return " ".join(contents)
    except TypeError:  # some content is null, a list of parts or something else
        texts = (c if type(c) is str else ev.content_text(c) for c in contents)
        return " ".join(t for t in texts if t)


def read_turns(reader: ReaderInterface) -> pd.DataFrame:
    scratch = Problems("turns")  # the same problems are reported by ds.conversations
    meta: list[tuple] = []  # (callback id, conversation id, time, messages) per transcript
    roles: list[Any] = []
    contents: list[str | None] = []
    extra: dict[str, list] = {name: [] for name in _EXTRA_FIELDS}
    words: list[np.ndarray] = []
    chars: list[np.ndarray] = []
    arrow: list[Any] = []  # content as Arrow arrays, when text columns are Arrow-backed
    for rows in _transcript_rows(reader):
        chunk: list[Any] = []
        for cb_id, cid, ts, body in rows:
            transcript = _transcript_of(body, scratch, cid, cb_id)
            if transcript is None:
                continue
            try:  # the common case, in comprehensions: every message is an object
                roles.extend([m.get("role") for m in transcript])
                messages = transcript
            except AttributeError:
                messages = [m for m in transcript if type(m) is dict]
                roles.extend([m.get("role") for m in messages])
            meta.append((cb_id, cid, ts, len(messages)))
            chunk.extend([m.get("content") for m in messages])
            if messages and max(map(len, messages)) > 2:  # newer payloads: per-message fields
                for name in _EXTRA_FIELDS:
                    extra[name].extend([m.get(name) for m in messages])
            else:
                nones = [None] * len(messages)
                for name in _EXTRA_FIELDS:
                    extra[name].extend(nones)
        for i in [i for i, c in enumerate(chunk) if type(c) is not str]:
            chunk[i] = ev.content_text(chunk[i])
        texts = [c if c is not None else "" for c in chunk]
        words.append(count_words(texts))
        chars.append(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)))
        if fr.ARROW_STR:  # keep the text in Arrow, chunk by chunk, not twice at the end
            arrow.append(fr.pa.array(chunk, type=fr.pa.large_string(), from_pandas=True))
        else:
            contents.extend(chunk)
    if not meta:
        return fr.frame(_TURNS)
    ids, cids, times, counts = (list(c) for c in zip(*meta, strict=True))
    counts_arr = np.asarray(counts, dtype=np.int64)
    keep = np.repeat(_winners(ids, cids, times, scratch), counts_arr)
    total = int(counts_arr.sum())
    starts = np.repeat(np.cumsum(counts_arr) - counts_arr, counts_arr)
    cid_arr = np.empty(len(cids), dtype=object)
    cid_arr[:] = cids
    for i in [i for i, r in enumerate(roles) if type(r) is not str]:
        roles[i] = ev.scalar_text(roles[i])
    col: dict[str, Any] = {
        "conversation_id": np.repeat(cid_arr, counts_arr),
        "turn": np.arange(total, dtype=np.int64) - starts,
        "role": roles,
        "content": fr.pa.chunked_array(arrow, type=fr.pa.large_string())
        if fr.ARROW_STR
        else contents,
        "words": np.concatenate(words),
        "chars": np.concatenate(chars),
        "timestamp": extra["timestamp"],
        "seconds_from_start": fr.convert(extra["seconds_from_start"], ev.number),
        "duration": fr.convert(extra["duration"], ev.number),
        "inference_id": fr.convert(extra["inference_id"], ev.scalar_text),
        "tool_call_id": fr.convert(extra["tool_call_id"], ev.scalar_text),
        "tool_calls": fr.convert(extra["tool_calls"], ev.json_text),
    }
    del roles, contents, extra
    if not keep.all():
        col = {k: fr.keep(v, keep) for k, v in col.items()}
    return fr.frame(_TURNS, col)


_EXTRA_FIELDS = (
    "timestamp",
    "seconds_from_start",
    "duration",
    "inference_id",
    "tool_call_id",
    "tool_calls",
)


def _bodies(reader: ReaderInterface, where: str, params: Sequence) -> Iterator[tuple]:
    """(id, conversation_id, event_type, time, received_at, parsed body or exception)."""
    for rows in reader.stream(q.bodies(where), (*params, reader.max_id)):
        for cb_id, cid, et, ts, received, body in rows:
            try:
                obj: Any = ev.loads(body)
            except (ValueError, RecursionError) as e:
                obj = e
            yield cb_id, cid, et, ts, received, obj


def _props(obj: Any, problems: Problems, cb_id, cid, et) -> dict | None:
    if isinstance(obj, Exception):
        problems.add(cb_id, cid, et, "body is not JSON: skipped")
        return None
    props = obj.get("properties") if isinstance(obj, dict) else None
    if not isinstance(props, dict):
        problems.add(cb_id, cid, et, "properties is not an object: skipped")
        return None
    return props


def read_perception(reader: ReaderInterface) -> tuple[pd.DataFrame, list[tuple]]:
    problems = Problems("perception")
    rows: list[dict] = []
    types = (ev.PERCEPTION_ANALYSIS, ev.PERCEPTION_UNAVAILABLE)
    for cb_id, cid, et, ts, _, obj in _bodies(
        reader,
        f"kind = ? AND event_type IN ({q.placeholders(types)})",
        (ev.KIND_CONVERSATION, *types),
    ):
        props = _props(obj, problems, cb_id, cid, et)
        if props is None:
            continue
        if et == ev.PERCEPTION_UNAVAILABLE:
            rows.append(
                {
                    "conversation_id": cid,
                    "timestamp": ts,
                    "available": False,
                    "reason": ev.scalar_text(props.get("reason")),
                }
            )
            continue
        analysis = props.get("analysis")
        if not isinstance(analysis, str):
            problems.add(cb_id, cid, et, "analysis is not text: skipped")
            continue
        sections = ev.split_sections(analysis)
        rows.append(
            {
                "conversation_id": cid,
                "timestamp": ts,
                "available": True,
                "analysis": analysis,
                "sections": sections,
                **ev.standard_sections(sections),
            }
        )
    if not rows:
        return fr.frame(_PERCEPTION), problems.rows
    data = {k: [r.get(k) for r in rows] for k in _PERCEPTION}
    analyses = [a for a in data["analysis"] if a is not None]
    counted = iter(count_words(analyses))
    data["words"] = [next(counted) if a is not None else None for a in data["analysis"]]
    return fr.frame(_PERCEPTION, data), problems.rows


def read_recordings(reader: ReaderInterface) -> tuple[pd.DataFrame, list[tuple]]:
    problems = Problems("recordings")
    rows = []
    for cb_id, cid, et, ts, _, obj in _bodies(
        reader, "kind = ? AND event_type = ?", (ev.KIND_CONVERSATION, ev.RECORDING_READY)
    ):
        props = _props(obj, problems, cb_id, cid, et)
        if props is None:
            continue
        bucket = ev.scalar_text(props.get("bucket_name"))
        key = ev.scalar_text(props.get("s3_key"))
        uri = ev.scalar_text(props.get("storage_uri"))
        if uri is None and key is not None:
            uri = f"s3://{bucket}/{key}" if bucket else key
        rows.append(
            {
                "conversation_id": cid,
                "timestamp": ts,
                "bucket_name": bucket,
                "s3_key": key,
                "duration": ev.number(props.get("duration")),
                "storage_provider": ev.scalar_text(props.get("storage_provider")),
                "storage_uri": ev.scalar_text(props.get("storage_uri")),
                "uri": uri,
            }
        )
    data = {k: [r[k] for r in rows] for k in _RECORDINGS} if rows else None
    return fr.frame(_RECORDINGS, data), problems.rows


def read_post_call_actions(reader: ReaderInterface) -> tuple[pd.DataFrame, list[tuple]]:
    problems = Problems("post_call_actions")
    rows = []
    for cb_id, cid, et, ts, _, obj in _bodies(
        reader, "kind = ? AND event_type = ?", (ev.KIND_CONVERSATION, ev.POST_CALL_ACTION)
    ):
        props = _props(obj, problems, cb_id, cid, et)
        if props is None:
            continue
        request = props.get("request")
        body = request.get("body") if isinstance(request, dict) else None
        if isinstance(body, str):
            # A string body that is not JSON stays a string.
            with contextlib.suppress(ValueError, RecursionError):
                body = ev.loads(body)
        rows.append(
            {
                "conversation_id": cid,
                "timestamp": ts,
                "tool_id": ev.scalar_text(props.get("tool_id")),
                "tool_name": ev.scalar_text(props.get("tool_name")),
                "status": ev.scalar_text(props.get("status")),
                "request": request,
                "request_body": body,
                "response": props.get("response"),
            }
        )
    data = {k: [r[k] for r in rows] for k in _POST_CALL_ACTIONS} if rows else None
    return fr.frame(_POST_CALL_ACTIONS, data), problems.rows


def read_other_events(reader: ReaderInterface) -> tuple[pd.DataFrame, list[tuple]]:
    problems = Problems("other_events")
    rows = []
    for cb_id, cid, et, ts, _, obj in _bodies(
        reader,
        f"kind = ? AND event_type NOT IN ({q.placeholders(_TABULATED)})",
        (ev.KIND_CONVERSATION, *_TABULATED),
    ):
        if isinstance(obj, Exception):
            problems.add(cb_id, cid, et, "body is not JSON: skipped")
            continue
        rows.append(
            {
                "conversation_id": cid,
                "event_type": et,
                "timestamp": ts,
                "properties": obj.get("properties") if isinstance(obj, dict) else None,
            }
        )
    data = {k: [r[k] for r in rows] for k in _OTHER_EVENTS} if rows else None
    return fr.frame(_OTHER_EVENTS, data), problems.rows


def read_replicas(reader: ReaderInterface) -> tuple[pd.DataFrame, list[tuple]]:
    problems = Problems("replicas")
    rows = []
    for cb_id, _, et, _, received, obj in _bodies(reader, "kind = ?", (ev.KIND_REPLICA_TRAINING,)):
        if not isinstance(obj, dict):
            problems.add(cb_id, None, et, "body is not JSON: skipped")
            continue
        rows.append(
            {
                "replica_id": ev.scalar_text(obj.get("replica_id")),
                "status": ev.scalar_text(obj.get("status")),
                "received_at": received,
                "error_message": ev.scalar_text(obj.get("error_message")),
            }
        )
    data = {k: [r[k] for r in rows] for k in _REPLICAS} if rows else None
    return fr.frame(_REPLICAS, data), problems.rows


def read_videos(reader: ReaderInterface) -> tuple[pd.DataFrame, list[tuple]]:
    problems = Problems("videos")
    rows = []
    for cb_id, _, et, _, received, obj in _bodies(reader, "kind = ?", (ev.KIND_VIDEO,)):
        if not isinstance(obj, dict):
            problems.add(cb_id, None, et, "body is not JSON: skipped")
            continue
        data = obj.get("data")
        script = data.get("script") if isinstance(data, dict) else None
        rows.append(
            {
                "id": cb_id,
                "received_at": received,
                "video_id": ev.scalar_text(obj.get("video_id")),
                "replica_id": ev.scalar_text(obj.get("replica_id")),
                "video_name": ev.scalar_text(obj.get("video_name")),
                "status": ev.scalar_text(obj.get("status")),
                "status_details": ev.scalar_text(obj.get("status_details")),
                "created_at": ev.scalar_text(obj.get("created_at")),
                "updated_at": ev.scalar_text(obj.get("updated_at")),
                "generation_progress": ev.scalar_text(obj.get("generation_progress")),
                "script": ev.scalar_text(script),
                "download_url": ev.scalar_text(obj.get("download_url")),
                "hosted_url": ev.scalar_text(obj.get("hosted_url")),
                "stream_url": ev.scalar_text(obj.get("stream_url")),
                "error_details": ev.json_text(obj.get("error_details")),
            }
        )
    if not rows:
        return fr.frame(_VIDEOS), problems.rows
    frame = pd.DataFrame(rows)
    frame["callbacks"] = frame.groupby("video_id", dropna=False)["id"].transform("size")
    for name in ("created_at", "updated_at", "received_at"):
        frame[name] = parse_times(frame[name]).array
    frame["order"] = frame["updated_at"].fillna(frame["received_at"])
    latest = fr.latest(frame, "video_id", "order").sort_values("id")
    latest["generation_s"] = (latest["updated_at"] - latest["created_at"]).dt.total_seconds()
    return fr.frame(_VIDEOS, {c: latest[c] for c in latest.columns}), problems.rows
