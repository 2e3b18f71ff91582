"""The table builders: raw callbacks, read through a store's reader, to typed pandas frames.

One :class:`Builder` per table (or pair of tables), in :data:`BUILDERS`, each reading only what
it needs through a :class:`~tavus_analytics.store.base.ReaderInterface` (the queries are in
:mod:`tavus_analytics.store.queries`; the builders never know the engine) and applying the rules
of :mod:`tavus_analytics.events` (which shutdown, which transcript, which replica count for a
conversation). A builder works in two steps: it *extracts* the facts of each callback of a range
of ids (what a callback says never changes, so these can be kept: :mod:`tavus_analytics.cache`),
then *assembles* the tables from the facts of every callback, applying the rules that span
callbacks. ``read_conversations(reader)``, ``read_turns(reader)``, ... build a table from
nothing kept. What cannot be interpreted is left out and returned as problem rows; a load never
fails because of one row. :data:`TABLES` lists every table's columns and dtypes.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import events as ev
from . import frames as fr
from . import transcripts as tr
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

    def arrow(self) -> pa.Table:
        """The problems as facts (a table without the ``table`` column)."""
        cols = list(zip(*self.rows, strict=True)) if self.rows else [()] * 5
        return pa.table(
            {
                "callback_id": pa.array(cols[0], pa.int64()),
                "conversation_id": fr.arrow_text(cols[1]),
                "event_type": fr.arrow_text(cols[2]),
                "problem": fr.arrow_text(cols[4]),
            }
        )

    def extend(self, facts: pa.Table) -> None:
        """Add the problems of :meth:`arrow` facts, in their order."""
        for cb_id, cid, et, problem in zip(
            *(facts[c].to_pylist() for c in facts.column_names), strict=True
        ):
            self.add(cb_id, cid, et, problem)


# -- facts and builders --------------------------------------------------------------------------
#: What a builder extracts from the callbacks of one range of ids: named parts, each a pyarrow
#: Table. A raw callback never changes, so neither do its facts: they can be kept
#: (:mod:`tavus_analytics.cache`) and only the facts of newer callbacks read.
Facts = dict[str, pa.Table]


def concat(pieces: Sequence[Facts]) -> Facts:
    """The facts of consecutive ranges of ids (in order) as the facts of their union: each part
    the rows of every piece, in order."""
    if len(pieces) == 1:
        return dict(pieces[0])
    return {name: pa.concat_tables([p[name] for p in pieces]) for name in pieces[0]}


@dataclasses.dataclass(frozen=True)
class Builder:
    """How some of a :class:`~tavus_analytics.dataset.Dataset`'s tables are built.

    ``extract(reader, after, upto)`` reads the callbacks with ids in ``(after, upto]`` and gives
    their facts; ``merge`` makes the facts of consecutive ranges one; ``assemble(facts, reader)``
    gives ``({table: frame}, problem rows)`` from the facts of every callback up to the
    reader's ``max_id``, applying there every rule that spans callbacks (which shutdown, which
    transcript, which join count; a delivery of an older callback), since a later callback can
    change its outcome. ``parallel``: whether a large range is worth reading in several
    processes. ``rebase(before, facts)``, when facts extracted on their own hold something
    numbered in order of first appearance, numbers it as the facts of the ranges ``before``
    continue to, so that facts kept already need no renumbering.
    """

    tables: tuple[str, ...]
    extract: Callable[[ReaderInterface, int, int], Facts]
    assemble: Callable[[Facts, ReaderInterface], tuple[dict[str, pd.DataFrame], list[tuple]]]
    merge: Callable[[Sequence[Facts]], Facts] = concat
    parallel: bool = False
    rebase: Callable[[Sequence[Facts], Facts], Facts] | None = None

    def build(self, reader: ReaderInterface) -> tuple[dict[str, pd.DataFrame], list[tuple]]:
        """The tables from every callback of the reader's snapshot, nothing kept."""
        return self.assemble(self.extract(reader, 0, reader.max_id), reader)

    def combine(self, before: Sequence[Facts], pieces: Sequence[Facts]) -> list[Facts]:
        """``pieces`` (extracted on their own, consecutive, after the facts ``before``) rebased
        on everything before each of them."""
        if self.rebase is None:
            return list(pieces)
        done = list(before)
        out = []
        for piece in pieces:
            piece = self.rebase(done, piece)
            done.append(piece)
            out.append(piece)
        return out


# -- events ------------------------------------------------------------------------------------
_EVENT_CHUNK = 50_000


def _extract_events(reader: ReaderInterface, after: int, upto: int) -> Facts:
    cols = list(_EVENTS)
    batches = []
    for rows in reader.stream(q.events(cols), (after, upto), size=_EVENT_CHUNK):
        data = fr.columns_of(rows, len(cols))
        arrays = []
        for name, values in zip(cols, data, strict=True):
            if name == "id":
                arrays.append(pa.array(values.astype(np.int64)))
            elif _EVENTS[name] == TIME:
                arrays.append(pa.array(fr.ns(parse_times(values))))
            else:
                arrays.append(fr.arrow_text(values))
        batches.append(pa.RecordBatch.from_arrays(arrays, schema=_EVENT_FACTS))
    return {"events": pa.Table.from_batches(batches, schema=_EVENT_FACTS)}


_EVENT_FACTS = pa.schema(
    [
        (name, pa.int64() if name == "id" or dtype == TIME else pa.large_string())
        for name, dtype in _EVENTS.items()
    ]
)


