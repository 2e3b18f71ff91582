"""How long content analysis takes per 1,000 conversations, and how well it finds what the demo
planted.

On a demo database of ``--conversations`` conversations (default 100,000; made once with
``tavus_analytics.demo.write(db, conversations=N, seed=0)`` and cached under
``benchmarks/out/``, as the load benchmark does), with an empty cache folder:

``analyses`` (one process, cold: every step computed, timed after the imports, in this order)
    ``load``: ``ds.conversations`` and ``ds.turns``, the tables every analysis reads (the
    baseline); ``languages``; ``sentiment`` (turns and calls, after the languages);
    ``topics`` (``k=8``); ``questions``; ``keywords`` (YAKE, on ``--keyword-sample`` calls,
    projected: keywords are made one call at a time); then ``reopen``: a new Dataset on the
    same database reading every result back from the cache.
``command`` (whole processes)
    ``tavus-analytics content`` with an empty cache folder (cold), then again (warm).

Every figure is also given per 1,000 conversations. The quality section compares the results
with what the demo planted (recovered from the sentences of ``tavus_analytics.demo_callers``):
the purity of the topics against the planted themes, the labels and drift of each planted mood,
the languages of the planted Spanish and French calls, and the pairwise precision and recall of
the question groups against the planted rewordings.

Example:

    .venv/bin/python benchmarks/bench_content.py                        # 100,000 conversations
    .venv/bin/python benchmarks/bench_content.py --conversations 20000  # a quicker run
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def database(conversations: int) -> Path:
    """The cached demo database of ``conversations`` conversations (the load benchmark's)."""
    sys.path.insert(0, str(HERE))
    from bench_load import database as cached

    return cached(conversations)


# -- the analyses, in a child process --------------------------------------------------------------
def run_analyses(db: str, keyword_sample: int, k: int) -> dict:
    """Time each analysis, cold, in this process; then a reopen from the cache."""
    import tavus_analytics as ta
    from tavus_analytics import content

    steps: dict[str, float] = {}
    ds = ta.load(db)
    start = time.perf_counter()
    conversations = ds.conversations
    turns = ds.turns
    steps["load"] = time.perf_counter() - start
    for name, step in (
        ("languages", ds.languages),
        ("sentiment", lambda: (ds.sentiment("turn"), ds.sentiment())),
        ("topics", lambda: ds.topics(k=k)),
        ("questions", ds.questions),
    ):
        start = time.perf_counter()
        step()
        steps[name] = time.perf_counter() - start
    calls = ds.sentiment()
    sample = set(calls["conversation_id"].head(keyword_sample))
    some = turns[turns["conversation_id"].isin(sample).to_numpy(dtype=bool)]
    start = time.perf_counter()
    content.keywords(some, ds.languages())
    keyword_s = time.perf_counter() - start
    again = ta.load(db)
    start = time.perf_counter()
    again.languages(), again.sentiment(), again.topics(k=k), again.questions()
    steps["reopen"] = time.perf_counter() - start
    scored = ds.sentiment("turn")
    return {
        "steps": steps,
        "keywords_sample": len(sample),
        "keywords_s": keyword_s,
        "conversations": len(conversations),
        "transcripts": len(ds.languages()),
        "turns_scored": len(scored),
        "texts_scored": int(_distinct_scored(turns, scored)),
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _distinct_scored(turns, scored) -> int:
    """Distinct texts VADER scored (a text said many times is scored once)."""
    keyed = turns[["conversation_id", "turn", "content"]].merge(
        scored.loc[scored["compound"].notna(), ["conversation_id", "turn"]],
        on=["conversation_id", "turn"],
    )
    return keyed["content"].nunique()


def run_quality(db: str, k: int) -> dict:
    """How the results compare with what the demo planted."""
    import pandas as pd

    import tavus_analytics as ta
    from tavus_analytics import demo_callers as dc

    ds = ta.load(db)
    truth = _planted(ds.turns, dc)
    out: dict = {}
    # Topics: purity of the dominant topic against the planted theme (English calls).
    topics = ds.topics(k=k).calls.merge(truth, on="conversation_id")
    topics = topics[topics["topic"].notna() & topics["theme"].notna()]
    table = pd.crosstab(topics["topic"], topics["theme"])
    out["topic_purity"] = float(table.max(axis=1).sum() / table.values.sum())
    out["topic_themes"] = int(truth.loc[truth["language"] == "en", "theme"].nunique())
    # Sentiment: labels and drift per planted mood (English calls).
    calls = ds.sentiment().merge(truth, on="conversation_id")
    calls = calls[calls["mean"].notna()]
    moods = {}
    for mood, part in calls.groupby("mood"):
        labels = part["label"].astype(object).value_counts(normalize=True)
        moods[mood] = {
            "calls": len(part),
            **{name: float(labels.get(name, 0.0)) for name in ("negative", "neutral", "positive")},
            "drift_median": float(part["drift"].median()),
        }
    out["moods"] = moods
    # Languages: the planted Spanish and French calls.
    langs = ds.languages().merge(truth, on="conversation_id", suffixes=("", "_planted"))
    planted = langs[langs["language_planted"].isin(["es", "fr"])]
    out["language_recall"] = float((planted["language"] == planted["language_planted"]).mean())
    english = langs[langs["language_planted"] == "en"]
    out["english_recall"] = float((english["language"] == "en").mean())
    # Questions: pairwise precision and recall of the groups over the planted wordings.
    asked = ds.questions().asked
    intent = {
        wording: f"{theme}/{lang}/{i}"
        for theme, by in dc.THEMES.items()
        for lang, text in by.items()
        for i, wordings in enumerate(text["questions"])
        for wording in wordings
    }
    asked = asked[asked["question"].isin(intent) & asked["group"].notna()]
    wordings = asked.drop_duplicates("question")
    labels = dict(zip(wordings["question"], wordings["group"].astype(int), strict=True))
    tp = fp = fn = 0
    for a, b in itertools.combinations(sorted(labels), 2):
        same_intent, same_group = intent[a] == intent[b], labels[a] == labels[b]
        tp += same_intent and same_group
        fp += same_group and not same_intent
        fn += same_intent and not same_group
    out["question_precision"] = tp / (tp + fp) if tp + fp else float("nan")
    out["question_recall"] = tp / (tp + fn) if tp + fn else float("nan")
    out["question_wordings"] = len(labels)
    out["question_intents"] = len({intent[w] for w in labels})
    out["question_groups"] = len(set(labels.values()))
    return out


def _planted(turns, dc):
    """Per call: the planted theme (most of its sentences), mood and language, recovered from
    the sentences the demo drew them from."""
    import pandas as pd

    theme_of, language_of = {}, {}
    for theme, by in dc.THEMES.items():
        for lang, text in by.items():
            for line in text["statements"] + [w for q in text["questions"] for w in q]:
                theme_of.setdefault(line, theme)
                language_of.setdefault(line, lang)
    m = dc._MOOD_LINES
    sour = set(m["sour_middle"]) | set(m["sour_end"]) | set(dc._LAST_WORDS[("en", "sour")])
    upset = set(m["upset_start"]) | set(dc._LAST_WORDS[("en", "relieved")])
    happy = set(m["happy"]) | set(dc._LAST_WORDS[("en", "delighted")])
    user = turns[(turns["role"] == "user").to_numpy(dtype=bool) & turns["content"].notna()]
    rows = []
    split = re.compile(r"(?<=[.!?…])\s+")
    for cid, part in user.groupby(user["conversation_id"].astype(object), sort=False):
        sentences = [s for text in part["content"] for s in split.split(text.strip())]
        themes = pd.Series([theme_of[s] for s in sentences if s in theme_of], dtype=object)
        langs = pd.Series([language_of[s] for s in sentences if s in language_of], dtype=object)
        if any(s in sour for s in sentences):
            mood = "sour"
        elif any(s in upset for s in sentences):
            mood = "relieved"
        elif any(s in happy for s in sentences):
            mood = "delighted"
        else:
            mood = "neutral"
        rows.append(
            (
                cid,
                themes.value_counts().index[0] if len(themes) else None,
                mood,
                langs.value_counts().index[0] if len(langs) else None,
            )
        )
    return pd.DataFrame(rows, columns=["conversation_id", "theme", "mood", "language"])


# -- the driver -----------------------------------------------------------------------------------
def child(args: list[str], cache: Path, timeout: float) -> dict:
    env = {**os.environ, "TAVUS_ANALYTICS_CACHE_DIR": str(cache), "MPLBACKEND": "Agg"}
    done = subprocess.run(
        [sys.executable, __file__, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def command(db: Path, cache: Path, timeout: float) -> float:
    env = {**os.environ, "TAVUS_ANALYTICS_CACHE_DIR": str(cache)}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "tavus_analytics.cli", "content", "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
        check=False,
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"tavus-analytics content failed:\n{done.stderr[-3000:]}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--db", help="A demo database to use instead of the cached one.")
    parser.add_argument("--keyword-sample", type=int, default=2000)
    parser.add_argument("--topics", type=int, default=8)
    parser.add_argument("--skip-command", action="store_true")
    parser.add_argument("--timeout", type=float, default=1800, help="Seconds per process at most.")
    parser.add_argument("--child", choices=["analyses", "quality"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "analyses":
        print(json.dumps(run_analyses(args.db, args.keyword_sample, args.topics)))
        return 0
    if args.child == "quality":
        print(json.dumps(run_quality(args.db, args.topics)))
        return 0

    db = Path(args.db) if args.db else database(args.conversations)
    common = ["--db", str(db), "--keyword-sample", str(args.keyword_sample)]
    common += ["--topics", str(args.topics)]
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        found = child(["--child", "analyses", *common], cache, args.timeout)
        quality = child(["--child", "quality", *common], cache, args.timeout)
        cold = warm = None
        if not args.skip_command:
            fresh = Path(tmp) / "fresh-cache"
            cold = command(db, fresh, args.timeout)
            warm = command(db, fresh, args.timeout)
    n = found["conversations"]
    per = 1000 / n
    steps = found["steps"]
    print(
        f"\ncontent analysis of {n:,} conversations ({found['transcripts']:,} transcripts, "
        f"{found['turns_scored']:,} turns scored, {found['texts_scored']:,} distinct texts; "
        f"{db.stat().st_size / 2**20:,.0f} MiB database); peak {found['peak_mib']:,.0f} MiB"
    )
    print(f"{'step (cold)':28} {'seconds':>9} {'s per 1,000':>12} {'x load':>7}")
    base = steps["load"]
    for name, seconds in steps.items():
        if name == "reopen":
            continue
        print(f"{name:28} {seconds:9.1f} {seconds * per:12.2f} {seconds / base:7.2f}")
    analyses = sum(s for name, s in steps.items() if name not in ("load", "reopen"))
    print(f"{'all four analyses':28} {analyses:9.1f} {analyses * per:12.2f} {analyses / base:7.2f}")
    kw = found["keywords_s"] / found["keywords_sample"] * 1000
    print(
        f"{'keywords (YAKE, projected)':28} {kw * n / 1000:9.1f} {kw:12.2f} "
        f"{kw * n / 1000 / base:7.2f}  ({found['keywords_sample']:,} calls measured)"
    )
    print(f"{'reopen (from the cache)':28} {steps['reopen']:9.1f} {steps['reopen'] * per:12.2f}")
    vader = steps["sentiment"] / max(found["texts_scored"], 1) * 1e6
    print(
        f"sentiment: {vader:,.0f} us per distinct text; transcripts whose turns never repeat "
        f"({found['turns_scored']:,} texts here) would take about "
        f"{vader * found['turns_scored'] / 1e6:,.0f} s"
    )
    if cold is not None:
        print(f"tavus-analytics content: {cold:.1f} s cold, {warm:.1f} s warm (whole processes)")
    q = quality
    print(f"\nquality against what the demo planted (topics k={args.topics}):")
    print(f"topics: purity {q['topic_purity']:.3f} against {q['topic_themes']} planted themes")
    print(
        f"languages: {q['language_recall']:.3f} of the Spanish and French calls and "
        f"{q['english_recall']:.3f} of the English ones identified as planted"
    )
    for mood, m in q["moods"].items():
        print(
            f"sentiment, {mood:9} calls ({m['calls']:,}): {m['negative']:.0%} negative, "
            f"{m['neutral']:.0%} neutral, {m['positive']:.0%} positive; median drift "
            f"{m['drift_median']:+.2f}"
        )
    print(
        f"questions: {q['question_wordings']} planted wordings of {q['question_intents']} "
        f"questions in {q['question_groups']} groups; pairs grouped right (precision) "
        f"{q['question_precision']:.2f}, right pairs grouped (recall) {q['question_recall']:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
