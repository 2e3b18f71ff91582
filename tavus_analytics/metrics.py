"""The metrics teams running Tavus ask about, as functions of the tables of a Dataset.

Every function takes tables (``conversations``, ``perception``, ...) and returns a tidy
DataFrame, so that it works on any filtered or hand-made subset as well as on a whole
:class:`~tavus_analytics.dataset.Dataset` (whose methods of the same names call these).
Periods (``day``, ``week``) are UTC and placed by ``joined_at``, or by ``first_seen`` for a call
whose join never arrived; weeks start on Monday.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Literal

import numpy as np
import pandas as pd

__all__ = [
    "DEFAULT_MAX_CALL_DURATION_S",
    "STOP_WORDS",
    "analyses",
    "answer_delays",
    "calls_to_look_at",
    "canvas_outcomes",
    "durations",
    "every_period",
    "funnel",
    "guardrail_summary",
    "objective_completion",
    "objectives_missed",
    "output_fill",
    "output_values",
    "recording_failures",
    "perception_coverage",
    "perception_summary",
    "perception_terms",
    "period_of",
    "replica_training",
    "shutdown_breakdown",
    "talk_ratio",
    "turn_stats",
    "video_generation",
    "volume",
]

#: Tavus's default ``max_call_duration``, in seconds.
DEFAULT_MAX_CALL_DURATION_S = 3600

Split = Literal["replica", "day", "week"] | None


def _when(conversations: pd.DataFrame) -> pd.Series:
    """When each call happened: its join, else its first callback."""
    return conversations["joined_at"].fillna(conversations["first_seen"])


def _period(times: pd.Series, freq: str) -> pd.Series:
    """The UTC day or the Monday-starting week of each time (tz-aware, at midnight)."""
    day = times.dt.floor("D")
    if freq in ("D", "day"):
        return day
    if freq in ("W", "week"):
        return day - pd.to_timedelta(day.dt.day_of_week, unit="D")
    raise ValueError(f"unknown period {freq!r}: use 'D' (day) or 'W' (week)")


def _every_period(periods: pd.Series, freq: str) -> pd.DatetimeIndex:
    """Every period from the first to the last of ``periods`` (starts of days or weeks)."""
    step = pd.Timedelta(days=7 if freq in ("W", "week") else 1)
    return pd.date_range(periods.min(), periods.max(), freq=step)


def _split_column(conversations: pd.DataFrame, split: str | None) -> tuple[str | None, pd.Series]:
    if split is None:
        return None, pd.Series(index=conversations.index, dtype=object)
    if split in ("replica", "replica_id"):
        return "replica_id", conversations["replica_id"]
    if split in ("day", "week"):
        return split, _period(_when(conversations), split)
    if split in conversations.columns:
        return split, conversations[split]
    raise ValueError(f"unknown split {split!r}: use None, 'replica', 'day' or 'week'")


def shutdown_breakdown(
    conversations: pd.DataFrame,
    by: Literal["reason", "category"] = "reason",
    split: Split = None,
) -> pd.DataFrame:
    """Why calls ended: count and share of each shutdown reason or category.

    Only conversations with a shutdown count. Categories are all listed (count 0 included), in
    the order of :data:`~tavus_analytics.events.SHUTDOWN_CATEGORIES`; reasons are listed as sent,
    most frequent first.

    Parameters
    ----------
    conversations : DataFrame
        ``ds.conversations`` or a subset of it.
    by : {"reason", "category"}
        Group by the raw ``shutdown_reason`` or by ``shutdown_category``.
    split : {None, "replica", "day", "week"}
        Also split by replica or by period; shares then sum to 1 within each split.

    Returns
    -------
    pandas.DataFrame
        replica_id / day / week : str or datetime64[ns, UTC], the split (when asked).
        shutdown_reason or shutdown_category : str or category.
        count : int64, conversations.
        share : float64, 0 to 1, of the conversations with a shutdown (in the split).
    """
    if by not in ("reason", "category"):
        raise ValueError(f"by must be 'reason' or 'category', not {by!r}")
    key = "shutdown_reason" if by == "reason" else "shutdown_category"
    ended = conversations[conversations["shutdown_at"].notna()]
    split_name, split_values = _split_column(ended, split)
    frame = pd.DataFrame({key: ended[key]})
    if by == "reason":
        frame[key] = frame[key].fillna("(none)")
    keys = [key] if split_name is None else [split_name, key]
    if split_name is not None:
        frame[split_name] = split_values
    counts = frame.groupby(keys, observed=False, dropna=False).size().rename("count")
    out = counts.reset_index()
    if split_name is None:
        total = out["count"].sum()
        out["share"] = out["count"] / total if total else np.nan
    else:
        totals = out.groupby(split_name, dropna=False)["count"].transform("sum")
        out["share"] = (out["count"] / totals.where(totals > 0)).astype("float64")
    if by == "reason":
        out = out.sort_values(
            [*([split_name] if split_name else []), "count", key],
            ascending=[*([True] if split_name else []), False, True],
            kind="stable",
        )
    out["count"] = out["count"].astype("int64")
    return out.reset_index(drop=True)


def durations(
    conversations: pd.DataFrame,
    by: str | None = None,
    *,
    max_call_duration: float = DEFAULT_MAX_CALL_DURATION_S,
) -> pd.DataFrame:
    """How long calls last, in seconds, overall or per group.

    Parameters
    ----------
    conversations : DataFrame
        ``ds.conversations`` or a subset of it.
    by : {None, "replica_id", "day", "week", "shutdown_category"} or another column
        Grouping.
    max_call_duration : float
        Seconds; a call that lasted at least this long (or that Tavus ended with
        ``max_call_duration``) hit the limit.

    Returns
    -------
    pandas.DataFrame
        the group column (when ``by`` is given).
        count : int64, calls with a duration (a join and a shutdown).
        mean, median, p90, p95, max : float64, seconds.
        max_duration_share : float64, 0 to 1, share of those calls that hit
        ``max_call_duration``.
    """
    timed = conversations[conversations["duration_s"].notna()]
    hit = (timed["duration_s"] >= max_call_duration) | (
        timed["shutdown_category"] == "max_duration"
    ).fillna(False)
    frame = pd.DataFrame({"duration_s": timed["duration_s"], "hit": hit.astype("float64")})
    name, values = _split_column(timed, "replica_id" if by == "replica" else by)
    stats = {
        "count": ("duration_s", "size"),
        "mean": ("duration_s", "mean"),
        "median": ("duration_s", "median"),
        "p90": ("duration_s", lambda s: s.quantile(0.9)),
        "p95": ("duration_s", lambda s: s.quantile(0.95)),
        "max": ("duration_s", "max"),
        "max_duration_share": ("hit", "mean"),
    }
    if name is None:
        d = frame["duration_s"]
        out = pd.DataFrame(
            {
                "count": [len(d)],
                "mean": [d.mean()],
                "median": [d.median()],
                "p90": [d.quantile(0.9)],
                "p95": [d.quantile(0.95)],
                "max": [d.max()],
                "max_duration_share": [frame["hit"].mean()],
            }
        )
    else:
        frame[name] = values
        out = frame.groupby(name, observed=True).agg(**stats).reset_index()
    out["count"] = out["count"].astype("int64")
    for col in ("mean", "median", "p90", "p95", "max", "max_duration_share"):
        out[col] = out[col].astype("float64")
    return out


def turn_stats(conversations: pd.DataFrame, by: str | None = None) -> pd.DataFrame:
    """Turns and words per conversation and words per turn, for the user and the assistant.

    Only conversations whose transcript arrived count.

    Parameters
    ----------
    conversations : DataFrame
        ``ds.conversations`` or a subset of it.
    by : {None, "replica_id", "day", "week", ...}
        Optional grouping.

    Returns
    -------
    pandas.DataFrame
        the group column (when ``by`` is given).
        role : str, ``user`` or ``assistant``.
        conversations : int64, conversations with a transcript.
        turns : int64, all turns of that role.
        turns_per_conversation : float64, mean.
        turns_per_conversation_median : float64.
        words : int64, all words of that role.
        words_per_conversation : float64, mean.
        words_per_turn : float64, ``words / turns``.
        word_share : float64, 0 to 1, the role's share of the user's and the assistant's words
        (the user's is the talk ratio).
    """
    have = conversations[conversations["has_transcript"].fillna(False).astype(bool)]
    name, values = _split_column(have, "replica_id" if by == "replica" else by)
    rows = []
    groups = [(None, have)] if name is None else have.groupby(values, observed=True)
    for key, part in groups:
        all_words = part["user_words"].sum() + part["assistant_words"].sum()
        for role in ("user", "assistant"):
            turns = part[f"{role}_turns"].astype("float64")
            words = part[f"{role}_words"].astype("float64")
            row = {} if name is None else {name: key}
            row.update(
                role=role,
                conversations=len(part),
                turns=int(turns.sum()),
                turns_per_conversation=turns.mean(),
                turns_per_conversation_median=turns.median(),
                words=int(words.sum()),
                words_per_conversation=words.mean(),
                words_per_turn=words.sum() / turns.sum() if turns.sum() else np.nan,
                word_share=words.sum() / all_words if all_words else np.nan,
            )
            rows.append(row)
    columns = [
        *([name] if name else []),
        "role",
        "conversations",
        "turns",
        "turns_per_conversation",
        "turns_per_conversation_median",
        "words",
        "words_per_conversation",
        "words_per_turn",
        "word_share",
    ]
    out = pd.DataFrame(rows, columns=columns)
    for col in ("conversations", "turns", "words"):
        out[col] = out[col].astype("int64")
    for col in columns[-5:]:
        if col not in ("words",):
            out[col] = out[col].astype("float64")
    return out


def talk_ratio(conversations: pd.DataFrame) -> pd.DataFrame:
    """The user's share of the words of each conversation that has a transcript.

    Returns
    -------
    pandas.DataFrame
        conversation_id, replica_id : str.
        user_words, assistant_words : Int64.
        user_share : float64, 0 to 1, ``user_words / (user_words + assistant_words)``; NaN when
        nobody said a word.
    """
    have = conversations[conversations["has_transcript"].fillna(False).astype(bool)]
    out = have[["conversation_id", "replica_id", "user_words", "assistant_words"]].copy()
    total = (out["user_words"] + out["assistant_words"]).astype("float64")
    out["user_share"] = (out["user_words"].astype("float64") / total.where(total > 0)).astype(
        "float64"
    )
    return out.reset_index(drop=True)


def volume(
    conversations: pd.DataFrame,
    freq: Literal["D", "W"] = "D",
    by_replica: bool = False,
) -> pd.DataFrame:
    """Conversations per day or week, with completion, no-show and error rates.

    Every period from the first to the last is listed, with zeros where nothing happened.

    Parameters
    ----------
    conversations : DataFrame
        ``ds.conversations`` or a subset of it.
    freq : {"D", "W"}
        Days or Monday-starting weeks (UTC).
    by_replica : bool
        One row per period and replica.

    Returns
    -------
    pandas.DataFrame
        period : datetime64[ns, UTC], the start of the day or week.
        replica_id : str (when ``by_replica``).
        conversations : int64, calls placed in the period.
        ended : int64, calls with a shutdown.
        completed, no_show, failed : int64, calls of each outcome.
        completion_rate, no_show_rate, error_rate : float64, 0 to 1, of the ended calls (NaN when
        none ended).
    """
    period = _period(_when(conversations), freq)
    frame = pd.DataFrame(
        {
            "period": period,
            "replica_id": conversations["replica_id"].astype(object),
            "ended": conversations["shutdown_at"].notna(),
            "completed": (conversations["outcome"] == "completed").fillna(False),
            "no_show": (conversations["outcome"] == "no_show").fillna(False),
            "failed": (conversations["outcome"] == "failed").fillna(False),
        }
    )
    frame = frame[frame["period"].notna()]
    keys = ["period", "replica_id"] if by_replica else ["period"]
    counts = frame.groupby(keys, dropna=False).agg(
        conversations=("ended", "size"),
        ended=("ended", "sum"),
        completed=("completed", "sum"),
        no_show=("no_show", "sum"),
        failed=("failed", "sum"),
    )
    if len(frame):
        periods = _every_period(frame["period"], freq)
        if by_replica:
            reps = pd.unique(frame["replica_id"])
            index = pd.MultiIndex.from_product([periods, reps], names=keys)
        else:
            index = pd.Index(periods, name="period")
        counts = counts.reindex(index, fill_value=0)
    out = counts.reset_index()
    for col in ("conversations", "ended", "completed", "no_show", "failed"):
        out[col] = out[col].astype("int64")
    ended = out["ended"].where(out["ended"] > 0).astype("float64")
    out["completion_rate"] = out["completed"] / ended
    out["no_show_rate"] = out["no_show"] / ended
    out["error_rate"] = out["failed"] / ended
    if len(out):
        out["period"] = out["period"].astype("datetime64[ns, UTC]")
    else:
        out["period"] = pd.Series([], dtype="datetime64[ns, UTC]")
    return out


def funnel(conversations: pd.DataFrame) -> pd.DataFrame:
    """How far the callbacks of joined calls got: joined, shutdown, transcript, recording,
    perception.

    Each stage counts the joined calls that have it (stages are not nested: a call can have a
    perception analysis and no recording).

    Returns
    -------
    pandas.DataFrame
        stage : str, ``joined``, ``shutdown``, ``transcript``, ``recording``, ``perception``.
        count : int64, joined conversations that reached the stage.
        share : float64, 0 to 1, of the joined conversations.
    """
    joined = conversations[conversations["joined_at"].notna()]
    stages = {
        "joined": np.ones(len(joined), dtype=bool),
        "shutdown": joined["shutdown_at"].notna().to_numpy(),
        "transcript": joined["has_transcript"].fillna(False).to_numpy(dtype=bool),
        "recording": joined["has_recording"].fillna(False).to_numpy(dtype=bool),
        "perception": joined["has_perception"].fillna(False).to_numpy(dtype=bool),
    }
    n = len(joined)
    return pd.DataFrame(
        {
            "stage": list(stages),
            "count": np.array([int(v.sum()) for v in stages.values()], dtype=np.int64),
            "share": np.array(
                [v.sum() / n if n else np.nan for v in stages.values()], dtype=np.float64
            ),
        }
    )


# -- perception ----------------------------------------------------------------------------------
#: English stop words, plus the words every perception analysis repeats.
_STOP_WORDS_TEXT = """
    a about above after again against all also am an and any are aren't as at be because been
    before being below between both but by can can't cannot could couldn't did didn't do does
    doesn't doing don't down during each either etc few for from further had hadn't has hasn't
    have haven't having he he'd he'll he's her here here's hers herself him himself his how how's
    however i i'd i'll i'm i've if in into is isn't it it's its itself just let's may me might
    more most much must mustn't my myself no nor not of off often on once only or other ought our
    ours ourselves out over own per quite rather same seems shan't she she'd she'll she's should
    shouldn't so some such than that that's the their theirs them themselves then there there's
    these they they'd they'll they're they've this those through throughout to too under until up
    upon us very was wasn't we we'd we'll we're we've were weren't what what's when when's where
    where's whether which while who who's whom why why's will with within without won't would
    wouldn't yet you you'd you'll you're you've your yours yourself yourselves
    user user's users appears appear appeared seem seemed seeming visible visibly observed
    observation observations noted notable summary video call over last seconds taken during
    throughout overall occasionally slightly generally mostly somewhat likely possibly shows
    showing shown"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())
_WORD = re.compile(r"[^\W\d_][\w'’-]*[^\W_]|[^\W\d_]", re.UNICODE)


def _terms(text: str) -> list[str]:
    return [w for w in (m.group(0).lower() for m in _WORD.finditer(text)) if w not in STOP_WORDS]


def _analysis_body(perception: pd.DataFrame, section: str | None) -> pd.Series:
    """The text to analyse: one section, or every section but the preamble and the headers."""
    rows = perception[perception["available"].fillna(False).astype(bool)]
    if section is None:
        texts = [
            "\n".join(t for title, t in s.items() if title) if isinstance(s, dict) else ""
            for s in rows["sections"]
        ]
        return pd.Series(texts, index=rows.index, dtype=object)
    if section in ("appearance", "behavior", "emotions", "screen_activity"):
        return rows[section].astype(object)
    return rows["sections"].map(lambda s: s.get(section) if isinstance(s, dict) else None)


def perception_summary(
    conversations: pd.DataFrame, perception: pd.DataFrame, by: str | None = None
) -> pd.DataFrame:
    """Perception coverage and analysis length, overall or per replica.

    Parameters
    ----------
    conversations, perception : DataFrame
        ``ds.conversations`` and ``ds.perception`` (or subsets).
    by : {None, "replica_id"} or another column of ``conversations``
        Optional grouping.

    Returns
    -------
    pandas.DataFrame
        replica_id, or the ``by`` column (when ``by``).
        conversations : int64, calls.
        with_analysis : int64, calls with a perception analysis.
        unavailable : int64, calls with a ``perception_unavailable`` and no analysis.
        coverage : float64, 0 to 1, ``with_analysis / conversations``.
        analysis_words_mean, analysis_words_median : float64, words of an analysis.
    """
    key = "replica_id" if by in ("replica", "replica_id") else by
    extra = [] if key in (None, "replica_id") else [key]
    per = perception.merge(
        conversations[["conversation_id", "replica_id", *extra]], on="conversation_id", how="inner"
    )
    analyses_ = per[per["available"].fillna(False).astype(bool)]
    unavailable_ids = set(per.loc[~per["available"].fillna(False).astype(bool), "conversation_id"])
    conv = conversations[["conversation_id", "replica_id", "has_perception", *extra]].copy()
    conv["unavailable"] = conv["conversation_id"].isin(unavailable_ids) & ~conv[
        "has_perception"
    ].fillna(False).astype(bool)
    conv["with_analysis"] = conv["has_perception"].fillna(False).astype(bool)
    if key is None:
        conv["_all"] = 0
        analyses_ = analyses_.assign(_all=0)
        key_used = "_all"
    else:
        key_used = key
    counts = conv.groupby(key_used, dropna=False).agg(
        conversations=("conversation_id", "size"),
        with_analysis=("with_analysis", "sum"),
        unavailable=("unavailable", "sum"),
    )
    words = analyses_.groupby(key_used, dropna=False)["words"].agg(["mean", "median"])
    words = words.astype("float64").rename(
        columns={"mean": "analysis_words_mean", "median": "analysis_words_median"}
    )
    out = counts.join(words, how="left")
    out["coverage"] = out["with_analysis"] / out["conversations"].where(out["conversations"] > 0)
    out = out.reset_index()
    if key is None:
        out = out.drop(columns="_all")
        if out.empty:
            out = pd.DataFrame(
                {"conversations": [0], "with_analysis": [0], "unavailable": [0]}
            ).assign(analysis_words_mean=np.nan, analysis_words_median=np.nan, coverage=np.nan)
    cols = [
        *([key] if key else []),
        "conversations",
        "with_analysis",
        "unavailable",
        "coverage",
        "analysis_words_mean",
        "analysis_words_median",
    ]
    out = out[cols]
    for col in ("conversations", "with_analysis", "unavailable"):
        out[col] = out[col].astype("int64")
    for col in ("coverage", "analysis_words_mean", "analysis_words_median"):
        out[col] = out[col].astype("float64")
    return out


def perception_coverage(
    conversations: pd.DataFrame,
    perception: pd.DataFrame,
    freq: Literal["D", "W"] = "D",
) -> pd.DataFrame:
    """Perception coverage per day or week: of each period's calls, how many got an analysis and
    how many got ``perception_unavailable`` instead.

    Each row is :func:`perception_summary` of the conversations placed in that period (as
    :func:`volume` places them). Every period from the first to the last is listed, with zeros
    where nothing happened.

    Parameters
    ----------
    conversations, perception : DataFrame
        ``ds.conversations`` and ``ds.perception`` (or subsets).
    freq : {"D", "W"}
        Days or Monday-starting weeks (UTC).

    Returns
    -------
    pandas.DataFrame
        period : datetime64[ns, UTC], the start of the day or week.
        conversations : int64, calls placed in the period.
        with_analysis : int64, calls with a perception analysis.
        unavailable : int64, calls with a ``perception_unavailable`` and no analysis.
        coverage : float64, 0 to 1, ``with_analysis / conversations`` (NaN when no call).
        unavailable_share : float64, 0 to 1, ``unavailable / conversations`` (NaN when no call).
        analysis_words_mean, analysis_words_median : float64, words of an analysis.
    """
    period = _period(_when(conversations), freq)
    placed = conversations.assign(period=period)[period.notna().to_numpy(dtype=bool)]
    table = perception_summary(placed, perception, by="period").set_index("period")
    if len(placed):
        table = table.reindex(_every_period(placed["period"], freq))
    counts = ["conversations", "with_analysis", "unavailable"]
    table[counts] = table[counts].fillna(0).astype("int64")
    table["unavailable_share"] = (
        table["unavailable"] / table["conversations"].where(table["conversations"] > 0)
    ).astype("float64")
    out = table.rename_axis("period").reset_index()
    out["period"] = out["period"].astype("datetime64[ns, UTC]")
    return out[
        [
            "period",
            *counts,
            "coverage",
            "unavailable_share",
            "analysis_words_mean",
            "analysis_words_median",
        ]
    ]


def perception_terms(
    perception: pd.DataFrame,
    conversations: pd.DataFrame | None = None,
    *,
    n: int = 1,
    top: int = 20,
    by: str | None = None,
    section: str | None = None,
) -> pd.DataFrame:
    """The most frequent meaningful terms (``n=1``) or phrases (``n=2``, ``3``) of the analyses.

    Words are lower-cased; stop words (:data:`STOP_WORDS`: English function words and the words
    every analysis repeats) and numbers are dropped before phrases are formed. A term counts once
    per analysis, so ``share`` reads as "in this share of the analyses".

    Parameters
    ----------
    perception : DataFrame
        ``ds.perception`` (or a subset).
    conversations : DataFrame, optional
        ``ds.conversations``, needed for ``by="replica_id"``.
    n : int
        Words per term.
    top : int
        Terms kept (per group).
    by : {None, "replica_id"}
        Optional grouping.
    section : str, optional
        Only this section (``appearance``, ``behavior``, ``emotions``, ``screen_activity`` or a
        custom header); default: every section.

    Returns
    -------
    pandas.DataFrame
        replica_id : str (when ``by``).
        term : str.
        analyses : int64, analyses that contain it.
        share : float64, 0 to 1, of the analyses (of the group).
    """
    if n < 1:
        raise ValueError("n must be 1 or more")
    texts = _analysis_body(perception, section)
    key = "replica_id" if by in ("replica", "replica_id") else by
    if key is not None:
        if conversations is None:
            raise ValueError("perception_terms(by=...) needs the conversations table")
        groups_of = (
            perception.loc[texts.index, ["conversation_id"]]
            .merge(conversations[["conversation_id", key]], on="conversation_id", how="left")[key]
            .to_numpy(dtype=object)
        )
    else:
        groups_of = np.zeros(len(texts), dtype=object)
    counters: dict = {}
    totals: Counter = Counter()
    for group, text in zip(groups_of, texts, strict=True):
        if not isinstance(text, str):
            continue
        words = _terms(text)
        grams = {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}
        counters.setdefault(group, Counter()).update(grams)
        totals[group] += 1
    rows = []
    for group, counter in counters.items():
        for term, count in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:top]:
            row = {} if key is None else {key: group}
            row.update(term=term, analyses=count, share=count / totals[group])
            rows.append(row)
    cols = [*([key] if key else []), "term", "analyses", "share"]
    out = pd.DataFrame(rows, columns=cols)
    out["analyses"] = out["analyses"].astype("int64")
    out["share"] = out["share"].astype("float64")
    return out


