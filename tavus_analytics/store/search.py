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

from pathlib import Path

import pandas as pd

from ..errors import InvalidQuery
from ..redact import redact_snippet, redact_text
from .base import StoreInterface

ROLES = ("user", "assistant")

SEARCH_COLUMNS = ["conversation_id", "turn", "role", "snippet", "content", "callback_id", "score"]


def phrase_query(text: str) -> str:
    """``text`` as one FTS5 phrase: its words, in this order, whatever punctuation it holds.

    >>> phrase_query("refund, please?")
    '"refund, please?"'
    """
    return '"' + text.replace('"', '""') + '"'


def search(
    db: str | Path | StoreInterface,
    query: str,
    *,
    role: str | None = None,
    conversation: str | None = None,
    limit: int | None = 20,
    fts: bool = False,
    before: str = "[",
    after: str = "]",
    redact: bool = False,
) -> pd.DataFrame:
    """Transcript messages matching ``query``, best match first.

    Parameters
    ----------
    db : str, Path or a store
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
    redact : bool
        Replace personal data in ``snippet`` and ``content`` by placeholders
        (:mod:`tavus_analytics.redact`); a snippet cut inside a phone or card number shows
        none of it. The stored transcripts are not changed.

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
    from . import open_store

    # A path or URL: open the store (it must exist; an older schema is migrated, which builds
    # the index), search, close it. A store: search on it.
    store = open_store(db, must_exist=True) if isinstance(db, (str, Path)) else db
    try:
        rows = store.search_messages(
            query,
            role=role,
            conversation=conversation,
            limit=limit,
            fts=fts,
            before=before,
            after=after,
        )
    finally:
        if store is not db:
            store.close()
    if redact:
        rows = [
            (cid, turn, role_, redact_snippet(snippet, content, before, after),
             redact_text(content), *rest)
            for cid, turn, role_, snippet, content, *rest in rows
        ]  # fmt: skip
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


def invalid_query(query: str, error: object) -> InvalidQuery:
    """The error for a full-text query the engine cannot parse."""
    return InvalidQuery(
        f"{query!r} is not a valid full-text query ({error}): drop --fts to search for the "
        "words as a phrase"
    )
