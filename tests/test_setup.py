"""`tavus-analytics setup` against a local HTTP server that answers like Tavus's API."""

from __future__ import annotations

import json

import pytest
from conftest import run, serving
from fake_tavus import API_KEY, FakeTavus, guardrail, objective

from tavus_analytics import callback_urls
from tavus_analytics.importer import TavusClient

SECRET = "COLLECTOR-SECRET-123"
COLLECTOR = f"https://collector.example.ngrok.app/webhook?token={SECRET}"
SHOWN = "https://collector.example.ngrok.app/webhook?token=***"
#: Every secret the account's URLs hold: none may be printed.
SECRETS = [SECRET, "OLD-SECRET-456", "STALE-SECRET-789", "SIG-SECRET-000", API_KEY]
LOST = (
    "Warning: objective completions and guardrail triggers are sent once and cannot be fetched "
    "from Tavus later: whatever the collector misses while it is stopped or unreachable is lost."
)


def account() -> tuple[list[dict], list[dict]]:
    objectives = [
        objective("o1", "qualify_lead", COLLECTOR),
        objective("o2", "book_demo", "https://old.example.com/hook?token=OLD-SECRET-456"),
        objective("o3", "collect_email", None),  # no callback_url member at all
        objective(
            "o4",
            "confirm_budget",
            "https://collector.example.ngrok.app/webhook?token=STALE-SECRET-789",
        ),
    ]
    guardrails = [
        {**guardrail("g1a2b3c4d5e6f", "no_medical_advice", None), "callback_url": None},
        guardrail("g2", "no_competitors", COLLECTOR),
        guardrail("g3", "no_pricing", "https://hooks.example.com/in?sig=SIG-SECRET-000&token=x"),
    ]
    return objectives, guardrails


@pytest.fixture
def api():
    objectives, guardrails = account()
    with serving(FakeTavus([], objectives=objectives, guardrails=guardrails)) as server:
        yield server


def setup(api, *more, key=API_KEY):
    """``tavus-analytics setup`` against the fake, the key from the environment."""
    args = ["setup", "--base-url", api.base_url, "--rate", "0", "--backoff", "0", *more]
    return run(*args, env={"TAVUS_API_KEY": key})


def assert_nothing_secret(output: str) -> None:
    for secret in SECRETS:
        assert secret not in output


def test_objectives_are_paged_from_1_and_guardrails_from_0(api):
    more = [objective(f"o{i}", f"objective_{i}", None) for i in range(5, 8)]
    api.objectives.extend(more)  # 7 objectives
    with TavusClient(API_KEY, base_url=api.base_url, rate=0, page_size=3) as client:
        objectives = list(client.list_objectives())
        guardrails = list(client.list_guardrails(limit=2))
    assert [o["objectives_id"] for o in objectives] == ["o1", "o2", "o3", "o4", "o5", "o6", "o7"]
    assert [g["uuid"] for g in guardrails] == ["g1a2b3c4d5e6f", "g2", "g3"]
    asked = [(path, query) for path, query, _ in api.seen]
    assert asked == [
        ("/v2/objectives", {"limit": "3", "page": "1"}),
        ("/v2/objectives", {"limit": "3", "page": "2"}),
        ("/v2/objectives", {"limit": "3", "page": "3"}),
        ("/v2/guardrails", {"legacy": "false", "limit": "2", "page": "0"}),
        ("/v2/guardrails", {"legacy": "false", "limit": "2", "page": "1"}),
    ]


def test_the_dry_run_says_what_it_would_change_and_changes_nothing(api):
    before = json.loads(json.dumps([api.objectives, api.guardrails]))
    r = setup(api, "--callback-url", COLLECTOR)
    assert r.exit_code == 0, r.output
    assert r.output.splitlines() == [
        f"Tavus account: 4 objectives, 3 guardrails; collector: {SHOWN}",
        "  objective  qualify_lead       o1             points at the collector",
        "  objective  book_demo          o2             would change: "
        f"https://old.example.com/hook?token=*** -> {SHOWN}",
        f"  objective  collect_email      o3             would change: no callback_url -> {SHOWN}",
        f"  objective  confirm_budget     o4             would change: {SHOWN} -> {SHOWN} "
        "(another token)",
        f"  guardrail  no_medical_advice  g1a2b3c4d5e6f  would change: no callback_url -> {SHOWN}",
        "  guardrail  no_competitors     g2             points at the collector",
        "  guardrail  no_pricing         g3             would change: "
        f"https://hooks.example.com/in?... -> {SHOWN}",
        "Dry run: 5 of 7 would change; nothing was sent to Tavus. Run again with --apply to "
        "change them.",
        LOST,
    ]
    assert api.patches == []
    assert [api.objectives, api.guardrails] == before
    assert_nothing_secret(r.output)