def analyses(
    conversations: pd.DataFrame, perception: pd.DataFrame, section: str | None = None
) -> pd.DataFrame:
    """The perception analyses of a set of conversations, to read.

    Parameters
    ----------
    conversations, perception : DataFrame
        ``ds.conversations`` and ``ds.perception`` (or subsets: only calls in both are listed).
    section : str, optional
        Only this section (``appearance``, ``behavior``, ``emotions``, ``screen_activity`` or a
        custom header) instead of the whole Markdown.

    Returns
    -------
    pandas.DataFrame
        conversation_id, replica_id : str.
        joined_at, timestamp : datetime64[ns, UTC].
        text : str, the analysis (or the section), in call order.
    """
    rows = perception[perception["available"].fillna(False).astype(bool)]
    text = rows["analysis"] if section is None else _analysis_body(rows, section)
    frame = pd.DataFrame(
        {"conversation_id": rows["conversation_id"], "timestamp": rows["timestamp"], "text": text}
    )
    out = conversations[["conversation_id", "replica_id", "joined_at"]].merge(
        frame, on="conversation_id", how="inner"
    )
    out = out.sort_values(["joined_at", "timestamp"], kind="stable").reset_index(drop=True)
    return out[["conversation_id", "replica_id", "joined_at", "timestamp", "text"]]


