"""``GET /dashboard``: the report's figures and charts, live, behind the token, without content.

The access tests are the status page's (wrong, empty, partial tokens), plus the session cookie;
the content tests look for what callers said in every answer; the cache tests use a fake clock
and count computations (no wall-clock asserts).
"""

from __future__ import annotations

import re
import sys
import threading
import types
from html.parser import HTMLParser

import pytest
from conftest import SECRET
from receivers import loopback_only

import tavus_analytics as ta
from tavus_analytics import Settings, create_app, demo
from tavus_analytics.dashboard import COOKIE, Dashboard, View, session_value, valid_session
from tavus_analytics.dataset import Dataset

ROUTES = ["/dashboard", "/dashboard/data.json", "/dashboard/conversations/c1"]


@pytest.fixture(autouse=True)
def _network():
    """Name lookups and connections stay on this machine."""
    with loopback_only():
        yield


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("dash") / "tavus.db"
    demo.write(db, conversations=60, seed=2)
    return db


@pytest.fixture(scope="module")
def said(demo_db):
    """Things callers and replicas said, and perception saw, in the demo database."""
    ds = ta.load(demo_db)
    turns = ds.turns[ds.turns["role"].isin(["user", "assistant"])]
    phrases = [c for c in turns["content"].dropna() if len(c) > 25][:40]
    seen = [a[:60] for a in ds.perception["analysis"].dropna()][:5]
    assert phrases and seen
    return phrases + seen


@pytest.fixture(scope="module")
def app(demo_db):
    settings = Settings(db=str(demo_db), secret=SECRET, dashboard_cache=3600)
    return create_app(settings)


@pytest.fixture
def client(app):
    return app.test_client()


def signed_in(client):
    r = client.get(f"/dashboard?token={SECRET}")
    assert r.status_code == 303
    return client


# -- access -------------------------------------------------------------------------------------
BAD = [
    ("", {}, None),
    ("?token=wrong", {}, None),
    ("?token=", {}, None),
    ("?token=" + SECRET[:-1], {}, None),
    ("?token=" + SECRET + "x", {}, None),
    ("", {"X-Webhook-Token": "wrong"}, None),
    ("", {}, "forged"),
    ("", {}, "expired"),
    ("", {}, "other-secret"),
]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(("query", "headers", "cookie"), BAD)
def test_without_the_token_every_route_is_401_and_shows_nothing(
    app, route, query, headers, cookie, said
):
    import hashlib
    import time

    client = app.test_client()
    digest = hashlib.sha256(SECRET.encode()).digest()
    if cookie == "forged":
        client.set_cookie(COOKIE, "9999999999.0123456789abcdef", path="/dashboard")
    elif cookie == "expired":
        client.set_cookie(COOKIE, session_value(digest, int(time.time()) - 1), path="/dashboard")
    elif cookie == "other-secret":
        other = hashlib.sha256(b"another token").digest()
        client.set_cookie(COOKIE, session_value(other, int(time.time()) + 600), path="/dashboard")
    r = client.get(route + query, headers=headers)
    assert r.status_code == 401
    body = r.get_data(as_text=True)
    assert "Set-Cookie" not in r.headers
    assert SECRET not in body
    for shown in ("Key figures", "<th>Conversations", "data:image", "rd5c6e4337", '"figures"'):
        assert shown not in body, shown
    assert not any(p in body for p in said)
    if route.endswith(".json"):
        assert r.json == {
            "ok": False,
            "status": 401,
            "error": "missing or wrong token: pass ?token=SECRET or X-Webhook-Token",
        }
    else:
        assert "?token=SECRET" in body  # what to do, as the status page says


