"""The figures of ``tavus-analytics stats``: a summary of a
:class:`~tavus_analytics.dataset.Dataset`.

:func:`summary` returns plain Python values (JSON-ready); :func:`render` lays them out for a
terminal.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

TOP_REASONS = 5


def _number(value: Any) -> float | None:
    if value is None or pd.isna(value):
        return None
    return float(value)


def _iso(value: Any) -> str | None:
    if value is None or pd.isna(value):
        return None
    return pd.Timestamp(value).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def summary(ds) -> dict[str, Any]:
    """The terminal summary's figures for a dataset (already filtered as wanted).

    Parameters
    ----------
    ds : Dataset
        From :func:`tavus_analytics.load`.

    Returns
    -------
    dict
        - ``conversations`` : int, conversations seen; ``ended`` : int, those with a shutdown;
          ``in_progress`` : int, joined and not yet shut down.
        - ``outcomes`` : dict, ended conversations by outcome (``completed``, ``no_show``,
          ``failed``, ``unknown``).
        - ``completion_rate`` : float or None, completed / ended (None when none ended).
        - ``duration_median_s``, ``duration_p90_s`` : float or None, seconds from join to
          shutdown, over conversations that have both.
        - ``shutdown_reasons`` : list of ``{"category", "count", "share"}``, the most frequent
          categories first (at most 5), share of ended conversations with a reason.
        - ``transcripts`` : int, conversations with a transcript; ``user_turns``,
          ``assistant_turns`` : int, messages of each role in them;
          ``turns_median`` : float or None, user plus assistant messages per transcript.
        - ``perception`` : int, conversations with a perception analysis;
          ``perception_coverage`` : float or None, their share of all conversations.
        - ``recordings`` : int, conversations with a recording.
        - ``replicas`` : int, distinct replicas of the conversations.
        - ``callbacks`` : int, callbacks in the dataset; ``last_received_at`` : str or None, the
          latest arrival among them (ISO 8601 UTC).
        - ``cache`` : ``{"path", "bytes"}``, where what loading derives is kept and its size
          (None when the dataset keeps nothing).
    """
    conv = ds.conversations
    n = len(conv)
    outcome = conv["outcome"].astype(object)
    ended = int(outcome.notna().sum())
    outcomes = {k: int((outcome == k).sum()) for k in ("completed", "no_show", "failed", "unknown")}
    status = conv["status"].astype(object)
    durations = conv["duration_s"].dropna().astype(float)
    reasons = conv["shutdown_category"].astype(object).dropna().value_counts()
    with_reason = int(reasons.sum())
    top = [
        {"category": str(cat), "count": int(count), "share": count / with_reason}
        for cat, count in reasons.head(TOP_REASONS).items()
    ]
    has_transcript = conv["has_transcript"].fillna(False).astype(bool)
    user = conv["user_turns"].where(has_transcript)
    assistant = conv["assistant_turns"].where(has_transcript)
    per_call = (user.fillna(0) + assistant.fillna(0))[has_transcript]
    perception = int(conv["has_perception"].fillna(False).astype(bool).sum())
    events = ds.events
    return {
        "conversations": n,
        "ended": ended,
        "in_progress": int((status == "in_progress").sum()),
        "outcomes": outcomes,
        "completion_rate": outcomes["completed"] / ended if ended else None,
        "duration_median_s": _number(durations.median()) if len(durations) else None,
        "duration_p90_s": _number(durations.quantile(0.9)) if len(durations) else None,
        "shutdown_reasons": top,
        "transcripts": int(has_transcript.sum()),
        "user_turns": int(user.fillna(0).sum()),
        "assistant_turns": int(assistant.fillna(0).sum()),
        "turns_median": _number(per_call.median()) if len(per_call) else None,
        "perception": perception,
        "perception_coverage": perception / n if n else None,
        "recordings": int(conv["has_recording"].fillna(False).astype(bool).sum()),
        "replicas": int(conv["replica_id"].dropna().nunique()),
        "callbacks": len(events),
        "last_received_at": _iso(events["received_at"].max()) if len(events) else None,
        "cache": None if ds.cache is None else _cache(ds.cache),
    }


def _cache(kept) -> dict[str, Any]:
    return {"path": str(kept.root), "bytes": kept.size()}


def duration_text(seconds: float | None) -> str:
    """``754.2`` as ``12m 34s``; ``None`` as ``-``.

    >>> duration_text(3725)
    '1h 02m 05s'
    """
    if seconds is None or math.isnan(seconds):
        return "-"
    total = int(round(seconds))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h}h {m:02d}m {s:02d}s"
    if m:
        return f"{m}m {s:02d}s"
    return f"{s}s"


def _pct(share: float | None) -> str:
    return "-" if share is None else f"{share:.1%}"


def render(figures: dict[str, Any], *, title: str = "") -> str:
    """The figures of :func:`summary` as aligned lines for a terminal."""
    f = figures
    o = f["outcomes"]
    lines = []
    if title:
        lines.append(("", title))
    lines.append(
        (
            "Conversations",
            f"{f['conversations']:,} ({f['ended']:,} ended, {f['in_progress']:,} in progress)",
        )
    )
    lines.append(
        (
            "Completion rate",
            f"{_pct(f['completion_rate'])} of ended calls ({o['completed']:,} completed, "
            f"{o['no_show']:,} no-show, {o['failed']:,} failed, {o['unknown']:,} unknown)",
        )
    )
    lines.append(
        (
            "Duration",
            f"median {duration_text(f['duration_median_s'])}, "
            f"p90 {duration_text(f['duration_p90_s'])}",
        )
    )
    reasons = ", ".join(
        f"{r['category']} {r['share']:.0%} ({r['count']:,})" for r in f["shutdown_reasons"]
    )
    lines.append(("Shutdown reasons", reasons or "-"))
    turns = "-"
    if f["transcripts"]:
        median = f["turns_median"]
        turns = (
            f"{f['user_turns'] + f['assistant_turns']:,} in {f['transcripts']:,} transcripts "
            f"({f['user_turns']:,} user, {f['assistant_turns']:,} assistant; median "
            f"{median:g} per call)"
        )
    lines.append(("Turns", turns))
    lines.append(
        (
            "Perception",
            f"{_pct(f['perception_coverage'])} of conversations ({f['perception']:,})",
        )
    )
    lines.append(("Recordings", f"{f['recordings']:,}"))
    lines.append(("Replicas", f"{f['replicas']:,}"))
    last = f["last_received_at"]
    shown = "never" if last is None else last[:19].replace("T", " ") + " UTC"
    lines.append(("Last callback", f"{shown} ({f['callbacks']:,} callbacks)"))
    if f.get("cache"):
        kept = f["cache"]
        lines.append(("Cache", f"{kept['path']} ({kept['bytes'] / 2**20:,.1f} MiB)"))
    width = max(len(k) for k, _ in lines)
    return "\n".join(f"{k:<{width}}  {v}" if k else v for k, v in lines)
