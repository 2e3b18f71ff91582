"""Charts of Tavus conversation metrics: one function per chart, each returning a Figure.

Every function has the same shape (seaborn's): the data first, a
:class:`~tavus_analytics.dataset.Dataset` or the one table the chart needs, then keyword-only
options; ``ax`` draws on the given axes instead of a new figure. A chart draws all the data it is
given: to chart a period or some replicas, give it ``ds.filter(since=..., until=...,
replicas=...)`` (see :meth:`~tavus_analytics.dataset.Dataset.filter`), whose filters the chart
names when it has nothing to show. Each returns the :class:`matplotlib.figure.Figure` and never
calls ``plt.show()``: in a notebook the returned figure displays itself, in a script call
``fig.savefig("chart.png")``.

The numbers come from :mod:`tavus_analytics.metrics`; this module only draws them. Colours come
from one colour-blind-safe palette (Okabe and Ito's), with a fixed colour per shutdown category
(:data:`CATEGORY_COLORS`), per role (:data:`ROLE_COLORS`) and per status
(:data:`STATUS_COLORS`), the same in every chart. A chart with nothing to show says so ("no
conversations in this range") instead of failing or drawing blank axes.

:data:`CHARTS` lists every chart by name, in the order of the report. :data:`CONTENT_CHARTS` lists
the charts of what callers say (sentiment, topics, questions), which need the ``nlp`` extra and
draw the results of :mod:`tavus_analytics.content`; the report shows them in a section of their
own.

Examples
--------
>>> import tavus_analytics as ta
>>> ds = ta.load("data/tavus.db")  # doctest: +SKIP
>>> fig = ta.charts.volume(ds.filter(since="2025-07-01"), freq="W")  # doctest: +SKIP
>>> fig.savefig("volume.png")  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import textwrap
from collections.abc import Callable, Iterable
from typing import Any, Literal

import matplotlib
import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

from . import metrics
from .dataset import Dataset
from .events import SHUTDOWN_CATEGORIES, shutdown_category
from .stats import duration_text

__all__ = [
    "CATEGORY_COLORS",
    "CHARTS",
    "CONTENT_CHARTS",
    "SENTIMENT_COLORS",
    "TOPIC_COLORS",
    "sentiment_distribution",
    "sentiment_trend",
    "top_questions",
    "topic_shares",
    "answer_delay_trend",
    "answer_delays",
    "canvas_outcomes",
    "guardrail_triggers",
    "objective_completion",
    "recording_failures",
    "OKABE_ITO",
    "OUTCOME_COLORS",
    "ROLE_COLORS",
    "STATUS_COLORS",
    "duration_by_replica",
    "durations",
    "funnel",
    "perception_coverage",
    "perception_terms",
    "replica_training",
    "shutdown_reasons",
    "success_rate",
    "talk_ratio",
    "turns_per_conversation",
    "video_generation",
    "volume",
    "words_per_turn",
]

# -- the palette ----------------------------------------------------------------------------------
#: Okabe and Ito's colour-blind-safe palette (https://jfly.uni-koeln.de/color/).
OKABE_ITO = {
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
    "black": "#000000",
}
_GREY = "#999999"
_LIGHT_GREY = "#D9D9D9"
_TEXT_GREY = "#4D4D4D"

#: The colour of each shutdown category, in every chart.
CATEGORY_COLORS = {
    "max_duration": OKABE_ITO["blue"],
    "participant_left": OKABE_ITO["bluish_green"],
    "participant_absent": OKABE_ITO["orange"],
    "bot_could_not_join": OKABE_ITO["vermillion"],
    "room_deleted": OKABE_ITO["reddish_purple"],
    "startup_exception": OKABE_ITO["yellow"],
    "ended_by_api": OKABE_ITO["sky_blue"],
    "internal_error": OKABE_ITO["black"],
    "other": _GREY,
}
#: Conversations with a shutdown whose reason could not be read, and those not ended yet.
NO_REASON = "no readable reason"
NO_SHUTDOWN = "no shutdown yet"
_EXTRA_COLORS = {NO_REASON: "#6E6E6E", NO_SHUTDOWN: _LIGHT_GREY}
#: The colour of each transcript role.
ROLE_COLORS = {
    "user": OKABE_ITO["orange"],
    "assistant": OKABE_ITO["blue"],
    "system": _GREY,
    "tool": OKABE_ITO["reddish_purple"],
}
#: The colour of each outcome (the colour of its most common category).
OUTCOME_COLORS = {
    "completed": OKABE_ITO["bluish_green"],
    "no_show": OKABE_ITO["orange"],
    "failed": OKABE_ITO["vermillion"],
    "unknown": _GREY,
}
#: The colour of each video or replica training status.
STATUS_COLORS = {
    "ready": OKABE_ITO["bluish_green"],
    "error": OKABE_ITO["vermillion"],
    "deleted": _GREY,
    "queued": OKABE_ITO["sky_blue"],
    "generating": OKABE_ITO["blue"],
    "started": OKABE_ITO["sky_blue"],
}
#: Single-series charts (funnel, terms, replicas) use this colour.
_MAIN = OKABE_ITO["blue"]

_STYLE = {
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "font.size": 10,
    "axes.titlesize": 12.5,
    "axes.titleweight": "bold",
    "axes.labelsize": 10,
    "axes.labelcolor": "#222222",
    "axes.edgecolor": "#555555",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "#E5E5E5",
    "grid.linewidth": 0.8,
    "xtick.color": "#333333",
    "ytick.color": "#333333",
    "legend.frameon": False,
    "legend.fontsize": 9,
}
_SIZE = (9.0, 4.8)

Freq = Literal["auto", "D", "W"]


# -- plumbing --------------------------------------------------------------------------------------
def _styled(f: Callable[..., Figure]) -> Callable[..., Figure]:
    """Draw with the house style (without changing the caller's matplotlib settings)."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Figure:
        with matplotlib.rc_context(_STYLE):
            return f(*args, **kwargs)

    return wrapper


def _axes(ax: Axes | None, size: tuple[float, float] = _SIZE) -> Axes:
    """The given axes, or the axes of a new figure (not registered with pyplot)."""
    if ax is not None:
        return ax
    fig = Figure(figsize=size, layout="constrained")
    return fig.add_subplot()


def _dataset(data: Any) -> Dataset:
    if not isinstance(data, Dataset):
        raise TypeError(
            f"this chart needs a Dataset (from tavus_analytics.load), not {type(data).__name__}"
        )
    return data


def _table(data: Any, name: str) -> tuple[pd.DataFrame, str]:
    """The table ``name`` of a Dataset, or the DataFrame given; and the Dataset's filters in
    words (for the empty state)."""
    if isinstance(data, pd.DataFrame):
        return data, ""
    if not isinstance(data, Dataset):
        raise TypeError(
            f"this chart needs a Dataset (from tavus_analytics.load) or its {name} table, "
            f"not {type(data).__name__}"
        )
    return getattr(data, name), _scope(data)


def _scope(ds: Dataset) -> str:
    """The filters of a dataset in words, e.g. ``2025-07-01 to 2025-07-08, replica r1``."""
    f = ds.filters
    parts = []
    if f["since"] is not None or f["until"] is not None:
        since = f"{f['since']:%Y-%m-%d %H:%M}" if f["since"] is not None else "the start"
        until = f"{f['until']:%Y-%m-%d %H:%M}" if f["until"] is not None else "the end"
        parts.append(f"{since.removesuffix(' 00:00')} to {until.removesuffix(' 00:00')} (UTC)")
    if f["replicas"] is not None:
        reps = sorted(f["replicas"])
        shown = ", ".join(reps[:3]) + (f" and {len(reps) - 3} more" if len(reps) > 3 else "")
        parts.append(("replica " if len(reps) == 1 else "replicas ") + shown if reps else "")
    return ", ".join(p for p in parts if p)


def _titles(ax: Axes, title: str, subtitle: str = "") -> None:
    """A bold title on the left and, under it, a line of context in grey."""
    ax.set_title(title, loc="left", pad=22 if subtitle else 8)
    if subtitle:
        ax.annotate(
            subtitle,
            xy=(0, 1),
            xycoords="axes fraction",
            xytext=(0, 6),
            textcoords="offset points",
            ha="left",
            va="bottom",
            fontsize=9,
            color=_TEXT_GREY,
        )


def _empty(ax: Axes, title: str, message: str, scope: str = "") -> Figure:
    """The honest empty state: the title, and a sentence instead of blank axes."""
    _titles(ax, title)
    text = message + (f"\n({scope})" if scope else "")
    ax.text(
        0.5,
        0.5,
        text,
        transform=ax.transAxes,
        ha="center",
        va="center",
        fontsize=12,
        color=_TEXT_GREY,
    )
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(True)
        spine.set_color(_LIGHT_GREY)
    return ax.figure


def _naive_utc(times: pd.Series) -> np.ndarray:
    """tz-aware UTC times as naive datetime64 (matplotlib's date axis), still UTC."""
    return times.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")


def _date_axis(ax: Axes, axis: str = "x") -> None:
    locator = mdates.AutoDateLocator(minticks=4, maxticks=10)
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(locator)
    target.set_major_formatter(mdates.ConciseDateFormatter(locator, show_offset=True))


def _resolve_freq(freq: str, times: pd.Series) -> str:
    if freq in ("D", "day"):
        return "D"
    if freq in ("W", "week"):
        return "W"
    if freq != "auto":
        raise ValueError(f"freq must be 'auto', 'D' (day) or 'W' (week), not {freq!r}")
    times = times.dropna()
    if times.empty:
        return "D"
    return "D" if (times.max() - times.min()) <= pd.Timedelta(days=70) else "W"


def _pct(share: float) -> str:
    if pd.isna(share):
        return "-"
    if 0 < share < 0.001:
        return "<0.1%"
    return f"{share:.1%}" if share < 0.1 else f"{share:.0%}"


def _minutes(ax: Axes, axis: str = "x") -> None:
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


def _counts(ax: Axes, axis: str = "y") -> None:
    """An axis of counts: whole numbers, with thousands separators."""
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(MaxNLocator(integer=True))
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))


