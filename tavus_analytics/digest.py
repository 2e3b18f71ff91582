"""The digest: a day, a week or a month of calls in a few figures, each against the period
before, for the terminal, Markdown, HTML or the alert channels (``tavus-analytics digest``).

:func:`build` makes a :class:`Digest` of the last complete period before a time (default now;
periods are UTC, weeks start on Monday): calls, completion, no-show and failure rates, the
median duration, call minutes (join to shutdown), the estimated cost at a price per minute, the
top shutdown categories, and where present the objective completion rate and guardrail triggers
per 100 calls, each with the previous period's figure and the change. :func:`render` lays it
out as text, Markdown or HTML; :func:`send` sends it to the channels of a rules file (its
``[digest]`` table says which), once per period and channel: the ``digest_ledger`` table of the
database records what was sent, so that a scheduled run that comes again, or a second machine,
sends nothing twice. A sending that fails is taken out of the ledger again, for the next run.

A digest holds figures only: nothing said in a call, never the collector's token.
"""

from __future__ import annotations

import html as html_escape
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .errors import TavusAnalyticsError
from .notify import Message, deliver

__all__ = [
    "FORMATS",
    "PERIODS",
    "Digest",
    "Period",
    "build",
    "figures",
    "message",
    "render",
    "send",
    "write",
]

#: The periods a digest covers.
PERIODS = ("day", "week", "month")
#: The layouts :func:`render` makes.
FORMATS = ("text", "markdown", "html")
TOP_REASONS = 3


# -- periods --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Period:
    """``[start, end)`` in UTC, a whole day, week (Monday to Sunday) or calendar month."""

    kind: str
    start: datetime
    end: datetime

    @classmethod
    def last_complete(cls, kind: str, at: datetime) -> Period:
        """The last whole period that ended at or before ``at``."""
        if kind not in PERIODS:
            raise ValueError(f"unknown period {kind!r}: use day, week or month")
        at = at.astimezone(UTC)
        today = at.replace(hour=0, minute=0, second=0, microsecond=0)
        if kind == "day":
            return cls(kind, today - timedelta(days=1), today)
        if kind == "week":
            monday = today - timedelta(days=today.weekday())
            return cls(kind, monday - timedelta(days=7), monday)
        first = today.replace(day=1)
        return cls(kind, _month_before(first), first)

    def previous(self) -> Period:
        """The period just before this one, of the same kind."""
        if self.kind == "month":
            return Period(self.kind, _month_before(self.start), self.start)
        return Period(self.kind, self.start - (self.end - self.start), self.start)

    @property
    def key(self) -> str:
        """The ledger's name for it: its first day, ``2026-10-19``."""
        return self.start.strftime("%Y-%m-%d")

    @property
    def label(self) -> str:
        """In words: ``2026-10-19``, ``2026-10-19 to 2026-10-25``, ``October 2026``."""
        if self.kind == "day":
            return self.key
        if self.kind == "month":
            return self.start.strftime("%B %Y")
        return f"{self.key} to {(self.end - timedelta(days=1)):%Y-%m-%d}"

    @property
    def adjective(self) -> str:
        return {"day": "Daily", "week": "Weekly", "month": "Monthly"}[self.kind]


def _month_before(first: datetime) -> datetime:
    return (first - timedelta(days=1)).replace(day=1)


