"""Success criteria: what a successful call is, written as rules, and every call judged by them.

Criteria are a dict or a TOML file (:func:`parse`, :func:`load_criteria`)::

    name = "support calls"
    combine = "all"        # all (default): every rule passes; any: one passes;
                           # score: the weighted share of rules passed reaches min_score
    # min_score = 0.75     # with combine = "score"

    [[rule]]
    name = "ended normally"
    outcome = "completed"

    [[rule]]
    min_user_turns = 3
    weight = 2

    [[rule]]
    phrase_absent = "cancel my subscription"
    role = "user"

    [[rule]]
    name = "qualified"
    any = [
      { objective_completed = "qualify_lead" },
      { output_filled = "budget", objective = "qualify_lead" },
    ]

Each rule holds one condition (:data:`CONDITIONS`), and may have a ``name`` and a ``weight``
(default 1). :func:`evaluate` judges each call ``success``, ``failure`` or ``unknown``: a rule
whose data is missing (no shutdown yet, no transcript, no duration, no post-call action) is
*unknown*, never a failure, and the call is unknown when the result depends on it. It names the
rule that decided and a score, the weighted share of the rules that could be judged that passed.
:func:`success_rate` gives the success rate per replica or per week, and :func:`deciding_rules`
which rules decided.

A file that cannot be read raises :class:`~tavus_analytics.errors.InvalidCriteria`, whose
message names the file, the line and the rule: ``criteria.toml, line 9, rule 2: unknown rule
'min_user_turn' (did you mean min_user_turns?)``.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import events as ev
from .errors import InvalidCriteria

__all__ = [
    "CONDITIONS",
    "RESULTS",
    "Criteria",
    "Rule",
    "deciding_rules",
    "evaluate",
    "load_criteria",
    "parse",
    "render",
    "success_rate",
    "summary",
]

#: The results of :func:`evaluate`, in this order.
RESULTS = ("success", "failure", "unknown")
RESULT_DTYPE = pd.CategoricalDtype(list(RESULTS))

#: Every condition a rule can hold: its key, and what its value is.
CONDITIONS: dict[str, str] = {
    "shutdown_category": "a shutdown category, or a list of them",
    "outcome": "completed, no_show or failed, or a list of them",
    "min_user_turns": "a whole number: at least this many user turns",
    "min_duration_s": "seconds: the call lasted at least this long (max_duration_s may join it)",
    "max_duration_s": "seconds: the call lasted at most this long",
    "objective_completed": "an objective's name: a completion of it arrived",
    "output_filled": "an output variable's name (objective = ... to name the objective): a value "
    "was extracted",
    "phrase_present": "words said (role = user or assistant for one side)",
    "phrase_absent": "words never said (role = user or assistant for one side)",
    "no_guardrail": "true (no guardrail at all), or a guardrail's name: not triggered",
    "post_call_action_succeeded": "true (every post-call action), or a tool's name: succeeded",
    "all": "a list of rules that must all pass",
    "any": "a list of rules of which one must pass",
}
_DURATION = ("min_duration_s", "max_duration_s")
#: Keys a rule may have besides its condition, and the conditions that take each.
_OPTIONS = {
    "name": None,
    "weight": None,
    "role": ("phrase_present", "phrase_absent"),
    "objective": ("output_filled",),
}
_SETTINGS = ("name", "description", "combine", "min_score", "rule")
_ROLES = {"user": ("user",), "assistant": ("assistant",), "any": ("user", "assistant")}
_OK_STATUS = ("success", "succeeded", "ok", "completed", "done")


# -- criteria ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    """One rule: a condition (``kind``), its value, and how it shows and counts.

    ``kind`` is a key of :data:`CONDITIONS` (``duration`` for ``min_duration_s`` and
    ``max_duration_s`` together); ``value`` its parsed value (for ``duration``, a ``(min,
    max)`` pair with ``None`` for an open end; for ``all`` and ``any``, the rules in
    ``children``); ``label`` the rule's ``name`` or its condition as written.
    """

    kind: str
    value: Any
    label: str
    weight: float = 1.0
    role: str = "any"
    objective: str | None = None
    children: tuple[Rule, ...] = ()


@dataclass(frozen=True)
class Criteria:
    """Parsed success criteria: the rules, how they combine, and where they came from."""

    rules: tuple[Rule, ...]
    combine: str = "all"
    min_score: float | None = None
    name: str | None = None
    description: str | None = None
    source: str | None = None

    @property
    def tables(self) -> set[str]:
        """The tables of a Dataset the rules read (``conversations`` always)."""
        need = {"conversations"}
        for rule in _walk(self.rules):
            need.update(_TABLES.get(rule.kind, ()))
        return need

    def describe(self) -> str:
        """The criteria in one line, e.g. ``support calls: 4 rules, all must pass``."""
        if self.combine == "score":
            how = f"a weighted score of at least {self.min_score:g}"
        else:
            how = "all must pass" if self.combine == "all" else "one must pass"
        n = len(self.rules)
        head = self.name or (Path(self.source).name if self.source else "criteria")
        return f"{head}: {n} rule{'s' if n != 1 else ''}, {how}"


_TABLES = {
    "min_user_turns": (),
    "objective_completed": ("objectives",),
    "output_filled": ("objective_outputs",),
    "phrase_present": ("turns",),
    "phrase_absent": ("turns",),
    "no_guardrail": ("guardrail_triggers",),
    "post_call_action_succeeded": ("post_call_actions",),
}


def _walk(rules: tuple[Rule, ...]):
    for rule in rules:
        yield rule
        yield from _walk(rule.children)


# -- where a rule is in its file -----------------------------------------------------------------
_RULE_HEADER = re.compile(r"^[ \t]*\[\[[ \t]*rule[ \t]*\]\]", re.M)
_OTHER_HEADER = re.compile(r"^[ \t]*\[(?!\[[ \t]*rule[ \t]*[.\]])", re.M)


def _skip_string(text: str, i: int) -> int:
    """The offset just past the TOML string starting at ``text[i]``."""
    quote = text[i]
    if text.startswith(quote * 3, i):
        end = text.find(quote * 3, i + 3)
        return len(text) if end < 0 else end + 3
    j = i + 1
    while j < len(text) and text[j] != quote and text[j] != "\n":
        j += 2 if quote == '"' and text[j] == "\\" else 1
    return j + 1


def _elements(text: str, start: int, end: int, key: str) -> list[tuple[int, int]]:
    """The spans of the elements of the inline array ``key = [...]`` found in ``[start, end)``."""
    m = re.compile(rf"(?:^|[{{,\s]){re.escape(key)}[ \t]*=[ \t]*\[", re.M).search(text, start, end)
    if m is None:
        return []
    i, depth, starts, expecting = m.end(), 0, [], True
    while i < end:
        ch = text[i]
        if ch == "#":
            i = text.find("\n", i)
            i = end if i < 0 else i
            continue
        if depth == 0 and expecting and not ch.isspace() and ch not in ",]":
            starts.append(i)
            expecting = False
        if ch in "\"'":
            i = _skip_string(text, i)
            continue
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            if depth == 0:
                break
            depth -= 1
        elif ch == "," and depth == 0:
            expecting = True
        i += 1
    return [(s, starts[k + 1] if k + 1 < len(starts) else i) for k, s in enumerate(starts)]


class _Source:
    """The text of a criteria file, to say on which line a rule or a key is."""

    def __init__(self, text: str, name: str) -> None:
        self.text = text
        self.name = name

    def line(self, offset: int) -> int:
        return self.text.count("\n", 0, offset) + 1

    def span(self, path: tuple) -> tuple[int, int]:
        """The text of a rule: ``path`` is (rule index, child index, ...) with the group key
        before each child index, e.g. ``(2, "any", 0)``."""
        text = self.text
        start, end = 0, len(text)
        index, rest = path[0], path[1:]
        headers = [m.start() for m in _RULE_HEADER.finditer(text)]
        if headers and index < len(headers):
            start = headers[index]
            after = [h for h in headers if h > start]
            other = _OTHER_HEADER.search(text, start + 1)
            end = min([*after[:1], other.start() if other else len(text)])
        else:
            spans = _elements(text, 0, len(text), "rule")
            if index < len(spans):
                start, end = spans[index]
        while len(rest) >= 2:
            group, child, rest = rest[0], rest[1], rest[2:]
            sub = re.compile(rf"^[ \t]*\[\[[ \t]*rule[ \t]*\.[ \t]*{group}[ \t]*\]\]", re.M)
            found = [m.start() for m in sub.finditer(text, start, end)]
            if found and child < len(found):
                start, end = found[child], (found[child + 1] if child + 1 < len(found) else end)
                continue
            spans = _elements(text, start, end, group)
            if child < len(spans):
                start, end = spans[child]
        return start, end

    def where(self, path: tuple, key: str | None = None) -> int:
        """The line of ``key`` in the rule at ``path`` (the rule's first line without a key)."""
        start, end = self.span(path)
        if key is not None:
            m = re.compile(rf"(?:^|[{{,\s]){re.escape(key)}[ \t]*=", re.M).search(
                self.text, start, end
            )
            if m is not None:
                return self.line(m.end())
        # the first line of the rule that is not blank
        while start < end and self.text[start] in " \t\r\n":
            start += 1
        return self.line(start)

    def top(self, key: str) -> int | None:
        m = re.compile(rf"^[ \t]*{re.escape(key)}[ \t]*=", re.M).search(self.text)
        return self.line(m.start()) if m else None


# -- parsing -------------------------------------------------------------------------------------
def _toml_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__}"