# -- replicas and videos -------------------------------------------------------------------------
def _ranked(values: pd.Series, name: str, dtype: Any) -> pd.DataFrame:
    """Count and share of each value (NA included), most frequent first, ties in value order;
    the values as ``dtype`` (the table's text dtype)."""
    counts = values.groupby(values, dropna=False, sort=True).size()
    out = pd.DataFrame(
        {name: pd.Series(counts.index, dtype=object).astype(dtype), "count": counts.to_numpy()}
    )
    out = out.sort_values("count", ascending=False, kind="stable").reset_index(drop=True)
    total = out["count"].sum()
    out["count"] = out["count"].astype("int64")
    out["share"] = (out["count"] / total if total else out["count"]).astype("float64")
    return out


def replica_training(
    replicas: pd.DataFrame, by: Literal["status", "error_message"] = "status"
) -> pd.DataFrame:
    """Replica training outcomes: the training callbacks by status, or the errors by message.

    Parameters
    ----------
    replicas : DataFrame
        ``ds.replicas`` or a subset of it.
    by : {"status", "error_message"}
        Every training callback by ``status`` (``unknown`` when none was sent), or the callbacks
        with status ``error`` by ``error_message`` (NA when none was sent).

    Returns
    -------
    pandas.DataFrame
        status or error_message : str, most frequent first (ties in alphabetical order).
        count : int64, training callbacks.
        share : float64, 0 to 1, of the training callbacks (``by="status"``) or of the error
        callbacks (``by="error_message"``).
    """
    status = replicas["status"].astype(object)
    if by == "status":
        return _ranked(status.fillna("unknown"), "status", replicas["status"].dtype)
    if by == "error_message":
        errors = replicas.loc[(status == "error").to_numpy(dtype=bool), "error_message"]
        return _ranked(errors.astype(object), "error_message", errors.dtype)
    raise ValueError(f"by must be 'status' or 'error_message', not {by!r}")


