"""Personal data planted in every kind of callback is absent from every redacted output (export
in each format, the report and its charts, search, a redacted dataset), present without
--redact, and the database's bytes are the same afterwards."""

from __future__ import annotations

import hashlib
import json

import matplotlib.text
import pandas as pd
import pytest
from conftest import run

import tavus_analytics as ta
from tavus_analytics import events as ev
from tavus_analytics import report
from tavus_analytics.export import TABLE_NAMES
from tavus_analytics.store import Store
from tavus_analytics.store.search import search
from tavus_analytics.tables import TABLES
from tests.test_load import cb

EMAIL = "jane.planted@example.com"
PHONE = "+44 20 7946 0958"
US_PHONE = "(415) 555-2671"
CARD = "4242 4242 4242 4242"
CARD_NUMBER = 5555555555554444  # sent as a JSON number
IP = "203.0.113.77"
IPV6 = "2001:db8::77"
URL = "https://jane:hunter2@crm.example.com/hook"

#: What must not be seen in a redacted output: the data, and the pieces a cut could leave.
FRAGMENTS = [
    "jane.planted",
    "hunter2",
    "7946 0958",
    "555-2671",
    "4242 4242",
    "4242424242",
    str(CARD_NUMBER),
    IP,
    IPV6,
]

T0 = "2026-06-09T10:00:00Z"
T1 = "2026-06-09T10:05:00Z"

TRANSCRIPT = [
    {"role": "system", "content": f"You are Anna. Escalations go to {US_PHONE}."},
    {"role": "user", "content": f"My email is {EMAIL} and my phone is {PHONE}, call me."},
    {"role": "assistant", "content": f"Thanks. I see you are calling from {IP} or {IPV6}."},
    {"role": "user", "content": f"My card is {CARD}, I want a refund for order 12345."},
    {
        "role": "assistant",
        "content": "Looking up your account now.",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "lookup", "arguments": json.dumps({"email": EMAIL})},
            }
        ],
    },
]


def planted_callbacks() -> list[dict]:
    return [
        cb(ev.REPLICA_JOINED, "c1", T0, replica_id="r1"),
        cb(ev.SHUTDOWN, "c1", T1, replica_id="r1", shutdown_reason="participant_left_timeout"),
        cb(ev.TRANSCRIPTION_READY, "c1", T1, replica_id="r1", transcript=TRANSCRIPT),
        cb(
            ev.PERCEPTION_ANALYSIS,
            "c1",
            T1,
            analysis=f"**User Appearance**\nA badge reading {EMAIL}, a card showing {US_PHONE}.",
        ),
        cb(
            ev.POST_CALL_ACTION,
            "c1",
            T1,
            tool_name="crm",
            status="success",
            request={"url": URL, "body": json.dumps({"email": EMAIL, "card": CARD})},
            response={"echo": IP},
        ),
        {
            "conversation_id": "c1",
            "objective_name": "collect_contact",
            "output_variables": {
                "email": EMAIL,
                "phone": PHONE,
                "card_number": CARD_NUMBER,
                "budget": "50k",
            },
        },
        {
            "message_type": "canvas",
            "event_type": "canvas.interaction",
            "conversation_id": "c1",
            "timestamp": T1,
            "properties": {
                "conversation_id": "c1",
                "interaction_id": "ci_1",
                "tool_call_id": "call_1",
                "component": "canvas.question",
                "type": "submit",
                "value": {"text": f"reach me at {EMAIL}"},
                "created_at": "2026-06-09T10:04:00",
            },
        },
        cb(
            ev.RECORDING_COPY_FAILED,
            "c1",
            T1,
            recording_id="rec_1",
            s3_key="calls/c1.mp4",
            error_code="DESTINATION_AUTH_FAILED",
            error_message=f"Access denied for {URL}",
        ),
        cb("application.something_new", "c1", T1, caller_ip=IP, card_on_file=CARD.replace(" ", "")),
        {"replica_id": "r1", "status": "error", "error_message": f"consent from {EMAIL} refused"},
        {
            "video_id": "v1",
            "replica_id": "r1",
            "status": "ready",
            "created_at": "2026-06-09 10:00:00",
            "updated_at": "2026-06-09 10:02:00",
            "data": {"script": f"Call us at {US_PHONE}"},
        },
    ]


def leaks(text: str) -> list[str]:
    return [f for f in FRAGMENTS if f in text]


