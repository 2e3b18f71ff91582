"""One call on one page: :class:`Conversation`, its timeline, and its HTML and text renderers.

``ds.conversation(conversation_id)`` gathers the rows of every table of a
:class:`~tavus_analytics.dataset.Dataset` that belong to one call and lays them out in the order
they happened: the join, the turns (tool calls and their results folded, knowledge-base
retrievals marked), objective completions, guardrail triggers and canvas interactions where they
fell among the turns, the shutdown, then what arrived after the call (the recording, the
perception analysis by section, post-call actions, other events), and last the problems the
loader found for this call. In a notebook the object displays as that page
(``_repr_html_``); ``str(page)`` (and ``repr``) is the same page as text for a terminal, and
:func:`render_html` with ``standalone=True`` makes one self-contained HTML file.

Everything taken from a callback is untrusted: in HTML it is escaped (``html.escape``, quotes
included), so a transcript holding ``<script>`` shows as text; in the terminal, control
characters (ANSI escapes) and bidirectional overrides are shown as ``\\x1b``-style escapes. The
page has no script and no external resource (inline style sheet); a ``<video>`` element is
written only for an ``http://`` or ``https://`` recording URI (escaped, with
``preload="none"``: nothing is fetched until someone presses play), and never in a report.
Rendering reads nothing but the tables already loaded: no network.

``redact``, a function ``str -> str``, is applied to every free text taken from a callback
before it is shown: transcript messages, tool arguments and results, the system prompt and
knowledge-base texts, objective output values, guardrail reasons, canvas values, the shutdown
reason, recording URIs and error messages, perception analyses, post-call requests and
responses, and the properties of other events. Identifiers and names (conversation, replica,
tool, objective, variable and guardrail names, event types) are shown as sent. ``labels``, a
table with a ``conversation_id`` column (review labels), is shown when given.
"""

from __future__ import annotations

import contextlib
import functools
import html
import json
import os
import re
import textwrap
import urllib.parse
import weakref
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from . import events as ev
from .errors import ConversationNotFound, TavusAnalyticsError
from .frames import STR
from .stats import duration_text

__all__ = ["CSS", "TABLES", "Conversation", "render_html", "render_text", "write"]

Redact = Callable[[str], str]

#: The tables of a call, reachable as attributes of a :class:`Conversation`: the rows of the
#: dataset's table of the same name whose ``conversation_id`` is the call's.
TABLES = (
    "turns",
    "perception",
    "recordings",
    "recording_failures",
    "post_call_actions",
    "objectives",
    "objective_outputs",
    "guardrail_triggers",
    "canvas_interactions",
    "other_events",
    "problems",
)

#: Where each kind of entry goes among entries of the same time: the join, then the transcript,
#: then what happened during the call, the shutdown, and what arrives after a call.
_RANK = {
    "joined": 0,
    "system_prompt": 1,
    "turn": 1,
    "tool_call": 1,
    "tool_result": 1,
    "knowledge": 1,
    "system": 1,
    "objective": 2,
    "guardrail": 2,
    "canvas": 2,
    "shutdown": 3,
    "recording": 4,
    "recording_failed": 4,
    "perception": 5,
    "perception_unavailable": 5,
    "post_call_action": 6,
    "other": 7,
}
#: The label of each kind of entry, on the page.
_TAGS = {
    "joined": "joined",
    "system_prompt": "prompt",
    "knowledge": "knowledge",
    "system": "system",
    "tool_call": "tool call",
    "tool_result": "tool result",
    "objective": "objective",
    "guardrail": "guardrail",
    "canvas": "canvas",
    "shutdown": "shutdown",
    "recording": "recording",
    "recording_failed": "recording",
    "perception": "perception",
    "perception_unavailable": "perception",
    "post_call_action": "post-call",
    "other": "event",
}
_WHAT = {
    "system_prompt": "system prompt",
    "knowledge": "knowledge-base retrieval",
    "system": "system message",
}
_FIRST, _LAST = -(2**63), 2**63 - 1  # sort keys of an unknown time: before or after the rest

_KNOWLEDGE = re.compile(r"^\s*information from documents", re.I)
#: The role colours of the charts (``charts.ROLE_COLORS``), without importing matplotlib.
_USER, _ASSISTANT, _TOOL = "#E69F00", "#0072B2", "#CC79A7"
_FOLD_CHARS = 1500  # a message longer than this is folded, its start shown
_SHORT = 200  # the text form shows this much of folded texts

