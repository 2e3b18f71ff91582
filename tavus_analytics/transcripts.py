"""Transcripts: the pass over ``application.transcription_ready`` bodies that ``conversations``
and ``turns`` are built from, one range of callback ids at a time.

Each transcript callback gives facts of its own, whatever arrives later: its turn and word
counts, its system prompt and the timing of its turns (:func:`counts`), or its messages as rows
(:func:`messages`). Which transcript counts for a conversation (the latest, :func:`winners`) is
decided when a table is assembled, over every transcript of the conversation, since a late
callback can change it. Bodies are parsed with orjson, a batch at a time; roles and contents are
picked with list comprehensions and words counted for a whole batch at once
(:func:`tavus_analytics.frames.count_words`).
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from . import events as ev
from . import frames as fr
from .frames import count_words, parse_times
from .store import queries as q
from .store.base import ReaderInterface

#: The per-call timing columns of ``conversations`` (see :func:`timing_summary`).
TIMING_COLUMNS = (
    "answer_delay_median_s",
    "answer_delay_p90_s",
    "user_talk_s",
    "assistant_talk_s",
    "longest_pause_s",
    "overlaps",
)

#: The per-message fields of newer payloads that ``turns`` keeps.
EXTRA_FIELDS = (
    "timestamp",
    "seconds_from_start",
    "duration",
    "inference_id",
    "tool_call_id",
    "tool_calls",
)

_REPLACED = "a later transcription_ready for the same conversation replaces this one"

# A message's fields, picked from every message of a transcript at once: map(dict.get, ...)
# runs at C speed (and raises TypeError for a message that is not an object).
_get = dict.get
_ROLE = itertools.repeat("role")
_CONTENT = itertools.repeat("content")
_START = itertools.repeat("seconds_from_start")
_DURATION = itertools.repeat("duration")
_USER = itertools.repeat("user")
_ROLE_NAMES = np.array(["", "user", "assistant"], dtype=object)
_ASSISTANT = itertools.repeat("assistant")


def rows(reader: ReaderInterface, after: int, upto: int) -> Iterator[list[tuple]]:
    """(id, conversation, time, body as bytes) of the transcript callbacks with ids in
    ``(after, upto]``, in arrival order, a batch at a time."""
    return reader.stream(q.TRANSCRIPTS, (ev.TRANSCRIPTION_READY, ev.KIND_CONVERSATION, after, upto))


def transcript_of(body: bytes, problems: Any, cid: Any, cb_id: int) -> list | None:
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


def winners(ids: np.ndarray, cids: Any, times: Any, problems: Any) -> np.ndarray:
    """Which transcripts count: the latest (sender's time, then arrival) per conversation.
    ``ids`` (int64), ``cids`` and ``times`` (Arrow text; the time as sent) describe every
    transcript, in arrival order; a transcript replaced by a later one is reported."""
    keep = np.ones(len(ids), dtype=bool)
    dup = np.flatnonzero(fr.repeated(cids))
    if len(dup):
        frame = pd.DataFrame(
            {
                "id": np.asarray(ids, dtype=np.int64)[dup],
                "conversation_id": pd.Series(cids.take(dup).to_pylist(), dtype=object),
                "time": parse_times(times.take(dup).to_pylist()).array,
            }
        )
        latest = set(fr.latest(frame, "conversation_id", "time")["id"])
        for i, cb_id, cid in zip(dup, frame["id"], frame["conversation_id"], strict=True):
            if cb_id not in latest:
                keep[i] = False
                problems.add(int(cb_id), cid, ev.TRANSCRIPTION_READY, _REPLACED)
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
    out = {name: np.full(n, np.nan) for name in TIMING_COLUMNS}
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


# -- what conversations needs: counts per transcript -------------------------------------------
def counts(
    reader: ReaderInterface, after: int, upto: int, problems: Any
) -> tuple[pa.Table, pa.Table]:
    """Turn and word counts, system prompt and timing of every transcript callback with an id in
    ``(after, upto]``, readable or not as a transcript (what is not is reported and left out).

    Returns ``(transcripts, prompts)``: per transcript ``id``, ``conversation_id``, ``time``
    (text, the sender's or the arrival), ``user_turns``, ``assistant_turns``, ``user_words``,
    ``assistant_words``, ``prompt`` (an index into ``prompts``, -1: none) and the
    :data:`TIMING_COLUMNS`; ``prompts`` the distinct system prompts, in the order they first
    appear (system prompts repeat across calls: each is kept once), with a short ``key`` each
    (:class:`Prompts`).
    """
    meta: list[tuple] = []  # (id, conversation id, time, user turns, assistant turns, prompt)
    prompts = Prompts()
    words: list[np.ndarray] = []
    # The messages of timed transcripts: transcript index, role, start, duration, spoken; as
    # Python lists for a batch, then as arrays (a float object per value would weigh 4 times).
    timed_batches: list[tuple[np.ndarray, ...]] = []
    for batch in rows(reader, after, upto):
        texts: list[str] = []
        t_group: list[int] = []
        t_role: list[Any] = []
        t_start: list[Any] = []
        t_duration: list[Any] = []
        t_spoken: list[bool] = []
        for cb_id, cid, ts, body in batch:
            transcript = transcript_of(body, problems, cid, cb_id)
            if transcript is None:
                continue
            try:  # the common case, at C speed: every message is an object
                roles = list(map(_get, transcript, _ROLE))
                messages = transcript
            except TypeError:
                messages = [m for m in transcript if type(m) is dict]
                roles = list(map(_get, messages, _ROLE))
                problems.add(
                    cb_id,
                    cid,
                    ev.TRANSCRIPTION_READY,
                    f"{len(transcript) - len(messages)} transcript messages are not objects: "
                    "skipped",
                )
            contents = list(map(_get, messages, _CONTENT))
            user = list(itertools.compress(contents, map(operator.eq, roles, _USER)))
            assistant = list(itertools.compress(contents, map(operator.eq, roles, _ASSISTANT)))
            code = -1
            if "system" in roles:
                prompt = contents[roles.index("system")]
                if type(prompt) is not str:
                    prompt = ev.content_text(prompt)
                if prompt is not None:
                    code = prompts.code(prompt)
            if messages and max(map(len, messages)) > 2:  # newer payloads: per-message timing
                t_group.extend([len(meta)] * len(messages))
                t_role.extend(roles)
                t_start.extend(map(_get, messages, _START))
                t_duration.extend(map(_get, messages, _DURATION))
                t_spoken.extend(
                    [c != "" if type(c) is str else bool(ev.content_text(c)) for c in contents]
                )
            meta.append((cb_id, cid, ts, len(user), len(assistant), code))
            said = _joined_text(user)
            if "USER_SPEECH:" in said or "VISUAL_SCENE:" in said:  # raven-0-era user turns
                said = _joined_text([ev.spoken_text(c) for c in user])
            texts.append(said)
            texts.append(_joined_text(assistant))
        words.append(count_words(texts))
        prompts.end_batch()
        if t_group:
            roles = fr.objects(t_role)
            code = (roles == "user").astype(np.int8) + 2 * (roles == "assistant")
            timed_batches.append(
                (
                    np.asarray(t_group, dtype=np.int64),
                    code,
                    floats(t_start),
                    floats(t_duration),
                    np.asarray(t_spoken, dtype=bool) & (code > 0),
                )
            )
    counted = np.concatenate(words) if words else np.zeros(0, dtype=np.int64)
    ids, cids, times, user_turns, assistant_turns, codes = (
        map(list, zip(*meta, strict=True)) if meta else ([] for _ in range(6))
    )
    group, code, start, duration, spoken = (
        (np.concatenate(parts) for parts in zip(*timed_batches, strict=True))
        if timed_batches
        else (
            np.zeros(0, dtype=np.int64),
            np.zeros(0, dtype=np.int8),
            np.zeros(0),
            np.zeros(0),
            np.zeros(0, dtype=bool),
        )
    )
    # Only user and assistant turns are timed: every other role may read as one.
    role = _ROLE_NAMES[code]
    timing = turn_timing(group, role, start, duration, spoken)
    timed = spoken & ~np.isnan(start) & ~np.isnan(duration)
    summary = timing_summary(group, role, duration, timing, timed, len(meta))
    transcripts = pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "conversation_id": fr.arrow_text(cids),
            "time": fr.arrow_text(times),
            "user_turns": pa.array(user_turns, pa.int64()),
            "assistant_turns": pa.array(assistant_turns, pa.int64()),
            "user_words": pa.array(counted[0::2], pa.int64()),
            "assistant_words": pa.array(counted[1::2], pa.int64()),
            "prompt": pa.array(codes, pa.int64()),
            **{name: pa.array(summary[name], pa.float64()) for name in TIMING_COLUMNS},
        }
    )
    return transcripts, prompts.table()


class Prompts:
    """The distinct system prompts of a pass, numbered in order of first appearance.

    Prompts are long and, where each call's prompt names its caller, all different: they are
    kept as Arrow text, a batch at a time, and found again by their hash (then compared), so
    that the pass does not hold every prompt as a Python string.
    """

    def __init__(self) -> None:
        self.count = 0
        self._by_hash: dict[int, list[int]] = {}
        self._chunks: list[pa.Array] = []
        self._starts: list[int] = []
        self._batch: list[str] = []  # the prompts first seen in this batch
        self._first = 0  # the number of the first of them
        self._recent: dict[int, str] = {}
        self._keys: list[str] = []

    def code(self, prompt: str) -> int:
        """The prompt's number, a new one if it was not seen."""
        codes = self._by_hash.setdefault(hash(prompt), [])
        for code in codes:
            if self._text(code) == prompt:
                return code
        codes.append(self.count)
        self._batch.append(prompt)
        self.count += 1
        return self.count - 1

    def _text(self, code: int) -> str:
        if code >= self._first:
            return self._batch[code - self._first]
        text = self._recent.get(code)
        if text is None:
            k = int(np.searchsorted(self._starts, code, side="right")) - 1
            text = self._chunks[k][code - self._starts[k]].as_py()
            if len(self._recent) >= 256:
                self._recent.clear()
            self._recent[code] = text
        return text

    def end_batch(self) -> None:
        """Keep the batch's new prompts as Arrow text."""
        if self._batch:
            self._starts.append(self._first)
            self._chunks.append(fr.arrow_text(self._batch))
            self._keys.extend(key(p) for p in self._batch)
        self._first = self.count
        self._batch = []

    def table(self) -> pa.Table:
        """``prompt`` and ``key`` of every prompt, in order."""
        self.end_batch()
        prompts = pa.chunked_array(self._chunks, type=pa.large_string())
        return pa.table({"prompt": prompts, "key": fr.arrow_text(self._keys)})


def key(prompt: str) -> str:
    """A short key of a prompt (its length, start and end): equal prompts have equal keys, and
    few different ones do."""
    return f"{len(prompt)}\x1f{prompt[:64]}\x1f{prompt[-64:]}"


def _joined_text(contents: list) -> str:
    """The text of messages' contents, joined by spaces (which adds no word)."""
    try:
        return " ".join(contents)
    except TypeError:  # some content is null, a list of parts or something else
        texts = (c if type(c) is str else ev.content_text(c) for c in contents)
        return " ".join(t for t in texts if t)


# -- what turns needs: every message ------------------------------------------------------------
def messages(reader: ReaderInterface, after: int, upto: int) -> tuple[pa.Table, pa.Table]:
    """Every message of every transcript callback with an id in ``(after, upto]``, as the
    columns of ``turns`` (see :class:`tavus_analytics.Dataset`), the timing of each transcript's
    turns included; and per transcript ``id``, ``conversation_id``, ``time`` (text) and
    ``messages`` (how many of the rows are its), to decide which transcripts count.

    Problems are not reported here: ``conversations`` reports the same ones.
    """
    scratch = _Scratch()
    meta: list[tuple] = []  # (callback id, conversation id, time, messages) per transcript
    batches: list[pa.RecordBatch] = []
    for batch in rows(reader, after, upto):
        first = len(meta)
        roles: list[Any] = []
        chunk: list[Any] = []
        extra: dict[str, list] = {name: [] for name in EXTRA_FIELDS}
        for cb_id, cid, ts, body in batch:
            transcript = transcript_of(body, scratch, cid, cb_id)
            if transcript is None:
                continue
            try:  # the common case, at C speed: every message is an object
                roles.extend(list(map(_get, transcript, _ROLE)))
                messages = transcript
            except TypeError:
                messages = [m for m in transcript if type(m) is dict]
                roles.extend(map(_get, messages, _ROLE))
            meta.append((cb_id, cid, ts, len(messages)))
            chunk.extend(map(_get, messages, _CONTENT))
            if messages and max(map(len, messages)) > 2:  # newer payloads: per-message fields
                for name in EXTRA_FIELDS:
                    extra[name].extend(map(_get, messages, itertools.repeat(name)))
            else:
                nones = [None] * len(messages)
                for name in EXTRA_FIELDS:
                    extra[name].extend(nones)
        if len(meta) > first:
            batches.append(_message_batch(meta[first:], roles, chunk, extra))
    ids, cids, times, counted = (
        map(list, zip(*meta, strict=True)) if meta else ([] for _ in range(4))
    )
    transcripts = pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "conversation_id": fr.arrow_text(cids),
            "time": fr.arrow_text(times),
            "messages": pa.array(counted, pa.int64()),
        }
    )
    if not batches:
        return _MESSAGE_SCHEMA.empty_table(), transcripts
    return pa.Table.from_batches(batches, schema=_MESSAGE_SCHEMA), transcripts


