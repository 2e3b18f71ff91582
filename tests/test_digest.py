"""The digest: periods, figures against the period before, the three layouts, and sending once
per period through the ledger (a local HTTP server and a local SMTP server stand in for the
channels; the network is loopback only)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest
from conftest import SECRET, run
from livedata import COMPLETED, FAILED, NO_SHOW, PHRASE, call, calls, guardrail, objective
from receivers import Receiver, Smtp, loopback_only

from tavus_analytics.alerts import read_rules
from tavus_analytics.digest import Period, build, render, send
from tavus_analytics.store import open_store

AT = datetime(2026, 11, 4, 9, 30, tzinfo=UTC)  # a Wednesday
THIS_WEEK = datetime(2026, 10, 27, 10, 0, tzinfo=UTC)
WEEK_BEFORE = datetime(2026, 10, 20, 10, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _network():
    with loopback_only():
        yield


def two_weeks(store) -> None:
    """The week before: 10 calls of 5 minutes, 8 completed, 1 failed, 1 no-show, 2 objective
    completions, 1 guardrail trigger. This week: 20 calls of 10 minutes, 15 completed, 3
    failed, 2 no-shows, 6 objective completions, 4 triggers; one call's caller says PHRASE."""
    calls(store, "p", WEEK_BEFORE, 8, minutes=5)
    call(store, "pf", WEEK_BEFORE + timedelta(hours=1), minutes=5, reason=FAILED)
    call(store, "pn", WEEK_BEFORE + timedelta(hours=2), minutes=5, reason=NO_SHOW)
    for i in range(2):
        objective(store, f"p00{i}", WEEK_BEFORE + timedelta(hours=3, minutes=i))
    guardrail(store, "p000", WEEK_BEFORE + timedelta(hours=4))
    calls(store, "t", THIS_WEEK, 14, minutes=10)
    call(store, "tx", THIS_WEEK + timedelta(hours=1), minutes=10, delays=[1.0, 2.0])
    calls(store, "tf", THIS_WEEK + timedelta(hours=2), 3, minutes=10, reason=FAILED)
    calls(store, "tn", THIS_WEEK + timedelta(hours=3), 2, minutes=10, reason=NO_SHOW)
    for i in range(6):
        objective(store, f"t{i:03d}", THIS_WEEK + timedelta(hours=4, minutes=i))
    for minutes in range(4):
        guardrail(store, "t000", THIS_WEEK + timedelta(hours=5, minutes=minutes))


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "tavus.db"
    with open_store(path) as store:
        two_weeks(store)
    return path


EXPECTED = [
    ("Calls", "20", "10", "+10 (+100%)"),
    ("Completion rate", "75.0%", "80.0%", "-5.0 pp"),
    ("No-show rate", "10.0%", "10.0%", "+0.0 pp"),
    ("Failure rate", "15.0%", "10.0%", "+5.0 pp"),
    ("Median duration", "10m 00s", "5m 00s", "+5m 00s"),
    ("Call minutes", "200", "50", "+300%"),
    ("Estimated cost (0.1 per minute)", "20.00", "5.00", "+300%"),
    ("Top shutdown reasons", "participant_left 75% (15)", "80%", "-5.0 pp"),
    ("", "startup_exception 15% (3)", "10%", "+5.0 pp"),
    ("", "participant_absent 10% (2)", "10%", "+0.0 pp"),
    ("Objective completion", "30.0%", "20.0%", "+10.0 pp"),
    ("Guardrail triggers per 100 calls", "20.0", "10.0", "+10.0"),
]


# -- periods ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "at", "start", "end", "label"),
    [
        ("day", AT, "2026-11-03", "2026-11-04", "2026-11-03"),
        ("week", AT, "2026-10-26", "2026-11-02", "2026-10-26 to 2026-11-01"),
        ("week", datetime(2026, 11, 2, 0, 0, tzinfo=UTC), "2026-10-26", "2026-11-02", None),
        ("month", AT, "2026-10-01", "2026-11-01", "October 2026"),
        ("month", datetime(2026, 1, 15, tzinfo=UTC), "2025-12-01", "2026-01-01", "December 2025"),
    ],
)
def test_the_last_complete_period(kind, at, start, end, label):
    p = Period.last_complete(kind, at)
    assert (f"{p.start:%Y-%m-%d}", f"{p.end:%Y-%m-%d}") == (start, end)
    if label:
        assert p.label == label
    before = p.previous()
    assert before.end == p.start and before.kind == kind