def test_apply_sends_exactly_these_json_patches_and_leaves_the_rest_alone(api):
    r = setup(api, "--callback-url", COLLECTOR, "--apply")
    assert r.exit_code == 0, r.output
    replace = [{"op": "replace", "path": "/callback_url", "value": COLLECTOR}]
    add = [{"op": "add", "path": "/callback_url", "value": COLLECTOR}]
    assert api.patches == [
        ("/v2/objectives/o2", replace, "application/json", API_KEY),
        ("/v2/objectives/o3", add, "application/json", API_KEY),
        ("/v2/objectives/o4", replace, "application/json", API_KEY),
        ("/v2/guardrails/g1a2b3c4d5e6f", replace, "application/json", API_KEY),
        ("/v2/guardrails/g3", replace, "application/json", API_KEY),
    ]
    lines = r.output.splitlines()
    assert lines[2] == (
        "  objective  book_demo          o2             changed: "
        f"https://old.example.com/hook?token=*** -> {SHOWN}"
    )
    assert lines[1].endswith("o1             points at the collector")
    assert lines[-2:] == ["Changed 5 of 7, confirmed by listing them again.", LOST]
    assert {item["callback_url"] for item in api.objectives + api.guardrails} == {COLLECTOR}
    assert api.objectives[2]["objective_prompt"] == "Find out collect_email."  # only the URL
    assert_nothing_secret(r.output)
    # The listings were read again to confirm: once before the changes, once after.
    assert [path for path, _, _ in api.seen].count("/v2/objectives") == 2

    again = setup(api, "--callback-url", COLLECTOR, "--apply")
    assert again.exit_code == 0, again.output
    assert again.output.splitlines()[-2:] == [
        "All 7 point at the collector: nothing to change.",
        LOST,
    ]
    assert len(api.patches) == 5


def test_json_for_machines(api):
    r = setup(api, "--callback-url", COLLECTOR, "--json")
    assert r.exit_code == 0, r.output
    assert_nothing_secret(r.output)
    got = json.loads(r.output)
    assert (got["dry_run"], got["objectives"], got["guardrails"]) == (True, 4, 3)
    assert (got["to_change"], got["changed"], got["callback_url"]) == (5, 0, SHOWN)
    states = {item["id"]: (item["state"], item["outcome"]) for item in got["resources"]}
    assert states == {
        "o1": ("collector", None),
        "o2": ("elsewhere", "would change"),
        "o3": ("none", "would change"),
        "o4": ("other_token", "would change"),
        "g1a2b3c4d5e6f": ("none", "would change"),
        "g2": ("collector", None),
        "g3": ("elsewhere", "would change"),
    }
    o3 = next(item for item in got["resources"] if item["id"] == "o3")
    assert o3["change"] == {
        "from": None,
        "to": SHOWN,
        "patch": {"op": "add", "path": "/callback_url", "value": SHOWN},
    }
    assert got["warnings"] == [LOST.removeprefix("Warning: ").removesuffix(".")]
    assert api.patches == []


def test_without_a_callback_url_it_only_lists(api):
    r = setup(api)
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0] == "Tavus account: 4 objectives, 3 guardrails"
    assert (
        lines[2]
        == "  objective  book_demo          o2             https://old.example.com/hook?token=***"
    )
    assert lines[3].endswith("o3             no callback_url")
    assert lines[-2].startswith("Listed only: pass --callback-url URL")
    assert api.patches == []
    assert_nothing_secret(r.output)


def test_apply_needs_a_callback_url_and_a_url_must_be_one(api):
    r = setup(api, "--apply")
    assert r.exit_code == 2
    assert r.output.splitlines()[-1] == (
        "Error: --apply needs --callback-url URL: the collector's public callback URL with its "
        "token, as tavus-analytics serve prints it (see 'cli setup --help')"
    )
    bad = setup(api, "--callback-url", "collector.example.ngrok.app/webhook?token=" + SECRET)
    assert bad.exit_code == 2
    assert "is not an http(s) URL: pass the collector's public callback URL" in bad.output
    assert_nothing_secret(bad.output)
    assert api.seen == [] and api.patches == []


def test_a_url_tavus_cannot_use_is_warned_about(api):
    r = setup(api, "--callback-url", "http://127.0.0.1:5000/webhook")
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[-3:] == [
        "Warning: the callback URL has no token=: the collector refuses callbacks without its "
        "token (tavus-analytics serve prints the URL to use).",
        "Warning: Tavus cannot reach 127.0.0.1: expose the collector (ngrok http 5000) and pass "
        "its public URL.",
        LOST,
    ]


def test_a_wrong_key_is_one_clear_line(api):
    wrong = "tvs-WRONG-key-0000"
    r = setup(api, "--callback-url", COLLECTOR, "--apply", key=wrong)
    assert r.exit_code == 1
    assert r.output == (
        "Error: Tavus API refused the API key (401 Invalid access token): check --api-key or "
        "TAVUS_API_KEY\n"
    )
    assert wrong not in r.output
    assert api.patches == []