def video_generation(videos: pd.DataFrame) -> pd.DataFrame:
    """Videos by status, with how long generation took for the ready ones.

    Parameters
    ----------
    videos : DataFrame
        ``ds.videos`` or a subset of it.

    Returns
    -------
    pandas.DataFrame
        status : str, the status of the video's latest callback (``unknown`` when none was
        sent), most frequent first (ties in alphabetical order).
        count : int64, videos.
        share : float64, 0 to 1, of the videos.
        generation_median_s, generation_p90_s : float64, seconds from ``created_at`` to
        ``updated_at`` (``generation_s``) of the ready videos; NaN for the other statuses, whose
        ``updated_at`` is the time of the error or of the deletion, not the end of generation.
    """
    status = videos["status"].astype(object).fillna("unknown")
    out = _ranked(status, "status", videos["status"].dtype)
    ready = videos.loc[(status == "ready").to_numpy(dtype=bool), "generation_s"].astype("float64")
    is_ready = (out["status"] == "ready").to_numpy(dtype=bool)
    out["generation_median_s"] = np.where(is_ready, ready.median(), np.nan).astype("float64")
    out["generation_p90_s"] = np.where(is_ready, ready.quantile(0.9), np.nan).astype("float64")
    return out


# -- Tavus 2026: objectives, guardrails, timed turns, canvas, recording failures ----------------
def _group_keys(
    conversations: pd.DataFrame, by: str | None, *, ended_only: bool = True
) -> tuple[list[str], pd.DataFrame]:
    """The (ended) calls with the column ``by`` asks for (``replica_id`` or ``period``)."""
    ended = conversations
    if ended_only:
        ended = conversations[conversations["shutdown_at"].notna().to_numpy(dtype=bool)]
    calls = pd.DataFrame(
        {
            "conversation_id": ended["conversation_id"].astype(object),
            "replica_id": ended["replica_id"].astype(object),
        }
    )
    if by is None:
        return [], calls
    if by in ("replica", "replica_id"):
        return ["replica_id"], calls
    if by in ("day", "week", "D", "W"):
        calls["period"] = _period(_when(ended), by).to_numpy()
        return ["period"], calls
    raise ValueError(f"unknown by {by!r}: use None, 'replica' or 'week'")


