"""Demo data: reproducible, every documented shape, arrival order, and the three ways out
(generate, write into a database, post to the real collector)."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from datetime import UTC, datetime

import orjson
import pytest
from click.testing import CliRunner
from conftest import SECRET, query

from tavus_analytics import Settings, TavusAnalyticsError
from tavus_analytics import demo as demo_mod
from tavus_analytics.cli import cli
from tavus_analytics.demo import DEFAULT_END, generate, post, write
from tavus_analytics.events import (
    CATEGORY_OUTCOME,
    KIND_CONVERSATION,
    KIND_REPLICA_TRAINING,
    KIND_VIDEO,
    classify,
    parse_body,
    shutdown_category,
    shutdown_error_step,
)
from tavus_analytics.server import start_in_thread, stop

ISO_US = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
VIDEO_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$")
CONVERSATION_ID = re.compile(r"^c[0-9a-f]{12}$")
REPLICA_ID = re.compile(r"^r[0-9a-f]{9}$")
PERCEPTION_START = re.compile(
    r"^Here's a summary of the visual observations taken during the video call over the last "
    r"(\d+) seconds:\n\n"
)
STANDARD_SECTIONS = [
    "**User Appearance**",
    "**User Behavior & Actions**",
    "**Emotional States & Patterns**",
    "**Notable Screen Activities**",
]
EVENT_TYPES = {
    "system.replica_joined",
    "system.pal_joined",
    "system.shutdown",
    "application.transcription_ready",
    "application.recording_ready",
    "application.recording_copy_failed",
    "application.perception_analysis",
    "application.perception_unavailable",
    "application.post_call_action_executed",
    "application.memory_consolidation",
}


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def items():
    """(body, received_at, parsed) for 300 conversations, seed 0."""
    return [(b, r, orjson.loads(b)) for b, r in generate(300, seed=0)]


@pytest.fixture(scope="module")
def conversations(items):
    """conversation_id -> {event_type: [parsed body, ...]}, duplicates removed."""
    by_id: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    seen = set()
    for body, _, obj in items:
        if "event_type" in obj and body not in seen and classify(obj).kind == KIND_CONVERSATION:
            seen.add(body)
            by_id[obj["conversation_id"]][obj["event_type"]].append(obj)
    return by_id


def test_same_seed_gives_the_same_bytes_and_another_seed_other_bytes():
    first = list(generate(60, seed=7))
    assert first == list(generate(60, seed=7))
    other = list(generate(60, seed=8))
    assert {b for b, _ in first}.isdisjoint({b for b, _ in other})
    shifted = list(generate(60, seed=7, end=datetime(2025, 1, 1, tzinfo=UTC)))
    assert [b for b, _ in shifted] != [b for b, _ in first]


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="conversations"):
        next(generate(-1))
    with pytest.raises(ValueError, match="days"):
        next(generate(10, days=0))


def test_every_body_is_a_json_object_of_the_intended_kind(items):
    kinds = Counter()
    for body, _, obj in items:
        fields = classify(parse_body(body))
        if fields.kind in ("objective", "guardrail", "canvas"):
            intended = fields.kind  # the 2026 shapes: test_tavus_2026 checks them
            assert CONVERSATION_ID.match(obj["conversation_id"])
        elif "event_type" in obj:
            intended = KIND_CONVERSATION
            assert list(obj) == [
                "properties",
                "conversation_id",
                "webhook_url",
                "event_type",
                "message_type",
                "timestamp",
            ]
            assert CONVERSATION_ID.match(obj["conversation_id"])
            assert ISO_US.match(obj["timestamp"])
            assert obj["message_type"] == obj["event_type"].split(".")[0]
            assert obj["webhook_url"].startswith("https://")
            assert obj["webhook_url"].endswith("/webhook")
        elif "video_id" in obj:
            intended = KIND_VIDEO
            assert VIDEO_TIME.match(obj["created_at"]) and VIDEO_TIME.match(obj["updated_at"])
            assert obj["created_at"] <= obj["updated_at"]
            assert fields.timestamp == obj["updated_at"]
        else:
            intended = KIND_REPLICA_TRAINING
            assert set(obj) <= {"replica_id", "status", "error_message"}
        assert fields.kind == intended
        assert fields.replica_id is None or REPLICA_ID.match(fields.replica_id)
        kinds[intended] += 1
    assert set(kinds) == {
        KIND_CONVERSATION, KIND_VIDEO, KIND_REPLICA_TRAINING, "objective", "guardrail", "canvas"
    }  # fmt: skip
    assert {
        obj["event_type"] for _, _, obj in items if classify(obj).kind == KIND_CONVERSATION
    } == EVENT_TYPES


def test_received_at_is_sorted_iso_and_after_the_senders_timestamp(items):
    received = [r for _, r, _ in items]
    assert all(ISO_MS.match(r) for r in received)
    assert received == sorted(received)
    assert received[-1] <= DEFAULT_END.isoformat().replace("+00:00", "Z")
    lags = []
    for _, r, obj in items:
        sent = obj.get("timestamp") or obj.get("updated_at")
        if sent is None:  # replica training: no timestamp of its own
            continue
        sent_at = ts(sent) if sent.endswith("Z") else ts(sent).replace(tzinfo=UTC)
        lag = (ts(r) - sent_at).total_seconds()
        assert -0.001 <= lag <= 95, (r, sent)
        lags.append(lag)
    lags.sort()
    assert 0.01 < lags[len(lags) // 2] < 0.5  # tens of milliseconds is typical


def test_conversations_spread_over_the_period_on_weekdays_and_daytime(items):
    joins = [
        ts(obj["timestamp"])
        for _, _, obj in items
        if obj.get("event_type") == "system.replica_joined"
    ]
    assert min(joins) >= datetime(2026, 9, 20, tzinfo=UTC)  # 42 days before the end
    assert len({j.date() for j in joins}) > 30
    weekday = sum(j.weekday() < 5 for j in joins) / len(joins)
    night = sum(1 <= j.hour < 5 for j in joins) / len(joins)
    assert weekday > 5 / 7 + 0.05
    assert night < 4 / 24 - 0.05


def test_replicas_personas_and_join_twins(items, conversations):
    replicas = Counter(
        obj["properties"]["replica_id"]
        for _, _, obj in items
        if obj.get("event_type") == "system.replica_joined"
    )
    assert 4 <= len(replicas) <= 6
    counts = sorted(replicas.values())
    assert counts[-1] > 2 * counts[0]  # some replicas are more popular
    twins = 0
    for events in conversations.values():
        for pal in events.get("system.pal_joined", []):
            (joined,) = events["system.replica_joined"]
            assert pal["timestamp"] == joined["timestamp"]
            assert pal["properties"] == {"face_id": joined["properties"]["replica_id"]}
            twins += 1
    assert 0.1 * len(conversations) < twins < 0.9 * len(conversations)
    prompts = {
        events["application.transcription_ready"][0]["properties"]["transcript"][0]["content"][:40]
        for events in conversations.values()
        if "application.transcription_ready" in events
    }
    assert len(prompts) >= 4  # several personas


def test_shutdown_reasons_every_documented_one_with_and_without_reached(items):
    reasons = [
        obj["properties"]["shutdown_reason"]
        for _, _, obj in items
        if obj.get("event_type") == "system.shutdown"
    ]
    categories = Counter(shutdown_category(r) for r in reasons)
    assert set(categories) == set(CATEGORY_OUTCOME) - {"other"}
    assert categories.most_common(1)[0][0] == "participant_left"
    for base in ("participant_left_timeout", "participant_absent_timeout", "max_call_duration"):
        assert base in reasons
        assert base + " reached" in reasons
    errors = [r for r in reasons if shutdown_category(r) == "internal_error"]
    steps = {shutdown_error_step(r) for r in errors}
    assert len(steps) >= 3
    assert all(r == f"internal error occurred at step {shutdown_error_step(r)}" for r in errors)


def test_durations_follow_the_reason(conversations):
    maxima = {900, 1200, 1800, 2700, 3600}
    by_category = defaultdict(list)
    for events in conversations.values():
        if "system.shutdown" not in events or "system.replica_joined" not in events:
            continue
        start = ts(events["system.replica_joined"][0]["timestamp"])
        (shutdown,) = events["system.shutdown"]
        seconds = (ts(shutdown["timestamp"]) - start).total_seconds()
        category = shutdown_category(shutdown["properties"]["shutdown_reason"])
        by_category[category].append(seconds)
        if category == "max_duration":
            assert any(m <= seconds <= m + 3 for m in maxima), seconds
        if category == "participant_absent":
            assert seconds < 3 or any(t <= seconds <= t + 3 for t in (120, 180, 300)), seconds
            transcript = events.get("application.transcription_ready")
            if transcript:
                roles = [m["role"] for m in transcript[0]["properties"]["transcript"]]
                assert "user" not in roles  # a no-show
    left = sorted(by_category["participant_left"])
    assert left[0] < 30 and 120 < left[len(left) // 2] < 600 and left[-1] > 900
    assert min(by_category["participant_absent"]) < 3  # some shut down at once


def test_transcripts(conversations):
    transcripts = [
        (
            events["system.replica_joined"][0],
            events["system.shutdown"][0],
            events["application.transcription_ready"][0],
        )
        for events in conversations.values()
        if "application.transcription_ready" in events and "system.replica_joined" in events
    ]
    assert len(transcripts) > 0.6 * len(conversations)
    features = Counter()
    for joined, shutdown, ready in transcripts:
        gap = (ts(ready["timestamp"]) - ts(shutdown["timestamp"])).total_seconds()
        assert 0 < gap < 0.005  # about 1 ms after the shutdown
        call = (ts(shutdown["timestamp"]) - ts(joined["timestamp"])).total_seconds()
        messages = ready["properties"]["transcript"]
        assert messages[0]["role"] == "system" and len(messages[0]["content"]) > 2000
        turns = [m for m in messages if m["role"] in ("user", "assistant") and m["content"]]
        assert 1 <= len(turns) <= 60
        for m in messages[1:]:
            if m["role"] == "system":
                assert m["content"].startswith("Information from documents")
                features["documents"] += 1
            if m["role"] == "tool":
                assert any(
                    c["id"] == m["tool_call_id"]
                    for other in messages
                    for c in other.get("tool_calls", [])
                )
                features["tool"] += 1
            if isinstance(m.get("timestamp"), str):
                assert ISO_US.match(m["timestamp"])
                features["iso timestamp"] += 1
            if isinstance(m.get("timestamp"), float):
                features["unix timestamp"] += 1
            if "seconds_from_start" in m:
                assert 0 <= m["seconds_from_start"] < m["seconds_from_start"] + m["duration"]
                assert m["seconds_from_start"] + m["duration"] <= call  # within the call
                at = m["timestamp"]
                at = at if isinstance(at, float) else ts(at).timestamp()
                offset = at - ts(joined["timestamp"]).timestamp()
                assert abs(offset - m["seconds_from_start"]) < 0.01
                features["timing"] += 1
            if "inference_id" in m:
                features["inference_id"] += 1
            if any(ord(ch) > 0x7F for ch in m.get("content", "")):
                features["non-ascii"] += 1
            if any(0x3040 <= ord(ch) <= 0x9FFF for ch in m.get("content", "")):
                features["cjk"] += 1
            if any(ord(ch) >= 0x1F300 for ch in m.get("content", "")):
                features["emoji"] += 1
        if len(turns) >= 2:
            features["2+ turns"] += 1
        if len(turns) >= 40:
            features["40+ turns"] += 1
    for feature in (
        "documents",
        "tool",
        "iso timestamp",
        "unix timestamp",
        "timing",
        "inference_id",
        "non-ascii",
        "cjk",
        "emoji",
        "2+ turns",
        "40+ turns",
    ):
        assert features[feature] > 0, feature


def test_perception_recording_post_call_and_memory(conversations):
    seen = Counter()
    for events in conversations.values():
        shutdown_at = (
            ts(events["system.shutdown"][0]["timestamp"]) if "system.shutdown" in events else None
        )
        for p in events.get("application.perception_analysis", []):
            analysis = p["properties"]["analysis"]
            assert PERCEPTION_START.match(analysis)
            positions = [analysis.index(s) for s in STANDARD_SECTIONS]
            assert positions == sorted(positions)
            extra = set(re.findall(r"^\*\*(.+?)\*\*$", analysis, re.M)) - {
                s.strip("*") for s in STANDARD_SECTIONS
            }
            assert extra and all(q.endswith("?") for q in extra)  # persona queries
            assert 165 <= (ts(p["timestamp"]) - shutdown_at).total_seconds() <= 200
            seen["analysis"] += 1
        for p in events.get("application.perception_unavailable", []):
            assert p["properties"] == {"reason": "no_vision_history"}
            seen["unavailable"] += 1
        for r in events.get("application.recording_ready", []):
            props = r["properties"]
            if "s3_key" in props:
                assert set(props) == {"bucket_name", "s3_key", "duration"}
                assert isinstance(props["duration"], int)
                seen["old recording"] += 1
            else:
                assert set(props) == {"storage_provider", "storage_uri"}
                seen["new recording"] += 1
        for r in events.get("application.recording_copy_failed", []):
            assert r["properties"]["error_message"]
            seen["copy failed"] += 1
        for a in events.get("application.post_call_action_executed", []):
            props = a["properties"]
            assert set(props) == {"tool_id", "tool_name", "status", "request", "response"}
            assert 120 <= (ts(a["timestamp"]) - shutdown_at).total_seconds() <= 180
            body = props["request"]["body"]
            seen["body " + type(body).__name__] += 1
            if isinstance(body, str):
                assert isinstance(orjson.loads(body), dict)
            seen["action " + props["status"]] += 1
        seen["memory"] += len(events.get("application.memory_consolidation", []))
    for k in (
        "analysis",
        "unavailable",
        "old recording",
        "new recording",
        "copy failed",
        "body dict",
        "body str",
        "action success",
        "action error",
        "memory",
    ):
        assert seen[k] > 0, k
    assert seen["analysis"] > seen["unavailable"]


def test_replica_training_and_video_callbacks(items):
    trainings = [obj for _, _, obj in items if "replica_id" in obj and len(obj) <= 3]
    statuses = Counter(t["status"] for t in trainings)
    assert statuses["ready"] >= 4 and statuses["error"] >= 1
    assert all(t["error_message"] for t in trainings if t["status"] == "error")
    videos = defaultdict(list)
    for _, _, obj in items:
        if "video_id" in obj:
            videos[obj["video_id"]].append(obj)
    conversations = {obj["conversation_id"] for _, _, obj in items if "conversation_id" in obj}
    assert len(conversations) / 20 < len(videos) < len(conversations) / 5
    all_statuses = set()
    for states in videos.values():
        assert len({s["updated_at"] for s in states}) >= 2  # several callbacks over its life
        assert len({s["created_at"] for s in states}) == 1
        for s in states:
            all_statuses.add(s["status"])
            assert s["data"]["script"]
            if s["status"] == "error":
                assert s["generation_progress"] == "0/100" and s["error_details"]
                assert s["download_url"] is s["hosted_url"] is s["stream_url"] is None
            if s["status"] == "ready":
                assert s["generation_progress"] == "100/100" and s["hosted_url"]
    assert all_statuses == {"queued", "generating", "ready", "deleted", "error"}


def test_in_progress_out_of_order_and_duplicates(items, conversations):
    in_progress = [
        events
        for events in conversations.values()
        if "system.shutdown" not in events and "system.replica_joined" in events
    ]
    assert in_progress
    for events in in_progress:
        joined = ts(events["system.replica_joined"][0]["timestamp"])
        assert (DEFAULT_END - joined).total_seconds() < 3600
    # Arrival order differs from the senders' order, e.g. a shutdown before its join.
    first_arrival: dict[tuple[str, str], int] = {}
    for i, (_, _, obj) in enumerate(items):
        if "event_type" in obj:
            first_arrival.setdefault((obj["conversation_id"], obj["event_type"]), i)
    overtaken = [
        cid
        for cid in conversations
        if (cid, "system.shutdown") in first_arrival
        and (cid, "system.replica_joined") in first_arrival
        and first_arrival[cid, "system.shutdown"] < first_arrival[cid, "system.replica_joined"]
    ]
    assert overtaken
    transcript_first = [
        cid
        for cid in conversations
        if (cid, "application.transcription_ready") in first_arrival
        and first_arrival[cid, "application.transcription_ready"]
        < first_arrival[cid, "system.shutdown"]
    ]
    assert transcript_first
    bodies = Counter(b for b, _, _ in items)
    twice = [b for b, n in bodies.items() if n > 1]
    assert 0.002 * len(items) < len(twice) < 0.03 * len(items)


def test_write_stores_what_generate_yields(tmp_path):
    made = list(generate(80, seed=3))
    distinct = {}
    for body, received_at in made:
        distinct.setdefault(body, received_at)
    db = tmp_path / "demo.db"
    result = write(db, 80, seed=3, batch_size=97)
    assert (result.stored, result.duplicate, result.rejected) == (
        len(distinct),
        len(made) - len(distinct),
        0,
    )
    rows = query(db, "SELECT body, received_at, kind FROM callbacks ORDER BY id")
    assert [(r[0].encode(), r[1]) for r in rows] == list(distinct.items())
    assert {r[2] for r in rows} >= {"conversation", "video", "replica_training", "objective"}
    # Another batch size gives the same rows; the same seed again stores nothing new.
    other = tmp_path / "other.db"
    write(other, 80, seed=3)
    assert query(other, "SELECT body, received_at FROM callbacks ORDER BY id") == [
        r[:2] for r in rows
    ]
    again = write(db, 80, seed=3)
    assert (again.stored, again.duplicate) == (0, len(made))


@pytest.fixture
def collector(tmp_path):
    settings = Settings(db=str(tmp_path / "live.db"), secret=SECRET)
    server, base = start_in_thread(settings)
    yield f"{base}/webhook", settings.db
    stop(server)


def test_post_sends_every_callback_to_the_real_collector(collector):
    url, db = collector
    made = list(generate(25, seed=5))
    result = post(f"{url}?token={SECRET}", 25, seed=5)
    assert result == {"sent": len(made), "answers": {"200": len(made)}, "failed": 0}
    stored = query(db, "SELECT body FROM callbacks ORDER BY id")
    distinct = list(dict.fromkeys(b for b, _ in made))
    assert [r[0].encode() for r in stored] == distinct
    # The token can also travel in the header; everything is a duplicate the second time, and
    # duplicates are answered 200 as well.
    again = post(url, 25, seed=5, token=SECRET)
    assert again["answers"] == {"200": len(made)}
    assert query(db, "SELECT count(*) FROM callbacks") == [(len(distinct),)]


def test_post_with_a_wrong_token_stops_at_once(collector):
    url, db = collector
    with pytest.raises(TavusAnalyticsError) as e:
        post(f"{url}?token=not-the-secret", 25, seed=5)
    message = str(e.value)
    assert "answered 401 (missing or wrong token) after 1 callback(s); stopped" in message
    assert "not-the-secret" not in message and "token=***" in message
    assert query(db, "SELECT count(*) FROM callbacks") == [(0,)]


def test_post_to_nothing_names_the_url(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/webhook"
    with pytest.raises(TavusAnalyticsError, match=f"cannot reach the collector at {url}"):
        post(url, 5, timeout=2)


def test_cli_demo_writes_the_database(tmp_path):
    db = tmp_path / "cli.db"
    result = CliRunner().invoke(cli, ["demo", "-n", "40", "--seed", "2", "--db", str(db)])
    assert result.exit_code == 0, result.output
    distinct = len({b for b, _ in generate(40, seed=2)})
    assert query(db, "SELECT count(*) FROM callbacks") == [(distinct,)]
    assert f"{distinct} callbacks stored" in result.output
    assert "40 demo conversations, seed 2" in result.output


def test_demo_module_documents_its_reproducibility():
    assert "DEFAULT_END" in demo_mod.__doc__ and "random.Random(seed)" in demo_mod.__doc__


def test_what_callers_say_comes_from_a_stream_of_its_own():
    """Each call's text is drawn from a stream seeded with its id, from pools as long as the
    lists the demo's own stream draws from: the callbacks' number, order and timing do not
    depend on the text."""
    from tavus_analytics.demo import _PERSONAS
    from tavus_analytics.demo_callers import THEMES, voice

    seen = Counter()
    for persona in _PERSONAS:
        for i in range(200):
            args = {"newness": i / 200, "day_of_month": 1 + i % 28, "struggling": i % 5 == 0}
            v = voice(f"c{i:012x}", persona, **args)
            assert v == voice(f"c{i:012x}", persona, **args)  # the same id, the same voice
            assert len(v.greetings) == len(persona["greetings"])
            assert len(v.closers) == len(persona["closers"])
            assert len(v.last_words) == 6
            assert all(v.user_pools) and v.assistant_pool
            assert v.language in THEMES[v.theme]
            seen[persona["key"], v.theme] += 1
            seen["mood", v.mood] += 1
            seen["language", v.language] += 1
    for mood in ("neutral", "sour", "delighted", "relieved"):
        assert seen["mood", mood] > 20, mood
    for language in ("en", "es", "fr"):
        assert seen["language", language] > 20, language
    support = [theme for key, theme in seen if key == "support"]
    assert sorted(support) == ["billing", "cancellation", "scheduling", "technical"]


def test_the_transcripts_carry_themes_questions_and_languages(conversations):
    from tavus_analytics.demo_callers import THEMES

    lines = {
        line: theme
        for theme, languages in THEMES.items()
        for text in languages.values()
        for line in text["statements"] + [w for q in text["questions"] for w in q]
    }
    themes, questions = Counter(), Counter()
    for events in conversations.values():
        for ready in events.get("application.transcription_ready", []):
            for m in ready["properties"]["transcript"]:
                if m["role"] != "user" or not m.get("content"):
                    continue
                for sentence in re.split(r"(?<=[.!?…])\s+", m["content"]):
                    if sentence in lines:
                        themes[lines[sentence]] += 1
                    if sentence.endswith("?"):
                        questions[sentence] += 1
    assert set(themes) == set(THEMES)
    assert len([q for q, n in questions.items() if n >= 3]) >= 30
