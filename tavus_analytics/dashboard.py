"""The collector's dashboard: the report's key figures and charts, live, at ``GET /dashboard``.

Routes (added to the collector's app by :func:`add_routes`)
------------------------------------------------------------
``GET /dashboard``
    The key figures of :func:`tavus_analytics.report.key_figures` and the report's charts for
    a period (``?period=24h|7d|30d|90d|all``, default ``7d``, or ``?since=`` and ``?until=``
    dates) and a replica (``?replica=ID``), from the live database, with the latest
    conversations below, each linked to its one-call page where this version has one
    (``Dataset.conversation``). A form on the page chooses the period and the replica: no
    script.
``GET /dashboard/data.json``
    The same selection's figures as JSON (:func:`tavus_analytics.stats.summary`).
``GET /dashboard/conversations/<id>``
    One call's page, where this version has one.

Access
------
The collector's token is required, as for writing: once in the URL (``/dashboard?token=...``,
the address ``serve`` prints), which answers with a redirect to the same page without it and a
session cookie (``HttpOnly``, ``SameSite=Strict``, ``Secure`` over HTTPS, path ``/dashboard``,
12 hours). The cookie holds an HMAC of its expiry keyed by the token's digest, never the token:
a new token ends every session. ``X-Webhook-Token`` works too, and ``data.json`` also takes
``?token=`` directly (for machines). Without it every route answers ``401`` and shows nothing.
With ``--no-auth`` the dashboard is open, like the rest of the collector, and says so.

Content
-------
Figures and charts only: counts, rates, durations, names of replicas, objectives and
guardrails. What was said or seen (transcripts, perception terms, objective output values) is
shown only when the collector was started with ``--dashboard-transcripts``; without it a
one-call page shows ``[hidden]`` for every free text. Everything from a callback is escaped. The
page has no script and no external resource: charts are base64 PNG, the style sheet is inline,
and a Content-Security-Policy forbids anything else.

Caching
-------
A page (and its data) is computed once per selection and kept ``--dashboard-cache`` seconds
(default 30); one computation runs at a time, and a request that finds another computing the
page it wants waits for it: a refresh storm costs one computation. A page older than that (up to
ten times) is still answered at once while one computation in the background replaces it, so
that a page seen recently never keeps anyone waiting; the page says when it was computed.
Nothing here runs on the collector's write path, and pandas and matplotlib are imported on the
first dashboard request only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import importlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from flask import Flask, Response, jsonify, redirect, request

from .errors import StoreUnavailable, TavusAnalyticsError

log = logging.getLogger("tavus_analytics.collector")

__all__ = [
    "CHARTS",
    "CONTENT_CHARTS",
    "COOKIE",
    "PERIODS",
    "Dashboard",
    "View",
    "add_routes",
    "session_value",
    "valid_session",
]

#: The periods the dashboard offers, ending now (``all``: everything stored).
PERIODS: dict[str, timedelta | None] = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
    "all": None,
}
DEFAULT_PERIOD = "7d"

#: The report's charts the dashboard always shows: counts, rates and durations.
CHARTS = (
    "volume",
    "shutdown_reasons",
    "durations",
    "duration_by_replica",
    "funnel",
    "turns_per_conversation",
    "words_per_turn",
    "talk_ratio",
    "answer_delays",
    "answer_delay_trend",
    "objective_completion",
    "guardrail_triggers",
    "perception_coverage",
    "canvas_outcomes",
    "recording_failures",
    "replica_training",
    "video_generation",
)
#: Charts of what was said or seen: only with ``--dashboard-transcripts``.
CONTENT_CHARTS = ("perception_terms",)

#: The session cookie set after a request with the token.
COOKIE = "tavus_dashboard"
SESSION_S = 12 * 3600
#: The latest conversations listed under the charts.
RECENT = 15

_CACHE_SIZE = 32
_DPI = 100
_HIDDEN = "[hidden]"
_HEADERS = {
    # Nothing but this page's own inline style and data: images; no script at all.
    "Content-Security-Policy": (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


# -- the session cookie --------------------------------------------------------------------------
def _mac(secret_digest: bytes, expires: int) -> str:
    return hmac.new(
        secret_digest, f"tavus-dashboard:{expires}".encode(), hashlib.sha256
    ).hexdigest()


def session_value(secret_digest: bytes, expires: int) -> str:
    """The cookie's value: its expiry (Unix seconds) and an HMAC of it keyed by the token's
    SHA-256 digest. It cannot be turned back into the token."""
    return f"{expires}.{_mac(secret_digest, expires)}"


def valid_session(value: str | None, secret_digest: bytes, now: float) -> bool:
    """Whether ``value`` is a cookie :func:`session_value` made for this token, not expired."""
    if not value or "." not in value:
        return False
    expires, _, mac = value.partition(".")
    if not expires.isdigit() or int(expires) <= now:
        return False
    return hmac.compare_digest(mac, _mac(secret_digest, int(expires)))


# -- what a request asks for ---------------------------------------------------------------------
@dataclass(frozen=True)
class View:
    """A selection: a period ending now, or explicit dates, and a replica (or all)."""

    period: str = DEFAULT_PERIOD
    since: datetime | None = None
    until: datetime | None = None
    replica: str | None = None

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> View:
        """The view of a request's query arguments; ``ValueError`` saying what is wrong."""
        from .importer import parse_time

        period = (args.get("period") or DEFAULT_PERIOD).strip()
        if period not in PERIODS:
            raise ValueError(f"unknown period {period!r}: use one of {', '.join(PERIODS)}")
        since = parse_time(args.get("since") or None)
        until = parse_time(args.get("until") or None)
        if since and until and since >= until:
            raise ValueError("since must be before until")
        replica = (args.get("replica") or "").strip() or None
        return cls(period, since, until, replica)

    def bounds(self, now: datetime) -> tuple[datetime | None, datetime | None]:
        """``(since, until)``: the dates given, else the period ending at ``now``."""
        if self.since or self.until:
            return self.since, self.until
        span = PERIODS[self.period]
        return (None if span is None else now - span), None

    def query(self) -> dict[str, str]:
        """The query arguments that ask for this view (for links)."""
        args = {"period": self.period}
        if self.since:
            args["since"] = self.since.strftime("%Y-%m-%d")
        if self.until:
            args["until"] = self.until.strftime("%Y-%m-%d")
        if self.replica:
            args["replica"] = self.replica
        return args


