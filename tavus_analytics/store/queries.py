"""What the loader asks of a reader: every SQL query of the table builders, in one place.

A :class:`~tavus_analytics.store.base.Query` holds both dialects where the JSON functions differ
(SQLite's ``json_extract`` on ``body``, PostgreSQL's jsonb operators on ``body_json``); a plain
string is SQLite text with ``?`` placeholders, which the PostgreSQL reader translates. Every
query reads only the rows of a dataset's snapshot (``id <= ?``, the reader's ``max_id``); the
queries of per-callback facts read one range of ids (``id > ? AND id <= ?``), so that the facts
of older callbacks can be kept (:mod:`tavus_analytics.cache`) and a range can be read by another
process.
"""

from __future__ import annotations

from collections.abc import Sequence

from .. import events as ev
from .base import Query


def placeholders(values: Sequence) -> str:
    """``?, ?, ...``: one placeholder per value."""
    return ", ".join("?" for _ in values)


def events(columns: Sequence[str]) -> str:
    """These columns of the callbacks with ids in a range, in arrival order. Parameters: the
    range (after, upto)."""
    return f"SELECT {', '.join(columns)} FROM callbacks WHERE id > ? AND id <= ? ORDER BY id"


_JOINS_IN = placeholders(ev.JOIN_EVENTS)
# Per conversation, over the callbacks of one range of ids, aggregates that combine with those
# of other ranges (a minimum of minima): the smallest replica id among the joins and among all
# callbacks, the smallest and largest join time (as text) and its length (when the shapes
# differ, the text minimum is not the earliest time), the first and last arrival.
# A full scan sorted in a temporary b-tree measures faster here than walking the
# conversation_id index, which visits the rows of the table in random order. ORDER BY: the
# order SQLite's GROUP BY gives anyway, made explicit for PostgreSQL (whose "C" collation
# orders text by bytes, as SQLite does).
CONVERSATIONS = f"""
SELECT conversation_id,
       min(CASE WHEN is_join THEN replica_id END),
       min(replica_id),
       min(CASE WHEN is_join THEN ts END),
       max(CASE WHEN is_join THEN ts END),
       min(CASE WHEN is_join THEN length(ts) END),
       max(CASE WHEN is_join THEN length(ts) END),
       min(received_at),
       max(received_at)
FROM (
    SELECT conversation_id, replica_id, received_at, event_type IN ({_JOINS_IN}) AS is_join,
           coalesce(timestamp, received_at) AS ts
    FROM callbacks NOT INDEXED
    WHERE kind = ? AND id > ? AND id <= ? AND conversation_id IS NOT NULL
) AS calls
GROUP BY conversation_id
ORDER BY conversation_id
"""


# SQLite's json_type names for the jsonb_typeof names the code compares ('string' is 'text').
def _pg_json_type(path: str) -> str:
    """SQL for the SQLite ``json_type`` name of ``body_json``'s value at ``path`` (a text array
    such as ``{properties,s3_key}``); only 'string' (SQLite's 'text') and 'object' matter."""
    value = f"body_json #> '{path}'"
    return f"CASE jsonb_typeof({value}) WHEN 'string' THEN 'text' ELSE jsonb_typeof({value}) END"


# What the shutdown body holds: 'invalid' (the database's JSON functions cannot read it),
# 'properties' (properties is not an object), else the JSON type of shutdown_reason (NULL when
# absent), and its value. On PostgreSQL, body_json is NULL where jsonb cannot hold the body.
SHUTDOWNS = Query(
    sqlite="""
SELECT id, conversation_id, coalesce(timestamp, received_at),
       CASE WHEN NOT json_valid(body) THEN 'invalid'
            WHEN json_type(body, '$.properties') IS NOT 'object' THEN 'properties'
            ELSE json_type(body, '$.properties.shutdown_reason') END,
       CASE WHEN json_valid(body) THEN json_extract(body, '$.properties.shutdown_reason') END
FROM callbacks
WHERE event_type = ? AND kind = ? AND id > ? AND id <= ?
ORDER BY id
""",
    postgres=f"""
SELECT id, conversation_id, coalesce(timestamp, received_at),
       CASE WHEN body_json IS NULL THEN 'invalid'
            WHEN jsonb_typeof(body_json -> 'properties') IS DISTINCT FROM 'object'
            THEN 'properties'
            ELSE {_pg_json_type("{properties,shutdown_reason}")} END,
       body_json #>> '{{properties,shutdown_reason}}'
FROM callbacks
WHERE event_type = %s AND kind = %s AND id > %s AND id <= %s
ORDER BY id
""",
)
PERCEPTION_TYPES = Query(
    sqlite="""
SELECT id, conversation_id,
       CASE WHEN json_valid(body) THEN json_type(body, '$.properties.analysis') ELSE 'invalid' END
FROM callbacks
WHERE event_type = ? AND kind = ? AND id > ? AND id <= ?
ORDER BY id
""",
    postgres=f"""
SELECT id, conversation_id,
       CASE WHEN body_json IS NULL THEN 'invalid'
            ELSE {_pg_json_type("{properties,analysis}")} END
FROM callbacks
WHERE event_type = %s AND kind = %s AND id > %s AND id <= %s
ORDER BY id
""",
)
# Recordings: whether the body is readable, the JSON types of properties and of s3_key, and
# s3_key.
RECORDINGS = Query(
    sqlite="""
SELECT id, conversation_id, coalesce(timestamp, received_at), json_valid(body),
       CASE WHEN json_valid(body) THEN json_type(body, '$.properties') END,
       CASE WHEN json_valid(body) THEN json_type(body, '$.properties.s3_key') END,
       CASE WHEN json_valid(body) THEN json_extract(body, '$.properties.s3_key') END
FROM callbacks
WHERE event_type = ? AND kind = ? AND id > ? AND id <= ?
ORDER BY id
""",
    postgres=f"""
SELECT id, conversation_id, coalesce(timestamp, received_at),
       CASE WHEN body_json IS NULL THEN 0 ELSE 1 END,
       jsonb_typeof(body_json -> 'properties'),
       {_pg_json_type("{properties,s3_key}")},
       body_json #>> '{{properties,s3_key}}'
FROM callbacks
WHERE event_type = %s AND kind = %s AND id > %s AND id <= %s
ORDER BY id
""",
)