def _short(label: str, width: int = 42) -> str:
    return textwrap.shorten(str(label), width=width, placeholder="…")


def _bar_labels(ax: Axes, bars: Any, labels: Iterable[str]) -> None:
    """Labels just past the end of horizontal bars."""
    for bar, label in zip(bars, labels, strict=True):
        ax.annotate(
            label,
            xy=(bar.get_width(), bar.get_y() + bar.get_height() / 2),
            xytext=(4, 0),
            textcoords="offset points",
            ha="left",
            va="center",
            fontsize=9,
            color="#222222",
        )


# -- conversations ---------------------------------------------------------------------------------
@_styled
def volume(
    data: Dataset | pd.DataFrame,
    *,
    freq: Freq = "auto",
    ax: Axes | None = None,
) -> Figure:
    """Conversations per day or week, stacked by shutdown category.

    Numbers from :func:`tavus_analytics.metrics.volume` (every period, zeros included) and
    :func:`tavus_analytics.metrics.shutdown_breakdown` (``split`` by period); calls with no
    shutdown yet are stacked on top in light grey.

    Parameters
    ----------
    data : Dataset or DataFrame
        A Dataset, or its ``conversations`` table.
    freq : {"auto", "D", "W"}
        Days or Monday-starting weeks (UTC); ``auto``: days up to 70 days, else weeks.
    ax : matplotlib Axes, optional
        Draw here instead of on a new figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    conv, scope = _table(data, "conversations")
    ax = _axes(ax)
    freq_ = _resolve_freq(freq, conv["joined_at"].fillna(conv["first_seen"]))
    unit = "day" if freq_ == "D" else "week"
    title = f"Conversations per {unit}, by shutdown category"
    if conv.empty:
        return _empty(ax, title, "no conversations in this range", scope)
    vol = metrics.volume(conv, freq=freq_)
    breakdown = metrics.shutdown_breakdown(conv, by="category", split=unit)
    breakdown["shutdown_category"] = (
        breakdown["shutdown_category"].astype(object).where(lambda s: s.notna(), NO_REASON)
    )
    table = breakdown.pivot_table(
        index=unit, columns="shutdown_category", values="count", aggfunc="sum", fill_value=0
    )
    periods = vol["period"]
    table = table.reindex(pd.Index(periods), fill_value=0)
    stacks: dict[str, np.ndarray] = {}
    for name in [*SHUTDOWN_CATEGORIES, NO_REASON]:
        if name in table.columns and table[name].sum() > 0:
            stacks[name] = table[name].to_numpy(dtype=float)
    not_ended = (vol["conversations"] - vol["ended"]).to_numpy(dtype=float)
    if not_ended.sum() > 0:
        stacks[NO_SHUTDOWN] = not_ended
    x = _naive_utc(periods)
    width = 0.8 if freq_ == "D" else 5.6
    bottom = np.zeros(len(x))
    colors = {**CATEGORY_COLORS, **_EXTRA_COLORS}
    for name, heights in stacks.items():
        ax.bar(
            x,
            heights,
            width=width,
            bottom=bottom,
            label=name,
            color=colors[name],
            edgecolor="white",
            linewidth=0.4,
            align="edge" if freq_ == "W" else "center",
        )
        bottom += heights
    _counts(ax, "y")
    _date_axis(ax)
    ax.set_xlabel("day (UTC)" if freq_ == "D" else "week starting Monday (UTC)")
    ax.set_ylabel(f"conversations per {unit}")
    ax.grid(axis="x", visible=False)
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(
        handles[::-1],
        labels[::-1],
        title="shutdown category",
        loc="upper left",
        bbox_to_anchor=(1.01, 1),
        title_fontsize=9,
    )
    total = int(vol["conversations"].sum())
    ended = int(vol["ended"].sum())
    per = vol["conversations"]
    sub = (
        f"{total:,} conversations, {ended:,} ended; {per.mean():,.{1 if per.mean() < 100 else 0}f} "
        f"per {unit} on average, "
        f"busiest {per.max():,}"
    )
    _titles(ax, title, sub)
    return ax.figure


@_styled
def durations(
    data: Dataset | pd.DataFrame,
    *,
    kind: Literal["hist", "ecdf"] = "hist",
    max_call_duration: float = metrics.DEFAULT_MAX_CALL_DURATION_S,
    participant_absent_timeout: float = 300.0,
    ax: Axes | None = None,
) -> Figure:
    """How long calls last (join to shutdown), with the ``max_call_duration`` and
    ``participant_absent_timeout`` marks.

    The histogram stacks the shutdown categories (one-minute bins); ``kind="ecdf"`` draws the
    cumulative share instead. The subtitle's median, p90 and share that hit the limit are
    :func:`tavus_analytics.metrics.durations`.

    Parameters
    ----------
    data : Dataset or DataFrame
        A Dataset, or its ``conversations`` table.
    kind : {"hist", "ecdf"}
        Histogram stacked by shutdown category, or empirical cumulative distribution.
    max_call_duration, participant_absent_timeout : float
        Seconds; the persona's limits (Tavus's defaults: 3600 and 300), drawn as marks.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    conv, scope = _table(data, "conversations")
    ax = _axes(ax)
    title = "How long calls last, from join to shutdown"
    if kind not in ("hist", "ecdf"):
        raise ValueError(f"kind must be 'hist' or 'ecdf', not {kind!r}")
    if conv.empty:
        return _empty(ax, title, "no conversations in this range", scope)
    timed = conv[conv["duration_s"].notna()]
    if timed.empty:
        return _empty(ax, title, "no call in this range has both a join and a shutdown", scope)
    stats = metrics.durations(conv, max_call_duration=max_call_duration).iloc[0]
    minutes = timed["duration_s"].to_numpy(dtype=float) / 60
    top = max(minutes.max(), max_call_duration / 60)
    if kind == "hist":
        step = 1.0 if top <= 120 else float(np.ceil(top / 120))
        bins = np.arange(0, top + step, step)
        cats = (
            timed["shutdown_category"]
            .astype(object)
            .where(timed["shutdown_category"].notna(), NO_REASON)
        )
        colors = {**CATEGORY_COLORS, **_EXTRA_COLORS}
        names = [n for n in [*SHUTDOWN_CATEGORIES, NO_REASON] if (cats == n).any()]
        ax.hist(
            [minutes[(cats == n).to_numpy()] for n in names],
            bins=bins,
            stacked=True,
            label=names,
            color=[colors[n] for n in names],
            edgecolor="white",
            linewidth=0.3,
        )
        ax.set_ylabel(f"calls per {step:g}-minute bin")
        _counts(ax, "y")
    else:
        ax.ecdf(minutes, color=_MAIN, linewidth=1.8)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_ylabel("share of calls at most this long")
        ax.set_ylim(0, 1.02)
    for seconds, name, style in (
        (participant_absent_timeout, "participant_absent_timeout", ":"),
        (max_call_duration, "max_call_duration", "--"),
    ):
        if seconds and seconds / 60 <= top * 1.05:
            ax.axvline(
                seconds / 60,
                color="#333333",
                linestyle=style,
                linewidth=1.2,
                label=f"{name} ({seconds / 60:g} min)",
            )
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(
        handles,
        labels,
        title="shutdown category" if kind == "hist" else None,
        loc="upper left",
        bbox_to_anchor=(1.01, 1),
    )
    ax.set_xlim(0, top * 1.03)
    ax.set_xlabel("call duration (minutes)")
    _minutes(ax)
    sub = (
        f"{int(stats['count']):,} calls with a join and a shutdown; median "
        f"{duration_text(stats['median'])}, p90 {duration_text(stats['p90'])}, "
        f"{_pct(stats['max_duration_share'])} hit max_call_duration"
    )
    _titles(ax, title, sub)
    return ax.figure


