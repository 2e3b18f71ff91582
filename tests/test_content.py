"""Content analysis: sentiment, language, topics, questions, keywords, the cache, and the demo
data they are meant to find things in. Everything here runs offline."""

from __future__ import annotations

import json
import logging
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tavus_analytics as ta
from tavus_analytics import content, content_cache, demo
from tavus_analytics.errors import MissingExtra, NotEnoughText
from tavus_analytics.frames import count_words
from tavus_analytics.store import Store
from tavus_analytics.testing import clean_environment

ROOT = Path(__file__).resolve().parent.parent


# -- building transcripts ------------------------------------------------------------------------
def envelope(cid, event_type, timestamp, **properties):
    return json.dumps(
        {
            "properties": properties,
            "conversation_id": cid,
            "event_type": event_type,
            "message_type": "application" if event_type.startswith("app") else "system",
            "timestamp": timestamp,
        },
        ensure_ascii=False,
    ).encode()


def call(cid, messages, *, replica="r1", day="2026-10-05", hour=10):
    """The join, shutdown and transcript callbacks of one call; messages are (role, text)."""
    start = f"{day}T{hour:02d}:00:00.000000Z"
    end = f"{day}T{hour:02d}:10:00.000000Z"
    transcript = [{"role": "system", "content": "You are a support agent."}]
    transcript += [{"role": r, "content": c} for r, c in messages]
    return [
        envelope(cid, "system.replica_joined", start, replica_id=replica),
        envelope(
            cid, "system.shutdown", end, replica_id=replica, shutdown_reason="participant_left"
        ),
        envelope(
            cid, "application.transcription_ready", end, replica_id=replica, transcript=transcript
        ),
    ]


def database(path, calls):
    store = Store(path)
    try:
        store.insert_batch([body for c in calls for body in c])
    finally:
        store.close()
    return path


def turns_of(conversations: dict[str, list[tuple[str, str]]]) -> pd.DataFrame:
    """A hand-made turns table: conversation_id, turn, role, content, words."""
    rows = [
        (cid, i, role, text)
        for cid, messages in conversations.items()
        for i, (role, text) in enumerate(messages, start=1)
    ]
    cids, nums, roles, texts = map(list, zip(*rows, strict=True))
    return pd.DataFrame(
        {
            "conversation_id": cids,
            "turn": np.asarray(nums, dtype="int64"),
            "role": roles,
            "content": texts,
            "words": count_words(texts),
        }
    )


# -- sentiment -----------------------------------------------------------------------------------
def test_fixed_sentences_have_the_expected_sign():
    turns = turns_of(
        {
            "happy": [("user", "I love it, thank you so much, this is wonderful!")],
            "angry": [("user", "This is terrible, I am furious and nothing works.")],
            "plain": [("user", "The server is in Frankfurt.")],
            "agent": [("assistant", "I'm sorry, that is a horrible experience.")],
        }
    )
    scored = content.turn_sentiment(turns).set_index("conversation_id")
    assert scored.loc["happy", "compound"] > 0.5 and scored.loc["happy", "label"] == "positive"
    assert scored.loc["angry", "compound"] < -0.5 and scored.loc["angry", "label"] == "negative"
    assert scored.loc["plain", "compound"] == 0 and scored.loc["plain", "label"] == "neutral"
    assert scored.loc["agent", "compound"] < 0 and scored.loc["agent", "role"] == "assistant"
    assert scored["skipped"].isna().all()
    assert str(scored["compound"].dtype) == "float64"
    assert list(scored["label"].cat.categories) == ["negative", "neutral", "positive"]


def test_the_thresholds_hold_exactly():
    assert (content.POSITIVE, content.NEGATIVE) == (0.05, -0.05)
    cases = {
        1.0: "positive",
        0.05: "positive",
        0.049999: "neutral",
        0.0: "neutral",
        -0.049999: "neutral",
        -0.05: "negative",
        -1.0: "negative",
    }
    for score, label in cases.items():
        assert content.sentiment_label(score) == label, score
    assert content.sentiment_label(float("nan")) is pd.NA
    vector = content.sentiment_label(pd.Series([*cases, np.nan]))
    assert list(vector.astype(object).iloc[:-1]) == list(cases.values())
    assert pd.isna(vector.iloc[-1])