def _assemble_events(facts: Facts, reader: ReaderInterface):
    rows = facts["events"]
    return {"events": _frame_of(_EVENTS, rows)}, []


def _frame_of(schema: dict[str, Any], table: pa.Table) -> pd.DataFrame:
    """The frame of ``schema`` from facts holding its columns typed (:func:`fr.arrow_series`)."""
    return fr.frame(
        schema, {name: fr.arrow_series(table[name], dtype) for name, dtype in schema.items()}
    )


def read_events(reader: ReaderInterface) -> pd.DataFrame:
    return BUILDERS["events"].build(reader)[0]["events"]


# -- conversations -------------------------------------------------------------------------------
_JSON_PROBLEM = "body is not JSON that the database's JSON functions can read: skipped"


def _extract_conversations(reader: ReaderInterface, after: int, upto: int) -> Facts:
    problems = Problems("conversations")
    # The SQL queries run in a thread beside the transcript pass (the database works with
    # Python's GIL released, so the two use two cores).
    with ThreadPoolExecutor(max_workers=1) as pool:
        sql = pool.submit(_sql_facts, reader, after, upto)
        transcripts, prompts = tr.counts(reader, after, upto, problems)
        facts = sql.result()
    facts.update(transcripts=transcripts, prompts=prompts, problems=problems.arrow())
    return facts


def _sql_facts(reader: ReaderInterface, after: int, upto: int) -> Facts:
    """Every SQL query ``conversations`` needs over a range of ids, as facts."""
    kind = ev.KIND_CONVERSATION
    with reader.connect() as conn:
        calls = reader.query(q.CONVERSATIONS, (*ev.JOIN_EVENTS, kind, after, upto), conn)
        shutdowns = reader.query(q.SHUTDOWNS, (ev.SHUTDOWN, kind, after, upto), conn)
        recordings = reader.query(q.RECORDINGS, (ev.RECORDING_READY, kind, after, upto), conn)
        perception = reader.query(
            q.PERCEPTION_TYPES, (ev.PERCEPTION_ANALYSIS, kind, after, upto), conn
        )
    cid, join_replica, replica, jmin, jmax, jlen_min, jlen_max, first, last = fr.columns_of(
        calls, 9
    )
    s_id, s_cid, s_time, s_type, s_reason = fr.columns_of(shutdowns, 5)
    r_id, r_cid, r_time, r_valid, r_ptype, r_type, r_key = fr.columns_of(recordings, 7)
    p_id, p_cid, p_type = fr.columns_of(perception, 3)
    return {
        # per conversation, aggregates that combine across ranges (_merge_calls)
        "calls": pa.table(
            {
                "conversation_id": fr.arrow_text(cid),
                "join_replica": fr.arrow_text(join_replica),
                "replica": fr.arrow_text(replica),
                "join_min": fr.arrow_text(jmin),
                "join_max": fr.arrow_text(jmax),
                "join_len_min": pa.array(jlen_min, pa.int64()),
                "join_len_max": pa.array(jlen_max, pa.int64()),
                "first": fr.arrow_text(first),
                "last": fr.arrow_text(last),
                # the three times, parsed (parsing is per value: they combine with the text)
                "join_min_ns": pa.array(fr.ns(parse_times(jmin))),
                "first_ns": pa.array(fr.ns(parse_times(first))),
                "last_ns": pa.array(fr.ns(parse_times(last))),
            }
        ),
        # per callback
        "shutdowns": pa.table(
            {
                "id": pa.array(s_id, pa.int64()),
                "conversation_id": fr.arrow_text(s_cid),
                "at": pa.array(fr.ns(parse_times(s_time))),
                "type": fr.arrow_text(s_type),
                "reason": fr.arrow_text(np.where(s_type == "text", s_reason, None)),
            }
        ),
        "recordings": pa.table(
            {
                "id": pa.array(r_id, pa.int64()),
                "conversation_id": fr.arrow_text(r_cid),
                "at": pa.array(fr.ns(parse_times(r_time))),
                "valid": pa.array(r_valid, pa.int64()),
                "properties_type": fr.arrow_text(r_ptype),
                "key_type": fr.arrow_text(r_type),
                "key": fr.arrow_text(np.where(r_type == "text", r_key, None)),
            }
        ),
        "perception": pa.table(
            {
                "id": pa.array(p_id, pa.int64()),
                "conversation_id": fr.arrow_text(p_cid),
                "type": fr.arrow_text(p_type),
            }
        ),
    }


#: How the per-conversation aggregates of ``calls`` combine: (text column, how, parsed column).
_CALL_AGGREGATES = (
    ("join_replica", min, None),
    ("replica", min, None),
    ("join_min", min, "join_min_ns"),
    ("join_max", max, None),
    ("join_len_min", min, None),
    ("join_len_max", max, None),
    ("first", min, "first_ns"),
    ("last", max, "last_ns"),
)


def _merge_calls(tables: Sequence[pa.Table]) -> pa.Table:
    """The per-conversation aggregates of consecutive ranges of ids as those of their union:
    the minimum of the minima (nulls ignored, as SQL's ``min`` does), sorted by conversation
    id (byte order, as the query's ``ORDER BY``)."""
    tables = [t for t in tables if t.num_rows] or list(tables[:1])
    merged = tables[0]
    for table in tables[1:]:
        merged = _merge_two_calls(merged, table)
    return merged


