"""Alerts: rules in a TOML file, checked against the live database, notified once per change.

A rules file declares channels (:mod:`tavus_analytics.notify`) and rules::

    dashboard_url = "https://callbacks.example.ngrok.app/dashboard"   # linked in messages

    [channels.ops]
    type = "slack"                      # a Slack-compatible incoming webhook
    url_env = "SLACK_WEBHOOK_URL"       # the URL holds a secret: keep it in the environment

    [channels.team]
    type = "email"
    host = "smtp.example.com"           # port 587 and STARTTLS unless said otherwise
    from = "tavus-alerts@example.com"
    to = ["oncall@example.com"]
    username = "tavus-alerts@example.com"
    password_env = "SMTP_PASSWORD"

    [[rule]]
    name = "failed calls"
    metric = "failed_rate"              # failed calls among those that ended in the window
    above = "20%"
    window = "1h"
    min_calls = 10                      # fewer calls than this: not judged, the state stays
    notify = ["ops", "team"]            # default: every channel

The metrics (:data:`METRICS`): ``failed_rate`` and ``no_show_rate`` (of the calls that ended in
the window; ``min_calls``, default 10), ``no_callbacks`` (no callback at all for ``window``),
``recording_copy_failures`` (more than ``above``, default 0, in the window),
``guardrail_triggers_per_100`` (per 100 calls that ended in the window; ``guardrail`` = a name
to count one guardrail only; ``min_calls``) and ``answer_delay_p90`` (seconds, over the timed
answers of the calls that ended in the window; ``min_answers``, default 20). ``window`` is a
duration such as ``30m``, ``1h``, ``24h`` or ``7d``; a rate's ``above`` is a fraction (``0.2``)
or a percentage (``"20%"``).

Each rule is ``OK``, ``FIRING`` or ``RESOLVED`` in the ``alert_state`` table of the database
(``OK`` when first checked). A check that finds the rule's condition met moves ``OK`` or
``RESOLVED`` to ``FIRING``; one that finds it no longer met moves ``FIRING`` to ``RESOLVED``;
each change is sent once to the rule's channels. The change is a conditional update, so that of
two checkers (a collector and a cron job, or two collectors) one makes it and notifies; a
channel that could not be told is tried again at the next checks, for a day. Not enough data
(``min_calls``, ``min_answers``) changes nothing. :func:`check` runs the rules once
(``tavus-analytics alerts check``, from cron); :class:`Watcher` runs them in the collector every
few minutes (``serve --alerts FILE``).

A message says which rule changed, the figure and the threshold, and how many calls it is
based on: never a transcript, and never the collector's token (messages are scrubbed of it, and
a ``dashboard_url`` is sent without its query string).
"""

from __future__ import annotations

import logging
import re
import threading
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .errors import InvalidRules
from .notify import Channel, Message, channel, deliver

__all__ = [
    "METRICS",
    "STATES",
    "DigestSettings",
    "Outcome",
    "Reading",
    "Rule",
    "Rules",
    "Watcher",
    "check",
    "evaluate",
    "failures",
    "message",
    "read_rules",
    "states",
    "test_message",
]

log = logging.getLogger("tavus_analytics.alerts")

#: The states of a rule.
STATES = ("OK", "FIRING", "RESOLVED")

#: The metrics a rule may watch: what it measures, and the keys it takes besides ``name``,
#: ``metric``, ``window`` and ``notify`` (those marked True are required).
METRICS: dict[str, tuple[str, dict[str, bool]]] = {
    "failed_rate": ("failed-call rate", {"above": True, "min_calls": False}),
    "no_show_rate": ("no-show rate", {"above": True, "min_calls": False}),
    "no_callbacks": ("time without a callback", {}),
    "recording_copy_failures": ("recording copy failures", {"above": False}),
    "guardrail_triggers_per_100": (
        "guardrail triggers per 100 calls",
        {"above": True, "min_calls": False, "guardrail": False},
    ),
    "answer_delay_p90": ("answer delay p90", {"above": True, "min_answers": False}),
}
_RATES = ("failed_rate", "no_show_rate")
MIN_CALLS = 10
MIN_ANSWERS = 20
#: How long a change whose message a channel did not take is offered again.
RETRY_FOR = timedelta(days=1)

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