def test_a_calls_mean_minimum_and_drift():
    compounds = [0.5, 0.4, 0.0, -0.2, -0.6, -0.9]
    scored = pd.DataFrame(
        {
            "conversation_id": ["c1"] * 7,
            "turn": np.arange(1, 8, dtype="int64"),
            "role": pd.Categorical(["user"] * 6 + ["assistant"], categories=["user", "assistant"]),
            "compound": [*compounds, 0.3],
            "label": content.sentiment_label(np.array([*compounds, 0.3])),
            "skipped": pd.Categorical([None] * 7),
        }
    )
    (row,) = content.call_sentiment(scored).to_dict("records")
    assert row["user_turns"] == 6
    assert row["mean"] == pytest.approx(np.mean(compounds))
    assert row["min"] == -0.9
    assert row["first_third"] == pytest.approx(0.45)
    assert row["last_third"] == pytest.approx(-0.75)
    assert row["drift"] == pytest.approx(-1.2)
    assert row["assistant_mean"] == pytest.approx(0.3)
    assert row["label"] == "negative" and pd.isna(row["skipped"])
    two = content.call_sentiment(scored[scored["turn"] <= 2])
    assert two["mean"].iloc[0] == pytest.approx(0.45) and pd.isna(two["drift"].iloc[0])


# -- language ------------------------------------------------------------------------------------
LANGUAGES = {
    "es": "Hola, quiero cancelar mi suscripción porque es demasiado cara. ¿Cómo puedo hacerlo? "
    "Muchas gracias por su ayuda.",
    "fr": "Bonjour, je voudrais résilier mon abonnement, il est trop cher pour nous. Comment "
    "est-ce que je peux faire ? Merci beaucoup.",
    "en": "Hello, I would like to cancel my subscription because it is too expensive for us. "
    "How can I do that? Thank you.",
}


def test_a_spanish_and_a_french_transcript_are_identified_and_not_scored():
    turns = turns_of({lang: [("user", text)] for lang, text in LANGUAGES.items()})
    found = content.languages(turns).set_index("conversation_id")
    for lang in LANGUAGES:
        assert found.loc[lang, "language"] == lang
        assert found.loc[lang, "confidence"] > 0.9 and found.loc[lang, "basis"] == "user"
        assert pd.isna(found.loc[lang, "reason"])
    scored = content.turn_sentiment(turns, found.reset_index()).set_index("conversation_id")
    assert pd.notna(scored.loc["en", "compound"])
    for lang in ("es", "fr"):
        assert pd.isna(scored.loc[lang, "compound"]) and pd.isna(scored.loc[lang, "label"])
        assert scored.loc[lang, "skipped"] == f"language {lang}: the sentiment lexicon is English"
    calls = content.call_sentiment(scored.reset_index()).set_index("conversation_id")
    assert calls.loc["es", "skipped"] == "language es: the sentiment lexicon is English"
    breakdown = content.language_breakdown(found.reset_index())
    assert sorted(breakdown["language"]) == ["en", "es", "fr"]
    assert breakdown["calls"].sum() == 3 and breakdown["share"].sum() == pytest.approx(1)


def test_too_little_text_has_no_language_and_says_why():
    turns = turns_of({"short": [("user", "Okay.")], "none": [("assistant", "Hi!")]})
    found = content.languages(turns).set_index("conversation_id")
    assert found["language"].isna().all()
    assert found.loc["short", "reason"].startswith("too little text to identify")
    assert found.loc["short", "basis"] == "user+assistant"
    scored = content.turn_sentiment(turns, found.reset_index())
    assert scored["skipped"].astype(str).str.startswith("language not identified").all()
    assert content.language_breakdown(found.reset_index())["language"].tolist() == ["unknown"]


# -- topics --------------------------------------------------------------------------------------
THEMES = {
    "billing": ["invoice", "refund", "charge", "payment"],
    "travel": ["flight", "hotel", "luggage", "airport"],
    "garden": ["tomatoes", "compost", "seeds", "watering"],
}
COMMON_TEXT = "I have a question about the today and I wonder what you think about it"
COMMON = COMMON_TEXT.split()


