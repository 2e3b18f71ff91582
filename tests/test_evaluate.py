"""Success criteria: every rule and every way of combining them on a hand-built set of calls
whose results were worked out by hand; criteria files that cannot be read; the chart."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from matplotlib.figure import Figure

import tavus_analytics as ta
from tavus_analytics import charts
from tavus_analytics import evaluate as ev
from tavus_analytics.cli import cli
from tavus_analytics.errors import InvalidCriteria
from tavus_analytics.store import Store

S, F, U = "success", "failure", "unknown"
CALLS = ["ok", "short", "failed", "live", "live_guard", "noshow", "odd"]


def at(day: int, seconds: float = 0) -> str:
    t = pd.Timestamp("2026-06-01T10:00:00Z") + pd.Timedelta(days=day, seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def cb(cid: str, event_type: str, ts: str, **props) -> dict:
    return {
        "conversation_id": cid,
        "event_type": event_type,
        "message_type": event_type.split(".")[0],
        "timestamp": ts,
        "properties": props,
    }


def msgs(*pairs: tuple[str, str]) -> list[dict]:
    return [{"role": "system", "content": "You are Ada."}] + [
        {"role": r, "content": c} for r, c in pairs
    ]


def bodies() -> list[dict]:
    """Seven calls, each built for what the rules must say about it (see the tables below).

    ok          r1, day 0 (week of 2026-06-01): 300 s, completed, 2 user turns, the objective
                with order_id, a post-call action that succeeded, no guardrail.
    short       r1, day 14 (two weeks later): 20 s, completed, 1 user turn saying "cancel",
                order_id NOTFOUND, a guardrail, a failed post-call action.
    failed      r2: no join, a startup exception: no transcript, no duration.
    live        r1, day 14: joined, no shutdown yet, nothing else.
    live_guard  r1, day 14: joined, no shutdown yet, a guardrail already triggered.
    noshow      r1, day 0: 300 s, participant absent: one assistant turn, no user turn.
    odd         r2, day 1: 100 s, a shutdown whose reason is not text (outcome unknown), the
                user says "CANCEL   my Subscription".
    """
    return [
        cb("ok", "system.replica_joined", at(0), replica_id="r1"),
        cb("ok", "system.shutdown", at(0, 300), shutdown_reason="participant_left_timeout"),
        cb(
            "ok",
            "application.transcription_ready",
            at(0, 301),
            transcript=msgs(
                ("assistant", "Hi!"),
                ("user", "hello"),
                ("assistant", "How can I help?"),
                ("user", "my order is late"),
            ),
        ),
        {
            "conversation_id": "ok",
            "objective_name": "identify_order",
            "output_variables": {"order_id": "42"},
        },
        cb(
            "ok",
            "application.post_call_action_executed",
            at(0, 400),
            tool_name="send_summary",
            status="success",
        ),
        cb("short", "system.replica_joined", at(14), replica_id="r1"),
        cb("short", "system.shutdown", at(14, 20), shutdown_reason="participant_left_timeout"),
        cb(
            "short",
            "application.transcription_ready",
            at(14, 21),
            transcript=msgs(("assistant", "Hi!"), ("user", "I want to cancel")),
        ),
        {
            "conversation_id": "short",
            "objective_name": "identify_order",
            "output_variables": {"order_id": "NOTFOUND"},
        },
        {"conversation_id": "short", "properties": {"guardrail": "no_refund_promises"}},
        cb(
            "short",
            "application.post_call_action_executed",
            at(14, 200),
            tool_name="send_summary",
            status="error",
        ),
        cb(
            "failed",
            "system.shutdown",
            at(2),
            replica_id="r2",
            shutdown_reason="exception_encountered_during_conversation_startup",
        ),
        cb("live", "system.replica_joined", at(14, 5), replica_id="r1"),
        cb("live_guard", "system.replica_joined", at(14, 6), replica_id="r1"),
        {"conversation_id": "live_guard", "properties": {"guardrail": "no_refund_promises"}},
        cb("noshow", "system.replica_joined", at(0, 7), replica_id="r1"),
        cb(
            "noshow",
            "system.shutdown",
            at(0, 307),
            shutdown_reason="participant_absent_timeout reached",
        ),
        cb(
            "noshow",
            "application.transcription_ready",
            at(0, 308),
            transcript=msgs(("assistant", "Hello? Are you there?")),
        ),
        cb("odd", "system.replica_joined", at(1), replica_id="r2"),
        cb("odd", "system.shutdown", at(1, 100), shutdown_reason=123),
        cb(
            "odd",
            "application.transcription_ready",
            at(1, 101),
            transcript=msgs(("user", "CANCEL   my Subscription"), ("assistant", "Okay.")),
        ),
    ]


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("evaluate") / "calls.db"
    items, last = [], at(0)
    for body in bodies():  # arriving when sent (objectives and guardrails send no time)
        last = body.get("timestamp", last)
        items.append((json.dumps(body).encode(), last))
    with Store(path) as store:
        store.insert_batch(items)
    return path


@pytest.fixture(scope="module")
def ds(db):
    return ta.load(db)


def results(frame: pd.DataFrame) -> dict[str, str]:
    return dict(zip(frame["conversation_id"], frame["result"].astype(str), strict=True))


# -- every rule on its own -----------------------------------------------------------------------
#: rule -> the result of each call in CALLS, worked out by hand from the docstring of bodies().
ONE_RULE = [
    ({"outcome": "completed"}, [S, S, F, U, U, F, U]),
    ({"outcome": ["completed", "no_show"]}, [S, S, F, U, U, S, U]),
    ({"shutdown_category": "participant_left"}, [S, S, F, U, U, F, U]),
    ({"min_user_turns": 2}, [S, F, U, U, U, F, F]),
    ({"min_user_turns": 0}, [S, S, U, U, U, S, S]),
    ({"min_duration_s": 60, "max_duration_s": 600}, [S, F, U, U, U, S, S]),
    ({"max_duration_s": 30}, [F, S, U, U, U, F, F]),
    ({"phrase_absent": "cancel", "role": "user"}, [S, F, U, U, U, S, F]),
    ({"phrase_absent": "cancel", "role": "assistant"}, [S, S, U, U, U, S, S]),
    ({"phrase_present": "cancel  MY subscription"}, [F, F, U, U, U, F, S]),
    ({"phrase_present": "are you there", "role": "assistant"}, [F, F, U, U, U, S, F]),
    ({"no_guardrail": True}, [S, F, S, U, F, S, S]),
    ({"no_guardrail": "another_guardrail"}, [S, S, S, U, U, S, S]),
    ({"objective_completed": "identify_order"}, [S, S, F, U, U, F, F]),
    ({"output_filled": "order_id", "objective": "identify_order"}, [S, F, F, U, U, F, F]),
    ({"output_filled": "order_id", "objective": "other"}, [F, F, F, U, U, F, F]),
    ({"post_call_action_succeeded": True}, [S, F, U, U, U, U, U]),
    ({"post_call_action_succeeded": "send_summary"}, [S, F, U, U, U, U, U]),
    ({"post_call_action_succeeded": "other_tool"}, [U, U, U, U, U, U, U]),
]


@pytest.mark.parametrize(("rule", "expected"), ONE_RULE, ids=[json.dumps(r) for r, _ in ONE_RULE])
def test_each_rule_gives_the_hand_computed_result_per_call(ds, rule, expected):
    out = ds.evaluate({"rule": [rule]})
    assert results(out) == dict(zip(CALLS, expected, strict=True))
    decided = out[out["result"] != U]
    assert (decided["score"] == (decided["result"] == S).astype(float)).all()
    assert out.loc[out["result"] == U, "score"].isna().all()


# -- combined ------------------------------------------------------------------------------------
def frame(out: pd.DataFrame) -> dict[str, tuple]:
    return {
        r.conversation_id: (
            r.result,
            r.rule,
            None if math.isnan(r.score) else round(r.score, 4),
            (r.passed, r.failed, r.unknown),
        )
        for r in out.itertuples(index=False)
    }


def test_all_fails_on_the_first_failed_rule_and_is_unknown_only_without_a_failure(ds):
    criteria = {
        "rule": [
            {"outcome": "completed"},
            {"min_user_turns": 2, "weight": 2},
            {"name": "never cancel", "phrase_absent": "cancel", "role": "user"},
        ]
    }
    assert frame(ds.evaluate(criteria)) == {
        "ok": (S, "all 3 rules", 1.0, (3, 0, 0)),
        "short": (F, "min_user_turns = 2", 0.25, (1, 2, 0)),  # 1 / (1 + 2 + 1)
        "failed": (F, "outcome = completed", 0.0, (0, 1, 2)),
        "live": (U, "outcome = completed", None, (0, 0, 3)),
        "live_guard": (U, "outcome = completed", None, (0, 0, 3)),
        "noshow": (F, "outcome = completed", 0.25, (1, 2, 0)),
        "odd": (F, "min_user_turns = 2", 0.0, (0, 2, 1)),
    }


def test_any_succeeds_on_the_first_rule_that_passes(ds):
    criteria = {
        "combine": "any",
        "rule": [{"outcome": "completed"}, {"phrase_present": "cancel my subscription"}],
    }
    phrase = 'phrase_present "cancel my subscription"'
    assert frame(ds.evaluate(criteria)) == {
        "ok": (S, "outcome = completed", 0.5, (1, 1, 0)),
        "short": (S, "outcome = completed", 0.5, (1, 1, 0)),
        "failed": (U, phrase, 0.0, (0, 1, 1)),
        "live": (U, "outcome = completed", None, (0, 0, 2)),
        "live_guard": (U, "outcome = completed", None, (0, 0, 2)),
        "noshow": (F, "none of 2 rules", 0.0, (0, 2, 0)),
        "odd": (S, phrase, 1.0, (1, 0, 1)),
    }


def test_score_weighs_the_rules_and_treats_unknown_as_either(ds):
    criteria = {
        "combine": "score",
        "min_score": 0.6,
        "rule": [
            {"outcome": "completed"},
            {"min_user_turns": 2, "weight": 2},
            {"no_guardrail": True},
        ],
    }
    # weights 1, 2, 1 (4 in all): success when what passed weighs 2.4, failure when even every
    # unknown rule passing could not get there
    assert frame(ds.evaluate(criteria)) == {
        "ok": (S, "score >= 0.6", 1.0, (3, 0, 0)),
        "short": (F, "min_user_turns = 2", 0.25, (1, 2, 0)),  # at best 1/4
        "failed": (U, "min_user_turns = 2", 0.5, (1, 1, 1)),  # 1/4 now, 3/4 at best
        "live": (U, "min_user_turns = 2", None, (0, 0, 3)),
        "live_guard": (U, "min_user_turns = 2", 0.0, (0, 1, 2)),  # at best 3/4
        "noshow": (F, "min_user_turns = 2", 0.25, (1, 2, 0)),
        "odd": (F, "min_user_turns = 2", 0.3333, (1, 1, 1)),  # at best 2/4
    }


def test_groups_combine_inside_a_rule_and_name_what_decided(ds):
    criteria = {
        "rule": [
            {
                "name": "resolved",
                "any": [{"outcome": "no_show"}, {"objective_completed": "identify_order"}],
            },
            {"no_guardrail": True},
        ]
    }
    assert {k: v[:2] for k, v in frame(ds.evaluate(criteria)).items()} == {
        "ok": (S, "all 2 rules"),
        "short": (F, "no_guardrail"),
        "failed": (F, "resolved"),  # both failed: the group itself
        "live": (U, "resolved > outcome = no_show"),
        "live_guard": (F, "no_guardrail"),
        "noshow": (S, "all 2 rules"),
        "odd": (U, "resolved > outcome = no_show"),
    }


def test_the_frame_has_its_documented_columns_and_types(ds):
    out = ds.evaluate({"rule": [{"outcome": "completed"}]})
    assert list(out.columns) == [
        "conversation_id",
        "replica_id",
        "joined_at",
        "week",
        "result",
        "rule",
        "score",
        "passed",
        "failed",
        "unknown",
    ]
    assert list(out["conversation_id"]) == list(ds.conversations["conversation_id"])
    assert list(out["result"].cat.categories) == [S, F, U]
    assert str(out["week"].dtype) == "datetime64[ns, UTC]"
    weeks = dict(zip(out["conversation_id"], out["week"], strict=True))
    assert weeks["ok"] == weeks["odd"] == pd.Timestamp("2026-06-01", tz="UTC")  # a Monday
    assert weeks["short"] == pd.Timestamp("2026-06-15", tz="UTC")
    assert weeks["failed"] == pd.Timestamp("2026-06-01", tz="UTC")  # by its first callback
    doc = ev.evaluate.__doc__.split("Returns", 1)[1]
    for column in out.columns:
        assert column in doc


def test_success_rate_per_replica_and_week(ds):
    criteria = {"rule": [{"outcome": "completed"}]}
    out = ds.evaluate(criteria)
    overall = ev.success_rate(out)
    assert overall.to_dict("records") == [
        {
            "calls": 7,
            "success": 2,
            "failure": 2,
            "unknown": 3,
            "success_rate": 0.5,
            "unknown_share": 3 / 7,
        }
    ]
    per = ds.success_rate(criteria, by="replica")
    assert per[["replica_id", "calls", "success", "failure", "unknown"]].values.tolist() == [
        ["r1", 5, 2, 1, 2],
        ["r2", 2, 0, 1, 1],
    ]
    assert per["success_rate"].tolist() == [2 / 3, 0.0]
    weekly = ev.success_rate(out, by="week")
    assert list(weekly["week"].dt.strftime("%Y-%m-%d")) == [
        "2026-06-01",
        "2026-06-08",
        "2026-06-15",
    ]
    assert weekly[["calls", "success", "failure", "unknown"]].values.tolist() == [
        [4, 1, 2, 1],
        [0, 0, 0, 0],  # an empty week is listed
        [3, 1, 0, 2],
    ]
    assert weekly["success_rate"].tolist()[0] == pytest.approx(1 / 3)
    assert np.isnan(weekly["success_rate"].iloc[1]) and weekly["success_rate"].iloc[2] == 1.0
    rules = ev.deciding_rules(out)
    assert rules.to_dict("records") == [{"rule": "outcome = completed", "calls": 2, "share": 1.0}]


def test_an_empty_dataset_gives_empty_frames(tmp_path):
    path = tmp_path / "empty.db"
    store = Store(path)
    store.connection()
    store.close()
    ds = ta.load(path)
    out = ds.evaluate({"rule": [{"min_user_turns": 1}, {"phrase_absent": "x"}]})
    assert out.empty and list(out.columns)[:5] == [
        "conversation_id",
        "replica_id",
        "joined_at",
        "week",
        "result",
    ]
    assert ev.success_rate(out, by="week").empty
    assert ev.success_rate(out)["calls"].tolist() == [0]
    fig = charts.success_rate(out)
    assert [t.get_text() for t in fig.axes[0].texts] == ["no evaluated calls in this range"]


# -- criteria files ------------------------------------------------------------------------------
GOOD = """\
name = "support calls"
description = "what a good support call is"
combine = "all"