#: The page's style sheet: every rule scoped to ``.tac`` so that a notebook or a report that
#: embeds pages keeps its own look.
CSS = f"""
.tac {{ font: 14px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: #1d1d1d; background: #fff; max-width: 980px; padding: 14px 18px; }}
.tac h2 {{ font-size: 20px; margin: 0 0 8px; }}
.tac h3 {{ font-size: 15px; margin: 18px 0 8px; padding-bottom: 3px;
  border-bottom: 1px solid #d8d8d8; }}
.tac code {{ background: #efefec; padding: 0 4px; border-radius: 3px; font-size: 12.5px; }}
.tac table.tac-facts {{ border-collapse: collapse; }}
.tac table.tac-facts th {{ text-align: left; color: #555; font-weight: 600; padding: 2px 16px 2px 0;
  vertical-align: top; white-space: nowrap; }}
.tac table.tac-facts td {{ text-align: left; padding: 2px 0; vertical-align: top; }}
.tac .tac-missing {{ color: #8a8a8a; }}
.tac .tac-pill {{ display: inline-block; padding: 0 7px; border-radius: 9px; font-size: 12px;
  font-weight: 600; color: #fff; background: #999; }}
.tac .tac-completed {{ background: #009E73; }} .tac .tac-failed {{ background: #D55E00; }}
.tac .tac-no_show {{ background: #E69F00; }}
.tac ol.tac-timeline {{ list-style: none; margin: 0; padding: 0; }}
.tac ol.tac-timeline > li {{ display: flex; gap: 10px; padding: 3px 0; }}
.tac .tac-t {{ flex: 0 0 62px; text-align: right; color: #6b6b6b; font-size: 12px;
  font-variant-numeric: tabular-nums; padding-top: 4px; line-height: 1.25; }}
.tac .tac-t small {{ color: #9a9a9a; font-size: 10.5px; }}
.tac .tac-body {{ flex: 1 1 auto; min-width: 0; }}
.tac .tac-bubble {{ border-radius: 8px; padding: 5px 10px; max-width: 46em;
  white-space: pre-wrap; overflow-wrap: anywhere; }}
.tac .tac-user .tac-bubble {{ background: #fdf1dc; border-left: 4px solid {_USER}; }}
.tac .tac-assistant .tac-bubble {{ background: #e4eef7; border-left: 4px solid {_ASSISTANT};
  margin-left: 3em; }}
.tac .tac-other-role .tac-bubble {{ background: #f1f1f1; border-left: 4px solid #999; }}
.tac .tac-who {{ font-weight: 600; font-size: 12px; color: #444; white-space: normal; }}
.tac .tac-who span {{ font-weight: 400; color: #666; margin-left: 5px; }}
.tac .tac-who .tac-overlap {{ color: #D55E00; }}
.tac .tac-ev {{ font-size: 13.5px; }}
.tac .tac-tag {{ display: inline-block; min-width: 6.5em; font-size: 11.5px; font-weight: 600;
  text-transform: uppercase; letter-spacing: .03em; color: #555; }}
.tac .tac-tool .tac-tag {{ color: {_TOOL}; }} .tac .tac-knowledge .tac-tag {{ color: #0072B2; }}
.tac .tac-guardrail .tac-tag, .tac .tac-recording_failed .tac-tag {{ color: #D55E00; }}
.tac .tac-objective .tac-tag {{ color: #009E73; }}
.tac .tac-shutdown, .tac .tac-joined {{ font-weight: 600; }}
.tac details > summary {{ cursor: pointer; list-style: none; }}
.tac details > summary::-webkit-details-marker {{ display: none; }}
.tac details > summary::after {{ content: " \\25B8"; color: #888; }}
.tac details[open] > summary::after {{ content: " \\25BE"; }}
.tac pre {{ white-space: pre-wrap; overflow-wrap: anywhere; background: #f5f5f2; margin: 4px 0;
  padding: 6px 8px; max-height: 26em; overflow: auto; font-size: 12px; }}
.tac table.tac-vars {{ border-collapse: collapse; margin: 3px 0 0 6.5em; font-size: 13px; }}
.tac table.tac-vars td {{ padding: 1px 12px 1px 0; vertical-align: top; }}
.tac dl.tac-sections {{ margin: 4px 0 0; }}
.tac dl.tac-sections dt {{ font-weight: 600; margin-top: 6px; }}
.tac dl.tac-sections dd {{ margin: 0 0 0 1.2em; white-space: pre-wrap; overflow-wrap: anywhere; }}
.tac ul.tac-problems {{ margin: 0; padding-left: 1.3em; }}
.tac video {{ display: block; max-width: 480px; margin-top: 4px; }}
"""


# -- the object ----------------------------------------------------------------------------------
class Conversation:
    """One call: its row of ``conversations``, its rows of every other table, and its timeline.

    Made by :meth:`tavus_analytics.dataset.Dataset.conversation`. Displays as one page in a
    notebook (``_repr_html_``) and as text with ``print`` or ``repr``.

    Attributes
    ----------
    conversation_id : str
    conversation : pandas.Series or None
        The call's row of ``ds.conversations`` (None when only objective, guardrail or canvas
        callbacks name the call).
    turns, perception, recordings, recording_failures, post_call_actions, objectives,
    objective_outputs, guardrail_triggers, canvas_interactions, other_events, problems :
    pandas.DataFrame
        The call's rows of the dataset's table of the same name (same columns), in their order.
    labels : pandas.DataFrame or None
        Review labels of the call, shown on the page when given.
    redact : callable or None
        Applied to every free text from a callback before it is shown (see the module).
    """

    def __init__(
        self,
        conversation_id: str,
        conversation: pd.Series | None,
        tables: dict[str, pd.DataFrame],
        *,
        labels: pd.DataFrame | None = None,
        redact: Redact | None = None,
    ) -> None:
        missing = set(TABLES) - set(tables)
        if missing:
            raise TypeError(f"tables missing: {sorted(missing)}")
        self.conversation_id = conversation_id
        self.conversation = conversation
        for name in TABLES:
            setattr(self, name, tables[name].reset_index(drop=True))
        if labels is not None and "conversation_id" in labels.columns:
            labels = labels[(labels["conversation_id"] == conversation_id).to_numpy(dtype=bool)]
        self.labels = None if labels is None else labels.reset_index(drop=True)
        self.redact = redact

    # declared for type checkers; set in __init__
    turns: pd.DataFrame
    perception: pd.DataFrame
    recordings: pd.DataFrame
    recording_failures: pd.DataFrame
    post_call_actions: pd.DataFrame
    objectives: pd.DataFrame
    objective_outputs: pd.DataFrame
    guardrail_triggers: pd.DataFrame
    canvas_interactions: pd.DataFrame
    other_events: pd.DataFrame
    problems: pd.DataFrame

    @classmethod
    def from_dataset(
        cls,
        ds: Any,
        conversation_id: str,
        *,
        labels: pd.DataFrame | None = None,
        redact: Redact | None = None,
    ) -> Conversation:
        """The call ``conversation_id`` of a Dataset (its tables are loaded once, then kept).

        Raises
        ------
        ConversationNotFound
            When no table of the dataset names the id.
        """
        cid = str(conversation_id)
        rows = _rows_of(ds.conversations, cid)
        tables = {name: _rows_of(getattr(ds, name), cid) for name in TABLES}
        side = ("objectives", "guardrail_triggers", "canvas_interactions")
        if rows.empty and not any(len(tables[name]) for name in side):
            raise ConversationNotFound(_not_found(ds, cid), cid)
        return cls(
            cid,
            rows.iloc[0] if len(rows) else None,
            tables,
            labels=labels,
            redact=redact,
        )

    # -- derived ---------------------------------------------------------------------------------
    @functools.cached_property
    def timeline(self) -> pd.DataFrame:
        """Everything that happened in the call, in order: one row per entry of the page.

        Transcript messages keep their order; every other entry goes where its time falls
        among them (objective completions and guardrail triggers carry no time of their own:
        their arrival is used). Entries with the same time go join, transcript, in-call events,
        shutdown, recording, perception, post-call actions, other events.

        Returns
        -------
        pandas.DataFrame
            kind : str, ``joined``, ``system_prompt``, ``turn``, ``tool_call``, ``tool_result``,
            ``knowledge`` (a knowledge-base retrieval), ``system`` (another system message),
            ``objective``, ``guardrail``, ``canvas``, ``shutdown``, ``recording``,
            ``recording_failed``, ``perception``, ``perception_unavailable``,
            ``post_call_action`` or ``other``.
            time : datetime64[ns, UTC], when it happened or arrived (NaT when unknown).
            offset_s : float64, seconds from the join (a turn's own ``seconds_from_start``
            where sent).
            role : str, the transcript role (transcript entries only).
            turn : Int64, the position in the transcript (transcript entries only).
            text : str, the message, or the name of what happened (objective, guardrail, tool).
            answer_delay_s : float64, seconds the caller waited for this answer (``turns``).
            data : object, a dict of what else the entry shows.
        """
        columns = ["kind", "time", "offset_s", "role", "turn", "text", "answer_delay_s", "data"]
        rows = [{k: getattr(e, k) for k in columns} for e in self._entries]
        frame = pd.DataFrame(rows, columns=columns)
        return frame.astype(
            {
                "kind": STR,
                "time": "datetime64[ns, UTC]",
                "offset_s": "float64",
                "role": STR,
                "turn": "Int64",
                "text": STR,
                "answer_delay_s": "float64",
            }
        )

    @functools.cached_property
    def _entries(self) -> list[SimpleNamespace]:
        return _timeline(self)

    @property
    def persona_id(self) -> str | None:
        """The persona, where a callback of the call names one (``persona_id`` or ``pal_id`` in
        an event's properties); Tavus's documented callbacks do not."""
        for props in self.other_events["properties"]:
            if isinstance(props, dict):
                for key in ("persona_id", "pal_id"):
                    value = props.get(key)
                    if isinstance(value, str) and value:
                        return value
        return None

    # -- display ---------------------------------------------------------------------------------
    def to_html(self, **options: Any) -> str:
        """The page as HTML; see :func:`render_html` for the options."""
        return render_html(self, **options)

    def to_text(self, **options: Any) -> str:
        """The page as text; see :func:`render_text` for the options."""
        return render_text(self, **options)

    def _repr_html_(self) -> str:
        return render_html(self)

    def __str__(self) -> str:
        return render_text(self)

    def __repr__(self) -> str:
        return render_text(self)