@_styled
def shutdown_reasons(
    data: Dataset | pd.DataFrame,
    *,
    by: Literal["reason", "category"] = "reason",
    top: int = 12,
    ax: Axes | None = None,
) -> Figure:
    """Why calls ended: horizontal bars sorted by count, with each reason's share.

    Numbers from :func:`tavus_analytics.metrics.shutdown_breakdown`. Reasons are drawn in their
    category's colour; beyond ``top`` they are summed into one bar.

    Parameters
    ----------
    data : Dataset or DataFrame
        A Dataset, or its ``conversations`` table.
    by : {"reason", "category"}
        The raw reasons as sent, or their categories.
    top : int
        Bars at most (the rest are summed into the last one).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    conv, scope = _table(data, "conversations")
    ax = _axes(ax)
    title = "Why calls ended: shutdown " + ("reasons" if by == "reason" else "categories")
    if conv.empty:
        return _empty(ax, title, "no conversations in this range", scope)
    table = metrics.shutdown_breakdown(conv, by=by)
    key = "shutdown_reason" if by == "reason" else "shutdown_category"
    table = table[table["count"] > 0]
    if table.empty:
        return _empty(ax, title, "no call in this range has ended yet", scope)
    table = table.sort_values("count", ascending=False, kind="stable")
    labels = [NO_REASON if pd.isna(v) else str(v) for v in table[key]]
    if by == "reason":
        colors = [
            CATEGORY_COLORS.get(shutdown_category(v) or "", _EXTRA_COLORS[NO_REASON])
            if v != "(none)"
            else _EXTRA_COLORS[NO_REASON]
            for v in labels
        ]
    else:
        colors = [CATEGORY_COLORS.get(v, _EXTRA_COLORS[NO_REASON]) for v in labels]
    counts = table["count"].to_numpy()
    shares = table["share"].to_numpy()
    if len(labels) > top:
        rest = len(labels) - (top - 1)
        labels = [*labels[: top - 1], f"{rest} other {'reasons' if by == 'reason' else 'cats'}"]
        colors = [*colors[: top - 1], _LIGHT_GREY]
        counts = np.append(counts[: top - 1], counts[top - 1 :].sum())
        shares = np.append(shares[: top - 1], shares[top - 1 :].sum())
    y = np.arange(len(labels))
    bars = ax.barh(y, counts, color=colors, edgecolor="#555555", linewidth=0.4, height=0.7)
    ax.set_yticks(y, [_short(v, 50) for v in labels])
    ax.invert_yaxis()
    ax.set_xlabel("conversations")
    _counts(ax, "x")
    ax.grid(axis="y", visible=False)
    ax.set_xlim(0, counts.max() * 1.24)
    _bar_labels(ax, bars, [f"{_pct(s)} ({c:,})" for s, c in zip(shares, counts, strict=True)])
    ended = int(table["count"].sum())
    sub = f"{ended:,} calls with a shutdown; bars coloured by shutdown category"
    _titles(ax, title, sub)
    return ax.figure


@_styled
def duration_by_replica(
    data: Dataset | pd.DataFrame,
    *,
    top: int = 15,
    ax: Axes | None = None,
) -> Figure:
    """Call duration by replica: one box per replica, in order of median duration.

    Counts and medians from :func:`tavus_analytics.metrics.durations` (``by="replica_id"``);
    only the ``top`` replicas with the most timed calls are drawn. With a single replica there
    is nothing to compare and the chart says so.

    Parameters
    ----------
    data : Dataset or DataFrame
        A Dataset, or its ``conversations`` table.
    top : int
        Replicas at most.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    conv, scope = _table(data, "conversations")
    ax = _axes(ax)
    title = "Call duration by replica"
    if conv.empty:
        return _empty(ax, title, "no conversations in this range", scope)
    stats = metrics.durations(conv, by="replica_id")
    if stats.empty:
        return _empty(ax, title, "no call in this range has both a join and a shutdown", scope)
    if len(stats) < 2:
        only = stats["replica_id"].iloc[0]
        return _empty(
            ax,
            title,
            f"one replica only ({only}): nothing to compare\n(see the duration distribution chart)",
            scope,
        )
    shown = stats.sort_values("count", ascending=False, kind="stable").head(top)
    shown = shown.sort_values("median", kind="stable")
    timed = conv[conv["duration_s"].notna()]
    groups = timed.groupby(timed["replica_id"].astype(object))["duration_s"]
    values = [groups.get_group(r).to_numpy(dtype=float) / 60 for r in shown["replica_id"]]
    labels = [f"{r}  (n={c:,})" for r, c in zip(shown["replica_id"], shown["count"], strict=True)]
    ax.boxplot(
        values,
        orientation="horizontal",
        widths=0.6,
        patch_artist=True,
        showfliers=True,
        flierprops={"marker": ".", "markersize": 3, "markeredgecolor": _GREY, "alpha": 0.6},
        medianprops={"color": "black", "linewidth": 1.5},
        boxprops={"facecolor": OKABE_ITO["sky_blue"], "edgecolor": "#333333"},
        whiskerprops={"color": "#333333"},
        capprops={"color": "#333333"},
    )
    ax.set_yticks(np.arange(1, len(labels) + 1), labels)
    ax.set_xlabel("call duration (minutes)")
    ax.set_ylabel("replica")
    _minutes(ax)
    ax.grid(axis="y", visible=False)
    more = len(stats) - len(shown)
    sub = (
        f"{len(stats)} replicas, {int(stats['count'].sum()):,} timed calls; boxes: quartiles "
        f"and median, whiskers 1.5 IQR" + (f"; {more} smaller replicas not shown" if more else "")
    )
    _titles(ax, title, sub)
    return ax.figure