def fingerprint(db) -> dict[str, str]:
    """SHA-256 of the database file and of every file beside it that belongs to it (the
    loader's cache is a folder beside it, not part of it).

    What the database holds is in the file and its -wal, a missing -wal counting as an empty
    one. The -shm is left out: it is SQLite's index of the -wal, kept in shared memory and
    rebuilt from it. Whether the two are there at all depends on the last connection to close
    (one that can write removes them, a read-only one cannot), so on which tests ran before.
    """
    found = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(db.parent.glob(db.name + "*"))
        if p.is_file() and p.name != db.name + "-shm"
    }
    found.setdefault(db.name + "-wal", hashlib.sha256(b"").hexdigest())
    return found


def stored(db) -> list[tuple]:
    """Every callback's id, body and SHA-256, as stored."""
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT id, body, sha256 FROM callbacks ORDER BY id").fetchall()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    db = tmp_path_factory.mktemp("planted") / "tavus.db"
    with Store(db) as store:
        result = store.insert_batch([json.dumps(b).encode() for b in planted_callbacks()])
        store.annotate("c1", label="callback", note=f"she asked to be called on {PHONE}")
    assert result.stored == len(planted_callbacks()) and result.rejected == 0
    return db


def test_the_planted_data_is_in_every_table_it_was_sent_to(planted):
    ds = ta.load(planted)
    for name in (
        "turns",
        "conversations",
        "perception",
        "post_call_actions",
        "objectives",
        "objective_outputs",
        "canvas_interactions",
        "recording_failures",
        "other_events",
        "replicas",
        "videos",
        "annotations",
    ):
        assert leaks(getattr(ds, name).to_string()) or leaks(
            json.dumps(getattr(ds, name).astype(object).to_dict("records"), default=str)
        ), name


def _file_text(path, fmt: str) -> str:
    if fmt == "parquet":
        frame = pd.read_parquet(path)
        return json.dumps(frame.astype(object).to_dict("records"), default=str, ensure_ascii=False)
    return path.read_text(encoding="utf-8")


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_no_redacted_export_holds_any_of_it_and_the_database_is_unchanged(planted, tmp_path, fmt):
    before, bodies = fingerprint(planted), stored(planted)
    seen_plain = set()
    for table in TABLE_NAMES:
        out = tmp_path / f"{table}.{fmt}"
        r = run("export", "--table", table, "--format", fmt, "--out", out, "--db", planted)
        assert r.exit_code == 0, r.output
        seen_plain.update(leaks(_file_text(out, fmt)))
        r = run(
            "export", "--table", table, "--format", fmt, "--out", out, "--db", planted, "--redact"
        )
        assert r.exit_code == 0, r.output
        text = _file_text(out, fmt)
        assert leaks(text) == [], (table, fmt)
        if table in ("turns", "objective_outputs", "post_call_actions"):
            assert "[EMAIL]" in text, table
    assert seen_plain == set(FRAGMENTS)  # without --redact, every piece is exported somewhere
    assert fingerprint(planted) == before and stored(planted) == bodies


def test_a_redacted_export_keeps_the_identifiers_and_the_rest(planted, tmp_path):
    out = tmp_path / "turns.jsonl"
    run(
        "export", "--table", "turns", "--format", "jsonl", "--out", out, "--db", planted, "--redact"
    )
    rows = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert [r["conversation_id"] for r in rows] == ["c1"] * len(TRANSCRIPT)
    assert rows[1]["content"] == "My email is [EMAIL] and my phone is [PHONE], call me."
    assert rows[3]["content"] == "My card is [CARD], I want a refund for order 12345."
    assert rows[4]["tool_call_id"] is None or "call_1" in json.dumps(rows[4])
    out = tmp_path / "outputs.jsonl"
    run("export", "--table", "objective_outputs", "--format", "jsonl", "--out", out,
        "--db", planted, "--redact")  # fmt: skip
    values = {r["variable"]: r for r in map(json.loads, out.read_text("utf-8").splitlines())}
    assert values["budget"]["value"] == "50k"
    assert values["card_number"]["value"] == "[CARD]" and values["card_number"]["raw"] == "[CARD]"
    assert values["phone"]["value"] == "[PHONE]"


def _figure_texts(monkeypatch) -> list[str]:
    """Make every chart the report draws record its texts (titles, labels, ticks, notes)."""
    texts: list[str] = []
    functions = report._chart_functions()

    def recording(f):
        def chart(data):
            fig = f(data)
            texts.extend(t.get_text() for t in fig.findobj(matplotlib.text.Text))
            return fig

        return chart

    monkeypatch.setattr(
        report, "_chart_functions", lambda: {n: recording(f) for n, f in functions.items()}
    )
    return texts