#: Per table of a dataset (by ``id``): a weak reference to it, and then either ``None`` (asked
#: for one call so far) or its rows' positions per conversation. Pages after the first of a
#: dataset then take their rows without reading a whole column; an entry goes with its table.
_INDEXES: dict[int, tuple[weakref.ref, dict[str, np.ndarray] | None]] = {}


def _positions(table: pd.DataFrame) -> dict[str, np.ndarray]:
    """The positions of each conversation's rows in ``table``, in the table's order."""
    codes, uniques = pd.factorize(table["conversation_id"])
    order = np.argsort(codes, kind="stable")[int((codes < 0).sum()) :]  # NA first: left out
    ends = np.cumsum(np.bincount(codes[codes >= 0], minlength=len(uniques)))
    starts = ends - np.bincount(codes[codes >= 0], minlength=len(uniques))
    return {str(u): order[a:b] for u, a, b in zip(uniques, starts, ends, strict=True)}


def _rows_of(table: pd.DataFrame, cid: str) -> pd.DataFrame:
    """The rows of one conversation: by a mask for the first call asked of a table, by its
    index from the second on."""
    if table.empty:
        return table
    key = id(table)
    seen = _INDEXES.get(key)
    if seen is None or seen[0]() is not table:
        ref = weakref.ref(table, lambda _, key=key: _INDEXES.pop(key, None))
        _INDEXES[key] = (ref, None)
        return table[(table["conversation_id"] == cid).to_numpy(dtype=bool)]
    ref, index = seen
    if index is None:
        index = _positions(table)
        _INDEXES[key] = (ref, index)
    pos = index.get(cid)
    if pos is None:
        return table.iloc[:0]
    if pos[-1] - pos[0] + 1 == len(pos):  # one run of rows (a transcript is): a slice, no copy
        return table.iloc[pos[0] : pos[-1] + 1]
    return table.iloc[pos]


def _not_found(ds: Any, cid: str) -> str:
    where = getattr(ds, "name", "the dataset")
    return (
        f"no conversation {cid!r} in {where}: check the id (the conversations table lists "
        "every call; tavus-analytics search finds a call by what was said)"
    )


# -- the timeline --------------------------------------------------------------------------------
def _ts(value: Any) -> pd.Timestamp | None:
    if value is None or pd.isna(value):
        return None
    return pd.Timestamp(value)


def _num(value: Any) -> float | None:
    if value is None or pd.isna(value):
        return None
    return float(value)


def _str(value: Any) -> str | None:
    if value is None or (not isinstance(value, (dict, list)) and pd.isna(value)):
        return None
    return value if isinstance(value, str) else str(value)


def _key(time: pd.Timestamp | None, missing: int) -> int:
    return missing if time is None else int(time.value)


def _tool_calls(text: str | None) -> list[dict]:
    """The tool calls of an assistant message (``turns.tool_calls``, JSON text)."""
    if not text:
        return []
    try:
        calls = json.loads(text)
    except ValueError:
        return [{"name": None, "arguments": text, "id": None, "raw": text}]
    if isinstance(calls, dict):
        calls = [calls]
    out = []
    for call in calls if isinstance(calls, list) else []:
        if not isinstance(call, dict):
            out.append({"name": None, "arguments": None, "id": None, "raw": call})
            continue
        fn = call.get("function") if isinstance(call.get("function"), dict) else {}
        out.append(
            {
                "name": ev.scalar_text(fn.get("name", call.get("name"))),
                "arguments": fn.get("arguments", call.get("arguments")),
                "id": ev.scalar_text(call.get("id")),
                "raw": call,
            }
        )
    return out