@_styled
def funnel(
    data: Dataset | pd.DataFrame,
    *,
    ax: Axes | None = None,
) -> Figure:
    """The coverage funnel: of the joined calls, how many got a shutdown, a transcript, a
    recording and a perception analysis (:func:`tavus_analytics.metrics.funnel`).

    Parameters
    ----------
    data : Dataset or DataFrame
        A Dataset, or its ``conversations`` table.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    conv, scope = _table(data, "conversations")
    ax = _axes(ax, (9.0, 4.0))
    title = "Coverage funnel: what arrived for each joined call"
    if conv.empty:
        return _empty(ax, title, "no conversations in this range", scope)
    table = metrics.funnel(conv)
    joined = int(table["count"].iloc[0])
    if joined == 0:
        return _empty(ax, title, "no call in this range has joined", scope)
    y = np.arange(len(table))
    colors = [_MAIN, *[OKABE_ITO["sky_blue"]] * (len(table) - 1)]
    bars = ax.barh(y, table["count"], color=colors, height=0.65)
    ax.set_yticks(y, table["stage"])
    ax.invert_yaxis()
    ax.set_xlabel("joined conversations")
    _counts(ax, "x")
    ax.set_xlim(0, joined * 1.2)
    ax.grid(axis="y", visible=False)
    _bar_labels(
        ax,
        bars,
        [
            f"{_pct(s)} ({c:,})"
            for s, c in zip(table["share"].to_numpy(), table["count"].to_numpy(), strict=True)
        ],
    )
    sub = f"{joined:,} joined calls; each stage counted on its own (stages are not nested)"
    _titles(ax, title, sub)
    return ax.figure


# -- transcripts -----------------------------------------------------------------------------------
@_styled
def turns_per_conversation(
    data: Dataset | pd.DataFrame,
    *,
    ax: Axes | None = None,
) -> Figure:
    """Turns per conversation of the user and of the assistant, side by side.

    Conversations with a transcript only; the means and medians in the legend are
    :func:`tavus_analytics.metrics.turn_stats`.

    Parameters
    ----------
    data : Dataset or DataFrame
        A Dataset, or its ``conversations`` table.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    conv, scope = _table(data, "conversations")
    ax = _axes(ax)
    title = "Turns per conversation, by role"
    if conv.empty:
        return _empty(ax, title, "no conversations in this range", scope)
    stats = metrics.turn_stats(conv).set_index("role")
    have = conv[conv["has_transcript"].fillna(False).astype(bool)]
    if have.empty:
        return _empty(ax, title, "no transcripts in this range", scope)
    series = {r: have[f"{r}_turns"].astype("float64").dropna().to_numpy() for r in stats.index}
    top = max(float(np.nanpercentile(np.concatenate(list(series.values())), 99.5)), 1.0)
    step = max(1.0, float(np.ceil(top / 60)))
    bins = np.arange(-0.5, np.ceil(top) + step, step)
    labels = [
        f"{r} (median {stats.loc[r, 'turns_per_conversation_median']:g}, "
        f"mean {stats.loc[r, 'turns_per_conversation']:.1f})"
        for r in series
    ]
    ax.hist(
        list(series.values()),
        bins=bins,
        label=labels,
        color=[ROLE_COLORS[r] for r in series],
        edgecolor="white",
        linewidth=0.3,
    )
    cut = sum(int((v > bins[-1]).sum()) for v in series.values())
    ax.set_xlim(bins[0], bins[-1])
    shown = f"{bins[-1] - 0.5:g}"
    ax.set_xlabel("turns (messages) per conversation")
    ax.set_ylabel("conversations")
    _counts(ax, "y")
    _counts(ax, "x")
    ax.legend(title="role", loc="upper right")
    sub = f"{len(have):,} conversations with a transcript" + (
        f"; counts above {shown} turns not shown ({cut:,})" if cut else ""
    )
    _titles(ax, title, sub)
    return ax.figure


@_styled
def words_per_turn(
    data: Dataset | pd.DataFrame,
    *,
    ax: Axes | None = None,
) -> Figure:
    """Words per turn of the user and of the assistant (one count per transcript message).

    Parameters
    ----------
    data : Dataset or DataFrame
        A Dataset, or its ``turns`` table. With a Dataset, the legend's means are
        :func:`tavus_analytics.metrics.turn_stats`.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    turns, scope = _table(data, "turns")
    ax = _axes(ax)
    title = "Words per turn, by role"
    roles = [r for r in ("user", "assistant") if (turns["role"] == r).any()]
    if not roles:
        return _empty(ax, title, "no transcripts in this range", scope)
    stats = None
    if isinstance(data, Dataset):
        stats = metrics.turn_stats(data.conversations).set_index("role")
    series = {r: turns.loc[turns["role"] == r, "words"].to_numpy(dtype=float) for r in roles}
    top = max(float(np.percentile(np.concatenate(list(series.values())), 99.5)), 1.0)
    step = max(1.0, float(np.ceil(top / 60)))
    bins = np.arange(0, np.ceil(top / step) * step + step, step)
    for r, v in series.items():
        mean = stats.loc[r, "words_per_turn"] if stats is not None else None
        label = f"{r} ({len(v):,} turns" + (f", mean {mean:.1f} words)" if mean else ")")
        ax.hist(
            v,
            bins=bins,
            label=label,
            color=ROLE_COLORS[r],
            histtype="stepfilled",
            alpha=0.5,
            edgecolor="none",
        )
        ax.hist(v, bins=bins, histtype="step", color=ROLE_COLORS[r], linewidth=1.4)
    cut = sum(int((v >= bins[-1]).sum()) for v in series.values())
    ax.set_xlim(0, bins[-1])
    ax.set_xlabel("words per turn")
    ax.set_ylabel("turns")
    _counts(ax, "y")
    ax.legend(title="role", loc="upper right")
    sub = "every user and assistant message of the transcripts" + (
        f"; {cut:,} turns of {bins[-1]:g} words or more not shown" if cut else ""
    )
    _titles(ax, title, sub)
    return ax.figure


@_styled
def talk_ratio(
    data: Dataset | pd.DataFrame,
    *,
    ax: Axes | None = None,
) -> Figure:
    """The talk ratio: the user's share of the words of each conversation
    (:func:`tavus_analytics.metrics.talk_ratio`), with its median.

    Parameters
    ----------
    data : Dataset or DataFrame
        A Dataset, or its ``conversations`` table.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    conv, scope = _table(data, "conversations")
    ax = _axes(ax)
    title = "Talk ratio: the user's share of the words"
    if conv.empty:
        return _empty(ax, title, "no conversations in this range", scope)
    ratio = metrics.talk_ratio(conv)
    share = ratio["user_share"].dropna().to_numpy(dtype=float)
    if share.size == 0:
        return _empty(ax, title, "no transcripts with words in this range", scope)
    silent = int(ratio["user_share"].isna().sum())
    ax.hist(
        share,
        bins=np.linspace(0, 1, 41),
        color=ROLE_COLORS["user"],
        edgecolor="white",
        linewidth=0.4,
    )
    median = float(np.median(ratio["user_share"].dropna()))
    ax.axvline(median, color="black", linestyle="--", linewidth=1.2)
    ax.annotate(
        f"median {median:.0%}",
        xy=(median, 1),
        xycoords=("data", "axes fraction"),
        xytext=(4, -4),
        textcoords="offset points",
        ha="left",
        va="top",
        fontsize=9,
    )
    ax.axvline(0.5, color=_GREY, linestyle=":", linewidth=1)
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("user's words as a share of the user's and the assistant's (%)")
    ax.set_ylabel("conversations")
    _counts(ax, "y")
    sub = f"{share.size:,} conversations with a transcript" + (
        f"; {silent:,} where nobody said a word not shown" if silent else ""
    )
    _titles(ax, title, sub)
    return ax.figure


