"""The reliability harness on PostgreSQL, in a fast subset: two collectors killed with SIGKILL
under load, PostgreSQL itself restarted under load, a short soak, a small fuzz and every route.

The full runs are ``python -m stress.run all --pg`` and ``python -m stress.run soak --pg`` (see
``stress/README.md``). Each test works on a new database of the test server (``pg_url``), except
the restart, which stops and starts a server of its own: stopping the shared one would disturb
the other tests.
"""

from __future__ import annotations

import os

import pytest

from stress import harness, hostile, pg


def _stored_exactly_once(r: dict) -> None:
    """Every callback answered 200 is stored, once, byte for byte; nothing else went wrong."""
    assert r["acknowledged"] > 0
    assert r["checked_acknowledged"] >= r["acknowledged"]
    assert r["acknowledged_and_stored"] == r["checked_acknowledged"]
    assert r["acknowledged_missing"] == 0
    assert r["stored_more_than_once"] == 0
    assert r["body_differs_from_sha256"] == 0
    assert r["json_invalid_rows"] == 0
    assert not r["integrity_check"].startswith("failed"), r["integrity_check"]
    assert r["bad_answers"] == 0
    assert set(r["answers"]) <= {200, 503}
    assert r["collector_log_problems"] == []
    assert r["password_in_logs"] == []


def test_two_collectors_killed_under_load_store_each_acknowledged_callback_once(pg_url, tmp_path):
    r = harness.crash(
        tmp_path,
        db=pg_url,
        collectors=2,
        kills=3,
        threads=3,
        gap=(0.05, 0.3),
        deadline=60,
        seed=3,  # with this seed both collectors are killed
    )
    assert r["kills"] == 3
    assert set(r["kills_per_collector"]) == {"crash0", "crash1"}
    _stored_exactly_once(r)
    assert r["never_acknowledged"] == 0
    # every body was retried until acknowledged, so what is stored is exactly what was answered
    assert r["stored_rows"] == r["acknowledged"] == r["checked_acknowledged"]
    assert r["ok"], r


@pytest.fixture
def postgres_installed():
    if not pg.installed():
        if os.environ.get("TAVUS_ANALYTICS_TEST_PG_REQUIRED") == "1":
            pytest.fail("PostgreSQL is not installed, and TAVUS_ANALYTICS_TEST_PG_REQUIRED=1")
        pytest.skip("PostgreSQL is not installed (initdb/pg_ctl not found)")


def test_postgresql_restarted_under_load_503_while_away_and_nothing_lost(
    postgres_installed, tmp_path
):
    r = pg.restart(
        tmp_path,
        restarts=1,
        modes=("immediate",),  # a crash of the server: what was committed comes back from the WAL
        collectors=2,
        threads=3,
        gap=(0.5, 1.0),
        min_down=1.0,
        recover_within=60,  # a liveness bound, not a measurement
        busy_timeout_ms=500,  # a 503 after half a second rather than five
    )
    assert "fsync=on, synchronous_commit=on" in r["server"]
    [outage] = r["outages"]
    assert outage["mode"] == "immediate"
    assert len(outage["answers_while_away"]) == 2
    for away in outage["answers_while_away"]:
        assert away["webhook"] == 503 and away["retry_after"] == "1"
        assert away["healthz"] == 503
    assert None not in outage["recovered_s_after_start"]  # both stored again, not restarted
    assert r["collectors_alive_and_never_restarted"]
    # what was refused while the server was away had not been stored, and is stored when resent
    assert r["refused_while_away"] == 2 and r["resent_after"] == {"stored now": 2}
    _stored_exactly_once(r)
    assert r["integrity_check"] == "ok"  # a server of its own: amcheck can be installed
    assert r["stored_but_never_acknowledged"] == 0
    assert r["ok"], r


def test_short_soak_on_postgresql(pg_url, tmp_path):
    r = harness.soak(tmp_path, db=pg_url, duration=5, rate=20, threads=2, sample_every=0.5)
    assert r["samples"] >= 6
    _stored_exactly_once(r)
    assert r["status_and_health_answers"] == {200: 2 * r["samples"]}
    assert r["fds_spread_after_warmup"] <= 2
    first, _, most = r["server_sessions_first_last_max"]
    assert first >= 1 and most <= 8  # the collector's pool: one connection per thread at most
    assert r["ok"], r


def test_fuzz_webhook_on_postgresql_through_the_test_client(pg_url, tmp_path):
    r = hostile.fuzz_app(tmp_path, examples=100, db=pg_url)
    assert r["examples"] > 0 and 200 in r["answers"] and 400 in r["answers"]
    assert set(r["answers"]) <= {200, 400, 413}
    assert r["load"]["rows"] > 0 and r["load"]["jsonb_null_but_jsonb_reads_it"] == 0
    assert r["load"]["ok"], r["load"]


def test_fuzz_real_collector_on_postgresql_with_broken_framing(pg_url, tmp_path):
    r = hostile.fuzz_server(tmp_path, examples=30, db=pg_url)
    assert r["examples"] == 30
    assert r["collector_alive_after"] and r["healthz_after"] == 200
    assert r["collector_log_problems"] == []
    assert r["load"]["ok"], r["load"]


def test_every_route_on_postgresql_with_and_without_the_token_leaks_nothing(pg_url, tmp_path):
    r = hostile.access(tmp_path, db=pg_url)
    assert r["requests"] == len(hostile.ROUTES) * r["token_variants"] * 2
    assert r["problems"] == []
    assert 500 not in r["answers"]
    assert r["answers"][401] > 0 and r["answers"][503] > 0  # locked: the webhook answers 503