def _records(table: pd.DataFrame, columns: str) -> Any:
    """The values of these columns (space separated), row by row, as plain Python values: a
    namespace per row, without the cost of ``itertuples`` (nothing for a table without rows)."""
    if table.empty:
        return ()
    names = columns.split()
    values = [table[name].tolist() for name in names]
    rows = zip(*values, strict=True)
    return (SimpleNamespace(**dict(zip(names, row, strict=True))) for row in rows)


def _timeline(page: Conversation) -> list[SimpleNamespace]:
    c = page.conversation
    joined = _ts(c["joined_at"]) if c is not None else None
    rows: list[dict] = []

    def add(kind: str, time: pd.Timestamp | None, sort: int, **fields: Any) -> None:
        offset = fields.pop("offset_s", None)
        if offset is None and time is not None and joined is not None:
            offset = (time - joined).total_seconds()
        rows.append(
            {
                "kind": kind,
                "time": time,
                "offset_s": offset,
                "role": fields.pop("role", None),
                "turn": fields.pop("turn", None),
                "text": fields.pop("text", None),
                "answer_delay_s": fields.pop("answer_delay_s", None),
                "data": fields,
                "_sort": (sort, _RANK[kind], len(rows)),
            }
        )

    if joined is not None:
        add("joined", joined, joined.value, text=_str(c["replica_id"]))

    # The transcript, in its order: each message sorts at the latest time seen so far (its own
    # when sent), so that nothing else can reorder it.
    latest = _FIRST if joined is None else joined.value
    tool_names: dict[str, str | None] = {}
    prompt_seen = False
    turns = page.turns.sort_values("turn", kind="stable")
    columns = "turn role content words timestamp seconds_from_start duration tool_call_id "
    for t in _records(turns, columns + "tool_calls answer_delay_s overlap"):
        time = _ts(t.timestamp)
        start = _num(t.seconds_from_start)
        if time is None and start is not None and joined is not None:
            time = joined + pd.Timedelta(seconds=start)
        offset = start
        if offset is None and time is not None and joined is not None:
            offset = (time - joined).total_seconds()
        if time is not None:
            latest = max(latest, time.value)
        role = _str(t.role)
        content = _str(t.content)
        common = {"role": role, "turn": int(t.turn), "offset_s": offset}
        if role == "system":
            if content is not None and _KNOWLEDGE.match(content):
                kind = "knowledge"
            elif not prompt_seen:
                kind, prompt_seen = "system_prompt", True
            else:
                kind = "system"
            add(kind, time, latest, text=content, words=int(t.words), **common)
            continue
        if role == "tool":
            call_id = _str(t.tool_call_id)
            add(
                "tool_result",
                time,
                latest,
                text=content,
                tool_call_id=call_id,
                tool=tool_names.get(call_id) if call_id else None,
                **common,
            )
            continue
        calls = _tool_calls(_str(t.tool_calls))
        if content or not calls:
            overlap = t.overlap
            add(
                "turn",
                time,
                latest,
                text=content,
                answer_delay_s=_num(t.answer_delay_s),
                duration_s=_num(t.duration),
                overlap=None if pd.isna(overlap) else bool(overlap),
                **common,
            )
        for call in calls:
            if call["id"]:
                tool_names[call["id"]] = call["name"]
            add("tool_call", time, latest, text=call["name"], call=call, **common)

    for o in _records(page.objectives, "completed_at objective_name output_variables"):
        time = _ts(o.completed_at)
        add(
            "objective",
            time,
            _key(time, _LAST),
            text=_str(o.objective_name),
            variables=o.output_variables,
        )
    for g in _records(
        page.guardrail_triggers, "triggered_at guardrail delivery reason guardrail_uuid"
    ):
        time = _ts(g.triggered_at)
        add(
            "guardrail",
            time,
            _key(time, _LAST),
            text=_str(g.guardrail),
            delivery=int(g.delivery),
            reason=_str(g.reason),
            guardrail_uuid=_str(g.guardrail_uuid),
        )
    for x in _records(page.canvas_interactions, "timestamp component type value"):
        time = _ts(x.timestamp)
        add(
            "canvas",
            time,
            _key(time, _LAST),
            text=_str(x.component),
            type=_str(x.type),
            value=x.value,
        )
    if c is not None and (pd.notna(c["shutdown_at"]) or pd.notna(c["outcome"])):
        time = _ts(c["shutdown_at"])
        add(
            "shutdown",
            time,
            _key(time, _LAST),
            text=_str(c["shutdown_reason"]),
            category=_str(c["shutdown_category"]),
            outcome=_str(c["outcome"]),
        )
    for r in _records(page.recordings, "timestamp uri duration storage_provider"):
        time = _ts(r.timestamp)
        add(
            "recording",
            time,
            _key(time, _LAST),
            text=_str(r.uri),
            duration_s=_num(r.duration),
            provider=_str(r.storage_provider),
        )
    for f in _records(
        page.recording_failures, "timestamp error_code error_message s3_key storage_provider"
    ):
        time = _ts(f.timestamp)
        add(
            "recording_failed",
            time,
            _key(time, _LAST),
            text=_str(f.error_code),
            message=_str(f.error_message),
            s3_key=_str(f.s3_key),
            provider=_str(f.storage_provider),
        )
    for p in _records(page.perception, "timestamp available sections analysis words reason"):
        time = _ts(p.timestamp)
        if p.available is True:
            sections = p.sections if isinstance(p.sections, dict) else {}
            add(
                "perception",
                time,
                _key(time, _LAST),
                text=_str(p.analysis),
                sections=sections,
                words=None if pd.isna(p.words) else int(p.words),
            )
        else:
            add("perception_unavailable", time, _key(time, _LAST), text=_str(p.reason))
    for a in _records(page.post_call_actions, "timestamp tool_name status request response"):
        time = _ts(a.timestamp)
        add(
            "post_call_action",
            time,
            _key(time, _LAST),
            text=_str(a.tool_name),
            status=_str(a.status),
            request=a.request,
            response=a.response,
        )
    for o in _records(page.other_events, "timestamp event_type properties"):
        time = _ts(o.timestamp)
        add("other", time, _key(time, _LAST), text=_str(o.event_type), properties=o.properties)

    rows.sort(key=lambda r: r.pop("_sort"))
    return [SimpleNamespace(**r) for r in rows]


