"""Full-text search over transcript messages, on SQLite (FTS5) or PostgreSQL.

Every user and assistant message (with text content) of each stored
``application.transcription_ready`` callback is one row of the index. ``turn`` is the message's
index in the transcript list (0 is the system prompt), the same number as in the ``turns_view``
SQL view. Each search first brings the index up to date (``index_transcripts`` of the store).

On SQLite the index is ``transcript_fts`` (FTS5, Porter stemming, accents removed). On
PostgreSQL it is ``transcript_messages`` with a ``tsvector`` column and a GIN index, made by
:mod:`~tavus_analytics.pgstore`'s second migration (the ``tavus_english`` text search
configuration: Snowball English stemming, no stop words dropped, accents removed when the
``unaccent`` extension could be created). Both find the same messages for ordinary words and
phrases; the stemmers differ on a few rare words, and the score and the snippet's cut differ in
detail. PostgreSQL reads transcripts from ``body_json``: a body that ``jsonb`` cannot hold (a
``\\u0000`` escape) is kept but not indexed there.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from .database import is_postgres
from .errors import DatabaseNotFound, InvalidQuery
from .store import Store

if TYPE_CHECKING:
    from .pgstore import PgStore

ROLES = ("user", "assistant")

SEARCH_COLUMNS = ["conversation_id", "turn", "role", "snippet", "content", "callback_id", "score"]


def phrase_query(text: str) -> str:
    """``text`` as one FTS5 phrase: its words, in this order, whatever punctuation it holds.

    >>> phrase_query("refund, please?")
    '"refund, please?"'
    """
    return '"' + text.replace('"', '""') + '"'


@contextmanager
def _connection(db: str | Path | Store | sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    if isinstance(db, sqlite3.Connection):
        yield db
        return
    if isinstance(db, Store):
        db.index_transcripts()
        yield db.connection()
        return
    path = Path(db)
    if not path.is_file():
        raise DatabaseNotFound(path)
    with Store(path) as store:  # migrates an older database: the index is built on first use
        store.index_transcripts()
        yield store.connection()


def search(
    db: str | Path | Store | sqlite3.Connection | PgStore,
    query: str,
    *,
    role: str | None = None,
    conversation: str | None = None,
    limit: int | None = 20,
    fts: bool = False,
    before: str = "[",
    after: str = "]",
) -> pd.DataFrame:
    """Transcript messages matching ``query``, best match first.

    Parameters
    ----------
    db : str, Path, Store, sqlite3.Connection or PgStore
        The database: a SQLite file (it must exist; an older schema is migrated, which builds
        the index) or a ``postgresql://`` URL, or a store open on either.
    query : str
        The words to find, as a phrase (in this order, next to each other; case, accents and
        English word endings do not matter: ``refund`` also finds "Refunds"). With
        ``fts=True``, a query in the engine's own syntax instead: on SQLite FTS5's
        (``refund AND late``, ``"refund policy" OR cancel*``, ``NEAR(refund late, 5)``), on
        PostgreSQL ``to_tsquery``'s (``refund & late``, ``refund <-> policy | cancel:*``,
        ``refund & !cancel``).
    role : {"user", "assistant"}, optional
        Only messages of this role.
    conversation : str, optional
        Only this conversation.
    limit : int or None
        At most this many rows (``None``: all).
    fts : bool
        Pass ``query`` to the engine as written.
    before, after : str
        What surrounds each matching word in ``snippet``.

    Returns
    -------
    pandas.DataFrame
        One row per matching message (a message stored twice, in two transcript callbacks of
        the same conversation, appears once), the same columns on both engines:

        - ``conversation_id`` : str, the conversation.
        - ``turn`` : int64, the message's index in the transcript list (0 is the system prompt).
        - ``role`` : str, ``user`` or ``assistant``.
        - ``snippet`` : str, about 16 words around the match, matches marked with
          ``before``/``after``, ``…`` where text was cut.
        - ``content`` : str, the whole message.
        - ``callback_id`` : int64, the ``callbacks`` row holding the transcript.
        - ``score`` : float64, lower is a better match: FTS5's bm25 rank on SQLite, minus
          ``ts_rank`` on PostgreSQL. The two engines weigh words differently, so the order of
          the rows (and the words of the snippet) may differ between them; which messages
          match does not.

    Raises
    ------
    InvalidQuery
        When ``query`` is empty, or (with ``fts=True``) not valid in the engine's syntax.
    """
    if role is not None and role not in ROLES:
        raise InvalidQuery(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if not query or not query.strip():
        raise InvalidQuery("the search text is empty: give one or more words to find")
    if _on_postgres(db):
        rows = _search_postgres(db, query, role, conversation, limit, fts, before, after)
    else:
        rows = _search_sqlite(db, query, role, conversation, limit, fts, before, after)
    frame = pd.DataFrame(rows, columns=SEARCH_COLUMNS)
    return frame.astype(
        {
            "conversation_id": "str",
            "turn": "int64",
            "role": "str",
            "snippet": "str",
            "content": "str",
            "callback_id": "int64",
            "score": "float64",
        }
    )


def _invalid(query: str, error: object) -> InvalidQuery:
    return InvalidQuery(
        f"{query!r} is not a valid full-text query ({error}): drop --fts to search for the "
        "words as a phrase"
    )


def _search_sqlite(db, query, role, conversation, limit, fts, before, after) -> list[tuple]:
    match = query if fts else phrase_query(query)
    filters, args = "", {"q": match, "before": before, "after": after}
    if role is not None:
        filters += " AND role = :role"
        args["role"] = role
    if conversation is not None:
        filters += " AND conversation_id = :conversation"
        args["conversation"] = conversation
    sql = (
        "SELECT conversation_id, turn, role, "
        "snippet(transcript_fts, 0, :before, :after, '…', 16) AS snippet, content, "
        "callback_id, rank AS score FROM transcript_fts "
        f"WHERE transcript_fts MATCH :q{filters} AND rowid IN ("
        "SELECT min(rowid) FROM transcript_fts "
        f"WHERE transcript_fts MATCH :q{filters} GROUP BY conversation_id, turn, content) "
        "ORDER BY rank, conversation_id, turn"
    )
    if limit is not None:
        sql += " LIMIT :limit"
        args["limit"] = int(limit)
    with _connection(db) as conn:
        previous = conn.text_factory
        # A transcript may hold a lone surrogate escape, which SQLite turns into bytes that are
        # not UTF-8: show them as U+FFFD rather than fail.
        conn.text_factory = _text
        try:
            return conn.execute(sql, args).fetchall()
        except sqlite3.OperationalError as e:
            if "fts5" in str(e) or "syntax" in str(e) or "no such column" in str(e):
                raise _invalid(query, e) from None
            raise
        finally:
            conn.text_factory = previous


# -- PostgreSQL ---------------------------------------------------------------------------------
def _on_postgres(db: object) -> bool:
    if is_postgres(db):
        return True
    pgstore = sys.modules.get("tavus_analytics.pgstore")  # only loaded when PostgreSQL is used
    return pgstore is not None and isinstance(db, pgstore.PgStore)


#: phraseto_tsquery: the words side by side in this order, like an FTS5 phrase; punctuation
#: and quotes are no syntax (websearch_to_tsquery would read ``"``, ``or`` and ``-``).
_PG_SEARCH = r"""
WITH q AS (SELECT {parse}('tavus_english', %(q)s) AS q)
SELECT conversation_id, turn, role,
       ts_headline('tavus_english', content, q.q,
                   CASE WHEN cardinality(regexp_split_to_array(btrim(content), '\s+')) <= 16
                        THEN %(whole)s ELSE %(options)s END),
       content, callback_id, score