def objective_completion(
    conversations: pd.DataFrame, objectives: pd.DataFrame, by: str | None = None
) -> pd.DataFrame:
    """How often calls reach each objective, per objective (and replica, or period).

    Tavus sends only completions, so which calls *had* an objective is not in the callbacks:
    a call counts for an objective when it ended and its replica completed that objective at
    least once in the data (calls of replicas that never did are left out, not counted as
    misses). A completion the collector missed cannot be fetched later and counts as a miss.

    Parameters
    ----------
    conversations, objectives : DataFrame
        ``ds.conversations`` and ``ds.objectives`` (or subsets).
    by : {None, "replica", "week", "day"}
        Also per replica, or per period (placed by ``joined_at``).

    Returns
    -------
    pandas.DataFrame
        objective_name : str.
        replica_id : str, or period : datetime64[ns, UTC] (with ``by``).
        calls : int64, ended calls that count for the objective.
        completed : int64, of which completed it (one or more completions received).
        completion_rate : float64, 0 to 1 (NaN with no call).
    """
    keys, calls = _group_keys(conversations, by)
    columns = ["objective_name", *keys, "calls", "completed", "completion_rate"]
    done = objectives[["conversation_id", "objective_name"]].astype(object).drop_duplicates()
    if done.empty or calls.empty:
        out = pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
        return out.astype({"calls": "int64", "completed": "int64", "completion_rate": "float64"})
    replica_of = calls.set_index("conversation_id")["replica_id"]
    done = done[done["conversation_id"].isin(replica_of.index)]
    done["replica_id"] = done["conversation_id"].map(replica_of)
    uses = done[["objective_name", "replica_id"]].drop_duplicates()
    eligible = calls.merge(uses, on="replica_id")
    hit = set(zip(done["conversation_id"], done["objective_name"], strict=True))
    eligible["completed"] = [
        (c, o) in hit
        for c, o in zip(eligible["conversation_id"], eligible["objective_name"], strict=True)
    ]
    out = (
        eligible.groupby(["objective_name", *keys], dropna=False)
        .agg(calls=("completed", "size"), completed=("completed", "sum"))
        .reset_index()
    )
    out["calls"] = out["calls"].astype("int64")
    out["completed"] = out["completed"].astype("int64")
    out["completion_rate"] = (out["completed"] / out["calls"].where(out["calls"] > 0)).astype(
        "float64"
    )
    return out[columns]