# -- shared wording ------------------------------------------------------------------------------
def _offset(seconds: float | None) -> str:
    """``+1:05``, ``+1:02:03``, ``-0:02`` (whole seconds, cut as the clock is); empty when
    unknown."""
    if seconds is None or pd.isna(seconds):
        return ""
    sign = "-" if seconds < 0 else "+"
    total = int(abs(seconds))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{sign}{h}:{m:02d}:{s:02d}" if h else f"{sign}{m}:{s:02d}"


def _clock(time: Any) -> str:
    return "" if time is None or pd.isna(time) else f"{pd.Timestamp(time):%H:%M:%S}"


def _when(time: Any) -> str:
    return "-" if time is None or pd.isna(time) else f"{pd.Timestamp(time):%Y-%m-%d %H:%M:%S} UTC"


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else (plural or word + 's')}"


def _json(value: Any, indent: int | None = 2) -> str:
    """A value from a callback as JSON text (a string as it is)."""
    if isinstance(value, str):
        return value
    if value is None or (not isinstance(value, (dict, list)) and pd.isna(value)):
        return ""
    return json.dumps(value, indent=indent, ensure_ascii=False, default=str)


def _arguments(call: dict) -> str:
    """A tool call's arguments as compact text (arguments arrive as JSON text or an object)."""
    args = call.get("arguments")
    if isinstance(args, str):
        try:
            return json.dumps(json.loads(args), ensure_ascii=False)
        except ValueError:
            return args
    return _json(args, indent=None) if args is not None else ""


def _variables(variables: Any) -> list[tuple[str, str | None]]:
    """(variable, value as text or None for ``NOTFOUND``/null) of an objective completion."""
    if not isinstance(variables, dict):
        return [] if variables is None else [("", _json(variables, indent=None))]
    return [(str(k), ev.output_value(v)[0]) for k, v in variables.items()]


def _status_ok(status: str | None) -> bool | None:
    if status is None:
        return None
    return status.strip().lower() in ("success", "succeeded", "ok", "completed", "done")


def _header(page: Conversation) -> dict[str, Any]:
    """The facts of the page's header, as plain values (shared by both renderers)."""
    c = page.conversation
    out: dict[str, Any] = {"replica": None, "persona": page.persona_id}
    if c is not None:
        out.update(
            replica=_str(c["replica_id"]),
            joined=_ts(c["joined_at"]),
            ended=_ts(c["shutdown_at"]),
            duration=_num(c["duration_s"]),
            reason=_str(c["shutdown_reason"]),
            category=_str(c["shutdown_category"]),
            outcome=_str(c["outcome"]),
            status=_str(c["status"]),
            error_step=None if pd.isna(c["shutdown_error_step"]) else int(c["shutdown_error_step"]),
        )
    arrived, missing = [], []
    if c is not None and pd.notna(c["joined_at"]):
        arrived.append("join")
    else:
        missing.append("join")
    if c is not None and (pd.notna(c["shutdown_at"]) or pd.notna(c["outcome"])):
        arrived.append("shutdown")
    else:
        missing.append("shutdown")
    if len(page.turns):
        arrived.append(f"transcript ({_plural(len(page.turns), 'message')})")
    else:
        missing.append("transcript")
    analyses = int(page.perception["available"].fillna(False).sum()) if len(page.perception) else 0
    for n, word in (
        (len(page.recordings), "recording"),
        (len(page.recording_failures), "recording copy failure"),
        (analyses, None),
        (len(page.perception) - analyses, ""),
        (len(page.post_call_actions), "post-call action"),
        (len(page.objectives), "objective completion"),
        (len(page.guardrail_triggers), "guardrail trigger"),
        (len(page.canvas_interactions), "canvas interaction"),
        (len(page.other_events), "other event"),
    ):
        if not n:
            continue
        if word is None:
            arrived.append("perception analysis" if n == 1 else f"{n} perception analyses")
        elif word == "":
            arrived.append("perception unavailable")
        else:
            arrived.append(word if n == 1 else _plural(n, word))
    out["arrived"], out["missing"] = arrived, missing
    talk = []
    if c is not None and pd.notna(c["user_turns"]):
        talk.append(
            f"{_plural(int(c['user_turns']), 'user turn')} "
            f"({_plural(int(c['user_words']), 'word')}), "
            f"{_plural(int(c['assistant_turns']), 'assistant turn')} "
            f"({_plural(int(c['assistant_words']), 'word')})"
        )
        if pd.notna(c["answer_delay_median_s"]):
            talk.append(
                f"answer delay median {c['answer_delay_median_s']:.2f} s, "
                f"p90 {c['answer_delay_p90_s']:.2f} s"
            )
        if pd.notna(c["overlaps"]) and int(c["overlaps"]):
            talk.append(_plural(int(c["overlaps"]), "overlap"))
    out["talk"] = "; ".join(talk)
    return out


# -- HTML ----------------------------------------------------------------------------------------
def _video_source(uri: str) -> str | None:
    """``uri`` when a browser may play it in a ``<video>``: ``http`` or ``https`` with a host,
    no whitespace or control character. Anything else (``s3://``, ``javascript:``) is text."""
    if not uri or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in uri):
        return None
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme.lower() in ("http", "https") and parts.netloc:
        return uri
    return None