def _merge_two_calls(a: pa.Table, b: pa.Table) -> pa.Table:
    if b.num_rows > a.num_rows:
        a, b = b, a  # hash the smaller one's ids into the larger one's
    at = fr.positions(b["conversation_id"], a["conversation_id"])
    shared = at >= 0
    parts = [a]
    if shared.any():
        mine = a.take(pa.array(at[shared])).to_pylist()
        for row, other in zip(mine, b.filter(pa.array(shared)).to_pylist(), strict=True):
            for name, how, parsed in _CALL_AGGREGATES:
                theirs = other[name]
                if theirs is None or (
                    row[name] is not None and how(row[name], theirs) == row[name]
                ):
                    continue
                row[name] = theirs
                if parsed is not None:
                    row[parsed] = other[parsed]
        stays = np.ones(a.num_rows, dtype=bool)
        stays[at[shared]] = False
        parts = [a.filter(pa.array(stays)), pa.Table.from_pylist(mine, schema=a.schema)]
    parts.append(b.filter(pa.array(~shared)))
    whole = pa.concat_tables(parts)
    return whole.take(pc.sort_indices(whole["conversation_id"]))


def _merge_conversations(pieces: Sequence[Facts]) -> Facts:
    """Consecutive pieces, each rebased on the ones before it (:func:`_rebase_prompts`)."""
    if len(pieces) == 1:
        return dict(pieces[0])
    out = concat([{k: v for k, v in p.items() if k != "calls"} for p in pieces])
    out["calls"] = _merge_calls([p["calls"] for p in pieces])
    return out


def _rebase_prompts(before: Sequence[Facts], facts: Facts) -> Facts:
    """Each range numbers its system prompts in order of first appearance. Number those of
    ``facts`` as the ranges ``before`` it continue to: a prompt seen before keeps its number,
    the others follow, in order; ``prompts`` then holds only those. Prompts repeat across calls
    and are long: they are matched by their short key (:func:`transcripts.key`), then compared.
    """
    local = facts["prompts"]["prompt"]
    known = pa.chunked_array(
        [c for p in before for c in p["prompts"]["prompt"].chunks], type=pa.large_string()
    )
    if not len(local) or not len(known):
        return facts
    known_keys = pa.chunked_array(
        [c for p in before for c in p["prompts"]["key"].chunks], type=pa.large_string()
    )
    local_keys = facts["prompts"]["key"]
    hits = fr.positions(local_keys, known_keys)  # the first prompt with the same key
    # Each prompt with a known key is compared with the known one, value by value in Arrow:
    # a take of every hit would concatenate (copy) every chunk first.
    found = np.full(len(local), -1, dtype=np.int64)
    for j in np.flatnonzero(hits >= 0):
        mine = local[int(j)]
        if known[int(hits[j])].equals(mine):
            found[j] = hits[j]
            continue
        # another prompt with the same key: compare with each of them
        same = pc.equal(known_keys, local_keys[int(j)]).to_numpy(zero_copy_only=False)
        for i in np.flatnonzero(same):
            if known[int(i)].equals(mine):
                found[j] = i
                break
    new = np.flatnonzero(found < 0)
    numbers = np.append(found, -1)  # -1 (no prompt) stays -1
    numbers[new] = len(known) + np.arange(len(new))
    transcripts = facts["transcripts"]
    codes = numbers[transcripts["prompt"].to_numpy()]
    return {
        **facts,
        "transcripts": transcripts.set_column(
            transcripts.schema.get_field_index("prompt"), "prompt", pa.array(codes)
        ),
        "prompts": fr.rows_in_order(facts["prompts"], new),
    }