def planted_corpus(calls_per_theme=12, seed=3) -> pd.DataFrame:
    rng = random.Random(seed)
    conversations = {}
    for theme, words in THEMES.items():
        for i in range(calls_per_theme):
            turns = []
            for _ in range(4):
                sentence = rng.sample(COMMON, 5) + rng.sample(words, 2)
                rng.shuffle(sentence)
                turns.append(("user", " ".join(sentence) + "."))
                turns.append(("assistant", "Let me look into that for you."))
            conversations[f"{theme}-{i:02d}"] = turns
    return turns_of(conversations)


def test_a_planted_corpus_of_three_themes_gives_three_topics_every_time():
    turns = planted_corpus()
    found = content.topics(turns, k=3, keep_languages=None)
    assert found.documents == 36 and found.converged
    assert list(found.topics["topic"]) == [0, 1, 2]
    theme_of_topic = {}
    for topic, terms in found.terms.groupby("topic"):
        top = set(terms.sort_values("rank")["term"].head(6))
        (theme,) = [t for t, words in THEMES.items() if len(top & set(words)) >= 3]
        theme_of_topic[topic] = theme
    assert sorted(theme_of_topic.values()) == sorted(THEMES)
    calls = found.calls.assign(theme=found.calls["conversation_id"].str.split("-").str[0])
    assert (calls["topic"].map(theme_of_topic) == calls["theme"]).all()
    assert found.topics["calls"].tolist() == [12, 12, 12]
    again = content.topics(turns, k=3, keep_languages=None)
    for name in ("topics", "terms", "calls"):
        pd.testing.assert_frame_equal(getattr(found, name), getattr(again, name))


def test_fewer_calls_than_topics_is_a_clear_error(tmp_path):
    turns = planted_corpus(calls_per_theme=1)
    with pytest.raises(NotEnoughText) as info:
        content.topics(turns, k=5, keep_languages=None)
    assert str(info.value) == (
        "topics(k=5) needs at least 5 calls with words from the user; this selection has 3: "
        "choose a smaller k or a wider selection"
    )
    db = database(tmp_path / "t.db", [call("c1", [("user", LANGUAGES["en"])])])
    with pytest.raises(NotEnoughText, match=r"topics\(k=2\) .* in en; this selection has 1"):
        ta.load(db).topics(k=2)
    with pytest.raises(ValueError, match="k must be 1 or more"):
        content.topics(turns, k=0)


def test_topic_shares_per_week_and_replica(tmp_path):
    corpus = planted_corpus(calls_per_theme=6)
    calls = []
    for i, (cid, part) in enumerate(corpus.groupby("conversation_id", sort=True)):
        messages = list(zip(part["role"], part["content"], strict=True))
        day = "2026-10-05" if i % 2 else "2026-10-13"
        calls.append(call(cid, messages, replica=f"r{i % 3}", day=day))
    db = database(tmp_path / "t.db", calls)
    found = ta.load(db).topics(k=3, keep_languages=None)
    week = found.by_week
    assert list(week["period"].unique()) == list(
        pd.to_datetime(["2026-10-05", "2026-10-12"], utc=True)
    )
    assert week.groupby("period")["share"].sum().round(9).tolist() == [1.0, 1.0]
    assert week["calls"].sum() == 18
    replica = found.by_replica
    assert sorted(replica["replica_id"].unique()) == ["r0", "r1", "r2"]
    assert replica.groupby("replica_id")["calls"].sum().tolist() == [6, 6, 6]


# -- questions -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sentence", "asks"),
    [
        ("How do I cancel my plan?", True),
        ("so um how do I cancel my plan", True),
        ("Can you help me", True),
        ("¿Cómo cancelo mi cuenta?", True),
        ("Comment résilier mon abonnement ?", True),
        ("Okay.", False),
        ("Oh, what a relief.", False),
        ("How lovely is that!", False),
        ("Really?", False),
        ("I want to cancel my plan.", False),
    ],
)
def test_what_counts_as_a_question(sentence, asks):
    assert content.is_question(sentence) is asks


