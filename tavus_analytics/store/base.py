"""What every store shares: the interfaces, the rows it writes and the rules for refusing.

Both engines store the same rows. :func:`callback_row` and :func:`rejected_row` build them
(the SQLite store passes them as tuples, the PostgreSQL store as named parameters), and
:func:`accept` is the one rule for what is refused: a body that is not a UTF-8 JSON object
(:func:`tavus_analytics.events.parse_body`).
"""

from __future__ import annotations

import dataclasses
import getpass
import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from ..errors import InvalidAnnotation
from ..events import Fields, classify, parse_body
from ..events import valid_utf8 as index_text

#: How much of a refused body is kept in ``rejected``.
REJECTED_BODY_LIMIT = 64 * 1024

#: Rows a reader's ``stream`` yields at a time, unless asked otherwise.
READ_CHUNK = 2000

#: The columns of ``callbacks`` besides ``id``, in the order the row builders give them.
CALLBACK_COLUMNS = (
    "received_at",
    "kind",
    "event_type",
    "message_type",
    "conversation_id",
    "replica_id",
    "video_id",
    "status",
    "timestamp",
    "body",
    "sha256",
    "remote_addr",
    "user_agent",
)
#: The columns of ``rejected`` besides ``id``, in the order :func:`rejected_row` gives them.
REJECTED_COLUMNS = (
    "received_at",
    "reason",
    "status",
    "content_type",
    "size",
    "body",
    "truncated",
    "remote_addr",
    "user_agent",
)


#: The columns of ``annotations`` as the stores read them back, ``id`` first.
ANNOTATION_COLUMNS = (
    "id",
    "conversation_id",
    "label",
    "note",
    "author",
    "created_at",
    "removed_at",
    "removed_by",
)
#: The longest label and note (and author) an annotation may have, in characters.
LABEL_LIMIT = 64
NOTE_LIMIT = 10_000
AUTHOR_LIMIT = 100
#: The state tables of live operations, made by a migration on both engines (``{text}``,
#: ``{real}``: the engine's types). Operational state, not history: ``migrate`` leaves them.
ALERT_STATE_TABLE = (
    "CREATE TABLE alert_state (rule {text} PRIMARY KEY, state {text} NOT NULL, "
    "changed_at {text} NOT NULL, checked_at {text} NOT NULL, value {real}, "
    "detail {text} NOT NULL DEFAULT '', notified {text} NOT NULL DEFAULT '')"
)
DIGEST_LEDGER_TABLE = (
    "CREATE TABLE digest_ledger (period {text} NOT NULL, period_start {text} NOT NULL, "
    "channel {text} NOT NULL, sent_at {text} NOT NULL, "
    "PRIMARY KEY (period, period_start, channel))"
)
#: The columns :meth:`StoreInterface.alert_states` returns, in order.
ALERT_STATE_COLUMNS = ("rule", "state", "changed_at", "checked_at", "value", "detail", "notified")
#: The tables of live operations' own state.
STATE_TABLES = ("alert_state", "digest_ledger")