def output_fill(objective_outputs: pd.DataFrame) -> pd.DataFrame:
    """How often the evaluator extracted each output variable.

    Returns
    -------
    pandas.DataFrame
        objective_name, variable : str.
        completions : int64, completions that sent the variable.
        found : int64, of which with a value (not ``"NOTFOUND"``, not null).
        fill_rate : float64, 0 to 1.
    """
    out = (
        objective_outputs.assign(found=objective_outputs["found"].astype("boolean").fillna(False))
        .groupby(["objective_name", "variable"], dropna=False)
        .agg(completions=("found", "size"), found=("found", "sum"))
        .reset_index()
    )
    out["completions"] = out["completions"].astype("int64")
    out["found"] = out["found"].astype("int64")
    out["fill_rate"] = (out["found"] / out["completions"]).astype("float64")
    return out


def output_values(
    objective_outputs: pd.DataFrame, variable: str | None = None, top: int = 10
) -> pd.DataFrame:
    """The distribution of the values extracted for each variable (its ``top`` most frequent;
    missing values left out; a list counts as its JSON text).

    Returns
    -------
    pandas.DataFrame
        objective_name, variable, value : str.
        count : int64, completions with this value.
        share : float64, 0 to 1, of the completions that found a value for the variable.
    """
    found = objective_outputs[objective_outputs["value"].notna().to_numpy(dtype=bool)]
    if variable is not None:
        found = found[(found["variable"] == variable).to_numpy(dtype=bool)]
    keys = ["objective_name", "variable"]
    counts = found.groupby([*keys, "value"], dropna=False).size().rename("count").reset_index()
    counts["share"] = counts["count"] / counts.groupby(keys)["count"].transform("sum")
    counts = counts.sort_values([*keys, "count", "value"], ascending=[True, True, False, True])
    out = counts.groupby(keys, sort=False).head(top).reset_index(drop=True)
    out["count"] = out["count"].astype("int64")
    out["share"] = out["share"].astype("float64")
    return out


def guardrail_summary(
    conversations: pd.DataFrame, guardrail_triggers: pd.DataFrame, by: str | None = None
) -> pd.DataFrame:
    """Guardrail triggers per 100 ended calls and the share of calls with any, per guardrail
    (and the row ``guardrail == "all"``), optionally per replica or period.

    Every delivery is a trigger (a guardrail sends the same body each time). A trigger the
    collector missed cannot be fetched later.

    Returns
    -------
    pandas.DataFrame
        guardrail : str, a guardrail's name, or ``all``.
        replica_id : str, or period : datetime64[ns, UTC] (with ``by``).
        calls : int64, ended calls.
        triggers : int64.
        calls_triggered : int64, calls with one trigger or more.
        triggers_per_100_calls : float64.
        share_of_calls : float64, 0 to 1, ``calls_triggered / calls``.
    """
    keys, calls = _group_keys(conversations, by)
    trig = guardrail_triggers[["conversation_id", "guardrail"]].astype(object)
    trig = trig.merge(calls, on="conversation_id")
    trig = pd.concat([trig, trig.assign(guardrail="all")], ignore_index=True)
    base = calls.groupby(keys).size().rename("calls") if keys else None
    names = ["all", *sorted(set(guardrail_triggers["guardrail"].dropna().astype(str)))]
    rows = []
    for name in names:
        mine = trig[trig["guardrail"] == name]
        if keys:
            triggers = mine.groupby(keys).size()
            hit = mine.groupby(keys)["conversation_id"].nunique()
            frame = pd.DataFrame({"calls": base})
            frame["triggers"] = triggers.reindex(frame.index, fill_value=0)
            frame["calls_triggered"] = hit.reindex(frame.index, fill_value=0)
            frame = frame.reset_index()
        else:
            frame = pd.DataFrame(
                {
                    "calls": [len(calls)],
                    "triggers": [len(mine)],
                    "calls_triggered": [mine["conversation_id"].nunique()],
                }
            )
        frame.insert(0, "guardrail", name)
        rows.append(frame)
    out = pd.concat(rows, ignore_index=True)
    for col in ("calls", "triggers", "calls_triggered"):
        out[col] = out[col].astype("int64")
    calls_n = out["calls"].where(out["calls"] > 0)
    out["triggers_per_100_calls"] = (100 * out["triggers"] / calls_n).astype("float64")
    out["share_of_calls"] = (out["calls_triggered"] / calls_n).astype("float64")
    return out[
        ["guardrail", *keys, "calls", "triggers", "calls_triggered"]
        + ["triggers_per_100_calls", "share_of_calls"]
    ]


