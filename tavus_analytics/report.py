"""A shareable report: one self-contained HTML file with the key figures and every chart.

:func:`build` renders a :class:`~tavus_analytics.dataset.Dataset` as HTML text (ending with the
calls to look at, each with its page folded in); :func:`write`
loads a database and writes the file; :func:`write_charts` writes every chart of
:data:`tavus_analytics.charts.CHARTS` as a PNG file. The HTML has no external resource at all
(charts are embedded as base64 PNG, the style sheet is inline, no script, no web font), so it
opens in any browser with no server and no network, and can be sent by mail as it is.
"""

from __future__ import annotations

import base64
import html
import io
import itertools
import os
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from .dataset import Dataset, load
from .errors import MissingExtra, NotEnoughText, TavusAnalyticsError
from .progress import progress as progress_bar
from .stats import duration_text, summary
from .store import describe

__all__ = [
    "CONTENT_SECTION",
    "LOOK_AT",
    "SECTIONS",
    "build",
    "key_figures",
    "png",
    "selection",
    "write",
    "write_charts",
]

#: The heading of the section that lists calls to read and embeds their pages.
LOOK_AT = "Calls to look at"

#: The report's sections: heading, a sentence of explanation, and the charts in it (by name).
SECTIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "Volume and outcomes",
        "How many conversations started, and why they ended.",
        ("volume", "shutdown_reasons"),
    ),
    (
        "Durations",
        "From the replica joining to the shutdown, for calls where both callbacks arrived.",
        ("durations", "duration_by_replica"),
    ),
    (
        "Coverage",
        "What arrived after each joined call: shutdown, transcript, recording, perception.",
        ("funnel",),
    ),
    (
        "Transcripts",
        "Turns and words of the user and of the assistant (system messages left out).",
        ("turns_per_conversation", "words_per_turn", "talk_ratio"),
    ),
    (
        "Answer delay",
        "How long callers waited for the replica's answer: from the end of the caller's turn "
        "to the start of the answer, in transcripts that time their turns.",
        ("answer_delays", "answer_delay_trend"),
    ),
    (
        "Objectives and guardrails",
        "Objectives Tavus's evaluator judged completed, and guardrails triggered. Both are "
        "sent once, to their own callback URL, and cannot be fetched later: what a stopped "
        "collector missed is not here.",
        ("objective_completion", "guardrail_triggers"),
    ),
    (
        "Perception",
        "The visual analyses Tavus sends after a call when a perception model is on.",
        ("perception_coverage", "perception_terms"),
    ),
    (
        "Canvas and recordings",
        "What callers did with on-screen cards, and recordings Tavus could not copy into the "
        "bucket.",
        ("canvas_outcomes", "recording_failures"),
    ),
    (
        "Replicas and videos",
        "Replica training callbacks and video generation callbacks.",
        ("replica_training", "video_generation"),
    ),
    (
        LOOK_AT,
        "Calls worth reading, each with its page (folded: click to open).",
        (),  # the success rate charts, when criteria are given, are drawn for this section
    ),
)

#: The section made from the users' words (content analysis, the ``nlp`` extra): heading, lead
#: and its charts (:data:`tavus_analytics.charts.CONTENT_CHARTS`). Its charts are drawn when the
#: extra is installed and the selection has transcripts; otherwise the section says why.
CONTENT_SECTION: tuple[str, str, tuple[str, ...]] = (
    "What callers say",
    "From the users' words: how calls felt (VADER sentiment of the calls in English), what they "
    "are about (topics of their words) and what callers ask most (similar questions grouped).",
    ("sentiment_distribution", "sentiment_trend", "topic_shares", "top_questions"),
)

#: Topics in the report's "What callers say" section.
REPORT_TOPICS = 8

_DPI = 120  # PNG resolution: sharp at 100 % zoom, small enough to mail

_CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f6f6f4; color: #1d1d1d;
  font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 32px 28px 48px; }