def test_the_redacted_report_and_its_charts_hold_none_of_it(planted, tmp_path, monkeypatch):
    before = fingerprint(planted)
    texts = _figure_texts(monkeypatch)
    plain = report.build(ta.load(planted))
    assert EMAIL in " ".join(texts)  # the replica training chart shows error messages
    texts.clear()
    out = tmp_path / "report.html"
    r = run("report", "--db", planted, "--out", out, "--redact")
    assert r.exit_code == 0, r.output
    html = out.read_text(encoding="utf-8")
    assert leaks(html) == [] and leaks(" ".join(texts)) == []
    assert "[EMAIL]" in " ".join(texts)
    assert 'id="redacted"' in html and 'id="redacted"' not in plain
    assert fingerprint(planted) == before


def test_redacted_charts_hold_none_of_it(planted, tmp_path, monkeypatch):
    import tavus_analytics.charts as charts_module

    texts: list[str] = []
    original = charts_module.CHARTS["replica_training"]

    def recording(data, **kwargs):
        fig = original(data, **kwargs)
        texts.extend(t.get_text() for t in fig.findobj(matplotlib.text.Text))
        return fig

    monkeypatch.setitem(charts_module.CHARTS, "replica_training", recording)
    r = run("charts", "--db", planted, "--out", tmp_path / "charts", "--redact")
    assert r.exit_code == 0, r.output
    assert texts and leaks(" ".join(texts)) == [] and "[EMAIL]" in " ".join(texts)


@pytest.mark.parametrize("phrase", ["email", "card", "calling from", "looking up"])
def test_redacted_search_shows_none_of_it(planted, phrase):
    plain = run("search", phrase, "--db", planted)  # brings the full-text index up to date
    assert plain.exit_code == 0, plain.output
    bodies, before = stored(planted), fingerprint(planted)
    r = run("search", phrase, "--db", planted, "--redact")
    assert r.exit_code == 0, r.output
    assert "1 message" in r.output
    assert leaks(r.output) == []
    if phrase != "looking up":
        assert leaks(plain.output)  # without --redact the words around the match show it
    found = search(planted, phrase, redact=True)
    assert leaks(found.to_string()) == [] and leaks("".join(found["content"])) == []
    assert stored(planted) == bodies and fingerprint(planted) == before
    assert all(hashlib.sha256(b.encode()).hexdigest() == sha for _, b, sha in bodies)


def test_a_redacted_dataset_and_its_filters_hold_none_of_it(planted):
    ds = ta.load(planted)
    red = ds.redacted()
    for name in TABLES:
        table = getattr(red, name)
        assert list(table.columns) == list(TABLES[name]), name
        assert len(table) == len(getattr(ds, name)), name
        dump = json.dumps(table.astype(object).to_dict("records"), default=str, ensure_ascii=False)
        assert leaks(dump) == [] and leaks(table.to_string()) == [], name
    assert "redacted=personal data shown as placeholders" in repr(red)
    assert "redacted" in red._repr_html_() and "redacted" not in repr(ds)
    narrowed = red.filter(replicas=["r1"])
    assert leaks(narrowed.turns.to_string()) == [] and len(narrowed.turns) == len(TRANSCRIPT)
    assert narrowed.redacted() is narrowed
    assert leaks(red.search("email").to_string()) == []
    terms = red.perception_terms(top=50)
    assert "jane.planted" not in " ".join(terms["term"])
    # The dataset it came from is as it was.
    assert EMAIL in ds.turns["content"][1]


def test_replay_after_redacted_outputs_sends_the_planted_bytes_exactly(planted, tmp_path):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from conftest import serving

    from tavus_analytics.replay import replay

    for args in (
        ["export", "--table", "turns", "--format", "csv", "--out", tmp_path / "t.csv"],
        ["report", "--out", tmp_path / "r.html"],
        ["search", "email"],
    ):
        assert run(*args, "--db", planted, "--redact").exit_code == 0
    received: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    with serving(ThreadingHTTPServer(("127.0.0.1", 0), Handler)) as server, Store(planted) as s:
        result = replay(s, f"http://127.0.0.1:{server.server_address[1]}/", rate=0)
    assert result.sent == len(planted_callbacks())
    assert received == [json.dumps(b).encode() for b in planted_callbacks()]
