"""A shareable report: one self-contained HTML file with the key figures and every chart.

:func:`build` renders a :class:`~tavus_analytics.dataset.Dataset` as HTML text; :func:`write`
loads a database and writes the file; :func:`write_charts` writes every chart of
:data:`tavus_analytics.charts.CHARTS` as a PNG file. The HTML has no external resource at all
(charts are embedded as base64 PNG, the style sheet is inline, no script, no web font), so it
opens in any browser with no server and no network, and can be sent by mail as it is.
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from .dataset import Dataset, load
from .errors import TavusAnalyticsError
from .stats import duration_text, summary
from .store import describe

__all__ = ["SECTIONS", "build", "key_figures", "png", "selection", "write", "write_charts"]

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
)

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


def _progress(enabled: bool, total: int, desc: str):
    from tqdm import tqdm

    # disable=None: a bar on a terminal only (standard error), as the other commands do.
    return tqdm(
        total=total, desc=desc, unit=" step", disable=None if enabled else True, leave=False
    )


def _render(ds: Dataset, names: Iterable[str], bar: Any) -> Iterator[tuple[str, Any]]:
    """Each chart of ``names`` drawn on ``ds``, then closed after use by the caller."""
    functions = _chart_functions()
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


def build(
    ds: Dataset,
    *,
    title: str = "Tavus conversations report",
    progress: bool = False,
    generated_at: datetime | None = None,
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

    Returns
    -------
    str
        The HTML text: key figures in a table at the top, the period and the database it came
        from, the generation time, then every chart of :data:`SECTIONS` as a base64 PNG.
    """
    names = [n for _, _, charts in SECTIONS for n in charts]
    missing = set(_chart_functions()) - set(names)
    if missing:  # a chart added to CHARTS must be given a section here
        raise RuntimeError(f"charts without a report section: {sorted(missing)}")
    generated = (generated_at or datetime.now(UTC)).astimezone(UTC)
    with _progress(progress, len(names) + 1, "report") as bar:
        bar.set_postfix_str("tables", refresh=False)
        asked, found = _period(ds)
        rows = _figures(ds)
        bar.update(1)
        images: dict[str, tuple[str, str]] = {}
        for name, fig in _render(ds, names, bar):
            alt = fig.axes[0].get_title(loc="left") if fig.axes else name
            images[name] = (alt, base64.b64encode(_png(fig)).decode("ascii"))
            fig.clear()
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
        "</header>",
        '<section id="key-figures"><h2>Key figures</h2>',
        '<table class="figures">',
        *(f'<tr><th>{e(k)}</th><td class="num">{e(v)}</td></tr>' for k, v in rows),
        "</table>",
        "<nav>" + "".join(f'<a href="#{_anchor(h)}">{e(h)}</a>' for h, _, _ in SECTIONS) + "</nav>",
        "</section>",
    ]
    for heading, lead, charts in SECTIONS:
        parts.append(f'<section id="{_anchor(heading)}"><h2>{e(heading)}</h2>')
        parts.append(f'<p class="lead">{e(lead)}</p>')
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
    ds = _open(db, since, until, replicas)
    text = build(ds, progress=progress)
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
) -> list[Path]:
    """Write every chart as ``<name>.png`` into ``out_dir`` (made if needed).

    Returns
    -------
    list of Path
        The files written, in the order of :data:`tavus_analytics.charts.CHARTS`.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise TavusAnalyticsError(f"{out_dir} is a file: --out takes a folder")
    ds = _open(db, since, until, replicas)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    names = list(_chart_functions())
    with _progress(progress, len(names), "charts") as bar:
        for name, fig in _render(ds, names, bar):
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