def _assemble_conversations(facts: Facts, reader: ReaderInterface):
    problems = Problems("conversations")
    problems.extend(facts["problems"])
    transcripts = facts["transcripts"]
    keep = tr.winners(
        transcripts["id"].to_numpy(),
        transcripts["conversation_id"],
        transcripts["time"],
        problems,
    )
    calls = facts["calls"]
    if not calls.num_rows:
        return {"conversations": fr.frame(_CONVERSATIONS)}, problems.rows
    index = calls["conversation_id"]  # one row per conversation (GROUP BY), sorted
    n = len(index)
    replica = fr.arrow_series(pc.coalesce(calls["join_replica"], calls["replica"]), STR)
    jmin_ns = calls["join_min_ns"].to_numpy()
    has_join = calls["join_min"].is_valid().to_numpy(zero_copy_only=False)

    # The earliest join: the text minimum is the time minimum when every join timestamp of the
    # call has the same shape (one sender, one format); otherwise compare parsed times.
    joined_at = pd.Series(jmin_ns.view("datetime64[ns]")).dt.tz_localize("UTC")
    mixed = (
        pc.and_(
            pc.not_equal(calls["join_min"], calls["join_max"]),
            pc.not_equal(calls["join_len_min"], calls["join_len_max"]),
        )
        .fill_null(False)
        .to_numpy(zero_copy_only=False)
    )
    if mixed.any():
        ids = index.filter(pa.array(mixed)).to_pylist()
        jc, jt = fr.columns_of(
            reader.query(
                q.joins_of(ids),
                (*ev.JOIN_EVENTS, ev.KIND_CONVERSATION, reader.max_id, *ids),
            ),
            2,
        )
        earliest = parse_times(jt).groupby(jc).min()
        joined_at[mixed] = earliest.reindex(ids).to_numpy()
    for i in np.flatnonzero(has_join & joined_at.isna().to_numpy()):
        cid = index[int(i)].as_py()
        problems.add(None, cid, ev.REPLICA_JOINED, "join timestamp is not a time: join unknown")

    # Shutdown: the earliest shutdown of each call, with its reason (narrow SQL extraction).
    shutdowns = facts["shutdowns"]
    s_id = shutdowns["id"].to_numpy()
    s_at = shutdowns["at"].to_numpy()
    s_type = shutdowns["type"]
    readable = pc.equal(s_type, "text").fill_null(False).to_numpy(zero_copy_only=False)
    for i in np.flatnonzero(~readable | (s_at == fr.NAT)):
        what = {
            "invalid": _JSON_PROBLEM,
            "properties": "properties is not an object",
            None: "no shutdown_reason",
            "text": "timestamp is not a time",
        }.get(s_type[int(i)].as_py(), "shutdown_reason is not text")
        cid = shutdowns["conversation_id"][int(i)].as_py()
        problems.add(int(s_id[i]), cid, ev.SHUTDOWN, what)
    s_pos = fr.positions(shutdowns["conversation_id"], index)
    per_call = np.bincount(s_pos, minlength=n) if len(s_pos) else np.zeros(n, dtype=np.int64)
    for i in np.flatnonzero(per_call > 1):
        problems.add(
            None,
            index[int(i)].as_py(),
            ev.SHUTDOWN,
            f"{per_call[i]} shutdown callbacks: the earliest is used",
        )
    firsts = fr.first_per_group(s_pos, _missing_last(s_at), s_id)
    has_shutdown = per_call > 0
    shutdown_ns = np.full(n, fr.NAT, dtype=np.int64)
    shutdown_ns[s_pos[firsts]] = s_at[firsts]
    joined_ns = fr.ns(joined_at)
    timed = (shutdown_ns != fr.NAT) & (joined_ns != fr.NAT)
    duration = np.full(n, np.nan)
    duration[timed] = (shutdown_ns[timed] - joined_ns[timed]) / 1e9
    reasons = np.full(n, None, dtype=object)
    reasons[s_pos[firsts]] = (
        shutdowns["reason"].take(pa.array(firsts)).to_numpy(zero_copy_only=False)
    )

    status = np.where(
        has_join & has_shutdown, "complete", np.where(has_join, "in_progress", "incomplete")
    )
    columns: dict[str, Any] = {
        "conversation_id": fr.arrow_series(index, STR),
        "replica_id": replica,
        "joined_at": joined_at,
        "shutdown_at": shutdown_ns.view("datetime64[ns]"),
        "duration_s": duration,
        "shutdown_reason": reasons,
        "status": status,
        "first_seen": fr.arrow_series(calls["first_ns"], TIME),
        "last_seen": fr.arrow_series(calls["last_ns"], TIME),
    }
    columns.update(_categorise(reasons, has_shutdown))

    # Transcripts (counted per transcript; the latest of each call counts): scatter into one
    # row per call.
    counted = transcripts.filter(pa.array(keep))
    t_pos = fr.positions(counted["conversation_id"], index)
    has_transcript = np.zeros(n, dtype=bool)
    has_transcript[t_pos] = True
    columns["has_transcript"] = has_transcript
    for name in ("user_turns", "assistant_turns", "user_words", "assistant_words"):
        values = np.zeros(n, dtype=np.int64)
        values[t_pos] = counted[name].to_numpy()
        columns[name] = pd.arrays.IntegerArray(values, ~has_transcript)
    codes = np.full(n, -1, dtype=np.int64)
    codes[t_pos] = counted["prompt"].to_numpy()
    columns["system_prompt"] = pd.Categorical.from_codes(
        codes, dtype=_categories(facts["prompts"]["prompt"])
    )

    # Recordings: the S3 key of the latest recording of each call.
    recordings = facts["recordings"]
    r_id = recordings["id"].to_numpy()
    r_at = recordings["at"].to_numpy()
    r_valid = recordings["valid"].to_numpy(zero_copy_only=False)
    for i in np.flatnonzero(r_valid != 1):
        cid = recordings["conversation_id"][int(i)].as_py()
        problems.add(int(r_id[i]), cid, ev.RECORDING_READY, _JSON_PROBLEM)
    r_pos = fr.positions(recordings["conversation_id"], index)
    has_recording = np.zeros(n, dtype=bool)
    is_object = pc.equal(recordings["properties_type"], "object").fill_null(False)
    has_recording[r_pos[is_object.to_numpy(zero_copy_only=False)]] = True
    is_text = pc.equal(recordings["key_type"], "text").fill_null(False)
    keyed = np.flatnonzero(is_text.to_numpy(zero_copy_only=False))
    latest = keyed[fr.first_per_group(r_pos[keyed], -r_at[keyed], -r_id[keyed])]
    s3_key = np.full(n, None, dtype=object)
    s3_key[r_pos[latest]] = recordings["key"].take(pa.array(latest)).to_numpy(zero_copy_only=False)
    columns["has_recording"] = has_recording
    columns["recording_s3_key"] = s3_key

    # Perception: an analysis that is text (perception_unavailable does not count).
    perception = facts["perception"]
    p_id = perception["id"].to_numpy()
    p_type = perception["type"]
    invalid = pc.equal(p_type, "invalid").fill_null(False).to_numpy(zero_copy_only=False)
    for i in np.flatnonzero(invalid):
        cid = perception["conversation_id"][int(i)].as_py()
        problems.add(int(p_id[i]), cid, ev.PERCEPTION_ANALYSIS, _JSON_PROBLEM)
    has_perception = np.zeros(n, dtype=bool)
    text = pc.equal(p_type, "text").fill_null(False)
    has_perception[fr.positions(perception["conversation_id"].filter(text), index)] = True
    columns["has_perception"] = has_perception

    # Timed turns: answer delays, talk time, pauses, overlaps (NA for untimed transcripts).
    for name in tr.TIMING_COLUMNS:
        values = np.full(n, np.nan)
        values[t_pos] = counted[name].to_numpy()
        if name == "overlaps":
            missing = np.isnan(values)
            values = pd.arrays.IntegerArray(np.where(missing, 0, values).astype(np.int64), missing)
        columns[name] = values

    # Objective completions and guardrail triggers received (each trigger a delivery): read on
    # every load, since a guardrail callback delivered again is one more trigger.
    top = reader.max_id
    with reader.connect() as conn:
        found = {
            "objectives_completed": reader.query(
                q.per_conversation(ev.KIND_OBJECTIVE), (top,), conn
            ),
            "guardrail_triggers": reader.query(
                q.deliveries_per_conversation(ev.KIND_GUARDRAIL), (top,), conn
            ),
        }
    for name, rows in found.items():
        o_cid, o_n = fr.columns_of(rows, 2)
        values = np.zeros(n, dtype=np.int64)
        pos = fr.positions(fr.arrow_text(o_cid), index)
        values[pos[pos >= 0]] = o_n[pos >= 0].astype(np.int64)
        columns[name] = values
    return {"conversations": fr.frame(_CONVERSATIONS, columns)}, problems.rows


