"""``serve --tunnel``: a public URL from inside the collector, with a stand-in for ngrok.

The real agent needs an ngrok account and the internet; ``tests/standins/ngrok.py`` takes its
place (first on ``PYTHONPATH`` for a real ``tavus-analytics serve`` process, or in
``sys.modules`` in this one) and records what the collector asked of it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import types
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from conftest import SHUTDOWN_EXAMPLE, banner_of, port_of
from receivers import loopback_only

from tavus_analytics.cli import cli
from tavus_analytics.errors import TunnelUnavailable
from tavus_analytics.tunnel import check, conversation_curl, open_tunnel

ROOT = Path(__file__).resolve().parent.parent
STANDINS = Path(__file__).resolve().parent / "standins"
AUTHTOKEN = "2fake-ngrok-authtoken-not-real"


@pytest.fixture(autouse=True)
def _network():
    """Name lookups and connections stay on this machine."""
    with loopback_only():
        yield


def calls(log: Path) -> list[dict]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def serve_process(tmp_path: Path, *args: str, **env: str) -> subprocess.Popen:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("TAVUS_", "NGROK_"))}
    environ.update(
        PYTHONPATH=os.pathsep.join([str(STANDINS), str(ROOT)]),
        STANDIN_NGROK_LOG=str(tmp_path / "ngrok.log"),
        NGROK_AUTHTOKEN=AUTHTOKEN,
        **env,
    )
    return subprocess.Popen(
        [sys.executable, "-m", "tavus_analytics.cli", "serve", "--port", "0", *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environ,
    )


def test_serve_tunnel_prints_the_public_callback_url_and_a_curl_and_closes_on_exit(tmp_path):
    proc = serve_process(tmp_path, "--tunnel", "--db", "x.db", "--secret", "s3cret-token")
    try:
        out = banner_of(proc)
        port = port_of(out)
        public = "https://standin-7f3a.ngrok-free.app"
        assert f"Public URL (ngrok, closed when the collector stops):  {public}" in out
        assert f"  callback URL:  {public}/webhook?token=s3cret-token" in out
        assert f"  dashboard:     {public}/dashboard?token=s3cret-token" in out
        assert "curl -X POST https://tavusapi.com/v2/conversations" in out
        assert f'"callback_url": "{public}/webhook?token=s3cret-token"' in out
        assert "ngrok http" not in out  # no advice to run what is already running
        assert AUTHTOKEN not in out
        # The tunnel forwards to the port the collector took, which answers.
        r = requests.post(
            f"http://127.0.0.1:{port}/webhook?token=s3cret-token", json=SHUTDOWN_EXAMPLE
        )
        assert r.status_code == 200
        forward = calls(tmp_path / "ngrok.log")
        assert forward == [
            {
                "call": "forward",
                "addr": f"127.0.0.1:{port}",
                "proto": "http",
                "options": {
                    "authtoken_from_env": True,
                    "session_metadata": "tavus-analytics collector",
                },
                "authtoken_seen": True,
            }
        ]
    finally:
        proc.send_signal(signal.SIGTERM)  # as systemd stops it
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert calls(tmp_path / "ngrok.log")[-1] == {"call": "disconnect", "url": public}
    assert AUTHTOKEN not in err


def test_a_fixed_domain_is_asked_for_and_printed(tmp_path):
    proc = serve_process(
        tmp_path,
        "--tunnel-domain",
        "https://callbacks.example.ngrok.app/",
        "--db",
        "x.db",
        "--secret",
        "t",
    )
    try:
        out = banner_of(proc)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
    assert "callback URL:  https://callbacks.example.ngrok.app/webhook?token=t" in out
    forward, closed = calls(tmp_path / "ngrok.log")
    assert forward["options"]["domain"] == "callbacks.example.ngrok.app"
    assert closed == {"call": "disconnect", "url": "https://callbacks.example.ngrok.app"}


@pytest.fixture
def standin(monkeypatch, tmp_path):
    """The stand-in as ``ngrok`` in this process, logging to ``tmp_path / "ngrok.log"``."""
    sys.path.insert(0, str(STANDINS))
    try:
        monkeypatch.delitem(sys.modules, "ngrok", raising=False)
        import ngrok

        assert ngrok.__file__.startswith(str(STANDINS))
    finally:
        sys.path.remove(str(STANDINS))
    monkeypatch.setitem(sys.modules, "ngrok", ngrok)
    monkeypatch.setenv("STANDIN_NGROK_LOG", str(tmp_path / "ngrok.log"))
    monkeypatch.setenv("NGROK_AUTHTOKEN", AUTHTOKEN)
    return tmp_path / "ngrok.log"


def serve_cli(tmp_path, *args, env=None):
    return CliRunner().invoke(
        cli,
        ["serve", "--port", "0", "--db", str(tmp_path / "x.db"), "--secret", "s", *args],
        env={"TAVUS_ANALYTICS_TUNNEL": None, **(env or {})},
    )


def one_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output + result.stderr
    return lines[0]


def test_without_an_authtoken_it_says_what_to_do_and_exits_2(standin, tmp_path):
    result = serve_cli(tmp_path, "--tunnel", env={"NGROK_AUTHTOKEN": ""})
    assert result.exit_code == 2
    assert one_line(result) == (
        "Error: --tunnel needs an ngrok authtoken: export NGROK_AUTHTOKEN=... (free at "
        "https://dashboard.ngrok.com/get-started/your-authtoken), or run without --tunnel and "
        "expose the collector yourself"
    )
    assert calls(standin) == []  # ngrok was not asked
    assert not (tmp_path / "x.db").exists()  # nothing started


def test_without_the_extra_it_names_the_extra_and_exits_2(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ngrok", None)  # import ngrok now fails
    result = serve_cli(tmp_path, "--tunnel", env={"NGROK_AUTHTOKEN": AUTHTOKEN})
    assert result.exit_code == 2
    assert one_line(result) == (
        "Error: --tunnel needs the optional package ngrok: pip install 'tavus-analytics[tunnel]'"
    )


def test_when_ngrok_refuses_the_collector_stops_and_says_why(standin, tmp_path, monkeypatch):
    monkeypatch.setenv("STANDIN_NGROK_FAIL", f"ERR_NGROK_105: authtoken {AUTHTOKEN} is invalid")
    # waitress, in this process; granian (a worker process) below
    result = serve_cli(tmp_path, "--tunnel-domain", "callbacks.example.ngrok.app", "--server",
                       "waitress")  # fmt: skip
    assert result.exit_code == 2
    line = one_line(result)
    assert line.startswith("Error: ngrok could not open the tunnel: ERR_NGROK_105: authtoken ***")
    assert "callbacks.example.ngrok.app is a domain of your ngrok account" in line
    assert AUTHTOKEN not in result.output + result.stderr
    assert [c["call"] for c in calls(standin)] == ["forward"]


def test_when_ngrok_refuses_granian_stops_its_worker_and_says_why(tmp_path):
    """With granian (the default) the tunnel opens in its supervisor once the worker answers:
    refused, the collector stops its worker and exits 2 with one line, before any banner."""
    fail = f"ERR_NGROK_105: authtoken {AUTHTOKEN} is invalid"
    proc = serve_process(
        tmp_path, "--tunnel", "--server", "granian", "--db", "x.db", "--secret", "s",
        STANDIN_NGROK_FAIL=fail,
    )  # fmt: skip
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    # granian's log lines (its start and stop), then the one line that says why
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and err.strip().splitlines()[-1] == errors[0], err
    assert errors[0].startswith(
        "Error: ngrok could not open the tunnel: ERR_NGROK_105: authtoken ***"
    )
    assert "Traceback" not in err and "Granian shutdown completed" in err
    assert "listening on" not in out and AUTHTOKEN not in out + err
    assert [c["call"] for c in calls(tmp_path / "ngrok.log")] == ["forward"]


def test_a_server_that_forks_its_workers_is_refused(standin, tmp_path):
    result = serve_cli(tmp_path, "--tunnel", "--server", "gunicorn", "--port", "5999")
    assert result.exit_code == 2
    assert (
        "--tunnel runs with granian (the default) or waitress, not --server gunicorn"
        in one_line(result)
    )
    assert calls(standin) == []


def test_open_tunnel_reaches_a_wildcard_interface_on_loopback_and_closes_once(standin):
    tunnel = open_tunnel(5123, host="0.0.0.0")
    with tunnel:
        assert tunnel.url == "https://standin-7f3a.ngrok-free.app"
    tunnel.close()
    assert [(c["call"], c.get("addr") or c.get("url")) for c in calls(standin)] == [
        ("forward", "127.0.0.1:5123"),
        ("disconnect", "https://standin-7f3a.ngrok-free.app"),
    ]


def test_check_reads_the_environment_it_is_given(standin):
    assert isinstance(check(environ={"NGROK_AUTHTOKEN": "x"}), types.ModuleType)
    with pytest.raises(TunnelUnavailable, match="NGROK_AUTHTOKEN"):
        check(environ={"NGROK_AUTHTOKEN": "  "})


def test_the_curl_is_a_valid_shell_command_with_a_json_body():
    import shlex

    url = "https://x.ngrok.app/webhook?token=it's"
    argv = shlex.split(conversation_curl(url).replace("\\\n", " "))
    assert argv[:4] == ["curl", "-X", "POST", "https://tavusapi.com/v2/conversations"]
    assert argv[argv.index("-H") + 1] == "x-api-key: $TAVUS_API_KEY"
    assert json.loads(argv[argv.index("-d") + 1])["callback_url"] == url
