"""One call on one page: a hand-built call with every kind of event, hostile text, the order and
the content of the page in HTML and text, redaction, labels, and the page in headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import tavus_analytics as ta
from tavus_analytics import conversation as cv
from tavus_analytics.cli import cli
from tavus_analytics.errors import ConversationNotFound
from tavus_analytics.store import Store

CID = "cpage0000001"
REPLICA = "r0a1b2c3d4"
SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
# The same attacks, but leaving a mark in the page where they run (alert() leaves none).
MARK_SCRIPT = "<script>document.documentElement.setAttribute('data-pwned','script')</script>"
MARK_IMG = "\"><img src=x onerror=\"document.documentElement.setAttribute('data-pwned','img')\">"
JS_URI = "javascript:document.documentElement.setAttribute('data-pwned','uri')"
VIDEO_URI = "https://cdn.example.com/rec/cpage0000001.mp4"
START = pd.Timestamp("2026-06-09T21:14:00Z")


def at(seconds: float) -> str:
    """The ISO time ``seconds`` after the join, as Tavus writes it."""
    return (START + pd.Timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event(event_type: str, seconds: float, **props) -> dict:
    return {
        "properties": props,
        "conversation_id": CID,
        "webhook_url": "https://example.ngrok.app/webhook",
        "event_type": event_type,
        "message_type": event_type.split(".")[0],
        "timestamp": at(seconds),
    }


def timed(role: str, content: str, start: float, duration: float, **extra) -> dict:
    return {
        "role": role,
        "content": content,
        "timestamp": at(start),
        "seconds_from_start": start,
        "duration": duration,
        **extra,
    }


PROMPT = "You are Ada, the support agent of Example Shop. " * 80
TRANSCRIPT = [
    {"role": "system", "content": PROMPT},
    timed("assistant", "Hello! How can I help?", 1.0, 1.5, inference_id="inf_1"),
    timed("user", f"{SCRIPT} my order is late \x1b[31mred\x1b[0m", 4.0, 2.0),
    timed("assistant", f"{IMG} Let me check that.", 6.5, 1.0),  # answered after 0.5 s
    {
        "role": "assistant",
        "content": "",
        "timestamp": at(7.5),
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "lookup_order", "arguments": '{"order": "<b>42</b>"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": '{"status": "<i>shipped</i>"}'},
    {"role": "system", "content": "Information from documents:\n\nRefund policy: 30 days."},
    timed("assistant", "It shipped yesterday.", 10.0, 1.5),
    timed("user", f"Thanks, bye {MARK_SCRIPT}", 12.0, 0.8),
    timed("assistant", f"Goodbye! {MARK_IMG}", 12.5, 0.6),  # began 0.3 s before the end
]
ANALYSIS = (
    "Here's a summary of the visual observations taken during the video call over the last 20 "
    "seconds:\n\n**User Appearance**: The user wears a shirt reading <script>x()</script>.\n\n"
    "**Emotional States & Patterns**: Calm, then relieved.\n\n"
    "**Is the user holding a parcel?**: Yes, a small box."
)


def callbacks() -> list[tuple[dict, str]]:
    """Every kind of callback of one call, with its arrival time (the collector's clock)."""
    guardrail = {
        "conversation_id": CID,
        "properties": {"guardrail": "no_refund_promises", "guardrail_uuid": "g0123456789ab"},
    }
    objective = {
        "conversation_id": CID,
        "objective_name": "identify_order",
        "output_variables": {"order_id": "42", "reason": "NOTFOUND", "note": SCRIPT},
    }
    canvas = {
        "message_type": "canvas",
        "event_type": "canvas.interaction",
        "conversation_id": CID,
        "timestamp": at(9.0),
        "properties": {
            "conversation_id": CID,
            "interaction_id": "ci_1",
            "tool_call_id": "call_9",
            "component": "canvas.question",
            "type": "submit",
            "value": {"selected_option_ids": ["opt_2"], "skipped": False, "text": IMG},
        },
    }
    post_call = event(
        "application.post_call_action_executed",
        210.0,
        tool_id="t1",
        tool_name="send_summary",
        status="success",
        request={"method": "POST", "body": json.dumps({"summary": f"late order {SCRIPT}"})},
        response={"status_code": 200, "body": {"ok": True}},
    )
    items = [
        (event("system.replica_joined", 0.0, replica_id=REPLICA), at(0.05)),
        (event("system.pal_joined", 0.0, face_id=REPLICA), at(0.06)),
        (guardrail, at(8.0)),  # triggered during the call, twice
        (canvas, at(9.05)),
        (objective, at(11.0)),
        (guardrail, at(12.2)),
        (event("system.shutdown", 20.0, shutdown_reason="participant_left_timeout"), at(20.05)),
        (event("application.transcription_ready", 20.001, transcript=TRANSCRIPT), at(20.1)),
        (event("system.shutdown", 25.0, shutdown_reason="max_call_duration"), at(25.1)),
        (event("application.recording_ready", 60.0, storage_uri=JS_URI), at(60.1)),
        (event("application.recording_ready", 61.0, storage_uri=VIDEO_URI, duration=20), at(61.1)),
        (
            event(
                "application.recording_copy_failed",
                62.0,
                error_code="DESTINATION_AUTH_FAILED",
                error_message=f"Access denied {SCRIPT}",
                s3_key="calls/cpage.mp4",
            ),
            at(62.1),
        ),
        (event("application.perception_analysis", 180.0, analysis=ANALYSIS), at(180.1)),
        (post_call, at(210.1)),
        (event("application.memory_consolidation", 240.0, note="<svg onload=alert(1)>"), at(240.1)),
    ]
    return items


def store_call(path: Path, items=None) -> Path:
    rows = []
    for obj, received in items or callbacks():
        rows.append((json.dumps(obj, ensure_ascii=False).encode(), received))
    with Store(path) as store:
        store.insert_batch(rows)
    return path


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return store_call(tmp_path_factory.mktemp("page") / "call.db")


@pytest.fixture(scope="module")
def ds(db):
    return ta.load(db)


@pytest.fixture(scope="module")
def page(ds):
    return ds.conversation(CID)


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text, of an HTML document (the text of
    ``<style>`` left out; a space where a block ends)."""

    BLOCKS = {"div", "p", "li", "tr", "th", "td", "dt", "dd", "h2", "h3", "summary", "br", "pre"}

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self._style = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._style = tag == "style"
        if tag in self.BLOCKS:
            self.text.append(" ")

    def handle_endtag(self, tag):
        self._style = False
        if tag in self.BLOCKS:
            self.text.append(" ")

    def handle_data(self, data):
        if not self._style:
            self.text.append(data)

    def words(self) -> str:
        return " ".join("".join(self.text).split())


# -- order and content --------------------------------------------------------------------------
EXPECTED = [
    ("joined", REPLICA),
    ("system_prompt", PROMPT),
    ("turn", "Hello! How can I help?"),
    ("turn", f"{SCRIPT} my order is late \x1b[31mred\x1b[0m"),
    ("turn", f"{IMG} Let me check that."),
    ("tool_call", "lookup_order"),
    ("tool_result", '{"status": "<i>shipped</i>"}'),
    ("knowledge", "Information from documents:\n\nRefund policy: 30 days."),
    ("guardrail", "no_refund_promises"),  # arrived at +8 s
    ("canvas", "canvas.question"),  # +9 s
    ("turn", "It shipped yesterday."),  # +10 s
    ("objective", "identify_order"),  # arrived at +11 s
    ("turn", f"Thanks, bye {MARK_SCRIPT}"),  # +12 s
    ("guardrail", "no_refund_promises"),  # the second trigger, +12.2 s
    ("turn", f"Goodbye! {MARK_IMG}"),  # +12.5 s
    ("shutdown", "participant_left_timeout"),  # the earliest of the two
    ("recording", JS_URI),
    ("recording", VIDEO_URI),
    ("recording_failed", "DESTINATION_AUTH_FAILED"),
    ("perception", ANALYSIS),
    ("post_call_action", "send_summary"),
    ("other", "application.memory_consolidation"),
]


def test_the_timeline_holds_every_event_in_the_order_it_happened(page):
    tl = page.timeline
    assert list(zip(tl["kind"], tl["text"], strict=True)) == EXPECTED
    assert tl["offset_s"].round(2)[:5].fillna(-1).tolist() == [0.0, -1, 1.0, 4.0, 6.5]
    assert tl["offset_s"].iloc[8] == pytest.approx(8.0)  # the guardrail's arrival
    assert tl["offset_s"].iloc[15] == pytest.approx(20.0)  # the shutdown
    turns = tl[tl["kind"] == "turn"]
    delays = turns["answer_delay_s"].round(2)
    assert delays.isna().tolist() == [True, True, False, True, True, False]
    assert (delays.iloc[2], delays.iloc[5]) == (0.5, -0.3)
    roles = ["assistant", "user", "assistant", "assistant", "user", "assistant"]
    assert list(turns["role"]) == roles
    assert str(tl["time"].dtype) == "datetime64[ns, UTC]"
    assert tl["time"].iloc[0] == START


def test_the_tables_of_the_call_are_attributes(ds, page):
    assert page.conversation["conversation_id"] == CID
    assert page.conversation["outcome"] == "completed"
    pd.testing.assert_frame_equal(
        page.turns, ds.turns[ds.turns["conversation_id"] == CID].reset_index(drop=True)
    )
    for name in cv.TABLES:
        table = getattr(page, name)
        assert list(table.columns) == list(getattr(ds, name).columns), name
    assert len(page.turns) == len(TRANSCRIPT)
    assert len(page.guardrail_triggers) == 2
    assert len(page.recordings) == 2 and len(page.recording_failures) == 1
    assert list(page.objective_outputs["variable"]) == ["order_id", "reason", "note"]
    assert page.problems["problem"].tolist() == ["2 shutdown callbacks: the earliest is used"]


def test_the_html_page_shows_the_header_and_every_entry(page):
    html = page._repr_html_()
    text = Tags(html).words()
    assert f"Conversation {CID}" in text
    for fact in (
        f"replica {REPLICA}",
        "joined 2026-06-09 21:14:00 UTC",
        "ended 2026-06-09 21:14:20 UTC, after 20s",
        "shutdown completed participant_left (participant_left_timeout)",
        "2 user turns (",
        "answer delay median",
        "arrived join, shutdown, transcript (10 messages), 2 recordings, recording copy failure, "
        "perception analysis, post-call action, objective completion, 2 guardrail triggers, "
        "canvas interaction, other event",
    ):
        assert fact in text, fact
    for shown in (
        "Assistant answered after 0.50 s spoke 1.0 s",
        "began 0.30 s before the user had finished",
        "+0:00 21:14:00 joined replica r0a1b2c3d4 joined prompt system prompt, 720 words",
        'tool call lookup_order({"order": "<b>42</b>"})',
        "tool result of lookup_order, 28 characters",
        "knowledge knowledge-base retrieval, 7 words",
        "+0:08 21:14:08 guardrail triggered no_refund_promises",
        "guardrail triggered no_refund_promises (again: trigger 2 of this guardrail)",
        "+0:09 21:14:09 canvas canvas.question: submit",
        "objective completed identify_order order_id 42 reason not found note <script>",
        "shutdown completed participant_left (participant_left_timeout)",
        f"+1:00 21:15:00 recording {JS_URI}",
        f"recording {VIDEO_URI}, 20s",
        "recording copy failed: DESTINATION_AUTH_FAILED Access denied",
        "perception analysis, 43 words Summary Here's a summary",
        "User Appearance The user wears a shirt reading <script>x()</script>.",
        "Is the user holding a parcel? Yes, a small box.",
        "post-call send_summary success request:",
        "event application.memory_consolidation",
        "Problems the loader found",
        "2 shutdown callbacks: the earliest is used",
        "my order is late \\x1b[31mred\\x1b[0m",  # control characters shown, not sent
    ):
        assert shown in text, shown
    # long texts are folded: the prompt, the tool call and its result, the knowledge retrieval
    folded = [Tags(s).words() for s in re.findall(r"<summary>(.*?)</summary>", html)]
    assert folded == [
        "prompt system prompt, 720 words",
        'tool call lookup_order({"order": "<b>42</b>"})',
        "tool result of lookup_order, 28 characters",
        "knowledge knowledge-base retrieval, 7 words",
        "perception analysis, 43 words",
        "post-call send_summary success",
        "event application.memory_consolidation",
    ]
    assert '<details open><summary><span class="tac-tag">perception' in html


def test_hostile_text_is_inert_in_the_html(page):
    for html in (page._repr_html_(), page.to_html(standalone=True)):
        parsed = Tags(html)
        tags = [t for t, _ in parsed.tags]
        assert "script" not in tags and "img" not in tags and "svg" not in tags
        assert "iframe" not in tags and "object" not in tags and "link" not in tags
        for tag, attrs in parsed.tags:
            assert not any(name.startswith("on") for name in attrs), (tag, attrs)
            for name in ("src", "href", "poster", "action", "srcset"):
                if name in attrs:
                    assert (tag, name, attrs[name]) == ("video", "src", VIDEO_URI)
        text = "".join(parsed.text)
        assert SCRIPT in text and IMG in text and MARK_IMG in text and JS_URI in text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    # the javascript: recording is text, the https one a video that loads nothing until played
    videos = [a for t, a in Tags(page._repr_html_()).tags if t == "video"]
    assert videos == [{"controls": None, "preload": "none", "src": VIDEO_URI}]


def test_a_report_page_has_no_video_and_no_style_of_its_own(page):
    html = page.to_html(video=False, style=False)
    assert "<video" not in html and "<style" not in html
    assert VIDEO_URI in html  # still shown, as text


@pytest.mark.parametrize(
    ("uri", "playable"),
    [
        ("https://cdn.example.com/a.mp4", True),
        ("HTTP://cdn.example.com/a.mp4", True),
        ("javascript:alert(1)", False),
        (" javascript:alert(1)", False),
        ("JaVaScRiPt:alert(1)", False),
        ("data:video/mp4;base64,AAAA", False),
        ("s3://bucket/key.mp4", False),
        ("https:///nohost", False),
        ("https://cdn.example.com/a.mp4\n<script>", False),
        ("//cdn.example.com/a.mp4", False),
        ("", False),
    ],
)
def test_only_http_uris_become_videos(uri, playable):
    assert (cv._video_source(uri) is not None) is playable


def test_the_text_page_fits_100_columns_and_shows_control_characters_as_escapes(page):
    text = str(page)
    assert text == repr(page) == page.to_text()
    assert max(len(line) for line in text.splitlines()) <= 100
    assert "\x1b" not in text and "\\x1b[31mred\\x1b[0m" in text
    assert text.startswith(f"Conversation {CID}\n")
    order = [
        "joined      replica r0a1b2c3d4 joined",
        "prompt      system prompt, 720 words: You are Ada",
        "assistant   Hello! How can I help?",
        f"user        {SCRIPT} my order is late",
        "[answered after",
        'tool call   lookup_order({"order": "<b>42</b>"})',
        'tool result of lookup_order: {"status": "<i>shipped</i>"}',
        "knowledge   knowledge-base retrieval, 7 words: Information from documents:",
        "guardrail   triggered no_refund_promises",
        "canvas      canvas.question: submit",
        "objective   completed identify_order",
        "- reason = (not found)",
        "[began 0.30 s before the user had finished]",
        "SHUTDOWN    completed, participant_left (participant_left_timeout)",
        f"recording   {JS_URI}",
        "recording   copy failed: DESTINATION_AUTH_FAILED",
        "perception  analysis",
        "- Is the user holding a parcel?: Yes, a small box.",
        "post-call   send_summary: success",
        "event       application.memory_consolidation",
        "Problems the loader found",
    ]
    positions = [text.index(s) for s in order]
    assert positions == sorted(positions)
    wide = page.to_text(width=60)
    assert max(len(line) for line in wide.splitlines()) <= 60


def test_redaction_reaches_every_text_from_a_callback(ds):
    def redact(text: str) -> str:
        return "[redacted]"

    page = ds.conversation(CID, redact=redact)
    html, text = page._repr_html_(), str(page)
    hidden = [
        "How can I help",
        "my order is late",
        "You are Ada",
        "&lt;b&gt;42",
        "shipped",
        "Refund policy",
        "Access denied",
        "a small box",
        "late order",
        "svg onload",
        "participant_left_timeout",
        "cdn.example.com",
        '"42"',
    ]
    for shown in (html, text):
        for secret in hidden:
            assert secret not in shown, secret
        assert "[redacted]" in shown
        # identifiers and names stay
        for name in (CID, REPLICA, "lookup_order", "identify_order", "no_refund_promises"):
            assert name in shown
    assert "<video" not in html  # a redacted URI is no longer one to play
    # the redaction given to a renderer wins over the page's
    assert "my order is late" in page.to_html(redact=lambda s: s)


def test_labels_are_shown_when_given(ds):
    labels = pd.DataFrame(
        {
            "conversation_id": [CID, "cother"],
            "label": ["needs follow-up <b>now</b>", "other call"],
            "reviewer": ["maria", "li"],
        }
    )
    page = ds.conversation(CID, labels=labels)
    assert list(page.labels["label"]) == ["needs follow-up <b>now</b>"]
    html = page._repr_html_()
    assert "Review labels" in html and "needs follow-up &lt;b&gt;now&lt;/b&gt;" in html
    assert "other call" not in html
    assert "Review labels" in str(page) and "reviewer: maria" in str(page)
    assert "Review labels" not in ds.conversation(CID)._repr_html_()


def test_an_unknown_id_is_an_error_naming_it(ds, db):
    with pytest.raises(ConversationNotFound, match="no conversation 'cnope' in ") as e:
        ds.conversation("cnope")
    assert e.value.conversation_id == "cnope"
    assert str(db) in str(e.value)
    outside = ds.filter(since="2030-01-01")
    with pytest.raises(ConversationNotFound, match="is in .* but outside this selection"):
        outside.conversation(CID)
    assert ds.filter(since="2026-06-01").conversation(CID).conversation_id == CID


def test_a_call_known_only_from_an_objective_has_a_page(tmp_path):
    db = store_call(
        tmp_path / "o.db",
        [({"conversation_id": "conly", "objective_name": "x", "output_variables": {}}, at(1))],
    )
    page = ta.load(db).conversation("conly")
    assert page.conversation is None
    assert list(page.timeline["kind"]) == ["objective"]
    assert "not arrived: join, shutdown, transcript" in str(page)
    assert "objective completed x" in Tags(page._repr_html_()).words()


def test_a_call_whose_only_callback_could_not_be_read_shows_the_problem(tmp_path):
    broken = event("application.transcription_ready", 30.0, transcript="not a list")
    page = ta.load(store_call(tmp_path / "b.db", [(broken, at(30))])).conversation(CID)
    assert page.timeline.empty and list(page.timeline.columns)[:3] == ["kind", "time", "offset_s"]
    words = Tags(page._repr_html_()).words()
    assert "Nothing to put on the timeline: see the problems below." in words
    assert "transcript is not a list: skipped" in words
    assert "transcript is not a list: skipped" in str(page)


def test_an_old_untimed_transcript_keeps_its_order_before_the_shutdown(tmp_path):
    old = [
        {"role": "system", "content": "prompt"},
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "two"},
    ]
    items = [
        (event("system.replica_joined", 0.0, replica_id=REPLICA), at(0.1)),
        ({"conversation_id": CID, "properties": {"guardrail": "g"}}, at(5)),
        (event("system.shutdown", 30.0, shutdown_reason="participant_left_timeout"), at(30)),
        (event("application.transcription_ready", 30.1, transcript=old), at(30.2)),
    ]
    page = ta.load(store_call(tmp_path / "old.db", items)).conversation(CID)
    tl = page.timeline
    assert list(tl["kind"]) == ["joined", "system_prompt", "turn", "turn", "guardrail", "shutdown"]
    assert tl["offset_s"].iloc[2:4].isna().all()  # untimed turns show no time
    assert "answered after" not in page._repr_html_()


def test_a_call_of_thousands_of_turns_stays_one_usable_page(tmp_path):
    long = [{"role": "system", "content": "prompt " * 3000}]
    for i in range(3000):
        role = "user" if i % 2 else "assistant"
        long.append(timed(role, f"message {i}", 1.0 + i * 2, 1.0))
    long.append({"role": "tool", "tool_call_id": "c", "content": "x" * 50_000})
    items = [
        (event("system.replica_joined", 0.0, replica_id=REPLICA), at(0.1)),
        (event("system.shutdown", 7000.0, shutdown_reason="max_call_duration"), at(7000)),
        (event("application.transcription_ready", 7000.1, transcript=long), at(7000.2)),
    ]
    page = ta.load(store_call(tmp_path / "long.db", items)).conversation(CID)
    html = page._repr_html_()
    assert html.count('class="tac-turn') == 3000
    assert html.count("<details>") == 2  # the prompt and the tool result, folded
    assert "+1:39:59" in html  # the last turn's time from the join, in hours
    assert len(html) < 2_000_000


def test_the_role_colours_are_the_charts(page):
    from tavus_analytics.charts import ROLE_COLORS

    charts = [ROLE_COLORS[role] for role in ("user", "assistant", "tool")]
    assert charts == [cv._USER, cv._ASSISTANT, cv._TOOL]


# -- the command line ---------------------------------------------------------------------------
def test_show_prints_the_text_page(db, page):
    r = CliRunner().invoke(cli, ["show", CID, "--db", str(db)])
    assert r.exit_code == 0, r.output
    assert r.output == page.to_text(width=100)
    r = CliRunner().invoke(cli, ["show", CID, "--db", str(db), "--width", "70"])
    assert max(len(line) for line in r.output.splitlines()) <= 70


def test_show_html_writes_one_self_contained_page(db, page, tmp_path):
    out = tmp_path / "call.html"
    r = CliRunner().invoke(cli, ["show", CID, "--db", str(db), "--html", str(out)])
    assert (r.exit_code, r.output) == (0, f"Wrote {out}\n")
    text = out.read_text(encoding="utf-8")
    assert text == page.to_html(standalone=True)
    assert text.startswith("<!DOCTYPE html>") and "<style>" in text
    missing = tmp_path / "no" / "call.html"
    r = CliRunner().invoke(cli, ["show", CID, "--db", str(db), "--html", str(missing)])
    assert r.exit_code == 1
    assert (
        r.output == f"Error: cannot write {missing}: the folder {missing.parent} does not exist\n"
    )


def test_show_an_unknown_id_is_one_line_and_exit_2(db):
    done = subprocess.run(
        [sys.executable, "-m", "tavus_analytics.cli", "show", "cnope", "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"Error: no conversation 'cnope' in {db}: check the id (the conversations table lists "
        "every call; tavus-analytics search finds a call by what was said)\n"
    )


# -- the page in a real browser -----------------------------------------------------------------
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def chromium(*args: str) -> subprocess.CompletedProcess:
    profile = tempfile.mkdtemp(prefix="chromium-")
    try:
        return subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def browser():
    if CHROMIUM is None:
        if os.environ.get("TAVUS_ANALYTICS_TEST_CHROMIUM_REQUIRED") == "1":
            pytest.fail("chromium is not installed, and TAVUS_ANALYTICS_TEST_CHROMIUM_REQUIRED=1")
        pytest.skip("chromium is not installed")
    return chromium


def test_chromium_shows_the_hostile_page_inert(page, browser, tmp_path):
    # The harness can see an attack run: the same payloads pasted raw do leave their mark.
    raw = tmp_path / "raw.html"
    raw.write_text(f"<!DOCTYPE html><html><body><p>{MARK_SCRIPT}</p><p>{MARK_IMG}</p></body>")
    dom = browser("--dump-dom", raw.as_uri()).stdout
    assert "data-pwned" in re.search(r"<html[^>]*>", dom).group()
    # The page itself: nothing runs, and the attacks are shown as text.
    out = tmp_path / "page.html"
    out.write_text(page.to_html(standalone=True), encoding="utf-8")
    dom = browser("--dump-dom", out.as_uri()).stdout
    assert re.search(r"<html[^>]*>", dom).group() == '<html lang="en">'
    assert "&lt;script&gt;alert(1)&lt;/script&gt; my order is late" in dom
    assert "<script" not in dom and "<img" not in dom
    shot = tmp_path / "page.png"
    done = browser(f"--screenshot={shot}", "--window-size=1200,1800", out.as_uri())
    assert shot.is_file(), done.stderr[-2000:]
    png = shot.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 20_000  # a page, not a blank


def test_chromium_shows_a_report_of_the_hostile_call_inert(db, browser, tmp_path):
    from tavus_analytics import report

    html = report.build(ta.load(db), look_at=3)
    assert html.count(f"<code>{CID}</code>") >= 2  # listed, and its page embedded
    tags = [t for t, _ in Tags(html).tags]
    assert "script" not in tags and "video" not in tags and "svg" not in tags
    assert [a.get("src", "")[:22] for t, a in Tags(html).tags if t == "img"] == [
        "data:image/png;base64,"
    ] * tags.count("img")  # the charts, and nothing a callback sent
    out = tmp_path / "report.html"
    out.write_text(html.replace('<details class="call"', '<details open class="call"'))
    dom = browser("--dump-dom", out.as_uri()).stdout
    assert re.search(r"<html[^>]*>", dom).group() == '<html lang="en">'
    assert "&lt;script&gt;alert(1)&lt;/script&gt; my order is late" in dom


def test_every_page_of_a_dataset_has_exactly_its_rows(tmp_path):
    """Pages after the first take their rows through an index of each table (a slice where
    the rows are one run): the same rows, in the same order, as a mask gives."""
    from tavus_analytics import demo

    db = tmp_path / "demo.db"
    demo.write(db, conversations=150, seed=0)
    ds = ta.load(db)
    runs = ds.objective_outputs.groupby("conversation_id").indices
    scattered = [cid for cid, v in runs.items() if v[-1] - v[0] + 1 != len(v)]
    assert scattered  # a call whose rows are not one run
    ids = list(ds.conversations["conversation_id"])[:30] + scattered
    for cid in ids:
        page = ds.conversation(cid)
        for name in cv.TABLES:
            table = getattr(ds, name)
            mine = table[(table["conversation_id"] == cid).to_numpy(dtype=bool)]
            pd.testing.assert_frame_equal(getattr(page, name), mine.reset_index(drop=True))
    with pytest.raises(ConversationNotFound):
        ds.conversation("cnone")  # asked after the index is built


def test_show_redacts_and_the_page_shows_review_labels(tmp_path):
    from click.testing import CliRunner

    import tavus_analytics as ta
    from tavus_analytics.cli import cli
    from tests.test_load import TRANSCRIPT, cb, put

    db = tmp_path / "t.db"
    said = [*TRANSCRIPT, {"role": "user", "content": "mail me at jane.doe@example.com"}]
    put(
        db,
        cb("system.replica_joined", "c1", "2026-05-22T10:00:00Z", replica_id="r1"),
        cb("application.transcription_ready", "c1", "2026-05-22T10:05:00Z", transcript=said),
    )
    ta.load(db).annotate("c1", label="escalated", note="call back", author="rev")
    plain = CliRunner().invoke(cli, ["show", "c1", "--db", str(db)])
    hidden = CliRunner().invoke(cli, ["show", "c1", "--db", str(db), "--redact"])
    assert plain.exit_code == hidden.exit_code == 0, hidden.output
    assert "jane.doe@example.com" in plain.output
    assert "jane.doe@example.com" not in hidden.output and "[EMAIL]" in hidden.output
    out = tmp_path / "c1.html"
    CliRunner().invoke(cli, ["show", "c1", "--db", str(db), "--redact", "--html", str(out)])
    assert "jane.doe@example.com" not in out.read_text() and "[EMAIL]" in out.read_text()
    assert "escalated" in ta.load(db).conversation("c1").to_html()
