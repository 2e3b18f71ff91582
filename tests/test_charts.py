"""Every chart on a demo database and on an empty one: titles, labels, artists, colours, states."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

import tavus_analytics as ta
from tavus_analytics import charts, demo, metrics
from tavus_analytics.events import SHUTDOWN_CATEGORIES
from tavus_analytics.store import Store

NAMES = list(charts.CHARTS)


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("charts") / "demo.db"
    demo.write(path, conversations=150, seed=0)
    return path


@pytest.fixture(scope="module")
def ds(demo_db):
    return ta.load(demo_db)


@pytest.fixture
def empty_ds(tmp_path):
    path = tmp_path / "empty.db"
    store = Store(path)
    store.connection()
    store.close()
    return ta.load(path)


def texts(fig: Figure) -> list[str]:
    """Every piece of text drawn in the figure's axes (titles, labels, annotations, ticks)."""
    out = []
    for ax in fig.axes:
        out += [ax.get_title(loc=loc) for loc in ("left", "center", "right")]
        out += [ax.get_xlabel(), ax.get_ylabel()]
        out += [t.get_text() for t in ax.texts]
        legend = ax.get_legend()
        if legend is not None:
            out += [t.get_text() for t in legend.get_texts()]
    return [t for t in out if t]


def bars(ax) -> list[Rectangle]:
    return [p for p in ax.patches if isinstance(p, Rectangle) and p.get_height() > 0]


def test_every_chart_of_the_issue_exists():
    assert set(NAMES) == {
        "volume",
        "durations",
        "shutdown_reasons",
        "turns_per_conversation",
        "words_per_turn",
        "talk_ratio",
        "duration_by_replica",
        "funnel",
        "perception_terms",
        "perception_coverage",
        "video_generation",
        "replica_training",
        "objective_completion",
        "guardrail_triggers",
        "answer_delays",
        "answer_delay_trend",
        "canvas_outcomes",
        "recording_failures",
    }
    for name, f in charts.CHARTS.items():
        assert f is getattr(charts, name)


@pytest.mark.parametrize("name", NAMES)
def test_chart_on_demo_data(name, ds):
    fig = charts.CHARTS[name](ds)
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    title = ax.get_title(loc="left")
    assert len(title) > 10
    assert ax.get_xlabel() and ax.get_ylabel() or ax.get_xlabel() and ax.get_yticklabels()
    assert not any("in this range" in t for t in texts(fig)), texts(fig)
    drawn = len(ax.patches) + len(ax.lines) + len(ax.collections)
    # a small demo's copy failures may all have one error code: one bar
    assert drawn >= (1 if name == "recording_failures" else 2)
    # The figure is not registered with pyplot: nothing shows or leaks in scripts and loops.
    assert plt.get_fignums() == []


@pytest.mark.parametrize("name", NAMES)
def test_chart_on_an_empty_database_says_so(name, empty_ds):
    fig = charts.CHARTS[name](empty_ds)
    (ax,) = fig.axes
    assert ax.get_title(loc="left")
    messages = [t.get_text() for t in ax.texts]
    assert len(messages) == 1 and messages[0].startswith("no ") and "in this range" in messages[0]
    assert not bars(ax) and not ax.lines
    assert list(ax.get_xticks()) == [] and list(ax.get_yticks()) == []


def test_an_empty_range_names_the_range(ds):
    fig = charts.volume(ds.filter(since="2030-01-01", until="2030-02-01"))
    (message,) = [t.get_text() for t in fig.axes[0].texts]
    assert "no conversations in this range" in message
    assert "2030-01-01 to 2030-02-01 (UTC)" in message
    fig = charts.perception_coverage(ds.filter(since="2030-01-01", replicas=["r-none"]))
    (message,) = [t.get_text() for t in fig.axes[0].texts]
    assert message == (
        "no conversations in this range\n(2030-01-01 to the end (UTC), replica r-none)"
    )


def test_volume_stacks_every_conversation_in_its_category_colour(ds):
    fig = charts.volume(ds, freq="W")
    ax = fig.axes[0]
    conv = ds.conversations
    assert sum(b.get_height() for b in bars(ax)) == pytest.approx(len(conv))
    assert ax.get_title(loc="left") == "Conversations per week, by shutdown category"
    legend = {
        t.get_text(): h
        for t, h in zip(ax.get_legend().get_texts(), ax.get_legend().legend_handles, strict=True)
    }
    counts = conv["shutdown_category"].value_counts()
    for category, n in counts.items():
        if n:
            assert (
                to_hex(legend[category].get_facecolor()) == charts.CATEGORY_COLORS[category].lower()
            )
    weeks = metrics.volume(conv, freq="W")
    assert len(bars(ax)) >= len(weeks[weeks["conversations"] > 0])


