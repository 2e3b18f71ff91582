"""``serve --tail``: one line per request, never the token, never transcript content."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from conftest import SECRET, SHUTDOWN_EXAMPLE, banner_of, port_of
from receivers import loopback_only

from tavus_analytics import create_app
from tavus_analytics.tail import Tail
from tavus_analytics.testing import clean_environment

ROOT = Path(__file__).resolve().parent.parent
PHRASE = "my card number is 4111"
TRANSCRIPT = {
    "conversation_id": "c-tail-2",
    "event_type": "application.transcription_ready",
    "message_type": "application",
    "properties": {"transcript": [{"role": "user", "content": PHRASE}]},
}


@pytest.fixture(autouse=True)
def _network():
    """Name lookups and connections stay on this machine."""
    with loopback_only():
        yield


def tailed(settings, store):
    out = io.StringIO()
    clock = iter(datetime(2026, 11, 4, 10, 15, s, 114000, tzinfo=UTC) for s in range(60))
    app = create_app(settings, store=store, tail=Tail(out, clock=lambda: next(clock)))
    return app.test_client(), out


def test_one_line_per_request_with_the_answer(settings, store):
    client, out = tailed(settings, store)
    url = f"/webhook?token={SECRET}"
    assert client.post(url, json=SHUTDOWN_EXAMPLE).status_code == 200
    assert client.post(url, json=SHUTDOWN_EXAMPLE).status_code == 200
    assert client.post(url, json=TRANSCRIPT).status_code == 200
    assert client.post("/webhook?token=wrong", json=SHUTDOWN_EXAMPLE).status_code == 401
    assert client.post(url, data=b"{not json").status_code == 400
    assert client.post(url, json={"replica_id": "r9", "status": "ready"}).status_code == 200
    assert client.get(url).status_code == 405
    assert client.get(f"/healthz?token={SECRET}").status_code == 200
    lines = out.getvalue().splitlines()
    # The parser's own words (they differ between orjson versions), then the line is the same.
    head, _, words = lines[4].partition("400 body is not valid JSON: ")
    assert words.endswith("line 1 column 2 (char 1)")
    lines[4] = head + "400 body is not valid JSON: <the parser's words>"
    assert lines == [
        "2026-11-04T10:15:00.114Z  system.shutdown                   c123456         200 stored #1",
        "2026-11-04T10:15:01.114Z  system.shutdown                   c123456         "
        "200 duplicate of #1",
        "2026-11-04T10:15:02.114Z  application.transcription_ready   c-tail-2        200 stored #2",
        "2026-11-04T10:15:03.114Z  -                                 -               "
        "401 missing or wrong token",
        "2026-11-04T10:15:04.114Z  -                                 -               "
        "400 body is not valid JSON: <the parser's words>",
        "2026-11-04T10:15:05.114Z  replica_training                  r9              200 stored #3",
        "2026-11-04T10:15:06.114Z  -                                 -               "
        "405 use POST to send a callback",
        "2026-11-04T10:15:07.114Z  GET /healthz                      -               200",
    ]
    assert SECRET not in out.getvalue() and PHRASE not in out.getvalue()


def test_what_a_sender_wrote_cannot_drive_the_terminal(settings, store):
    client, out = tailed(settings, store)
    hostile = {"conversation_id": "c\x1b[2J" + "x" * 500, "event_type": "evil\x1b]0;pwned\x07"}
    assert client.post(f"/webhook?token={SECRET}", json=hostile).status_code == 200
    line = out.getvalue()
    assert "\x1b" not in line and "\x07" not in line
    assert "evil\\x1b]0;pwned\\x07" in line and "c\\x1b[2Jxxx" in line
    assert len(line) < 300 and line.count("\n") == 1


def test_without_tail_nothing_is_written(settings, store, capsys):
    client = create_app(settings, store=store).test_client()
    client.post(f"/webhook?token={SECRET}", json=SHUTDOWN_EXAMPLE)
    assert capsys.readouterr().out == ""


def test_serve_tail_in_a_real_process(tmp_path):
    env = clean_environment()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tavus_analytics.cli", "serve", "--tail", "--port", "0"]
        + ["--db", str(tmp_path / "t.db"), "--secret", SECRET],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        base = f"http://127.0.0.1:{port_of(banner_of(proc))}"
        assert requests.post(f"{base}/webhook?token={SECRET}", json=TRANSCRIPT).status_code == 200
        line = proc.stdout.readline()
        assert line.endswith("  application.transcription_ready   c-tail-2        "
                             "200 stored #1\n")  # fmt: skip
        assert requests.post(f"{base}/webhook", data=json.dumps(TRANSCRIPT)).status_code == 401
        assert proc.stdout.readline().endswith("401 missing or wrong token\n")
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert PHRASE not in out + err
    # With --tail the collector's own per-callback log line is not repeated on stderr.
    assert "stored #1" not in err