def test_rewordings_of_a_question_are_one_group_with_counts_an_example_and_a_trend(tmp_path):
    asked = {
        "How do I cancel my subscription?": ["2026-10-05", "2026-10-13", "2026-10-20"],
        "How can I cancel my subscriptions?": ["2026-10-20", "2026-10-21"],
        "Where can I download my invoices?": ["2026-10-06", "2026-10-07"],
        "Where do I download the invoice?": ["2026-10-07", "2026-10-14"],
        "Is the coffee machine broken?": ["2026-10-08"],
    }
    calls, n = [], 0
    for question, days in asked.items():
        for day in days:
            n += 1
            messages = [("user", f"Hello there. {question} Thanks."), ("assistant", "Sure.")]
            calls.append(call(f"c{n}", messages, day=day))
    calls.append(call("quiet", [("user", "I just wanted to say hello.")], day="2026-10-15"))
    db = database(tmp_path / "q.db", calls)
    found = ta.load(db).questions()
    assert found.documents == 11
    groups = found.groups.set_index("example")
    assert list(groups.index) == [
        "How do I cancel my subscription?",
        "Where can I download my invoices?",
    ]  # the coffee machine was asked once: below min_calls
    cancel = groups.loc["How do I cancel my subscription?"]
    assert (cancel["calls"], cancel["questions"], cancel["wordings"]) == (5, 5, 2)
    assert cancel["share"] == pytest.approx(5 / 11)
    assert cancel["trend"] > 0  # asked more and more
    assert groups.loc["Where can I download my invoices?", "trend"] < 0
    assert len(found.asked) == 10 and found.asked["group"].isna().sum() == 1
    weekly = found.weekly[found.weekly["group"] == 0]
    assert weekly["calls"].tolist() == [1, 1, 3]
    # calls with a user turn per week: 5 (5 to 11 October), 3 (12 to 18), 3 (19 to 25)
    assert weekly["share"].tolist() == pytest.approx([1 / 5, 1 / 3, 3 / 3])


# -- keywords ------------------------------------------------------------------------------------
def test_keywords_of_one_call(tmp_path):
    text = (
        "My tomatoes are dying. I put compost on the tomatoes last week. The compost smells "
        "strange and the tomatoes have yellow leaves."
    )
    other = "The invoice shows a double charge on my credit card."
    calls = [
        call("c1", [("user", text)]),
        call("c2", [("user", other)]),
        call("c3", [("user", "Hi")]),
    ]
    db = database(tmp_path / "k.db", calls)
    ds = ta.load(db)
    found = ds.keywords("c1", top=3)
    assert found["conversation_id"].unique().tolist() == ["c1"]
    assert found["rank"].tolist() == [1, 2, 3]
    assert {"tomatoes", "compost"} & set(found["keyword"].str.lower())
    assert found["score"].is_monotonic_increasing
    every = ds.keywords()
    assert set(every["conversation_id"]) == {"c1", "c2"}  # "Hi" has no keyword
    assert "invoice" in set(every.loc[every["conversation_id"] == "c2", "keyword"].str.lower())


# -- the Dataset, its filters and the cache -------------------------------------------------------
@pytest.fixture
def mixed_db(tmp_path):
    calls = [
        call("good", [("user", "This is wonderful, thank you so much!"), ("user", "I love it.")]),
        call(
            "bad",
            [("user", "This is awful. I hate it."), ("user", "Terrible service.")],
            replica="r2",
        ),
        call("es", [("user", LANGUAGES["es"])], replica="r2", day="2026-10-13"),
    ]
    return database(tmp_path / "mixed.db", calls)