def test_volume_by_day_has_a_bar_position_per_day(ds):
    ax = charts.volume(ds, freq="D").axes[0]
    days = metrics.volume(ds.conversations, freq="D")
    positions = {round(b.get_x() + b.get_width() / 2, 6) for b in ax.patches}
    assert len(positions) == len(days)
    assert ax.get_xlabel() == "day (UTC)"


def test_shutdown_reasons_sorted_with_shares_and_category_colours(ds):
    fig = charts.shutdown_reasons(ds, top=50)
    ax = fig.axes[0]
    table = metrics.shutdown_breakdown(ds.conversations, by="reason")
    table = table[table["count"] > 0]
    widths = [b.get_width() for b in bars(ax)]
    assert widths == sorted(widths, reverse=True)
    assert widths == list(table.sort_values("count", ascending=False)["count"])
    labels = [t.get_text() for t in ax.get_yticklabels()]
    first = table.iloc[0]
    assert labels[0] == first["shutdown_reason"]
    assert f"({first['count']})" in ax.texts[0].get_text()
    assert "%" in ax.texts[0].get_text()
    colour = to_hex(bars(ax)[0].get_facecolor())
    category = ta.events.shutdown_category(first["shutdown_reason"])
    assert colour == charts.CATEGORY_COLORS[category].lower()


def test_shutdown_reasons_sums_the_tail_into_one_bar(ds):
    table = metrics.shutdown_breakdown(ds.conversations, by="reason")
    n = int((table["count"] > 0).sum())
    assert n > 4
    ax = charts.shutdown_reasons(ds, top=4).axes[0]
    assert len(bars(ax)) == 4
    assert sum(b.get_width() for b in bars(ax)) == table["count"].sum()
    assert ax.get_yticklabels()[-1].get_text() == f"{n - 3} other reasons"


def test_durations_marks_the_limits(ds):
    ax = charts.durations(ds, max_call_duration=1800, participant_absent_timeout=300).axes[0]
    marks = {line.get_label(): line.get_xdata()[0] for line in ax.lines}
    assert marks["max_call_duration (30 min)"] == 30
    assert marks["participant_absent_timeout (5 min)"] == 5
    assert ax.get_xlabel() == "call duration (minutes)"
    timed = ds.conversations["duration_s"].notna().sum()
    assert sum(b.get_height() for b in bars(ax)) == timed


def test_durations_ecdf(ds):
    ax = charts.durations(ds, kind="ecdf").axes[0]
    assert ax.get_ylim()[1] == pytest.approx(1.02)
    with pytest.raises(ValueError, match="kind"):
        charts.durations(ds, kind="violin")


def test_role_colours_are_the_same_in_every_transcript_chart(ds):
    turns_ax = charts.turns_per_conversation(ds).axes[0]
    words_ax = charts.words_per_turn(ds).axes[0]
    for ax in (turns_ax, words_ax):
        legend = ax.get_legend()
        for text, handle in zip(legend.get_texts(), legend.legend_handles, strict=True):
            role = text.get_text().split()[0]
            assert to_hex(handle.get_facecolor()[:3]) == charts.ROLE_COLORS[role].lower()
    stats = metrics.turn_stats(ds.conversations).set_index("role")
    legend_text = " ".join(t.get_text() for t in words_ax.get_legend().get_texts())
    assert f"mean {stats.loc['user', 'words_per_turn']:.1f} words" in legend_text


def test_talk_ratio_draws_every_conversation_with_words(ds):
    ax = charts.talk_ratio(ds).axes[0]
    ratio = metrics.talk_ratio(ds.conversations)["user_share"].dropna()
    assert sum(b.get_height() for b in bars(ax)) == len(ratio)
    assert any(t.get_text() == f"median {ratio.median():.0%}" for t in ax.texts)


def test_duration_by_replica_one_box_per_replica(ds):
    ax = charts.duration_by_replica(ds).axes[0]
    stats = metrics.durations(ds.conversations, by="replica_id")
    labels = [t.get_text().split()[0] for t in ax.get_yticklabels()]
    assert sorted(labels) == sorted(stats["replica_id"])
    one = stats["replica_id"].iloc[0]
    fig = charts.duration_by_replica(ds.filter(replicas=[one]))
    (message,) = [t.get_text() for t in fig.axes[0].texts]
    assert message.startswith(f"one replica only ({one})")