class _Html:
    """The HTML of one page; ``x(text)`` escapes an identifier, ``t(text)`` redacts then escapes
    a free text from a callback."""

    def __init__(self, page: Conversation, redact: Redact | None, video: bool) -> None:
        self.page = page
        self.redact = redact
        self.video = video

    @staticmethod
    def x(value: Any) -> str:
        return html.escape(_safe("" if value is None else str(value)), quote=True)

    def t(self, value: Any) -> str:
        text = "" if value is None else str(value)
        if self.redact is not None and text:
            text = self.redact(text)
        return html.escape(_safe(text), quote=True)

    def head(self) -> str:
        h = _header(self.page)
        x = self.x
        rows = [("replica", f"<code>{x(h['replica'])}</code>" if h["replica"] else "-")]
        if h["persona"]:
            rows.append(("persona", f"<code>{x(h['persona'])}</code>"))
        rows.append(("joined", x(_when(h.get("joined")))))
        ended = x(_when(h.get("ended")))
        if h.get("duration") is not None:
            ended += f", after {x(duration_text(h['duration']))}"
        rows.append(("ended", ended))
        if h.get("outcome") or h.get("reason"):
            outcome = h.get("outcome") or "unknown"
            shutdown = f'<span class="tac-pill tac-{x(outcome)}">{x(outcome)}</span> '
            if h.get("category"):
                shutdown += f"{x(h['category'])} "
            if h.get("reason"):
                shutdown += f"(<code>{self.t(h['reason'])}</code>)"
            rows.append(("shutdown", shutdown))
        elif h.get("status"):
            none_yet = f"none yet ({x(h['status'])})"
            rows.append(("shutdown", f'<span class="tac-missing">{none_yet}</span>'))
        if h["talk"]:
            rows.append(("talk", x(h["talk"])))
        arrived = x(", ".join(h["arrived"]) or "nothing")
        if h["missing"]:
            missing = x(", ".join(h["missing"]))
            arrived += f' <span class="tac-missing">(not arrived: {missing})</span>'
        rows.append(("arrived", arrived))
        table = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
        return (
            f"<h2>Conversation <code>{x(self.page.conversation_id)}</code></h2>"
            f'<table class="tac-facts">{table}</table>'
        )

    def entry(self, e: Any) -> str:
        x, t = self.x, self.t
        d = e.data
        kind = e.kind
        stamp = (
            f'<div class="tac-t">{x(_offset(e.offset_s))}<br><small>{x(_clock(e.time))}</small>'
            "</div>"
        )
        if kind == "turn":
            return self.turn(e, stamp)
        tag = _TAGS[kind]
        summary, fold, extra, open_ = "", None, "", False
        cls = "tool" if kind in ("tool_call", "tool_result") else kind
        if kind == "joined":
            summary = f"replica <code>{x(e.text)}</code> joined"
        elif kind in ("system_prompt", "knowledge", "system"):
            summary = f"{_WHAT[kind]}, {x(_plural(d['words'], 'word'))}"
            fold = f"<pre>{t(e.text)}</pre>"
        elif kind == "tool_call":
            call = d["call"]
            args = _arguments(call)
            short = args if len(args) <= 120 else args[:119] + "…"
            summary = f"<code>{x(call['name'] or '?')}</code>({t(short)})"
            fold = f"<pre>{t(_json(call['raw']))}</pre>"
        elif kind == "tool_result":
            text = e.text or ""
            pretty = text
            with contextlib.suppress(ValueError):
                pretty = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
            of = f"of <code>{x(d['tool'])}</code>, " if d.get("tool") else ""
            summary = f"{of}{x(_plural(len(text), 'character'))}"
            fold = f"<pre>{t(pretty)}</pre>"
        elif kind == "objective":
            summary = f"completed <code>{x(e.text)}</code>"
            rows = "".join(
                f"<tr><td><code>{x(k)}</code></td><td>"
                + (t(v) if v is not None else '<span class="tac-missing">not found</span>')
                + "</td></tr>"
                for k, v in _variables(d.get("variables"))
            )
            extra = f'<table class="tac-vars">{rows}</table>' if rows else ""
        elif kind == "guardrail":
            summary = f"triggered <code>{x(e.text)}</code>"
            if d.get("delivery", 1) > 1:
                summary += f" (again: trigger {x(d['delivery'])} of this guardrail)"
            if d.get("reason"):
                summary += f": {t(d['reason'])}"
        elif kind == "canvas":
            summary = f"<code>{x(e.text)}</code>: {x(d.get('type') or '?')}"
            if d.get("value") is not None:
                summary += f" <code>{t(_json(d['value'], indent=None))}</code>"
        elif kind == "shutdown":
            outcome = d.get("outcome") or "unknown"
            summary = (
                f'<span class="tac-pill tac-{x(outcome)}">{x(outcome)}</span> '
                + (f"{x(d['category'])} " if d.get("category") else "")
                + (f"(<code>{t(e.text)}</code>)" if e.text else "(no readable reason)")
            )
        elif kind == "recording":
            summary = f"<code>{t(e.text)}</code>" if e.text else "(no URI)"
            if d.get("duration_s") is not None:
                summary += f", {x(duration_text(d['duration_s']))}"
            if d.get("provider"):
                summary += f" on {x(d['provider'])}"
            shown = e.text if self.redact is None or not e.text else self.redact(e.text)
            source = _video_source(shown or "") if self.video else None
            if source is not None:
                extra = f'<video controls preload="none" src="{x(source)}"></video>'
        elif kind == "recording_failed":
            summary = (
                f"copy failed: <code>{x(e.text or '?')}</code>"
                + (f" {t(d['message'])}" if d.get("message") else "")
                + (f" (intended key <code>{t(d['s3_key'])}</code>)" if d.get("s3_key") else "")
            )
        elif kind == "perception":
            sections = d.get("sections") or {}
            items = (
                "".join(
                    f"<dt>{x(title) if title else 'Summary'}</dt><dd>{t(text)}</dd>"
                    for title, text in sections.items()
                )
                or f"<dd>{t(e.text)}</dd>"
            )
            summary = "analysis" + (
                f", {x(_plural(d['words'], 'word'))}" if d.get("words") is not None else ""
            )
            fold, open_ = f'<dl class="tac-sections">{items}</dl>', True
        elif kind == "perception_unavailable":
            summary = "unavailable" + (f": {t(e.text)}" if e.text else "")
        elif kind == "post_call_action":
            ok = _status_ok(d.get("status"))
            mark = {True: "tac-completed", False: "tac-failed", None: ""}[ok]
            summary = (
                f"<code>{x(e.text or '?')}</code> "
                f'<span class="tac-pill {mark}">{x(d.get("status") or "no status")}</span>'
            )
            body = f"request:\n{_json(d.get('request'))}\n\nresponse:\n{_json(d.get('response'))}"
            fold = f"<pre>{t(body)}</pre>"
        else:  # other
            summary = f"<code>{x(e.text or '?')}</code>"
            props = _json(d.get("properties"))
            if props and props != "{}":
                fold = f"<pre>{t(props)}</pre>"
        head = f'<span class="tac-tag">{x(tag)}</span> {summary}'
        if fold is not None:
            head = f"<details{' open' if open_ else ''}><summary>{head}</summary>{fold}</details>"
        return (
            f'<li class="tac-ev tac-{x(cls)}">{stamp}<div class="tac-body">{head}{extra}</div></li>'
        )

    def turn(self, e: Any, stamp: str) -> str:
        x, t = self.x, self.t
        d = e.data
        role = e.role or "?"
        cls = role if role in ("user", "assistant") else "other-role"
        notes = []
        if e.answer_delay_s is not None and pd.notna(e.answer_delay_s):
            delay = float(e.answer_delay_s)
            if delay < 0:
                notes.append(
                    f'<span class="tac-overlap">began {-delay:.2f} s before the user had '
                    "finished</span>"
                )
            else:
                notes.append(f"<span>answered after {delay:.2f} s</span>")
        elif d.get("overlap"):
            notes.append('<span class="tac-overlap">overlapped the other side</span>')
        if d.get("duration_s") is not None:
            notes.append(f"<span>spoke {d['duration_s']:.1f} s</span>")
        text = e.text or ""
        if len(text) > _FOLD_CHARS:
            words = x(_plural(len(text.split()), "word"))
            body = f"<details><summary>{t(text[:400])}… ({words})</summary>{t(text)}</details>"
        else:
            body = t(text) if text else '<span class="tac-missing">(no text)</span>'
        who = f'<div class="tac-who">{x(role.capitalize())}{"".join(" " + n for n in notes)}</div>'
        return (
            f'<li class="tac-turn tac-{cls}">{stamp}<div class="tac-body">'
            f'<div class="tac-bubble">{who}{body}</div></div></li>'
        )

    def problems(self) -> str:
        p = self.page.problems
        if p.empty:
            return ""
        items = "".join(
            f"<li><code>{self.x(r.table)}</code>"
            + (f" (callback {self.x(r.callback_id)})" if pd.notna(r.callback_id) else "")
            + (f", <code>{self.x(r.event_type)}</code>" if pd.notna(r.event_type) else "")
            + f": {self.x(r.problem)}</li>"
            for r in p.itertuples(index=False)
        )
        return f'<h3>Problems the loader found</h3><ul class="tac-problems">{items}</ul>'

    def labels(self) -> str:
        labels = self.page.labels
        if labels is None or labels.empty:
            return ""
        cols = [c for c in labels.columns if c != "conversation_id"]
        head = "".join(f"<th>{self.x(c)}</th>" for c in cols)
        body = "".join(
            "<tr>" + "".join(f"<td>{self.x(_cell(v))}</td>" for v in row) + "</tr>"
            for row in labels[cols].itertuples(index=False)
        )
        return f'<h3>Review labels</h3><table class="tac-facts"><tr>{head}</tr>{body}</table>'