def test_the_token_once_in_the_url_becomes_an_httponly_samesite_cookie(client):
    r = client.get(f"/dashboard?period=all&token={SECRET}&replica=rd5c6e4337")
    assert r.status_code == 303
    assert r.headers["Location"] == "/dashboard?period=all&replica=rd5c6e4337"  # token gone
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    for attribute in ("HttpOnly", "SameSite=Strict", "Path=/dashboard", "Max-Age=43200"):
        assert attribute in cookie
    assert "Secure" not in cookie  # plain HTTP on loopback: a Secure cookie would not come back
    assert SECRET not in cookie
    page = client.get(r.headers["Location"])
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "Key figures" in body and "replica rd5c6e4337" in body
    assert SECRET not in body


def test_the_cookie_is_secure_behind_an_https_proxy(client):
    r = client.get(f"/dashboard?token={SECRET}", headers={"X-Forwarded-Proto": "https"})
    assert "Secure" in r.headers["Set-Cookie"]


def test_machines_use_the_header_or_the_token_directly(client, demo_db):
    by_header = client.get("/dashboard/data.json?period=all", headers={"X-Webhook-Token": SECRET})
    direct = client.get(f"/dashboard/data.json?period=all&token={SECRET}")
    assert by_header.status_code == direct.status_code == 200
    assert by_header.json == direct.json
    assert direct.json["figures"]["conversations"] == len(ta.load(demo_db).conversations) == 60
    assert SECRET not in direct.get_data(as_text=True)


def test_the_session_value_is_checked_in_constant_shape():
    digest = b"d" * 32
    value = session_value(digest, 2_000_000_000)
    assert valid_session(value, digest, now=1_999_999_999)
    assert not valid_session(value, digest, now=2_000_000_000)  # expired
    assert not valid_session(value.replace(".", ".0", 1), digest, now=0)
    assert not valid_session("2000000000", digest, now=0)
    assert not valid_session(None, digest, now=0)


# -- what the page shows --------------------------------------------------------------------------
class _Resources(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "action", "srcset", "poster", "data") and value:
                self.urls.append(value)


def test_the_page_has_the_reports_figures_and_charts_and_nothing_external(client, said):
    signed_in(client)
    r = client.get("/dashboard?period=all")
    body = r.get_data(as_text=True)
    assert r.headers["Content-Security-Policy"].startswith("default-src 'none'; img-src data:")
    assert r.headers["Cache-Control"] == "no-store"
    for label in ("Conversations", "Completion rate", "Outcomes", "Duration", "Last callback"):
        assert f"<th>{label}</th>" in body
    charts = re.findall(r'data-chart="([a-z_]+)"', body)
    assert {"volume", "shutdown_reasons", "durations", "funnel", "answer_delays"} <= set(charts)
    assert "guardrail_triggers" in charts and "objective_completion" in charts
    assert "perception_terms" not in charts  # what perception saw: only with the flag
    parsed = _Resources()
    parsed.feed(body)
    assert "script" not in parsed.tags and "link" not in parsed.tags
    assert all(u.startswith(("data:image/png;base64,", "#", "/dashboard")) for u in parsed.urls)
    assert "@import" not in body and "url(" not in body and "@font-face" not in body
    assert not any(p in body for p in said)
    assert "Latest conversations" in body


def test_an_empty_period_points_at_the_latest_conversations_stored(client):
    """The demo ends before the last 7 days: the default page says when the latest call
    started and links to the week up to it, which shows it."""
    signed_in(client)
    body = client.get("/dashboard").get_data(as_text=True)
    found = re.search(
        r"The latest one stored started (\d{4}-\d\d-\d\d \d\d:\d\d) UTC: show "
        r'<a href="(/dashboard\?[^"]+)">the 7 days up to it</a> or '
        r'<a href="/dashboard\?period=all">everything stored</a>',
        body,
    )
    assert found, body[-2000:]
    latest, link = found.group(1), found.group(2).replace("&amp;", "&")
    week = client.get(link).get_data(as_text=True)
    assert "No conversation in this selection" not in week
    started = re.findall(r"<td>(\d{4}-\d\d-\d\d \d\d:\d\d)", week)
    assert latest in started  # the latest call is in that week's list


