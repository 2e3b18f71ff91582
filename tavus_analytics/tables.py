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
    "answer_delay_median_s": "float64",
    "answer_delay_p90_s": "float64",
    "user_talk_s": "float64",
    "assistant_talk_s": "float64",
    "longest_pause_s": "float64",
    "overlaps": "Int64",
    "objectives_completed": "Int64",
    "guardrail_triggers": "Int64",
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
    "end_s": "float64",
    "answer_delay_s": "float64",
    "overlap": "boolean",
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
_RECORDING_FAILURES = {
    "conversation_id": STR,
    "timestamp": TIME,
    "recording_id": STR,
    "s3_key": STR,
    "duration": "float64",
    "storage_provider": STR,
    "error_code": STR,
    "error_message": STR,
}
_OBJECTIVES = {
    "conversation_id": STR,
    "objective_name": STR,
    "completed_at": TIME,
    "shape": STR,
    "variables": "Int64",
    "found": "Int64",
    "output_variables": object,
    "callback_id": "int64",
}
_OBJECTIVE_OUTPUTS = {
    "conversation_id": STR,
    "objective_name": STR,
    "completed_at": TIME,
    "variable": STR,
    "value": STR,
    "value_type": STR,
    "found": "boolean",
    "raw": object,
}
_GUARDRAIL_TRIGGERS = {
    "conversation_id": STR,
    "guardrail": STR,
    "guardrail_uuid": STR,
    "triggered_at": TIME,
    "delivery": "int64",
    "event_type": STR,
    "reason": STR,
    "callback_id": "int64",
}
_CANVAS_INTERACTIONS = {
    "conversation_id": STR,
    "timestamp": TIME,
    "interaction_id": STR,
    "tool_call_id": STR,
    "component": STR,
    "component_version": STR,
    "type": STR,
    "skipped": "boolean",
    "selected_option_ids": object,
    "value": object,
    "client": STR,
    "created_at": TIME,
}
_ANNOTATIONS = {
    "annotation_id": "int64",
    "conversation_id": STR,
    "label": STR,
    "note": STR,
    "author": STR,
    "created_at": TIME,
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
    "recording_failures": _RECORDING_FAILURES,
    "objectives": _OBJECTIVES,
    "objective_outputs": _OBJECTIVE_OUTPUTS,
    "guardrail_triggers": _GUARDRAIL_TRIGGERS,
    "canvas_interactions": _CANVAS_INTERACTIONS,
    "other_events": _OTHER_EVENTS,
    "problems": _PROBLEMS,
    "annotations": _ANNOTATIONS,
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
    ev.RECORDING_COPY_FAILED,
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
        "objectives": (q.per_conversation(ev.KIND_OBJECTIVE), (top,), 2),
        "guardrails": (q.deliveries_per_conversation(ev.KIND_GUARDRAIL), (top,), 2),
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

    # Timed turns: answer delays, talk time, pauses, overlaps (NA for untimed transcripts).
    for name in TIMING_COLUMNS:
        values = np.full(n, np.nan)
        values[t_pos] = transcripts[name]
        if name == "overlaps":
            missing = np.isnan(values)
            values = pd.arrays.IntegerArray(np.where(missing, 0, values).astype(np.int64), missing)
        columns[name] = values

    # Objective completions and guardrail triggers received (each trigger a delivery).
    for name, key in (("objectives_completed", "objectives"), ("guardrail_triggers", "guardrails")):
        o_cid, o_n = found[key]
        values = np.zeros(n, dtype=np.int64)
        pos = index.get_indexer(o_cid)
        values[pos[pos >= 0]] = o_n[pos >= 0].astype(np.int64)
        columns[name] = values
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


# -- timed turns --------------------------------------------------------------------------------
def floats(values: list) -> np.ndarray:
    """Numbers (or numeric strings) as float64; anything else (null, text, booleans) NaN."""
    if set(map(type, values)) <= _PLAIN_NUMBERS:  # the common case, at C speed
        return np.array(values, dtype="float64")
    return np.array(
        [v if type(v) is float else (ev.number(v) if v is not None else None) for v in values],
        dtype="float64",
    )


_PLAIN_NUMBERS = {float, int, type(None)}


def turn_timing(
    group: np.ndarray, role: np.ndarray, start: np.ndarray, duration: np.ndarray, spoken: np.ndarray
) -> dict[str, np.ndarray]:
    """The timing of every turn, from ``seconds_from_start`` and ``duration`` (float64, NaN
    where not sent). A turn is *timed* when it is ``spoken`` (a user or assistant message with
    text) and has both; ``group`` says which transcript each turn belongs to, in order.

    Returns per turn (NaN where not timed or not defined): ``end_s`` (start + duration);
    ``gap_s``, from the end of the previous timed turn of the transcript to this one's start
    (negative: they overlap); ``answer_delay_s``, the gap of an assistant turn that follows a
    user turn (the time the caller waited for the answer); ``overlap`` (1.0 or 0.0), whether a
    turn starts before the other side's previous turn ended (an interruption).
    """
    n = len(group)
    end = start + duration
    gap = np.full(n, np.nan)
    answer = np.full(n, np.nan)
    overlap = np.full(n, np.nan)
    timed = np.flatnonzero(spoken & ~np.isnan(start) & ~np.isnan(duration))
    if len(timed) > 1:
        g, r = group[timed], role[timed]
        same = np.zeros(len(timed), dtype=bool)
        same[1:] = g[1:] == g[:-1]
        prev_end = np.empty(len(timed))
        prev_end[0] = np.nan
        prev_end[1:] = end[timed][:-1]
        prev_role = np.empty(len(timed), dtype=object)
        prev_role[1:] = r[:-1]
        gaps = np.where(same, start[timed] - prev_end, np.nan)
        gap[timed] = gaps
        answers = same & (r == "assistant") & (prev_role == "user")
        answer[timed[answers]] = gaps[answers]
        change = same & (r != prev_role)
        overlap[timed[change]] = (gaps[change] < 0).astype(float)
    return {"end_s": end, "gap_s": gap, "answer_delay_s": answer, "overlap": overlap}


def timing_summary(
    group: np.ndarray,
    role: np.ndarray,
    duration: np.ndarray,
    timing: dict[str, np.ndarray],
    timed: np.ndarray,
    n: int,
) -> dict[str, np.ndarray]:
    """Per transcript (``group`` 0..n-1): the median and 90th percentile (linear) of its answer
    delays, talk time of each role (sum of the timed turns' durations), the longest pause (the
    largest positive gap; 0 when turns never left silence between them) and the number of
    overlaps. NaN for a transcript without timed turns: never 0 for "unknown"."""
    out = {
        name: np.full(n, np.nan)
        for name in (
            "answer_delay_median_s",
            "answer_delay_p90_s",
            "user_talk_s",
            "assistant_talk_s",
            "longest_pause_s",
            "overlaps",
        )
    }
    if not timed.any():
        return out
    frame = pd.DataFrame(
        {
            "group": group[timed],
            "role": role[timed],
            "duration": duration[timed],
            "gap": timing["gap_s"][timed],
            "answer": timing["answer_delay_s"][timed],
            "overlap": timing["overlap"][timed],
        }
    )
    by = frame.groupby("group", sort=True)
    groups = by.size().index.to_numpy()
    answers = frame.dropna(subset=["answer"]).groupby("group")["answer"]
    median, p90 = answers.median(), answers.quantile(0.9)
    out["answer_delay_median_s"][median.index.to_numpy()] = median.to_numpy()
    out["answer_delay_p90_s"][p90.index.to_numpy()] = p90.to_numpy()
    for r in ("user", "assistant"):
        talk = frame["duration"].where(frame["role"] == r, 0.0).groupby(frame["group"]).sum()
        out[f"{r}_talk_s"][talk.index.to_numpy()] = talk.to_numpy()
    pause = frame["gap"].clip(lower=0).groupby(frame["group"]).max()  # NaN: one timed turn
    out["longest_pause_s"][pause.index.to_numpy()] = pause.to_numpy()
    out["overlaps"][groups] = (frame["overlap"] == 1.0).groupby(frame["group"]).sum().to_numpy()
    return out


#: The per-call timing columns of ``conversations`` (see :func:`timing_summary`).
TIMING_COLUMNS = (
    "answer_delay_median_s",
    "answer_delay_p90_s",
    "user_talk_s",
    "assistant_talk_s",
    "longest_pause_s",
    "overlaps",
)


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
    # the messages of timed transcripts: transcript index, role, start, duration, spoken
    t_group: list[int] = []
    t_role: list[Any] = []
    t_start: list[Any] = []
    t_duration: list[Any] = []
    t_spoken: list[bool] = []
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
            if messages and max(map(len, messages)) > 2:  # newer payloads: per-message timing
                t_group.extend([len(meta)] * len(messages))
                t_role.extend(roles)
                t_start.extend([m.get("seconds_from_start") for m in messages])
                t_duration.extend([m.get("duration") for m in messages])
                t_spoken.extend(
                    [
                        c != "" if type(c) is str else bool(ev.content_text(c))
                        for c in (m.get("content") for m in messages)
                    ]
                )
            meta.append((cb_id, cid, ts, len(user), len(assistant), code))
            said = _joined_text(user)
            if "USER_SPEECH:" in said or "VISUAL_SCENE:" in said:  # raven-0-era user turns
                said = _joined_text([ev.spoken_text(c) for c in user])
            texts.append(said)
            texts.append(_joined_text(assistant))
        words.append(count_words(texts))
    counts = np.concatenate(words) if words else np.zeros(0, dtype=np.int64)
    ids, cids, times, user_turns, assistant_turns, codes = (
        map(list, zip(*meta, strict=True)) if meta else ([] for _ in range(6))
    )
    keep = _winners(ids, cids, times, problems)
    cid_arr = np.empty(len(cids), dtype=object)
    cid_arr[:] = cids
    group = np.asarray(t_group, dtype=np.int64)
    role = fr.objects(t_role)
    start, duration = floats(t_start), floats(t_duration)
    spoken = np.asarray(t_spoken, dtype=bool) & ((role == "user") | (role == "assistant"))
    timing = turn_timing(group, role, start, duration, spoken)
    timed = spoken & ~np.isnan(start) & ~np.isnan(duration)
    summary = timing_summary(group, role, duration, timing, timed, len(meta))
    return {
        **{name: values[keep] for name, values in summary.items()},
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
        first = len(roles) - len(chunk)  # the roles of this chunk's messages
        for i, t in enumerate(texts):
            if ("USER_SPEECH:" in t or "VISUAL_SCENE:" in t) and roles[first + i] == "user":
                texts[i] = ev.spoken_text(t)  # raven-0-era user turns: the speech only
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
    # Timing, per transcript (the index of each message's transcript is its group).
    group = np.repeat(np.arange(len(meta), dtype=np.int64), counts_arr)
    role = fr.objects(col["role"])
    start = np.asarray(col["seconds_from_start"], dtype="float64")
    duration = np.asarray(col["duration"], dtype="float64")
    spoken = (col["chars"] > 0) & ((role == "user") | (role == "assistant"))
    timing = turn_timing(group, role, start, duration, spoken)
    col["end_s"] = timing["end_s"]
    col["answer_delay_s"] = timing["answer_delay_s"]
    overlap = timing["overlap"]
    col["overlap"] = pd.array(np.where(np.isnan(overlap), False, overlap == 1.0), dtype="boolean")
    col["overlap"][np.isnan(overlap)] = pd.NA
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


def read_recording_failures(reader: ReaderInterface) -> tuple[pd.DataFrame, list[tuple]]:
    problems = Problems("recording_failures")
    rows = []
    for cb_id, cid, et, ts, _, obj in _bodies(
        reader, "kind = ? AND event_type = ?", (ev.KIND_CONVERSATION, ev.RECORDING_COPY_FAILED)
    ):
        props = _props(obj, problems, cb_id, cid, et)
        if props is None:
            continue
        rows.append(
            {
                "conversation_id": cid,
                "timestamp": ts,
                "recording_id": ev.scalar_text(props.get("recording_id")),
                "s3_key": ev.scalar_text(props.get("s3_key")),
                "duration": ev.number(props.get("duration")),
                "storage_provider": ev.scalar_text(props.get("storage_provider")),
                "error_code": ev.scalar_text(props.get("error_code")),
                "error_message": ev.scalar_text(props.get("error_message")),
            }
        )
    data = {k: [r[k] for r in rows] for k in _RECORDING_FAILURES} if rows else None
    return fr.frame(_RECORDING_FAILURES, data), problems.rows


def _objective(obj: Any) -> tuple[str, dict] | None:
    """(shape, the object holding ``objective_name`` and ``output_variables``)."""
    if not isinstance(obj, dict):
        return None
    shape = ev.objective_shape(obj)
    if shape == "nested":
        props = obj.get("properties")
        return (shape, props) if isinstance(props, dict) else None
    return (shape, obj) if shape == "flat" else None


def read_objectives(reader: ReaderInterface) -> tuple[pd.DataFrame, pd.DataFrame, list[tuple]]:
    """``objectives`` and ``objective_outputs``, from the objective completion callbacks."""
    problems = Problems("objectives")
    completions, outputs = [], []
    for cb_id, cid, et, _, received, obj in _bodies(reader, q.of_kind(ev.KIND_OBJECTIVE), ()):
        if isinstance(obj, Exception):
            problems.add(cb_id, cid, et, "body is not JSON: skipped")
            continue
        found = _objective(obj)
        if found is None:
            problems.add(cb_id, cid, et, "properties is not an object: skipped")
            continue
        shape, holder = found
        name = ev.scalar_text(holder.get("objective_name"))
        variables = holder.get("output_variables")
        if variables is not None and not isinstance(variables, dict):
            problems.add(cb_id, cid, et, "output_variables is not an object: kept as sent")
        pairs = list(variables.items()) if isinstance(variables, dict) else []
        values = [ev.output_value(v) for _, v in pairs]
        completions.append(
            {
                "conversation_id": cid,
                "objective_name": name,
                "completed_at": received,  # no timestamp is sent: the arrival
                "shape": shape,
                "variables": len(pairs),
                "found": sum(t not in ("notfound", "null") for _, t in values),
                "output_variables": variables,
                "callback_id": cb_id,
            }
        )
        for (variable, raw), (text, kind) in zip(pairs, values, strict=True):
            outputs.append(
                {
                    "conversation_id": cid,
                    "objective_name": name,
                    "completed_at": received,
                    "variable": variable,
                    "value": text,
                    "value_type": kind,
                    "found": kind not in ("notfound", "null"),
                    "raw": raw,
                }
            )
    done = {k: [r[k] for r in completions] for k in _OBJECTIVES} if completions else None
    out = {k: [r[k] for r in outputs] for k in _OBJECTIVE_OUTPUTS} if outputs else None
    return fr.frame(_OBJECTIVES, done), fr.frame(_OBJECTIVE_OUTPUTS, out), problems.rows


def read_guardrail_triggers(reader: ReaderInterface) -> tuple[pd.DataFrame, list[tuple]]:
    """One row per delivery of a guardrail callback: each is a trigger."""
    problems = Problems("guardrail_triggers")
    rows = []
    seen: dict[int, int] = {}
    for chunk in reader.stream(q.delivered_bodies(ev.KIND_GUARDRAIL), (reader.max_id,)):
        for cb_id, received, cid, et, body in chunk:
            try:
                obj = ev.loads(body)
            except (ValueError, RecursionError):
                obj = None
            props = obj.get("properties") if isinstance(obj, dict) else None
            if not isinstance(props, dict):
                if cb_id not in seen:
                    problems.add(cb_id, cid, et, "properties is not an object: skipped")
                seen[cb_id] = seen.get(cb_id, 0) + 1
                continue
            seen[cb_id] = seen.get(cb_id, 0) + 1
            name = props.get("guardrail", props.get("guardrail_name"))
            rows.append(
                {
                    "conversation_id": cid,
                    "guardrail": ev.scalar_text(name),
                    "guardrail_uuid": ev.scalar_text(props.get("guardrail_uuid")),
                    "triggered_at": received,  # no timestamp is sent: each arrival
                    "delivery": seen[cb_id],
                    "event_type": et,
                    "reason": ev.scalar_text(props.get("reason")),
                    "callback_id": cb_id,
                }
            )
    data = {k: [r[k] for r in rows] for k in _GUARDRAIL_TRIGGERS} if rows else None
    return fr.frame(_GUARDRAIL_TRIGGERS, data), problems.rows


def read_canvas_interactions(reader: ReaderInterface) -> tuple[pd.DataFrame, list[tuple]]:
    """One row per canvas interaction (by ``interaction_id``: one received live and again from
    the history endpoint counts once, the first stored)."""
    problems = Problems("canvas_interactions")
    rows = []
    ids: set[str] = set()
    for cb_id, cid, et, ts, _, obj in _bodies(reader, q.of_kind(ev.KIND_CANVAS), ()):
        props = _props(obj, problems, cb_id, cid, et)
        if props is None:
            continue
        interaction = ev.scalar_text(props.get("interaction_id"))
        if interaction is not None:
            if interaction in ids:
                continue
            ids.add(interaction)
        value = props.get("value")
        metadata = props.get("metadata")
        skipped = value.get("skipped") if isinstance(value, dict) else None
        rows.append(
            {
                "conversation_id": cid,
                "timestamp": ts,
                "interaction_id": interaction,
                "tool_call_id": ev.scalar_text(props.get("tool_call_id")),
                "component": ev.scalar_text(props.get("component")),
                "component_version": ev.scalar_text(props.get("component_version")),
                "type": ev.scalar_text(props.get("type")),
                "skipped": skipped if isinstance(skipped, bool) else None,
                "selected_option_ids": value.get("selected_option_ids")
                if isinstance(value, dict)
                else None,
                "value": value,
                "client": ev.scalar_text(metadata.get("client"))
                if isinstance(metadata, dict)
                else None,
                "created_at": ev.scalar_text(props.get("created_at")),
            }
        )
    data = {k: [r[k] for r in rows] for k in _CANVAS_INTERACTIONS} if rows else None
    return fr.frame(_CANVAS_INTERACTIONS, data), problems.rows


def read_annotations(reader: ReaderInterface) -> pd.DataFrame:
    """The review labels and notes not removed, oldest first (none in a database made before
    them that no store has opened since)."""
    with reader.connect() as conn:
        if not reader.query(q.HAS_ANNOTATIONS, (), conn)[0][0]:
            return fr.frame(_ANNOTATIONS)
        rows = reader.query(q.ANNOTATIONS, (), conn)
    return fr.frame(_ANNOTATIONS, dict(zip(_ANNOTATIONS, fr.columns_of(rows, 6), strict=True)))