def answer_delays(
    turns: pd.DataFrame, conversations: pd.DataFrame, by: str | None = None
) -> pd.DataFrame:
    """The answer delay a caller felt (end of the caller's turn to the start of the replica's
    answer, ``ds.turns.answer_delay_s``), over every timed answer, optionally per replica or
    period. Transcripts without timing are left out.

    Returns
    -------
    pandas.DataFrame
        replica_id : str, or period : datetime64[ns, UTC] (with ``by``).
        calls : int64, calls with a timed answer.
        answers : int64, timed answers.
        median_s, p90_s, mean_s : float64, seconds (p90 linear).
        overlap_share : float64, 0 to 1, answers that began before the caller had finished.
    """
    timed = turns[turns["answer_delay_s"].notna().to_numpy(dtype=bool)]
    keys: list[str] = []
    frame = pd.DataFrame(
        {
            "conversation_id": timed["conversation_id"].astype(object),
            "delay": timed["answer_delay_s"].astype("float64"),
        }
    )
    if by is not None:
        keys, calls = _group_keys(conversations, by, ended_only=False)
        frame = frame.merge(calls, on="conversation_id")
    columns = [*keys, "calls", "answers", "median_s", "p90_s", "mean_s", "overlap_share"]
    if frame.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in columns})
    grouped = frame.groupby(keys) if keys else frame.groupby(np.zeros(len(frame)))
    out = grouped.agg(
        calls=("conversation_id", "nunique"),
        answers=("delay", "size"),
        median_s=("delay", "median"),
        p90_s=("delay", lambda d: d.quantile(0.9)),
        mean_s=("delay", "mean"),
        overlap_share=("delay", lambda d: float((d < 0).mean())),
    )
    out = out.reset_index() if keys else out.reset_index(drop=True)
    out["calls"] = out["calls"].astype("int64")
    out["answers"] = out["answers"].astype("int64")
    return out[columns]


def canvas_outcomes(canvas_interactions: pd.DataFrame) -> pd.DataFrame:
    """What callers did with each kind of on-screen card: submit, skip and dismiss rates.

    Returns
    -------
    pandas.DataFrame
        component : str.
        interactions : int64, every interaction (heartbeats left out).
        submit, skip, dismiss, other : int64.
        submit_rate, skip_rate, dismiss_rate : float64, 0 to 1, of the interactions.
    """
    c = canvas_interactions[(canvas_interactions["type"] != "heartbeat").fillna(True)]
    kind = c["type"].astype(object).where(c["type"].isin(["submit", "skip", "dismiss"]), "other")
    table = pd.crosstab(c["component"].astype(object).fillna("unknown"), kind)
    for col in ("submit", "skip", "dismiss", "other"):
        if col not in table:
            table[col] = 0
    out = table[["submit", "skip", "dismiss", "other"]].astype("int64")
    out.columns.name = None
    out.insert(0, "interactions", out.sum(axis=1).astype("int64"))
    for col in ("submit", "skip", "dismiss"):
        out[f"{col}_rate"] = (out[col] / out["interactions"]).astype("float64")
    out = out.sort_values("interactions", ascending=False, kind="stable")
    out.index.name = "component"
    return out.reset_index()


def recording_failures(recording_failures: pd.DataFrame) -> pd.DataFrame:
    """Recordings Tavus could not copy into the customer's bucket, by ``error_code``.

    Returns
    -------
    pandas.DataFrame
        error_code : str, most frequent first (NA when none was sent).
        count : int64.
        share : float64, 0 to 1.
    """
    codes = recording_failures["error_code"]
    return _ranked(codes.astype(object), "error_code", codes.dtype)


# -- calls to look at ----------------------------------------------------------------------------
def objectives_missed(conversations: pd.DataFrame, objectives: pd.DataFrame) -> pd.DataFrame:
    """The objectives each call missed *within the set it was working through*.

    Callbacks do not say which objectives a call had, only which it completed. So a call is
    said to have missed objective B when it completed an objective A and, in another call of
    the same replica, A and B were both completed (they belong to one set, such as identify an
    issue, then resolve it), and no completion of B arrived for this call. Calls without any
    completion are not listed: their set is unknown. (:func:`objective_completion` counts more
    widely, every objective the replica completes anywhere.)

    Returns
    -------
    pandas.DataFrame
        conversation_id, replica_id, objective_name : str, one row per objective missed.
    """
    columns = ["conversation_id", "replica_id", "objective_name"]
    replica_of = conversations.set_index(conversations["conversation_id"].astype(object))[
        "replica_id"
    ].astype(object)
    done = objectives[["conversation_id", "objective_name"]].astype(object).drop_duplicates()
    done = done[done["conversation_id"].isin(replica_of.index).to_numpy(dtype=bool)]
    if done.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    done["replica_id"] = done["conversation_id"].map(replica_of)
    pairs = done.merge(done, on=["conversation_id", "replica_id"], suffixes=("", "_with"))
    together = pairs[["replica_id", "objective_name", "objective_name_with"]].drop_duplicates()
    expected = done.merge(together, on=["replica_id", "objective_name"])
    expected = expected[["conversation_id", "replica_id", "objective_name_with"]].rename(
        columns={"objective_name_with": "objective_name"}
    )
    missed = expected.merge(done, on=columns, how="left", indicator=True)
    missed = missed[(missed["_merge"] == "left_only").to_numpy(dtype=bool)][columns]
    return missed.drop_duplicates().sort_values(columns, kind="stable").reset_index(drop=True)


#: The reasons of :func:`calls_to_look_at`, in the order they are listed.
LOOK_AT_REASONS = (
    "failed",
    "shortest",
    "guardrail triggered",
    "missed objectives",
    "slowest answers",
    "criteria failed",
)