def _categories(prompts: Any) -> pd.CategoricalDtype:
    """The dtype of ``system_prompt``: the prompts (distinct already), as text of the string
    dtype of every text column (Arrow-backed: the prompts are not copied)."""
    categories = pd.Index(fr.column(fr.arrow_series(prompts, STR), STR, len(prompts)))
    fastpath = getattr(pd.CategoricalDtype, "_from_fastpath", None)
    if fastpath is not None:  # distinct by construction: do not hash every prompt again
        return fastpath(categories, False)
    return pd.CategoricalDtype(categories)


def _missing_last(ns: np.ndarray) -> np.ndarray:
    """Nanoseconds as a sort key in which NaT sorts last."""
    out = ns.copy()
    out[out == fr.NAT] = np.iinfo(np.int64).max
    return out


def read_conversations(reader: ReaderInterface) -> tuple[pd.DataFrame, list[tuple]]:
    tables, problems = BUILDERS["conversations"].build(reader)
    return tables["conversations"], problems


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


# -- turns ---------------------------------------------------------------------------------------
def _extract_turns(reader: ReaderInterface, after: int, upto: int) -> Facts:
    messages, transcripts = tr.messages(reader, after, upto)
    return {"messages": messages, "transcripts": transcripts}


def _assemble_turns(facts: Facts, reader: ReaderInterface):
    transcripts, messages = facts["transcripts"], facts["messages"]
    keep = tr.winners(
        transcripts["id"].to_numpy(),
        transcripts["conversation_id"],
        transcripts["time"],
        Problems("turns"),  # the same problems are reported by ds.conversations
    )
    if not keep.all():
        messages = messages.filter(pa.array(np.repeat(keep, transcripts["messages"].to_numpy())))
    return {"turns": _frame_of(_TURNS, messages)}, []


def read_turns(reader: ReaderInterface) -> pd.DataFrame:
    return BUILDERS["turns"].build(reader)[0]["turns"]


# -- tables of one row per callback ---------------------------------------------------------------
#: How a column of rows is kept as facts: text, JSON values, numbers or booleans.
_KINDS = {
    "str": pa.large_string(),
    "json": pa.large_string(),
    "float": pa.float64(),
    "int": pa.int64(),
    "bool": pa.bool_(),
}


def _rows_facts(rows: list[dict], kinds: dict[str, str]) -> pa.Table:
    """Rows (dicts holding the keys of ``kinds``) as facts, a column per key."""
    arrays = {}
    for name, kind in kinds.items():
        values = [r.get(name) for r in rows]
        if kind == "json":
            arrays[name] = fr.arrow_json(values)
        else:
            arrays[name] = pa.array(values, type=_KINDS[kind])
    return pa.table(arrays)


def _rows_of(facts: pa.Table, kinds: dict[str, str]) -> dict[str, list]:
    """The columns :func:`_rows_facts` kept, as lists of the values they were made of."""
    return {
        name: fr.from_json(facts[name]) if kind == "json" else facts[name].to_pylist()
        for name, kind in kinds.items()
    }


def _bodies(reader: ReaderInterface, where: str, params: Sequence, after: int, upto: int):
    """(id, conversation_id, event_type, time, received_at, parsed body or exception) of the
    callbacks matching ``where`` with ids in ``(after, upto]``."""
    for rows in reader.stream(q.bodies(where), (*params, after, upto)):
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


def _row_table(
    table: str,
    schema: dict[str, Any],
    kinds: dict[str, str],
    rows_of: Callable[[ReaderInterface, int, int, Problems], list[dict]],
) -> Builder:
    """A builder of a table with one row per callback (or none): ``rows_of`` reads the rows of
    a range; the table is their rows, in arrival order."""

    def extract(reader: ReaderInterface, after: int, upto: int) -> Facts:
        problems = Problems(table)
        rows = rows_of(reader, after, upto, problems)
        return {"rows": _rows_facts(rows, kinds), "problems": problems.arrow()}

    def assemble(facts: Facts, reader: ReaderInterface):
        problems = Problems(table)
        problems.extend(facts["problems"])
        data = _rows_of(facts["rows"], kinds) if facts["rows"].num_rows else None
        return {table: fr.frame(schema, data)}, problems.rows

    return Builder((table,), extract, assemble)