def _cell(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return _json(value, indent=None)
    return "" if value is None or pd.isna(value) else str(value)


def render_html(
    page: Conversation,
    *,
    redact: Redact | None = None,
    standalone: bool = False,
    style: bool = True,
    video: bool = True,
) -> str:
    """One call's page as HTML: a header of facts, the timeline, the problems, the labels.

    Parameters
    ----------
    page : Conversation
    redact : callable, optional
        ``str -> str`` applied to every free text from a callback (default: the page's own
        ``redact``).
    standalone : bool
        A whole HTML document (``<!DOCTYPE html>``, title, inline style) to write to a file;
        otherwise a ``<div class="tac">`` fragment for a notebook or a report.
    style : bool
        Include the style sheet (:data:`CSS`) in a fragment; a report that embeds several
        pages includes it once itself.
    video : bool
        A ``<video>`` element for a recording whose URI is ``http(s)://`` (never in a report,
        which must not refer to anything outside itself).

    Returns
    -------
    str
    """
    r = _Html(page, redact if redact is not None else page.redact, video)
    entries = "".join(r.entry(e) for e in page._entries)
    timeline = (
        f'<h3>Timeline</h3><ol class="tac-timeline">{entries}</ol>'
        if entries
        else '<h3>Timeline</h3><p class="tac-missing">Nothing to put on the timeline'
        + (": see the problems below.</p>" if len(page.problems) else ".</p>")
    )
    sheet = f"<style>{CSS}</style>" if style or standalone else ""
    body = f'<div class="tac">{sheet}{r.head()}{timeline}{r.problems()}{r.labels()}</div>'
    if not standalone:
        return body
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Conversation {r.x(page.conversation_id)}</title>"
        "<style>body { margin: 0; background: #f6f6f4; } .tac { margin: 0 auto; }</style>"
        f"</head><body>{body}</body></html>\n"
    )


# -- text ----------------------------------------------------------------------------------------
# C0 and C1 control characters but newline and tab, and the bidirectional overrides: shown as
# escapes, so that a transcript cannot move the cursor, recolour or reorder a terminal.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape_control(m: re.Match) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 256 else f"\\u{code:04x}"


def _safe(text: str) -> str:
    return _CONTROL.sub(_escape_control, text.replace("\t", "    "))


def _short(text: str, n: int = _SHORT) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= n else flat[: n - 1] + "…"