def test_a_key_refused_while_patching_stops_at_once(api):
    api.faults["/v2/objectives/o3"] = [(401, {}, {"message": "Invalid access token"})]
    r = setup(api, "--callback-url", COLLECTOR, "--apply")
    assert r.exit_code == 1
    lines = r.output.splitlines()
    assert lines[2].endswith(
        f"o2             changed: https://old.example.com/hook?token=*** -> {SHOWN}"
    )
    assert lines[3].endswith(f"o3             would change: no callback_url -> {SHOWN}")
    assert lines[-3:] == [
        "Stopped after changing 1 of 7 (not confirmed): run it again to finish.",
        LOST,
        "Error: Tavus API refused the API key (401 Invalid access token): check --api-key or "
        "TAVUS_API_KEY",
    ]
    assert [path for path, *_ in api.patches] == ["/v2/objectives/o2", "/v2/objectives/o3"]


def test_a_refused_patch_is_reported_and_the_others_are_changed(api):
    api.faults["/v2/guardrails/g3"] = [(400, {}, {"error": "Invalid patch operation"})]
    api.faults["/v2/objectives/o2"] = [(503, {}, {"message": "busy"})]  # tried again
    r = setup(api, "--callback-url", COLLECTOR, "--apply")
    assert r.exit_code == 1
    lines = r.output.splitlines()
    assert lines[7] == (
        "  guardrail  no_pricing         g3             not changed: "
        f"https://hooks.example.com/in?... -> {SHOWN} (Tavus API answered 400 to PATCH "
        "/v2/guardrails/g3: Invalid patch operation)"
    )
    assert lines[-3:] == [
        "Changed 4 of 7, confirmed by listing them again; 1 not changed.",
        LOST,
        "Error: 1 callback_url not changed: guardrail no_pricing: Tavus API answered 400 to "
        "PATCH /v2/guardrails/g3: Invalid patch operation",
    ]
    assert [path for path, *_ in api.patches].count("/v2/objectives/o2") == 2
    assert api.objectives[1]["callback_url"] == COLLECTOR
    assert_nothing_secret(r.output)


def test_a_refusal_quoting_the_url_does_not_show_the_token(api):
    refusal = {"error": f"Invalid callback_url: {COLLECTOR} is not reachable"}
    api.faults["/v2/objectives/o2"] = [(400, {}, refusal)]
    api.faults["/v2/objectives/o3"] = [(500, {}, refusal)] * 6
    r = setup(api, "--callback-url", COLLECTOR, "--apply")
    assert r.exit_code == 1
    assert "o2             not changed: https://old.example.com/hook?token=*** -> " in r.output
    assert r.output.splitlines()[-1] == (
        "Error: Tavus API answered 500 to PATCH /v2/objectives/o3 6 times (Invalid callback_url: "
        "https://collector.example.ngrok.app/webhook?token=*** is not reachable): try again later"
    )
    assert_nothing_secret(r.output)


def test_a_change_tavus_does_not_show_is_unconfirmed(api):
    api.ignore_patches.add("o3")
    r = setup(api, "--callback-url", COLLECTOR, "--apply")
    assert r.exit_code == 1
    assert r.output.splitlines()[3] == (
        f"  objective  collect_email      o3             unconfirmed: no callback_url -> {SHOWN} "
        "(Tavus still lists no callback_url)"
    )
    assert r.output.splitlines()[-1] == (
        "Error: 1 callback_url not changed: objective collect_email: Tavus still lists no "
        "callback_url"
    )


def test_a_guardrail_whose_uuid_changed_is_found_again_by_its_name(api):
    api.new_ids["g3"] = "g3-new-uuid"
    r = setup(api, "--callback-url", COLLECTOR, "--apply")
    assert r.exit_code == 0, r.output
    assert "Changed 5 of 7, confirmed by listing them again." in r.output


def test_a_set_of_objectives_is_patched_where_its_members_are(api):
    api.objectives[:] = [
        {
            "objectives_id": "os1",
            "data": [
                {"objective_name": "greet", "callback_url": COLLECTOR},
                {"objective_name": "qualify", "callback_url": "https://old.example.com/x"},
                {"objective_name": "book"},
            ],
        }
    ]
    r = setup(api, "--callback-url", COLLECTOR, "--apply")
    assert r.exit_code == 0, r.output
    assert [p for p in api.patches if p[0].startswith("/v2/objectives/")] == [
        (
            "/v2/objectives/os1",
            [
                {"op": "replace", "path": "/data/1/callback_url", "value": COLLECTOR},
                {"op": "add", "path": "/data/2/callback_url", "value": COLLECTOR},
            ],
            "application/json",
            API_KEY,
        )
    ]
    assert "Tavus account: 3 objectives, 3 guardrails" in r.output
    assert [m["callback_url"] for m in api.objectives[0]["data"]] == [COLLECTOR] * 3


def test_what_may_be_shown_of_a_url():
    assert callback_urls.shown(COLLECTOR) == SHOWN
    assert callback_urls.shown("https://u:pw@h.example/p?token=a&secret=b") == (
        "https://u:***@h.example/p?token=***&secret=***"
    )
    assert callback_urls.shown("https://h.example/in?sig=abc&token=x") == "https://h.example/in?..."
    assert callback_urls.shown(None) is None