def utc_now() -> str:
    """The current time as ISO 8601 UTC with milliseconds: ``2025-07-11T06:48:37.564Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def accept(body: bytes) -> Fields:
    """The index fields of a body the collector accepts; :class:`InvalidCallback` (saying why)
    for one it refuses."""
    return classify(parse_body(body))


#: Stored callbacks whose kind an older version may have decided otherwise: classified again
#: from their bodies when a database is migrated to the kinds of 2026.
RECLASSIFY_WHERE = (
    "kind = 'unknown' OR event_type IN ('canvas.interaction', "
    "'conversation.objective.completed') OR message_type = 'canvas' "
    "OR lower(event_type) LIKE '%guardrail%'"
)


def reclassified(rows: Iterable[tuple]) -> list[tuple[str, int]]:
    """``(new kind, id)`` of the ``(id, body, kind)`` rows whose body is now of another kind."""
    changed = []
    for cb_id, body, kind in rows:
        raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else bytes(body)
        try:
            new = accept(raw).kind
        except Exception:  # a body stored by an older version that no longer parses: leave it
            continue
        if new != kind:
            changed.append((new, cb_id))
    return changed


def callback_row(
    body: bytes,
    fields: Fields,
    received_at: str | None,
    remote_addr: str | None,
    user_agent: str | None,
) -> tuple:
    """The ``callbacks`` row of an accepted body, in :data:`CALLBACK_COLUMNS` order."""
    return (
        received_at or utc_now(),
        fields.kind,
        index_text(fields.event_type),
        index_text(fields.message_type),
        index_text(fields.conversation_id),
        index_text(fields.replica_id),
        index_text(fields.video_id),
        index_text(fields.status),
        index_text(fields.timestamp),
        body.decode("utf-8"),
        hashlib.sha256(body).hexdigest(),
        remote_addr,
        user_agent,
    )


def rejected_row(
    reason: str,
    status: int,
    body: bytes,
    size: int | None = None,
    content_type: str | None = None,
    remote_addr: str | None = None,
    user_agent: str | None = None,
    received_at: str | None = None,
) -> tuple:
    """The ``rejected`` row of a refused body, in :data:`REJECTED_COLUMNS` order: at most
    :data:`REJECTED_BODY_LIMIT` bytes of it are kept."""
    kept = bytes(body[:REJECTED_BODY_LIMIT])
    size = len(body) if size is None else size
    return (
        received_at or utc_now(),
        reason,
        status,
        content_type,
        size,
        kept,
        int(size > len(kept)),
        remote_addr,
        user_agent,
    )


def default_author() -> str:
    """Who annotates when nobody is named: the operating system's user (``getpass.getuser``),
    else ``unknown``."""
    try:
        return getpass.getuser() or "unknown"
    except Exception:  # no user name in the environment nor in the password database
        return "unknown"


def annotation_values(
    conversation_id: str, label: str | None, note: str | None, author: str | None
) -> tuple[str, str | None, str | None, str]:
    """``(conversation_id, label, note, author)`` as stored: a label's white space collapsed
    (one line), a note stripped, the author defaulting to :func:`default_author`;
    :class:`InvalidAnnotation` saying what to change otherwise."""
    if not isinstance(conversation_id, str) or not conversation_id.strip():
        raise InvalidAnnotation("give the id of the conversation to annotate")
    if label is not None:
        label = " ".join(str(label).split()) or None
    if note is not None:
        note = str(note).strip() or None
    if label is None and note is None:
        raise InvalidAnnotation("give a label, a note or both (neither can be empty)")
    if label is not None and len(label) > LABEL_LIMIT:
        raise InvalidAnnotation(
            f"a label is at most {LABEL_LIMIT} characters, not {len(label)}: put longer text "
            "in the note"
        )
    if note is not None and len(note) > NOTE_LIMIT:
        raise InvalidAnnotation(f"a note is at most {NOTE_LIMIT:,} characters, not {len(note):,}")
    return conversation_id.strip(), label, note, author_name(author)


def author_name(author: str | None) -> str:
    """Who annotates, on one line: ``author``, else :func:`default_author`."""
    name = " ".join(str(default_author() if author is None else author).split())
    if not name or len(name) > AUTHOR_LIMIT:
        raise InvalidAnnotation(f"the author is a name of 1 to {AUTHOR_LIMIT} characters")
    return name


def annotations_query(
    conversation_id: str | None, include_removed: bool, placeholder: str = "?"
) -> tuple[str, list]:
    """SQL and parameters reading annotations (:data:`ANNOTATION_COLUMNS`), oldest first."""
    where, args = [], []
    if conversation_id is not None:
        where.append(f"conversation_id = {placeholder}")
        args.append(conversation_id)
    if not include_removed:
        where.append("removed_at IS NULL")
    sql = f"SELECT {', '.join(ANNOTATION_COLUMNS)} FROM annotations"
    return sql + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id", args


def no_conversation(conversation_id: str, name: str) -> InvalidAnnotation:
    """The error for an annotation of a conversation the database holds no callback of."""
    return InvalidAnnotation(
        f"{name} holds no callback of conversation {conversation_id!r}: check the id "
        "(ds.conversations lists them)"
    )


def no_annotation(annotation_id: int, name: str) -> InvalidAnnotation:
    """The error for an annotation id that does not exist."""
    return InvalidAnnotation(
        f"{name} has no annotation {annotation_id}: tavus-analytics labels (or ds.annotations) "
        "lists them with their ids"
    )


class LiveState:
    """The alert states and the digest ledger of live operations, the same SQL on both engines
    (SQLite's ``?`` placeholders; PostgreSQL's store translates them). An engine gives
    ``_state_read(sql, params)`` (rows) and ``_state_write(sql, params)`` (the rows changed,
    in a transaction of its own)."""

    def _state_read(self, sql: str, params: tuple = ()) -> list[tuple]:
        raise NotImplementedError

    def _state_write(self, sql: str, params: tuple) -> int:
        raise NotImplementedError

    def alert_states(self) -> list[tuple]:
        """Every rule's row of ``alert_state``, in :data:`ALERT_STATE_COLUMNS` order, by rule."""
        return self._state_read(
            f"SELECT {', '.join(ALERT_STATE_COLUMNS)} FROM alert_state ORDER BY rule"
        )

    def note_alert_check(
        self, rule: str, checked_at: str, value: float | None, detail: str
    ) -> None:
        """Record a check of ``rule`` that changes nothing: its last value and when; a rule
        checked for the first time starts ``OK``."""
        self._state_write(
            "INSERT INTO alert_state (rule, state, changed_at, checked_at, value, detail) "
            "VALUES (?, 'OK', ?, ?, ?, ?) ON CONFLICT (rule) DO UPDATE SET "
            "checked_at = excluded.checked_at, value = excluded.value, detail = excluded.detail",
            (rule, checked_at, checked_at, value, detail),
        )

    def change_alert_state(
        self,
        rule: str,
        expected_changed_at: str,
        state: str,
        changed_at: str,
        value: float | None,
        detail: str,
    ) -> bool:
        """Move ``rule`` to ``state`` if it has not changed since ``expected_changed_at``;
        whether this call made the change (a checker that loses the race does not notify)."""
        return (
            self._state_write(
                "UPDATE alert_state SET state = ?, changed_at = ?, checked_at = ?, value = ?, "
                "detail = ?, notified = '' WHERE rule = ? AND changed_at = ?",
                (state, changed_at, changed_at, value, detail, rule, expected_changed_at),
            )
            == 1
        )

    def alert_notified(self, rule: str, changed_at: str, channels: str) -> None:
        """Record which channels (comma-separated names) were told of the change at
        ``changed_at`` (nothing when the rule has changed again since)."""
        self._state_write(
            "UPDATE alert_state SET notified = ? WHERE rule = ? AND changed_at = ?",
            (channels, rule, changed_at),
        )

    def claim_digest(self, period: str, period_start: str, channel: str, sent_at: str) -> bool:
        """Enter a digest in the ledger before sending it; False when it is there already
        (sent, or being sent, by an earlier run)."""
        return (
            self._state_write(
                "INSERT INTO digest_ledger (period, period_start, channel, sent_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (period, period_start, channel, sent_at),
            )
            == 1
        )

    def release_digest(self, period: str, period_start: str, channel: str) -> None:
        """Take a digest out of the ledger again: its sending failed, the next run retries."""
        self._state_write(
            "DELETE FROM digest_ledger WHERE period = ? AND period_start = ? AND channel = ?",
            (period, period_start, channel),
        )

    def digests_sent(self, period: str, period_start: str) -> dict[str, str]:
        """``{channel: sent_at}`` of the ledger's entries for one period."""
        return dict(
            self._state_read(
                "SELECT channel, sent_at FROM digest_ledger WHERE period = ? AND period_start = ?",
                (period, period_start),
            )
        )