def test_the_dataset_methods_and_a_filtered_dataset(mixed_db):
    ds = ta.load(mixed_db)
    calls = ds.sentiment().set_index("conversation_id")
    assert calls.loc["good", "label"] == "positive" and calls.loc["bad", "label"] == "negative"
    assert calls.loc["es", "skipped"] == "language es: the sentiment lexicon is English"
    assert set(ds.sentiment("turn")["conversation_id"]) == {"good", "bad", "es"}
    languages = ds.languages().set_index("conversation_id")["language"].to_dict()
    assert languages == {"good": "en", "bad": "en", "es": "es"}
    rates = ds.sentiment_rates("replica").set_index("replica_id")
    assert rates.loc["r1", ["calls", "scored", "positive"]].tolist() == [1, 1, 1]
    assert rates.loc["r2", ["calls", "scored", "negative"]].tolist() == [2, 1, 1]
    assert rates.loc["r2", "negative_rate"] == 1.0
    weeks = ds.sentiment_rates("week")
    assert weeks["period"].tolist() == list(pd.to_datetime(["2026-10-05", "2026-10-12"], utc=True))
    assert weeks["calls"].tolist() == [2, 1] and weeks["scored"].tolist() == [2, 0]
    only = ds.filter(replicas=["r2"])
    assert set(only.sentiment()["conversation_id"]) == {"bad", "es"}
    assert set(only.languages()["conversation_id"]) == {"bad", "es"}
    with pytest.raises(ValueError, match="level must be 'call' or 'turn'"):
        ds.sentiment("week")


def test_a_reopen_reads_the_cache_and_a_new_transcript_does_not(mixed_db, tmp_path, monkeypatch):
    monkeypatch.setenv(content_cache.ENV, str(tmp_path / "cache"))
    first = ta.load(mixed_db)
    results = {
        "calls": first.sentiment(),
        "turns": first.sentiment("turn"),
        "languages": first.languages(),
        "topics": first.topics(k=2, keep_languages=None).topics,
        "questions": first.questions().asked,
    }
    entries = sorted((tmp_path / "cache").glob("*.zip"))
    assert len(entries) == 4  # languages, sentiment, topics, questions

    def redone(*args, **kwargs):
        raise AssertionError("recomputed instead of read from the cache")

    for name in ("languages", "turn_sentiment", "_fit_topics", "_group_questions"):
        monkeypatch.setattr(content, name, redone)
    again = ta.load(mixed_db)
    pd.testing.assert_frame_equal(again.sentiment(), results["calls"])
    pd.testing.assert_frame_equal(again.sentiment("turn"), results["turns"])
    pd.testing.assert_frame_equal(again.languages(), results["languages"])
    pd.testing.assert_frame_equal(again.topics(k=2, keep_languages=None).topics, results["topics"])
    pd.testing.assert_frame_equal(again.questions().asked, results["questions"])
    assert "turns" not in again.__dict__  # the transcripts were not even read
    # A callback of another kind does not change what was analysed; a new transcript does.
    store = Store(mixed_db)
    store.insert_batch(
        [envelope("good", "application.perception_unavailable", "2026-10-05T10:11:00Z")]
    )
    ta.load(mixed_db).sentiment()
    store.insert_batch(call("late", [("user", "One more thing, thanks a lot!")]))
    store.close()
    with pytest.raises(AssertionError, match="recomputed"):
        ta.load(mixed_db).sentiment()