[[rule]]
name = "ended normally"
outcome = "completed"

[[rule]]
min_user_turns = 2
weight = 2

[[rule]]
name = "resolved"
any = [
  { objective_completed = "identify_order" },
  { output_filled = "order_id", objective = "identify_order" },
]

[[rule]]
phrase_absent = "cancel"
role = "user"
"""


def test_a_toml_file_reads_as_the_same_dict(ds, tmp_path):
    path = tmp_path / "criteria.toml"
    path.write_text(GOOD, encoding="utf-8")
    crit = ev.load_criteria(path)
    assert crit.name == "support calls" and crit.source == str(path)
    assert [r.label for r in crit.rules] == [
        "ended normally",
        "min_user_turns = 2",
        "resolved",
        'phrase_absent "cancel" (user)',
    ]
    assert [r.weight for r in crit.rules] == [1.0, 2.0, 1.0, 1.0]
    assert crit.describe() == "support calls: 4 rules, all must pass"
    assert crit.tables == {"conversations", "objectives", "objective_outputs", "turns"}
    as_dict = ds.evaluate(
        {
            "rule": [
                {"name": "ended normally", "outcome": "completed"},
                {"min_user_turns": 2, "weight": 2},
                {
                    "name": "resolved",
                    "any": [
                        {"objective_completed": "identify_order"},
                        {"output_filled": "order_id", "objective": "identify_order"},
                    ],
                },
                {"phrase_absent": "cancel", "role": "user"},
            ]
        }
    )
    pd.testing.assert_frame_equal(ds.evaluate(path), as_dict)
    pd.testing.assert_frame_equal(ds.evaluate(str(path)), as_dict)
    # sub-tables of a rule are the same as an inline list
    nested = GOOD.replace(
        """any = [
  { objective_completed = "identify_order" },
  { output_filled = "order_id", objective = "identify_order" },
]
""",
        """
