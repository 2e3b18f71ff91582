"""Alerts: the rules file, every metric, OK -> FIRING -> RESOLVED with one message per change,
the three kinds of channel (a local HTTP server and a local SMTP server stand in for Slack, a
webhook and a mail server), the collector's watcher and the command line. A fake clock decides
what is recent; the network is loopback only."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import SECRET, run
from livedata import COMPLETED, FAILED, NO_SHOW, PHRASE, call, calls, guardrail, recording_failed
from receivers import Receiver, Smtp, loopback_only

from tavus_analytics.alerts import Watcher, check, evaluate, read_rules, states
from tavus_analytics.dataset import load
from tavus_analytics.errors import InvalidRules
from tavus_analytics.store import open_store
from tavus_analytics.testing import clean_environment

T0 = datetime(2026, 11, 4, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _network():
    with loopback_only():
        yield


@pytest.fixture
def db(tmp_path):
    return tmp_path / "tavus.db"


@pytest.fixture
def store(db):
    s = open_store(db)
    s.migrate()  # the database exists, as a collector's does once it has started
    yield s
    s.close()


@pytest.fixture
def hooks():
    with Receiver() as slack, Receiver() as webhook:
        yield slack, webhook


def rules_file(tmp_path, body: str, name: str = "alerts.toml") -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


def channels(slack: Receiver, webhook: Receiver, smtp: Smtp | None = None) -> str:
    text = f"""
dashboard_url = "https://callbacks.example.ngrok.app/dashboard?token={SECRET}"

[channels.ops]
type = "slack"
url = "{slack.url}/services/T000/B000/XXXX"

[channels.pager]
type = "webhook"
url = "{webhook.url}/tavus"
"""
    if smtp:
        text += f"""