def joins_of(conversations: Sequence[str]) -> str:
    """(conversation, sender's time or arrival) of every join callback of these conversations.
    Parameters: the join event types, the kind, the snapshot's ``max_id``, the ids."""
    return (
        "SELECT conversation_id, coalesce(timestamp, received_at) FROM callbacks "
        f"WHERE event_type IN ({_JOINS_IN}) AND kind = ? AND id <= ? "
        f"AND conversation_id IN ({placeholders(conversations)})"
    )


#: (id, conversation, time, body as bytes) of the transcript callbacks with ids in a range, in
#: arrival order. Parameters: the event type, the kind, the range (after, upto).
TRANSCRIPTS = (
    "SELECT id, conversation_id, coalesce(timestamp, received_at), CAST(body AS BLOB) "
    "FROM callbacks WHERE event_type = ? AND kind = ? AND id > ? AND id <= ? ORDER BY id"
)


#: (id, conversation, sha256) of every transcript callback: what content analysis read, for its
#: cache key. Parameters: the event type, the kind, ``max_id``.
TRANSCRIPT_SOURCES = (
    "SELECT id, conversation_id, sha256 FROM callbacks "
    "WHERE event_type = ? AND kind = ? AND id <= ? ORDER BY id"
)


def bodies(where: str) -> str:
    """(id, conversation, event type, time, arrival, body as bytes) of the callbacks matching
    ``where`` (with ``?`` placeholders, then two more for the range of ids: after, upto), in
    arrival order."""
    return (
        "SELECT id, conversation_id, event_type, coalesce(timestamp, received_at), received_at, "
        f"CAST(body AS BLOB) FROM callbacks WHERE {where} AND id > ? AND id <= ? ORDER BY id"
    )


#: Callbacks and distinct conversations of the snapshot. Parameters: the kind, ``max_id``.
COUNTS = (
    "SELECT count(*), count(DISTINCT CASE WHEN kind = ? THEN conversation_id END) "
    "FROM callbacks WHERE id <= ?"
)


#: The kinds that have an index of their own (a partial index each: they are few among the
#: callbacks, so finding them does not scan the table). A query uses it when it names the kind
#: as a literal: :func:`of_kind`.
INDEXED_KINDS = (ev.KIND_OBJECTIVE, ev.KIND_GUARDRAIL, ev.KIND_CANVAS)


def of_kind(kind: str) -> str:
    """``kind = '...'`` for one of :data:`INDEXED_KINDS`, as the partial index's own term."""
    if kind not in INDEXED_KINDS:
        raise ValueError(f"no index for kind {kind!r}")
    return f"kind = '{kind}'"


def per_conversation(kind: str) -> str:
    """(conversation, callbacks) of one indexed kind per conversation. Parameter: ``max_id``."""
    return (
        f"SELECT conversation_id, count(*) FROM callbacks WHERE {of_kind(kind)} AND id <= ? "
        "AND conversation_id IS NOT NULL GROUP BY conversation_id"
    )


def deliveries_per_conversation(kind: str) -> str:
    """(conversation, deliveries) of the callbacks of one indexed kind. Parameter: ``max_id``."""
    return (
        "SELECT x.conversation_id, count(*) FROM deliveries AS d JOIN (SELECT id, "
        f"conversation_id FROM callbacks WHERE {of_kind(kind)} AND id <= ? "
        "AND conversation_id IS NOT NULL) AS x ON x.id = d.callback_id GROUP BY x.conversation_id"
    )


def deliveries_of(kind: str) -> str:
    """(callback id, arrival) of every delivery of the callbacks of one indexed kind, in
    arrival order. Parameter: ``max_id``. Deliveries are read on every load: a callback
    delivered again gains one."""
    return (
        "SELECT d.callback_id, d.received_at FROM deliveries AS d JOIN (SELECT id FROM callbacks "
        f"WHERE {of_kind(kind)} AND id <= ?) AS x ON x.id = d.callback_id ORDER BY d.id"
    )


#: (id, sha256) of the first callback: with the database's place, what identifies it.
FIRST_CALLBACK = "SELECT id, sha256 FROM callbacks ORDER BY id LIMIT 1"

#: (id, sha256) of the last callback at or below an id (parameter): a cache of the facts of the
#: callbacks up to that id checks with it that they are still the same callbacks.
LAST_UPTO = "SELECT id, sha256 FROM callbacks WHERE id <= ? ORDER BY id DESC LIMIT 1"

#: Whether the database has ``annotations`` (one made before review labels has none until a
#: store opens it, which the read-only loader never does).
HAS_ANNOTATIONS = Query(
    sqlite="SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'annotations'",
    postgres="SELECT count(*) FROM (SELECT to_regclass('annotations') AS t) AS r "
    "WHERE t IS NOT NULL",
)
#: The annotations not removed, oldest first: (id, conversation, label, note, author, created).
ANNOTATIONS = (
    "SELECT id, conversation_id, label, note, author, created_at FROM annotations "
    "WHERE removed_at IS NULL ORDER BY id"
)