# -- perception ------------------------------------------------------------------------------------
@_styled
def perception_terms(
    data: Dataset | pd.DataFrame,
    *,
    n: int = 1,
    top: int = 20,
    section: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """The most frequent meaningful terms (or ``n``-word phrases) of the perception analyses,
    as the share of analyses that contain each (:func:`tavus_analytics.metrics.perception_terms`).

    Parameters
    ----------
    data : Dataset or DataFrame
        A Dataset, or its ``perception`` table.
    n : int
        Words per term.
    top : int
        Terms shown.
    section : str, optional
        Only this section of the analyses (``appearance``, ``behavior``, ``emotions``,
        ``screen_activity`` or a custom header).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    perception, scope = _table(data, "perception")
    ax = _axes(ax, (9.0, max(4.0, 0.24 * top + 1.4)))
    what = "terms" if n == 1 else f"{n}-word phrases"
    title = f"Most frequent {what} in perception analyses" + (f" ({section})" if section else "")
    terms = metrics.perception_terms(perception, n=n, top=top, section=section)
    if terms.empty:
        return _empty(ax, title, "no perception analyses in this range", scope)
    analyses = int(perception["available"].fillna(False).astype(bool).sum())
    y = np.arange(len(terms))
    bars = ax.barh(y, terms["share"], color=OKABE_ITO["reddish_purple"], height=0.7)
    ax.set_yticks(y, [_short(t, 40) for t in terms["term"]])
    ax.invert_yaxis()
    ax.set_xlim(0, min(1.0, terms["share"].max() * 1.2))
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("share of analyses that mention it (%)")
    ax.grid(axis="y", visible=False)
    _bar_labels(ax, bars, [f"{a:,}" for a in terms["analyses"]])
    sub = f"{analyses:,} analyses; stop words removed; labels: analyses that mention it"
    _titles(ax, title, sub)
    return ax.figure


@_styled
def perception_coverage(
    data: Dataset,
    *,
    freq: Freq = "auto",
    ax: Axes | None = None,
) -> Figure:
    """Perception analysis coverage over time: per day or week, the share of conversations that
    got an analysis, and the share that got ``perception_unavailable`` instead.

    The lines are :func:`tavus_analytics.metrics.perception_coverage` (``coverage`` and
    ``unavailable_share`` of each period); the subtitle's overall figures are
    :func:`tavus_analytics.metrics.perception_summary`.

    Parameters
    ----------
    data : Dataset
        Perception coverage needs both ``conversations`` and ``perception``.
    freq : {"auto", "D", "W"}
        Days or Monday-starting weeks (UTC); ``auto``: days up to 70 days, else weeks.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    ds = _dataset(data)
    conv = ds.conversations
    ax = _axes(ax)
    freq_ = _resolve_freq(freq, conv["joined_at"].fillna(conv["first_seen"]))
    unit = "day" if freq_ == "D" else "week"
    title = f"Perception analysis coverage per {unit}"
    if conv.empty:
        return _empty(ax, title, "no conversations in this range", _scope(ds))
    overall = metrics.perception_summary(conv, ds.perception).iloc[0]
    if int(overall["with_analysis"]) == 0 and int(overall["unavailable"]) == 0:
        return _empty(ax, title, "no perception callbacks in this range", _scope(ds))
    table = metrics.perception_coverage(conv, ds.perception, freq=freq_)
    x = _naive_utc(table["period"])
    ax.plot(
        x,
        table["coverage"],
        marker="o",
        markersize=3.5,
        color=STATUS_COLORS["ready"],
        linewidth=1.8,
        label="analysis received",
    )
    ax.plot(
        x,
        table["unavailable_share"],
        marker="s",
        markersize=3,
        color=OKABE_ITO["orange"],
        linewidth=1.4,
        linestyle="--",
        label="perception_unavailable",
    )
    ax.set_ylim(0, 1.02)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylabel(f"share of the {unit}'s conversations (%)")
    _date_axis(ax)
    ax.set_xlabel("day (UTC)" if freq_ == "D" else "week starting Monday (UTC)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1))
    sub = (
        f"overall {_pct(overall['coverage'])} of {int(overall['conversations']):,} conversations "
        f"got an analysis; median length {overall['analysis_words_median']:.0f} words"
        if pd.notna(overall["analysis_words_median"])
        else f"overall {_pct(overall['coverage'])} of {int(overall['conversations']):,} "
        "conversations got an analysis"
    )
    _titles(ax, title, sub)
    return ax.figure


# -- replicas and videos ---------------------------------------------------------------------------
@_styled
def video_generation(
    data: Dataset | pd.DataFrame,
    *,
    ax: Axes | None = None,
) -> Figure:
    """How long video generation takes: ``generation_s`` of the videos that became ready.

    Videos in error or deleted are counted in the subtitle, not drawn (their ``updated_at`` is
    the time of the error or of the deletion, not of the end of generation). The counts per
    status and the median are :func:`tavus_analytics.metrics.video_generation`.

    Parameters
    ----------
    data : Dataset or DataFrame
        A Dataset (``ds.filter`` places videos by ``created_at``), or its ``videos`` table.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    videos, scope = _table(data, "videos")
    ax = _axes(ax)
    title = "Video generation time (ready videos)"
    if videos.empty:
        return _empty(ax, title, "no videos in this range", scope)
    stats = metrics.video_generation(videos)
    others = ", ".join(
        f"{n:,} {s}" for s, n in zip(stats["status"], stats["count"], strict=True) if s != "ready"
    )
    ready = videos[
        (videos["status"].astype(object) == "ready").to_numpy(dtype=bool)
        & videos["generation_s"].notna().to_numpy(dtype=bool)
    ]
    if ready.empty:
        return _empty(ax, title, f"no ready videos in this range ({others})", scope)
    minutes = ready["generation_s"].to_numpy(dtype=float) / 60
    ax.hist(
        minutes,
        bins=min(40, max(5, int(np.sqrt(len(minutes))) * 2)),
        color=STATUS_COLORS["ready"],
        edgecolor="white",
        linewidth=0.4,
    )
    median_s = float(stats.loc[stats["status"] == "ready", "generation_median_s"].iloc[0])
    median = median_s / 60
    ax.axvline(median, color="black", linestyle="--", linewidth=1.2)
    ax.annotate(
        f"median {duration_text(median_s)}",
        xy=(median, 1),
        xycoords=("data", "axes fraction"),
        xytext=(4, -4),
        textcoords="offset points",
        ha="left",
        va="top",
        fontsize=9,
    )
    ax.set_xlim(left=0)
    ax.set_xlabel("generation time, created to ready (minutes)")
    ax.set_ylabel("videos")
    _minutes(ax)
    _counts(ax, "y")
    sub = f"{len(ready):,} ready videos" + (f"; also {others} (not drawn)" if others else "")
    _titles(ax, title, sub)
    return ax.figure


@_styled
def replica_training(
    data: Dataset | pd.DataFrame,
    *,
    ax: Axes | None = None,
) -> Figure:
    """Replica training outcomes: training callbacks by status, with the most frequent error
    messages (both :func:`tavus_analytics.metrics.replica_training`).

    Parameters
    ----------
    data : Dataset or DataFrame
        A Dataset (``ds.filter`` places training callbacks by ``received_at``), or its
        ``replicas`` table.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    table, scope = _table(data, "replicas")
    ax = _axes(ax, (9.0, 3.6))
    title = "Replica training outcomes"
    if table.empty:
        return _empty(ax, title, "no replica training callbacks in this range", scope)
    statuses = metrics.replica_training(table, by="status")
    counts = statuses["count"].to_numpy()
    y = np.arange(len(statuses))
    bars = ax.barh(
        y,
        counts,
        color=[STATUS_COLORS.get(s, _GREY) for s in statuses["status"]],
        height=0.6,
    )
    ax.set_yticks(y, list(statuses["status"]))
    ax.invert_yaxis()
    ax.set_xlabel("training callbacks")
    ax.set_ylabel("status")
    _counts(ax, "x")
    ax.set_xlim(0, counts.max() * 1.25)
    ax.grid(axis="y", visible=False)
    total = int(counts.sum())
    _bar_labels(
        ax,
        bars,
        [f"{c:,} ({_pct(s)})" for c, s in zip(counts, statuses["share"], strict=True)],
    )
    errors = metrics.replica_training(table, by="error_message").head(3)
    if len(errors):
        lines = ["Most frequent errors:"] + [
            f"{n:,} × {'(no message)' if pd.isna(msg) else _short(msg, 90)}"
            for msg, n in zip(errors["error_message"], errors["count"], strict=True)
        ]
        ax.annotate(
            "\n".join(lines),
            xy=(0, 0),
            xycoords="axes fraction",
            xytext=(0, -40),
            textcoords="offset points",
            ha="left",
            va="top",
            fontsize=9,
            color=_TEXT_GREY,
        )
    replicas_n = int(table["replica_id"].nunique())
    sub = f"{total:,} training callbacks for {replicas_n:,} replicas"
    _titles(ax, title, sub)
    return ax.figure


#: Every chart, by name, in the order of the report: ``name -> function``.


# -- Tavus 2026: objectives, guardrails, timed turns, canvas, recording failures ----------------
_MISSED = "a callback the collector missed cannot be fetched later"


def _hbars(ax: Axes, labels: list[str], values: np.ndarray, texts: list[str], color: Any) -> None:
    y = np.arange(len(labels))
    bars = ax.barh(y, values, color=color, height=0.6)
    ax.set_yticks(y, [_short(label, 34) for label in labels])
    ax.invert_yaxis()
    ax.grid(axis="y", visible=False)
    _bar_labels(ax, bars, texts)


@_styled
def objective_completion(data: Dataset, *, ax: Axes | None = None) -> Figure:
    """The share of calls that reached each objective
    (:func:`tavus_analytics.metrics.objective_completion`).

    Parameters
    ----------
    data : Dataset
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    ds = _dataset(data)
    rates = metrics.objective_completion(ds.conversations, ds.objectives)
    ax = _axes(ax, (9.0, 1.4 + 0.45 * max(len(rates), 2)))
    title = "Objective completion"
    if rates.empty:
        return _empty(ax, title, "no objective completion received in this range", _scope(ds))
    rates = rates.sort_values("completion_rate", ascending=False, kind="stable")
    _hbars(
        ax,
        list(rates["objective_name"]),
        rates["completion_rate"].to_numpy() * 100,
        [
            f"{_pct(r)} ({c:,} of {n:,})"
            for r, c, n in zip(
                rates["completion_rate"], rates["completed"], rates["calls"], strict=False
            )
        ],
        OKABE_ITO["bluish_green"],
    )
    ax.set_xlim(0, 115)
    ax.xaxis.set_major_formatter(PercentFormatter(100))
    ax.set_xlabel("ended calls of the replicas that use the objective")
    _titles(ax, title, f"judged by Tavus's evaluator; {_MISSED}")
    return ax.figure


@_styled
def guardrail_triggers(data: Dataset, *, ax: Axes | None = None) -> Figure:
    """Guardrail triggers per 100 ended calls, per guardrail
    (:func:`tavus_analytics.metrics.guardrail_summary`).

    Parameters
    ----------
    data : Dataset
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    ds = _dataset(data)
    summary = metrics.guardrail_summary(ds.conversations, ds.guardrail_triggers)
    each = summary[summary["guardrail"] != "all"]
    ax = _axes(ax, (9.0, 1.4 + 0.45 * max(len(each), 2)))
    title = "Guardrail triggers"
    if each.empty or int(summary["triggers"].iloc[0]) == 0:
        return _empty(ax, title, "no guardrail triggered in this range", _scope(ds))
    each = each.sort_values("triggers_per_100_calls", ascending=False, kind="stable")
    _hbars(
        ax,
        list(each["guardrail"]),
        each["triggers_per_100_calls"].to_numpy(),
        [
            f"{t:.1f} per 100 calls ({n:,} in {c:,} calls)"
            for t, n, c in zip(
                each["triggers_per_100_calls"],
                each["triggers"],
                each["calls_triggered"],
                strict=False,
            )
        ],
        OKABE_ITO["vermillion"],
    )
    ax.set_xlim(0, each["triggers_per_100_calls"].max() * 1.6)
    ax.set_xlabel("triggers per 100 ended calls")
    total = summary.iloc[0]
    _titles(
        ax,
        title,
        f"{_pct(total['share_of_calls'])} of {int(total['calls']):,} calls triggered one or "
        "more; every delivery counts, and one missed is gone",
    )
    return ax.figure


@_styled
def answer_delays(data: Dataset | pd.DataFrame, *, ax: Axes | None = None) -> Figure:
    """How long callers waited for the replica's answer: the distribution of
    ``ds.turns.answer_delay_s`` (end of the caller's turn to the start of the answer).

    Parameters
    ----------
    data : Dataset or DataFrame
        A Dataset, or its ``turns`` table.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    turns, scope = _table(data, "turns")
    delays = turns["answer_delay_s"].dropna().astype("float64")
    ax = _axes(ax)
    title = "Answer delay"
    if delays.empty:
        return _empty(ax, title, "no timed transcript in this range", scope)
    high = max(float(delays.quantile(0.99)), 0.5)
    shown = delays.clip(lower=-1.0, upper=high)
    ax.hist(shown, bins=40, color=_MAIN, alpha=0.85)
    median, p90 = float(delays.median()), float(delays.quantile(0.9))
    for value, name, style in ((median, "median", "-"), (p90, "p90", "--")):
        ax.axvline(value, color=OKABE_ITO["black"], linestyle=style, linewidth=1.2)
        ax.annotate(
            f"{name} {value:.2f} s",
            xy=(value, 1),
            xycoords=("data", "axes fraction"),
            xytext=(4, -12 if name == "median" else -26),
            textcoords="offset points",
            fontsize=9,
        )
    ax.axvline(0, color=_GREY, linewidth=0.8)
    ax.set_xlabel("seconds from the end of the caller's turn to the replica's answer")
    ax.set_ylabel("answers")
    _counts(ax)
    overlaps = float((delays < 0).mean())
    _titles(
        ax,
        title,
        f"{len(delays):,} timed answers; {_pct(overlaps)} began before the caller had finished",
    )
    return ax.figure


@_styled
def answer_delay_trend(
    data: Dataset, *, freq: Freq = "auto", top: int = 6, ax: Axes | None = None
) -> Figure:
    """The median answer delay per day or week, one line per replica (the ``top`` replicas
    with the most timed answers).

    Parameters
    ----------
    data : Dataset
    freq : {"auto", "D", "W"}
    top : int
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    ds = _dataset(data)
    ax = _axes(ax)
    title = "Answer delay over time, per replica"
    turns = ds.turns
    timed = turns[turns["answer_delay_s"].notna().to_numpy(dtype=bool)]
    if timed.empty:
        return _empty(ax, title, "no timed transcript in this range", _scope(ds))
    conv = ds.conversations
    when = conv["joined_at"].fillna(conv["first_seen"])
    f = _resolve_freq(freq, when)
    frame = timed[["conversation_id", "answer_delay_s"]].merge(
        pd.DataFrame(
            {
                "conversation_id": conv["conversation_id"],
                "replica_id": conv["replica_id"].astype(object),
                "period": when.dt.floor("D"),
            }
        ),
        on="conversation_id",
    )
    if f == "W":
        frame["period"] = frame["period"] - pd.to_timedelta(frame["period"].dt.day_of_week, "D")
    busiest = frame["replica_id"].value_counts().head(top).index
    colors = list(OKABE_ITO.values())
    for i, replica in enumerate(busiest):
        mine = frame[frame["replica_id"] == replica]
        med = mine.groupby("period")["answer_delay_s"].median()
        ax.plot(
            _naive_utc(pd.Series(med.index)),
            med.to_numpy(),
            marker="o",
            markersize=3,
            linewidth=1.5,
            color=colors[i % len(colors)],
            label=str(replica),
        )
    _date_axis(ax)
    ax.set_xlabel("week of (UTC)" if f == "W" else "day (UTC)")
    ax.set_ylabel("median answer delay, seconds")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), title="replica")
    _titles(ax, title, f"per {'week' if f == 'W' else 'day'} (UTC), timed transcripts only")
    return ax.figure