def test_funnel_bars_are_the_funnel_metric(ds):
    ax = charts.funnel(ds).axes[0]
    table = metrics.funnel(ds.conversations)
    assert [b.get_width() for b in ax.patches] == list(table["count"])
    assert [t.get_text() for t in ax.get_yticklabels()] == list(table["stage"])


def test_perception_charts(ds):
    ax = charts.perception_terms(ds, top=7).axes[0]
    terms = metrics.perception_terms(ds.perception, top=7)
    assert [t.get_text() for t in ax.get_yticklabels()] == list(terms["term"])
    assert [b.get_width() for b in ax.patches] == pytest.approx(list(terms["share"]))
    cov = charts.perception_coverage(ds, freq="W").axes[0]
    received = cov.lines[0].get_ydata()
    assert np.nanmax(received) <= 1 and np.nanmin(received) >= 0
    assert len(received) == len(metrics.volume(ds.conversations, freq="W"))
    overall = ds.perception_summary()["coverage"].iloc[0]
    assert f"overall {overall:.0%}" in " ".join(texts(cov.figure))
    # The lines are the metric, period by period.
    weekly = metrics.perception_coverage(ds.conversations, ds.perception, freq="W")
    np.testing.assert_array_equal(received, weekly["coverage"].to_numpy())
    np.testing.assert_array_equal(cov.lines[1].get_ydata(), weekly["unavailable_share"])
    assert weekly["unavailable"].sum() > 0


def test_video_and_training_charts(ds):
    ax = charts.video_generation(ds).axes[0]
    ready = (ds.videos["status"] == "ready").sum()
    assert sum(b.get_height() for b in bars(ax)) == ready
    videos = metrics.video_generation(ds.videos).set_index("status")
    median = videos.loc["ready", "generation_median_s"]
    assert [line.get_xdata()[0] for line in ax.lines] == [median / 60]
    assert f"median {ta.stats.duration_text(median)}" in texts(ax.figure)
    ax = charts.replica_training(ds).axes[0]
    assert sum(b.get_width() for b in ax.patches) == len(ds.replicas)
    statuses = metrics.replica_training(ds.replicas)
    assert [t.get_text() for t in ax.get_yticklabels()] == list(statuses["status"])
    assert [b.get_width() for b in ax.patches] == list(statuses["count"])
    errors = metrics.replica_training(ds.replicas, by="error_message")
    assert len(errors) >= 1
    (note,) = [t for t in texts(ax.figure) if t.startswith("Most frequent errors:")]
    first = f"{errors['count'].iloc[0]:,} × {errors['error_message'].iloc[0][:20]}"
    assert note.splitlines()[1].startswith(first)


def test_draws_on_given_axes(ds):
    fig = Figure(figsize=(12, 4))
    left, right = fig.subplots(1, 2)
    assert charts.funnel(ds, ax=left) is fig
    assert charts.talk_ratio(ds, ax=right) is fig
    assert len(fig.axes) == 2 and left.patches and right.patches


def test_tables_are_accepted_and_other_data_refused(ds):
    fig = charts.shutdown_reasons(ds.conversations)
    assert bars(fig.axes[0])
    assert bars(charts.video_generation(ds.videos).axes[0])
    with pytest.raises(TypeError, match="needs a Dataset"):
        charts.perception_coverage(ds.conversations)
    with pytest.raises(TypeError, match="needs a Dataset .* or its conversations table, not list"):
        charts.volume([])


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "option", [{"since": "2026-10-01"}, {"until": "2026-10-01"}, {"replicas": ["r1"]}]
)
def test_charts_take_no_filters_of_their_own(name, option, ds):
    # Filter the data instead: charts.volume(ds.filter(since=...)).
    with pytest.raises(TypeError, match=f"unexpected keyword argument '{next(iter(option))}'"):
        charts.CHARTS[name](ds, **option)


def test_filters_restrict_the_chart(ds):
    replica = ds.conversations["replica_id"].value_counts().index[0]
    ax = charts.volume(ds.filter(replicas=[replica])).axes[0]
    expected = (ds.conversations["replica_id"] == replica).sum()
    assert sum(b.get_height() for b in bars(ax)) == pytest.approx(expected)


def test_palette_is_complete_and_distinct():
    assert set(charts.CATEGORY_COLORS) == set(SHUTDOWN_CATEGORIES)
    colours = list(charts.CATEGORY_COLORS.values())
    assert len(set(colours)) == len(colours)
    assert set(charts.OKABE_ITO.values()) <= {*colours, *charts.ROLE_COLORS.values(), "#E69F00"}
    assert charts.ROLE_COLORS["user"] != charts.ROLE_COLORS["assistant"]