# -- figures --------------------------------------------------------------------------------------
def figures(ds: Any, rate_per_minute: float | None = None) -> dict[str, Any]:
    """The digest's figures of a (filtered) dataset.

    Returns
    -------
    dict
        ``calls`` (int, conversations that started in the period), ``ended`` (int),
        ``completion_rate``, ``no_show_rate``, ``failure_rate`` (float 0 to 1 of the ended
        calls, or None), ``duration_median_s`` (float or None), ``call_minutes`` (float, join to
        shutdown), ``cost`` (float or None: ``call_minutes * rate_per_minute``),
        ``shutdown_reasons`` (list of ``{"category", "count", "share"}`` of the ended calls
        with a reason, every category, the most frequent first), ``objective_completion``
        (float or None: completed over eligible calls, summed over the objectives; None when
        no objective completion arrived) and ``guardrail_triggers_per_100`` (float or None:
        None when no trigger arrived).
    """
    conv = ds.conversations
    outcome = conv["outcome"].astype(object)
    ended = int(outcome.notna().sum())

    def rate(name: str) -> float | None:
        return int((outcome == name).sum()) / ended if ended else None

    durations = conv["duration_s"].dropna().astype(float)
    minutes = float(durations.sum()) / 60
    reasons = conv["shutdown_category"].astype(object).dropna().value_counts()
    total = int(reasons.sum())
    objective = None
    if len(ds.objectives):
        done = ds.objective_completion()
        eligible = int(done["calls"].sum())
        objective = int(done["completed"].sum()) / eligible if eligible else None
    guardrails = None
    if len(ds.guardrail_triggers) and ended:
        summary = ds.guardrail_summary()
        guardrails = float(
            summary.loc[summary["guardrail"] == "all", "triggers_per_100_calls"].iloc[0]
        )
    return {
        "calls": len(conv),
        "ended": ended,
        "completion_rate": rate("completed"),
        "no_show_rate": rate("no_show"),
        "failure_rate": rate("failed"),
        "duration_median_s": float(durations.median()) if len(durations) else None,
        "call_minutes": minutes,
        "cost": None if rate_per_minute is None else minutes * rate_per_minute,
        "shutdown_reasons": [
            {"category": str(c), "count": int(n), "share": n / total} for c, n in reasons.items()
        ],
        "objective_completion": objective,
        "guardrail_triggers_per_100": guardrails,
    }


@dataclass
class Digest:
    """One period's figures beside the period before's."""

    period: Period
    current: dict[str, Any]
    before: dict[str, Any]
    database: str
    rate_per_minute: float | None = None
    replicas: tuple[str, ...] | None = None
    made_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def title(self) -> str:
        scope = f", replica {', '.join(self.replicas)}" if self.replicas else ""
        return f"{self.period.adjective} Tavus digest: {self.period.label}{scope}"

    def rows(self) -> list[tuple[str, str, str, str]]:
        """(figure, this period, the period before, change) as text."""
        c, b = self.current, self.before
        rows = [
            ("Calls", f"{c['calls']:,}", f"{b['calls']:,}", _count_change(c["calls"], b["calls"])),
        ]
        for key, label in (
            ("completion_rate", "Completion rate"),
            ("no_show_rate", "No-show rate"),
            ("failure_rate", "Failure rate"),
        ):
            rows.append((label, _pct(c[key]), _pct(b[key]), _points(c[key], b[key])))
        rows.append(
            (
                "Median duration",
                _duration(c["duration_median_s"]),
                _duration(b["duration_median_s"]),
                _seconds_change(c["duration_median_s"], b["duration_median_s"]),
            )
        )
        rows.append(
            (
                "Call minutes",
                f"{c['call_minutes']:,.0f}",
                f"{b['call_minutes']:,.0f}",
                _relative(c["call_minutes"], b["call_minutes"]),
            )
        )
        if self.rate_per_minute is not None:
            rows.append(
                (
                    f"Estimated cost ({self.rate_per_minute:g} per minute)",
                    f"{c['cost']:,.2f}",
                    f"{b['cost']:,.2f}",
                    _relative(c["cost"], b["cost"]),
                )
            )
        before = {r["category"]: r["share"] for r in b["shutdown_reasons"]}
        for i, r in enumerate(c["shutdown_reasons"][:TOP_REASONS]):
            label = "Top shutdown reasons" if i == 0 else ""
            rows.append(
                (
                    label,
                    f"{r['category']} {r['share']:.0%} ({r['count']:,})",
                    _pct(before.get(r["category"], 0.0), digits=0) if b["ended"] else "-",
                    _points(r["share"], before.get(r["category"], 0.0) if b["ended"] else None),
                )
            )
        if c["objective_completion"] is not None or b["objective_completion"] is not None:
            o, ob = c["objective_completion"], b["objective_completion"]
            rows.append(("Objective completion", _pct(o), _pct(ob), _points(o, ob)))
        if (
            c["guardrail_triggers_per_100"] is not None
            or b["guardrail_triggers_per_100"] is not None
        ):
            g, gb = c["guardrail_triggers_per_100"], b["guardrail_triggers_per_100"]
            rows.append(
                (
                    "Guardrail triggers per 100 calls",
                    _number(g),
                    _number(gb),
                    "-" if g is None or gb is None else f"{g - gb:+.1f}",
                )
            )
        return rows

    def as_dict(self) -> dict[str, Any]:
        """The digest as JSON-ready values (what a generic webhook receives)."""
        return {
            "source": "tavus-analytics",
            "type": "digest",
            "period": self.period.kind,
            "start": _iso(self.period.start),
            "end": _iso(self.period.end),
            "previous_start": _iso(self.period.previous().start),
            "replicas": list(self.replicas) if self.replicas else None,
            "rate_per_minute": self.rate_per_minute,
            "current": self.current,
            "previous": self.before,
        }


