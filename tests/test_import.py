"""`tavus-analytics import`: file shapes, bytes kept, dedupe, rejected records, errors."""

from __future__ import annotations

import hashlib
import io
import json
import os

import pytest
from conftest import SHUTDOWN_EXAMPLE, query, run

from tavus_analytics.importer import (
    ImportFileError,
    Record,
    import_files,
    read_records,
    split_records,
    store_records,
)

TRANSCRIPT = {
    "properties": {
        "replica_id": "r79e1c033f",
        "transcript": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Hello, can you hear me?"},
            {"role": "assistant", "content": "Yes, loud and clear. Ça marche."},
        ],
    },
    "conversation_id": "c123456",
    "webhook_url": "https://example.ngrok.app/webhook",
    "event_type": "application.transcription_ready",
    "message_type": "application",
    "timestamp": "2025-07-11T06:48:37.565961Z",
}


def verbose_response(events, cid="c123456"):
    """The shape of GET /v2/conversations/{id}?verbose=true."""
    return {
        "conversation_id": cid,
        "conversation_name": "Demo call",
        "status": "ended",
        "conversation_url": "https://tavus.daily.co/" + cid,
        "callback_url": "https://example.ngrok.app/webhook",
        "replica_id": "r79e1c033f",
        "persona_id": "p1234",
        "created_at": "2025-07-11T06:40:00.000000Z",
        "updated_at": "2025-07-11T06:50:00.000000Z",
        "shutdown_reason": "participant_left_timeout",
        "events": events,
    }


# -- file shapes --------------------------------------------------------------------------------
def test_one_object_is_stored_byte_for_byte(tmp_path, db_path):
    raw = json.dumps(SHUTDOWN_EXAMPLE, indent=3).encode()
    f = tmp_path / "one.json"
    f.write_bytes(raw + b"\n")
    r = run("import", f, "--db", db_path)
    assert r.exit_code == 0, r.output
    assert r.output == f"{db_path}: 1 record from 1 file: 1 stored, 0 duplicates, 0 rejected\n"
    assert query(db_path, "SELECT body, sha256, event_type, user_agent FROM callbacks") == [
        (raw.decode(), hashlib.sha256(raw).hexdigest(), "system.shutdown", "tavus-analytics import")
    ]


def test_array_items_keep_their_own_bytes(tmp_path, db_path):
    items = [
        json.dumps({**SHUTDOWN_EXAMPLE, "n": 1}, indent=2),
        json.dumps({**SHUTDOWN_EXAMPLE, "n": 2}),
        json.dumps(TRANSCRIPT, ensure_ascii=False, separators=(",", ":")),
    ]
    f = tmp_path / "many.json"
    f.write_text("[\n  " + " ,\n\t".join(items) + "\n]", encoding="utf-8")
    r = run("import", f, "--db", db_path)
    assert r.exit_code == 0, r.output
    assert [b for (b,) in query(db_path, "SELECT body FROM callbacks ORDER BY id")] == items


def test_json_lines_with_bad_lines_go_to_rejected(tmp_path, db_path):
    lines = [
        json.dumps(SHUTDOWN_EXAMPLE),
        "",
        "{not json",
        "[1, 2]",
        json.dumps(TRANSCRIPT),
    ]
    f = tmp_path / "cb.jsonl"
    f.write_text("\r\n".join(lines) + "\n", encoding="utf-8")
    r = run("import", f, "--db", db_path)
    assert r.exit_code == 0, r.output
    assert "4 records from 1 file: 2 stored, 0 duplicates, 2 rejected" in r.output
    assert "rejected table" in r.output
    assert [b for (b,) in query(db_path, "SELECT body FROM callbacks ORDER BY id")] == [
        lines[0],
        lines[4],
    ]
    rejected = query(db_path, "SELECT reason, status, body FROM rejected ORDER BY id")
    assert [(reason.split(":")[0], status, body) for reason, status, body in rejected] == [
        ("body is not valid JSON", 400, b"{not json"),
        ("body is JSON but not an object (got an array)", 400, b"[1, 2]"),
    ]