def test_charts_do_not_change_the_callers_matplotlib_settings(ds):
    before = dict(plt.rcParams)
    charts.volume(ds)
    assert dict(plt.rcParams) == before


def test_unknown_freq_is_refused(ds):
    with pytest.raises(ValueError, match="freq"):
        charts.volume(ds, freq="M")


def test_chart_saves_to_png(ds, tmp_path):
    out = tmp_path / "volume.png"
    charts.volume(ds).savefig(out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- what callers say ------------------------------------------------------------------------------
CONTENT = list(charts.CONTENT_CHARTS)


def test_the_content_charts_are_apart_from_the_base_charts():
    assert CONTENT == ["sentiment_distribution", "sentiment_trend", "topic_shares", "top_questions"]
    assert not set(CONTENT) & set(charts.CHARTS)  # the base report and charts need no extra
    for name, f in charts.CONTENT_CHARTS.items():
        assert f is getattr(charts, name)


@pytest.mark.parametrize("name", CONTENT)
def test_content_chart_on_demo_data(name, ds):
    fig = charts.CONTENT_CHARTS[name](ds)
    (ax,) = fig.axes
    assert len(ax.get_title(loc="left")) > 10 and ax.get_xlabel()
    assert not any("in this range" in t for t in texts(fig)), texts(fig)
    assert len(ax.patches) + len(ax.lines) >= 2
    assert plt.get_fignums() == []


@pytest.mark.parametrize("name", CONTENT)
def test_content_chart_on_an_empty_database_says_so(name, empty_ds):
    fig = charts.CONTENT_CHARTS[name](empty_ds)
    (ax,) = fig.axes
    (message,) = [t.get_text() for t in ax.texts]
    assert message.startswith("no ") and "in this range" in message
    assert not bars(ax) and not ax.lines


def test_sentiment_distribution_counts_every_scored_call_in_its_labels_colour(ds):
    calls = ds.sentiment()
    fig = charts.sentiment_distribution(ds)
    ax = fig.axes[0]
    assert sum(b.get_height() for b in bars(ax)) == calls["mean"].notna().sum()
    for bar in bars(ax):
        center = bar.get_x() + bar.get_width() / 2
        label = "positive" if center >= 0.05 else "negative" if center <= -0.05 else "neutral"
        assert to_hex(bar.get_facecolor()) == charts.SENTIMENT_COLORS[label].lower()
    assert sorted(line.get_xdata()[0] for line in ax.lines) == [-0.05, 0.05]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    negative = int((calls["label"] == "negative").sum())
    assert any(t.startswith("negative: ") and f"({negative:,})" in t for t in legend)
    same = charts.sentiment_distribution(calls)  # the table instead of the Dataset
    assert [b.get_height() for b in bars(same.axes[0])] == [b.get_height() for b in bars(ax)]


def test_sentiment_trend_draws_the_weekly_rates(ds):
    from tavus_analytics.content import sentiment_rates

    ax = charts.sentiment_trend(ds).axes[0]
    rates = sentiment_rates(ds.sentiment(), ds.conversations, by="week")
    negative, positive = ax.lines
    assert np.allclose(negative.get_ydata(), rates["negative_rate"], equal_nan=True)
    assert np.allclose(positive.get_ydata(), rates["positive_rate"], equal_nan=True)
    assert to_hex(negative.get_color()) == charts.SENTIMENT_COLORS["negative"].lower()


def test_topic_shares_stack_each_week_to_one(ds):
    found = ds.topics(k=4)
    ax = charts.topic_shares(found).axes[0]
    tops = {}
    for bar in ax.patches:
        x = round(bar.get_x(), 6)
        tops[x] = max(tops.get(x, 0), bar.get_y() + bar.get_height())
    assert len(tops) == found.by_week["period"].nunique()
    assert all(top == pytest.approx(1.0) for top in tops.values())
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert len(legend) == 4 and legend[-1].startswith("0: ")
    message = texts(charts.topic_shares(ds, k=len(ds.conversations) + 1))
    assert any(t.startswith("no topics in this range:") for t in message)


def test_top_questions_draws_the_most_asked_groups(ds):
    found = ds.questions()
    ax = charts.top_questions(found, top=5).axes[0]
    assert len(bars(ax)) == min(5, len(found.groups))
    shown = [t.get_text() for t in ax.get_yticklabels()]
    assert shown[0].startswith(found.groups["example"].iloc[0][:30])
    labels = [t.get_text() for t in ax.texts]
    assert labels[0].startswith(f"{found.groups['calls'].iloc[0]:,} calls")
