"""`tavus-analytics export` and `tavus-analytics stats`, on callbacks whose figures are known."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import run

from tavus_analytics import Store, load
from tavus_analytics.cli import cli
from tavus_analytics.export import TABLE_NAMES, ExportError, write_table
from tavus_analytics.tables import TABLES


def cb(cid, event_type, timestamp, replica="r1", **properties):
    return json.dumps(
        {
            "properties": {"replica_id": replica, **properties},
            "conversation_id": cid,
            "event_type": event_type,
            "message_type": "application" if event_type.startswith("app") else "system",
            "timestamp": timestamp,
        }
    ).encode()


def transcript(*roles):
    msgs = [{"role": "system", "content": "You are Anna."}]
    return msgs + [
        {"role": r, "content": f"{r} says hello number {i}"} for i, r in enumerate(roles)
    ]


#: Four calls: completed (600 s, transcript 2+2, perception), no-show (60 s), failed (1200 s,
#: replica r2, transcript 1+0), and one still in progress.
CALLBACKS = [
    cb("a", "system.replica_joined", "2025-07-01T10:00:00.000000Z"),
    cb("a", "system.shutdown", "2025-07-01T10:10:00.000000Z",
       shutdown_reason="participant_left_timeout"),
    cb("a", "application.transcription_ready", "2025-07-01T10:10:00.001000Z",
       transcript=transcript("user", "assistant", "user", "assistant")),
    cb("a", "application.perception_analysis", "2025-07-01T10:13:00.000000Z",
       analysis="Here's a summary:\n\n**User Appearance**\nA person.\n\n**Mood**\nCalm."),
    cb("b", "system.replica_joined", "2025-07-01T11:00:00.000000Z"),
    cb("b", "system.shutdown", "2025-07-01T11:01:00.000000Z",
       shutdown_reason="participant_absent_timeout reached"),
    cb("c", "system.replica_joined", "2025-07-02T12:00:00.000000Z", replica="r2"),
    cb("c", "system.shutdown", "2025-07-02T12:20:00.000000Z", replica="r2",
       shutdown_reason="internal error occurred at step 3"),
    cb("c", "application.transcription_ready", "2025-07-02T12:20:00.001000Z", replica="r2",
       transcript=transcript("user")),
    cb("d", "system.replica_joined", "2025-07-02T13:00:00.000000Z"),
]  # fmt: skip


@pytest.fixture
def db(db_path):
    with Store(db_path) as store:
        store.insert_batch(CALLBACKS)
    return db_path


# -- export -------------------------------------------------------------------------------------
def test_every_table_of_the_loader_can_be_exported():
    assert set(TABLE_NAMES) == set(TABLES)
    help_text = cli.commands["export"].params
    option = next(p for p in help_text if p.name == "table")
    for name in TABLES:
        assert name in option.help


def test_csv_has_the_loader_columns_and_iso_times(db, tmp_path):
    out = tmp_path / "conversations.csv"
    r = run("export", "--table", "conversations", "--format", "csv", "--out", out, "--db", db)
    assert r.exit_code == 0, r.output
    assert r.output == f"Wrote 4 rows of conversations to {out}\n"
    back = pd.read_csv(out)
    assert list(back.columns) == list(TABLES["conversations"])
    back = back.set_index("conversation_id")
    assert back.loc["a", "joined_at"] == "2025-07-01T10:00:00.000000Z"
    assert back.loc["a", "duration_s"] == 600
    assert back.loc["c", "shutdown_category"] == "internal_error"
    assert pd.isna(back.loc["d", "shutdown_at"])


def test_parquet_round_trips_types_and_values(db, tmp_path):
    out = tmp_path / "c.parquet"
    r = run("export", "--table", "conversations", "--format", "parquet", "--out", out, "--db", db)
    assert r.exit_code == 0, r.output
    back = pd.read_parquet(out)
    expected = load(db).conversations
    assert list(back.columns) == list(expected.columns)
    assert str(back["joined_at"].dtype) == "datetime64[ns, UTC]"
    assert back["duration_s"].dtype == "float64"
    pd.testing.assert_series_equal(back["duration_s"], expected["duration_s"])
    assert list(back["outcome"][:3]) == ["completed", "no_show", "failed"]
    assert pd.isna(back["outcome"][3])
    # Perception sections (dicts) become JSON text in Parquet.
    out = tmp_path / "p.parquet"
    assert run("export", "--table", "perception", "--format", "parquet", "--out", out,
               "--db", db).exit_code == 0  # fmt: skip
    sections = json.loads(pd.read_parquet(out)["sections"][0])
    assert sections["Mood"] == "Calm."


def test_jsonl_keeps_nested_values_and_nulls(db, tmp_path):
    out = tmp_path / "p.jsonl"
    r = run("export", "--table", "perception", "--format", "jsonl", "--out", out, "--db", db)
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert len(rows) == 1
    assert rows[0]["conversation_id"] == "a"
    assert rows[0]["timestamp"] == "2025-07-01T10:13:00.000000Z"
    assert rows[0]["sections"]["Mood"] == "Calm."
    assert rows[0]["reason"] is None
    out = tmp_path / "c.jsonl"
    run("export", "--table", "conversations", "--format", "jsonl", "--out", out, "--db", db)
    conv = {r["conversation_id"]: r for r in map(json.loads, out.read_text("utf-8").splitlines())}
    assert conv["d"]["shutdown_at"] is None and conv["d"]["duration_s"] is None
    assert conv["a"]["user_turns"] == 2 and conv["a"]["has_perception"] is True


def test_filters_since_until_and_replica(db, tmp_path):
    out = tmp_path / "t.csv"
    args = ["export", "--table", "turns", "--format", "csv", "--out", out, "--db", db]
    r = run(*args, "--since", "2025-07-02")
    assert r.output == f"Wrote 2 rows of turns to {out}\n"  # c: system + user
    assert set(pd.read_csv(out)["conversation_id"]) == {"c"}
    r = run(*args, "--until", "2025-07-02", "--replica", "r1")
    assert r.output == f"Wrote 5 rows of turns to {out}\n"
    r = run(*args, "--replica", "nobody")
    assert r.output == f"Wrote 0 rows of turns to {out}\n"
    assert list(pd.read_csv(out).columns) == list(TABLES["turns"])


def test_parquet_takes_an_object_column_of_text_beside_numbers(db_path, tmp_path):
    outputs = {"budget": "50k", "seats": 12, "tools": ["crm"], "ok": True, "missing": None}
    with Store(db_path) as store:
        store.insert_batch(
            [json.dumps({"conversation_id": "a", "objective_name": "q", "output_variables": o})
             .encode() for o in (outputs, {"budget": 50000})]
        )  # fmt: skip
    out = tmp_path / "o.parquet"
    r = run("export", "--table", "objective_outputs", "--format", "parquet", "--out", out,
            "--db", db_path)  # fmt: skip
    assert r.exit_code == 0, r.output
    raw = pd.read_parquet(out).set_index("variable")["raw"]
    # Text stays text; everything else is its JSON text, so that the column has one type.
    assert raw["budget"].tolist() == ["50k", "50000"]
    assert (raw["seats"], raw["tools"], raw["ok"]) == ("12", '["crm"]', "true")
    assert pd.isna(raw["missing"])


def test_export_errors(db, tmp_path):
    r = run("export", "--table", "calls", "--format", "csv", "--out", tmp_path / "x", "--db", db)
    assert r.exit_code == 1
    assert r.output == f"Error: unknown table 'calls': choose one of {', '.join(TABLE_NAMES)}\n"
    missing_dir = tmp_path / "no" / "x.csv"
    r = run("export", "--table", "turns", "--format", "csv", "--out", missing_dir, "--db", db)
    assert r.exit_code == 1
    assert (
        r.output
        == f"Error: cannot write {missing_dir}: folder {missing_dir.parent} does not exist\n"
    )
    missing = tmp_path / "none.db"
    r = run(
        "export", "--table", "turns", "--format", "csv", "--out", tmp_path / "t", "--db", missing
    )
    assert r.exit_code == 1
    assert r.output.startswith(f"Error: no database at {missing}: ")


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    out = tmp_path / "t.csv"
    out.write_text("old\n")

    def broken(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", broken)
    with pytest.raises(OSError, match="disk full"):
        write_table(pd.DataFrame({"a": [1]}), out, "csv")
    assert out.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]
    with pytest.raises(ExportError, match="unknown format 'xlsx'"):
        write_table(pd.DataFrame({"a": [1]}), out, "xlsx")


# -- stats --------------------------------------------------------------------------------------
def test_stats_json_figures(db):
    r = run("stats", "--json", "--db", db)
    assert r.exit_code == 0, r.output
    f = json.loads(r.output)
    assert f["filters"] == {"since": None, "until": None, "replicas": None}
    assert (f["conversations"], f["ended"], f["in_progress"]) == (4, 3, 1)
    assert f["outcomes"] == {"completed": 1, "no_show": 1, "failed": 1, "unknown": 0}
    assert f["completion_rate"] == pytest.approx(1 / 3)
    assert f["duration_median_s"] == pytest.approx(600)
    assert f["duration_p90_s"] == pytest.approx(600 + 0.8 * 600)  # between 600 and 1200
    assert sorted(r["category"] for r in f["shutdown_reasons"]) == [
        "internal_error",
        "participant_absent",
        "participant_left",
    ]
    assert {r["count"] for r in f["shutdown_reasons"]} == {1}
    assert (f["transcripts"], f["user_turns"], f["assistant_turns"]) == (2, 3, 2)
    assert f["turns_median"] == pytest.approx(2.5)  # 4 and 1 messages
    assert (f["perception"], f["perception_coverage"]) == (1, 0.25)
    assert (f["replicas"], f["callbacks"]) == (2, len(CALLBACKS))
    assert f["last_received_at"].endswith("Z")


def test_stats_filters(db):
    f = json.loads(run("stats", "--json", "--since", "2025-07-02", "--db", db).output)
    assert (f["conversations"], f["ended"], f["completion_rate"]) == (2, 1, 0.0)
    assert f["filters"]["since"] == "2025-07-02T00:00:00+00:00"
    f = json.loads(run("stats", "--json", "--replica", "r2", "--db", db).output)
    assert (f["conversations"], f["outcomes"]["failed"], f["replicas"]) == (1, 1, 1)
    f = json.loads(run("stats", "--json", "--replica", "nobody", "--db", db).output)
    assert f["conversations"] == 0 and f["completion_rate"] is None
    assert f["duration_median_s"] is None and f["last_received_at"] is None


def test_stats_terminal_summary(db):
    r = run("stats", "--db", db)
    assert r.exit_code == 0, r.output
    lines = dict(line.split("  ", 1) for line in r.output.splitlines()[1:])
    lines = {k.strip(): v.strip() for k, v in lines.items()}
    assert r.output.splitlines()[0] == str(db)
    assert lines["Conversations"] == "4 (3 ended, 1 in progress)"
    assert lines["Completion rate"] == (
        "33.3% of ended calls (1 completed, 1 no-show, 1 failed, 0 unknown)"
    )
    assert lines["Duration"] == "median 10m 00s, p90 18m 00s"
    assert lines["Turns"] == "5 in 2 transcripts (3 user, 2 assistant; median 2.5 per call)"
    assert lines["Perception"] == "25.0% of conversations (1)"
    empty = run("stats", "--replica", "nobody", "--db", db)
    assert "Duration          median -, p90 -" in empty.output
    assert "Last callback     never (0 callbacks)" in empty.output


def test_stats_missing_database(tmp_path):
    missing = tmp_path / "none.db"
    r = run("stats", "--db", missing)
    assert r.exit_code == 1
    assert r.output == (
        f"Error: no database at {missing}: start the collector (tavus-analytics serve) or make "
        f"demo data (tavus-analytics demo --db {missing})\n"
    )
