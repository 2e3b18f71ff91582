"""Full-text search over transcript messages (SQLite FTS5).

The index is the ``transcript_fts`` table, made by the schema's second migration and kept in
step with ``callbacks`` by an ``AFTER INSERT`` trigger: every user and assistant message (with
text content) of each stored ``application.transcription_ready`` callback is one row. ``turn`` is
the message's index in the transcript list (0 is the system prompt), the same number as in the
``turns_view`` SQL view.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from .errors import DatabaseNotFound, InvalidQuery
from .store import Store

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
    db: str | Path | Store | sqlite3.Connection,
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
    db : str, Path, Store or sqlite3.Connection
        The database (a path must exist; an older schema is migrated, which builds the index).
    query : str
        The words to find, as a phrase (in this order, next to each other; case, accents and
        English word endings do not matter: ``refund`` also finds "Refunds"). With
        ``fts=True``, an FTS5 query instead: ``refund AND late``, ``"refund policy" OR
        cancel*``, ``NEAR(refund late, 5)``.
    role : {"user", "assistant"}, optional
        Only messages of this role.
    conversation : str, optional
        Only this conversation.
    limit : int or None
        At most this many rows (``None``: all).
    fts : bool
        Pass ``query`` to FTS5 as written.
    before, after : str
        What surrounds each matching word in ``snippet``.

    Returns
    -------
    pandas.DataFrame
        One row per matching message (a message stored twice, in two transcript callbacks of
        the same conversation, appears once):

        - ``conversation_id`` : str, the conversation.
        - ``turn`` : int64, the message's index in the transcript list (0 is the system prompt).
        - ``role`` : str, ``user`` or ``assistant``.
        - ``snippet`` : str, up to 16 words around the match, matches marked with
          ``before``/``after``, ``…`` where text was cut.
        - ``content`` : str, the whole message.
        - ``callback_id`` : int64, the ``callbacks`` row holding the transcript.
        - ``score`` : float64, FTS5's bm25 rank (lower is a better match).

    Raises
    ------
    InvalidQuery
        When ``query`` is empty, or (with ``fts=True``) not valid FTS5 syntax.
    """
    if role is not None and role not in ROLES:
        raise InvalidQuery(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if not query or not query.strip():
        raise InvalidQuery("the search text is empty: give one or more words to find")
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
            rows = conn.execute(sql, args).fetchall()
        except sqlite3.OperationalError as e:
            if "fts5" in str(e) or "syntax" in str(e) or "no such column" in str(e):
                raise InvalidQuery(
                    f"{query!r} is not a valid full-text query ({e}): drop --fts to search for "
                    "the words as a phrase"
                ) from None
            raise
        finally:
            conn.text_factory = previous
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


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")