def build(
    db: Any,
    period: str = "week",
    *,
    at: datetime | None = None,
    rate_per_minute: float | None = None,
    replicas: list[str] | None = None,
) -> Digest:
    """The digest of the last complete ``period`` (``day``, ``week`` or ``month``) before
    ``at`` (default now), read from ``db`` (a SQLite file or a PostgreSQL URL)."""
    from .dataset import load

    at = (at or datetime.now(UTC)).astimezone(UTC)
    span = Period.last_complete(period, at)
    prior = span.previous()
    root = load(db)
    reps = list(replicas) if replicas else None
    current = figures(root.filter(since=span.start, until=span.end, replicas=reps), rate_per_minute)
    before = figures(
        root.filter(since=prior.start, until=prior.end, replicas=reps), rate_per_minute
    )
    return Digest(span, current, before, root.name, rate_per_minute, tuple(reps) if reps else None)


# -- layouts --------------------------------------------------------------------------------------
def render(digest: Digest, fmt: str = "text") -> str:
    """The digest as ``text`` (aligned, for a terminal or a chat), ``markdown`` (a table) or
    ``html`` (one self-contained page, inline style, no script)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: use text, markdown or html")
    rows = digest.rows()
    this, prior = _column_names(digest.period.kind)
    note = (
        f"UTC; calls placed by when they started; durations and minutes from join to shutdown. "
        f"Database: {digest.database}."
    )
    if fmt == "markdown":
        lines = [
            f"## {digest.title}",
            "",
            f"| | {this} | {prior} | change |",
            "|---|---:|---:|---:|",
            *(f"| {_md(a)} | {_md(b)} | {_md(c)} | {_md(d)} |" for a, b, c, d in rows),
            "",
            f"_{_md(note)}_",
        ]
        return "\n".join(lines) + "\n"
    if fmt == "html":
        e = html_escape.escape
        body = "".join(
            f"<tr><th>{e(a)}</th><td>{e(b)}</td><td>{e(c)}</td><td>{e(d)}</td></tr>"
            for a, b, c, d in rows
        )
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{e(digest.title)}</title><style>{_CSS}</style></head><body>"
            f"<h1>{e(digest.title)}</h1><table><tr><th></th><th>{e(this)}</th>"
            f"<th>{e(prior)}</th><th>change</th></tr>{body}</table>"
            f'<p class="note">{e(note)}</p></body></html>\n'
        )
    table = [("", this, prior, "change"), *rows]
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    lines = [digest.title, ""]
    for a, b, c, d in table:
        lines.append(f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:<{widths[2]}}  {d}".rstrip())
    lines += ["", note]
    return "\n".join(lines) + "\n"


_CSS = (
    "body{font:15px/1.5 -apple-system,'Segoe UI',Roboto,Arial,sans-serif;color:#1d1d1d;"
    "margin:24px}h1{font-size:20px}table{border-collapse:collapse}"
    "th,td{padding:4px 12px;border-bottom:1px solid #e4e4e4;text-align:left}"
    "td{font-variant-numeric:tabular-nums}.note{color:#666;font-size:13px}"
)


def _column_names(kind: str) -> tuple[str, str]:
    return {"day": ("this day", "the day before"), "week": ("this week", "the week before")}.get(
        kind, ("this month", "the month before")
    )


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("_", "\\_")


def write(digest: Digest, out: Any, fmt: str = "text") -> Path:
    """Write the digest to ``out`` in ``fmt``, whole or not at all (replaced if it exists)."""
    out = Path(out)
    if out.is_dir():
        raise TavusAnalyticsError(f"{out} is a folder: give a file name, e.g. --out digest.md")
    if not out.parent.is_dir():
        raise TavusAnalyticsError(f"cannot write {out}: the folder {out.parent} does not exist")
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(render(digest, fmt), encoding="utf-8")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


# -- sending --------------------------------------------------------------------------------------
def message(digest: Digest) -> Message:
    """The digest as a message: aligned text (a chat shows it in monospace), an HTML body for
    e-mail, and the figures as JSON for a generic webhook."""
    return Message(
        f"[tavus-analytics] {digest.title}",
        render(digest, "text"),
        digest.as_dict(),
        html=render(digest, "html"),
        monospace=True,
    )


def send(
    digest: Digest,
    rules: Any,
    store: Any,
    *,
    secret: str | None = None,
    now: datetime | None = None,
) -> dict[str, str]:
    """Send ``digest`` to the channels of ``rules``' ``[digest]`` table (default: every
    channel), each at most once per period, through the ledger in ``store``.

    Returns
    -------
    dict
        ``{channel: "sent"}``, ``{channel: "already sent at ..."}``, or the failure's message
        (the entry is taken out of the ledger again, so that the next run retries).
    """
    now = (now or datetime.now(UTC)).astimezone(UTC)
    period = digest.period
    scope = period.kind if not digest.replicas else f"{period.kind}:{','.join(digest.replicas)}"
    result: dict[str, str] = {}
    for ch in rules.channels_of(rules.digest.notify):
        if not store.claim_digest(scope, period.key, ch.name, _iso(now)):
            sent_at = store.digests_sent(scope, period.key).get(ch.name, "")
            result[ch.name] = f"already sent at {sent_at[:16].replace('T', ' ')} UTC"
            continue
        error = deliver(message(digest), [ch], secret)[ch.name]
        if error is None:
            result[ch.name] = "sent"
        else:
            store.release_digest(scope, period.key, ch.name)
            result[ch.name] = str(error)
    return result


# -- numbers as text ------------------------------------------------------------------------------
def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}%}"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _points(now: float | None, before: float | None) -> str:
    if now is None or before is None:
        return "-"
    return f"{100 * (now - before):+.1f} pp"


def _relative(now: float | None, before: float | None) -> str:
    if now is None or before is None:
        return "-"
    if before == 0:
        return "new" if now else "="
    return f"{now / before - 1:+.0%}"


def _count_change(now: int, before: int) -> str:
    return f"{now - before:+,}" + (f" ({_relative(now, before)})" if before else "")


def _duration(seconds: float | None) -> str:
    from .stats import duration_text

    return duration_text(seconds)


def _seconds_change(now: float | None, before: float | None) -> str:
    if now is None or before is None:
        return "-"
    from .stats import duration_text

    delta = now - before
    return ("+" if delta >= 0 else "-") + duration_text(abs(delta))