def test_march_comes_after_february():
    p = Period.last_complete("month", datetime(2026, 3, 2, tzinfo=UTC))
    assert (p.label, p.previous().label) == ("February 2026", "January 2026")
    assert (p.end - p.start).days == 28


# -- figures and layouts ------------------------------------------------------------------------
def test_each_figure_against_the_week_before(db):
    d = build(db, "week", at=AT, rate_per_minute=0.1)
    assert d.title == "Weekly Tavus digest: 2026-10-26 to 2026-11-01"
    assert d.rows() == EXPECTED
    assert d.current["calls"] == 20 and d.before["call_minutes"] == 50.0


def test_without_objectives_guardrails_or_a_price_those_lines_are_left_out(tmp_path):
    db = tmp_path / "plain.db"
    with open_store(db) as store:
        calls(store, "p", WEEK_BEFORE, 4)
        calls(store, "t", THIS_WEEK, 5, reason=COMPLETED)
    rows = build(db, "week", at=AT).rows()
    labels = [r[0] for r in rows]
    assert "Objective completion" not in labels and "Guardrail triggers per 100 calls" not in labels
    assert not any(label.startswith("Estimated cost") for label in labels)
    assert rows[0] == ("Calls", "5", "4", "+1 (+25%)")


def test_a_period_with_nothing_says_so_without_failing(tmp_path):
    db = tmp_path / "empty.db"
    with open_store(db) as store:
        store.migrate()
    rows = build(db, "day", at=AT, rate_per_minute=0.1).rows()
    assert rows[:3] == [
        ("Calls", "0", "0", "+0"),
        ("Completion rate", "-", "-", "-"),
        ("No-show rate", "-", "-", "-"),
    ]


def test_the_text_markdown_and_html_layouts(db):
    d = build(db, "week", at=AT, rate_per_minute=0.1)
    text = render(d, "text")
    lines = text.splitlines()
    assert lines[0] == d.title
    assert lines[2].split() == ["this", "week", "the", "week", "before", "change"]
    assert lines[3].split() == ["Calls", "20", "10", "+10", "(+100%)"]
    assert len({line.index("the week before") for line in lines[2:3]}) == 1
    markdown = render(d, "markdown")
    assert "| Top shutdown reasons | participant\\_left 75% (15) | 80% | -5.0 pp |" in markdown
    page = render(d, "html")

    class Tags(HTMLParser):
        tags: list = []

        def handle_starttag(self, tag, attrs):
            self.tags.append((tag, attrs))

    parser = Tags()
    parser.feed(page)
    assert {t for t, _ in parser.tags} <= {"html", "head", "meta", "title", "style", "body",
                                           "h1", "table", "tr", "th", "td", "p"}  # fmt: skip
    assert not any(attrs for t, attrs in parser.tags if t not in ("html", "meta", "p"))
    assert "<td>participant_left 75% (15)</td>" in page
    for layout in (text, markdown, page):
        assert PHRASE not in layout and SECRET not in layout


# -- sending ------------------------------------------------------------------------------------
def rules(tmp_path, slack, webhook, smtp, notify='["ops", "pager", "team"]'):
    path = tmp_path / "alerts.toml"
    path.write_text(
        f"""
dashboard_url = "https://x.ngrok.app/dashboard?token={SECRET}"

[channels.ops]
type = "slack"
url = "{slack.url}/services/T0/B0/X"

[channels.pager]
type = "webhook"
url = "{webhook.url}/digest"

[channels.team]
type = "email"
host = "127.0.0.1"
port = {smtp.port}
from = "digest@example.com"
to = "team@example.com"

[digest]
notify = {notify}
rate_per_minute = 0.1
""",
        encoding="utf-8",
    )
    return path


