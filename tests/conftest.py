"""Shared fixtures: every test gets its own SQLite file under tmp_path."""

from __future__ import annotations

import matplotlib
import pytest

from tavus_analytics import Settings, Store, create_app

matplotlib.use("Agg")

SECRET = "test-secret-token"

#: The documented example payload (DESIGN.md / TAVUS.md).
SHUTDOWN_EXAMPLE = {
    "properties": {"replica_id": "r79e1c033f", "shutdown_reason": "participant_left_timeout"},
    "conversation_id": "c123456",
    "webhook_url": "https://example.ngrok.app/webhook",
    "event_type": "system.shutdown",
    "message_type": "system",
    "timestamp": "2025-07-11T06:48:37.564961Z",
}


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "tavus.db"


@pytest.fixture
def settings(db_path):
    return Settings(db=str(db_path), secret=SECRET)


@pytest.fixture
def store(db_path):
    s = Store(db_path)
    yield s
    s.close()


@pytest.fixture
def app(settings, store):
    return create_app(settings, store=store)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