def test_the_data_has_the_selection_and_no_content(client, said):
    signed_in(client)
    r = client.get("/dashboard/data.json?since=2026-10-01&until=2026-10-15&replica=rd5c6e4337")
    data = r.json
    assert data["selection"] == {
        "period": None,
        "since": "2026-10-01T00:00:00Z",
        "until": "2026-10-15T00:00:00Z",
        "replica": "rd5c6e4337",
    }
    expected = ta.load(client.application.config["TAVUS_SETTINGS"].db).filter(
        since="2026-10-01", until="2026-10-15", replicas=["rd5c6e4337"]
    )
    assert data["figures"]["conversations"] == len(expected.conversations) > 0
    assert "rd5c6e4337" in data["replicas"]
    assert not any(p in r.get_data(as_text=True) for p in said)


def test_a_bad_selection_is_400_saying_why(client):
    signed_in(client)
    r = client.get("/dashboard/data.json?period=fortnight")
    assert r.status_code == 400
    assert r.json["error"] == "unknown period 'fortnight': use one of 24h, 7d, 30d, 90d, all"
    r = client.get("/dashboard?since=2026-10-15&until=2026-10-01")
    assert r.status_code == 400 and "since must be before until" in r.get_data(as_text=True)


def test_content_shows_only_with_the_flag(demo_db, said):
    settings = Settings(db=str(demo_db), secret=SECRET, dashboard_transcripts=True)
    client = create_app(settings).test_client()
    body = client.get(f"/dashboard/data.json?period=all&token={SECRET}").get_data(as_text=True)
    assert not any(p in body for p in said)  # the data never holds what was said
    signed_in(client)
    page = client.get("/dashboard?period=all").get_data(as_text=True)
    assert 'data-chart="perception_terms"' in page
    assert "What was said or seen may be shown" in page


def test_what_senders_wrote_is_escaped(tmp_path):
    db = tmp_path / "evil.db"
    app = create_app(Settings(db=str(db), secret=SECRET))
    client = app.test_client()
    evil = "<script>alert(1)</script>"
    for body in (
        {"conversation_id": evil, "event_type": "system.replica_joined",
         "timestamp": "2026-12-01T10:00:00Z", "properties": {"replica_id": evil}},
        {"conversation_id": evil, "event_type": "system.shutdown",
         "timestamp": "2026-12-01T10:05:00Z",
         "properties": {"replica_id": evil, "shutdown_reason": evil}},
    ):  # fmt: skip
        assert client.post(f"/webhook?token={SECRET}", json=body).status_code == 200
    signed_in(client)
    page = client.get("/dashboard?period=all").get_data(as_text=True)
    assert evil not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_no_auth_opens_the_dashboard_and_says_so_even_with_nothing_stored(tmp_path):
    app = create_app(Settings(db=str(tmp_path / "open.db"), no_auth=True))
    client = app.test_client()
    assert client.get("/healthz").status_code == 200  # the collector has made its database
    page = client.get("/dashboard")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "Token checking is off" in body
    assert "No conversation in this selection" in body


def test_a_database_that_cannot_be_read_is_503(tmp_path):
    db = tmp_path / "gone.db"
    client = create_app(Settings(db=str(db), secret=SECRET)).test_client()
    db.unlink(missing_ok=True)  # the app made it; take it away under the collector's feet
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"gone.db{suffix}").unlink(missing_ok=True)
    r = client.get("/dashboard/data.json", headers={"X-Webhook-Token": SECRET})
    assert r.status_code == 503
    assert r.json["error"] == "The database cannot be read right now: try again in a moment."


# -- the one-call page, where this version has one ------------------------------------------------
def test_without_one_call_pages_there_are_no_links(client):
    if callable(getattr(Dataset, "conversation", None)):
        pytest.skip("this version has one-call pages")
    signed_in(client)
    assert "/dashboard/conversations/" not in client.get("/dashboard?period=all").get_data(
        as_text=True
    )
    r = client.get("/dashboard/conversations/c1")
    assert r.status_code == 404 and "no one-call page" in r.get_data(as_text=True)