@_styled
def canvas_outcomes(data: Dataset | pd.DataFrame, *, ax: Axes | None = None) -> Figure:
    """What callers did with each kind of on-screen card: submitted, skipped or dismissed
    (:func:`tavus_analytics.metrics.canvas_outcomes`).

    Parameters
    ----------
    data : Dataset or DataFrame
        A Dataset, or its ``canvas_interactions`` table.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    table, scope = _table(data, "canvas_interactions")
    outcomes = metrics.canvas_outcomes(table) if not table.empty else table
    ax = _axes(ax, (9.0, 1.6 + 0.5 * max(len(outcomes), 2)))
    title = "Canvas cards: what callers did"
    if table.empty or outcomes.empty:
        return _empty(ax, title, "no canvas interaction in this range", scope)
    y = np.arange(len(outcomes))
    left = np.zeros(len(outcomes))
    colors = {
        "submit": OKABE_ITO["bluish_green"],
        "skip": OKABE_ITO["orange"],
        "dismiss": OKABE_ITO["vermillion"],
        "other": _GREY,
    }
    for kind, color in colors.items():
        share = (outcomes[kind] / outcomes["interactions"]).to_numpy() * 100
        ax.barh(y, share, left=left, color=color, height=0.6, label=kind)
        left += share
    ax.set_yticks(y, [_short(c, 30) for c in outcomes["component"]])
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.xaxis.set_major_formatter(PercentFormatter(100))
    ax.grid(axis="y", visible=False)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_xlabel("share of interactions")
    _titles(ax, title, f"{int(outcomes['interactions'].sum()):,} interactions")
    return ax.figure


@_styled
def recording_failures(data: Dataset | pd.DataFrame, *, ax: Axes | None = None) -> Figure:
    """Recordings Tavus could not copy into the bucket, by error code
    (:func:`tavus_analytics.metrics.recording_failures`).

    Parameters
    ----------
    data : Dataset or DataFrame
        A Dataset, or its ``recording_failures`` table.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    table, scope = _table(data, "recording_failures")
    codes = metrics.recording_failures(table)
    ax = _axes(ax, (9.0, 1.4 + 0.45 * max(len(codes), 2)))
    title = "Recording copy failures"
    if table.empty:
        return _empty(ax, title, "no recording copy failure in this range", scope)
    labels = ["(no code)" if pd.isna(c) else str(c) for c in codes["error_code"]]
    _hbars(
        ax,
        labels,
        codes["count"].to_numpy(),
        [f"{c:,} ({_pct(s)})" for c, s in zip(codes["count"], codes["share"], strict=True)],
        OKABE_ITO["vermillion"],
    )
    ax.set_xlim(0, codes["count"].max() * 1.3)
    _counts(ax, "x")
    ax.set_xlabel("recordings")
    _titles(ax, title, "the recording stays with the video provider for about 30 days")
    return ax.figure