@dataclass
class Result:
    """One computed selection: the page, its data, and when it was computed."""

    html: str
    data: dict[str, Any]
    computed_at: datetime
    links: bool = field(default=False)


# -- computing and caching -----------------------------------------------------------------------
class Dashboard:
    """The dashboard of one database, computed on demand and kept ``cache_s`` seconds.

    Parameters
    ----------
    db : str or Path
        The collector's database (a SQLite file or a PostgreSQL URL), read through
        :func:`tavus_analytics.load` (read-only).
    cache_s : int
        Seconds a computed selection is kept.
    transcripts : bool
        Whether what was said or seen may be shown.
    clock : callable, optional
        Monotonic seconds, for the cache (tests give a fake one).
    now : callable, optional
        ``() -> datetime`` (UTC): where the periods end.
    no_auth : bool
        Say on the page that the collector checks no token.

    Attributes
    ----------
    computations : int
        How many selections were computed (not served from the cache).
    """

    def __init__(
        self,
        db: Any,
        *,
        cache_s: float = 30,
        transcripts: bool = False,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] | None = None,
        no_auth: bool = False,
    ) -> None:
        self.db = db
        self.cache_s = cache_s
        self.transcripts = transcripts
        self.no_auth = no_auth
        self._clock = clock
        self._now = now or (lambda: datetime.now(UTC))
        self._cache: OrderedDict[View, tuple[float, Result]] = OrderedDict()
        self._refreshing: dict[View, threading.Thread] = {}
        self._cache_lock = threading.Lock()
        self._compute_lock = threading.Lock()
        self._root: tuple[float, Any] | None = None
        self.computations = 0

    def result(self, view: View) -> Result:
        """The page and data of ``view``.

        Fresh from the cache (computed less than ``cache_s`` seconds ago): as it is. Stale (up
        to ten times that): as it is, while one computation in the background replaces it, so
        that nobody waits for a page that was seen recently. Otherwise computed now, once even
        when many requests ask at the same moment.
        """
        entry = self._entry(view)
        if entry is not None:
            computed, result = entry
            age = self._clock() - computed
            if age < self.cache_s:
                return result
            if age < 10 * self.cache_s:
                self._refresh_later(view)
                return result
        with self._compute_lock:
            entry = self._entry(view)  # computed while this request waited for the lock
            if entry is not None and self._clock() - entry[0] < self.cache_s:
                return entry[1]
            return self._compute_and_keep(view)

    def _entry(self, view: View) -> tuple[float, Result] | None:
        with self._cache_lock:
            return self._cache.get(view)

    def _compute_and_keep(self, view: View) -> Result:
        """Compute ``view`` and keep it (call with the compute lock held)."""
        started = self._clock()
        result = self._compute(view)
        self.computations += 1
        with self._cache_lock:
            self._cache[view] = (started, result)
            self._cache.move_to_end(view)
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return result

    def _refresh_later(self, view: View) -> None:
        """Compute ``view`` again in a background thread, unless one already does."""
        with self._cache_lock:
            if view in self._refreshing:
                return
            thread = threading.Thread(
                target=self._refresh, args=(view,), name="tavus-dashboard", daemon=True
            )
            self._refreshing[view] = thread
        thread.start()

    def _refresh(self, view: View) -> None:
        try:
            with self._compute_lock:
                entry = self._entry(view)
                if entry is None or self._clock() - entry[0] >= self.cache_s:
                    self._compute_and_keep(view)
        except Exception as err:  # the stale page stays; the next request tries again
            log.error("dashboard: could not refresh a page: %s", err)
        finally:
            with self._cache_lock:
                self._refreshing.pop(view, None)

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the background refreshes running now (for tests and shutdown)."""
        with self._cache_lock:
            threads = list(self._refreshing.values())
        for thread in threads:
            thread.join(timeout)

    def _dataset(self) -> Any:
        """The whole database as a fresh :class:`~tavus_analytics.dataset.Dataset`, reused
        for ``cache_s`` seconds (call with the compute lock held)."""
        from .dataset import load

        if self._root is not None and self._clock() - self._root[0] < self.cache_s:
            return self._root[1]
        started = self._clock()
        root = load(self.db)
        self._root = (started, root)
        return root

    def _compute(self, view: View) -> Result:
        from . import report, stats
        from .charts import CHARTS as DRAW

        now = self._now().astimezone(UTC)
        root = self._dataset()
        since, until = view.bounds(now)
        replicas = [view.replica] if view.replica else None
        ds = root.filter(since=since, until=until, replicas=replicas)
        known = sorted({str(r) for r in root.conversations["replica_id"].dropna()})
        allowed = set(CHARTS) | (set(CONTENT_CHARTS) if self.transcripts else set())
        sections = []
        for heading, lead, names in report.SECTIONS:
            images = []
            for name in names:
                if name not in allowed or name not in DRAW:
                    continue
                fig = DRAW[name](ds)
                alt = fig.axes[0].get_title(loc="left") if fig.axes else name
                images.append((name, alt, base64.b64encode(report.png(fig, _DPI)).decode()))
                fig.clear()
            if images:
                sections.append((heading, lead, images))
        asked, found = report.selection(ds)
        links = self.has_call_pages()
        figures = stats.summary(ds)
        data = {
            "ok": True,
            "generated_at": _iso(now),
            "database": root.name,
            "selection": {
                "period": None if (view.since or view.until) else view.period,
                "since": _iso(since),
                "until": _iso(until),
                "replica": view.replica,
            },
            "figures": figures,
            "replicas": known,
        }
        page = _page(
            view=view,
            name=root.name,
            asked=asked,
            found=found,
            rows=report.key_figures(ds),
            sections=sections,
            recent=_recent(ds.conversations),
            latest=None if len(ds.conversations) else _latest(root.conversations, view.replica),
            replicas=known,
            computed_at=now,
            cache_s=self.cache_s,
            links=links,
            transcripts=self.transcripts,
            no_auth=self.no_auth,
        )
        return Result(page, data, now, links)

    @staticmethod
    def has_call_pages() -> bool:
        """Whether this version has one-call pages (``Dataset.conversation``) to link to."""
        from .dataset import Dataset

        return callable(getattr(Dataset, "conversation", None))

    def call_page(self, conversation_id: str) -> str | None:
        """One call's page inside the dashboard's frame, or None where this version has no
        one-call page. Free texts show as ``[hidden]`` unless ``transcripts``."""
        if not self.has_call_pages():
            return None
        with self._compute_lock:
            ds = self._dataset()
            redact = None if self.transcripts else _hide
            page = ds.conversation(conversation_id, redact=redact)
            renderer = importlib.import_module(".conversation", __package__)
            body = renderer.render_html(page, redact=redact, video=False)
        note = (
            ""
            if self.transcripts
            else '<p class="note">What was said or seen shows as [hidden]: start the collector '
            "with <code>--dashboard-transcripts</code> to show it.</p>"
        )
        return _shell(
            f"Conversation {conversation_id}",
            '<p class="back"><a href="/dashboard">&larr; Dashboard</a></p>' + note + body,
        )


def _hide(text: str) -> str:
    return _HIDDEN


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _recent(conversations: Any) -> list[dict[str, Any]]:
    """The latest conversations, newest first, without anything said."""
    import pandas as pd

    from .stats import duration_text

    if conversations.empty:
        return []
    when = conversations["joined_at"].fillna(conversations["first_seen"])
    order = when.sort_values(ascending=False, na_position="last").index[:RECENT]
    rows = []
    for i in order:
        c = conversations.loc[i]

        def value(column: str, row: Any = c) -> Any:
            v = row.get(column)
            return None if v is None or pd.isna(v) else v

        turns = None
        if value("user_turns") is not None or value("assistant_turns") is not None:
            turns = int(value("user_turns") or 0) + int(value("assistant_turns") or 0)
        delay = value("answer_delay_p90_s")
        rows.append(
            {
                "conversation_id": str(c["conversation_id"]),
                "replica_id": value("replica_id"),
                "started": f"{pd.Timestamp(when[i]):%Y-%m-%d %H:%M}" if pd.notna(when[i]) else "-",
                "duration": duration_text(value("duration_s")),
                "outcome": str(value("outcome") or value("status") or "-").replace("_", " "),
                "ended_by": value("shutdown_category"),
                "turns": turns,
                "delay_p90": "-" if delay is None else f"{delay:.1f} s",
                "objectives": value("objectives_completed"),
                "guardrails": value("guardrail_triggers"),
            }
        )
    return rows


# -- HTML ---------------------------------------------------------------------------------------
_CSS = """
* { box-sizing: border-box; }
body { margin: 0; background: #f6f6f4; color: #1d1d1d;
  font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 22px 24px 40px; }
