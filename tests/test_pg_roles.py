"""The roles of docs/deployment.md: a collector role that owns the database, an analyst role
with only the grants the guide lists, and what each can do."""

from __future__ import annotations

import contextlib
import re
import uuid
from pathlib import Path

import psycopg
import pytest

import tavus_analytics as ta
from tavus_analytics import demo
from tavus_analytics.errors import StoreUnavailable
from tavus_analytics.store.postgres import PgStore

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "deployment.md"


def analyst_grants() -> list[str]:
    """The GRANT statements of the guide's analyst section, as written there."""
    text = GUIDE.read_text()
    section = text[text.index(". Analysts\n") :]  # the section, whatever its number
    block = section[section.index("```sql") + 6 : section.index("```", section.index("```sql") + 6)]
    return [s.split("--")[0].strip() for s in block.splitlines() if s.startswith("GRANT")]


@pytest.fixture
def analyst_url(pg_url):
    """The test database filled by its owner, and a URL for a new role with the guide's grants."""
    demo.write(pg_url, conversations=30, seed=2)
    with analyst_role(pg_url) as url:
        yield url


@contextlib.contextmanager
def analyst_role(pg_url: str):
    """A new login role on ``pg_url``'s database with exactly the guide's analyst grants; its
    URL for the block, then the role is dropped."""
    role = "analyst_" + uuid.uuid4().hex[:8]
    db = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'analyst-pw'")
        for grant in analyst_grants():
            stmt = grant.rstrip(";").replace("DATABASE tavus", f"DATABASE {db}")
            conn.execute(re.sub(r"TO analyst$", f"TO {role}", stmt))
    host = pg_url.split("@")[1].rsplit("/", 1)[0]
    try:
        yield f"postgresql://{role}:analyst-pw@{host}/{db}"
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")


def test_the_guide_lists_the_grants_this_test_applies():
    grants = analyst_grants()
    assert any(
        "ON callbacks, deliveries, rejected, schema_version, derived_views" in g for g in grants
    )
    assert any("transcript_messages_state" in g for g in grants)


def test_an_analyst_with_the_guides_grants_loads_and_searches(analyst_url, pg_url):
    ds = ta.load(analyst_url)
    assert len(ds.conversations) == 30 and len(ds.turns) > 0
    found = ds.search("the")
    assert len(found) > 0
    assert set(found.conversation_id) <= set(ds.conversations.conversation_id)


def test_an_analyst_with_the_guides_grants_annotates(analyst_url, pg_url):
    ds = ta.load(analyst_url)
    cid = ds.conversations["conversation_id"][0]
    first = ds.annotate(cid, label="escalated", note="manager", author="analyst")
    assert ds.annotations["conversation_id"].tolist() == [cid]
    assert ds.filter(labels="escalated").conversations["conversation_id"].tolist() == [cid]
    assert ds.remove_annotation(first) is True and ds.annotations.empty


def test_an_analyst_cannot_write_callbacks(analyst_url):
    with PgStore(analyst_url) as store, pytest.raises(StoreUnavailable, match="permission"):
        store.insert_callback(b'{"event_type": "system.shutdown", "conversation_id": "x"}')


def test_a_collector_role_that_owns_its_database_but_is_no_superuser(pg_server):
    role, db = "collector_" + uuid.uuid4().hex[:8], "c_" + uuid.uuid4().hex[:12]
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'collector-pw'")  # as in the guide
        admin.execute(f"CREATE DATABASE {db} OWNER {role}")
    host = pg_server.split("@")[1].rsplit("/", 1)[0]
    url = f"postgresql://{role}:collector-pw@{host}/{db}"
    try:
        with PgStore(url) as store:
            store.migrate()  # every migration, as the database's owner
            store.insert_callback(
                b'{"event_type": "application.transcription_ready", "conversation_id": "c1", '
                b'"properties": {"transcript": [{"role": "user", '
                b'"content": "Caf\\u00e9 refunds"}]}}'
            )
        assert list(ta.load(url).search("cafe refund").conversation_id) == ["c1"]
    finally:
        with psycopg.connect(pg_server, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
            admin.execute(f"DROP ROLE {role}")
