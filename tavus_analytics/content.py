"""What callers talk about and how they feel: offline analysis of the transcripts.

Tidy frames in, tidy frames out, like :mod:`tavus_analytics.metrics`; a
:class:`~tavus_analytics.dataset.Dataset`'s methods of the same names (``ds.sentiment()``,
``ds.languages()``, ``ds.topics(k=...)``, ``ds.questions()``, ``ds.keywords()``) call these on
its (filtered) tables through :class:`ContentAnalysis`, which computes each result once and
keeps it in a file cache (:mod:`tavus_analytics.content_cache`), so that reopening a database
does not redo the work.

Everything runs offline, with no download at run time: the optional packages of the ``nlp``
extra (``pip install 'tavus-analytics[nlp]'``) carry their data in their wheels.

* **Language** (:func:`languages`): py3langid's naive Bayes model (97 languages) on the user's
  words of each call (the assistant's too when the user said fewer than
  :data:`LANGUAGE_MIN_CHARS` characters), kept when its probability is at least
  :data:`LANGUAGE_MIN_CONFIDENCE`.
* **Sentiment** (:func:`turn_sentiment`, :func:`call_sentiment`, :func:`sentiment_rates`):
  VADER's compound score (-1 to +1) of each user and assistant turn, from the lexicon and rules
  that ship in the ``vaderSentiment`` wheel; only for the languages of
  :data:`SENTIMENT_LANGUAGES` (VADER's lexicon is English), NA with the reason elsewhere. A
  score at or above :data:`POSITIVE` is positive, at or below :data:`NEGATIVE` negative, neutral
  in between: VADER's own thresholds, used for turns and for a call's mean.
* **Topics** (:func:`topics`): TF-IDF of the user's words of each call (words and two-word
  phrases, English and conversational stop words removed) factorised by NMF with a fixed seed
  (scikit-learn); each call's dominant topic, each topic's share of calls, per week and per
  replica.
* **Questions** (:func:`questions`): the users' sentences that ask (a question mark, or an
  interrogative first word in unpunctuated text), grouped by similarity (TF-IDF of their words,
  plurals folded, cosine similarity, average-linkage clustering), with counts, an example and
  the weekly trend. On the demo's planted rewordings this scored best of the variants measured
  (words, word pairs, character n-grams; see ``benchmarks/README.md``).
* **Keywords** (:func:`keywords`): YAKE's keywords of one call's user words (statistical, per
  document, no corpus), in the call's language when YAKE has its stop words.

Limits: VADER scores words, not meaning (sarcasm reads as praise; "I'd like" counts as liking);
very short turns ("Okay.", "Yes, that's right.") score slightly positive; language
identification needs a sentence or two; grouping questions finds rewordings that share words,
not synonyms ("cancel my plan" and "stop my subscription" stay apart).
"""

from __future__ import annotations

import functools
import re
import unicodedata
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from . import content_cache
from . import metrics as mt
from .errors import NotEnoughText
from .extras import require
from .frames import STR, frame

__all__ = [
    "CODE_VERSION",
    "LANGUAGE_MIN_CHARS",
    "LANGUAGE_MIN_CONFIDENCE",
    "NEGATIVE",
    "POSITIVE",
    "SENTIMENT_LANGUAGES",
    "ContentAnalysis",
    "Questions",
    "Topics",
    "call_sentiment",
    "call_summary",
    "is_question",
    "keywords",
    "language_breakdown",
    "languages",
    "questions",
    "render",
    "render_call",
    "sentiment_label",
    "sentiment_rates",
    "summary",
    "topics",
    "turn_sentiment",
]

#: A compound score at or above this is positive (VADER's threshold).
POSITIVE = 0.05
#: A compound score at or below this is negative (VADER's threshold).
NEGATIVE = -0.05
#: Languages whose calls are scored for sentiment (VADER's lexicon is English).
SENTIMENT_LANGUAGES: tuple[str, ...] = ("en",)
#: Fewer characters than this cannot be identified reliably: the language is NA.
LANGUAGE_MIN_CHARS = 20
#: A language identified with a lower probability is NA (py3langid's normalised probability).
LANGUAGE_MIN_CONFIDENCE = 0.5
#: Characters of a call read to identify its language (more adds time, not accuracy).
_LANGUAGE_MAX_CHARS = 400
#: Part of every cache key: raise it when an analysis changes its results.
CODE_VERSION = "1"

_NLP = "nlp"
LABELS = ("negative", "neutral", "positive")
_LABEL_DTYPE = pd.CategoricalDtype(list(LABELS), ordered=True)


# -- the optional packages -----------------------------------------------------------------------
@functools.cache
def _vader() -> Any:
    module = require("vaderSentiment.vaderSentiment", _NLP, "sentiment analysis")
    return module.SentimentIntensityAnalyzer()


@functools.cache
def _langid() -> Any:
    module = require("py3langid.langid", _NLP, "language identification")
    ident = module.LanguageIdentifier
    if hasattr(ident, "from_model_file"):  # py3langid 0.4
        return ident.from_model_file(module.MODEL_FILE, norm_probs=True)
    return ident.from_pickled_model(module.MODEL_FILE, norm_probs=True)  # py3langid 0.3


def _sklearn() -> Any:
    return require("sklearn", _NLP, "topics and questions")


@functools.cache
def _yake(language: str) -> Any:
    module = require("yake", _NLP, "keywords")
    return module.KeywordExtractor(lan=language, n=2, top=20)