def render_text(page: Conversation, *, width: int = 100, redact: Redact | None = None) -> str:
    """One call's page as text for a terminal, ``width`` columns wide (at least 60).

    The same header and timeline as :func:`render_html`; long texts (the system prompt,
    knowledge-base retrievals, tool results, post-call requests) are shortened to one line.
    Control characters from callbacks are shown as escapes (``\\x1b``).
    """
    width = max(int(width), 60)
    redact = redact if redact is not None else page.redact

    def t(value: Any) -> str:
        text = "" if value is None else str(value)
        if redact is not None and text:
            text = redact(text)
        return _safe(text)

    def x(value: Any) -> str:
        return _safe("" if value is None else str(value))

    lines: list[str] = []

    def wrap(prefix: str, text: str, indent: int) -> None:
        room = width - indent
        first = True
        for para in text.split("\n"):
            chunks = textwrap.wrap(para, room, break_on_hyphens=False, drop_whitespace=True) or [""]
            for chunk in chunks:
                lines.append((prefix if first else " " * indent) + chunk)
                first = False

    h = _header(page)
    title = f"Conversation {x(page.conversation_id)}"
    lines += [title, "=" * min(len(title), width)]
    facts = [("replica", x(h["replica"] or "-"))]
    if h["persona"]:
        facts.append(("persona", x(h["persona"])))
    facts.append(("joined", _when(h.get("joined"))))
    ended = _when(h.get("ended"))
    if h.get("duration") is not None:
        ended += f", after {duration_text(h['duration'])}"
    facts.append(("ended", ended))
    if h.get("outcome") or h.get("reason"):
        shutdown = (h.get("outcome") or "unknown") + (
            f", {h['category']}" if h.get("category") else ""
        )
        if h.get("reason"):
            shutdown += f" ({t(h['reason'])})"
        facts.append(("shutdown", shutdown))
    if h["talk"]:
        facts.append(("talk", h["talk"]))
    arrived = ", ".join(h["arrived"]) or "nothing"
    if h["missing"]:
        arrived += f" (not arrived: {', '.join(h['missing'])})"
    facts.append(("arrived", arrived))
    for k, v in facts:
        wrap(f"{k:<10}", v, 10)

    lines += ["", "Timeline (time from the join, UTC clock)"]
    lead = 20  # "+12:34  12:34:56  " then the label
    for e in page._entries:
        d = e.data
        stamp = f"{_offset(e.offset_s):>8}  {_clock(e.time):8}  "
        kind = e.kind
        if kind == "turn":
            label = f"{(e.role or '?'):<11} "
            text = t(e.text) if e.text else "(no text)"
            notes = []
            if e.answer_delay_s is not None and pd.notna(e.answer_delay_s):
                delay = float(e.answer_delay_s)
                notes.append(
                    f"began {-delay:.2f} s before the user had finished"
                    if delay < 0
                    else f"answered after {delay:.2f} s"
                )
            if notes:
                text += f"  [{'; '.join(notes)}]"
            wrap(stamp + label, text, lead + len(label))
            continue
        label = _TAGS[kind] if kind != "shutdown" else "SHUTDOWN"
        label = f"{label:<11} "
        indent = lead + len(label)
        detail: list[str] = []
        if kind == "joined":
            text = f"replica {x(e.text)} joined"
        elif kind in ("system_prompt", "knowledge", "system"):
            text = f"{_WHAT[kind]}, {_plural(d['words'], 'word')}: {t(_short(e.text or ''))}"
        elif kind == "tool_call":
            call = d["call"]
            text = f"{x(call['name'] or '?')}({t(_short(_arguments(call), 160))})"
        elif kind == "tool_result":
            of = f"of {x(d['tool'])}: " if d.get("tool") else ""
            text = of + t(_short(e.text or ""))
        elif kind == "objective":
            text = f"completed {x(e.text)}"
            detail = [
                f"{x(k)} = {t(v) if v is not None else '(not found)'}"
                for k, v in _variables(d.get("variables"))
            ]
        elif kind == "guardrail":
            text = f"triggered {x(e.text)}"
            if d.get("delivery", 1) > 1:
                text += f" (trigger {d['delivery']} of this guardrail)"
            if d.get("reason"):
                text += f": {t(d['reason'])}"
        elif kind == "canvas":
            text = f"{x(e.text)}: {x(d.get('type') or '?')}"
            if d.get("value") is not None:
                text += f" {t(_short(_json(d['value'], indent=None), 160))}"
        elif kind == "shutdown":
            text = (d.get("outcome") or "unknown") + (
                f", {d['category']}" if d.get("category") else ""
            )
            text += f" ({t(e.text)})" if e.text else " (no readable reason)"
        elif kind == "recording":
            text = t(e.text) if e.text else "(no URI)"
            if d.get("duration_s") is not None:
                text += f", {duration_text(d['duration_s'])}"
        elif kind == "recording_failed":
            text = f"copy failed: {x(e.text or '?')}" + (
                f" {t(d['message'])}" if d.get("message") else ""
            )
        elif kind == "perception":
            text = "analysis" + (
                f", {_plural(d['words'], 'word')}" if d.get("words") is not None else ""
            )
            for title, body in (d.get("sections") or {}).items():
                detail.append(f"{x(title) if title else 'Summary'}: {t(body)}")
        elif kind == "perception_unavailable":
            text = "unavailable" + (f": {t(e.text)}" if e.text else "")
        elif kind == "post_call_action":
            text = f"{x(e.text or '?')}: {x(d.get('status') or 'no status')}"
            detail = [
                f"request {t(_short(_json(d.get('request'), indent=None), 160))}",
                f"response {t(_short(_json(d.get('response'), indent=None), 160))}",
            ]
        else:
            props = _json(d.get("properties"), indent=None)
            text = x(e.text or "?")
            if props not in ("", "{}"):
                text += f" {t(_short(props, 160))}"
        wrap(stamp + label, text, indent)
        for item in detail:
            wrap(" " * indent + "- ", item, indent + 2)

    if not page.problems.empty:
        lines += ["", "Problems the loader found"]
        for r in page.problems.itertuples(index=False):
            where = x(r.table) + (f", callback {r.callback_id}" if pd.notna(r.callback_id) else "")
            wrap("- ", f"{where}: {x(r.problem)}", 2)
    if page.labels is not None and not page.labels.empty:
        lines += ["", "Review labels"]
        cols = [c for c in page.labels.columns if c != "conversation_id"]
        for row in page.labels[cols].itertuples(index=False):
            wrap("- ", ", ".join(f"{c}: {x(_cell(v))}" for c, v in zip(cols, row, strict=True)), 2)
    return "\n".join(line.rstrip() for line in lines) + "\n"


# -- a file --------------------------------------------------------------------------------------
def write(
    db: Any,
    conversation_id: str,
    out: str | Path,
    *,
    redact: Redact | None = None,
) -> Path:
    """Load a database and write one call's page to ``out`` as a self-contained HTML file
    (replaced if it exists; written whole or not at all).

    Raises
    ------
    ConversationNotFound
        When no callback names ``conversation_id``.
    TavusAnalyticsError
        When ``out`` is a folder or its folder does not exist.
    """
    from .dataset import load

    out = Path(out)
    if out.is_dir():
        raise TavusAnalyticsError(f"{out} is a folder: give a file name, e.g. --html call.html")
    if not out.parent.is_dir():
        raise TavusAnalyticsError(f"cannot write {out}: the folder {out.parent} does not exist")
    page = load(db).conversation(conversation_id, redact=redact)
    data = render_html(page, standalone=True).encode("utf-8")
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out