class _Scratch:
    """Problems nobody reads (``conversations`` reports them)."""

    def add(self, *row: Any) -> None:
        pass


_MESSAGE_SCHEMA = pa.schema(
    [
        ("conversation_id", pa.large_string()),
        ("turn", pa.int64()),
        ("role", pa.large_string()),
        ("content", pa.large_string()),
        ("words", pa.int64()),
        ("chars", pa.int64()),
        ("timestamp", pa.int64()),  # nanoseconds since the epoch, UTC; NaT is frames.NAT
        ("seconds_from_start", pa.float64()),
        ("duration", pa.float64()),
        ("inference_id", pa.large_string()),
        ("tool_call_id", pa.large_string()),
        ("tool_calls", pa.large_string()),
        ("end_s", pa.float64()),
        ("answer_delay_s", pa.float64()),
        ("overlap", pa.bool_()),
    ]
)


def _message_batch(
    meta: list[tuple], roles: list, chunk: list, extra: dict[str, list]
) -> pa.RecordBatch:
    """The rows of one batch of transcripts (``meta``: theirs, in order)."""
    texts = chunk
    if not _only(chunk, _STR):  # some content is null, a list of parts or something else
        for i in [i for i, c in enumerate(chunk) if type(c) is not str]:
            chunk[i] = ev.content_text(chunk[i])
        texts = [c if c is not None else "" for c in chunk]
    said = " ".join(itertools.compress(texts, map(operator.eq, roles, _USER)))
    if "USER_SPEECH:" in said or "VISUAL_SCENE:" in said:  # raven-0-era user turns
        texts = list(texts)
        for i, t in enumerate(texts):
            if ("USER_SPEECH:" in t or "VISUAL_SCENE:" in t) and roles[i] == "user":
                texts[i] = ev.spoken_text(t)  # the speech only
    if not _only(roles, _STR):
        for i in [i for i, r in enumerate(roles) if type(r) is not str]:
            roles[i] = ev.scalar_text(roles[i])
    sizes = np.fromiter((m[3] for m in meta), dtype=np.int64, count=len(meta))
    cids = fr.objects([m[1] for m in meta])
    total = int(sizes.sum())
    starts = np.repeat(np.cumsum(sizes) - sizes, sizes)
    words = count_words(texts)
    chars = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    start = floats(extra["seconds_from_start"])
    duration = floats(extra["duration"])
    # Timing, per transcript (the index of each message's transcript is its group).
    group = np.repeat(np.arange(len(meta), dtype=np.int64), sizes)
    role = fr.objects(roles)
    spoken = (chars > 0) & ((role == "user") | (role == "assistant"))
    timing = turn_timing(group, role, start, duration, spoken)
    overlap = timing["overlap"]
    columns = [
        fr.arrow_text(np.repeat(cids, sizes)),
        pa.array(np.arange(total, dtype=np.int64) - starts),
        fr.arrow_text(roles),
        fr.arrow_text(chunk),
        pa.array(words, pa.int64()),
        pa.array(chars),
        pa.array(fr.ns(parse_times(extra["timestamp"]))),
        pa.array(start),
        pa.array(duration),
        _text_column(extra["inference_id"], ev.scalar_text),
        _text_column(extra["tool_call_id"], ev.scalar_text),
        _text_column(extra["tool_calls"], ev.json_text),
        pa.array(timing["end_s"]),
        pa.array(timing["answer_delay_s"]),
        pa.array(overlap == 1.0, mask=np.isnan(overlap)),
    ]
    return pa.RecordBatch.from_arrays(columns, schema=_MESSAGE_SCHEMA)


_STR = {str}
_TEXT_OR_NONE = {str, type(None)}


def _only(values: list, types: set) -> bool:
    """Whether every value is of one of ``types`` (at C speed)."""
    return set(map(type, values)) <= types


def _text_column(values: list, convert: Any) -> pa.Array:
    """Values as Arrow text, ``convert`` applied to those that are neither text nor null."""
    if _only(values, _TEXT_OR_NONE):
        return fr.arrow_text(values)
    return fr.arrow_text(fr.convert(values, convert))