def calls_to_look_at(
    conversations: pd.DataFrame,
    objectives: pd.DataFrame,
    *,
    evaluation: pd.DataFrame | None = None,
    n: int = 5,
) -> pd.DataFrame:
    """The calls worth reading, at most ``n`` per reason.

    Reasons, each ranked (ties by the latest call first, then the id):

    - ``failed``: outcome ``failed``, the latest first;
    - ``shortest``: completed calls by duration, the shortest first;
    - ``guardrail triggered``: calls with a guardrail trigger, the most triggers first;
    - ``missed objectives``: calls that completed some objectives of a set but not the others
      (:func:`objectives_missed`), the most missed first;
    - ``slowest answers``: by the 90th percentile of the call's answer delays, the slowest
      first;
    - ``criteria failed`` (with ``evaluation``, from ``ds.evaluate``): calls judged
      ``failure``, the lowest score first.

    A call may be listed for several reasons.

    Parameters
    ----------
    conversations, objectives : DataFrame
        ``ds.conversations`` and ``ds.objectives`` (or subsets).
    evaluation : DataFrame, optional
        ``ds.evaluate(criteria)``, for the criteria's failures.
    n : int
        Calls per reason, at most.

    Returns
    -------
    pandas.DataFrame
        reason : str, one of :data:`LOOK_AT_REASONS`.
        rank : int64, 1 for the first call of the reason.
        conversation_id, replica_id : str.
        joined_at : datetime64[ns, UTC], the join (else the first callback).
        value : float64, what ranks the calls: seconds for ``shortest`` and ``slowest
        answers``, triggers, objectives missed, the criteria's score; NaN for ``failed``.
        detail : str, why, in words.
    """
    columns = ["reason", "rank", "conversation_id", "replica_id", "joined_at", "value", "detail"]
    conv = conversations
    when = _when(conv).rename("joined_at")
    base = pd.DataFrame(
        {
            "conversation_id": conv["conversation_id"].astype(object),
            "replica_id": conv["replica_id"].astype(object),
            "joined_at": when,
            "order": when.fillna(pd.Timestamp(0, tz="UTC")),
        }
    )
    outcome = conv["outcome"].astype(object)
    picks: list[pd.DataFrame] = []

    def pick(reason: str, mask: Any, value: Any, ascending: bool | None, detail: list) -> None:
        mask = np.asarray(mask, dtype=bool)
        rows = base[mask].copy()
        rows["value"] = np.asarray(value, dtype="float64")[mask]
        rows["detail"] = [d for d, m in zip(detail, mask, strict=True) if m]
        keys, order = ["order", "conversation_id"], [False, True]
        if ascending is not None:
            keys, order = ["value", *keys], [ascending, *order]
        rows = rows.sort_values(keys, ascending=order, kind="stable").head(max(n, 0))
        rows["reason"] = reason
        rows["rank"] = np.arange(1, len(rows) + 1, dtype="int64")
        picks.append(rows)

    total = len(conv)
    nan = np.full(total, np.nan)
    reason_text = conv["shutdown_reason"].astype(object)
    pick(
        "failed",
        (outcome == "failed").to_numpy(dtype=bool),
        nan,
        None,
        [str(r) if isinstance(r, str) else "no readable reason" for r in reason_text],
    )
    duration = conv["duration_s"].to_numpy(dtype="float64")
    pick(
        "shortest",
        (outcome == "completed").to_numpy(dtype=bool) & ~np.isnan(duration),
        duration,
        True,
        [f"lasted {d:.0f} s" if d == d else "" for d in duration],
    )
    triggers = conv["guardrail_triggers"].fillna(0).to_numpy(dtype="float64")
    pick(
        "guardrail triggered",
        triggers > 0,
        triggers,
        False,
        [f"{t:.0f} trigger{'s' if t != 1 else ''}" for t in triggers],
    )
    missed = objectives_missed(conv, objectives)
    names = missed.groupby("conversation_id")["objective_name"].agg(lambda s: ", ".join(s))
    count = conv["conversation_id"].astype(object).map(missed["conversation_id"].value_counts())
    count = count.fillna(0).to_numpy(dtype="float64")
    listed = conv["conversation_id"].astype(object).map(names)
    pick(
        "missed objectives",
        count > 0,
        count,
        False,
        [f"missed {x}" if isinstance(x, str) else "" for x in listed],
    )
    p90 = conv["answer_delay_p90_s"].to_numpy(dtype="float64")
    median = conv["answer_delay_median_s"].to_numpy(dtype="float64")
    pick(
        "slowest answers",
        ~np.isnan(p90),
        p90,
        False,
        [f"answer delay p90 {a:.2f} s, median {b:.2f} s" for a, b in zip(p90, median, strict=True)],
    )
    if evaluation is not None:
        judged = evaluation.set_index(evaluation["conversation_id"].astype(object))
        judged = judged.reindex(conv["conversation_id"].astype(object))
        failed = (judged["result"].astype(object) == "failure").to_numpy(dtype=bool)
        score = judged["score"].to_numpy(dtype="float64")
        pick(
            "criteria failed",
            failed,
            score,
            True,
            [
                f"{r}; score {s:.2f}" if s == s else str(r)
                for r, s in zip(judged["rule"].astype(object), score, strict=True)
            ],
        )
    out = pd.concat(picks, ignore_index=True) if picks else pd.DataFrame(columns=columns)
    return out[columns].astype(
        {
            "reason": conv["conversation_id"].dtype,
            "conversation_id": conv["conversation_id"].dtype,
            "replica_id": conv["replica_id"].dtype,
            "detail": conv["conversation_id"].dtype,
            "joined_at": "datetime64[ns, UTC]",
            "rank": "int64",
            "value": "float64",
        }
    )


# -- periods, for other modules ------------------------------------------------------------------
def period_of(conversations: pd.DataFrame, freq: Literal["D", "W"] = "W") -> pd.Series:
    """The UTC day or Monday-starting week each conversation is placed in (by ``joined_at``, else
    ``first_seen``), as every metric here places it: datetime64[ns, UTC] at midnight."""
    return _period(_when(conversations), freq)


def every_period(periods: pd.Series, freq: Literal["D", "W"] = "W") -> pd.DatetimeIndex:
    """Every day or week from the first to the last of ``periods`` (from :func:`period_of`)."""
    return _every_period(periods, freq)