[channels.team]
type = "email"
host = "127.0.0.1"
port = {smtp.port}
from = "alerts@example.com"
to = ["oncall@example.com", "lead@example.com"]
"""
    return text


FAILED_RULE = """
[[rule]]
name = "failed calls"
metric = "failed_rate"
above = "20%"
window = "1h"
min_calls = 10
"""


# -- the rules file ------------------------------------------------------------------------------
def test_a_rules_file_is_read_with_its_channels_and_defaults(tmp_path, hooks):
    path = rules_file(tmp_path, channels(*hooks) + FAILED_RULE + '\n[digest]\nnotify = "ops"\n')
    rules = read_rules(path)
    [rule] = rules.rules
    assert (rule.name, rule.metric, rule.above, rule.window, rule.min_calls) == (
        "failed calls",
        "failed_rate",
        0.2,
        timedelta(hours=1),
        10,
    )
    assert rule.notify is None and rule.line == 12  # its [[rule]] header
    assert [c.name for c in rules.channels_of(None)] == ["ops", "pager"]
    assert rules.digest.notify == ("ops",)
    assert rules.dashboard_url == "https://callbacks.example.ngrok.app/dashboard"  # no token


BAD = [
    ('[[rule]]\nname = "x" y\n', "line 2, column 12: ", "(not valid TOML)"),
    ("[[rule]]\nname = 'x\n", "(end of the file): ", "(not valid TOML)"),
    (
        FAILED_RULE.replace('"failed_rate"', '"fail_rate"'),
        "line 4, rule 'failed calls': metric must be one of failed_rate, no_show_rate, "
        "no_callbacks, recording_copy_failures, guardrail_triggers_per_100, answer_delay_p90 "
        "(got 'fail_rate')",
        None,
    ),
    (
        FAILED_RULE.replace('"20%"', '"twenty"'),
        "line 5, rule 'failed calls': above must be a fraction (0.2) or a percentage (\"20%\") "
        "(got 'twenty')",
        None,
    ),
    (
        FAILED_RULE.replace('above = "20%"', 'abvoe = "20%"'),
        "line 5, rule 'failed calls': unknown key 'abvoe' for metric failed_rate (use above, "
        "metric, min_calls, name, notify, window)",
        None,
    ),
    (
        FAILED_RULE.replace('window = "1h"\n', ""),
        "line 2, rule 'failed calls': every rule needs a window, e.g. window = \"1h\"",
        None,
    ),
    (
        FAILED_RULE.replace('"1h"', '"an hour"'),
        'line 6, rule \'failed calls\': window must be a duration such as "30m", "1h", "24h" '
        "or \"7d\" (got 'an hour')",
        None,
    ),
    (
        FAILED_RULE + 'notify = ["ops"]\n',
        "line 8, rule 'failed calls': notify names the channel 'ops', which is not declared "
        "(none is declared)",
        None,
    ),
    (FAILED_RULE + FAILED_RULE, "line 10, rule 'failed calls': another rule has this name", None),
    (
        '[[rule]]\nmetric = "no_callbacks"\nwindow = "6h"\n',
        "line 1, rule #1: every rule needs a name",
        None,
    ),
    (
        '[channels.ops]\ntype = "slack"\nurl_env = "NOT_SET_ANYWHERE"\n',
        "line 3, channel 'ops': url_env names NOT_SET_ANYWHERE, which is not set in the "
        "environment",
        None,
    ),
    (
        '[channels.ops]\ntype = "sms"\n',
        "line 2, channel 'ops': type must be one of slack, webhook, email (got 'sms')",
        None,
    ),
    ("treshold = 3\n", "line 1, top level: unknown key 'treshold'", None),
]


@pytest.mark.parametrize(("text", "start", "end"), BAD)
def test_a_mistake_is_one_line_naming_the_file_the_line_and_the_rule(tmp_path, text, start, end):
    path = rules_file(tmp_path, text)
    with pytest.raises(InvalidRules) as info:
        read_rules(path, environ={})
    message = str(info.value)
    assert message.startswith(f"{path} {start}"), message
    assert "\n" not in message
    if end:
        assert message.endswith(end), message


def test_a_missing_rules_file_says_so(tmp_path):
    with pytest.raises(InvalidRules, match="no rules file at .*nope.toml"):
        read_rules(tmp_path / "nope.toml")


# -- every metric, on a fake clock ---------------------------------------------------------------
def reading(store, db, text: str, now: datetime):
    path = Path(str(db) + ".rules.toml")
    path.write_text(text, encoding="utf-8")
    [rule] = read_rules(path).rules
    return evaluate(rule, load(db), now)


def test_failed_and_no_show_rates_count_the_calls_that_ended_in_the_window(store, db):
    calls(store, "old", T0 - timedelta(hours=3), 10, reason=FAILED)  # outside the window
    calls(store, "ok", T0 - timedelta(minutes=50), 6)
    calls(store, "bad", T0 - timedelta(minutes=40), 3, reason=FAILED)
    calls(store, "gone", T0 - timedelta(minutes=30), 1, reason=NO_SHOW)
    r = reading(store, db, FAILED_RULE, T0)
    assert (r.value, r.breached) == (0.3, True)
    assert r.detail == "3 of 10 calls that ended in the last 1h failed (30.0%)"
    r = reading(store, db, FAILED_RULE.replace("failed_rate", "no_show_rate"), T0)
    assert (r.value, r.breached) == (0.1, False)
    assert r.detail == "1 of 10 calls that ended in the last 1h were no-shows (10.0%)"
    r = reading(store, db, FAILED_RULE.replace("min_calls = 10", "min_calls = 11"), T0)
    assert (r.value, r.breached) == (None, None)
    assert r.detail == "10 calls ended in the last 1h, fewer than min_calls 11: not judged"


def test_no_callbacks_for_a_while(store, db):
    rule = '[[rule]]\nname = "silence"\nmetric = "no_callbacks"\nwindow = "6h"\n'
    assert reading(store, db, rule, T0).detail == "no callback has ever arrived"
    call(store, "c1", T0 - timedelta(hours=8))
    r = reading(store, db, rule, T0 - timedelta(hours=2))
    assert r.breached is False
    r = reading(store, db, rule, T0)
    assert r.breached is True and round(r.value, 2) == 7.92
    assert r.detail == "the last callback arrived 7h 55m ago (2026-11-04 04:05 UTC)"


def test_recording_copy_failures(store, db):
    rule = '[[rule]]\nname = "copies"\nmetric = "recording_copy_failures"\nwindow = "24h"\n'
    recording_failed(store, "c0", T0 - timedelta(days=3))
    assert reading(store, db, rule, T0).breached is False
    recording_failed(store, "c1", T0 - timedelta(hours=2))
    recording_failed(store, "c2", T0 - timedelta(hours=1), code="COPY_TIMEOUT")
    r = reading(store, db, rule, T0)
    assert (r.value, r.breached) == (2.0, True)
    assert r.detail == (
        "2 recordings could not be copied in the last 24h (DESTINATION_AUTH_FAILED 1, "
        "COPY_TIMEOUT 1)"
    )
    assert reading(store, db, rule + "above = 2\n", T0).breached is False


def test_guardrail_triggers_per_100_calls(store, db):
    calls(store, "c", T0 - timedelta(hours=5), 20)
    for minutes in (10, 20, 30):  # the same body three times: three triggers
        guardrail(store, "c000", T0 - timedelta(minutes=minutes))
    guardrail(store, "c001", T0 - timedelta(minutes=5), name="no_pricing_promises")
    guardrail(store, "c002", T0 - timedelta(days=2))  # outside the window
    rule = (
        '[[rule]]\nname = "guardrails"\nmetric = "guardrail_triggers_per_100"\nabove = 15\n'
        'window = "24h"\n'
    )
    r = reading(store, db, rule, T0)
    assert (r.value, r.breached) == (20.0, True)
    assert r.detail == (
        "4 guardrail triggers in the last 24h, 20.0 per 100 of the 20 calls that ended"
    )
    r = reading(store, db, rule + 'guardrail = "no_medical_advice"\n', T0)
    assert (r.value, r.breached) == (15.0, False)


def test_answer_delay_p90_where_timed(store, db):
    rule = (
        '[[rule]]\nname = "slow"\nmetric = "answer_delay_p90"\nabove = 2.5\nwindow = "1h"\n'
        "min_answers = 10\n"
    )
    call(store, "untimed", T0 - timedelta(minutes=30))
    assert reading(store, db, rule, T0).breached is None  # no timed answer: not judged
    call(store, "fast", T0 - timedelta(minutes=40), delays=[1.0] * 9)
    call(store, "slow", T0 - timedelta(minutes=20), delays=[4.0] * 3)
    r = reading(store, db, rule, T0)
    assert r.breached is True and round(r.value, 2) == 4.0
    assert r.detail == (
        "p90 answer delay 4.00 s over 12 timed answers in 3 calls that ended in the last 1h"
    )


# -- changes of state and their messages ---------------------------------------------------------
def test_ok_firing_resolved_each_change_told_once_to_every_channel(store, db, tmp_path, hooks):
    slack, webhook = hooks
    with Smtp() as smtp:
        rules = read_rules(rules_file(tmp_path, channels(slack, webhook, smtp) + FAILED_RULE))
        calls(store, "ok", T0 - timedelta(minutes=55), 7, delays=[1.0, 1.5])
        calls(store, "bad", T0 - timedelta(minutes=45), 3, reason=FAILED)

        [o] = check(rules, db, now=T0, secret=SECRET)
        assert (o.previous, o.state, o.notified) == ("OK", "FIRING", ["ops", "pager", "team"])
        [o] = check(rules, db, now=T0 + timedelta(minutes=5), secret=SECRET)
        assert (o.previous, o.state, o.notified) == ("FIRING", "FIRING", [])  # no second message
        assert len(slack.received) == len(webhook.received) == len(smtp.messages) == 1

        calls(store, "good", T0 + timedelta(minutes=65), 10)  # a good hour after the bad one
        [o] = check(rules, db, now=T0 + timedelta(hours=2), secret=SECRET)
        assert (o.previous, o.state) == ("FIRING", "RESOLVED")
        [o] = check(rules, db, now=T0 + timedelta(hours=2, minutes=5), secret=SECRET)
        assert (o.previous, o.state, o.notified) == ("RESOLVED", "RESOLVED", [])
        calls(store, "worse", T0 + timedelta(hours=2, minutes=10), 10, reason=FAILED)
        [o] = check(rules, db, now=T0 + timedelta(hours=2, minutes=30), secret=SECRET)
        assert (o.previous, o.state) == ("RESOLVED", "FIRING")

        assert len(slack.received) == len(webhook.received) == len(smtp.messages) == 3
        firing, resolved, again = (r["json"] for r in webhook.received)
        assert firing == {
            "source": "tavus-analytics",
            "type": "alert",
            "rule": "failed calls",
            "metric": "failed_rate",
            "state": "FIRING",
            "value": 0.3,
            "threshold": 0.2,
            "window_s": 3600,
            "detail": "3 of 10 calls that ended in the last 1h failed (30.0%)",
            "at": "2026-11-04T12:00:00.000Z",
            "dashboard_url": "https://callbacks.example.ngrok.app/dashboard",
            "subject": "[tavus-analytics] FIRING: failed calls",
            "text": "[tavus-analytics] FIRING: failed calls\n3 of 10 calls that ended in the "
            "last 1h failed (30.0%). Condition: failed-call rate above 20% over 1h.\n"
            "Dashboard: https://callbacks.example.ngrok.app/dashboard",
        }
        assert resolved["state"] == "RESOLVED" and again["state"] == "FIRING"
        assert resolved["text"].splitlines()[1] == (
            "0 of 10 calls that ended in the last 1h failed (0.0%). No longer: failed-call rate "
            "above 20% over 1h (firing since 2026-11-04 12:00 UTC)."
        )
        assert slack.received[0]["json"] == {"text": firing["text"]}
        assert slack.received[0]["path"] == "/services/T000/B000/XXXX"
        mail = smtp.messages[0]
        assert mail["to"] == ["oncall@example.com", "lead@example.com"]
        assert mail["message"]["Subject"] == "[tavus-analytics] FIRING: failed calls"
        assert mail["message"].get_content().replace("\r\n", "\n").strip() == firing["text"]
        everything = slack.texts + webhook.texts + smtp.bodies()
        everything += [str(m["message"]) for m in smtp.messages]
        assert not any(SECRET in t for t in everything)
        assert not any(PHRASE in t or "4417" in t for t in everything)
    assert [(s["rule"], s["state"], s["notified"]) for s in states(db)] == [
        ("failed calls", "FIRING", "ops,pager,team")
    ]


def test_not_enough_calls_keeps_the_state(store, db, tmp_path, hooks):
    rules = read_rules(rules_file(tmp_path, channels(*hooks) + FAILED_RULE))
    calls(store, "bad", T0 - timedelta(minutes=30), 10, reason=FAILED)
    assert check(rules, db, now=T0)[0].state == "FIRING"
    [o] = check(rules, db, now=T0 + timedelta(hours=3))  # nobody called since
    assert (o.state, o.reading.breached) == ("FIRING", None)
    assert len(hooks[0].received) == 1


def test_a_channel_that_failed_is_told_at_the_next_check_and_the_others_not_again(
    store, db, tmp_path, hooks
):
    slack, webhook = hooks
    rules = read_rules(rules_file(tmp_path, channels(slack, webhook) + FAILED_RULE))
    calls(store, "bad", T0 - timedelta(minutes=30), 10, reason=FAILED)
    webhook.status = 500
    [o] = check(rules, db, now=T0)
    assert o.notified == ["ops"] and list(o.failures) == ["pager"]
    assert (
        o.failures["pager"]
        == f"channel pager: http://127.0.0.1:{webhook.server.server_address[1]} answered 500"
    )
    webhook.status = 200
    [o] = check(rules, db, now=T0 + timedelta(minutes=5))
    assert o.notified == ["pager"] and not o.failures
    [o] = check(rules, db, now=T0 + timedelta(minutes=10))
    assert o.notified == []
    assert len(slack.received) == 1 and len(webhook.received) == 2  # the 500 and the retry
    assert states(db)[0]["notified"] == "ops,pager"


def test_a_dry_run_changes_nothing_and_sends_nothing(store, db, tmp_path, hooks):
    rules = read_rules(rules_file(tmp_path, channels(*hooks) + FAILED_RULE))
    calls(store, "bad", T0 - timedelta(minutes=30), 10, reason=FAILED)
    [o] = check(rules, db, now=T0, dry_run=True)
    assert (o.previous, o.state) == ("OK", "FIRING")
    assert states(db) == [] and hooks[0].received == []


def test_the_states_on_postgresql(pg_url, tmp_path, hooks):
    slack, webhook = hooks
    rules = read_rules(rules_file(tmp_path, channels(slack, webhook) + FAILED_RULE))
    with open_store(pg_url) as pg:
        calls(pg, "bad", T0 - timedelta(minutes=30), 10, reason=FAILED)
        assert check(rules, pg_url, now=T0)[0].state == "FIRING"
        assert check(rules, pg_url, now=T0 + timedelta(minutes=5))[0].notified == []
        calls(pg, "good", T0 + timedelta(minutes=61), 10, reason=COMPLETED)
        assert check(rules, pg_url, now=T0 + timedelta(hours=2))[0].state == "RESOLVED"
    assert [r["json"]["state"] for r in webhook.received] == ["FIRING", "RESOLVED"]
    assert [(s["rule"], s["state"]) for s in states(pg_url)] == [("failed calls", "RESOLVED")]


# -- in the collector ---------------------------------------------------------------------------
def test_the_watcher_checks_in_the_background_until_stopped(store, db, tmp_path, hooks):
    rules = read_rules(rules_file(tmp_path, channels(*hooks) + FAILED_RULE))
    now = datetime.now(UTC)
    calls(store, "bad", now - timedelta(minutes=40), 10, reason=FAILED)
    watcher = Watcher(rules, db, every=3600, secret=SECRET)
    watcher.start()
    deadline = time.monotonic() + 60
    while watcher.checks == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    watcher.stop()
    assert watcher.checks == 1  # the first check at once, the next an hour later
    assert [r["json"]["state"] for r in hooks[1].received] == ["FIRING"]


def test_the_watcher_survives_a_check_that_fails(tmp_path, hooks):
    rules = read_rules(rules_file(tmp_path, channels(*hooks) + FAILED_RULE))
    watcher = Watcher(rules, tmp_path / "missing.db", every=3600)
    assert watcher.run_once() is None and watcher.checks == 1


def test_serve_alerts_checks_at_start_and_stops_on_sigterm(store, db, tmp_path, hooks):
    import signal
    import subprocess
    import sys

    calls(store, "bad", datetime.now(UTC) - timedelta(minutes=40), 10, reason=FAILED)
    store.close()
    path = rules_file(tmp_path, channels(*hooks) + FAILED_RULE)
    env = clean_environment()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tavus_analytics.cli", "serve", "--port", "0", "--db", str(db)]
        + ["--secret", SECRET, "--alerts", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while not hooks[1].received and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert [r["json"]["state"] for r in hooks[1].received] == ["FIRING"]
    assert "alert 'failed calls' is FIRING (was OK)" in err and SECRET not in err


def test_serve_refuses_a_bad_rules_file_before_starting(tmp_path):
    path = rules_file(tmp_path, FAILED_RULE.replace('"1h"', '"soon"'))
    result = run(
        "serve", "--db", tmp_path / "x.db", "--port", "0", "--secret", "s", "--alerts", path
    )
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {path} line 6, rule 'failed calls': window must")
    assert not (tmp_path / "x.db").exists()
    result = run(
        "serve", "--db", tmp_path / "x.db", "--port", "5999", "--secret", "s",
        "--alerts", path, "--server", "gunicorn",
    )  # fmt: skip
    assert result.exit_code == 1 and "run tavus-analytics alerts check" in result.output


# -- the command line ---------------------------------------------------------------------------
def test_alerts_check_status_and_test_from_the_command_line(store, db, tmp_path, hooks):
    slack, webhook = hooks
    path = rules_file(
        tmp_path,
        channels(slack, webhook)
        + FAILED_RULE
        + '\n[[rule]]\nname = "silence"\nmetric = "no_callbacks"\nwindow = "6h"\n',
    )
    now = datetime.now(UTC)
    calls(store, "bad", now - timedelta(minutes=40), 10, reason=FAILED)
    env = {"TAVUS_WEBHOOK_SECRET": SECRET, "TAVUS_ANALYTICS_ALERTS": str(path)}
    dry = run("alerts", "check", "--db", db, "--dry-run", env=env)
    assert dry.exit_code == 0, dry.output
    assert re.match(r"failed calls +would be FIRING \(is OK\) +10 of 10 calls", dry.output)
    result = run("alerts", "check", "--db", db, env=env)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert re.match(
        r"failed calls +FIRING \(was OK\) +10 of 10 calls that ended in the last 1h failed "
        r"\(100\.0%\); told ops, pager$",
        lines[0],
    )
    assert re.match(r"silence +OK +the last callback arrived \d+m ago", lines[1])
    status = run("alerts", "status", "--db", db)
    assert status.exit_code == 0
    assert re.match(
        r"failed calls +FIRING +since .* UTC, checked .* UTC: 10 of 10 .*; told ops, pager",
        status.output,
    )
    test = run("alerts", "test", "--rules", path, "--channel", "pager", env=env)
    assert test.exit_code == 0, test.output
    assert test.output.startswith(
        "pager            took the test message: webhook at http://127.0.0.1:"
    )
    assert webhook.received[-1]["json"] == {
        "source": "tavus-analytics",
        "type": "test",
        "rules": ["failed calls", "silence"],
        "subject": "[tavus-analytics] Test message",
        "text": "[tavus-analytics] Test: this channel receives the alerts of alerts.toml "
        "(failed calls, silence)\nDashboard: https://callbacks.example.ngrok.app/dashboard",
    }
    assert not any(SECRET in t for t in slack.texts + webhook.texts)
    assert not any(PHRASE in t for t in slack.texts + webhook.texts)


def test_a_channel_that_cannot_be_reached_is_exit_1_without_its_secret_path(store, db, tmp_path):
    path = rules_file(
        tmp_path,
        '[channels.ops]\ntype = "slack"\nurl = "https://hooks.slack.example/services/T1/B2/s3cr3t"\n'
        + FAILED_RULE,
    )
    calls(store, "bad", datetime.now(UTC) - timedelta(minutes=40), 10, reason=FAILED)
    result = run("alerts", "check", "--rules", path, "--db", db)
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0].endswith("(100.0%); not told ops")
    error = result.stderr.strip()
    assert error.startswith("Error: channel ops: could not reach https://hooks.slack.example: ")
    assert "network blocked in tests" in error and "\n" not in error
    assert "s3cr3t" not in result.output + result.stderr
    assert states(db)[0]["state"] == "FIRING" and states(db)[0]["notified"] == ""
    test = run("alerts", "test", "--rules", path)
    assert test.exit_code == 1 and "s3cr3t" not in test.output + test.stderr
    assert json.dumps(test.stdout).count("FAILED") == 1