def test_a_period_is_sent_once_to_each_channel_and_a_failure_retried(db, tmp_path):
    with Receiver() as slack, Receiver() as webhook, Smtp() as smtp:
        parsed = read_rules(rules(tmp_path, slack, webhook, smtp))
        d = build(db, "week", at=AT, rate_per_minute=parsed.digest.rate_per_minute)
        webhook.status = 503
        with open_store(db) as store:
            first = send(d, parsed, store, secret=SECRET, now=AT)
            assert first["ops"] == first["team"] == "sent"
            assert first["pager"].endswith("answered 503")
            webhook.status = 200
            second = send(d, parsed, store, secret=SECRET, now=AT + timedelta(hours=1))
        assert second == {
            "ops": "already sent at 2026-11-04 09:30 UTC",
            "pager": "sent",
            "team": "already sent at 2026-11-04 09:30 UTC",
        }
        assert len(slack.received) == len(smtp.messages) == 1 and len(webhook.received) == 2
        posted = slack.received[0]["json"]["text"]
        assert posted.startswith(
            "*[tavus-analytics] Weekly Tavus digest: 2026-10-26 to 2026-11-01*"
        )
        assert "```\nWeekly Tavus digest" in posted and "Calls" in posted
        body = webhook.received[-1]["json"]
        assert (body["type"], body["period"], body["start"]) == (
            "digest",
            "week",
            "2026-10-26T00:00:00Z",
        )
        assert body["current"]["calls"] == 20 and body["previous"]["calls"] == 10
        mail = smtp.messages[0]["message"]
        assert mail["Subject"] == "[tavus-analytics] Weekly Tavus digest: 2026-10-26 to 2026-11-01"
        assert mail.get_body(("html",)).get_content().startswith("<!DOCTYPE html>")
        everything = slack.texts + webhook.texts + smtp.bodies()
        assert not any(SECRET in t or PHRASE in t for t in everything)


def test_the_ledger_on_postgresql(pg_url, tmp_path):
    with open_store(pg_url) as store:
        two_weeks(store)
    with Receiver() as slack, Receiver() as webhook, Smtp() as smtp:
        parsed = read_rules(rules(tmp_path, slack, webhook, smtp, notify='"pager"'))
        d = build(pg_url, "week", at=AT, rate_per_minute=0.1)
        assert d.rows() == EXPECTED
        with open_store(pg_url) as store:
            assert send(d, parsed, store, now=AT) == {"pager": "sent"}
            assert send(d, parsed, store, now=AT)["pager"].startswith("already sent")
        assert len(webhook.received) == 1 and slack.received == [] and smtp.messages == []


# -- the command line ---------------------------------------------------------------------------
def test_digest_to_the_terminal_a_file_and_the_channels(db, tmp_path):
    result = run("digest", "--db", db, "--at", "2026-11-04", "--rate-per-minute", "0.1")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "Weekly Tavus digest: 2026-10-26 to 2026-11-01"
    assert "Estimated cost (0.1 per minute)" in result.output
    out = tmp_path / "digest.html"
    result = run("digest", "--db", db, "--at", "2026-11-04", "--format", "html", "--out", out)
    assert result.output == f"Wrote Weekly Tavus digest: 2026-10-26 to 2026-11-01 to {out}\n"
    assert out.read_text().startswith("<!DOCTYPE html>")
    result = run("digest", "--db", db, "--period", "month", "--at", "2026-11-04", "--format",
                 "markdown")  # fmt: skip
    assert result.output.startswith("## Monthly Tavus digest: October 2026\n")
    with Receiver() as slack, Receiver() as webhook, Smtp() as smtp:
        path = rules(tmp_path, slack, webhook, smtp)
        env = {"TAVUS_ANALYTICS_ALERTS": str(path), "TAVUS_WEBHOOK_SECRET": SECRET}
        sent = run("digest", "--db", db, "--at", "2026-11-04", "--send", env=env)
        assert sent.exit_code == 0, sent.output
        assert sent.output == (
            "Weekly Tavus digest: 2026-10-26 to 2026-11-01\n  ops: sent\n  pager: sent\n"
            "  team: sent\n"
        )
        again = run("digest", "--db", db, "--at", "2026-11-04", "--send", env=env)
        assert again.exit_code == 0 and again.output.count("already sent at") == 3
        assert len(webhook.received) == 1
        # the price per minute came from the rules file's [digest] table
        assert webhook.received[0]["json"]["current"]["cost"] == pytest.approx(20.0)
    missing = run("digest", "--db", db, "--send", env={"TAVUS_ANALYTICS_ALERTS": None})
    assert missing.exit_code == 2
    assert "--send needs the channels of a rules file: --rules FILE" in missing.output
