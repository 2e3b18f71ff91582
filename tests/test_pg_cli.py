"""The command line on a PostgreSQL URL: what reads takes it, and the password never shows."""

from __future__ import annotations

import pandas as pd
from conftest import pg_query, run


def password_of(url: str) -> str:
    return url.split("@")[0].rsplit(":", 1)[1]


def test_demo_stats_report_and_export_take_a_url(pg_url, tmp_path):
    secret = password_of(pg_url)
    made = run("demo", "--conversations", 40, "--db", pg_url)
    assert made.exit_code == 0, made.output
    n = pg_query(pg_url, "SELECT count(*) FROM callbacks")[0][0]
    assert f"{n} callbacks stored" in made.output

    stats = run("stats", "--db", pg_url, "--json")
    assert stats.exit_code == 0, stats.output
    assert '"conversations": 40' in stats.output.replace("\n", " ").replace("  ", " ")

    out = tmp_path / "report.html"
    report = run("report", "--db", pg_url, "--out", out)
    assert report.exit_code == 0, report.output
    html = out.read_text()
    assert "postgresql://tavus_test:***@127.0.0.1" in html

    csv = tmp_path / "conversations.csv"
    export = run(
        "export", "--db", pg_url, "--table", "conversations", "--format", "csv", "--out", csv
    )
    assert export.exit_code == 0, export.output
    assert len(pd.read_csv(csv)) == 40

    for result in (made, stats, report, export):
        assert secret not in result.output
    assert secret not in html


def test_search_takes_a_url_and_never_prints_the_password(pg_url):
    from test_search import CALLS

    from tavus_analytics.store.postgres import PgStore

    secret = password_of(pg_url)
    with PgStore(pg_url) as pg:
        pg.insert_batch(CALLS)
    found = run("search", "refund", "--role", "user", "--db", pg_url)
    assert found.exit_code == 0, found.output
    assert found.output.splitlines() == [
        "conversation  turn  role       text",
        "c1               1  user       Hi, I would like a refund for my order.",
        "1 message",
    ]
    bad = run("search", "refund &", "--fts", "--db", pg_url)
    assert bad.exit_code == 1
    assert bad.output.startswith("Error: 'refund &' is not a valid full-text query (")
    wrong = run("search", "refund", "--db", pg_url.replace(secret, "not-" + secret))
    assert wrong.exit_code == 1 and "postgresql://tavus_test:***@" in wrong.output
    for result in (found, bad, wrong):
        assert secret not in result.output
        assert "Traceback" not in result.output


def test_an_unreachable_server_is_one_line(tmp_path):
    result = run("stats", "--db", "postgresql://u:hunter2@127.0.0.1:1/db")
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and len(result.output.strip().splitlines()) == 1
    assert "hunter2" not in result.output and "127.0.0.1:1" in result.output