def test_a_file_that_is_not_json_at_all_is_one_rejected_record(tmp_path, db_path):
    f = tmp_path / "broken.json"
    f.write_text('{\n  "event_type": "system.shutdown",\n  "conversation_id": \n', "utf-8")
    r = run("import", f, "--db", db_path)
    assert r.exit_code == 0, r.output
    assert "1 record from 1 file: 0 stored, 0 duplicates, 1 rejected" in r.output
    assert query(db_path, "SELECT count(*) FROM rejected") == [(1,)]


def test_empty_file_and_byte_order_mark(tmp_path, db_path):
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"  \n")
    bom = tmp_path / "bom.json"
    raw = json.dumps(SHUTDOWN_EXAMPLE).encode()
    bom.write_bytes(b"\xef\xbb\xbf" + raw)
    r = run("import", empty, bom, "--db", db_path)
    assert r.exit_code == 0, r.output
    assert "1 record from 2 files: 1 stored" in r.output
    assert query(db_path, "SELECT body FROM callbacks") == [(raw.decode(),)]


def test_standard_input(db_path):
    r = run("import", "-", "--db", db_path, input=json.dumps(SHUTDOWN_EXAMPLE) + "\n")
    assert r.exit_code == 0, r.output
    assert query(db_path, "SELECT conversation_id FROM callbacks") == [("c123456",)]


def test_reimport_counts_duplicates(tmp_path, db_path):
    f = tmp_path / "cb.jsonl"
    f.write_text(json.dumps(SHUTDOWN_EXAMPLE) + "\n" + json.dumps(TRANSCRIPT) + "\n", "utf-8")
    assert run("import", f, "--db", db_path).exit_code == 0
    r = run("import", f, "--db", db_path)
    assert "2 records from 1 file: 0 stored, 2 duplicates, 0 rejected" in r.output
    assert query(db_path, "SELECT count(*) FROM callbacks") == [(2,)]


# -- saved API answers --------------------------------------------------------------------------
def test_verbose_response_events_become_callbacks(tmp_path, db_path):
    with_id = json.dumps({**SHUTDOWN_EXAMPLE}, indent=1)
    without_id = {
        "event_type": "system.replica_joined",
        "message_type": "system",
        "timestamp": "2025-07-11T06:41:00.000000Z",
        "properties": {"replica_id": "r79e1c033f", "note": "é"},
    }
    no_timestamp = {
        "event_type": "application.perception_unavailable",
        "created_at": "2025-07-11T06:52:00.000000Z",
        "properties": {"reason": "no_vision_history"},
    }
    response = json.dumps(verbose_response([without_id, no_timestamp]))
    # The event that has everything keeps its bytes: splice it in as written.
    response = response.replace('"events": [', '"events": [' + with_id + ", ", 1)
    f = tmp_path / "c123456.json"
    f.write_text(response, encoding="utf-8")
    r = run("import", f, "--db", db_path)
    assert r.exit_code == 0, r.output
    assert "3 records from 1 file: 3 stored, 0 duplicates, 0 rejected" in r.output
    rows = query(
        db_path,
        "SELECT kind, event_type, conversation_id, timestamp, body FROM callbacks ORDER BY id",
    )
    assert rows[0] == (
        "conversation",
        "system.shutdown",
        "c123456",
        "2025-07-11T06:48:37.564961Z",
        with_id,
    )
    assert rows[1][:4] == (
        "conversation",
        "system.replica_joined",
        "c123456",
        "2025-07-11T06:41:00.000000Z",
    )
    assert json.loads(rows[1][4]) == {**without_id, "conversation_id": "c123456"}
    assert '"note":"é"' in rows[1][4]  # compact, non-ASCII kept
    assert json.loads(rows[2][4])["timestamp"] == "2025-07-11T06:52:00.000000Z"
    # Re-serialised bodies are the same bytes the next time: the re-import is all duplicates.
    again = run("import", f, "--db", db_path)
    assert "3 records from 1 file: 0 stored, 3 duplicates, 0 rejected" in again.output
    assert query(db_path, "SELECT count(*) FROM callbacks") == [(3,)]