def status_summary(conn) -> dict:
    """The status page's figures, read on ``conn`` (SQLite or PostgreSQL, the same SQL): counts
    by kind and event type, the rejected count and the last arrival."""
    by_type = conn.execute(
        "SELECT kind, coalesce(event_type, ''), count(*) FROM callbacks "
        "GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2"
    ).fetchall()
    last = conn.execute("SELECT max(received_at) FROM callbacks").fetchone()[0]
    rejected = conn.execute("SELECT count(*) FROM rejected").fetchone()[0]
    return {
        "callbacks": sum(n for _, _, n in by_type),
        "by_event_type": [{"kind": k, "event_type": t or None, "count": n} for k, t, n in by_type],
        "rejected": rejected,
        "last_received_at": last,
    }


@dataclass
class BatchResult:
    """Counts of one ``insert_batch`` call."""

    stored: int = 0
    duplicate: int = 0
    rejected: int = 0


@dataclasses.dataclass(frozen=True)
class Query:
    """One query in both dialects: SQLite's JSON functions on ``body``, PostgreSQL's jsonb
    operators on ``body_json``. A plain ``str`` query is SQLite text (``?`` placeholders) that
    the PostgreSQL reader translates, so that the table builders have one code path."""

    sqlite: str
    postgres: str


class StoreInterface(Protocol):
    """What the collector, the importers and ``migrate`` need of a store."""

    name: str

    def migrate(self) -> int: ...
    def insert_callback(
        self, body: bytes, fields=None, *, received_at=None, remote_addr=None, user_agent=None
    ) -> tuple[int, bool]: ...
    def insert_batch(
        self,
        bodies: Iterable,
        *,
        remote_addr: str | None = None,
        user_agent: str | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> BatchResult: ...
    def insert_rejected(self, reason: str, status: int, body: bytes, **kwargs) -> int: ...
    def same_event(self, key: tuple[str, str, str]) -> bool: ...
    def index_transcripts(self, *, chunk: int = 2000) -> int: ...
    def search_messages(
        self, query: str, *, role, conversation, limit, fts: bool, before: str, after: str
    ) -> list[tuple]: ...
    def ping(self) -> None: ...
    def check_writable(self) -> None: ...
    def count_callbacks(self) -> int: ...
    def summary(self) -> dict: ...
    def select_bodies(
        self, *, since=None, until=None, event_types=(), conversations=()
    ) -> list[tuple[int, str]]: ...
    def read_callbacks(self, after: int, limit: int) -> list[tuple]: ...
    def read_deliveries(self, callback_ids: Sequence[int]) -> list[tuple]: ...
    def read_rejected(self, after: int, limit: int) -> list[tuple]: ...
    def count_after(self, callback_id: int, rejected_id: int) -> int: ...
    def copy_progress(self, source: str) -> tuple[int, int]: ...
    def copy_in(self, source, callbacks, rejected, upto, deliveries=()) -> tuple[int, int]: ...
    def close(self) -> None: ...
    def canvas_interaction_ids(self, conversation_id: str) -> set[str]: ...
    def annotate(
        self,
        conversation_id: str,
        *,
        label: str | None = None,
        note: str | None = None,
        author: str | None = None,
        created_at: str | None = None,
    ) -> int: ...
    def remove_annotation(
        self, annotation_id: int, *, author: str | None = None, removed_at: str | None = None
    ) -> bool: ...
    def read_annotations(
        self, *, conversation_id: str | None = None, include_removed: bool = False
    ) -> list[tuple]: ...
    # live operations: each alert rule's state, and the ledger of digests sent
    def alert_states(self) -> list[tuple]: ...
    def note_alert_check(
        self, rule: str, checked_at: str, value: float | None, detail: str
    ) -> None: ...
    def change_alert_state(
        self,
        rule: str,
        expected_changed_at: str,
        state: str,
        changed_at: str,
        value: float | None,
        detail: str,
    ) -> bool: ...
    def alert_notified(self, rule: str, changed_at: str, channels: str) -> None: ...
    def claim_digest(self, period: str, period_start: str, channel: str, sent_at: str) -> bool: ...
    def release_digest(self, period: str, period_start: str, channel: str) -> None: ...
    def digests_sent(self, period: str, period_start: str) -> dict[str, str]: ...


class ReaderInterface(Protocol):
    """Read-only access for the loader, pinned to the rows present when it was opened.

    ``max_id`` is the highest callback id a dataset reads; ``settled`` whether every callback at
    or below it is known to be visible (a PostgreSQL reader that stopped waiting for an import
    in flight is not: nothing is then kept from its reads); ``location`` the SQLite file (a
    Path) or the PostgreSQL URL (a str); ``name`` the database as it may be shown.
    ``identity()`` says what makes the database this one (a cache of what is derived from it is
    keyed by it), ``beside()`` the folder beside it for such files, if it has one.
    """

    max_id: int
    name: str
    location: Path | str
    settled: bool

    def connect(self) -> AbstractContextManager[Any]: ...
    def identity(self) -> dict[str, Any]: ...
    def beside(self) -> Path | None: ...
    def query(self, sql: str | Query, params: Sequence = (), conn: Any = None) -> list[tuple]: ...
    def stream(
        self, sql: str | Query, params: Sequence = (), size: int = ...
    ) -> Iterator[list[tuple]]: ...
