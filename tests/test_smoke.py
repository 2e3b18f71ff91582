import json

from conftest import SECRET, SHUTDOWN_EXAMPLE


def test_documented_example_is_stored_and_classified(client, store):
    r = client.post(f"/webhook?token={SECRET}", data=json.dumps(SHUTDOWN_EXAMPLE))
    assert r.status_code == 200
    assert r.json["duplicate"] is False
    row = (
        store.connection()
        .execute(
            "SELECT kind, event_type, conversation_id, replica_id FROM callbacks WHERE id = ?",
            (r.json["id"],),
        )
        .fetchone()
    )
    assert row == ("conversation", "system.shutdown", "c123456", "r79e1c033f")