# -- the rules file ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    """One alert rule of a rules file (see the module's documentation for the keys)."""

    name: str
    metric: str
    window: timedelta
    above: float | None = None
    min_calls: int = MIN_CALLS
    min_answers: int = MIN_ANSWERS
    guardrail: str | None = None
    notify: tuple[str, ...] | None = None
    line: int | None = None
    window_label: str | None = None

    @property
    def window_text(self) -> str:
        """The window as the file wrote it (``24h``), else in the largest whole unit."""
        return self.window_label or _duration_text(self.window)

    def threshold_text(self) -> str:
        above = self.above or 0
        if self.metric in _RATES:
            return f"{above:.0%}" if above * 100 == round(above * 100) else f"{above:.1%}"
        if self.metric == "answer_delay_p90":
            return f"{above:g} s"
        if self.metric == "guardrail_triggers_per_100":
            return f"{above:g} per 100 calls"
        if self.metric == "no_callbacks":
            return self.window_text
        return f"{above:g}"


@dataclass(frozen=True)
class DigestSettings:
    """The ``[digest]`` table: the channels a digest is sent to (default: every channel) and
    the default price of a call minute."""

    notify: tuple[str, ...] | None = None
    rate_per_minute: float | None = None


@dataclass(frozen=True)
class Rules:
    """A rules file, read: its rules, its channels by name, the ``[digest]`` settings and the
    dashboard's address to link (without a query string)."""

    path: str
    rules: tuple[Rule, ...]
    channels: dict[str, Channel]
    digest: DigestSettings = DigestSettings()
    dashboard_url: str | None = None

    def channels_of(self, names: tuple[str, ...] | None) -> list[Channel]:
        """The channels named (every channel for None)."""
        if names is None:
            return list(self.channels.values())
        return [self.channels[n] for n in names]