CHARTS: dict[str, Callable[..., Figure]] = {
    "volume": volume,
    "shutdown_reasons": shutdown_reasons,
    "durations": durations,
    "duration_by_replica": duration_by_replica,
    "funnel": funnel,
    "turns_per_conversation": turns_per_conversation,
    "words_per_turn": words_per_turn,
    "talk_ratio": talk_ratio,
    "perception_coverage": perception_coverage,
    "perception_terms": perception_terms,
    "video_generation": video_generation,
    "replica_training": replica_training,
    "objective_completion": objective_completion,
    "guardrail_triggers": guardrail_triggers,
    "answer_delays": answer_delays,
    "answer_delay_trend": answer_delay_trend,
    "canvas_outcomes": canvas_outcomes,
    "recording_failures": recording_failures,
}


# -- success criteria (not in CHARTS: it draws ds.evaluate(criteria), not a Dataset) -------------
@_styled
def success_rate(
    evaluation: pd.DataFrame,
    *,
    by: Literal["week", "replica"] = "week",
    name: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """The share of decided calls that met success criteria, per week or per replica.

    Numbers from :func:`tavus_analytics.evaluate.success_rate`: calls judged ``unknown`` (the
    data a rule needs is missing) are left out of the rate and counted in the subtitle. The
    dashed line is the rate over every call drawn.

    Parameters
    ----------
    evaluation : DataFrame
        From ``ds.evaluate(criteria)``, whole or a subset of its rows.
    by : {"week", "replica"}
        Bars per Monday-starting week (UTC, empty weeks included) or per replica.
    name : str, optional
        The criteria's name, for the title.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    from .evaluate import success_rate as rates

    if not isinstance(evaluation, pd.DataFrame) or "result" not in evaluation.columns:
        raise TypeError("this chart needs the frame of ds.evaluate(criteria)")
    if by not in ("week", "replica"):
        raise ValueError(f"by must be 'week' or 'replica', not {by!r}")
    table = rates(evaluation, by=by) if len(evaluation) else None
    size = _SIZE if by == "week" or table is None else (9.0, 1.4 + 0.45 * max(len(table), 2))
    ax = _axes(ax, size)
    title = f"Success rate per {by}" + (f": {_short(name, 40)}" if name else "")
    if table is None:
        return _empty(ax, title, "no evaluated calls in this range")
    overall = rates(evaluation).iloc[0]
    decided = int(overall["success"] + overall["failure"])
    if decided == 0:
        return _empty(ax, title, "no call could be judged in this range (every one unknown)")
    share = table["success_rate"].to_numpy(dtype="float64") * 100
    counts = [
        f"{int(s):,}/{int(s + f):,}" if s + f else "-"
        for s, f in zip(table["success"], table["failure"], strict=True)
    ]
    color = OKABE_ITO["bluish_green"]
    if by == "week":
        x = _naive_utc(table["week"])
        bars = ax.bar(x, np.nan_to_num(share), width=5.6, align="edge", color=color)
        for bar, label in zip(bars, counts, strict=True):
            ax.annotate(
                label,
                xy=(bar.get_x() + bar.get_width() / 2, bar.get_height()),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=8,
                color=_TEXT_GREY,
            )
        _date_axis(ax)
        ax.set_xlabel("week starting Monday (UTC); labels: calls that met the criteria/decided")
        ax.set_ylabel("decided calls that met the criteria")
        ax.set_ylim(0, 112)
        ax.yaxis.set_major_formatter(PercentFormatter(100))
        ax.grid(axis="x", visible=False)
        ax.axhline(overall["success_rate"] * 100, color=_GREY, linestyle="--", linewidth=1)
    else:
        texts = [
            f"{_pct(r)} ({c} decided; {int(u):,} unknown)"
            for r, c, u in zip(table["success_rate"], counts, table["unknown"], strict=True)
        ]
        labels = ["(no replica)" if pd.isna(r) else str(r) for r in table["replica_id"]]
        _hbars(ax, labels, np.nan_to_num(share), texts, color)
        ax.set_xlim(0, 150)  # room for the labels; the axis stops at 100 %
        ax.set_xticks(range(0, 101, 20))
        ax.xaxis.set_major_formatter(PercentFormatter(100))
        ax.set_xlabel("decided calls that met the criteria")
        ax.axvline(overall["success_rate"] * 100, color=_GREY, linestyle="--", linewidth=1)
    _titles(
        ax,
        title,
        f"{_pct(overall['success_rate'])} of {decided:,} decided calls met the criteria "
        f"(dashed); {int(overall['unknown']):,} of {int(overall['calls']):,} unknown, left out",
    )
    return ax.figure


# -- what callers say (content analysis; needs the nlp extra) -------------------------------------
#: The colour of each sentiment label.
SENTIMENT_COLORS = {
    "negative": OKABE_ITO["vermillion"],
    "neutral": _GREY,
    "positive": OKABE_ITO["bluish_green"],
}
#: Topic colours, in topic order (topic 0 is the largest); topics past these are grey.
TOPIC_COLORS = [
    OKABE_ITO["blue"],
    OKABE_ITO["orange"],
    OKABE_ITO["bluish_green"],
    OKABE_ITO["vermillion"],
    OKABE_ITO["sky_blue"],
    OKABE_ITO["reddish_purple"],
    OKABE_ITO["yellow"],
    "#6E6E6E",
]
#: Weeks with fewer calls than this are drawn lighter in the topic chart: their shares are noisy.
FEW_CALLS = 20


def _call_sentiment(data: Any) -> tuple[pd.DataFrame, str]:
    if isinstance(data, pd.DataFrame):
        return data, ""
    return _dataset(data).sentiment(), _scope(data)


def _not_scored(calls: pd.DataFrame) -> str:
    """Why calls have no score, in words: ``; 15 not: 12 not English, 3 no user words``."""
    skipped = calls.loc[calls["mean"].isna(), "skipped"].astype(object).fillna("")
    foreign = int(skipped.str.startswith("language ").sum())
    rest = len(skipped) - foreign
    parts = []
    if foreign:
        parts.append(f"{foreign:,} not English")
    if rest:
        parts.append(f"{rest:,} no user words")
    return f"; {len(skipped):,} not: " + ", ".join(parts) if parts else ""


@_styled
def sentiment_distribution(
    data: Dataset | pd.DataFrame,
    *,
    ax: Axes | None = None,
) -> Figure:
    """How calls felt: the distribution of each call's mean sentiment (the user's turns, VADER's
    compound score), coloured by label, with the thresholds.

    Numbers from :func:`tavus_analytics.content.call_sentiment` (``ds.sentiment()``); a call is
    negative at or below -0.05, positive at or above +0.05.

    Parameters
    ----------
    data : Dataset or DataFrame
        A Dataset, or its ``ds.sentiment()`` table.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    from .content import NEGATIVE, POSITIVE

    calls, scope = _call_sentiment(data)
    ax = _axes(ax)
    title = "How calls felt: the user's mean sentiment per call"
    scored = calls["mean"].dropna().to_numpy(dtype=float)
    if scored.size == 0:
        message = (
            "no transcripts in this range" if calls.empty else "no call in English in this range"
        )
        return _empty(ax, title, message, scope)
    bins = np.linspace(-1, 1, 41)
    counts, edges = np.histogram(scored, bins=bins)
    centers = (edges[:-1] + edges[1:]) / 2
    label = np.where(
        centers >= POSITIVE, "positive", np.where(centers <= NEGATIVE, "negative", "neutral")
    )
    for name in ("negative", "neutral", "positive"):
        keep = label == name
        ax.bar(
            centers[keep],
            counts[keep],
            width=np.diff(edges)[keep],
            color=SENTIMENT_COLORS[name],
            edgecolor="white",
            linewidth=0.4,
            label=name,
        )
    for x in (NEGATIVE, POSITIVE):
        ax.axvline(x, color="#333333", linestyle=":", linewidth=1)
    ax.set_xlim(-1, 1)
    ax.set_xlabel("mean compound score of the user's turns (-1 most negative, +1 most positive)")
    ax.set_ylabel("calls")
    _counts(ax, "y")
    shares = calls["label"].astype(object).value_counts()
    n = int(shares.sum())
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(
        handles,
        [f"{name}: {_pct(shares.get(name, 0) / n)} ({shares.get(name, 0):,})" for name in labels],
        title="label",
        loc="upper left",
    )
    sub = f"{n:,} calls scored (thresholds ±{POSITIVE:g} dotted)" + _not_scored(calls)
    _titles(ax, title, sub)
    return ax.figure