def _perception_rows(reader, after, upto, problems) -> list[dict]:
    rows: list[dict] = []
    types = (ev.PERCEPTION_ANALYSIS, ev.PERCEPTION_UNAVAILABLE)
    for cb_id, cid, et, ts, _, obj in _bodies(
        reader,
        f"kind = ? AND event_type IN ({q.placeholders(types)})",
        (ev.KIND_CONVERSATION, *types),
        after,
        upto,
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
    analyses = [r["analysis"] for r in rows if r.get("analysis") is not None]
    counted = iter(count_words(analyses))
    for r in rows:
        r["words"] = next(counted) if r.get("analysis") is not None else None
    return rows


_PERCEPTION_KINDS = {
    "conversation_id": "str",
    "timestamp": "str",
    "available": "bool",
    "reason": "str",
    "analysis": "str",
    "words": "int",
    "appearance": "str",
    "behavior": "str",
    "emotions": "str",
    "screen_activity": "str",
    "sections": "json",
}


def read_perception(reader: ReaderInterface) -> tuple[pd.DataFrame, list[tuple]]:
    tables, problems = BUILDERS["perception"].build(reader)
    return tables["perception"], problems


def _recording_rows(reader, after, upto, problems) -> list[dict]:
    rows = []
    for cb_id, cid, et, ts, _, obj in _bodies(
        reader,
        "kind = ? AND event_type = ?",
        (ev.KIND_CONVERSATION, ev.RECORDING_READY),
        after,
        upto,
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
    return rows


def read_recordings(reader: ReaderInterface) -> tuple[pd.DataFrame, list[tuple]]:
    tables, problems = BUILDERS["recordings"].build(reader)
    return tables["recordings"], problems


def _post_call_action_rows(reader, after, upto, problems) -> list[dict]:
    rows = []
    for cb_id, cid, et, ts, _, obj in _bodies(
        reader,
        "kind = ? AND event_type = ?",
        (ev.KIND_CONVERSATION, ev.POST_CALL_ACTION),
        after,
        upto,
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
    return rows


def read_post_call_actions(reader: ReaderInterface) -> tuple[pd.DataFrame, list[tuple]]:
    tables, problems = BUILDERS["post_call_actions"].build(reader)
    return tables["post_call_actions"], problems


def _other_event_rows(reader, after, upto, problems) -> list[dict]:
    rows = []
    for cb_id, cid, et, ts, _, obj in _bodies(
        reader,
        f"kind = ? AND event_type NOT IN ({q.placeholders(_TABULATED)})",
        (ev.KIND_CONVERSATION, *_TABULATED),
        after,
        upto,
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
    return rows


def read_other_events(reader: ReaderInterface) -> tuple[pd.DataFrame, list[tuple]]:
    tables, problems = BUILDERS["other_events"].build(reader)
    return tables["other_events"], problems


def _replica_rows(reader, after, upto, problems) -> list[dict]:
    rows = []
    for cb_id, _, et, _, received, obj in _bodies(
        reader, "kind = ?", (ev.KIND_REPLICA_TRAINING,), after, upto
    ):
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
    return rows


def read_replicas(reader: ReaderInterface) -> tuple[pd.DataFrame, list[tuple]]:
    tables, problems = BUILDERS["replicas"].build(reader)
    return tables["replicas"], problems


_VIDEO_KINDS = {
    "id": "int",
    "received_at": "str",
    "video_id": "str",
    "replica_id": "str",
    "video_name": "str",
    "status": "str",
    "status_details": "str",
    "created_at": "str",
    "updated_at": "str",
    "generation_progress": "str",
    "script": "str",
    "download_url": "str",
    "hosted_url": "str",
    "stream_url": "str",
    "error_details": "str",
}


def _extract_videos(reader: ReaderInterface, after: int, upto: int) -> Facts:
    problems = Problems("videos")
    rows = []
    for cb_id, _, et, _, received, obj in _bodies(
        reader, "kind = ?", (ev.KIND_VIDEO,), after, upto
    ):
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
    return {"rows": _rows_facts(rows, _VIDEO_KINDS), "problems": problems.arrow()}


def _assemble_videos(facts: Facts, reader: ReaderInterface):
    """One row per video: its latest callback (by ``updated_at``, else arrival)."""
    problems = Problems("videos")
    problems.extend(facts["problems"])
    if not facts["rows"].num_rows:
        return {"videos": fr.frame(_VIDEOS)}, problems.rows
    columns = _rows_of(facts["rows"], _VIDEO_KINDS)
    rows = [dict(zip(columns, v, strict=True)) for v in zip(*columns.values(), strict=True)]
    frame = pd.DataFrame(rows)
    frame["callbacks"] = frame.groupby("video_id", dropna=False)["id"].transform("size")
    for name in ("created_at", "updated_at", "received_at"):
        frame[name] = parse_times(frame[name]).array
    frame["order"] = frame["updated_at"].fillna(frame["received_at"])
    latest = fr.latest(frame, "video_id", "order").sort_values("id")
    latest["generation_s"] = (latest["updated_at"] - latest["created_at"]).dt.total_seconds()
    return {"videos": fr.frame(_VIDEOS, {c: latest[c] for c in latest.columns})}, problems.rows


def read_videos(reader: ReaderInterface) -> tuple[pd.DataFrame, list[tuple]]:
    tables, problems = BUILDERS["videos"].build(reader)
    return tables["videos"], problems


def _recording_failure_rows(reader, after, upto, problems) -> list[dict]:
    rows = []
    for cb_id, cid, et, ts, _, obj in _bodies(
        reader,
        "kind = ? AND event_type = ?",
        (ev.KIND_CONVERSATION, ev.RECORDING_COPY_FAILED),
        after,
        upto,
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
    return rows


def read_recording_failures(reader: ReaderInterface) -> tuple[pd.DataFrame, list[tuple]]:
    tables, problems = BUILDERS["recording_failures"].build(reader)
    return tables["recording_failures"], problems


def _objective(obj: Any) -> tuple[str, dict] | None:
    """(shape, the object holding ``objective_name`` and ``output_variables``)."""
    if not isinstance(obj, dict):
        return None
    shape = ev.objective_shape(obj)
    if shape == "nested":
        props = obj.get("properties")
        return (shape, props) if isinstance(props, dict) else None
    return (shape, obj) if shape == "flat" else None


_OBJECTIVE_KINDS = {
    "conversation_id": "str",
    "objective_name": "str",
    "completed_at": "str",
    "shape": "str",
    "variables": "int",
    "found": "int",
    "output_variables": "json",
    "callback_id": "int",
}
_OUTPUT_KINDS = {
    "conversation_id": "str",
    "objective_name": "str",
    "completed_at": "str",
    "variable": "str",
    "value": "str",
    "value_type": "str",
    "found": "bool",
    "raw": "json",
}


def _extract_objectives(reader: ReaderInterface, after: int, upto: int) -> Facts:
    problems = Problems("objectives")
    completions, outputs = [], []
    for cb_id, cid, et, _, received, obj in _bodies(
        reader, q.of_kind(ev.KIND_OBJECTIVE), (), after, upto
    ):
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
    return {
        "completions": _rows_facts(completions, _OBJECTIVE_KINDS),
        "outputs": _rows_facts(outputs, _OUTPUT_KINDS),
        "problems": problems.arrow(),
    }


def _assemble_objectives(facts: Facts, reader: ReaderInterface):
    problems = Problems("objectives")
    problems.extend(facts["problems"])
    done = facts["completions"]
    out = facts["outputs"]
    return {
        "objectives": fr.frame(
            _OBJECTIVES, _rows_of(done, _OBJECTIVE_KINDS) if done.num_rows else None
        ),
        "objective_outputs": fr.frame(
            _OBJECTIVE_OUTPUTS, _rows_of(out, _OUTPUT_KINDS) if out.num_rows else None
        ),
    }, problems.rows


def read_objectives(reader: ReaderInterface) -> tuple[pd.DataFrame, pd.DataFrame, list[tuple]]:
    """``objectives`` and ``objective_outputs``, from the objective completion callbacks."""
    tables, problems = BUILDERS["objectives"].build(reader)
    return tables["objectives"], tables["objective_outputs"], problems


_GUARDRAIL_KINDS = {
    "id": "int",
    "conversation_id": "str",
    "event_type": "str",
    "readable": "bool",
    "guardrail": "str",
    "guardrail_uuid": "str",
    "reason": "str",
}


def _extract_guardrails(reader: ReaderInterface, after: int, upto: int) -> Facts:
    """What each guardrail callback says; its deliveries (each one a trigger) are read when the
    table is assembled, since an older callback can be delivered again."""
    facts = []
    for cb_id, cid, et, _, _, obj in _bodies(reader, q.of_kind(ev.KIND_GUARDRAIL), (), after, upto):
        props = obj.get("properties") if isinstance(obj, dict) else None
        row = {"id": cb_id, "conversation_id": cid, "event_type": et}
        if isinstance(props, dict):
            row.update(
                readable=True,
                guardrail=ev.scalar_text(props.get("guardrail", props.get("guardrail_name"))),
                guardrail_uuid=ev.scalar_text(props.get("guardrail_uuid")),
                reason=ev.scalar_text(props.get("reason")),
            )
        else:
            row["readable"] = False
        facts.append(row)
    return {"callbacks": _rows_facts(facts, _GUARDRAIL_KINDS)}


def _assemble_guardrails(facts: Facts, reader: ReaderInterface):
    """One row per delivery of a guardrail callback: each is a trigger."""
    problems = Problems("guardrail_triggers")
    callbacks = _rows_of(facts["callbacks"], _GUARDRAIL_KINDS)
    where = {cb_id: i for i, cb_id in enumerate(callbacks["id"])}
    deliveries = reader.query(q.deliveries_of(ev.KIND_GUARDRAIL), (reader.max_id,))
    rows = []
    seen: dict[int, int] = {}
    for cb_id, received in deliveries:
        i = where[cb_id]
        cid, et = callbacks["conversation_id"][i], callbacks["event_type"][i]
        if not callbacks["readable"][i]:
            if cb_id not in seen:
                problems.add(cb_id, cid, et, "properties is not an object: skipped")
            seen[cb_id] = seen.get(cb_id, 0) + 1
            continue
        seen[cb_id] = seen.get(cb_id, 0) + 1
        rows.append(
            {
                "conversation_id": cid,
                "guardrail": callbacks["guardrail"][i],
                "guardrail_uuid": callbacks["guardrail_uuid"][i],
                "triggered_at": received,  # no timestamp is sent: each arrival
                "delivery": seen[cb_id],
                "event_type": et,
                "reason": callbacks["reason"][i],
                "callback_id": cb_id,
            }
        )
    data = {k: [r[k] for r in rows] for k in _GUARDRAIL_TRIGGERS} if rows else None
    return {"guardrail_triggers": fr.frame(_GUARDRAIL_TRIGGERS, data)}, problems.rows


def read_guardrail_triggers(reader: ReaderInterface) -> tuple[pd.DataFrame, list[tuple]]:
    tables, problems = BUILDERS["guardrail_triggers"].build(reader)
    return tables["guardrail_triggers"], problems


_CANVAS_KINDS = {
    "conversation_id": "str",
    "timestamp": "str",
    "interaction_id": "str",
    "tool_call_id": "str",
    "component": "str",
    "component_version": "str",
    "type": "str",
    "skipped": "bool",
    "selected_option_ids": "json",
    "value": "json",
    "client": "str",
    "created_at": "str",
}


def _canvas_rows(reader, after, upto, problems) -> list[dict]:
    rows = []
    for cb_id, cid, et, ts, _, obj in _bodies(reader, q.of_kind(ev.KIND_CANVAS), (), after, upto):
        props = _props(obj, problems, cb_id, cid, et)
        if props is None:
            continue
        value = props.get("value")
        metadata = props.get("metadata")
        skipped = value.get("skipped") if isinstance(value, dict) else None
        rows.append(
            {
                "conversation_id": cid,
                "timestamp": ts,
                "interaction_id": ev.scalar_text(props.get("interaction_id")),
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
    return rows


def _assemble_canvas(facts: Facts, reader: ReaderInterface):
    """One row per canvas interaction (by ``interaction_id``: one received live and again from
    the history endpoint counts once, the first stored)."""
    problems = Problems("canvas_interactions")
    problems.extend(facts["problems"])
    columns = _rows_of(facts["rows"], _CANVAS_KINDS)
    ids: set[str] = set()
    keep = []
    for interaction in columns["interaction_id"]:
        if interaction is not None:
            if interaction in ids:
                keep.append(False)
                continue
            ids.add(interaction)
        keep.append(True)
    data = {k: [v for v, kept in zip(vs, keep, strict=True) if kept] for k, vs in columns.items()}
    return {
        "canvas_interactions": fr.frame(_CANVAS_INTERACTIONS, data if any(keep) else None)
    }, problems.rows


def read_canvas_interactions(reader: ReaderInterface) -> tuple[pd.DataFrame, list[tuple]]:
    tables, problems = BUILDERS["canvas_interactions"].build(reader)
    return tables["canvas_interactions"], problems


def _canvas_builder() -> Builder:
    rows = _row_table("canvas_interactions", _CANVAS_INTERACTIONS, _CANVAS_KINDS, _canvas_rows)
    return dataclasses.replace(rows, assemble=_assemble_canvas)


#: Every builder, by name; each gives the tables it names (``objectives`` gives two).
BUILDERS: dict[str, Builder] = {
    "events": Builder(("events",), _extract_events, _assemble_events, parallel=True),
    "conversations": Builder(
        ("conversations",),
        _extract_conversations,
        _assemble_conversations,
        _merge_conversations,
        parallel=True,
        rebase=_rebase_prompts,
    ),
    "turns": Builder(("turns",), _extract_turns, _assemble_turns, parallel=True),
    "perception": _row_table("perception", _PERCEPTION, _PERCEPTION_KINDS, _perception_rows),
    "recordings": _row_table(
        "recordings",
        _RECORDINGS,
        {c: "str" for c in _RECORDINGS} | {"duration": "float"},
        _recording_rows,
    ),
    "post_call_actions": _row_table(
        "post_call_actions",
        _POST_CALL_ACTIONS,
        {c: "str" for c in _POST_CALL_ACTIONS}
        | {"request": "json", "request_body": "json", "response": "json"},
        _post_call_action_rows,
    ),
    "recording_failures": _row_table(
        "recording_failures",
        _RECORDING_FAILURES,
        {c: "str" for c in _RECORDING_FAILURES} | {"duration": "float"},
        _recording_failure_rows,
    ),
    "objectives": Builder(
        ("objectives", "objective_outputs"), _extract_objectives, _assemble_objectives
    ),
    "guardrail_triggers": Builder(
        ("guardrail_triggers",), _extract_guardrails, _assemble_guardrails
    ),
    "canvas_interactions": _canvas_builder(),
    "other_events": _row_table(
        "other_events",
        _OTHER_EVENTS,
        {c: "str" for c in _OTHER_EVENTS} | {"properties": "json"},
        _other_event_rows,
    ),
    "replicas": _row_table("replicas", _REPLICAS, {c: "str" for c in _REPLICAS}, _replica_rows),
    "videos": Builder(("videos",), _extract_videos, _assemble_videos),
}


def read_annotations(reader: ReaderInterface) -> pd.DataFrame:
    """The review labels and notes not removed, oldest first (none in a database made before
    them that no store has opened since)."""
    with reader.connect() as conn:
        if not reader.query(q.HAS_ANNOTATIONS, (), conn)[0][0]:
            return fr.frame(_ANNOTATIONS)
        rows = reader.query(q.ANNOTATIONS, (), conn)
    return fr.frame(_ANNOTATIONS, dict(zip(_ANNOTATIONS, fr.columns_of(rows, 6), strict=True)))