header { border-bottom: 3px solid #0072B2; padding-bottom: 10px; margin-bottom: 14px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 26px 0 4px; border-bottom: 1px solid #d8d8d8; padding-bottom: 3px; }
.meta, .lead, .note { color: #4d4d4d; margin: 0 0 4px; }
.warn { color: #a00; font-weight: 600; }
code { background: #ebebe8; padding: 1px 5px; border-radius: 3px; font-size: 13px; }
form { display: flex; flex-wrap: wrap; gap: 10px 16px; align-items: end; background: #fff;
  padding: 10px 14px; margin: 10px 0 16px; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
form label { font-size: 13px; color: #4d4d4d; display: flex; flex-direction: column; gap: 2px; }
form select, form input { font: inherit; padding: 3px 6px; }
form button { font: inherit; padding: 4px 16px; background: #0072B2; color: #fff; border: 0;
  border-radius: 3px; }
table { border-collapse: collapse; background: #fff; width: 100%;
  box-shadow: 0 1px 2px rgba(0,0,0,.08); }
th, td { text-align: left; padding: 5px 10px; border-bottom: 1px solid #ececec;
  vertical-align: top; }
table.figures th { width: 22%; font-weight: 600; }
td.num { font-variant-numeric: tabular-nums; }
table.recent td, table.recent th { font-size: 14px; white-space: nowrap; }
nav { margin: 12px 0 0; font-size: 14px; }
nav a, a { color: #0072B2; text-decoration: none; }
nav a { margin-right: 12px; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr));
  gap: 14px; }
figure { margin: 10px 0 0; background: #fff; padding: 8px;
  box-shadow: 0 1px 2px rgba(0,0,0,.08); }
figure img { display: block; width: 100%; height: auto; }
footer { margin-top: 30px; color: #6b6b6b; font-size: 13px; }
"""


def _shell(title: str, body: str) -> str:
    e = html.escape
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body><main>{body}</main>"
        "</body></html>\n"
    )


def _anchor(heading: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in heading.lower()).strip("-")


def _form(view: View, replicas: list[str]) -> str:
    e = html.escape
    labels = {"24h": "last 24 hours", "7d": "last 7 days", "30d": "last 30 days"}
    labels |= {"90d": "last 90 days", "all": "everything stored"}
    periods = "".join(
        f'<option value="{p}"{" selected" if p == view.period else ""}>{labels[p]}</option>'
        for p in PERIODS
    )
    known = list(replicas)
    if view.replica and view.replica not in known:
        known.insert(0, view.replica)
    reps = '<option value="">all replicas</option>' + "".join(
        f'<option value="{e(r)}"{" selected" if r == view.replica else ""}>{e(r)}</option>'
        for r in known
    )
    since = view.since.strftime("%Y-%m-%d") if view.since else ""
    until = view.until.strftime("%Y-%m-%d") if view.until else ""
    return (
        '<form method="get" action="/dashboard">'
        f'<label>Period<select name="period">{periods}</select></label>'
        f'<label>or from<input type="date" name="since" value="{since}"></label>'
        f'<label>before<input type="date" name="until" value="{until}"></label>'
        f'<label>Replica<select name="replica">{reps}</select></label>'
        "<button>Show</button></form>"
    )


def _latest(conversations: Any, replica: str | None) -> datetime | None:
    """When the latest conversation stored (of ``replica``, if given) started, or None."""
    if replica is not None:
        conversations = conversations[conversations["replica_id"] == replica]
    when = conversations["joined_at"].fillna(conversations["first_seen"]).dropna()
    return None if when.empty else when.max().to_pydatetime()


def _older_only(view: View, latest: datetime) -> str:
    """What to say when a selection is empty but older conversations are stored: when the
    latest started, with links to the week up to it and to everything stored."""
    e = html.escape
    midnight = latest.replace(hour=0, minute=0, second=0, microsecond=0)
    week = View(
        since=midnight - timedelta(days=6),
        until=midnight + timedelta(days=1),
        replica=view.replica,
    )
    everything = View(period="all", replica=view.replica)
    return (
        "No conversation in this selection. The latest one stored started "
        f"{latest:%Y-%m-%d %H:%M} UTC: show "
        f'<a href="/dashboard?{e(urlencode(week.query()))}">the 7 days up to it</a> or '
        f'<a href="/dashboard?{e(urlencode(everything.query()))}">everything stored</a>.'
    )


def _page(
    *,
    view: View,
    name: str,
    asked: str,
    found: str,
    rows: list[tuple[str, str]],
    sections: list[tuple[str, str, list[tuple[str, str, str]]]],
    recent: list[dict[str, Any]],
    latest: datetime | None = None,
    replicas: list[str],
    computed_at: datetime,
    cache_s: float,
    links: bool,
    transcripts: bool,
    no_auth: bool,
) -> str:
    e = html.escape
    parts = [
        "<header><h1>Tavus conversations, live</h1>",
        f'<p class="meta">Database <code>{e(name)}</code>. Selection: {e(asked)}. '
        f"Conversations found: {e(found)}.</p>",
        f'<p class="meta">Computed {computed_at:%Y-%m-%d %H:%M:%S} UTC from the live database; '
        f"kept {cache_s:g} s.</p>",
    ]
    if latest is not None:  # older data only (a demo database, a quiet collector)
        parts.append(f'<p class="note">{_older_only(view, latest)}</p>')
    if no_auth:
        parts.append(
            '<p class="warn">Token checking is off (--no-auth): anyone who can reach this '
            "collector can read this page.</p>"
        )
    parts.append("</header>")
    parts.append(_form(view, replicas))
    parts.append('<section id="key-figures"><h2>Key figures</h2><table class="figures">')
    parts += [f'<tr><th>{e(k)}</th><td class="num">{e(v)}</td></tr>' for k, v in rows]
    parts.append("</table>")
    nav = [(h, _anchor(h)) for h, _, _ in sections] + [("Latest conversations", "latest")]
    parts.append("<nav>" + "".join(f'<a href="#{a}">{e(h)}</a>' for h, a in nav) + "</nav>")
    parts.append("</section>")
    for heading, lead, images in sections:
        parts.append(f'<section id="{_anchor(heading)}"><h2>{e(heading)}</h2>')
        parts.append(f'<p class="lead">{e(lead)}</p><div class="charts">')
        for chart, alt, data in images:
            parts.append(
                f'<figure data-chart="{chart}"><img alt="{e(alt)}" '
                f'src="data:image/png;base64,{data}"></figure>'
            )
        parts.append("</div></section>")
    parts.append('<section id="latest"><h2>Latest conversations</h2>')
    if recent:
        parts.append(
            '<p class="lead">The latest calls of the selection, newest first'
            + (": each links to its page." if links else ".")
            + '</p><table class="recent"><tr><th>conversation</th><th>replica</th>'
            "<th>started (UTC)</th><th>duration</th><th>outcome</th><th>ended by</th>"
            "<th>turns</th><th>answer delay p90</th><th>objectives</th><th>guardrails</th></tr>"
        )
        for r in recent:
            cid = e(r["conversation_id"])
            if links:
                href = "/dashboard/conversations/" + quote(r["conversation_id"], safe="")
                cid = f'<a href="{href}">{cid}</a>'
            cells = [
                cid,
                e(str(r["replica_id"] or "-")),
                e(r["started"]),
                e(r["duration"]),
                e(str(r["outcome"])),
                e(str(r["ended_by"] or "-")),
                "-" if r["turns"] is None else f"{r['turns']:,}",
                e(r["delay_p90"]),
                "-" if r["objectives"] is None else str(int(r["objectives"])),
                "-" if r["guardrails"] is None else str(int(r["guardrails"])),
            ]
            parts.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        parts.append("</table>")
    elif latest is not None:
        parts.append(f'<p class="lead">{_older_only(view, latest)}</p>')
    else:
        parts.append(
            '<p class="lead">No conversation in this selection: choose a longer period.</p>'
        )
    parts.append("</section>")
    parts.append(
        "<footer>Figures from the tables and metrics of tavus_analytics (ta.load), as in "
        "<code>tavus-analytics report</code>; times are UTC. "
        + (
            "What was said or seen may be shown (<code>--dashboard-transcripts</code>)."
            if transcripts
            else "What was said or seen is not shown (start the collector with "
            "<code>--dashboard-transcripts</code> to show it)."
        )
        + " Objective completions and guardrail triggers missed while the collector was "
        "stopped cannot be fetched later.</footer>"
    )
    return _shell("Tavus conversations, live", "".join(parts))


def _unauthorized_page() -> str:
    return _shell(
        "tavus-analytics dashboard",
        "<h1>tavus-analytics dashboard</h1><p>This dashboard needs the collector's token. "
        "Open it once as <code>/dashboard?token=SECRET</code>, the address "
        "<code>tavus-analytics serve</code> prints: the browser then keeps a session cookie "
        "for 12 hours, and the token leaves the address bar.</p>",
    )


# -- routes ---------------------------------------------------------------------------------------
def add_routes(app: Flask, settings: Any, secret_digest: bytes | None) -> Dashboard:
    """Add the dashboard's routes to the collector's ``app``; return its :class:`Dashboard`.

    ``secret_digest`` is the SHA-256 digest of the collector's token (None with ``no_auth``).
    """
    board = Dashboard(
        settings.db,
        cache_s=settings.dashboard_cache,
        transcripts=settings.dashboard_transcripts,
        no_auth=secret_digest is None,
    )
    app.extensions["tavus_dashboard"] = board

    def same(token: str) -> bool:
        given = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        return hmac.compare_digest(given, secret_digest)

    def headers(resp: Response) -> Response:
        resp.headers.update(_HEADERS)
        return resp

    def denied(as_json: bool) -> Response:
        if as_json:
            resp = jsonify(
                {
                    "ok": False,
                    "status": 401,
                    "error": "missing or wrong token: pass ?token=SECRET or X-Webhook-Token",
                }
            )
        else:
            resp = Response(_unauthorized_page(), mimetype="text/html")
        resp.status_code = 401
        return headers(resp)

    def gate(*, as_json: bool = False) -> Response | None:
        """None when the request may see the dashboard; else what to answer instead."""
        if secret_digest is None:
            return None
        token = request.args.get("token")
        if token is not None:
            if not same(token):
                return denied(as_json)
            if as_json:
                return None
            # Once in the URL: a session cookie, and the same page again without the token.
            rest = [(k, v) for k, v in request.args.items(multi=True) if k != "token"]
            resp = redirect(request.path + ("?" + urlencode(rest) if rest else ""), 303)
            expires = int(time.time()) + SESSION_S
            resp.set_cookie(
                COOKIE,
                session_value(secret_digest, expires),
                max_age=SESSION_S,
                path="/dashboard",
                httponly=True,
                samesite="Strict",
                secure=request.is_secure
                or request.headers.get("X-Forwarded-Proto", "").lower() == "https",
            )
            return headers(resp)
        header = request.headers.get("X-Webhook-Token")
        if header is not None:
            return None if same(header) else denied(as_json)
        if valid_session(request.cookies.get(COOKIE), secret_digest, time.time()):
            return None
        return denied(as_json)

    def html_answer(text: str, status: int = 200) -> Response:
        return headers(Response(text, status=status, mimetype="text/html"))

    def view_or_400(as_json: bool) -> View | Response:
        try:
            return View.from_args(request.args)
        except ValueError as err:
            if as_json:
                resp = jsonify({"ok": False, "status": 400, "error": str(err)})
                resp.status_code = 400
                return headers(resp)
            return html_answer(_shell("Bad request", f"<p>{html.escape(str(err))}</p>"), 400)

    def unavailable(as_json: bool, err: Exception) -> Response:
        log.error("dashboard: %s", err)
        message = "The database cannot be read right now: try again in a moment."
        if as_json:
            resp = jsonify({"ok": False, "status": 503, "error": message})
            resp.status_code = 503
            return headers(resp)
        return html_answer(_shell("Unavailable", f"<p>{message}</p>"), 503)

    @app.get("/dashboard")
    def dashboard_page():
        refused = gate()
        if refused is not None:
            return refused
        view = view_or_400(False)
        if isinstance(view, Response):
            return view
        try:
            return html_answer(board.result(view).html)
        except TavusAnalyticsError as err:  # a database that cannot be read now
            return unavailable(False, err)

    @app.get("/dashboard/data.json")
    def dashboard_data():
        refused = gate(as_json=True)
        if refused is not None:
            return refused
        view = view_or_400(True)
        if isinstance(view, Response):
            return view
        try:
            return headers(jsonify(board.result(view).data))
        except TavusAnalyticsError as err:
            return unavailable(True, err)

    @app.get("/dashboard/conversations/<path:conversation_id>")
    def dashboard_conversation(conversation_id: str):
        refused = gate()
        if refused is not None:
            return refused
        try:
            page = board.call_page(conversation_id)
        except StoreUnavailable as err:
            return unavailable(False, err)
        except TavusAnalyticsError as err:  # no such conversation
            return html_answer(_shell("Not found", f"<p>{html.escape(str(err))}</p>"), 404)
        if page is None:
            return html_answer(
                _shell("Not found", "<p>This version of tavus-analytics has no one-call page.</p>"),
                404,
            )
        return html_answer(page)

    return board