FROM (
    SELECT DISTINCT ON (m.conversation_id, m.turn, m.content)
           m.conversation_id, m.turn, m.role, m.content, m.callback_id,
           -ts_rank(m.tsv, q.q)::float8 AS score
    FROM transcript_messages AS m, q
    WHERE m.tsv @@ q.q{filters}
    ORDER BY m.conversation_id, m.turn, m.content, m.callback_id
) AS found, q
ORDER BY score, conversation_id, turn
"""


def _headline_options(before: str, after: str, *, whole: bool = False) -> str:
    """ts_headline's options: the ``whole`` message (one of at most 16 words, as FTS5 shows
    it), else a fragment of at most 16 words around the best match."""

    def quoted(value: str) -> str:
        return '"' + value.replace('"', '""') + '"'

    return f"StartSel={quoted(before)}, StopSel={quoted(after)}, " + (
        "HighlightAll=true" if whole else "MaxFragments=1, MaxWords=16, MinWords=15, ShortWord=0"
    )


def _ellipsis(snippet: str, content: str, before: str, after: str) -> str:
    """``…`` where ``snippet`` (a piece of ``content`` with marks) cuts the text, as FTS5 puts
    it; the end of the sentence when only punctuation was cut."""
    plain = snippet
    for mark in (before, after):
        if mark:
            plain = plain.replace(mark, "")
    at = content.find(plain) if plain else -1
    if at < 0:
        return snippet
    rest = content[at + len(plain) :]
    tail = rest.rstrip() if not any(ch.isalnum() for ch in rest) else "…"
    return ("…" if content[:at].strip() else "") + snippet + tail


def _search_postgres(db, query, role, conversation, limit, fts, before, after) -> list[tuple]:
    import psycopg

    from .pgstore import PgStore

    filters = ""
    args: dict = {
        "q": query,
        "options": _headline_options(before, after),
        "whole": _headline_options(before, after, whole=True),
    }
    if role is not None:
        filters += " AND m.role = %(role)s"
        args["role"] = role
    if conversation is not None:
        filters += " AND m.conversation_id = %(conversation)s"
        args["conversation"] = conversation
    sql = _PG_SEARCH.format(parse="to_tsquery" if fts else "phraseto_tsquery", filters=filters)
    if limit is not None:
        sql += "LIMIT %(limit)s"
        args["limit"] = int(limit)
    store = db if isinstance(db, PgStore) else PgStore(str(db))
    try:
        store.index_transcripts()
        with store.connection() as conn:
            try:
                with conn.transaction():
                    conn.execute("SET LOCAL statement_timeout = 0")  # a search is not a request
                    rows = conn.execute(sql, args).fetchall()
            except psycopg.errors.SyntaxError as e:
                raise _invalid(query, str(e).strip().splitlines()[0]) from None
    finally:
        if store is not db:
            store.close()
    return [
        (cid, turn, role_, _ellipsis(snippet, content, before, after), content, cb, score)
        for cid, turn, role_, snippet, content, cb, score in rows
    ]


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")