@_styled
def sentiment_trend(
    data: Dataset,
    *,
    freq: Freq = "auto",
    ax: Axes | None = None,
) -> Figure:
    """Negative and positive calls over time: per day or week, the share of the scored calls
    labelled negative and positive (:func:`tavus_analytics.content.sentiment_rates`).

    Parameters
    ----------
    data : Dataset
        The rates need both ``conversations`` (when each call happened) and the sentiment.
    freq : {"auto", "D", "W"}
        Days or Monday-starting weeks (UTC); ``auto``: days up to 70 days, else weeks.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    ds = _dataset(data)
    conv = ds.conversations
    ax = _axes(ax)
    freq_ = _resolve_freq(freq, conv["joined_at"].fillna(conv["first_seen"]))
    if freq == "auto":
        freq_ = "W"  # a daily share of a few calls is noise: weeks unless asked
    unit = "day" if freq_ == "D" else "week"
    title = f"Negative and positive calls per {unit}"
    if conv.empty:
        return _empty(ax, title, "no conversations in this range", _scope(ds))
    calls = ds.sentiment()
    if calls["mean"].notna().sum() == 0:
        return _empty(ax, title, "no call in English in this range", _scope(ds))
    from .content import sentiment_rates

    rates = sentiment_rates(calls, conv, by=unit)
    x = _naive_utc(rates["period"])
    for name, column, marker in (
        ("negative", "negative_rate", "o"),
        ("positive", "positive_rate", "s"),
    ):
        ax.plot(
            x,
            rates[column],
            marker=marker,
            markersize=4,
            linewidth=1.8,
            color=SENTIMENT_COLORS[name],
            label=f"{name} (overall {_pct(rates[name].sum() / rates['scored'].sum())})",
        )
    ax.set_ylim(0, 1.02)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylabel(f"share of the {unit}'s scored calls (%)")
    _date_axis(ax)
    ax.set_xlabel("day (UTC)" if freq_ == "D" else "week starting Monday (UTC)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1))
    worst = rates.loc[rates["negative_rate"].idxmax()]
    when = f"{worst['period']:%Y-%m-%d}"
    sub = (
        f"{int(rates['scored'].sum()):,} calls scored; most negative {unit}: {when}, "
        f"{_pct(worst['negative_rate'])} of {int(worst['scored']):,}"
    )
    _titles(ax, title, sub)
    return ax.figure


@_styled
def topic_shares(
    data: Any,
    *,
    k: int = 8,
    ax: Axes | None = None,
) -> Figure:
    """What calls are about, week by week: each week's calls by dominant topic (NMF topics of
    the users' words, :func:`tavus_analytics.content.topics`), as shares that sum to 100 %.

    Parameters
    ----------
    data : Dataset or Topics
        A Dataset (topics are made with ``k``), or the result of ``ds.topics(...)``.
    k : int
        Topics, when ``data`` is a Dataset.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    from .content import Topics
    from .errors import NotEnoughText

    ax = _axes(ax, (10.0, 5.2))
    title = "What calls are about: topics per week"
    scope = ""
    if isinstance(data, Topics):
        found = data
    else:
        ds = _dataset(data)
        scope = _scope(ds)
        try:
            found = ds.topics(k=k)
        except NotEnoughText as e:
            return _empty(
                ax, title, "no topics in this range:\n" + textwrap.fill(str(e), 70), scope
            )
    weeks = found.by_week
    if weeks.empty:
        return _empty(ax, title, "no weeks with topics in this range", scope)
    table = weeks.pivot(index="period", columns="topic", values="share").fillna(0.0)
    calls = weeks.groupby("period")["calls"].sum().reindex(table.index)
    x = _naive_utc(pd.Series(table.index))
    bottom = np.zeros(len(table))
    light = (calls < FEW_CALLS).to_numpy()
    labels = found.topics.set_index("topic")["label"]
    for topic in table.columns:
        heights = table[topic].to_numpy(dtype=float)
        color = TOPIC_COLORS[topic] if topic < len(TOPIC_COLORS) else _LIGHT_GREY
        share = found.topics.set_index("topic").loc[topic, "share"]
        bars = ax.bar(
            x,
            heights,
            width=5.6,
            bottom=bottom,
            align="edge",
            color=color,
            edgecolor="white",
            linewidth=0.5,
            label=f"{topic}: {_short(labels[topic], 34)} ({_pct(share)})",
        )
        for bar, faint in zip(bars, light, strict=True):
            if faint:
                bar.set_alpha(0.35)
        bottom += heights
    ax.set_ylim(0, 1)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylabel("share of the week's calls (%)")
    _date_axis(ax)
    ax.set_xlabel("week starting Monday (UTC)")
    ax.grid(axis="x", visible=False)
    handles, names = ax.get_legend_handles_labels()
    ax.legend(
        handles[::-1],
        names[::-1],
        title="topic: top terms (share of calls)",
        loc="upper left",
        bbox_to_anchor=(1.01, 1),
        title_fontsize=9,
    )
    sub = f"{found.documents:,} calls in {found.k} topics by their dominant topic" + (
        f"; weeks of fewer than {FEW_CALLS} calls drawn lighter" if light.any() else ""
    )
    _titles(ax, title, sub)
    return ax.figure


@_styled
def top_questions(
    data: Any,
    *,
    top: int = 12,
    ax: Axes | None = None,
) -> Figure:
    """The questions callers ask most: groups of similar questions (rewordings together), by the
    share of calls that ask them, with their weekly trend
    (:func:`tavus_analytics.content.questions`).

    Parameters
    ----------
    data : Dataset or Questions
        A Dataset, or the result of ``ds.questions(...)``.
    top : int
        Questions shown.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    from .content import Questions

    ax = _axes(ax, (10.0, max(4.0, 0.36 * top + 1.6)))
    title = "What callers ask most: similar questions grouped"
    scope = ""
    if isinstance(data, Questions):
        found = data
    else:
        ds = _dataset(data)
        scope = _scope(ds)
        found = ds.questions()
    groups = found.groups.head(top)
    if groups.empty:
        return _empty(ax, title, "no question asked in two calls or more in this range", scope)
    y = np.arange(len(groups))
    bars = ax.barh(y, groups["share"], color=_MAIN, height=0.68)
    ax.set_yticks(y, [_short(q, 48) for q in groups["example"]])
    ax.invert_yaxis()
    ax.set_xlim(0, min(1.0, groups["share"].max() * 1.6))
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("share of calls with a user turn that ask it (%)")
    ax.grid(axis="y", visible=False)

    def label(calls: int, wordings: int, trend: float) -> str:
        text = f"{calls:,} calls, {wordings} wording{'s' if wordings > 1 else ''}"
        return text if pd.isna(trend) else f"{text}, {100 * trend:+.1f} pts/wk"

    _bar_labels(
        ax,
        bars,
        [
            label(c, w, t)
            for c, w, t in zip(groups["calls"], groups["wordings"], groups["trend"], strict=True)
        ],
    )
    sub = f"{found.documents:,} calls with a user turn; pts/wk: change of the weekly share"
    _titles(ax, title, sub)
    return ax.figure


#: The content analysis charts (they need the nlp extra), in the order of the report's "What
#: callers say" section: ``name -> function``.
CONTENT_CHARTS: dict[str, Callable[..., Figure]] = {
    "sentiment_distribution": sentiment_distribution,
    "sentiment_trend": sentiment_trend,
    "topic_shares": topic_shares,
    "top_questions": top_questions,
}