def test_api_events_already_collected_are_not_stored_twice(tmp_path, db_path):
    collected = tmp_path / "collected.json"
    collected.write_text(json.dumps(SHUTDOWN_EXAMPLE), "utf-8")
    assert run("import", collected, "--db", db_path).exit_code == 0
    # The API's copy of the same callback has other bytes (no webhook_url, other key order).
    event = {k: v for k, v in SHUTDOWN_EXAMPLE.items() if k not in ("webhook_url",)}
    event = dict(reversed(list(event.items())))
    saved = tmp_path / "api.json"
    saved.write_text(json.dumps(verbose_response([event, TRANSCRIPT])), "utf-8")
    r = run("import", saved, "--db", db_path)
    assert r.exit_code == 0, r.output
    assert "2 records from 1 file: 1 stored, 1 duplicate, 0 rejected" in r.output
    assert "1 API events matched a stored callback" in r.output
    assert query(db_path, "SELECT event_type FROM callbacks ORDER BY id") == [
        ("system.shutdown",),
        ("application.transcription_ready",),
    ]


def test_responses_in_json_lines_and_arrays_are_expanded():
    one = verbose_response([{"event_type": "system.shutdown", "timestamp": "t1"}], cid="c1")
    two = verbose_response([{"event_type": "system.shutdown", "timestamp": "t2"}], cid="c2")
    jsonl = (json.dumps(one) + "\n" + json.dumps(two)).encode()
    array = json.dumps([one, SHUTDOWN_EXAMPLE, two], indent=2).encode()
    for data, expected in [(jsonl, ["c1", "c2"]), (array, ["c1", "c123456", "c2"])]:
        records = split_records(data)
        assert [json.loads(r.body)["conversation_id"] for r in records] == expected
        assert [r.from_api for r in records] == [cid != "c123456" for cid in expected]


# -- errors and atomicity -----------------------------------------------------------------------
def test_missing_file_fails_before_anything_is_written(tmp_path, db_path):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(SHUTDOWN_EXAMPLE), "utf-8")
    missing = tmp_path / "missing.json"
    r = run("import", good, missing, "--db", db_path)
    assert r.exit_code == 1
    assert r.output == f"Error: cannot read {missing}: no such file\n"
    assert "Traceback" not in r.output
    assert not db_path.exists()


def test_folder_and_unreadable_file_are_errors(tmp_path, db_path):
    r = run("import", tmp_path, "--db", db_path)
    assert r.exit_code == 1
    assert r.output == f"Error: cannot read {tmp_path}: it is a folder, not a file\n"
    if os.geteuid() != 0:  # root reads whatever the mode says
        f = tmp_path / "secret.json"
        f.write_text("{}", "utf-8")
        f.chmod(0)
        r = run("import", f, "--db", db_path)
        assert r.exit_code == 1
        assert r.output == f"Error: cannot read {f}: Permission denied\n"


def test_read_records_raises_import_file_error(tmp_path):
    with pytest.raises(ImportFileError, match="no such file"):
        read_records(tmp_path / "nope.jsonl")


def test_an_error_midway_leaves_nothing_half_imported(store):
    def records():
        yield Record(json.dumps({**SHUTDOWN_EXAMPLE, "n": 1}).encode())
        yield Record(b"not json")
        raise OSError("disk went away")

    with pytest.raises(OSError, match="disk went away"):
        store_records(store, records())
    conn = store.connection()
    assert conn.execute("SELECT count(*) FROM callbacks").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM rejected").fetchone() == (0,)


def test_import_files_counts(tmp_path, store, monkeypatch):
    f = tmp_path / "x.jsonl"
    f.write_text("\n".join(json.dumps({**SHUTDOWN_EXAMPLE, "n": i}) for i in range(2500)), "utf-8")
    monkeypatch.setattr("sys.stderr", io.StringIO())
    result = import_files(store, [f, f], progress=True)
    counts = (result.records, result.stored, result.duplicate, result.rejected)
    assert counts == (5000, 2500, 2500, 0)