def _shown(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _Parser:
    def __init__(self, source: _Source | None, origin: str) -> None:
        self.source = source
        self.origin = origin  # the file's name, or "criteria"
        self.names: dict[tuple, str] = {}  # the name of each rule read so far, by path

    def fail(self, problem: str, path: tuple | None = None, key: str | None = None, rule=None):
        where, line, label = self.origin, None, None
        if self.source is not None:
            if path is not None:
                line = self.source.where(path, key)
            elif key is not None:
                line = self.source.top(key)
            if line is not None:
                where += f", line {line}"
        if path is not None:
            parts = [f"rule {path[0] + 1}"]
            for k in range(1, len(path) - 1, 2):
                parts.append(f"condition {path[k + 1] + 1} of {path[k]}")
            for depth, k in enumerate(range(1, len(path) + 1, 2)):
                name = self.names.get(path[:k])
                if name:
                    parts[depth] += f" ({name!r})"
            label = ", ".join(parts)
            where += f", {label}"
        raise InvalidCriteria(f"{where}: {problem}", line=line, rule=label)

    def criteria(self, data: Mapping) -> Criteria:
        for key in data:
            if key not in _SETTINGS:
                hint = _did_you_mean(key, _SETTINGS)
                self.fail(
                    f"unknown setting {key!r}{hint}: a criteria file has name, description, "
                    "combine, min_score and [[rule]] tables",
                    key=key,
                )
        combine = data.get("combine", "all")
        if combine not in ("all", "any", "score"):
            self.fail(
                f'combine must be "all", "any" or "score", not {_shown(combine)}', key="combine"
            )
        min_score = data.get("min_score")
        if combine == "score":
            if not _is_number(min_score) or not 0 <= min_score <= 1:
                self.fail(
                    'combine = "score" needs min_score, a number from 0 to 1'
                    + ("" if min_score is None else f", not {_shown(min_score)}"),
                    key="min_score" if min_score is not None else "combine",
                )
        elif min_score is not None:
            self.fail('min_score is only for combine = "score"', key="min_score")
        for key in ("name", "description"):
            if key in data and not isinstance(data[key], str):
                self.fail(f"{key} must be a string, not {_toml_type(data[key])}", key=key)
        rules = data.get("rule")
        if rules is None:
            self.fail("no rule: add at least one [[rule]] table")
        if not isinstance(rules, list) or not rules:
            self.fail("rule must be a list of [[rule]] tables", key="rule")
        parsed = tuple(self.rule(r, (i,)) for i, r in enumerate(rules))
        return Criteria(
            rules=parsed,
            combine=combine,
            min_score=None if min_score is None else float(min_score),
            name=data.get("name"),
            description=data.get("description"),
            source=self.origin if self.source is not None else None,
        )

    def rule(self, rule: Any, path: tuple) -> Rule:
        if not isinstance(rule, Mapping):
            self.fail(f"a rule must be a table, not {_toml_type(rule)}", path)
        if isinstance(rule.get("name"), str):
            self.names[path] = rule["name"]
        conditions = [k for k in rule if k in CONDITIONS]
        for key in rule:
            if key not in CONDITIONS and key not in _OPTIONS:
                hint = _did_you_mean(key, [*CONDITIONS, *_OPTIONS])
                self.fail(
                    f"unknown rule {key!r}{hint}; the conditions are " + ", ".join(CONDITIONS),
                    path,
                    key,
                    rule,
                )
        kinds = {"duration" if k in _DURATION else k for k in conditions}
        if not kinds:
            self.fail(
                "the rule has no condition: give one of " + ", ".join(CONDITIONS), path, None, rule
            )
        if len(kinds) > 1:
            self.fail(
                f"the rule has {len(kinds)} conditions ({', '.join(conditions)}): give each its "
                "own [[rule]], or put them in all = [...]",
                path,
                conditions[1],
                rule,
            )
        kind = kinds.pop()
        for key, allowed in _OPTIONS.items():
            if key in rule and allowed is not None and kind not in allowed:
                self.fail(
                    f"{key} only goes with {' or '.join(allowed)}, not with {kind}",
                    path,
                    key,
                    rule,
                )
        weight = rule.get("weight", 1)
        if not _is_number(weight) or weight <= 0:
            self.fail(
                f"weight must be a number above 0, not {_shown(weight)}", path, "weight", rule
            )
        name = rule.get("name")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            self.fail(f"name must be a non-empty string, not {_shown(name)}", path, "name", rule)
        role = rule.get("role", "any")
        if role not in _ROLES:
            self.fail(
                f'role must be "user", "assistant" or "any", not {_shown(role)}',
                path,
                "role",
                rule,
            )
        objective = rule.get("objective")
        if objective is not None and not _text(objective):
            self.fail(
                f"objective must be an objective's name, not {_shown(objective)}",
                path,
                "objective",
                rule,
            )
        value, children = self.value(kind, rule, path)
        return Rule(
            kind=kind,
            value=value,
            label=name.strip() if name else _label(kind, value, role, objective, children),
            weight=float(weight),
            role=role,
            objective=objective,
            children=children,
        )

    def value(self, kind: str, rule: Mapping, path: tuple) -> tuple[Any, tuple[Rule, ...]]:
        def bad(key: str, wanted: str) -> None:
            got = rule[key]
            self.fail(
                f"{key} must be {wanted}, not {_shown(got)} ({_toml_type(got)})", path, key, rule
            )

        if kind in ("shutdown_category", "outcome"):
            allowed = ev.SHUTDOWN_CATEGORIES if kind == "shutdown_category" else _OUTCOMES
            raw = rule[kind]
            values = [raw] if isinstance(raw, str) else raw
            if not isinstance(values, list) or not values or not all(_text(v) for v in values):
                bad(kind, "a string or a list of strings")
            for v in values:
                if v not in allowed:
                    self.fail(
                        f"{kind} {v!r} does not exist: use " + ", ".join(allowed), path, kind, rule
                    )
            return tuple(values), ()
        if kind == "min_user_turns":
            n = rule[kind]
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                bad(kind, "a whole number of at least 0")
            return n, ()
        if kind == "duration":
            bounds = []
            for key in _DURATION:
                v = rule.get(key)
                if v is not None and (not _is_number(v) or v < 0):
                    bad(key, "a number of seconds, at least 0")
                bounds.append(None if v is None else float(v))
            low, high = bounds
            if low is not None and high is not None and low > high:
                self.fail(
                    f"min_duration_s ({low:g}) is above max_duration_s ({high:g})",
                    path,
                    "max_duration_s",
                    rule,
                )
            return (low, high), ()
        if kind in ("objective_completed", "output_filled"):
            if not _text(rule[kind]):
                bad(kind, "a name")
            return rule[kind], ()
        if kind in ("phrase_present", "phrase_absent"):
            if not _text(rule[kind]):
                bad(kind, "words to look for")
            return rule[kind], ()
        if kind in ("no_guardrail", "post_call_action_succeeded"):
            v = rule[kind]
            what = "guardrail" if kind == "no_guardrail" else "tool"
            if v is False:
                self.fail(f"{kind} = false checks nothing: remove the rule", path, kind, rule)
            if v is not True and not _text(v):
                bad(kind, f"true, or a {what}'s name")
            return v, ()
        # all / any
        items = rule[kind]
        if not isinstance(items, list) or not items:
            bad(kind, "a non-empty list of rules")
        children = tuple(self.rule(item, (*path, kind, j)) for j, item in enumerate(items))
        return kind, children


_OUTCOMES = ("completed", "no_show", "failed")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _did_you_mean(key: str, known) -> str:
    close = difflib.get_close_matches(str(key), list(known), n=1, cutoff=0.75)
    return f" (did you mean {close[0]}?)" if close else ""


def _label(kind: str, value: Any, role: str, objective: str | None, children) -> str:
    """A rule as written, when it has no name: ``min_user_turns = 3``."""
    if kind in ("shutdown_category", "outcome"):
        shown = value[0] if len(value) == 1 else "[" + ", ".join(value) + "]"
        return f"{kind} = {shown}"
    if kind == "duration":
        low, high = value
        if low is not None and high is not None:
            return f"duration {low:g} to {high:g} s"
        return f"duration at least {low:g} s" if low is not None else f"duration at most {high:g} s"
    if kind in ("phrase_present", "phrase_absent"):
        side = "" if role == "any" else f" ({role})"
        return f'{kind} "{value}"{side}'
    if kind == "output_filled":
        return f"output_filled = {objective}.{value}" if objective else f"output_filled = {value}"
    if kind in ("no_guardrail", "post_call_action_succeeded") and value is True:
        return kind
    if kind in ("all", "any"):
        inner = "; ".join(c.label for c in children)
        return f"{kind} of ({inner})"
    return f"{kind} = {value}"


def parse(criteria: Criteria | Mapping | str | Path) -> Criteria:
    """Success criteria from a dict, a TOML file (a path), or :class:`Criteria` as they are.

    Raises
    ------
    InvalidCriteria
        When the file is not TOML or a rule cannot be read; the message names the file, the
        line (for a file) and the rule, and says how to fix it.
    """
    if isinstance(criteria, Criteria):
        return criteria
    if isinstance(criteria, (str, Path)):
        return load_criteria(criteria)
    if not isinstance(criteria, Mapping):
        raise TypeError(
            f"criteria are a dict, a TOML file or Criteria, not {type(criteria).__name__}"
        )
    return _Parser(None, "criteria").criteria(criteria)


def load_criteria(path: str | Path) -> Criteria:
    """Read success criteria from a TOML file (see the module for the format)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidCriteria(f"cannot read {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidCriteria(f"cannot read {path}: {e}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"\(at line (\d+), column \d+\)", str(e))
        line = int(m.group(1)) if m else None
        what = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(e)) or "invalid"
        where = f"{path}, line {line}" if line else str(path)
        hint = '; text needs quotes, e.g. outcome = "completed"' if "value" in what else ""
        raise InvalidCriteria(
            f"{where}: not valid TOML ({what[0].lower() + what[1:]}){hint}", line=line
        ) from None
    return _Parser(_Source(text, str(path)), str(path)).criteria(data)


# -- evaluation ----------------------------------------------------------------------------------
def _boolean(values: np.ndarray, known: np.ndarray) -> pd.arrays.BooleanArray:
    return pd.arrays.BooleanArray(values.astype(bool) & known, ~known.astype(bool))


def _calls_with(cids: pd.Series, found: set) -> np.ndarray:
    return cids.isin(found).to_numpy(dtype=bool)


class _Tables:
    """The tables a rule reads, and what several rules share."""

    def __init__(self, conversations: pd.DataFrame, tables: Mapping[str, pd.DataFrame]) -> None:
        self.conv = conversations
        self.tables = tables
        self.cid = conversations["conversation_id"].astype(object)
        ended = conversations["shutdown_at"].notna() | conversations["outcome"].notna()
        self.ended = ended.to_numpy(dtype=bool)
        self.transcript = conversations["has_transcript"].fillna(False).to_numpy(dtype=bool)
        self._said: dict[tuple, pd.Series] = {}

    def table(self, name: str) -> pd.DataFrame:
        if name not in self.tables or self.tables[name] is None:
            raise TypeError(f"these criteria need the {name} table")
        return self.tables[name]

    def said(self, roles: tuple[str, ...]) -> pd.DataFrame:
        """(conversation_id, text) of the messages of these roles, case and spaces folded."""
        if roles not in self._said:
            turns = self.table("turns")
            mine = turns[turns["role"].isin(roles).to_numpy(dtype=bool)]
            text = mine["content"].fillna("").astype(str).str.casefold()
            text = text.str.replace(r"\s+", " ", regex=True)
            self._said[roles] = pd.DataFrame(
                {"conversation_id": mine["conversation_id"].astype(object), "text": text}
            )
        return self._said[roles]


def _leaf(rule: Rule, t: _Tables) -> pd.arrays.BooleanArray:
    conv, n = t.conv, len(t.conv)
    kind, value = rule.kind, rule.value
    if kind in ("shutdown_category", "outcome"):
        col = conv[kind].astype(object)
        known = col.notna().to_numpy(dtype=bool)
        if kind == "outcome":
            known = known & (col != "unknown").to_numpy(dtype=bool)
        return _boolean(col.isin(value).to_numpy(dtype=bool), known)
    if kind == "min_user_turns":
        turns = conv["user_turns"]
        known = turns.notna().to_numpy(dtype=bool)
        return _boolean((turns.fillna(0) >= value).to_numpy(dtype=bool), known)
    if kind == "duration":
        d = conv["duration_s"].to_numpy(dtype="float64")
        known = ~np.isnan(d)
        low, high = value
        ok = np.ones(n, dtype=bool)
        with np.errstate(invalid="ignore"):
            if low is not None:
                ok &= d >= low
            if high is not None:
                ok &= d <= high
        return _boolean(ok, known)
    if kind in ("objective_completed", "output_filled"):
        if kind == "objective_completed":
            done = t.table("objectives")
            found = done[(done["objective_name"] == value).to_numpy(dtype=bool)]
        else:
            out = t.table("objective_outputs")
            keep = (out["variable"] == value) & out["found"].fillna(False)
            if rule.objective is not None:
                keep &= out["objective_name"] == rule.objective
            found = out[keep.to_numpy(dtype=bool)]
        hit = _calls_with(t.cid, set(found["conversation_id"].astype(object)))
        return _boolean(hit, hit | t.ended)  # not yet: unknown while the call goes on
    if kind in ("phrase_present", "phrase_absent"):
        phrase = " ".join(str(value).split()).casefold()
        said = t.said(_ROLES[rule.role])
        hits = said.loc[said["text"].str.contains(phrase, regex=False).to_numpy(dtype=bool)]
        hit = _calls_with(t.cid, set(hits["conversation_id"]))
        return _boolean(hit if kind == "phrase_present" else ~hit, t.transcript)
    if kind == "no_guardrail":
        g = t.table("guardrail_triggers")
        if value is not True:
            g = g[(g["guardrail"] == value).to_numpy(dtype=bool)]
        triggered = _calls_with(t.cid, set(g["conversation_id"].astype(object)))
        return _boolean(~triggered, triggered | t.ended)  # a trigger may still come
    if kind == "post_call_action_succeeded":
        a = t.table("post_call_actions")
        if value is not True:
            a = a[(a["tool_name"] == value).to_numpy(dtype=bool)]
        status = a["status"].astype(object)
        ok = pd.array(
            [None if pd.isna(s) else str(s).strip().lower() in _OK_STATUS for s in status],
            dtype="boolean",
        )
        per = (
            pd.DataFrame({"cid": a["conversation_id"].astype(object).to_numpy(), "ok": ok})
            .groupby("cid")["ok"]
            .agg(lambda s: s.all(skipna=False))  # Kleene: a missing status is unknown
        )
        got = per.reindex(t.cid.to_numpy())
        return pd.array(got.to_numpy(dtype=object), dtype="boolean")
    raise AssertionError(kind)  # pragma: no cover - parse() knows every kind


def _judge(rule: Rule, t: _Tables) -> tuple[pd.arrays.BooleanArray, np.ndarray]:
    """A rule's result per call, and the label of what decided it."""
    n = len(t.conv)
    if not rule.children:
        return _leaf(rule, t), np.full(n, rule.label, dtype=object)
    results = [_judge(child, t) for child in rule.children]
    values = [r for r, _ in results]
    combined = values[0]
    for v in values[1:]:
        combined = (combined & v) if rule.kind == "all" else (combined | v)
    decider = np.full(n, rule.label, dtype=object)
    decisive = rule.kind == "any"  # the child value that decides: a fail for all, a pass for any
    found = np.zeros(n, dtype=bool)
    for v, (_, inner) in zip(values, results, strict=True):
        hit = (v == decisive).fillna(False).to_numpy(dtype=bool) & ~found
        decider[hit] = [f"{rule.label} > {x}" for x in inner[hit]]
        found |= hit
    for v, (_, inner) in zip(values, results, strict=True):
        hit = v.isna() & ~found & combined.isna()
        decider[hit] = [f"{rule.label} > {x}" for x in inner[hit]]
        found |= hit
    return combined, decider


def evaluate(
    criteria: Criteria | Mapping | str | Path,
    conversations: pd.DataFrame,
    **tables: pd.DataFrame,
) -> pd.DataFrame:
    """Judge every call by success criteria: ``success``, ``failure`` or ``unknown``.

    A rule is *unknown* for a call when the data it needs is missing: no shutdown yet (or a
    reason that cannot be read) for ``shutdown_category`` and ``outcome``; no transcript for
    ``min_user_turns`` and the phrases; no duration (join or shutdown missing) for durations;
    no post-call action (of that tool) for ``post_call_action_succeeded``; and, while the call
    has not ended, for ``objective_completed``, ``output_filled`` and ``no_guardrail`` (a
    completion or a trigger may still come; one that arrived decides at once). Unknown is never
    a failure: with ``combine = "all"`` a call fails when a rule fails, else is unknown when a
    rule is unknown, else succeeds; with ``"any"`` it succeeds when a rule passes, else is
    unknown when one is unknown, else fails; with ``"score"`` it succeeds when the rules that
    passed already weigh ``min_score`` of all the weight, fails when even the unknown rules
    passing could not reach it, and is unknown otherwise. ``all`` and ``any`` groups inside a
    rule combine the same way (Kleene's logic).

    Phrases match case-insensitively, spaces folded, anywhere in a message (``"cancel"``
    matches "Cancellation") of the rule's role (user and assistant by default).

    Parameters
    ----------
    criteria : Criteria, dict, or path of a TOML file
        See :func:`parse`.
    conversations : DataFrame
        ``ds.conversations`` (or a subset): one row per call to judge.
    **tables : DataFrame
        The other tables the rules read (``turns``, ``objectives``, ``objective_outputs``,
        ``guardrail_triggers``, ``post_call_actions``; :attr:`Criteria.tables` says which).

    Returns
    -------
    pandas.DataFrame
        One row per call, in the order of ``conversations``:
        conversation_id, replica_id : str.
        joined_at : datetime64[ns, UTC], the join (NaT when none arrived).
        week : datetime64[ns, UTC], the Monday (UTC) of the call's week, placed by
        ``joined_at`` or else ``first_seen``.
        result : category ``success``, ``failure`` or ``unknown``.
        rule : str, the label (name, or the condition as written) of the rule that decided:
        for ``all``, the first rule that failed, else the first unknown; for ``any``, the first
        that passed, else the first unknown; ``all N rules`` or ``none of N rules`` when every
        rule agreed; with ``score``, the heaviest rule that failed (or was unknown) or
        ``score >= min_score``. A group names its deciding rule after ``>``.
        score : float64, 0 to 1, the weight of the rules that passed over the weight of the
        rules that could be judged (NaN when none could).
        passed, failed, unknown : int64, top-level rules of each result.
    """
    crit = parse(criteria)
    t = _Tables(conversations, tables)
    n = len(conversations)
    judged = [_judge(rule, t) for rule in crit.rules]
    weights = np.array([r.weight for r in crit.rules], dtype="float64")
    passed = np.column_stack(
        [(v == True).fillna(False).to_numpy(dtype=bool) for v, _ in judged]  # noqa: E712
    ) if n else np.zeros((0, len(judged)), dtype=bool)  # fmt: skip
    unknown = np.column_stack([v.isna() for v, _ in judged]) if n else passed.copy()
    failed = ~passed & ~unknown
    deciders = np.column_stack([d for _, d in judged]) if n else np.zeros((0, len(judged)), object)

    w_pass = passed @ weights
    w_known = (~unknown) @ weights
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.where(w_known > 0, w_pass / np.where(w_known > 0, w_known, 1), np.nan)

    result = np.full(n, "unknown", dtype=object)
    rule = np.full(n, "", dtype=object)

    def first(mask: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The decider of the first rule in ``mask`` (a row each)."""
        cols = mask[rows].argmax(axis=1)
        return deciders[rows, cols]

    def heaviest(mask: np.ndarray, rows: np.ndarray) -> np.ndarray:
        cols = np.where(mask[rows], weights, -1.0).argmax(axis=1)
        return deciders[rows, cols]

    k = len(crit.rules)
    if crit.combine == "all":
        fail = failed.any(axis=1)
        unk = ~fail & unknown.any(axis=1)
        ok = ~fail & ~unk
        result[fail], rule[fail] = "failure", first(failed, np.flatnonzero(fail))
        rule[unk] = first(unknown, np.flatnonzero(unk))
        result[ok] = "success"
        rule[ok] = deciders[ok, 0] if k == 1 else f"all {k} rules"
    elif crit.combine == "any":
        ok = passed.any(axis=1)
        unk = ~ok & unknown.any(axis=1)
        fail = ~ok & ~unk
        result[ok], rule[ok] = "success", first(passed, np.flatnonzero(ok))
        rule[unk] = first(unknown, np.flatnonzero(unk))
        result[fail] = "failure"
        rule[fail] = deciders[fail, 0] if k == 1 else f"none of {k} rules"
    else:
        total = weights.sum()
        worst = w_pass / total
        best = (w_pass + unknown @ weights) / total
        ok = worst >= crit.min_score
        fail = ~ok & (best < crit.min_score)
        unk = ~ok & ~fail
        result[ok], rule[ok] = "success", f"score >= {crit.min_score:g}"
        result[fail], rule[fail] = "failure", heaviest(failed, np.flatnonzero(fail))
        rule[unk] = heaviest(unknown, np.flatnonzero(unk))

    when = conversations["joined_at"].fillna(conversations["first_seen"])
    day = when.dt.floor("D")
    return pd.DataFrame(
        {
            "conversation_id": conversations["conversation_id"].to_numpy(),
            "replica_id": conversations["replica_id"].to_numpy(),
            "joined_at": conversations["joined_at"].to_numpy(),
            "week": (day - pd.to_timedelta(day.dt.day_of_week, unit="D")).to_numpy(),
            "result": pd.Categorical(result, dtype=RESULT_DTYPE),
            "rule": pd.array(rule, dtype=conversations["conversation_id"].dtype),
            "score": score,
            "passed": passed.sum(axis=1).astype("int64"),
            "failed": failed.sum(axis=1).astype("int64"),
            "unknown": unknown.sum(axis=1).astype("int64"),
        }
    ).astype(
        {
            "conversation_id": conversations["conversation_id"].dtype,
            "replica_id": conversations["replica_id"].dtype,
            "joined_at": "datetime64[ns, UTC]",
            "week": "datetime64[ns, UTC]",
        }
    )


# -- summaries -----------------------------------------------------------------------------------
def success_rate(evaluation: pd.DataFrame, by: str | None = None) -> pd.DataFrame:
    """How many calls succeeded, overall, per replica or per week.

    Parameters
    ----------
    evaluation : DataFrame
        From :func:`evaluate` (or a subset of its rows).
    by : {None, "replica", "week"}
        One row in all, one per replica (most calls first), or one per week (every week from
        the first to the last, Monday UTC, empty weeks included).

    Returns
    -------
    pandas.DataFrame
        replica_id : str, or week : datetime64[ns, UTC] (with ``by``).
        calls : int64, calls judged.
        success, failure, unknown : int64, calls of each result.
        success_rate : float64, success / (success + failure), 0 to 1: unknown calls are left
        out (NaN when no call was decided).
        unknown_share : float64, unknown / calls (NaN with no call).
    """
    counts = ["calls", *RESULTS]
    if by in ("replica", "replica_id"):
        key = "replica_id"
    elif by in ("week", "W"):
        key = "week"
    elif by is None:
        key = None
    else:
        raise ValueError(f"unknown by {by!r}: use None, 'replica' or 'week'")
    result = evaluation["result"].astype(object)
    frame = pd.DataFrame({r: (result == r).astype("int64") for r in RESULTS})
    frame["calls"] = 1
    if key is None:
        out = frame[counts].sum().to_frame().T.astype("int64")
    else:
        frame[key] = evaluation[key].astype(object) if key == "replica_id" else evaluation[key]
        out = frame.groupby(key, dropna=False)[counts].sum().reset_index()
        if key == "week":
            if len(out):
                weeks = pd.date_range(out["week"].min(), out["week"].max(), freq="7D")
                out = out.set_index("week").reindex(weeks, fill_value=0)
                out = out.rename_axis("week").reset_index()
            out["week"] = out["week"].astype("datetime64[ns, UTC]")
        else:
            out = out.sort_values(["calls", key], ascending=[False, True], kind="stable")
            out = out.reset_index(drop=True)
        out[counts] = out[counts].astype("int64")
    decided = out["success"] + out["failure"]
    out["success_rate"] = (out["success"] / decided.where(decided > 0)).astype("float64")
    out["unknown_share"] = (out["unknown"] / out["calls"].where(out["calls"] > 0)).astype("float64")
    return out


def deciding_rules(evaluation: pd.DataFrame, result: str = "failure") -> pd.DataFrame:
    """Which rules decided the calls of one result (the failures by default), most first.

    Returns
    -------
    pandas.DataFrame
        rule : str, the deciding rule's label (see :func:`evaluate`).
        calls : int64, calls of ``result`` it decided.
        share : float64, of the calls of ``result``.
    """
    if result not in RESULTS:
        raise ValueError(f"result must be one of {', '.join(RESULTS)}, not {result!r}")
    mine = evaluation.loc[(evaluation["result"] == result).to_numpy(dtype=bool), "rule"]
    counts = mine.astype(object).value_counts(sort=False)
    out = pd.DataFrame({"rule": counts.index.astype(object), "calls": counts.to_numpy()})
    out = out.sort_values(["calls", "rule"], ascending=[False, True], kind="stable")
    out["calls"] = out["calls"].astype("int64")
    out["share"] = (out["calls"] / max(len(mine), 1)).astype("float64")
    return out.reset_index(drop=True)


# -- for the terminal and for machines -----------------------------------------------------------
def _number(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def summary(evaluation: pd.DataFrame, criteria: Criteria | None = None) -> dict[str, Any]:
    """The figures of ``tavus-analytics evaluate``, as plain values (JSON-ready).

    Returns
    -------
    dict
        ``criteria`` (its one-line description, or None), ``calls``, ``success``,
        ``failure``, ``unknown``, ``success_rate`` (None when no call was decided),
        ``by_replica`` and ``by_week`` (lists of the rows of :func:`success_rate`, weeks as
        ``YYYY-MM-DD``), ``failures_by_rule`` and ``unknown_by_rule`` (:func:`deciding_rules`)
        and ``results``, one ``{conversation_id, replica_id, result, rule, score}`` per call.
    """

    def rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
        out = []
        for row in frame.to_dict("records"):
            for k, v in row.items():
                if isinstance(v, pd.Timestamp):
                    row[k] = f"{v:%Y-%m-%d}"
                elif isinstance(v, (float, np.floating)):
                    row[k] = _number(v)
                elif isinstance(v, (np.integer,)):
                    row[k] = int(v)
                elif v is not None and not isinstance(v, (str, int)) and pd.isna(v):
                    row[k] = None
            out.append(row)
        return out

    total = success_rate(evaluation).iloc[0]
    return {
        "criteria": criteria.describe() if criteria is not None else None,
        "calls": int(total["calls"]),
        "success": int(total["success"]),
        "failure": int(total["failure"]),
        "unknown": int(total["unknown"]),
        "success_rate": _number(total["success_rate"]),
        "by_replica": rows(success_rate(evaluation, by="replica")),
        "by_week": rows(success_rate(evaluation, by="week")),
        "failures_by_rule": rows(deciding_rules(evaluation, "failure")),
        "unknown_by_rule": rows(deciding_rules(evaluation, "unknown")),
        "results": rows(
            evaluation[["conversation_id", "replica_id", "result", "rule", "score"]].astype(
                {"result": object}
            )
        ),
    }


def render(figures: dict[str, Any], *, title: str = "", width: int = 100) -> str:
    """The figures of :func:`summary` as aligned tables for a terminal."""

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{x:.1%}"

    lines = [title] if title else []
    if figures["criteria"]:
        lines.append(figures["criteria"])
    decided = figures["success"] + figures["failure"]
    lines += [
        "",
        f"Calls         {figures['calls']:,}: {figures['success']:,} success, "
        f"{figures['failure']:,} failure, {figures['unknown']:,} unknown",
        f"Success rate  {pct(figures['success_rate'])} of {decided:,} decided calls"
        + (f" ({figures['unknown']:,} unknown left out)" if figures["unknown"] else ""),
    ]

    def table(heading: str, key: str, rows: list[dict]) -> None:
        if not rows:
            return
        keys = [str(r[key]) if r[key] is not None else "(none)" for r in rows]
        w = max(len(heading), *(len(k) for k in keys))
        lines.extend(["", f"{heading:<{w}}  {'calls':>7}  {'success':>7}  {'failure':>7}  "
                      f"{'unknown':>7}  {'success rate':>12}"])  # fmt: skip
        for k, r in zip(keys, rows, strict=True):
            lines.append(
                f"{k:<{w}}  {r['calls']:>7,}  {r['success']:>7,}  {r['failure']:>7,}  "
                f"{r['unknown']:>7,}  {pct(r['success_rate']):>12}"
            )

    table("replica", "replica_id", figures["by_replica"])
    table("week (Monday, UTC)", "week", figures["by_week"])
    for heading, key in (
        ("Rules that decided the failures", "failures_by_rule"),
        ("Rules that left calls unknown", "unknown_by_rule"),
    ):
        rows = figures[key]
        if not rows:
            continue
        room = max(20, width - 20)
        labels = [
            r["rule"] if len(r["rule"]) <= room else r["rule"][: room - 1] + "…" for r in rows
        ]
        w = max(len(label) for label in labels)
        lines.extend(["", heading])
        for label, r in zip(labels, rows, strict=True):
            lines.append(f"  {label:<{w}}  {r['calls']:>7,}  {r['share']:>6.1%}")
    return "\n".join(lines) + "\n"