def test_the_cache_is_never_required(mixed_db, tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(content_cache.ENV, str(blocker / "cache"))
    with caplog.at_level(logging.WARNING, logger="tavus_analytics.content_cache"):
        assert len(ta.load(mixed_db).sentiment()) == 3
    assert "cannot store an entry" in caplog.text and "the analysis is redone" in caplog.text
    folder = tmp_path / "cache"
    monkeypatch.setenv(content_cache.ENV, str(folder))
    expected = ta.load(mixed_db).sentiment()
    entries = sorted(folder.glob("*.zip"))
    assert len(entries) == 2  # languages, then sentiment
    for entry in entries:
        entry.write_bytes(b"damaged")
    pd.testing.assert_frame_equal(ta.load(mixed_db).sentiment(), expected)
    assert all(entry.read_bytes() != b"damaged" for entry in entries)  # written again, whole
    assert not list(folder.glob(".*.tmp"))


def test_the_cache_folder(tmp_path):
    assert content_cache.cache_dir({content_cache.ENV: str(tmp_path)}) == tmp_path
    if sys.platform.startswith("linux"):
        assert content_cache.cache_dir({"XDG_CACHE_HOME": "/x"}) == Path("/x/tavus-analytics")
        assert content_cache.cache_dir({}) == Path.home() / ".cache" / "tavus-analytics"
    key = content_cache.key(a=1, b=[1, 2])
    assert key == content_cache.key(b=[1, 2], a=1) and key != content_cache.key(a=2, b=[1, 2])


# -- offline, and without the extra -------------------------------------------------------------
def test_every_analysis_runs_with_the_network_blocked(tmp_path):
    """A fresh interpreter whose sockets cannot connect imports the packages, loads their models
    and runs every analysis, with warnings as errors and an empty cache."""
    db = tmp_path / "demo.db"
    demo.write(db, conversations=150, seed=2)
    script = tmp_path / "offline.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import socket

            def refuse(*args, **kwargs):
                raise OSError("network access is blocked in this test")

            socket.socket.connect = refuse
            socket.socket.connect_ex = refuse
            socket.create_connection = refuse
            socket.getaddrinfo = refuse
            try:
                socket.create_connection(("127.0.0.1", 9))
            except OSError as e:
                assert "blocked" in str(e)
            else:
                raise SystemExit("the network is not blocked")

            import tavus_analytics as ta
            from tavus_analytics import charts

            ds = ta.load({str(db)!r})
            assert len(ds.languages()) > 50
            assert ds.language_breakdown()["calls"].sum() == len(ds.languages())
            assert ds.sentiment()["label"].notna().sum() > 50
            assert len(ds.sentiment("turn")) > 500
            assert len(ds.sentiment_rates("week")) and len(ds.sentiment_rates("replica"))
            assert len(ds.topics(k=5).topics) == 5
            assert len(ds.questions().groups) > 5
            calls = ds.sentiment()
            busiest = calls.loc[calls["user_turns"].idxmax(), "conversation_id"]
            assert len(ds.keywords(busiest)) == 5
            assert ds.keywords()["conversation_id"].nunique() > 50
            for name, chart in charts.CONTENT_CHARTS.items():
                assert chart(ds).axes, name
            print("offline ok")
            """
        )
    )
    env = {"TAVUS_ANALYTICS_CACHE_DIR": str(tmp_path / "cache"), "MPLBACKEND": "Agg"}
    done = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=clean_environment(**env),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "offline ok"


@pytest.mark.parametrize(
    ("package", "analysis", "what"),
    [
        ("vaderSentiment", lambda ds: ds.sentiment(), "sentiment analysis"),
        ("py3langid", lambda ds: ds.languages(), "language identification"),
        ("sklearn", lambda ds: ds.topics(k=1, keep_languages=None), "topics and questions"),
        ("yake", lambda ds: ds.keywords("good"), "keywords"),
    ],
)
def test_without_the_extra_each_analysis_says_which_to_install(
    package, analysis, what, mixed_db, monkeypatch
):
    for name in [m for m in sys.modules if m.split(".")[0] == package]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, package, None)  # importing it now fails
    for cached in (content._vader, content._langid, content._yake):
        cached.cache_clear()
    monkeypatch.setattr(content_cache, "get", lambda *a, **k: None)
    with pytest.raises(MissingExtra) as info:
        analysis(ta.load(mixed_db))
    assert str(info.value) == (
        f"{what} needs the optional package {package}: pip install 'tavus-analytics[nlp]'"
    )
    assert info.value.extra == "nlp"
    for cached in (content._vader, content._langid, content._yake):
        cached.cache_clear()


# -- the demo has something to find ---------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_ds(tmp_path_factory):
    path = tmp_path_factory.mktemp("content-demo") / "demo.db"
    demo.write(path, conversations=1500, seed=0)
    return ta.load(path)


def test_the_demo_has_languages_moods_and_a_replica_that_goes_sour(demo_ds):
    langs = demo_ds.language_breakdown().set_index("language")["share"]
    assert langs.index[0] == "en" and langs["en"] > 0.6
    assert langs["es"] > 0.05 and langs["fr"] > 0.05
    calls = demo_ds.sentiment()
    labels = calls["label"].value_counts()
    assert labels["negative"] > 0.1 * labels.sum() and labels["positive"] > 0.3 * labels.sum()
    drift = calls.groupby("label", observed=True)["drift"].median()
    assert drift["negative"] < 0 < drift["positive"]  # sour calls end worse than they began
    rates = demo_ds.sentiment_rates("replica")
    rates = rates[rates["scored"] >= 50].set_index("replica_id")["negative_rate"]
    assert rates.max() > 1.5 * rates.drop(rates.idxmax()).max()


def test_the_demo_has_themes_that_topics_find_and_questions_reworded(demo_ds):
    found = demo_ds.topics(k=7)
    terms = set(found.terms["term"])
    for planted in ("invoice", "cancel", "firewall", "appointment", "interview", "hotel"):
        assert planted in terms, planted
    assert found.topics["share"].max() < 0.35  # no topic swallows the rest
    weekly = found.by_week.pivot(index="period", columns="topic", values="share")
    assert len(weekly) >= 6
    questions = demo_ds.questions().groups
    assert len(questions) >= 20 and (questions["wordings"] >= 2).sum() >= 10
    assert questions["example"].str.endswith("?").all()


# -- the command line ------------------------------------------------------------------------------
def test_the_content_command(demo_ds):
    from conftest import run

    db = str(demo_ds.path)
    text = run("content", "--db", db, "--topics", "5", "--top", "4")
    assert text.exit_code == 0, text.output
    lines = text.output.splitlines()
    assert lines[0] == f"What callers say: {db} ({len(demo_ds.languages()):,} transcripts)"
    top = demo_ds.language_breakdown().iloc[0]
    assert any(line.startswith(f"Languages      {top.language} {top.share:.0%}") for line in lines)
    assert "Topics (5, of " in text.output
    asked = demo_ds.questions().groups.head(4)
    assert all(example in text.output for example in asked["example"])

    as_json = run("content", "--db", db, "--topics", "5", "--top", "4", "--json")
    figures = json.loads(as_json.output)
    assert figures["database"] == db and figures["filters"]["replicas"] is None
    assert sum(r["calls"] for r in figures["languages"]) == figures["transcripts"]
    s = figures["sentiment"]
    assert s["scored"] == demo_ds.sentiment()["label"].notna().sum()
    assert s["scored"] == s["negative"] + s["neutral"] + s["positive"]
    not_scored = sum(s["not_english"].values()) + s["language_unknown"] + s["no_user_words"]
    assert s["not_scored"] == not_scored
    assert [t["topic"] for t in figures["topics"]] == [0, 1, 2, 3, 4]
    assert [q["example"] for q in figures["questions"]] == list(asked["example"])
    assert all(w["period"] >= "2026-09-14" for w in s["by_week"])

    few = run("content", "--db", db, "--topics", "100000")
    assert few.exit_code == 0
    assert "Topics: topics(k=100000) needs at least 100000 calls" in few.output


def test_the_content_command_on_one_call(demo_ds):
    from conftest import run

    calls = demo_ds.sentiment()
    sour = calls.loc[calls["drift"].idxmin()]
    db = str(demo_ds.path)
    text = run("content", "--db", db, "--conversation", sour["conversation_id"])
    assert text.exit_code == 0, text.output
    assert text.output.startswith(f"Conversation {sour['conversation_id']}\n")
    assert f"drift {sour['drift']:+.2f}" in text.output
    figures = json.loads(
        run("content", "--db", db, "--conversation", sour.conversation_id, "--json").output
    )
    assert figures["sentiment"]["label"] == sour["label"]
    assert len(figures["keywords"]) == 5 and figures["language"]["language"] == "en"
    assert figures["turns"] and all(t["role"] in ("user", "assistant") for t in figures["turns"])
    missing = run("content", "--db", db, "--conversation", "c-nope")
    assert missing.exit_code == 1
    assert missing.output == (
        "Error: no transcript with words for conversation c-nope in this selection: check the id "
        "(tavus-analytics search finds calls by their words)\n"
    )


def test_the_content_command_without_the_extra_is_one_line(mixed_db, monkeypatch):
    from conftest import run

    for name in [m for m in sys.modules if m.split(".")[0] == "vaderSentiment"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "vaderSentiment", None)
    content._vader.cache_clear()
    monkeypatch.setattr(content_cache, "get", lambda *a, **k: None)
    result = run("content", "--db", mixed_db)
    content._vader.cache_clear()
    assert result.exit_code == 1
    assert result.output == (
        "Error: sentiment analysis needs the optional package vaderSentiment: "
        "pip install 'tavus-analytics[nlp]'\n"
    )