class _Lines:
    """Where things are in a TOML text: the line of each table header and of each key in it."""

    _HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
    _KEY = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_-]+)\s*=""")

    def __init__(self, text: str) -> None:
        self.tables: dict[tuple, int] = {}
        self.keys: dict[tuple, int] = {}
        current: tuple = ()
        counts: dict[str, int] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            header = self._HEADER.match(line)
            if header:
                path = tuple(p.strip().strip("\"'") for p in header.group(2).split("."))
                if header.group(1) == "[[":
                    index = counts.get(".".join(path), 0)
                    counts[".".join(path)] = index + 1
                    current = (*path, index)
                else:
                    current = path
                self.tables[current] = number
                continue
            key = self._KEY.match(line)
            if key:
                self.keys.setdefault((*current, key.group(1).strip("\"'")), number)

    def of(self, table: tuple, key: str | None = None) -> int | None:
        if key is not None and (*table, key) in self.keys:
            return self.keys[(*table, key)]
        return self.tables.get(table)


def read_rules(path: str | Path, environ: Mapping[str, str] | None = None) -> Rules:
    """Read and check a rules file.

    Raises
    ------
    InvalidRules
        When the file cannot be read or used; the message names the file, the line and the
        rule or channel, and says what to write instead.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidRules(f"no rules file at {path}: write one (see docs/cli.md)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidRules(f"cannot read the rules file {path}: {e}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        where = re.search(r"\(at line (\d+), column (\d+)\)", str(e))
        what = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", str(e))
        at = f" line {where.group(1)}, column {where.group(2)}" if where else " (end of the file)"
        raise InvalidRules(f"{path}{at}: {what} (not valid TOML)") from None
    lines = _Lines(text)

    def problem(table: tuple, label: str) -> Callable[[str, str | None], InvalidRules]:
        def make(message: str, key: str | None = None) -> InvalidRules:
            line = lines.of(table, key)
            return InvalidRules(f"{path}{f' line {line}' if line else ''}, {label}: {message}")

        return make

    top = problem((), "top level")
    unknown = sorted(set(data) - {"rule", "channels", "digest", "dashboard_url"})
    if unknown:
        raise top(
            f"unknown key {unknown[0]!r} (use [[rule]], [channels.NAME], [digest] or "
            "dashboard_url)",
            unknown[0],
        )
    channels_table = data.get("channels", {})
    if not isinstance(channels_table, dict):
        raise top("channels must be tables: [channels.NAME]", "channels")
    channels: dict[str, Channel] = {}
    for name, table in channels_table.items():
        where = problem(("channels", name), f"channel {name!r}")
        if not isinstance(table, dict):
            raise where("a channel is a table: [channels.NAME] with type = ...", None)
        channels[name] = channel(name, table, where, environ)
    rule_tables = data.get("rule", [])
    if not isinstance(rule_tables, list):
        raise top("rules are written [[rule]] (a list of tables)", "rule")
    rules: list[Rule] = []
    for index, table in enumerate(rule_tables):
        rule = _rule(table, index, problem, channels, lines)
        if any(r.name == rule.name for r in rules):
            raise problem(("rule", index), f"rule {rule.name!r}")(
                "another rule has this name: names must be unique", "name"
            )
        rules.append(rule)
    digest = DigestSettings()
    if "digest" in data:
        digest = _digest(data["digest"], problem(("digest",), "[digest]"), channels)
    dashboard_url = data.get("dashboard_url")
    if dashboard_url is not None:
        if not isinstance(dashboard_url, str) or not dashboard_url.startswith(
            ("https://", "http://")
        ):
            raise top("dashboard_url must be an http(s) URL", "dashboard_url")
        parts = urlsplit(dashboard_url)  # never a token: the link goes without its query
        dashboard_url = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    return Rules(str(path), tuple(rules), channels, digest, dashboard_url)


def _notify(value: Any, where: Callable, channels: dict[str, Channel]) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise where("notify must be a channel name or a list of them", "notify")
    for name in value:
        if name not in channels:
            known = ", ".join(channels) or "none is declared"
            raise where(
                f"notify names the channel {name!r}, which is not declared ({known})", "notify"
            )
    return tuple(value)


def _rule(
    table: Any, index: int, problem: Callable, channels: dict[str, Channel], lines: _Lines
) -> Rule:
    name = table.get("name") if isinstance(table, dict) else None
    label = f"rule {name!r}" if isinstance(name, str) and name.strip() else f"rule #{index + 1}"
    where = problem(("rule", index), label)
    if not isinstance(table, dict):
        raise where("a rule is a table: [[rule]] with name, metric, ...", None)
    if not isinstance(name, str) or not name.strip():
        raise where('every rule needs a name (name = "failed calls")', "name")
    metric = table.get("metric")
    if metric not in METRICS:
        raise where(f"metric must be one of {', '.join(METRICS)} (got {metric!r})", "metric")
    keys = METRICS[metric][1]
    allowed = {"name", "metric", "window", "notify", *keys}
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise where(
            f"unknown key {unknown[0]!r} for metric {metric} (use {', '.join(sorted(allowed))})",
            unknown[0],
        )
    for key, required in keys.items():
        if required and key not in table:
            raise where(f"metric {metric} needs {key}", None)
    if "window" not in table:
        raise where('every rule needs a window, e.g. window = "1h"', None)
    window = _duration(table["window"], where)
    above = None
    if "above" in table:
        above = _threshold(table["above"], metric, where)
    elif metric == "recording_copy_failures":
        above = 0.0
    counts = {}
    for key, default in (("min_calls", MIN_CALLS), ("min_answers", MIN_ANSWERS)):
        value = table.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise where(f"{key} must be a whole number of at least 1 (got {value!r})", key)
        counts[key] = value
    guardrail = table.get("guardrail")
    if guardrail is not None and (not isinstance(guardrail, str) or not guardrail.strip()):
        raise where("guardrail must be a guardrail's name", "guardrail")
    return Rule(
        name=name.strip(),
        metric=metric,
        window=window,
        above=above,
        guardrail=guardrail,
        notify=_notify(table.get("notify"), where, channels),
        line=lines.of(("rule", index)),
        window_label="".join(table["window"].split()).lower(),
        **counts,
    )


def _digest(table: Any, where: Callable, channels: dict[str, Channel]) -> DigestSettings:
    if not isinstance(table, dict):
        raise where("[digest] is a table", None)
    unknown = sorted(set(table) - {"notify", "rate_per_minute"})
    if unknown:
        raise where(f"unknown key {unknown[0]!r} (use notify, rate_per_minute)", unknown[0])
    rate = table.get("rate_per_minute")
    if rate is not None and (
        not isinstance(rate, int | float) or isinstance(rate, bool) or rate < 0
    ):
        raise where("rate_per_minute must be a number of at least 0", "rate_per_minute")
    return DigestSettings(_notify(table.get("notify"), where, channels), rate)


def _duration(value: Any, where: Callable) -> timedelta:
    text = value.strip().lower() if isinstance(value, str) else ""
    parts = _DURATION.findall(text)
    if not parts or _DURATION.sub("", text).strip():
        raise where(
            f'window must be a duration such as "30m", "1h", "24h" or "7d" (got {value!r})',
            "window",
        )
    seconds = sum(float(n) * _UNIT_S[unit] for n, unit in parts)
    if seconds < 60:
        raise where("window must be a minute or more", "window")
    return timedelta(seconds=seconds)


def _threshold(value: Any, metric: str, where: Callable) -> float:
    if isinstance(value, str) and value.strip().endswith("%") and metric in _RATES:
        try:
            number = float(value.strip()[:-1]) / 100
        except ValueError:
            number = None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        number = None
    if number is None or number < 0:
        form = 'a fraction (0.2) or a percentage ("20%")' if metric in _RATES else "a number"
        raise where(f"above must be {form} (got {value!r})", "above")
    if metric in _RATES and number > 1:
        raise where(f'above is a rate: at most 1, or "100%" (got {value!r})', "above")
    return number


def _duration_text(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _ago(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes:02d}m"
    return f"{hours // 24}d {hours % 24}h"


# -- evaluating a rule ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Reading:
    """What a check found for a rule: the figure (``value``; NaN-free, None when there is
    nothing to measure), whether the condition is met (None: not enough data to judge) and the
    same in words."""

    value: float | None
    breached: bool | None
    detail: str


def evaluate(rule: Rule, ds: Any, now: datetime) -> Reading:
    """Evaluate ``rule`` on the whole :class:`~tavus_analytics.dataset.Dataset` ``ds`` at
    ``now`` (tz-aware UTC): the window is ``[now - window, now)``."""
    import pandas as pd

    end = pd.Timestamp(now).tz_convert("UTC")
    start = end - pd.Timedelta(rule.window)
    span = f"in the last {rule.window_text}"

    def within(times: pd.Series) -> pd.Series:
        return ((times >= start) & (times < end)).fillna(False).astype(bool)

    def ended() -> pd.DataFrame:
        c = ds.conversations
        return c[within(c["shutdown_at"]).to_numpy()]

    if rule.metric in _RATES:
        calls = ended()
        n = len(calls)
        if n < rule.min_calls:
            return Reading(
                None,
                None,
                f"{n} calls ended {span}, fewer than min_calls {rule.min_calls}: not judged",
            )
        outcome = "failed" if rule.metric == "failed_rate" else "no_show"
        hit = int((calls["outcome"].astype(object) == outcome).sum())
        rate = hit / n
        words = "failed" if outcome == "failed" else "were no-shows"
        return Reading(
            rate, rate > rule.above, f"{hit} of {n} calls that ended {span} {words} ({rate:.1%})"
        )
    if rule.metric == "no_callbacks":
        received = ds.events["received_at"]
        last = received.max() if len(received) else pd.NaT
        if pd.isna(last):
            return Reading(None, True, "no callback has ever arrived")
        age = end - last
        hours = age.total_seconds() / 3600
        return Reading(
            hours,
            age >= pd.Timedelta(rule.window),
            f"the last callback arrived {_ago(age.to_pytimedelta())} ago "
            f"({last:%Y-%m-%d %H:%M} UTC)",
        )
    if rule.metric == "recording_copy_failures":
        failures = ds.recording_failures
        recent = failures[within(failures["timestamp"]).to_numpy()]
        n = len(recent)
        codes = recent["error_code"].astype(object).fillna("no code").value_counts()
        which = ", ".join(f"{code} {count}" for code, count in codes.items())
        detail = f"{n} recording{'' if n == 1 else 's'} could not be copied {span}"
        return Reading(float(n), n > rule.above, detail + (f" ({which})" if n else ""))
    if rule.metric == "guardrail_triggers_per_100":
        calls = ended()
        n = len(calls)
        if n < rule.min_calls:
            return Reading(
                None,
                None,
                f"{n} calls ended {span}, fewer than min_calls {rule.min_calls}: not judged",
            )
        triggers = ds.guardrail_triggers
        mine = triggers[within(triggers["triggered_at"]).to_numpy()]
        if rule.guardrail:
            mine = mine[(mine["guardrail"].astype(object) == rule.guardrail).to_numpy()]
        per_100 = 100 * len(mine) / n
        which = f" of {rule.guardrail}" if rule.guardrail else ""
        return Reading(
            per_100,
            per_100 > rule.above,
            f"{len(mine)} guardrail trigger{'' if len(mine) == 1 else 's'}{which} {span}, "
            f"{per_100:.1f} per 100 of the {n} calls that ended",
        )
    # answer_delay_p90
    calls = ended()
    turns = ds.turns
    timed = turns[turns["conversation_id"].isin(calls["conversation_id"]).to_numpy()]
    delays = timed["answer_delay_s"].dropna().astype(float)
    n = len(delays)
    if n < rule.min_answers:
        return Reading(
            None,
            None,
            f"{n} timed answers in calls that ended {span}, fewer than min_answers "
            f"{rule.min_answers}: not judged",
        )
    p90 = float(delays.quantile(0.9))
    return Reading(
        p90,
        p90 > rule.above,
        f"p90 answer delay {p90:.2f} s over {n} timed answers in {len(calls)} calls that "
        f"ended {span}",
    )


# -- checking and notifying ------------------------------------------------------------------------
@dataclass
class Outcome:
    """What a check did for one rule: its state before and after, the reading, and which
    channels were told (``failures``: channel name -> what went wrong). ``elsewhere``: another
    checker made the same change at the same moment, and told the channels itself."""

    rule: Rule
    previous: str
    state: str
    reading: Reading
    notified: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    elsewhere: bool = False

    @property
    def changed(self) -> bool:
        return self.previous != self.state


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _next_state(state: str, breached: bool | None) -> str | None:
    if breached is True and state in ("OK", "RESOLVED"):
        return "FIRING"
    if breached is False and state == "FIRING":
        return "RESOLVED"
    return None


def message(
    rule: Rule,
    state: str,
    reading: Reading,
    at: datetime,
    rules: Rules | None = None,
    fired_at: str | None = None,
) -> Message:
    """The message of a change of ``rule`` to ``state``: the figure, the threshold and what it
    is based on. Nothing said in a call, and no token."""
    what = METRICS[rule.metric][0]
    if rule.metric == "no_callbacks":
        condition = f"no callback for {rule.window_text}"
    else:
        condition = f"{what} above {rule.threshold_text()} over {rule.window_text}"
    if state == "FIRING":
        head = f"FIRING: {rule.name}"
        body = f"{reading.detail}. Condition: {condition}."
    else:
        head = f"RESOLVED: {rule.name}"
        since = f" (firing since {fired_at[:16].replace('T', ' ')} UTC)" if fired_at else ""
        body = f"{reading.detail}. No longer: {condition}{since}."
    link = rules.dashboard_url if rules else None
    text = f"[tavus-analytics] {head}\n{body}" + (f"\nDashboard: {link}" if link else "")
    fields = {
        "source": "tavus-analytics",
        "type": "alert",
        "rule": rule.name,
        "metric": rule.metric,
        "state": state,
        "value": reading.value,
        "threshold": rule.above,
        "window_s": int(rule.window.total_seconds()),
        "detail": reading.detail,
        "at": _iso(at),
        "dashboard_url": link,
    }
    return Message(f"[tavus-analytics] {head}", text, fields)


def check(
    rules: Rules,
    db: Any,
    *,
    now: datetime | None = None,
    secret: str | None = None,
    store: Any = None,
    dry_run: bool = False,
) -> list[Outcome]:
    """Check every rule once against ``db``, move the states and notify each change once.

    Parameters
    ----------
    rules : Rules
        From :func:`read_rules`.
    db : str or Path
        The collector's database (a SQLite file that must exist, or a PostgreSQL URL); read
        with :func:`tavus_analytics.load`, the states written to its ``alert_state`` table.
    now : datetime, optional
        The time of the check (tz-aware; default now): tests give a fake clock.
    secret : str, optional
        The collector's token, masked in every message should it appear.
    store : optional
        An open store on ``db`` for the states (default: one opened and closed here).
    dry_run : bool
        Evaluate and say what would change, without changing a state or sending anything.

    Returns
    -------
    list of Outcome
        One per rule, in the file's order.
    """
    from .dataset import load
    from .store import open_store

    now = (now or datetime.now(UTC)).astimezone(UTC)
    at = _iso(now)
    ds = load(db)
    own = store is None
    if own:
        store = open_store(db, must_exist=True)
    try:
        states = {row[0]: row for row in store.alert_states()}
        outcomes = []
        for rule in rules.rules:
            reading = evaluate(rule, ds, now)
            row = states.get(rule.name)
            state = row[1] if row else "OK"
            target = _next_state(state, reading.breached)
            outcome = Outcome(rule, state, target or state, reading)
            outcomes.append(outcome)
            if dry_run:
                continue
            if row is None:
                store.note_alert_check(rule.name, at, reading.value, reading.detail)
                row = (rule.name, "OK", at, at, reading.value, reading.detail, "")
            if target is None:
                store.note_alert_check(rule.name, at, reading.value, reading.detail)
                _retry(store, rules, rule, row, reading, now, outcome, secret)
                continue
            if not store.change_alert_state(
                rule.name, row[2], target, at, reading.value, reading.detail
            ):
                outcome.elsewhere = True  # another checker made it, and tells the channels
                continue
            fired_at = row[2] if target == "RESOLVED" else None
            _send(store, rules, rule, target, reading, now, at, [], outcome, secret, fired_at)
        return outcomes
    finally:
        if own:
            store.close()


def _send(store, rules, rule, state, reading, now, changed_at, already, outcome, secret, fired_at):
    channels = [c for c in rules.channels_of(rule.notify) if c.name not in already]
    if not channels:
        return
    sent = deliver(message(rule, state, reading, now, rules, fired_at), channels, secret)
    outcome.notified += [name for name, error in sent.items() if error is None]
    outcome.failures.update({name: str(error) for name, error in sent.items() if error})
    for error in sent.values():
        if error is not None:
            log.warning("alert %r: %s", rule.name, error)
    told = [*already, *outcome.notified]
    if told != list(already):
        store.alert_notified(rule.name, changed_at, ",".join(told))


def _retry(store, rules, rule, row, reading, now, outcome, secret) -> None:
    """Offer a change some channel did not take again, for :data:`RETRY_FOR`."""
    state, changed_at, notified = row[1], row[2], row[6]
    if state == "OK":
        return
    already = [n for n in (notified or "").split(",") if n]
    missing = [c.name for c in rules.channels_of(rule.notify) if c.name not in already]
    if not missing:
        return
    changed = datetime.fromisoformat(changed_at.replace("Z", "+00:00"))
    if now - changed > RETRY_FOR:
        return
    _send(store, rules, rule, state, reading, now, changed_at, already, outcome, secret, None)


def states(db: Any) -> list[dict[str, Any]]:
    """Every rule's row of ``alert_state`` in ``db``, read-only (a database made before alerts
    existed has none): ``rule``, ``state``, ``changed_at``, ``checked_at``, ``value``,
    ``detail`` and ``notified`` (the channels told of the last change, comma-separated)."""
    from .store import open_reader
    from .store.base import ALERT_STATE_COLUMNS, Query

    reader = open_reader(db)
    exists = Query(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'alert_state'",
        "SELECT count(*) FROM pg_tables WHERE tablename = 'alert_state'",
    )
    with reader.connect() as conn:
        if not reader.query(exists, conn=conn)[0][0]:
            return []
        rows = reader.query(
            f"SELECT {', '.join(ALERT_STATE_COLUMNS)} FROM alert_state ORDER BY rule", conn=conn
        )
    return [dict(zip(ALERT_STATE_COLUMNS, row, strict=True)) for row in rows]


def test_message(rules: Rules) -> Message:
    """A message that says a channel works, and for which rules."""
    names = ", ".join(r.name for r in rules.rules) or "no rule yet"
    text = (
        "[tavus-analytics] Test: this channel receives the alerts of "
        f"{Path(rules.path).name} ({names})"
        + (f"\nDashboard: {rules.dashboard_url}" if rules.dashboard_url else "")
    )
    fields = {"source": "tavus-analytics", "type": "test", "rules": [r.name for r in rules.rules]}
    return Message("[tavus-analytics] Test message", text, fields)


# -- in the collector ---------------------------------------------------------------------------
class Watcher:
    """Checks ``rules`` against ``db`` every ``every`` seconds in a daemon thread (the
    collector's ``--alerts``), from :meth:`start` until :meth:`stop`. A check that fails (the
    database unreachable, a channel down) is logged; the next one tries again."""

    def __init__(
        self, rules: Rules, db: Any, *, every: float = 300, secret: str | None = None
    ) -> None:
        self.rules = rules
        self.db = db
        self.every = every
        self.secret = secret
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.checks = 0

    def run_once(self) -> list[Outcome] | None:
        try:
            outcomes = check(self.rules, self.db, secret=self.secret)
        except Exception as e:  # logged; the collector keeps collecting
            log.error("alerts: the check failed: %s", e)
            return None
        finally:
            self.checks += 1
        for o in outcomes:
            if o.changed:
                told = ", ".join(o.notified) or "no channel"
                log.warning(
                    "alert %r is %s (was %s): %s; told %s",
                    o.rule.name,
                    o.state,
                    o.previous,
                    o.reading.detail,
                    told,
                )
        return outcomes

    def _run(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self.every)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="tavus-alerts", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)


def failures(outcomes: list[Outcome]) -> list[str]:
    """Every channel failure of a check, as one line each."""
    return [msg for o in outcomes for msg in o.failures.values()]