header { border-bottom: 3px solid #0072B2; padding-bottom: 14px; margin-bottom: 22px; }
h1 { font-size: 28px; margin: 0 0 6px; }
h2 { font-size: 21px; margin: 34px 0 4px; border-bottom: 1px solid #d8d8d8; padding-bottom: 4px; }
.meta { color: #4d4d4d; margin: 0; }
.meta code { background: #ebebe8; padding: 1px 5px; border-radius: 3px; font-size: 13px; }
.lead { color: #4d4d4d; margin: 4px 0 12px; }
table.figures { border-collapse: collapse; background: #fff; width: 100%;
  box-shadow: 0 1px 2px rgba(0,0,0,.08); }
table.figures th, table.figures td { text-align: left; padding: 7px 12px;
  border-bottom: 1px solid #ececec; vertical-align: top; }
table.figures th { width: 24%; font-weight: 600; color: #333; }
table.figures td.num { font-variant-numeric: tabular-nums; }
nav { margin: 18px 0 0; font-size: 14px; }
nav a { color: #0072B2; margin-right: 14px; text-decoration: none; }
figure { margin: 16px 0 22px; background: #fff; padding: 10px;
  box-shadow: 0 1px 2px rgba(0,0,0,.08); }
figure img { display: block; width: 100%; max-width: 1080px; height: auto; margin: 0 auto; }
footer { margin-top: 40px; color: #6b6b6b; font-size: 13px; }
table.look-at { border-collapse: collapse; background: #fff; width: 100%; font-size: 14px;
  box-shadow: 0 1px 2px rgba(0,0,0,.08); }
table.look-at th, table.look-at td { text-align: left; padding: 5px 10px;
  border-bottom: 1px solid #ececec; vertical-align: top; }
table.look-at th { font-weight: 600; color: #333; white-space: nowrap; }
table.look-at td.none { color: #8a8a8a; }
details.call { background: #fff; margin: 8px 0; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
details.call > summary { cursor: pointer; padding: 8px 12px; font-size: 14px; }
details.call > summary code { background: #ebebe8; padding: 1px 5px; border-radius: 3px; }
details.call .tac { max-width: none; }
@media print { body { background: #fff; } figure, table.figures { box-shadow: none; }
  figure { break-inside: avoid; } }
"""


def _chart_functions() -> dict[str, Any]:
    from .charts import CHARTS

    return CHARTS


def _png(fig: Any, dpi: int = _DPI) -> bytes:
    buf = io.BytesIO()
    # No metadata: the PNG carries no software name or URL, and is the same on every run.
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def _render(
    ds: Dataset, names: Iterable[str], bar: Any, functions: dict[str, Any] | None = None
) -> Iterator[tuple[str, Any]]:
    """Each chart of ``names`` drawn on ``ds``, then closed after use by the caller."""
    functions = _chart_functions() if functions is None else functions
    for name in names:
        bar.set_postfix_str(name, refresh=False)
        fig = functions[name](ds)
        yield name, fig
        bar.update(1)


def _when(value: Any) -> str:
    return "-" if value is None or pd.isna(value) else f"{pd.Timestamp(value):%Y-%m-%d %H:%M} UTC"


def _period(ds: Dataset) -> tuple[str, str]:
    """The filter asked for, and the span of the conversations found, in words."""
    f = ds.filters
    asked = []
    if f["since"] is not None:
        asked.append(f"from {_when(f['since'])}")
    if f["until"] is not None:
        asked.append(f"before {_when(f['until'])}")
    if f["replicas"] is not None:
        asked.append("replica" + ("s " if len(f["replicas"]) != 1 else " "))
        asked[-1] += ", ".join(sorted(f["replicas"]))
    conv = ds.conversations
    when = conv["joined_at"].fillna(conv["first_seen"])
    found = (
        f"{_when(when.min())} to {_when(when.max())}" if len(when.dropna()) else "no conversations"
    )
    return ("; ".join(asked) or "everything stored"), found


def _last(iso: str | None) -> str:
    return "never" if iso is None else iso[:19].replace("T", " ") + " UTC"


def _figures(ds: Dataset) -> list[tuple[str, str]]:
    """The key figures of :func:`tavus_analytics.stats.summary`, as (label, value) rows."""
    f = summary(ds)
    o = f["outcomes"]

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{x:.1%}"

    ended = f["ended"]
    reasons = ", ".join(
        f"{r['category']} {r['share']:.0%} ({r['count']:,})" for r in f["shutdown_reasons"]
    )
    turns = "-"
    if f["transcripts"]:
        turns = (
            f"{f['user_turns'] + f['assistant_turns']:,} in {f['transcripts']:,} transcripts "
            f"(median {f['turns_median']:g} per call)"
        )
    return [
        ("Conversations", f"{f['conversations']:,}"),
        ("Ended / in progress", f"{ended:,} / {f['in_progress']:,}"),
        ("Completion rate", f"{pct(f['completion_rate'])} of ended calls"),
        (
            "Outcomes",
            f"{o['completed']:,} completed, {o['no_show']:,} no-show, {o['failed']:,} failed, "
            f"{o['unknown']:,} unknown",
        ),
        (
            "Duration",
            f"median {duration_text(f['duration_median_s'])}, "
            f"p90 {duration_text(f['duration_p90_s'])}",
        ),
        ("Top shutdown categories", reasons or "-"),
        ("Turns", turns),
        ("Perception coverage", f"{pct(f['perception_coverage'])} ({f['perception']:,} calls)"),
        ("Recordings", f"{f['recordings']:,}"),
        ("Replicas", f"{f['replicas']:,}"),
        ("Callbacks", f"{f['callbacks']:,}"),
        ("Last callback", _last(f["last_received_at"])),
    ]


def _image(fig: Any, name: str) -> tuple[str, str]:
    """(alt text, base64 PNG) of a chart, which is then cleared."""
    alt = fig.axes[0].get_title(loc="left") if fig.axes else name
    data = base64.b64encode(_png(fig)).decode("ascii")
    fig.clear()
    return alt, data


def _look_at(ds: Dataset, n: int, criteria: Any, redact: Any) -> str:
    """The body of "Calls to look at": the success criteria's figures and charts when given,
    the calls per reason, then each call's page, folded. Nothing in it refers outside the file:
    the pages have no style of their own (the report's has theirs) and no video."""
    from . import evaluate as evaluation
    from .conversation import CSS
    from .metrics import LOOK_AT_REASONS, calls_to_look_at

    e = html.escape
    parts = [f"<style>{CSS}</style>"]
    judged = None
    if criteria is not None:
        crit = evaluation.parse(criteria)
        judged = ds.evaluate(crit)
        total = evaluation.success_rate(judged).iloc[0]
        decided = int(total["success"] + total["failure"])
        rate = "-" if decided == 0 else f"{total['success_rate']:.1%}"
        parts.append(
            f'<p class="meta">Success criteria <code>{e(crit.describe())}</code>: {e(rate)} of '
            f"{decided:,} decided calls met them; {int(total['unknown']):,} of "
            f"{int(total['calls']):,} unknown (a rule's data missing), left out.</p>"
        )
        from .charts import success_rate

        for by in ("week", "replica"):
            alt, data = _image(success_rate(judged, by=by, name=crit.name), f"success_{by}")
            parts.append(
                f'<figure id="chart-success-rate-{by}" data-chart="success_rate">'
                f'<img alt="{e(alt)}" src="data:image/png;base64,{data}"></figure>'
            )
    if n <= 0:
        parts.append('<p class="lead">Left out (--look-at 0).</p>')
        return "\n".join(parts)
    table = calls_to_look_at(ds.conversations, ds.objectives, evaluation=judged, n=n)
    ids = list(dict.fromkeys(table["conversation_id"]))  # each call once, first listed first
    anchors = {cid: f"call-{i + 1}" for i, cid in enumerate(ids)}
    reasons = [r for r in LOOK_AT_REASONS if judged is not None or r != "criteria failed"]
    rows = ["<tr><th>why</th><th>call</th><th>replica</th><th>when</th><th>detail</th></tr>"]
    for reason in reasons:
        mine = table[(table["reason"] == reason).to_numpy(dtype=bool)]
        if mine.empty:
            rows.append(f'<tr><th>{e(reason)}</th><td class="none" colspan="4">none</td></tr>')
            continue
        for i, r in enumerate(mine.itertuples(index=False)):
            head = f'<th rowspan="{len(mine)}">{e(reason)}</th>' if i == 0 else ""
            detail = r.detail if redact is None or reason != "failed" else redact(r.detail)
            rows.append(
                f'<tr>{head}<td><a href="#{anchors[r.conversation_id]}">'
                f"<code>{e(r.conversation_id)}</code></a></td><td>{e(_text(r.replica_id))}</td>"
                f"<td>{e(_when(r.joined_at))}</td><td>{e(_text(detail))}</td></tr>"
            )
    parts.append(f'<table class="look-at">{"".join(rows)}</table>')
    by_call = table.groupby("conversation_id", sort=False)
    why, when, replica = (
        by_call["reason"].agg(", ".join),
        by_call["joined_at"].first(),
        by_call["replica_id"].first(),
    )
    for cid in ids:
        page = ds.conversation(cid, redact=redact)
        facts = [why[cid], f"replica {_text(replica[cid])}", _when(when[cid])]
        summary = f"<code>{e(cid)}</code> " + e(" · ".join(facts))
        parts.append(
            f'<details class="call" id="{anchors[cid]}"><summary>{summary}</summary>'
            f"{page.to_html(style=False, video=False)}</details>"
        )
    return "\n".join(parts)


def _text(value: Any) -> str:
    return "-" if value is None or pd.isna(value) else str(value)


def _content_charts() -> dict[str, Any]:
    from .charts import CONTENT_CHARTS

    return CONTENT_CHARTS


def _content(ds: Dataset) -> tuple[str | None, list[tuple[str, str]]]:
    """The "What callers say" figures, or why there are none: (sentence or None, rows)."""
    if not ds.conversations["has_transcript"].fillna(False).astype(bool).any():
        return "No transcript in this selection: there is nothing to analyse.", []
    try:
        langs = ds.language_breakdown()
        calls = ds.sentiment()
        rates = ds.sentiment_rates("replica")
        questions = ds.questions().groups
        try:
            topics = ds.topics(k=REPORT_TOPICS).topics
        except NotEnoughText as e:
            topics = str(e)
    except MissingExtra as e:
        return f"Content analysis is not installed: {e}.", []
    rows = [
        (
            "Languages",
            ", ".join(
                f"{r.language} {_share(r.share)} ({r.calls:,})" for r in langs.head(4).itertuples()
            ),
        )
    ]
    labels = calls["label"].astype(object).value_counts()
    scored = int(labels.sum())
    if scored:
        feel = ", ".join(
            f"{_share(labels.get(n, 0) / scored)} {n}" for n in ("negative", "neutral", "positive")
        )
        rows.append(
            (
                "Sentiment",
                f"{feel} of {scored:,} calls scored (English); {len(calls) - scored:,} not scored",
            )
        )
        rated = rates[rates["scored"] >= 20]
        if len(rated) > 1:
            worst = rated.loc[rated["negative_rate"].idxmax()]
            rows.append(
                (
                    "Most negative replica",
                    f"{worst['replica_id']}: {_share(worst['negative_rate'])} of "
                    f"{int(worst['scored']):,} calls",
                )
            )
    else:
        rows.append(("Sentiment", "no call in English: not scored"))
    if isinstance(topics, str):
        rows.append(("Topics", topics))
    else:
        rows.append(
            (
                "Largest topics",
                "; ".join(f"{t.label} ({_share(t.share)})" for t in topics.head(3).itertuples()),
            )
        )
    if len(questions):
        rows.append(
            (
                "Most asked",
                "; ".join(
                    f"{q.example} ({_share(q.share)})" for q in questions.head(3).itertuples()
                ),
            )
        )
    return None, rows


def _share(x: float) -> str:
    return "-" if pd.isna(x) else f"{x:.0%}"


def build(
    ds: Dataset,
    *,
    title: str = "Tavus conversations report",
    progress: bool = False,
    generated_at: datetime | None = None,
    look_at: int = 5,
    criteria: Any = None,
    redact: bool = False,
    content: bool = True,
) -> str:
    """The report of a dataset as one self-contained HTML document.

    Parameters
    ----------
    ds : Dataset
        From :func:`tavus_analytics.load`, filtered as wanted.
    title : str
        The heading of the page.
    progress : bool
        Show a progress bar on standard error (on a terminal).
    generated_at : datetime, optional
        The generation time printed in the report; default now (UTC).
    look_at : int
        Calls per reason in "Calls to look at" (:meth:`Dataset.calls_to_look_at`), each with
        its page embedded (folded); 0 leaves them out.
    criteria : dict or path of a TOML file, optional
        Success criteria (:meth:`Dataset.evaluate`): their success rate per week and per
        replica is charted, and the calls that failed them are listed to look at.
    redact : bool
        Draw everything from :meth:`~tavus_analytics.dataset.Dataset.redacted` data: personal
        data (e-mail addresses, phone numbers, card numbers, IP addresses, URLs with
        credentials) becomes placeholders in every text the report shows, and the report says
        so.
    content : bool
        Add the "What callers say" section (:data:`CONTENT_SECTION`): content analysis of the
        users' words, cached after its first run (see :mod:`tavus_analytics.content`). Without
        the ``nlp`` extra, or without transcripts, the section says so instead.

    Returns
    -------
    str
        The HTML text: key figures in a table at the top, the period and the database it came
        from, the generation time, then every chart of :data:`SECTIONS` as a base64 PNG, the
        "What callers say" section, and the calls to look at with their pages.
    """
    names = [n for _, _, charts in SECTIONS for n in charts]
    missing = set(_chart_functions()) - set(names)
    if missing:  # a chart added to CHARTS must be given a section here
        raise RuntimeError(f"charts without a report section: {sorted(missing)}")
    generated = (generated_at or datetime.now(UTC)).astimezone(UTC)
    if redact:
        ds = ds.redacted()
    content_names = CONTENT_SECTION[2] if content else ()
    with progress_bar(
        "report", total=len(names) + len(content_names) + 2, unit="step", enabled=progress
    ) as bar:
        bar.set_postfix_str("tables", refresh=False)
        asked, found = _period(ds)
        rows = _figures(ds)
        bar.update(1)
        images: dict[str, tuple[str, str]] = {}
        for name, fig in _render(ds, names, bar):
            images[name] = _image(fig, name)
        bar.set_postfix_str("calls to look at", refresh=False)
        calls = _look_at(ds, look_at, criteria, None)  # a redacted ds redacts its pages
        bar.update(1)
        why, content_rows = None, []
        if content:
            bar.set_postfix_str("content analysis", refresh=False)
            why, content_rows = _content(ds)
            bar.update(1)
            drawn = content_names if why is None else ()
            for name, fig in _render(ds, drawn, bar, _content_charts()):
                images[name] = _image(fig, name)
    sections = [*SECTIONS, CONTENT_SECTION] if content else list(SECTIONS)
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}</title>",
        f"<style>{_CSS}</style></head><body><main>",
        "<header>",
        f"<h1>{e(title)}</h1>",
        f'<p class="meta">Database <code>{e(_where(ds.path))}</code></p>',
        f'<p class="meta">Selection: {e(asked)}. Conversations found: {e(found)}.</p>',
        f'<p class="meta">Generated {e(f"{generated:%Y-%m-%d %H:%M:%S} UTC")} by '
        "tavus-analytics.</p>",
        *([f'<p class="meta" id="redacted">{e(_REDACTED)}</p>'] if redact else []),
        "</header>",
        '<section id="key-figures"><h2>Key figures</h2>',
        '<table class="figures">',
        *(f'<tr><th>{e(k)}</th><td class="num">{e(v)}</td></tr>' for k, v in rows),
        "</table>",
        "<nav>" + "".join(f'<a href="#{_anchor(h)}">{e(h)}</a>' for h, _, _ in sections) + "</nav>",
        "</section>",
    ]
    for heading, lead, charts in SECTIONS:
        parts.append(f'<section id="{_anchor(heading)}"><h2>{e(heading)}</h2>')
        parts.append(f'<p class="lead">{e(lead)}</p>')
        if heading == LOOK_AT:
            parts.append(calls)
        for name in charts:
            alt, data = images[name]
            parts.append(
                f'<figure id="chart-{name}" data-chart="{name}">'
                f'<img alt="{e(alt)}" src="data:image/png;base64,{data}"></figure>'
            )
        parts.append("</section>")
    if content:
        heading, lead, charts = CONTENT_SECTION
        parts.append(f'<section id="{_anchor(heading)}"><h2>{e(heading)}</h2>')
        parts.append(f'<p class="lead">{e(lead)}</p>')
        if why is not None:
            parts.append(f'<p class="lead">{e(why)}</p>')
        else:
            parts.append('<table class="figures">')
            parts += [f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in content_rows]
            parts.append("</table>")
            for name in charts:
                alt, data = images[name]
                parts.append(
                    f'<figure id="chart-{name}" data-chart="{name}">'
                    f'<img alt="{e(alt)}" src="data:image/png;base64,{data}"></figure>'
                )
        parts.append("</section>")
    parts.append(
        "<footer>Numbers from the tables and metrics of tavus_analytics "
        "(ta.load, Dataset metrics); times are UTC.</footer>"
    )
    parts.append("</main></body></html>")
    return "\n".join(parts) + "\n"


_REDACTED = (
    "Personal data redacted: e-mail addresses, phone numbers, card numbers, IP addresses and "
    "URLs with credentials are shown as [EMAIL], [PHONE], [CARD], [IP] and "
    "[URL_WITH_CREDENTIALS]."
)


def _where(db: str | Path) -> str:
    """The database as the report names it: a file's absolute path, a URL without password."""
    return describe(db)


def _anchor(heading: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in heading.lower()).strip("-")


def _replace(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _open(db: str | Path | None, since: Any, until: Any, replicas: Any) -> Dataset:
    reps = list(replicas) if replicas else None
    return load(db, since=since, until=until, replicas=reps)


def write(
    db: str | Path | None,
    out: str | Path,
    *,
    since: Any = None,
    until: Any = None,
    replicas: Iterable[str] | None = None,
    progress: bool = False,
    look_at: int = 5,
    criteria: Any = None,
    redact: bool = False,
    content: bool = True,
) -> Path:
    """Load a database and write its report to ``out`` (replaced if it exists).

    Parameters
    ----------
    db : str or Path, optional
        The database (default ``TAVUS_ANALYTICS_DB``, then ``data/tavus.db``).
    out : str or Path
        The HTML file to write.
    since, until, replicas
        Filters (see :meth:`tavus_analytics.dataset.Dataset.filter`).
    progress : bool
        Show a progress bar on standard error (on a terminal).
    look_at, criteria
        Calls per reason to look at, and success criteria (see :func:`build`).
    content : bool
        Add the "What callers say" section (see :func:`build`).
    redact : bool
        Personal data as placeholders (see :func:`build`).

    Returns
    -------
    Path
        ``out``.
    """
    out = Path(out)
    if out.is_dir():
        raise TavusAnalyticsError(f"{out} is a folder: give a file name, e.g. --out report.html")
    if not out.parent.is_dir():
        raise TavusAnalyticsError(f"cannot write {out}: the folder {out.parent} does not exist")
    if criteria is not None:
        from .evaluate import parse

        criteria = parse(criteria)  # a bad file fails before the work starts
    ds = _open(db, since, until, replicas)
    text = build(
        ds, progress=progress, look_at=look_at, criteria=criteria, redact=redact, content=content
    )
    _replace(out, text.encode("utf-8"))
    return out


def write_charts(
    db: str | Path | None,
    out_dir: str | Path,
    *,
    since: Any = None,
    until: Any = None,
    replicas: Iterable[str] | None = None,
    dpi: int = _DPI,
    progress: bool = False,
    content: bool = True,
    redact: bool = False,
) -> list[Path]:
    """Write every chart as ``<name>.png`` into ``out_dir`` (made if needed); with ``redact``,
    drawn from :meth:`~tavus_analytics.dataset.Dataset.redacted` data.

    With ``content``, the charts of the report's "What callers say" section too
    (:data:`tavus_analytics.charts.CONTENT_CHARTS`), when the ``nlp`` extra is installed and
    there are transcripts.

    Returns
    -------
    list of Path
        The files written, in the order of :data:`tavus_analytics.charts.CHARTS`, then of
        ``CONTENT_CHARTS``.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise TavusAnalyticsError(f"{out_dir} is a file: --out takes a folder")
    ds = _open(db, since, until, replicas)
    if redact:
        ds = ds.redacted()
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    names = list(_chart_functions())
    extra = list(CONTENT_SECTION[2]) if content else []
    with progress_bar(
        "charts", total=len(names) + len(extra), unit="step", enabled=progress
    ) as bar:
        drawn = _render(ds, names, bar)
        if extra and _content(ds)[0] is None:
            drawn = itertools.chain(drawn, _render(ds, extra, bar, _content_charts()))
        for name, fig in drawn:
            path = out_dir / f"{name}.png"
            _replace(path, _png(fig, dpi))
            fig.clear()
            written.append(path)
    return written


# -- for other pages made of the report's parts (the collector's dashboard) ----------------------
def key_figures(ds: Dataset) -> list[tuple[str, str]]:
    """The report's key figures of ``ds`` as (label, value) rows of text."""
    return _figures(ds)


def selection(ds: Dataset) -> tuple[str, str]:
    """The filters of ``ds`` in words, and the span of the conversations found."""
    return _period(ds)


def png(fig: Any, dpi: int = _DPI) -> bytes:
    """A figure as PNG bytes, without metadata (the same bytes on every run)."""
    return _png(fig, dpi)
