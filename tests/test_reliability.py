"""Reliability: crashes, contention, disk full, hostile input and access, in a fast subset.

The full harness is ``python -m stress.run`` (see ``stress/README.md``); these tests run the same
scenarios with small, bounded parameters against real collector processes and servers on
127.0.0.1, each on its own temporary database.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3

from conftest import SECRET


# -- regressions found by the harness -----------------------------------------------------------
def test_lone_surrogate_escape_in_an_index_field_is_stored_not_500(client, store, db_path):
    body = b'{"event_type": "system.shutdown", "conversation_id": "c\\ud800", "status": "\\udfff"}'
    r = client.post(f"/webhook?token={SECRET}", data=body)
    assert r.status_code == 200, r.get_data()
    batch = store.insert_batch([b'{"replica_id": "\\ud83d", "status": "ready"}'])
    assert batch.stored == 1
    conn = sqlite3.connect(db_path)
    rows = conn.execute(
        "SELECT body, sha256, conversation_id, status, replica_id FROM callbacks ORDER BY id"
    ).fetchall()
    conn.close()
    assert rows[0] == (
        body.decode(),
        hashlib.sha256(body).hexdigest(),
        "c\ufffd",
        "\ufffd",
        None,
    )
    assert rows[1][4] == "\ufffd"
    assert json.loads(rows[0][0])["conversation_id"] == "c\ud800"


def test_healthz_is_503_when_the_disk_is_full(client, monkeypatch):
    import shutil
    from collections import namedtuple

    assert client.get("/healthz").status_code == 200
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(1 << 20, 1 << 20, 4096))
    r = client.get("/healthz")
    assert r.status_code == 503
    assert r.json == {"ok": False, "status": 503, "error": "database is not writable"}