@pytest.fixture
def call_pages(monkeypatch):
    """A stand-in one-call page: ``Dataset.conversation`` and ``conversation.render_html``
    with the signatures of the real ones, recording the ``redact`` they were given."""
    given = {}

    def conversation(self, conversation_id, *, labels=None, redact=None):
        given["redact"] = redact
        return types.SimpleNamespace(conversation_id=conversation_id, redact=redact)

    def render_html(page, *, redact=None, standalone=False, style=True, video=True):
        given["video"] = video
        text = "what the caller said"
        return f"<div class='tac'>{page.conversation_id}: {redact(text) if redact else text}</div>"

    module = types.ModuleType("tavus_analytics.conversation")
    module.render_html = render_html
    monkeypatch.setattr(Dataset, "conversation", conversation, raising=False)
    monkeypatch.setitem(sys.modules, "tavus_analytics.conversation", module)
    return given


def test_calls_link_to_their_page_which_hides_content_by_default(call_pages, demo_db):
    client = create_app(Settings(db=str(demo_db), secret=SECRET)).test_client()
    signed_in(client)
    page = client.get("/dashboard?period=all").get_data(as_text=True)
    links = re.findall(r'href="/dashboard/conversations/([^"]+)"', page)
    assert len(links) == 15
    r = client.get(f"/dashboard/conversations/{links[0]}")
    body = r.get_data(as_text=True)
    assert r.status_code == 200 and f"{links[0]}: [hidden]" in body
    assert "what the caller said" not in body and call_pages["video"] is False
    client = create_app(
        Settings(db=str(demo_db), secret=SECRET, dashboard_transcripts=True)
    ).test_client()
    signed_in(client)
    body = client.get(f"/dashboard/conversations/{links[0]}").get_data(as_text=True)
    assert "what the caller said" in body and call_pages["redact"] is None


# -- caching --------------------------------------------------------------------------------------
class _Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def cheap_board(clock, cache_s=30):
    """A dashboard whose computation is a counter (the cache is what is tested here)."""
    board = Dashboard("unused.db", cache_s=cache_s, clock=clock)
    from tavus_analytics.dashboard import Result

    def compute(view):
        return Result(f"page {board.computations + 1}", {}, None)

    board._compute = compute
    return board


def test_a_page_is_kept_then_refreshed_in_the_background_then_computed_again():
    clock = _Clock()
    board = cheap_board(clock)
    view = View("all")
    assert board.result(view).html == "page 1"
    clock.t += 29
    assert board.result(view).html == "page 1" and board.computations == 1
    clock.t += 2  # stale: answered at once, replaced in the background
    assert board.result(view).html == "page 1"
    board.wait(10)
    assert board.computations == 2 and board.result(view).html == "page 2"
    clock.t += 301  # long stale: computed before answering
    assert board.result(view).html == "page 3"
    assert board.result(View("7d")).html == "page 4"  # another selection, another page
    assert cheap_board(clock, cache_s=0).result(view) is not None


def test_a_refresh_storm_costs_one_computation():
    board = Dashboard("unused.db", cache_s=30)
    storm = 8
    first_looks = threading.Semaphore(0)
    original_entry = board._entry

    def entry(view):
        found = original_entry(view)
        first_looks.release()
        return found

    def compute(view):
        # Hold the computation until every request has looked in the cache and found nothing:
        # without one computation at a time, each of them would compute too.
        for _ in range(storm):
            assert first_looks.acquire(timeout=10)
        from tavus_analytics.dashboard import Result

        return Result("page", {}, None)

    board._entry = entry
    board._compute = compute
    pages = []
    threads = [
        threading.Thread(target=lambda: pages.append(board.result(View("all"))))
        for _ in range(storm)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(pages) == storm and board.computations == 1
