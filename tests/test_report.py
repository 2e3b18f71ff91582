"""The HTML report and the charts command: produced, complete, self-contained."""

from __future__ import annotations

import base64
import functools
import re
import sys
from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest
from click.testing import CliRunner

import tavus_analytics as ta
from tavus_analytics import charts, content, content_cache, demo, report
from tavus_analytics.cli import cli
from tavus_analytics.store import Store

PNG = b"\x89PNG\r\n\x1a\n"


class Page(HTMLParser):
    """Every tag with its attributes, and the text of the key figures table."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.cells: list[str] = []
        self._in_cell = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_cell = tag in ("th", "td")

    def handle_endtag(self, tag):
        self._in_cell = False

    def handle_data(self, data):
        if self._in_cell:
            self.cells.append(data)


def parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    page.close()
    return page


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "demo.db"
    demo.write(path, conversations=120, seed=0)
    return path


@pytest.fixture(scope="module")
def demo_report(demo_db, tmp_path_factory):
    out = tmp_path_factory.mktemp("report-out") / "report.html"
    result = CliRunner().invoke(cli, ["report", "--db", str(demo_db), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output == f"Wrote {out}\n"
    return out.read_text(encoding="utf-8")


def test_report_contains_every_chart_as_an_embedded_png(demo_report):
    page = parse(demo_report)
    figures = [a["data-chart"] for tag, a in page.tags if tag == "figure"]
    assert sorted(figures) == sorted([*charts.CHARTS, *charts.CONTENT_CHARTS])
    images = [a for tag, a in page.tags if tag == "img"]
    assert len(images) == len(charts.CHARTS) + len(charts.CONTENT_CHARTS)
    for img in images:
        assert img["src"].startswith("data:image/png;base64,")
        assert base64.b64decode(img["src"].split(",", 1)[1]).startswith(PNG)
        assert len(img["alt"]) > 10  # the chart's title


URL_ATTRIBUTES = ("src", "href", "poster", "srcset", "action", "formaction", "data", "cite")
LOADING_TAGS = ("script", "link", "iframe", "object", "embed", "video", "audio", "source", "base")


def test_report_has_no_external_reference(demo_report):
    page = parse(demo_report)
    for tag, attrs in page.tags:
        assert tag not in LOADING_TAGS, tag
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            if name in URL_ATTRIBUTES:
                assert value.startswith("data:") or value.startswith("#"), (tag, value[:60])
            if name == "style":
                assert not re.search(r"url\(|@import|expression\(", value, re.I), value
    # The markup names nothing outside the file. Text is left out: an embedded call may quote a
    # URL in what was said or in a post-call request, escaped, which no browser fetches.
    markup = re.sub(r">[^<]*<", "><", demo_report)
    markup = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", markup)
    assert not re.search(r"https?:|//[a-z0-9]|url\(|@import", markup, re.I)
    styles = re.findall(r"<style>(.*?)</style>", demo_report, re.S)
    assert len(styles) == 2  # the report's, and the pages' (once for every page)
    assert not any(re.search(r"https?:|//[a-z0-9]|url\(|@import", s, re.I) for s in styles)


def test_report_key_figures_period_database_and_time(demo_db, demo_report):
    ds = ta.load(demo_db)
    page = parse(demo_report)
    cells = page.cells
    assert cells[cells.index("Conversations") + 1] == f"{len(ds.conversations):,}"
    first_table = demo_report.index('<table class="figures">')
    assert first_table < demo_report.index("<figure")  # figures at the top
    assert str(demo_db.resolve()) in demo_report
    assert "Selection: everything stored." in demo_report
    when = ds.conversations["joined_at"].fillna(ds.conversations["first_seen"])
    assert f"{when.min():%Y-%m-%d %H:%M} UTC to {when.max():%Y-%m-%d %H:%M} UTC" in demo_report
    assert re.search(r"Generated \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", demo_report)


def test_report_of_a_selection(demo_db, tmp_path):
    ds = ta.load(demo_db)
    replica = ds.conversations["replica_id"].value_counts().index[0]
    n = int((ds.conversations["replica_id"] == replica).sum())
    out = tmp_path / "r.html"
    args = ["report", "--db", str(demo_db), "--out", str(out), "--replica", replica]
    args += ["--since", "2020-01-01"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert f"Selection: from 2020-01-01 00:00 UTC; replica {replica}." in text
    cells = parse(text).cells
    assert cells[cells.index("Conversations") + 1] == f"{n:,}"


def test_report_of_an_empty_database_shows_every_chart_empty(tmp_path):
    db = tmp_path / "empty.db"
    store = Store(db)
    store.connection()
    store.close()
    html = report.build(ta.load(db), generated_at=datetime(2025, 7, 1, tzinfo=UTC))
    page = parse(html)
    assert len([t for t, _ in page.tags if t == "img"]) == len(charts.CHARTS)
    assert "No transcript in this selection: there is nothing to analyse." in html
    assert "Conversations found: no conversations." in html
    assert "Generated 2025-07-01 00:00:00 UTC" in html
    cells = page.cells
    assert cells[cells.index("Conversations") + 1] == "0"
    assert cells[cells.index("Completion rate") + 1] == "- of ended calls"


def test_every_chart_is_in_one_report_section():
    names = [n for _, _, group in report.SECTIONS for n in group]
    assert sorted(names) == sorted(charts.CHARTS)
    assert list(report.CONTENT_SECTION[2]) == list(charts.CONTENT_CHARTS)


def test_what_callers_say_has_its_figures_and_its_charts(demo_db, demo_report):
    ds = ta.load(demo_db)
    section = demo_report.split('<section id="what-callers-say">', 1)[1].split("</section>")[0]
    cells = parse(section).cells
    for label in ("Languages", "Sentiment", "Largest topics", "Most asked"):
        assert label in cells, label
    top = ds.language_breakdown().iloc[0]
    assert cells[cells.index("Languages") + 1].startswith(f"{top.language} {top.share:.0%}")
    scored = int(ds.sentiment()["label"].notna().sum())
    assert f"of {scored:,} calls scored (English)" in cells[cells.index("Sentiment") + 1]
    asked = ds.questions().groups["example"].iloc[0]
    assert cells[cells.index("Most asked") + 1].startswith(asked)
    assert section.count("<img") == len(charts.CONTENT_CHARTS)


def test_without_the_extra_or_on_request_the_section_says_so(demo_db, tmp_path, monkeypatch):
    ds = ta.load(demo_db)
    assert 'id="what-callers-say"' not in report.build(ds, content=False)
    out = tmp_path / "r.html"
    result = CliRunner().invoke(
        cli, ["report", "--db", str(demo_db), "--out", str(out), "--no-content"]
    )
    assert result.exit_code == 0, result.output
    assert "What callers say" not in out.read_text(encoding="utf-8")
    for name in [m for m in sys.modules if m.split(".")[0] == "vaderSentiment"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "vaderSentiment", None)
    monkeypatch.setattr(content, "_vader", functools.cache(content._vader.__wrapped__))
    monkeypatch.setattr(content_cache, "get", lambda *a, **k: None)
    text = report.build(ta.load(demo_db))
    section = text.split('<section id="what-callers-say">', 1)[1].split("</section>")[0]
    assert (
        "Content analysis is not installed: sentiment analysis needs the optional package "
        "vaderSentiment: pip install &#x27;tavus-analytics[nlp]&#x27;." in section
    )
    assert "<img" not in section and text.count("<img") == len(charts.CHARTS)


def test_report_errors_are_one_line(tmp_path, demo_db):
    runner = CliRunner()
    missing = tmp_path / "missing.db"
    r = runner.invoke(cli, ["report", "--db", str(missing), "--out", str(tmp_path / "r.html")])
    assert r.exit_code == 1
    assert r.output.startswith(f"Error: no database at {missing}")
    out = tmp_path / "no" / "such" / "r.html"
    r = runner.invoke(cli, ["report", "--db", str(demo_db), "--out", str(out)])
    assert r.exit_code == 1
    assert r.output == (f"Error: cannot write {out}: the folder {out.parent} does not exist\n")
    assert not out.parent.exists()


def test_charts_command_writes_every_chart(demo_db, tmp_path):
    out = tmp_path / "charts"
    r = CliRunner().invoke(cli, ["charts", "--db", str(demo_db), "--out", str(out)])
    assert r.exit_code == 0, r.output
    every = [*charts.CHARTS, *charts.CONTENT_CHARTS]
    assert r.output == f"Wrote {len(every)} charts to {out}\n"
    files = sorted(p.name for p in out.iterdir())
    assert files == sorted(f"{name}.png" for name in every)
    for p in out.iterdir():
        assert p.read_bytes().startswith(PNG)


def test_charts_command_refuses_a_file_as_folder(demo_db, tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(ta.TavusAnalyticsError, match="is a file"):
        report.write_charts(demo_db, f)


# -- calls to look at ----------------------------------------------------------------------------
def look_at_rows(text: str) -> list[tuple[str, str]]:
    """(reason, conversation id) of each call listed in "Calls to look at", in order."""
    section = text.split('<section id="calls-to-look-at">', 1)[1]
    table = section.split('<table class="look-at">', 1)[1].split("</table>", 1)[0]
    rows, reason = [], None
    for row in table.split("<tr>")[2:]:
        head = re.match(r'<th(?: rowspan="\d+")?>([^<]+)</th>', row)
        reason = head.group(1) if head else reason
        call = re.search(r'<a href="#call-\d+"><code>([^<]+)</code></a>', row)
        if call:
            rows.append((reason, call.group(1)))
    return rows


def test_report_lists_calls_to_look_at_each_with_its_page(demo_db, demo_report):
    ds = ta.load(demo_db)
    expected = ds.calls_to_look_at(5)
    assert look_at_rows(demo_report) == list(
        zip(expected["reason"], expected["conversation_id"], strict=True)
    )
    assert set(expected["reason"]) == {
        "failed",
        "shortest",
        "guardrail triggered",
        "missed objectives",
        "slowest answers",
    }
    assert (expected.groupby("reason").size() == 5).all()
    section = demo_report.split('<section id="calls-to-look-at">', 1)[1]
    pages = re.findall(
        r'<details class="call" id="(call-\d+)"><summary><code>([^<]+)</code> ([^<]+)</summary>'
        r'<div class="tac"><h2>Conversation <code>([^<]+)</code>',
        section,
    )
    ids = list(dict.fromkeys(expected["conversation_id"]))
    assert [cid for _, cid, _, _ in pages] == ids  # each call once, in the order listed
    assert all(cid == inner for _, cid, _, inner in pages)
    links = set(re.findall(r'<a href="#(call-\d+)">', section))
    assert links == {anchor for anchor, _, _, _ in pages}
    first = expected.iloc[0]
    assert pages[0][2].startswith(f"failed · replica {first['replica_id']} · ")
    assert "<video" not in section and 'class="tac-turn' in section
    assert '<a href="#calls-to-look-at">Calls to look at</a>' in demo_report  # in the nav


def test_look_at_n_bounds_the_pages(demo_db):
    ds = ta.load(demo_db)
    text = report.build(ds, look_at=1, generated_at=datetime(2025, 7, 1, tzinfo=UTC))
    rows = look_at_rows(text)
    assert [r for r, _ in rows] == [
        "failed",
        "shortest",
        "guardrail triggered",
        "missed objectives",
        "slowest answers",
    ]
    assert text.count('<details class="call"') == len({cid for _, cid in rows})
    none = report.build(ds, look_at=0)
    assert '<details class="call"' not in none and "Left out (--look-at 0)." in none


def test_report_with_criteria_charts_the_success_rate_and_lists_failures(demo_db, tmp_path):
    criteria = tmp_path / "criteria.toml"
    criteria.write_text(
        'name = "support calls"\n[[rule]]\noutcome = "completed"\n[[rule]]\nmin_user_turns = 3\n'
    )
    out = tmp_path / "r.html"
    args = ["report", "--db", str(demo_db), "--out", str(out), "--criteria", str(criteria)]
    r = CliRunner().invoke(cli, [*args, "--look-at", "3"])
    assert r.exit_code == 0, r.output
    text = out.read_text(encoding="utf-8")
    page = parse(text)
    charted = [a["data-chart"] for tag, a in page.tags if tag == "figure"]
    assert charted.count("success_rate") == 2
    assert len(charted) == len(charts.CHARTS) + 2 + len(charts.CONTENT_CHARTS)
    ds = ta.load(demo_db)
    judged = ds.evaluate(criteria)
    rate = (judged["result"] == "success").sum() / (judged["result"] != "unknown").sum()
    assert (
        f"Success criteria <code>support calls: 2 rules, all must pass</code>: {rate:.1%}" in text
    )
    expected = ds.calls_to_look_at(3, criteria=criteria)
    failed = expected[expected["reason"] == "criteria failed"]
    assert len(failed) == 3
    assert [c for r, c in look_at_rows(text) if r == "criteria failed"] == list(
        failed["conversation_id"]
    )


def test_a_bad_criteria_file_stops_the_report_before_any_work(demo_db, tmp_path):
    criteria = tmp_path / "criteria.toml"
    criteria.write_text("[[rule]]\noutcome = completed\n")
    out = tmp_path / "r.html"
    args = ["report", "--db", str(demo_db), "--out", str(out), "--criteria", str(criteria)]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 1 and not out.exists()
    assert r.output.startswith(f"Error: {criteria}, line 2: not valid TOML (invalid value)")
    assert r.output.count("\n") == 1