def _versions() -> dict[str, str]:
    """The versions of the packages the results depend on (part of the cache key)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("vaderSentiment", "py3langid", "scikit-learn", "yake", "numpy"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "-"
    return found


# -- text helpers --------------------------------------------------------------------------------
def _spoken(turns: pd.DataFrame, roles: Sequence[str] = ("user",)) -> pd.DataFrame:
    """The turns of ``roles`` that have words: conversation_id, turn, role, content (and words)."""
    has = turns["role"].isin(list(roles)) & turns["content"].notna() & (turns["words"] > 0)
    return turns.loc[
        has.to_numpy(dtype=bool), ["conversation_id", "turn", "role", "content", "words"]
    ]


def _documents(turns: pd.DataFrame, roles: Sequence[str] = ("user",)) -> pd.Series:
    """One text per conversation: the words of ``roles``, in turn order, joined by spaces.
    Indexed by conversation_id, in order of first appearance."""
    spoken = _spoken(turns, roles)
    if spoken.empty:
        return pd.Series([], index=pd.Index([], dtype=STR, name="conversation_id"), dtype=STR)
    texts = spoken["content"].astype(object).to_numpy()
    cids = spoken["conversation_id"].astype(object).to_numpy()
    codes, uniques = pd.factorize(cids)
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    joined = [" ".join(part) for part in np.split(texts[order], bounds)]
    return pd.Series(joined, index=pd.Index(uniques, dtype=STR, name="conversation_id"), dtype=STR)


# -- language ------------------------------------------------------------------------------------
def languages(turns: pd.DataFrame) -> pd.DataFrame:
    """The language of each call, from what the user said.

    The user's words of the call (their first :data:`_LANGUAGE_MAX_CHARS` characters) are
    identified with py3langid; when the user said fewer than :data:`LANGUAGE_MIN_CHARS`
    characters, the assistant's words are added (``basis`` says so). A language identified with
    a probability under :data:`LANGUAGE_MIN_CONFIDENCE`, or from too little text, is NA and
    ``reason`` says why.

    Parameters
    ----------
    turns : DataFrame
        ``ds.turns`` or a subset of it.

    Returns
    -------
    pandas.DataFrame
        One row per conversation with a user or assistant turn that has words.
        conversation_id : str.
        language : str, ISO 639-1 code (``en``, ``es``, ``fr``, ...); NA when not identified.
        confidence : float64, 0 to 1, the model's probability of that language (of the best
        guess when NA).
        chars : int64, characters read.
        basis : str, ``user`` (the user's words) or ``user+assistant``.
        reason : str, why the language is NA (NA when identified).
    """
    schema = {
        "conversation_id": STR,
        "language": STR,
        "confidence": "float64",
        "chars": "int64",
        "basis": STR,
        "reason": STR,
    }
    spoken = _spoken(turns, ("user", "assistant"))
    calls = pd.unique(spoken["conversation_id"].astype(object).to_numpy())
    if not len(calls):
        return frame(schema)
    user = _documents(spoken, ("user",)).astype(object).reindex(calls)
    short = user.isna().to_numpy() | (user.fillna("").str.len() < LANGUAGE_MIN_CHARS).to_numpy()
    few = spoken[spoken["conversation_id"].isin(set(calls[short])).to_numpy(dtype=bool)]
    both = _documents(few, ("user", "assistant")).astype(object)
    ident = _langid()
    cids, langs, probs, chars, bases, reasons = [], [], [], [], [], []
    for cid, u, is_short in zip(calls, user.to_numpy(dtype=object), short, strict=True):
        if is_short:
            text, basis = both[cid], "user+assistant"
        else:
            text, basis = u, "user"
        text = text[:_LANGUAGE_MAX_CHARS]
        lang, prob = ident.classify(text)
        prob = float(prob)
        reason = None
        if len(text) < LANGUAGE_MIN_CHARS:
            reason = f"too little text to identify ({len(text)} characters)"
        elif prob < LANGUAGE_MIN_CONFIDENCE:
            reason = f"uncertain (best guess {lang}, probability {prob:.2f})"
        cids.append(cid)
        langs.append(None if reason else lang)
        probs.append(prob)
        chars.append(len(text))
        bases.append(basis)
        reasons.append(reason)
    return frame(
        schema,
        {
            "conversation_id": cids,
            "language": langs,
            "confidence": probs,
            "chars": chars,
            "basis": bases,
            "reason": reasons,
        },
    )


def language_breakdown(langs: pd.DataFrame) -> pd.DataFrame:
    """Calls per language, most frequent first.

    Parameters
    ----------
    langs : DataFrame
        From :func:`languages`.

    Returns
    -------
    pandas.DataFrame
        language : str, ISO 639-1 code, or ``unknown`` for the calls not identified.
        calls : int64, conversations.
        share : float64, 0 to 1, of the conversations.
    """
    values = langs["language"].astype(object).where(langs["language"].notna(), "unknown")
    counts = values.value_counts(sort=False)
    out = pd.DataFrame({"language": counts.index.astype(object), "calls": counts.to_numpy()})
    out = out.sort_values(["calls", "language"], ascending=[False, True], kind="stable")
    total = out["calls"].sum()
    return pd.DataFrame(
        {
            "language": pd.array(out["language"].tolist(), dtype=STR),
            "calls": out["calls"].to_numpy(dtype="int64"),
            "share": (out["calls"] / total if total else out["calls"] * 0.0).to_numpy(
                dtype="float64"
            ),
        }
    )


# -- sentiment -----------------------------------------------------------------------------------
def sentiment_label(score: Any) -> Any:
    """``positive`` (score >= :data:`POSITIVE`), ``negative`` (score <= :data:`NEGATIVE`) or
    ``neutral``; NA for NA. Takes a number, or an array or Series (then returns a categorical
    of ``negative`` < ``neutral`` < ``positive``)."""
    if np.ndim(score) == 0:
        if score is None or pd.isna(score):
            return pd.NA
        return "positive" if score >= POSITIVE else "negative" if score <= NEGATIVE else "neutral"
    values = np.asarray(pd.Series(score, dtype="float64"), dtype="float64")
    labels = np.select(
        [values >= POSITIVE, values <= NEGATIVE], ["positive", "negative"], "neutral"
    ).astype(object)
    labels[np.isnan(values)] = None
    out = pd.Categorical(labels, dtype=_LABEL_DTYPE)
    return pd.Series(out, index=score.index) if isinstance(score, pd.Series) else out


def _skip_reasons(cids: pd.Series, langs: pd.DataFrame | None) -> np.ndarray:
    """Per row, why a turn of that conversation is not scored (None: scored)."""
    reasons = np.full(len(cids), None, dtype=object)
    if langs is None:
        return reasons
    by_call = langs.set_index("conversation_id")
    lang = cids.map(by_call["language"].astype(object)).to_numpy(dtype=object)
    why = cids.map(by_call["reason"].astype(object)).to_numpy(dtype=object)
    for i, (code, reason) in enumerate(zip(lang, why, strict=True)):
        if isinstance(code, str):
            if code not in SENTIMENT_LANGUAGES:
                reasons[i] = f"language {code}: the sentiment lexicon is English"
        else:
            reasons[i] = (
                f"language not identified: {reason if isinstance(reason, str) else 'no text'}"
            )
    return reasons


def turn_sentiment(turns: pd.DataFrame, langs: pd.DataFrame | None = None) -> pd.DataFrame:
    """VADER's compound score of every user and assistant turn that has words.

    Parameters
    ----------
    turns : DataFrame
        ``ds.turns`` or a subset of it.
    langs : DataFrame, optional
        From :func:`languages`: turns of calls not in :data:`SENTIMENT_LANGUAGES` (or whose
        language is unknown) are not scored. Without it, every turn is scored as English.

    Returns
    -------
    pandas.DataFrame
        conversation_id : str.
        turn : int64, the message's index in the transcript.
        role : category, ``user`` or ``assistant``.
        compound : float64, -1 (most negative) to +1 (most positive); NaN when not scored.
        label : category ``negative`` < ``neutral`` < ``positive`` (thresholds :data:`NEGATIVE`
        and :data:`POSITIVE`); NaN when not scored.
        skipped : category, why the turn was not scored (NaN when scored).
    """
    rows = _spoken(turns, ("user", "assistant")).reset_index(drop=True)
    reasons = _skip_reasons(rows["conversation_id"].astype(object), langs)
    scored = np.array([r is None for r in reasons], dtype=bool)
    compound = np.full(len(rows), np.nan)
    if scored.any():
        analyzer = _vader()
        texts = rows["content"].astype(object).to_numpy()[scored]
        codes, uniques = pd.factorize(texts)  # a text said many times is scored once
        scores = np.fromiter(
            (analyzer.polarity_scores(t)["compound"] for t in uniques),
            dtype="float64",
            count=len(uniques),
        )
        compound[scored] = scores[codes]
    return pd.DataFrame(
        {
            "conversation_id": pd.array(rows["conversation_id"].astype(object), dtype=STR),
            "turn": rows["turn"].to_numpy(dtype="int64"),
            "role": pd.Categorical(rows["role"].astype(object), categories=["user", "assistant"]),
            "compound": compound,
            "label": sentiment_label(compound),
            "skipped": pd.Categorical(reasons),
        }
    )


def call_sentiment(scored: pd.DataFrame) -> pd.DataFrame:
    """How each call felt: the user's mean, minimum and drift, and a label.

    Parameters
    ----------
    scored : DataFrame
        From :func:`turn_sentiment`.

    Returns
    -------
    pandas.DataFrame
        One row per conversation of ``scored``.
        conversation_id : str.
        user_turns : int64, user turns scored.
        mean : float64, -1 to +1, mean compound score of the user's turns (NaN: not scored).
        min : float64, the user's most negative turn.
        first_third, last_third : float64, mean of the user's scored turns in the first and in
        the last third of them (NaN with fewer than 3).
        drift : float64, ``last_third - first_third``: below 0, the call went sour.
        assistant_mean : float64, mean compound score of the assistant's turns.
        label : category ``negative`` < ``neutral`` < ``positive``, of ``mean`` (thresholds
        :data:`NEGATIVE` and :data:`POSITIVE`); NaN when not scored.
        skipped : str, why the call has no score (NaN when scored).
    """
    schema = {
        "conversation_id": STR,
        "user_turns": "int64",
        "mean": "float64",
        "min": "float64",
        "first_third": "float64",
        "last_third": "float64",
        "drift": "float64",
        "assistant_mean": "float64",
        "label": _LABEL_DTYPE,
        "skipped": STR,
    }
    if scored.empty:
        return frame(schema)
    cids = scored["conversation_id"].astype(object)
    calls = pd.Index(pd.unique(cids.to_numpy()), name="conversation_id")
    has = scored["compound"].notna()
    user = scored[(scored["role"] == "user").to_numpy(dtype=bool) & has.to_numpy(dtype=bool)]
    user = user.sort_values(["conversation_id", "turn"], kind="stable")
    ucid = user["conversation_id"].astype(object)
    g = user.groupby(ucid, sort=False)["compound"]
    n = g.transform("size").to_numpy()
    rank = g.cumcount().to_numpy()
    third = np.minimum(3 * rank // np.maximum(n, 1), 2)
    values = user["compound"].to_numpy(dtype="float64")
    first = pd.Series(values[third == 0]).groupby(ucid.to_numpy()[third == 0]).mean()
    last = pd.Series(values[third == 2]).groupby(ucid.to_numpy()[third == 2]).mean()
    count = g.size().reindex(calls, fill_value=0)
    enough = count >= 3
    first = first.reindex(calls).where(enough)
    last = last.reindex(calls).where(enough)
    assistant = scored[
        (scored["role"] == "assistant").to_numpy(dtype=bool) & has.to_numpy(dtype=bool)
    ]
    a_mean = assistant.groupby(assistant["conversation_id"].astype(object))["compound"].mean()
    mean = g.mean().reindex(calls)
    skipped = scored.groupby(cids, sort=False)["skipped"].first().reindex(calls).astype(object)
    reason = np.where(
        count.to_numpy() > 0,
        None,
        np.where(pd.isna(skipped.to_numpy()), "no user turn with words", skipped.to_numpy()),
    )
    return frame(
        schema,
        {
            "conversation_id": calls.to_numpy(dtype=object),
            "user_turns": count.to_numpy(dtype="int64"),
            "mean": mean.to_numpy(dtype="float64"),
            "min": g.min().reindex(calls).to_numpy(dtype="float64"),
            "first_third": first.to_numpy(dtype="float64"),
            "last_third": last.to_numpy(dtype="float64"),
            "drift": (last - first).to_numpy(dtype="float64"),
            "assistant_mean": a_mean.reindex(calls).to_numpy(dtype="float64"),
            "label": sentiment_label(mean.to_numpy(dtype="float64")),
            "skipped": reason,
        },
    )


def _placed(conversations: pd.DataFrame, by: str) -> tuple[str, pd.Series]:
    """The group column ``by`` names, for each conversation: a period or a column."""
    if by in ("day", "D"):
        return "period", mt.period_of(conversations, "D")
    if by in ("week", "W"):
        return "period", mt.period_of(conversations, "W")
    if by in ("replica", "replica_id"):
        return "replica_id", conversations["replica_id"]
    if by in conversations.columns:
        return by, conversations[by]
    raise ValueError(f"unknown grouping {by!r}: use 'week', 'day', 'replica' or a column")


def _every(out: pd.DataFrame, key: str, by: str, fill: dict[str, Any]) -> pd.DataFrame:
    """Every period from the first to the last (zeros where nothing happened)."""
    if key != "period" or out.empty:
        return out
    freq = "D" if by in ("day", "D") else "W"
    index = mt.every_period(out["period"], freq)
    out = out.set_index("period").reindex(index).rename_axis("period").reset_index()
    return out.fillna(fill)


def sentiment_rates(
    calls: pd.DataFrame, conversations: pd.DataFrame, by: str = "week"
) -> pd.DataFrame:
    """Negative, neutral and positive calls per week, day or replica.

    Parameters
    ----------
    calls : DataFrame
        From :func:`call_sentiment`.
    conversations : DataFrame
        ``ds.conversations`` (or a subset): where and when each call happened. Calls missing
        from it are left out.
    by : {"week", "day", "replica"} or a column of ``conversations``
        The grouping; weeks start on Monday (UTC), placed as :func:`tavus_analytics.metrics.volume`
        places calls. Every period from the first to the last is listed.

    Returns
    -------
    pandas.DataFrame
        period : datetime64[ns, UTC] (``by`` a period), or the ``by`` column.
        calls : int64, calls of ``calls`` in the group.
        scored : int64, calls with a sentiment score.
        negative, neutral, positive : int64, scored calls of each label.
        negative_rate, positive_rate : float64, 0 to 1, of the scored calls (NaN: none scored).
        mean : float64, mean of the calls' user means.
    """
    key, group = _placed(conversations, by)
    placed = pd.DataFrame(
        {"conversation_id": conversations["conversation_id"].astype(object), key: group}
    )
    merged = calls.assign(conversation_id=calls["conversation_id"].astype(object)).merge(
        placed, on="conversation_id", how="inner"
    )
    label = merged["label"].astype(object)
    table = pd.DataFrame(
        {
            key: merged[key],
            "calls": 1,
            "scored": merged["mean"].notna().astype("int64"),
            "negative": (label == "negative").astype("int64"),
            "neutral": (label == "neutral").astype("int64"),
            "positive": (label == "positive").astype("int64"),
            "mean": merged["mean"],
        }
    )
    out = (
        table.groupby(key, sort=True, dropna=True, observed=True)
        .agg(
            calls=("calls", "sum"),
            scored=("scored", "sum"),
            negative=("negative", "sum"),
            neutral=("neutral", "sum"),
            positive=("positive", "sum"),
            mean=("mean", "mean"),
        )
        .reset_index()
    )
    out = _every(
        out, key, by, {c: 0 for c in ("calls", "scored", "negative", "neutral", "positive")}
    )
    for col in ("calls", "scored", "negative", "neutral", "positive"):
        out[col] = out[col].astype("int64")
    scored = out["scored"].where(out["scored"] > 0).astype("float64")
    out["negative_rate"] = out["negative"] / scored
    out["positive_rate"] = out["positive"] / scored
    out["mean"] = out["mean"].astype("float64")
    if key == "period":
        out["period"] = out["period"].astype("datetime64[ns, UTC]")
    return out[
        [
            key,
            "calls",
            "scored",
            "negative",
            "neutral",
            "positive",
            "negative_rate",
            "positive_rate",
            "mean",
        ]
    ]


# -- topics --------------------------------------------------------------------------------------
#: Words of conversation that say nothing of a topic, removed with scikit-learn's English stop
#: words before topics and question groups are made.
_CONVERSATION_STOP_WORDS_TEXT = """
    okay ok yes yeah yep no nope um uh umm hmm mm mhm right sorry thanks thank hi hello hey
    please sure got just like know think really oh well let need want would could actually maybe
    bit lot don didn doesn isn wasn aren weren won wouldn couldn shouldn ll ve re im ive id
    going get one also still great good perfect fine alright wait second say said tell us does
    things thing way much many make sense go"""
CONVERSATION_STOP_WORDS = frozenset(_CONVERSATION_STOP_WORDS_TEXT.split())


def _stop_words() -> list[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return sorted(ENGLISH_STOP_WORDS | CONVERSATION_STOP_WORDS)


_TOKEN = r"(?u)\b[^\W\d_]{2,}\b"


@dataclass(frozen=True, eq=False)
class Topics:
    """Topics across calls (:func:`topics`): every table is a DataFrame.

    Attributes
    ----------
    topics : DataFrame
        One row per topic, largest first. topic : int64 (0 is the largest). label : str, its top
        three terms. terms : str, its top terms, comma separated. calls : int64, calls whose
        dominant topic it is. share : float64, 0 to 1, of the calls analysed.
    terms : DataFrame
        topic : int64. rank : int64, 1 is the strongest. term : str, a word or a two-word
        phrase. weight : float64, its weight in the topic (NMF's H, relative to the topic's
        strongest term: 0 to 1).
    calls : DataFrame
        One row per call analysed. conversation_id : str. topic : Int64, the dominant topic (NA
        when none of the call's words is in the vocabulary). weight : float64, 0 to 1, the
        dominant topic's share of the call's topic mix.
    by_week, by_replica : DataFrame
        period (datetime64[ns, UTC], the Monday) or replica_id : str. topic : int64. calls :
        int64, calls of the group whose dominant topic it is. share : float64, 0 to 1, of the
        group's calls with a dominant topic. Every week from the first to the last is listed.
    k : int
        Topics asked for.
    documents : int
        Calls analysed (with words from the user, in the languages kept).
    converged : bool
        Whether NMF converged within its iterations.
    """

    topics: pd.DataFrame
    terms: pd.DataFrame
    calls: pd.DataFrame
    by_week: pd.DataFrame
    by_replica: pd.DataFrame
    k: int
    documents: int
    converged: bool

    def _repr_html_(self) -> str:
        return self.topics._repr_html_()

    def __repr__(self) -> str:
        return f"<Topics k={self.k} documents={self.documents:,}>\n{self.topics!r}"


_TOPICS_SCHEMA = {
    "topic": "int64",
    "label": STR,
    "terms": STR,
    "calls": "int64",
    "share": "float64",
}
_TERMS_SCHEMA = {"topic": "int64", "rank": "int64", "term": STR, "weight": "float64"}
_CALLS_SCHEMA = {"conversation_id": STR, "topic": "Int64", "weight": "float64"}


def _label(terms: list[str], n: int = 3) -> str:
    """The first ``n`` terms, leaving out a word already inside a phrase shown (or a phrase
    made only of words shown)."""
    shown: list[str] = []
    for term in terms:
        words = set(term.split())
        if any(words <= set(s.split()) or set(s.split()) <= words for s in shown):
            continue
        shown.append(term)
        if len(shown) == n:
            break
    return " / ".join(shown)


def _fit_topics(
    docs: pd.Series, k: int, *, seed: int, top_terms: int, max_features: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, bool]:
    """NMF of TF-IDF: (topics, terms, calls, converged), topics numbered by size."""
    _sklearn()
    from sklearn.decomposition import NMF
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.feature_extraction.text import TfidfVectorizer

    n = len(docs)
    vectorizer = TfidfVectorizer(
        token_pattern=_TOKEN,
        stop_words=_stop_words(),
        ngram_range=(1, 2),
        min_df=2 if n >= 20 else 1,
        max_df=0.6 if n >= 20 else 1.0,
        max_features=max_features,
        sublinear_tf=True,
        dtype=np.float32,
    )
    try:
        x = vectorizer.fit_transform(docs.to_numpy(dtype=object))
    except ValueError:  # no word left after stop words and frequency limits
        raise NotEnoughText(
            f"topics: the {n:,} calls share no words once stop words are removed; "
            "choose a wider selection"
        ) from None
    vocabulary = vectorizer.get_feature_names_out()
    if len(vocabulary) < k:
        raise NotEnoughText(
            f"topics(k={k}) needs at least {k} distinct terms; the {n:,} calls have "
            f"{len(vocabulary)}: choose a smaller k or a wider selection"
        )
    model = NMF(n_components=k, init="nndsvda", random_state=seed, max_iter=500, tol=1e-4)
    with warnings.catch_warnings():
        # Convergence is reported in Topics.converged rather than as a warning.
        warnings.simplefilter("ignore", ConvergenceWarning)
        w = model.fit_transform(x)
    h = model.components_
    converged = bool(model.n_iter_ < model.max_iter)
    total = w.sum(axis=1)
    dominant = np.where(total > 0, w.argmax(axis=1), -1)
    weight = np.where(total > 0, w.max(axis=1) / np.where(total > 0, total, 1), np.nan)
    sizes = np.bincount(dominant[dominant >= 0], minlength=k)
    order = sorted(range(k), key=lambda t: (-sizes[t], t))  # topic 0 is the largest
    new = np.empty(k, dtype=np.int64)
    new[order] = np.arange(k)
    term_rows, topic_rows = [], []
    with_topic = int((dominant >= 0).sum())
    for rank_t, t in enumerate(order):
        row = h[t]
        best = np.argsort(-row, kind="stable")[:top_terms]
        best = [i for i in best if row[i] > 0]
        top = float(row[best[0]]) if best else 1.0
        words = [str(vocabulary[i]) for i in best]
        for r, i in enumerate(best, start=1):
            term_rows.append((rank_t, r, str(vocabulary[i]), float(row[i]) / top))
        topic_rows.append(
            (
                rank_t,
                _label(words),
                ", ".join(words),
                int(sizes[t]),
                sizes[t] / with_topic if with_topic else np.nan,
            )
        )
    topics_ = frame(
        _TOPICS_SCHEMA,
        dict(zip(_TOPICS_SCHEMA, map(list, zip(*topic_rows, strict=True)), strict=True)),
    )
    terms_ = frame(
        _TERMS_SCHEMA,
        dict(zip(_TERMS_SCHEMA, map(list, zip(*term_rows, strict=True)), strict=True))
        if term_rows
        else None,
    )
    topic_of = np.where(dominant >= 0, new[np.maximum(dominant, 0)], -1)
    calls_ = frame(
        _CALLS_SCHEMA,
        {
            "conversation_id": docs.index.to_numpy(dtype=object),
            "topic": pd.array([int(t) if t >= 0 else None for t in topic_of], dtype="Int64"),
            "weight": weight,
        },
    )
    return topics_, terms_, calls_, converged


def _topic_shares(
    calls: pd.DataFrame, conversations: pd.DataFrame | None, by: str, k: int
) -> pd.DataFrame:
    key = "period" if by == "week" else "replica_id"
    schema = {
        key: "datetime64[ns, UTC]" if key == "period" else STR,
        "topic": "int64",
        "calls": "int64",
        "share": "float64",
    }
    if conversations is None or calls.empty:
        return frame(schema)
    key, group = _placed(conversations, by)
    placed = pd.DataFrame(
        {"conversation_id": conversations["conversation_id"].astype(object), key: group}
    )
    merged = (
        calls[calls["topic"].notna()]
        .assign(conversation_id=lambda f: f["conversation_id"].astype(object))
        .merge(placed, on="conversation_id", how="inner")
    )
    if merged.empty:
        return frame(schema)
    counts = merged.groupby([key, merged["topic"].astype("int64")], observed=True).size()
    groups = counts.index.get_level_values(0).unique()
    if key == "period":
        groups = mt.every_period(pd.Series(groups), "W")
    index = pd.MultiIndex.from_product([groups, range(k)], names=[key, "topic"])
    counts = counts.reindex(index, fill_value=0)
    out = counts.rename("calls").reset_index()
    totals = out.groupby(key)["calls"].transform("sum")
    out["share"] = (out["calls"] / totals.where(totals > 0)).astype("float64")
    out["calls"] = out["calls"].astype("int64")
    out["topic"] = out["topic"].astype("int64")
    if key == "period":
        out["period"] = out["period"].astype("datetime64[ns, UTC]")
    else:
        out[key] = pd.array(out[key].astype(object), dtype=STR)
    return out[[key, "topic", "calls", "share"]]


def _keep_languages(
    docs: pd.Series, langs: pd.DataFrame | None, keep: Iterable[str] | None
) -> pd.Series:
    if langs is None or keep is None:
        return docs
    code = docs.index.to_series().map(langs.set_index("conversation_id")["language"].astype(object))
    return docs[code.isin(list(keep)).to_numpy(dtype=bool)]


def topics(
    turns: pd.DataFrame,
    conversations: pd.DataFrame | None = None,
    langs: pd.DataFrame | None = None,
    *,
    k: int = 8,
    keep_languages: Iterable[str] | None = ("en",),
    seed: int = 0,
    top_terms: int = 10,
    max_features: int = 20_000,
) -> Topics:
    """Topics across calls: TF-IDF of the user's words of each call, factorised by NMF.

    Each call is one document: everything the user said. Words of two letters or more are
    lower-cased; scikit-learn's English stop words and :data:`CONVERSATION_STOP_WORDS` are
    removed; words and two-word phrases in at least 2 calls and at most 60 % of them are kept
    (all of them under 20 calls), weighted by sublinear TF-IDF. NMF (``init="nndsvda"``, seeded)
    splits them into ``k`` topics; a call's dominant topic is its largest weight. The same
    input and seed give the same topics on every run.

    Parameters
    ----------
    turns : DataFrame
        ``ds.turns`` or a subset of it.
    conversations : DataFrame, optional
        ``ds.conversations``: for the shares per week and per replica.
    langs : DataFrame, optional
        From :func:`languages`, to keep only the calls in ``keep_languages``.
    k : int
        Number of topics.
    keep_languages : iterable of str, optional
        Languages analysed (default English: the stop words are English); ``None`` for all.
    seed : int
        NMF's seed.
    top_terms : int
        Terms listed per topic.
    max_features : int
        Largest vocabulary (the most frequent terms).

    Returns
    -------
    Topics
        ``topics``, ``terms``, ``calls``, ``by_week`` and ``by_replica`` tables (see
        :class:`Topics`).

    Raises
    ------
    NotEnoughText
        When fewer calls (or distinct terms) than ``k`` are left to analyse.
    ValueError
        When ``k`` is less than 1.
    """
    if k < 1:
        raise ValueError("k must be 1 or more")
    docs = _keep_languages(_documents(turns, ("user",)), langs, keep_languages)
    if len(docs) < k:
        which = (
            "" if langs is None or keep_languages is None else (f" in {', '.join(keep_languages)}")
        )
        raise NotEnoughText(
            f"topics(k={k}) needs at least {k} calls with words from the user{which}; this "
            f"selection has {len(docs):,}: choose a smaller k or a wider selection"
        )
    topics_, terms_, calls_, converged = _fit_topics(
        docs, k, seed=seed, top_terms=top_terms, max_features=max_features
    )
    return _topics_result(topics_, terms_, calls_, conversations, k, converged)


def _topics_result(topics_, terms_, calls_, conversations, k, converged) -> Topics:
    return Topics(
        topics=topics_,
        terms=terms_,
        calls=calls_,
        by_week=_topic_shares(calls_, conversations, "week", k),
        by_replica=_topic_shares(calls_, conversations, "replica", k),
        k=k,
        documents=len(calls_),
        converged=converged,
    )


# -- questions -----------------------------------------------------------------------------------
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")
_INTERROGATIVES_TEXT = """
    what how why when where who whom whose which can could would will do does did is are was
    were should shall may might am have has qué cómo cuándo dónde cuál cuáles quién quiénes
    cuánto cuánta cuántos cuántas comment pourquoi quand où quel quelle quels quelles
    est-ce qu'est-ce"""
_INTERROGATIVES = frozenset(_INTERROGATIVES_TEXT.split())
_LEAD_TEXT = "so um uh okay ok and but well oh sorry hmm also wait right yes no then"
_LEAD = frozenset(_LEAD_TEXT.split())
_WORDS = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*", re.UNICODE)


def is_question(sentence: str) -> bool:
    """Whether a sentence asks: it ends with a question mark; or it has no end punctuation at
    all (speech-to-text without punctuation) and its first word, after fillers such as "so" or
    "okay", is an interrogative or an auxiliary (``how``, ``can``, ``does``, ``cómo``,
    ``pourquoi``, ...). At least three words either way; a sentence ending with "." or "!"
    ("What a relief.") does not ask."""
    words = _WORDS.findall(sentence.lower())
    while words and words[0] in _LEAD:
        words = words[1:]
    if len(words) < 3:
        return False
    end = sentence.rstrip(" \"'»”)")
    if end.endswith("?"):
        return True
    return not end.endswith((".", "!", "…")) and words[0] in _INTERROGATIVES


def _normal(sentence: str) -> str:
    """A question as compared: NFKC, lower case, words only, leading fillers dropped."""
    words = _WORDS.findall(unicodedata.normalize("NFKC", sentence).lower())
    while words and words[0] in _LEAD:
        words = words[1:]
    return " ".join(words)


def _singular(text: str) -> str:
    """A crude plural fold for comparing questions: a final ``s`` off words of five letters or
    more, except ``ss`` (``invoices`` -> ``invoice``, ``charges`` -> ``charge``)."""
    return " ".join(
        w[:-1] if len(w) > 4 and w.endswith("s") and not w.endswith("ss") else w
        for w in text.split()
    )


@dataclass(frozen=True, eq=False)
class Questions:
    """The users' questions grouped by similarity (:func:`questions`).

    Attributes
    ----------
    groups : DataFrame
        One row per group asked in at least ``min_calls`` calls, most asked first.
        group : int64 (0 is the most asked). example : str, the group's most frequent wording.
        calls : int64, calls that asked it. share : float64, 0 to 1, of the calls with a user
        turn. questions : int64, times it was asked. wordings : int64, distinct wordings.
        trend : float64, change of the weekly share of calls that ask it, per week (least
        squares over the weeks; NaN with fewer than 2 weeks).
    asked : DataFrame
        Every question. conversation_id : str. turn : int64. question : str, the sentence as
        said. group : Int64 (NA: its group was asked in fewer than ``min_calls`` calls).
    weekly : DataFrame
        period : datetime64[ns, UTC], the Monday. group : int64. calls : int64, calls of the
        week that asked it. share : float64, 0 to 1, of the week's calls with a user turn.
    documents : int
        Calls with a user turn.
    """

    groups: pd.DataFrame
    asked: pd.DataFrame
    weekly: pd.DataFrame
    documents: int

    def _repr_html_(self) -> str:
        return self.groups._repr_html_()

    def __repr__(self) -> str:
        return f"<Questions groups={len(self.groups):,}>\n{self.groups!r}"


_GROUPS_SCHEMA = {
    "group": "int64",
    "example": STR,
    "calls": "int64",
    "share": "float64",
    "questions": "int64",
    "wordings": "int64",
    "trend": "float64",
}
_ASKED_SCHEMA = {"conversation_id": STR, "turn": "int64", "question": STR, "group": "Int64"}
_WEEKLY_SCHEMA = {
    "period": "datetime64[ns, UTC]",
    "group": "int64",
    "calls": "int64",
    "share": "float64",
}


def _asked(turns: pd.DataFrame) -> pd.DataFrame:
    """Every question sentence of the users' turns: conversation_id, turn, question."""
    spoken = _spoken(turns, ("user",))
    cids, nums, found = [], [], []
    for cid, turn, text in zip(
        spoken["conversation_id"].astype(object).to_numpy(),
        spoken["turn"].to_numpy(),
        spoken["content"].astype(object).to_numpy(),
        strict=True,
    ):
        if "?" not in text and not _maybe_question(text):
            continue
        for sentence in _SENTENCE_END.split(text.strip()):
            if is_question(sentence):
                cids.append(cid)
                nums.append(int(turn))
                found.append(sentence.strip())
    return pd.DataFrame(
        {"conversation_id": cids, "turn": np.asarray(nums, dtype="int64"), "question": found}
    )


def _maybe_question(text: str) -> bool:
    """A quick test before splitting: could a sentence of ``text`` start with an interrogative?"""
    return any(w in _INTERROGATIVES for w in _WORDS.findall(text.lower()))


def _group_wordings(
    normals: list[str], weights: np.ndarray, *, min_similarity: float, max_distinct: int
) -> np.ndarray:
    """A group number per distinct normalised question (-1: none)."""
    n = len(normals)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    _sklearn()
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(token_pattern=_TOKEN, stop_words=_stop_words(), sublinear_tf=True)
    try:
        x = vectorizer.fit_transform([_singular(q) for q in normals])
    except ValueError:  # only stop words: nothing to group on
        return np.arange(n, dtype=np.int64)
    order = np.argsort(-weights, kind="stable")
    head = order[:max_distinct]
    labels = np.full(n, -1, dtype=np.int64)
    xh = x[head]
    empty = np.asarray(xh.sum(axis=1)).ravel() == 0
    if len(head) >= 2:
        similarity = (xh @ xh.T).toarray()
        distance = np.clip(1.0 - similarity, 0.0, 2.0)
        np.fill_diagonal(distance, 0.0)
        distance[empty, :] = 2.0  # a question of stop words only stays alone
        distance[:, empty] = 2.0
        np.fill_diagonal(distance, 0.0)
        model = AgglomerativeClustering(
            n_clusters=None,
            metric="precomputed",
            linkage="average",
            distance_threshold=1.0 - min_similarity,
        )
        labels[head] = model.fit_predict(distance)
    else:
        labels[head] = np.arange(len(head))
    rest = order[max_distinct:]
    if len(rest):  # the rarer wordings join the nearest group when close enough
        groups = np.unique(labels[head])
        centroids = np.vstack([np.asarray(xh[labels[head] == g].mean(axis=0)) for g in groups])
        norms = np.linalg.norm(centroids, axis=1, keepdims=True)
        centroids = centroids / np.where(norms > 0, norms, 1)
        sims = np.asarray(x[rest] @ centroids.T)
        best = sims.argmax(axis=1)
        close = sims[np.arange(len(rest)), best] >= min_similarity
        labels[rest] = np.where(close, groups[best], -1)
        lone = rest[~close]
        labels[lone] = labels.max() + 1 + np.arange(len(lone))
    return labels


def questions(
    turns: pd.DataFrame,
    conversations: pd.DataFrame | None = None,
    *,
    min_similarity: float = 0.4,
    min_calls: int = 2,
    max_distinct: int = 3000,
) -> Questions:
    """The users' questions, grouped by similarity, with counts, an example and the trend.

    The user's turns are split into sentences; a sentence that asks (:func:`is_question`) is a
    question. Questions are compared normalised (lower case, words only, leading fillers
    dropped); the ``max_distinct`` most asked distinct ones are grouped by average-linkage
    clustering of the cosine similarity of their TF-IDF vectors (words, stop words removed,
    plurals folded), merging while the average similarity is at least ``min_similarity``; a
    rarer wording joins the nearest group when it is that close to its centroid. Languages are
    not separated: a Spanish question groups with Spanish wordings.

    Parameters
    ----------
    turns : DataFrame
        ``ds.turns`` or a subset of it.
    conversations : DataFrame, optional
        ``ds.conversations``: for the weekly trend.
    min_similarity : float
        0 to 1: how alike two wordings must be, on average, to be one question.
    min_calls : int
        Groups asked in fewer calls are not listed.
    max_distinct : int
        Distinct wordings clustered (the most asked); the rest join a group or stay alone.

    Returns
    -------
    Questions
        ``groups``, ``asked`` and ``weekly`` tables (see :class:`Questions`).
    """
    if not 0 <= min_similarity <= 1:
        raise ValueError("min_similarity must be between 0 and 1")
    spoken = _speakers(turns)
    groups_, asked_ = _group_questions(
        _asked(turns),
        min_similarity=min_similarity,
        min_calls=min_calls,
        max_distinct=max_distinct,
        documents=len(spoken),
    )
    return _questions_result(groups_, asked_, conversations, spoken)


def _speakers(turns: pd.DataFrame) -> pd.Series:
    """The conversations with a user turn that has words, once each."""
    cids = _spoken(turns, ("user",))["conversation_id"].astype(object)
    return pd.Series(pd.unique(cids.to_numpy()), dtype=object, name="conversation_id")


def _group_questions(
    asked: pd.DataFrame, *, min_similarity: float, min_calls: int, max_distinct: int, documents: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    if asked.empty:
        return frame(_GROUPS_SCHEMA), frame(_ASKED_SCHEMA)
    normal = [_normal(q) for q in asked["question"]]
    codes, distinct = pd.factorize(pd.Series(normal, dtype=object))
    calls_per = (
        pd.DataFrame({"code": codes, "cid": asked["conversation_id"].to_numpy(dtype=object)})
        .drop_duplicates()
        .groupby("code")
        .size()
        .reindex(range(len(distinct)), fill_value=0)
        .to_numpy()
    )
    labels = _group_wordings(
        list(distinct),
        calls_per.astype(float),
        min_similarity=min_similarity,
        max_distinct=max_distinct,
    )
    group_of = labels[codes]
    table = pd.DataFrame(
        {
            "group": group_of,
            "conversation_id": asked["conversation_id"].to_numpy(dtype=object),
            "question": asked["question"].to_numpy(dtype=object),
            "code": codes,
        }
    )
    stats = table.groupby("group").agg(
        calls=("conversation_id", "nunique"),
        questions=("question", "size"),
        wordings=("code", "nunique"),
    )
    # The example: the group's most asked wording as said (ties: the first asked).
    said = table.groupby(["group", "question"], sort=False).size().rename("n").reset_index()
    said = said.sort_values(["group", "n"], ascending=[True, False], kind="stable")
    stats["example"] = said.drop_duplicates("group").set_index("group")["question"]
    stats = stats[stats["calls"] >= min_calls]
    stats = stats.reset_index().sort_values(
        ["calls", "questions", "example"], ascending=[False, False, True], kind="stable"
    )
    renumber = {old: new for new, old in enumerate(stats["group"])}
    new_group = pd.array([renumber.get(g) for g in group_of], dtype="Int64")
    groups_ = frame(
        _GROUPS_SCHEMA,
        {
            "group": np.arange(len(stats), dtype="int64"),
            "example": stats["example"].tolist(),
            "calls": stats["calls"].to_numpy(dtype="int64"),
            "share": (
                stats["calls"] / documents if documents else stats["calls"] * np.nan
            ).to_numpy(dtype="float64"),
            "questions": stats["questions"].to_numpy(dtype="int64"),
            "wordings": stats["wordings"].to_numpy(dtype="int64"),
            "trend": np.full(len(stats), np.nan),
        },
    )
    asked_ = frame(
        _ASKED_SCHEMA,
        {
            "conversation_id": asked["conversation_id"].tolist(),
            "turn": asked["turn"].to_numpy(dtype="int64"),
            "question": asked["question"].tolist(),
            "group": new_group,
        },
    )
    return groups_, asked_


def _questions_result(
    groups_: pd.DataFrame,
    asked_: pd.DataFrame,
    conversations: pd.DataFrame | None,
    spoken: pd.Series,
) -> Questions:
    """The Questions of grouped questions: the weekly shares and trends need
    ``conversations`` (when and where each call happened) and ``spoken`` (the calls with a user
    turn, the shares' denominator)."""
    weekly = frame(_WEEKLY_SCHEMA)
    groups_ = groups_.copy()
    if conversations is not None and len(groups_):
        weeks = pd.DataFrame(
            {
                "conversation_id": conversations["conversation_id"].astype(object),
                "period": mt.period_of(conversations, "W"),
            }
        )
        weeks = weeks[weeks["conversation_id"].isin(set(spoken)).to_numpy(dtype=bool)]
        per_week = weeks.groupby("period").size()
        if len(per_week):
            periods = mt.every_period(pd.Series(per_week.index), "W")
            per_week = per_week.reindex(periods, fill_value=0)
            asking = asked_[asked_["group"].notna().to_numpy(dtype=bool)]
            asking = pd.DataFrame(
                {
                    "conversation_id": asking["conversation_id"].astype(object),
                    "group": asking["group"].astype("int64"),
                }
            ).drop_duplicates()
            asking = asking.merge(weeks, on="conversation_id", how="inner")
            counts = asking.groupby(["period", "group"]).size()
            index = pd.MultiIndex.from_product(
                [periods, groups_["group"]], names=["period", "group"]
            )
            counts = counts.reindex(index, fill_value=0).rename("calls").reset_index()
            totals = counts["period"].map(per_week).astype("float64")
            counts["share"] = counts["calls"] / totals.where(totals > 0)
            weekly = frame(_WEEKLY_SCHEMA, {c: counts[c] for c in _WEEKLY_SCHEMA})
            if len(periods) >= 2:
                x = np.arange(len(periods), dtype="float64")
                shares = counts.pivot(index="period", columns="group", values="share")
                trend = {}
                for g in shares.columns:
                    y = shares[g].to_numpy(dtype="float64")
                    ok = ~np.isnan(y)
                    trend[g] = np.polyfit(x[ok], y[ok], 1)[0] if ok.sum() >= 2 else np.nan
                groups_["trend"] = groups_["group"].map(trend).astype("float64")
    return Questions(groups=groups_, asked=asked_, weekly=weekly, documents=len(spoken))


# -- keywords ------------------------------------------------------------------------------------
_YAKE_LANGUAGES_TEXT = (
    "ar bg br cz da de el en es et fa fi fr hi hr hu hy id it ja lt lv nl no pl pt ro ru sk sl "
    "sv tr uk zh"
)
_YAKE_LANGUAGES = frozenset(_YAKE_LANGUAGES_TEXT.split())


def keywords(
    turns: pd.DataFrame,
    langs: pd.DataFrame | None = None,
    *,
    top: int = 5,
) -> pd.DataFrame:
    """The keywords of each call's user words (YAKE: statistical, one call at a time).

    Parameters
    ----------
    turns : DataFrame
        ``ds.turns`` or a subset (one call's turns for one call's keywords).
    langs : DataFrame, optional
        From :func:`languages`: YAKE then uses the call's language's stop words (English when
        unknown or not one YAKE has).
    top : int
        Keywords per call.

    Returns
    -------
    pandas.DataFrame
        conversation_id : str.
        rank : int64, 1 is the most relevant.
        keyword : str, a word or a two-word phrase.
        score : float64, YAKE's score: lower is more relevant.
    """
    schema = {"conversation_id": STR, "rank": "int64", "keyword": STR, "score": "float64"}
    docs = _documents(turns, ("user",))
    code = {}
    if langs is not None:
        code = dict(
            zip(
                langs["conversation_id"].astype(object),
                langs["language"].astype(object),
                strict=True,
            )
        )
    rows = []
    for cid, text in zip(docs.index, docs.to_numpy(dtype=object), strict=True):
        lang = code.get(cid)
        extractor = _yake(lang if isinstance(lang, str) and lang in _YAKE_LANGUAGES else "en")
        found = extractor.extract_keywords(text)
        for rank, (word, score) in enumerate(found[:top], start=1):
            rows.append((cid, rank, word, float(score)))
    if not rows:
        return frame(schema)
    return frame(schema, dict(zip(schema, map(list, zip(*rows, strict=True)), strict=True)))


# -- one dataset: computed once, kept in a file cache ---------------------------------------------
class ContentAnalysis:
    """Content analysis of one :class:`~tavus_analytics.dataset.Dataset`: each result computed
    once, kept for the dataset's life and in the file cache (:mod:`content_cache`).

    A cache entry's key is the database (the SQLite file's absolute path, or the PostgreSQL URL
    without password), the id and SHA-256 of every transcript callback of the conversations
    analysed (so a new or different transcript is a new key, and new callbacks of other kinds
    are not), the analysis and its parameters, :data:`CODE_VERSION` and the versions of the
    packages used. The Dataset makes one: use its methods (``ds.sentiment()``, ...).

    Parameters
    ----------
    ds : Dataset
        The (filtered) dataset analysed.
    sources : callable
        Returns ``(callback id, conversation_id, sha256)`` of every transcript callback of the
        dataset's database snapshot.
    """

    def __init__(self, ds: Any, sources: Callable[[], list[tuple]]) -> None:
        self._ds = ds
        self._sources = sources
        self._memo: dict[str, Any] = {}

    # -- cache plumbing
    def _identity(self) -> str:
        path = self._ds.path
        return str(Path(path).resolve()) if isinstance(path, Path) else str(self._ds.name)

    def _digest(self) -> str:
        if "digest" not in self._memo:
            import hashlib

            rows = self._sources()
            if self._ds.filtered:
                keep = set(self._ds.conversations["conversation_id"].astype(object))
                rows = [r for r in rows if r[1] in keep]
            h = hashlib.sha256()
            for cb_id, _, sha in rows:
                h.update(f"{cb_id}:{sha}\n".encode())
            self._memo["digest"] = f"{len(rows)}:{h.hexdigest()}"
        return self._memo["digest"]

    def _cached(
        self, name: str, params: dict[str, Any], compute: Callable[[], dict[str, pd.DataFrame]]
    ) -> dict[str, pd.DataFrame]:
        memo = f"{name}:{sorted(params.items())}"
        if memo in self._memo:
            return self._memo[memo]
        k = content_cache.key(
            analysis=name,
            params=params,
            code=CODE_VERSION,
            packages=_versions(),
            db=self._identity(),
            transcripts=self._digest(),
        )
        tables = content_cache.get(k)
        if tables is None:
            tables = compute()
            content_cache.put(
                k,
                tables,
                meta={
                    "analysis": name,
                    "params": params,
                    "database": self._ds.name,
                    "transcripts": self._digest(),
                    "code": CODE_VERSION,
                },
            )
        self._memo[memo] = tables
        return tables

    # -- results
    def languages(self) -> pd.DataFrame:
        """:func:`languages` of the dataset's turns."""
        return self._cached("languages", {}, lambda: {"languages": languages(self._ds.turns)})[
            "languages"
        ]

    def _sentiment(self) -> dict[str, pd.DataFrame]:
        def compute() -> dict[str, pd.DataFrame]:
            scored = turn_sentiment(self._ds.turns, self.languages())
            return {"turns": scored, "calls": call_sentiment(scored)}

        return self._cached("sentiment", {"languages": list(SENTIMENT_LANGUAGES)}, compute)

    def sentiment(self, level: Literal["call", "turn"] = "call") -> pd.DataFrame:
        """:func:`call_sentiment` (``level="call"``) or :func:`turn_sentiment` (``"turn"``)."""
        if level not in ("call", "turn"):
            raise ValueError(f"level must be 'call' or 'turn', not {level!r}")
        return self._sentiment()["calls" if level == "call" else "turns"]

    def topics(
        self,
        k: int = 8,
        *,
        keep_languages: Iterable[str] | None = ("en",),
        seed: int = 0,
        top_terms: int = 10,
    ) -> Topics:
        """:func:`topics` of the dataset."""
        if k < 1:
            raise ValueError("k must be 1 or more")
        keep = None if keep_languages is None else sorted(keep_languages)
        params = {"k": k, "keep_languages": keep, "seed": seed, "top_terms": top_terms}

        def compute() -> dict[str, pd.DataFrame]:
            langs = self.languages() if keep is not None else None
            found = topics(
                self._ds.turns,
                None,
                langs,
                k=k,
                keep_languages=keep,
                seed=seed,
                top_terms=top_terms,
            )
            info = pd.DataFrame({"converged": [found.converged]})
            return {
                "topics": found.topics,
                "terms": found.terms,
                "calls": found.calls,
                "info": info,
            }

        t = self._cached("topics", params, compute)
        return _topics_result(
            t["topics"],
            t["terms"],
            t["calls"],
            self._ds.conversations,
            k,
            bool(t["info"]["converged"].iloc[0]),
        )

    def questions(self, *, min_similarity: float = 0.4, min_calls: int = 2) -> Questions:
        """:func:`questions` of the dataset."""
        params = {"min_similarity": min_similarity, "min_calls": min_calls}

        def compute() -> dict[str, pd.DataFrame]:
            turns = self._ds.turns
            spoken = _speakers(turns)
            groups_, asked_ = _group_questions(
                _asked(turns),
                min_similarity=min_similarity,
                min_calls=min_calls,
                max_distinct=3000,
                documents=len(spoken),
            )
            speakers = pd.DataFrame({"conversation_id": pd.array(spoken.tolist(), dtype=STR)})
            return {"groups": groups_, "asked": asked_, "spoken": speakers}

        t = self._cached("questions", params, compute)
        spoken = t["spoken"]["conversation_id"].astype(object)
        return _questions_result(t["groups"], t["asked"], self._ds.conversations, spoken)

    def keywords(self, conversation: str | None = None, *, top: int = 5) -> pd.DataFrame:
        """:func:`keywords` of one conversation, or of every conversation of the dataset (then
        cached; about 3 ms a call)."""
        if conversation is not None:
            turns = self._ds.turns
            one = turns[(turns["conversation_id"] == conversation).to_numpy(dtype=bool)]
            langs = self.languages()
            langs = langs[(langs["conversation_id"] == conversation).to_numpy(dtype=bool)]
            return keywords(one, langs, top=top)
        return self._cached(
            "keywords",
            {"top": top},
            lambda: {"keywords": keywords(self._ds.turns, self.languages(), top=top)},
        )["keywords"]


# -- summaries (what `tavus-analytics content` prints) ---------------------------------------------
def _value(value: Any) -> Any:
    """A JSON-ready value: None for NA, floats and ints as Python numbers, times as ISO text."""
    if value is None or (np.ndim(value) == 0 and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.tz_convert("UTC").strftime("%Y-%m-%d")
    if isinstance(value, (np.integer, int)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value)
    return value if isinstance(value, (str, bool)) else str(value)


def _records(table: pd.DataFrame, columns: Sequence[str]) -> list[dict[str, Any]]:
    return [
        {c: _value(v) for c, v in zip(columns, row, strict=True)}
        for row in table[list(columns)].itertuples(index=False)
    ]


def summary(ds: Any, *, k: int = 8, top: int = 10) -> dict[str, Any]:
    """What callers say in a dataset, as plain Python values (JSON-ready).

    Parameters
    ----------
    ds : Dataset
        From :func:`tavus_analytics.load`, filtered as wanted.
    k : int
        Topics.
    top : int
        Question groups listed.

    Returns
    -------
    dict
        - ``transcripts`` : int, conversations with a user or assistant turn that has words.
        - ``languages`` : list of ``{"language", "calls", "share"}``, most frequent first.
        - ``sentiment`` : ``{"scored", "negative", "neutral", "positive", "not_scored",
          "not_english": {language: calls}, "language_unknown", "no_user_words", "by_replica":
          [...], "by_week": [...]}``: calls by label, calls not scored and why, and the rows of
          :func:`sentiment_rates` (``period`` as ``YYYY-MM-DD``, the Monday).
        - ``topics`` : list of ``{"topic", "label", "terms", "calls", "share"}``, or ``None``
          when there are too few calls (then ``topics_error`` says why).
        - ``questions`` : list of ``{"group", "example", "calls", "share", "questions",
          "wordings", "trend"}``, the ``top`` most asked; ``question_calls`` : int, calls with a
          user turn.
    """
    langs = ds.languages()
    calls = ds.sentiment()
    labels = calls["label"].astype(object).value_counts()
    skipped = calls.loc[calls["mean"].isna(), "skipped"].astype(object).fillna("")
    foreign = skipped.str.extract(r"^language (\w+): the sentiment lexicon", expand=False)
    unknown = skipped.str.startswith("language not identified")
    by_replica = ds.sentiment_rates("replica")
    by_week = ds.sentiment_rates("week")
    rate_columns = [
        "calls",
        "scored",
        "negative",
        "neutral",
        "positive",
        "negative_rate",
        "positive_rate",
        "mean",
    ]
    figures: dict[str, Any] = {
        "transcripts": len(langs),
        "languages": _records(language_breakdown(langs), ["language", "calls", "share"]),
        "sentiment": {
            "scored": int(labels.sum()),
            **{name: int(labels.get(name, 0)) for name in LABELS},
            "not_scored": int(calls["mean"].isna().sum()),
            "not_english": {str(c): int(n) for c, n in foreign.value_counts().items()},
            "language_unknown": int(unknown.sum()),
            "no_user_words": int((foreign.isna() & ~unknown).sum()),
            "by_replica": _records(by_replica, ["replica_id", *rate_columns]),
            "by_week": _records(by_week, ["period", *rate_columns]),
        },
        "topics": None,
        "topics_error": None,
    }
    try:
        found = ds.topics(k=k)
        figures["topics"] = _records(found.topics, ["topic", "label", "terms", "calls", "share"])
        figures["topics_documents"] = found.documents
    except NotEnoughText as e:
        figures["topics_error"] = str(e)
    asked = ds.questions()
    figures["questions"] = _records(
        asked.groups.head(top),
        ["group", "example", "calls", "share", "questions", "wordings", "trend"],
    )
    figures["question_calls"] = asked.documents
    return figures


def call_summary(ds: Any, conversation: str, *, k: int = 8, top: int = 5) -> dict[str, Any]:
    """What was said in one call: its language, sentiment, dominant topic, keywords and
    questions, as plain Python values (JSON-ready).

    Returns
    -------
    dict
        ``conversation_id``; ``language`` (``{"language", "confidence", "basis", "reason"}`` or
        None); ``sentiment`` (``{"user_turns", "mean", "min", "first_third", "last_third",
        "drift", "assistant_mean", "label", "skipped"}`` or None); ``turns``: each scored turn
        ``{"turn", "role", "compound", "label", "skipped"}``; ``topic`` (``{"topic", "label",
        "weight"}`` or None: the call's dominant topic among ``k``); ``keywords`` (``{"keyword",
        "score"}``, ``top`` of them); ``questions`` (``{"turn", "question", "group"}``).

    Raises
    ------
    NotEnoughText
        When the dataset has no such conversation with a transcript.
    """
    langs = ds.languages()
    if not (langs["conversation_id"] == conversation).any():
        raise NotEnoughText(
            f"no transcript with words for conversation {conversation} in this selection: check "
            "the id (tavus-analytics search finds calls by their words)"
        )

    def one(table: pd.DataFrame) -> pd.DataFrame:
        return table[(table["conversation_id"] == conversation).to_numpy(dtype=bool)]

    language = _records(one(langs), ["language", "confidence", "basis", "reason"])
    calls = _records(
        one(ds.sentiment()),
        [
            "user_turns",
            "mean",
            "min",
            "first_third",
            "last_third",
            "drift",
            "assistant_mean",
            "label",
            "skipped",
        ],
    )
    turns = _records(one(ds.sentiment("turn")), ["turn", "role", "compound", "label", "skipped"])
    topic = None
    try:
        found = ds.topics(k=k)
        mine = one(found.calls)
        if len(mine) and pd.notna(mine["topic"].iloc[0]):
            number = int(mine["topic"].iloc[0])
            label = found.topics.set_index("topic").loc[number, "label"]
            topic = {"topic": number, "label": label, "weight": _value(mine["weight"].iloc[0])}
    except NotEnoughText:
        pass
    asked = one(ds.questions().asked)
    return {
        "conversation_id": conversation,
        "language": language[0] if language else None,
        "sentiment": calls[0] if calls else None,
        "turns": turns,
        "topic": topic,
        "keywords": _records(ds.keywords(conversation, top=top), ["keyword", "score"]),
        "questions": _records(asked, ["turn", "question", "group"]),
    }


def _pct(x: Any) -> str:
    return "-" if x is None else f"{x:.0%}"


def render(figures: dict[str, Any], *, title: str = "") -> str:
    """The figures of :func:`summary` as lines for a terminal."""
    lines = [title, ""] if title else []
    langs = figures["languages"]
    lines.append(
        "Languages      "
        + (
            ", ".join(f"{r['language']} {_pct(r['share'])} ({r['calls']:,})" for r in langs[:6])
            or "-"
        )
    )
    s = figures["sentiment"]
    if s["scored"]:
        shares = ", ".join(f"{_pct(s[n] / s['scored'])} {n}" for n in LABELS)
        lines.append(f"Sentiment      {shares} of {s['scored']:,} calls scored")
    else:
        lines.append("Sentiment      no call scored")
    if s["not_scored"]:
        why = []
        if s["not_english"]:
            codes = ", ".join(f"{code} {n:,}" for code, n in s["not_english"].items())
            why.append(f"{sum(s['not_english'].values()):,} not in English ({codes})")
        if s["language_unknown"]:
            why.append(f"{s['language_unknown']:,} of unknown language")
        if s["no_user_words"]:
            why.append(f"{s['no_user_words']:,} without words from the user")
        lines.append("               not scored: " + ", ".join(why))
    rated = [r for r in s["by_replica"] if r["scored"]]
    if rated:
        worst = sorted(rated, key=lambda r: -(r["negative_rate"] or 0))[:4]
        lines.append(
            "Negative rate  by replica: "
            + ", ".join(
                f"{r['replica_id']} {_pct(r['negative_rate'])} of {r['scored']:,}" for r in worst
            )
        )
        weeks = [r for r in s["by_week"] if r["scored"]]
        lines.append(
            "               by week: "
            + ", ".join(f"{r['period']} {_pct(r['negative_rate'])}" for r in weeks[-6:])
        )
    lines.append("")
    if figures["topics"] is None:
        lines.append(f"Topics: {figures['topics_error']}")
    else:
        lines.append(
            f"Topics ({len(figures['topics'])}, of {figures['topics_documents']:,} calls in "
            "English, by dominant topic)"
        )
        for t in figures["topics"]:
            lines.append(f"  {t['topic']:>2}  {_pct(t['share']):>4}  {t['terms']}")
    lines.append("")
    lines.append(f"Most asked questions (of {figures['question_calls']:,} calls with a user turn)")
    if not figures["questions"]:
        lines.append("  none asked in two calls or more")
    for q in figures["questions"]:
        trend = "" if q["trend"] is None else f"{100 * q['trend']:+.1f} pts/wk"
        wordings = f"{q['wordings']} wording{'s' if q['wordings'] > 1 else ''}"
        lines.append(
            f"  {q['calls']:>6,} calls {_pct(q['share']):>4}  {trend:>13}  {q['example']}  "
            f"({wordings})"
        )
    return "\n".join(lines)


def render_call(figures: dict[str, Any]) -> str:
    """The figures of :func:`call_summary` as lines for a terminal."""
    lines = [f"Conversation {figures['conversation_id']}", ""]
    lang = figures["language"]
    if lang is None or lang["language"] is None:
        lines.append(f"Language       unknown ({lang['reason'] if lang else 'no text'})")
    else:
        lines.append(
            f"Language       {lang['language']} (probability {lang['confidence']:.2f}, from "
            f"the {lang['basis']}'s words)"
        )
    s = figures["sentiment"]
    if s is None or s["mean"] is None:
        lines.append(f"Sentiment      not scored: {s['skipped'] if s else 'no turn with words'}")
    else:
        drift = (
            ""
            if s["drift"] is None
            else f", drift {s['drift']:+.2f} (last third {s['last_third']:+.2f} against first "
            f"{s['first_third']:+.2f})"
        )
        lines.append(
            f"Sentiment      {s['label']}: the user's mean {s['mean']:+.2f} over "
            f"{s['user_turns']} turns, lowest {s['min']:+.2f}{drift}"
        )
    topic = figures["topic"]
    lines.append(
        "Topic          "
        + (
            "-"
            if topic is None
            else f"{topic['topic']}: {topic['label']} ({_pct(topic['weight'])} of its topic mix)"
        )
    )
    lines.append("Keywords       " + (", ".join(k["keyword"] for k in figures["keywords"]) or "-"))
    if figures["questions"]:
        lines.append("Questions")
        for q in figures["questions"]:
            lines.append(f"  turn {q['turn']:>3}  {q['question']}")
    return "\n".join(lines)