[[rule.any]]
objective_completed = "identify_order"

[[rule.any]]
output_filled = "order_id"
objective = "identify_order"
""",
    )
    other = tmp_path / "nested.toml"
    other.write_text(nested, encoding="utf-8")
    assert ev.load_criteria(other).rules == crit.rules


def bad(tmp_path, text: str) -> InvalidCriteria:
    path = tmp_path / "criteria.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidCriteria) as e:
        ev.load_criteria(path)
    assert str(e.value).startswith(f"{path}, " if e.value.line else f"{path}: ")
    return e.value


def test_bad_toml_names_the_line(tmp_path):
    e = bad(tmp_path, '[[rule]]\nname = "x"\noutcome = completed\n')
    assert e.line == 3
    assert str(e).endswith(
        ', line 3: not valid TOML (invalid value); text needs quotes, e.g. outcome = "completed"'
    )
    e = bad(tmp_path, "[[rule]]\nmin_user_turns 3\n")
    assert e.line == 2 and "not valid TOML" in str(e)


def test_an_unknown_rule_names_the_line_and_the_rule(tmp_path):
    e = bad(tmp_path, GOOD + '\n[[rule]]\nname = "talk"\nmin_user_turn = 3\n')
    assert (e.line, e.rule) == (26, "rule 5 ('talk')")
    assert str(e).split(": ", 1)[1] == (
        "unknown rule 'min_user_turn' (did you mean min_user_turns?); the conditions are "
        + ", ".join(ev.CONDITIONS)
    )
    assert str(e).startswith(f"{tmp_path / 'criteria.toml'}, line 26, rule 5 ('talk'): ")


def test_a_value_of_the_wrong_type_names_the_line_and_the_rule(tmp_path):
    e = bad(tmp_path, '[[rule]]\noutcome = "completed"\n\n[[rule]]\nmin_user_turns = "three"\n')
    assert (e.line, e.rule) == (5, "rule 2")
    assert str(e).endswith(
        "line 5, rule 2: min_user_turns must be a whole number of at least 0, not 'three' "
        "(a string)"
    )
    e = bad(tmp_path, GOOD.replace('output_filled = "order_id"', "output_filled = 7"))
    assert (e.line, e.rule) == (17, "rule 3 ('resolved'), condition 2 of any")
    assert "output_filled must be a name, not 7 (an integer)" in str(e)
    tables = '[[rule]]\nname = "resolved"\n\n[[rule.any]]\noutcome = "completed"\n\n'
    tables += '[[rule.any]]\nname = "talked"\nmin_user_turns = 2.5\n'
    e = bad(tmp_path, tables)
    assert (e.line, e.rule) == (9, "rule 1 ('resolved'), condition 2 of any ('talked')")


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('[[rule]]\noutcome = "done"\n', 2, "outcome 'done' does not exist: use completed, "),
        ("[[rule]]\nshutdown_category = []\n", 2, "a string or a list of strings, not []"),
        (
            '[[rule]]\noutcome = "completed"\nmin_user_turns = 1\n',
            3,
            "the rule has 2 conditions (outcome, min_user_turns): give each its own [[rule]]",
        ),
        ('[[rule]]\nname = "empty"\n', 1, "the rule has no condition: give one of "),
        ("[[rule]]\nmin_user_turns = 1\nweight = 0\n", 3, "weight must be a number above 0"),
        ("[[rule]]\nmin_user_turns = 1\nweight = true\n", 3, "weight must be a number above 0"),
        ('[[rule]]\nmin_user_turns = 1\nrole = "user"\n', 3, "role only goes with phrase_"),
        ('[[rule]]\nphrase_present = "x"\nrole = "bot"\n', 3, 'role must be "user", '),
        ("[[rule]]\nmin_duration_s = 90\nmax_duration_s = 60\n", 3, "(90) is above"),
        ("[[rule]]\nno_guardrail = false\n", 2, "no_guardrail = false checks nothing"),
        ('[[rule]]\nphrase_absent = "  "\n', 2, "phrase_absent must be words to look for"),
        ("[[rule]]\nany = []\n", 2, "any must be a non-empty list of rules"),
        ('combine = "most"\n[[rule]]\noutcome = "failed"\n', 1, 'combine must be "all", '),
        ('combine = "score"\n[[rule]]\noutcome = "failed"\n', 1, "needs min_score, a number"),
        ('min_score = 0.5\n[[rule]]\noutcome = "failed"\n', 1, 'only for combine = "score"'),
        ('rules = 1\n[[rule]]\noutcome = "failed"\n', 1, "unknown setting 'rules' (did you mean"),
        ('name = "nothing"\n', None, "no rule: add at least one [[rule]] table"),
        (
            'rule = [\n  { outcome = "completed" },\n  { min_user_turns = -1 },\n]\n',
            3,
            "rule 2: min_user_turns must be a whole number of at least 0, not -1",
        ),
    ],
)
def test_every_malformed_criteria_file_says_where_and_what(tmp_path, text, line, message):
    e = bad(tmp_path, text)
    assert e.line == line
    assert message in str(e)
    if line is not None:
        assert f", line {line}" in str(e)


def test_criteria_as_a_dict_name_the_rule(ds):
    with pytest.raises(InvalidCriteria, match=r"^criteria, rule 1: unknown rule 'outcomes'"):
        ds.evaluate({"rule": [{"outcomes": "completed"}]})
    with pytest.raises(InvalidCriteria, match="cannot read .*missing.toml: no such file"):
        ds.evaluate("missing.toml")
    with pytest.raises(TypeError, match="criteria are a dict, a TOML file or Criteria"):
        ev.parse(42)


# -- the chart -----------------------------------------------------------------------------------
def test_the_success_rate_chart_draws_what_the_table_says(ds):
    out = ds.evaluate({"name": "ended", "rule": [{"outcome": "completed"}]})
    fig = charts.success_rate(out, name="ended")
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert ax.get_title(loc="left") == "Success rate per week: ended"
    heights = [round(p.get_height(), 2) for p in ax.patches]
    assert heights == [33.33, 0.0, 100.0]
    labels = [t.get_text() for t in ax.texts]
    assert labels[:3] == ["1/3", "-", "1/1"]
    assert "50% of 4 decided calls met the criteria" in labels[-1]
    fig = charts.success_rate(out, by="replica")
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_yticklabels()] == ["r1", "r2"]
    assert [round(p.get_width(), 2) for p in ax.patches] == [66.67, 0.0]
    unknown_only = out[out["result"] == U]
    (message,) = [t.get_text() for t in charts.success_rate(unknown_only).axes[0].texts]
    assert message.startswith("no call could be judged")
    with pytest.raises(TypeError, match="ds.evaluate"):
        charts.success_rate(ds)


# -- the command line ----------------------------------------------------------------------------
def test_evaluate_prints_the_rates_and_the_deciding_rules(db, tmp_path):
    path = tmp_path / "criteria.toml"
    path.write_text('name = "ended"\n[[rule]]\noutcome = "completed"\n', encoding="utf-8")
    r = CliRunner().invoke(cli, ["evaluate", "--criteria", str(path), "--db", str(db)])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[:5] == [
        str(db),
        "ended: 1 rule, all must pass",
        "",
        "Calls         7: 2 success, 2 failure, 3 unknown",
        "Success rate  50.0% of 4 decided calls (3 unknown left out)",
    ]
    assert "r1             5        2        1        2         66.7%" in lines
    assert "2026-06-08                0        0        0        0             -" in lines
    assert lines[lines.index("Rules that decided the failures") + 1].split() == [
        "outcome", "=", "completed", "2", "100.0%"
    ]  # fmt: skip
    r = CliRunner().invoke(
        cli, ["evaluate", "--criteria", str(path), "--db", str(db), "--replica", "r2"]
    )
    assert "Calls         2: 0 success, 1 failure, 1 unknown" in r.output


def test_evaluate_json_gives_every_calls_result(db, tmp_path):
    path = tmp_path / "criteria.toml"
    path.write_text("[[rule]]\nmin_user_turns = 2\n", encoding="utf-8")
    r = CliRunner().invoke(cli, ["evaluate", "--criteria", str(path), "--db", str(db), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["database"] == str(db)
    assert out["criteria"] == "criteria.toml: 1 rule, all must pass"  # named after its file
    got = {c["conversation_id"]: c["result"] for c in out["results"]}
    assert got == dict(zip(CALLS, [S, F, U, U, U, F, F], strict=True))
    assert (out["success"], out["failure"], out["unknown"]) == (1, 3, 3)
    assert out["success_rate"] == 0.25
    assert [w["week"] for w in out["by_week"]] == ["2026-06-01", "2026-06-08", "2026-06-15"]
    assert out["by_week"][1]["success_rate"] is None
    assert out["failures_by_rule"] == [{"rule": "min_user_turns = 2", "calls": 3, "share": 1.0}]


def test_evaluate_with_a_malformed_file_is_one_line(db, tmp_path):
    path = tmp_path / "criteria.toml"
    path.write_text('[[rule]]\noutcome = "completed"\n[[rule]]\nmin_user_turn = 3\n')
    r = CliRunner().invoke(cli, ["evaluate", "--criteria", str(path), "--db", str(db)])
    assert r.exit_code == 1
    assert r.output.count("\n") == 1
    assert r.output.startswith(
        f"Error: {path}, line 4, rule 2: unknown rule 'min_user_turn' (did you mean "
        "min_user_turns?); the conditions are shutdown_category, "
    )
    r = CliRunner().invoke(
        cli, ["evaluate", "--criteria", str(tmp_path / "none.toml"), "--db", str(db)]
    )
    assert (r.exit_code, r.output) == (
        1,
        f"Error: cannot read {tmp_path / 'none.toml'}: no such file\n",
    )
