"""Raw callbacks to pandas tables: :func:`load` and :class:`Dataset`.

Everything here is derived from the raw ``callbacks`` rows at load time and nothing is written
back: a SQLite database is opened read-only (a ``file:...?mode=ro`` URI), a PostgreSQL one in
read-only sessions, so analysis never writes to it or blocks the collector. A :class:`Dataset`
is a snapshot: it reads only the rows that existed when it was made (``id <= max(id)`` at load
time; on PostgreSQL once the inserts then in flight have ended, see ``_PgReader._pin``), so its
tables agree with each other even while callbacks keep arriving.

Tables are built lazily, once, on first access (``functools.cached_property``), and each reads
only what it needs: ``ds.conversations`` works from the indexed columns, a narrow SQL
extraction for the shutdown reason (``json_extract`` on SQLite, ``#>>`` on PostgreSQL's
``body_json``), and one streaming pass over the transcription bodies (parsed with orjson, words
counted in bulk with numpy; a server-side cursor on PostgreSQL); it never builds ``ds.turns``.
The two databases are read through two readers with one interface (``_Reader``,
``_PgReader``): the table builders are the same code, only the SQL text differs, and the tables
are the same, row order included.

What cannot be interpreted (a body the database's JSON functions refuse, ``properties`` that is
not an object, a transcript that is not a list, a message that is not an object, a timestamp
that is not a time, a second transcript for the same call, ...) is left out of the derived table
and listed in ``ds.problems``; a load never fails because of one row.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import orjson
import pandas as pd

from . import events as ev
from . import metrics
from .config import Settings
from .database import display_url, is_postgres
from .errors import DatabaseNotFound, TavusAnalyticsError

__all__ = ["Dataset", "load", "count_words", "SHUTDOWN_CATEGORY_DTYPE", "TABLES"]

_PANDAS3 = int(pd.__version__.split(".")[0]) >= 3
try:
    import pyarrow as _pa
except ImportError:  # pragma: no cover - pyarrow is optional
    _pa = None
#: The dtype of text columns: pandas' default string dtype (``str`` on pandas 3, ``object`` on 2).
STR: Any = "str" if _PANDAS3 else object
#: The dtype of every timestamp column.
TIME = "datetime64[ns, UTC]"
_NAT = np.iinfo(np.int64).min  # NaT as int64 nanoseconds
# Whether text columns are Arrow-backed (pandas 3 with pyarrow): then they are built with
# pyarrow directly, which is several times faster than through pandas' checks.
_ARROW_STR = _pa is not None and getattr(pd.Series([], dtype=STR).dtype, "storage", "") == "pyarrow"
SHUTDOWN_CATEGORY_DTYPE = pd.CategoricalDtype(list(ev.SHUTDOWN_CATEGORIES))
OUTCOME_DTYPE = pd.CategoricalDtype(list(ev.OUTCOMES))
STATUS_DTYPE = pd.CategoricalDtype(["complete", "in_progress", "incomplete"])

_CHUNK = 2000  # transcription bodies parsed per batch

# -- table schemas (column -> dtype); the column names are part of the public API ---------------
_EVENTS = {
    "id": "int64",
    "received_at": TIME,
    "kind": STR,
    "event_type": STR,
    "message_type": STR,
    "conversation_id": STR,
    "replica_id": STR,
    "video_id": STR,
    "status": STR,
    "timestamp": TIME,
}
_CONVERSATIONS = {
    "conversation_id": STR,
    "replica_id": STR,
    "joined_at": TIME,
    "shutdown_at": TIME,
    "duration_s": "float64",
    "shutdown_reason": STR,
    "shutdown_category": SHUTDOWN_CATEGORY_DTYPE,
    "outcome": OUTCOME_DTYPE,
    "shutdown_error_step": "Int64",
    "status": STATUS_DTYPE,
    "has_transcript": "boolean",
    "has_recording": "boolean",
    "has_perception": "boolean",
    "user_turns": "Int64",
    "assistant_turns": "Int64",
    "user_words": "Int64",
    "assistant_words": "Int64",
    "system_prompt": "category",
    "recording_s3_key": STR,
    "first_seen": TIME,
    "last_seen": TIME,
}
_TURNS = {
    "conversation_id": STR,
    "turn": "int64",
    "role": STR,
    "content": STR,
    "words": "int64",
    "chars": "int64",
    "timestamp": TIME,
    "seconds_from_start": "float64",
    "duration": "float64",
    "inference_id": STR,
    "tool_call_id": STR,
    "tool_calls": STR,
}
_PERCEPTION = {
    "conversation_id": STR,
    "timestamp": TIME,
    "available": "boolean",
    "reason": STR,
    "analysis": STR,
    "words": "Int64",
    "appearance": STR,
    "behavior": STR,
    "emotions": STR,
    "screen_activity": STR,
    "sections": object,
}
_RECORDINGS = {
    "conversation_id": STR,
    "timestamp": TIME,
    "bucket_name": STR,
    "s3_key": STR,
    "duration": "float64",
    "storage_provider": STR,
    "storage_uri": STR,
    "uri": STR,
}
_REPLICAS = {
    "replica_id": STR,
    "status": STR,
    "received_at": TIME,
    "error_message": STR,
}
_VIDEOS = {
    "video_id": STR,
    "replica_id": STR,
    "video_name": STR,
    "status": STR,
    "status_details": STR,
    "created_at": TIME,
    "updated_at": TIME,
    "generation_s": "float64",
    "generation_progress": STR,
    "script": STR,
    "download_url": STR,
    "hosted_url": STR,
    "stream_url": STR,
    "error_details": STR,
    "callbacks": "int64",
}
_POST_CALL_ACTIONS = {
    "conversation_id": STR,
    "timestamp": TIME,
    "tool_id": STR,
    "tool_name": STR,
    "status": STR,
    "request": object,
    "request_body": object,
    "response": object,
}
_OTHER_EVENTS = {
    "conversation_id": STR,
    "event_type": STR,
    "timestamp": TIME,
    "properties": object,
}
_PROBLEMS = {
    "callback_id": "Int64",
    "conversation_id": STR,
    "event_type": STR,
    "table": STR,
    "problem": STR,
}
#: Every table of a :class:`Dataset` and its columns with their dtypes.
TABLES: dict[str, dict[str, Any]] = {
    "events": _EVENTS,
    "conversations": _CONVERSATIONS,
    "turns": _TURNS,
    "perception": _PERCEPTION,
    "recordings": _RECORDINGS,
    "replicas": _REPLICAS,
    "videos": _VIDEOS,
    "post_call_actions": _POST_CALL_ACTIONS,
    "other_events": _OTHER_EVENTS,
    "problems": _PROBLEMS,
}

#: Conversation event types that have a table of their own (everything else is ``other_events``).
_TABULATED = (
    ev.REPLICA_JOINED,
    ev.PAL_JOINED,
    ev.SHUTDOWN,
    ev.TRANSCRIPTION_READY,
    ev.RECORDING_READY,
    ev.PERCEPTION_ANALYSIS,
    ev.PERCEPTION_UNAVAILABLE,
    ev.POST_CALL_ACTION,
)


# -- building blocks -----------------------------------------------------------------------------
def _column(values: Any, dtype: Any, n: int) -> Any:
    """``values`` (a list, array, Series or ``None`` for all-NA) as an array of ``dtype``."""
    if values is None:
        values = [None] * n
    if isinstance(values, pd.Series) and not isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.array
    if dtype == TIME:
        return parse_times(values).array
    if dtype == "category" or isinstance(dtype, pd.CategoricalDtype):
        if isinstance(values, pd.Categorical) and (dtype == "category" or values.dtype == dtype):
            return values
        return pd.Categorical(values, dtype=None if dtype == "category" else dtype)
    if dtype is object:
        arr = np.empty(n, dtype=object)
        arr[:] = values if isinstance(values, np.ndarray) else list(values)
        return arr
    if dtype is STR:
        if _pa is not None and isinstance(values, (_pa.Array, _pa.ChunkedArray)):
            return pd.array(values, dtype=STR)
        if not isinstance(values, (list, np.ndarray)):
            values = list(values)
        if _ARROW_STR:
            try:
                arrow = _pa.array(values, type=_pa.large_string(), from_pandas=True)
                return pd.array(arrow, dtype=STR)
            except (_pa.ArrowInvalid, _pa.ArrowTypeError):
                pass  # not all text: let pandas convert (and say what is wrong)
        return pd.array(_objects(values), dtype=STR)
    if isinstance(values, pd.api.extensions.ExtensionArray) and values.dtype == dtype:
        return values
    if dtype in ("int64", "float64"):
        return np.asarray(values, dtype=dtype)
    return pd.array(values, dtype=dtype)


def _frame(schema: dict[str, Any], columns: dict[str, Any] | None = None) -> pd.DataFrame:
    """A DataFrame with exactly the columns of ``schema``, in order and of their dtype.

    ``columns`` maps names to values (lists, arrays or Series of one length); missing columns
    are all-NA. With no columns, the empty table.
    """
    columns = columns or {}
    n = len(next(iter(columns.values()))) if columns else 0
    data = {name: _column(columns.get(name), dtype, n) for name, dtype in schema.items()}
    return pd.DataFrame(data, index=pd.RangeIndex(n), columns=list(schema))


_TS_MIN = pd.Timestamp("1678-01-01", tz="UTC")
_TS_MAX = pd.Timestamp("2261-12-31", tz="UTC")


def _clip_ns(s: pd.Series) -> pd.Series:
    """A tz-aware Series in nanoseconds, with times nanoseconds cannot hold set to NaT."""
    bad = s.notna() & ((s < _TS_MIN) | (s > _TS_MAX))
    if bad.any():
        s = s.where(~bad)
    return s.dt.as_unit("ns")


def _numeric(v: Any) -> Any:
    return v if isinstance(v, (str, int, float)) and not isinstance(v, bool) else None


def parse_times(values: Any) -> pd.Series:
    """Parse timestamps in any of the shapes Tavus sends to tz-aware UTC (``datetime64[ns, UTC]``).

    Accepts ISO 8601 strings with or without a fraction and a zone (no zone means UTC, as in
    ``"2024-08-28 15:27:40.824457"``), Unix seconds as numbers or numeric strings (the per-message
    timestamps of newer transcripts), ``datetime`` objects and ``None``. What is not a time
    (or is outside the years 1678 to 2261) becomes ``NaT``.

    Returns
    -------
    pandas.Series of datetime64[ns, UTC], with a fresh RangeIndex.
    """
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.DatetimeTZDtype):
        return _clip_ns(values.reset_index(drop=True))
    if isinstance(values, np.ndarray) and values.dtype.kind == "M":  # naive: UTC
        return _clip_ns(pd.Series(values).dt.tz_localize("UTC"))
    obj = pd.Series(values, dtype=object).reset_index(drop=True)
    kind = pd.api.types.infer_dtype(obj, skipna=True)
    if kind == "empty":
        return pd.Series(pd.NaT, index=obj.index, dtype=TIME)
    if kind == "string":
        out = _clip_ns(pd.to_datetime(obj, format="ISO8601", utc=True, errors="coerce"))
        if not (out.isna() & obj.notna()).any():
            return out
    ns = np.full(len(obj), _NAT, dtype=np.int64)
    present = np.flatnonzero(obj.notna().to_numpy())
    values = obj.to_numpy()[present]
    kinds = np.fromiter(
        (2 if isinstance(v, str) else 1 if isinstance(v, datetime) else 0 for v in values),
        dtype=np.int8,
        count=len(values),
    )
    for k, parse in ((2, _iso), (1, lambda v: pd.to_datetime(v, utc=True, errors="coerce"))):
        where = kinds == k
        if where.any():
            ns[present[where]] = _clip_ns(pd.Series(parse(pd.Series(values[where])))).array.asi8
    # What is left: Unix seconds as numbers or numeric strings, within what ns can hold.
    rest = present[ns[present] == _NAT]
    if len(rest):
        num = pd.to_numeric(
            pd.Series([_numeric(v) for v in obj.to_numpy()[rest]], dtype=object), errors="coerce"
        ).to_numpy(dtype="float64")
        ok = (num >= -9.2e9) & (num <= 9.2e9)
        ns[rest[ok]] = np.round(num[ok] * 1e6).astype(np.int64) * 1000
    return pd.Series(ns.view("datetime64[ns]")).dt.tz_localize("UTC")


def _iso(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, format="ISO8601", utc=True, errors="coerce")


# Python's str.split() also separates on U+0085, U+00A0, U+1680, U+2000-200A, U+2028, U+2029,
# U+202F, U+205F and U+3000, so count_words does too (see _unicode_spaces).
_ASCII_SPACES = b" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"
# Byte classes for counting: 0 whitespace (and NUL, the separator of the texts), 1 anything
# else, 2 the first byte of a UTF-8 sequence that may be one of the Unicode spaces.
_CLASS = bytearray(b"\x01" * 256)
for _b in _ASCII_SPACES + b"\x00":
    _CLASS[_b] = 0
for _b in (0xC2, 0xE1, 0xE2, 0xE3):
    _CLASS[_b] = 2
_CLASS = bytes(_CLASS)


def count_words(texts: Sequence[str]) -> np.ndarray:
    """The number of words of each text: exactly ``len(text.split())``, computed in bulk.

    A word is a run of characters between whitespace (Python's definition, Unicode spaces
    included). The texts are joined into one UTF-8 buffer, separated by NUL bytes, and word
    starts are found with numpy, about twice as fast as splitting each text and without making
    an object per word.

    Returns
    -------
    numpy.ndarray of int64, one count per text.
    """
    if not texts:
        return np.zeros(0, dtype=np.int64)
    # Encoded one by one: a single non-ASCII text would make a joined str wide and slow.
    raw = b"\x00" + b"\x00".join([t.encode("utf-8", "surrogatepass") for t in texts]) + b"  "
    if raw.count(0) != len(texts):  # a text holds NUL, which is not a space
        return np.array([len(t.split()) for t in texts], dtype=np.int64)
    b = np.frombuffer(raw, dtype=np.uint8)
    cls = np.frombuffer(raw.translate(_CLASS), dtype=np.uint8)
    if not raw.isascii():
        cls = _unicode_spaces(b, cls)
    word = cls != 0
    # Word starts: a non-space byte after a space byte (p + 1 for each p found here).
    starts = np.flatnonzero(word[1:] > word[:-1]) + 1
    bounds = np.append(np.flatnonzero(b == 0), len(b))
    return np.diff(np.searchsorted(starts, bounds))


def _unicode_spaces(b: np.ndarray, cls: np.ndarray) -> np.ndarray:
    """Mark the bytes of U+0085, U+00A0, U+1680, U+2000-200A, U+2028, U+2029, U+202F, U+205F
    and U+3000 as spaces (class 0), and every other multi-byte character as a word byte."""
    cand = np.flatnonzero(cls == 2)
    cls = cls.copy()
    cls[cand] = 1
    cand = cand[cand + 2 < len(b)]  # the buffer ends with two spaces: never a candidate
    lead, b1, b2 = b[cand], b[cand + 1], b[cand + 2]
    two = (lead == 0xC2) & ((b1 == 0x85) | (b1 == 0xA0))
    e2 = (lead == 0xE2) & (
        ((b1 == 0x80) & (((b2 >= 0x80) & (b2 <= 0x8A)) | np.isin(b2, (0xA8, 0xA9, 0xAF))))
        | ((b1 == 0x81) & (b2 == 0x9F))
    )
    three = (
        e2
        | ((lead == 0xE1) & (b1 == 0x9A) & (b2 == 0x80))
        | ((lead == 0xE3) & (b1 == 0x80) & (b2 == 0x80))
    )
    for k, where in ((0, two | three), (1, two | three), (2, three)):
        cls[cand[where] + k] = 0
    return cls


def _loads(body: Any) -> Any:
    """Parse a stored body (orjson, then the standard library for what orjson refuses)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body.decode("utf-8", "surrogatepass") if isinstance(body, bytes) else body
        return json.loads(text)


def _content_text(content: Any) -> str | None:
    """The text of a message's ``content``: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            p["text"] if isinstance(p, dict) and isinstance(p.get("text"), str) else p
            for p in content
        ]
        if all(isinstance(p, str) for p in parts):
            return "\n".join(parts)
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    return orjson.dumps(value).decode() if not isinstance(value, str) else value


class _Problems:
    """Collects what a table builder skipped, and why."""

    def __init__(self, table: str) -> None:
        self.table = table
        self.rows: list[tuple] = []

    def add(self, callback_id, conversation_id, event_type, problem: str) -> None:
        self.rows.append((callback_id, conversation_id, event_type, self.table, problem))


# -- the readers ---------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _SQL:
    """One query in both dialects: SQLite's JSON functions on ``body``, PostgreSQL's jsonb
    operators on ``body_json``. Plain queries are SQLite text that :class:`_PgReader` translates
    (placeholders and SQLite-only words), so that the table builders have one code path."""

    sqlite: str
    postgres: str


class _Reader:
    """Read-only access to one SQLite database, pinned to the rows present when it was opened."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = str(path)
        if not path.is_file():
            raise DatabaseNotFound(path)
        self._immutable = False
        with self.connect() as conn:
            try:
                self.max_id = conn.execute("SELECT coalesce(max(id), 0) FROM callbacks").fetchone()[
                    0
                ]
            except sqlite3.DatabaseError as e:
                raise TavusAnalyticsError(
                    f"{path} is not a tavus-analytics database ({e}): point --db or "
                    "TAVUS_ANALYTICS_DB at the collector's database"
                ) from None

    @contextlib.contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        uri = "file:" + quote(str(self.path.resolve())) + "?mode=ro"
        try:
            conn = sqlite3.connect(uri + ("&immutable=1" if self._immutable else ""), uri=True)
            conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        except sqlite3.OperationalError:
            # A WAL database in a folder we cannot write to (no -shm file can be made): nobody
            # can be writing it either, so read it as an immutable file.
            self._immutable = True
            conn = sqlite3.connect(uri + "&immutable=1", uri=True)
        try:
            yield conn
        finally:
            conn.close()

    @staticmethod
    def sql(query: str | _SQL) -> str:
        return query.sqlite if isinstance(query, _SQL) else query

    def query(self, sql: str | _SQL, params: Sequence = (), conn: Any = None) -> list[tuple]:
        """All rows of ``sql`` (on ``conn`` when given, else on a connection of its own)."""
        if conn is not None:
            return conn.execute(self.sql(sql), (*params,)).fetchall()
        with self.connect() as conn:
            return conn.execute(self.sql(sql), (*params,)).fetchall()

    def stream(
        self, sql: str | _SQL, params: Sequence = (), size: int = _CHUNK
    ) -> Iterator[list[tuple]]:
        """The rows of ``sql`` in lists of at most ``size``."""
        with self.connect() as conn:
            cur = conn.execute(self.sql(sql), (*params,))
            while rows := cur.fetchmany(size):
                yield rows


@functools.lru_cache(maxsize=256)
def _pg_text(sql: str) -> str:
    """A plain SQLite query as PostgreSQL text: ``%s`` placeholders, no SQLite-only words."""
    sql = sql.replace("%", "%%").replace("?", "%s")
    return sql.replace("NOT INDEXED", "").replace("CAST(body AS BLOB)", "body")


def _first_line(exc: BaseException, secret: str | None) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line.replace(secret, "***") if secret else line


#: How long opening a PostgreSQL dataset waits for the writers it saw to finish.
_PIN_WAIT_S = 5.0


class _PgReader:
    """Read-only access to one PostgreSQL database (psycopg 3), with :class:`_Reader`'s methods.

    Every query runs in a read-only session of its own; :meth:`stream` reads through a
    server-side cursor, ``size`` rows per round trip, so no query holds every body in memory.
    """

    def __init__(self, url: str) -> None:
        import psycopg

        self._psycopg = psycopg
        self.url = url
        self.name = display_url(url)
        self._password = psycopg.conninfo.conninfo_to_dict(url).get("password") or None
        with self.connect() as conn:
            self.max_id = self._pin(conn)

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """psycopg's connection errors as one line naming the database (password masked)."""
        psycopg = self._psycopg
        try:
            yield
        except psycopg.errors.UndefinedTable as e:
            raise TavusAnalyticsError(
                f"{self.name} is not a tavus-analytics database "
                f"({_first_line(e, self._password)}): point --db or TAVUS_ANALYTICS_DB at the "
                "collector's database"
            ) from None
        except psycopg.OperationalError as e:
            raise TavusAnalyticsError(
                f"cannot read database {self.name}: {_first_line(e, self._password)}"
            ) from None

    @contextlib.contextmanager
    def connect(self) -> Iterator[Any]:
        psycopg = self._psycopg
        try:
            conn = psycopg.connect(
                self.url,
                autocommit=True,
                connect_timeout=10,
                application_name="tavus-analytics load",
                options="-c default_transaction_read_only=on",
            )
        except psycopg.Error as e:
            raise TavusAnalyticsError(
                f"cannot connect to database {self.name}: {_first_line(e, self._password)}"
            ) from None
        try:
            with self._errors():
                yield conn
        finally:
            conn.close()

    def _pin(self, conn: Any) -> int:
        """The highest id to read, once no row at or below it can still appear.

        Ids come from a sequence, and transactions commit out of id order: a row with a lower
        id than the highest one visible may still be uncommitted, and would turn up in a later
        query of this dataset. Every INSERT into ``callbacks`` holds ROW EXCLUSIVE on the table
        from before its id is drawn until it ends. So one statement reads ``max(id)`` and the
        transactions (of other sessions) holding that lock; any row with an id at or below
        ``max(id)`` that this statement could not see belongs to one of them, or has already
        committed. Then wait (:func:`tavus_analytics.pgstore.settled_top`: poll every few
        milliseconds, at most ``_PIN_WAIT_S``) until they have all ended. The collector's
        INSERTs are single-statement transactions, so the wait is milliseconds. (The transaction
        ids of ``pg_current_snapshot()`` alone would miss an INSERT that had drawn its id but not
        yet its transaction id, and would wait for the transactions of every other database of
        the server.) A batch that holds the lock for
        longer than the wait (an import, a ``migrate`` into this database) is left running:
        rows it commits later with lower ids may then appear in tables built later.
        """
        from .pgstore import settled_top

        return settled_top(conn, wait_s=_PIN_WAIT_S)[0]

    @staticmethod
    def sql(query: str | _SQL) -> str:
        return query.postgres if isinstance(query, _SQL) else _pg_text(query)

    def query(self, sql: str | _SQL, params: Sequence = (), conn: Any = None) -> list[tuple]:
        """All rows of ``sql`` (on ``conn`` when given, else on a connection of its own)."""
        if conn is not None:
            with self._errors():
                return conn.execute(self.sql(sql), (*params,)).fetchall()
        with self.connect() as conn:
            return conn.execute(self.sql(sql), (*params,)).fetchall()

    def stream(
        self, sql: str | _SQL, params: Sequence = (), size: int = _CHUNK
    ) -> Iterator[list[tuple]]:
        """The rows of ``sql`` in lists of at most ``size``, from a server-side cursor."""
        with (
            self.connect() as conn,
            conn.transaction(),
            conn.cursor(name="tavus_analytics_stream") as cur,
        ):
            cur.execute(self.sql(sql), (*params,))
            # The next chunk is fetched (the GIL released while waiting on the server) while
            # the caller works on this one.
            with ThreadPoolExecutor(max_workers=1) as pool:
                pending = pool.submit(cur.fetchmany, size)
                while rows := pending.result():
                    pending = pool.submit(cur.fetchmany, size)
                    yield rows


_AnyReader = _Reader | _PgReader


def _open_reader(db: str | Path) -> _AnyReader:
    return _PgReader(str(db)) if is_postgres(db) else _Reader(Path(db))


def _placeholders(values: Sequence) -> str:
    return ", ".join("?" for _ in values)


# -- table builders ------------------------------------------------------------------------------
def _read_events(reader: _AnyReader) -> pd.DataFrame:
    cols = [c for c in _EVENTS]
    rows = reader.query(
        f"SELECT {', '.join(cols)} FROM callbacks WHERE id <= ? ORDER BY id", (reader.max_id,)
    )
    data = dict(zip(cols, map(list, zip(*rows, strict=True)), strict=True)) if rows else {}
    return _frame(_EVENTS, data)


_JOINS = _placeholders(ev.JOIN_EVENTS)
# A full scan sorted in a temporary b-tree measures faster here than walking the
# conversation_id index, which visits the rows of the table in random order. ORDER BY: the
# order SQLite's GROUP BY gives anyway, made explicit for PostgreSQL (whose "C" collation
# orders text by bytes, as SQLite does).
_CONVERSATION_SQL = f"""
SELECT conversation_id,
       coalesce(min(CASE WHEN is_join THEN replica_id END), min(replica_id)),
       min(CASE WHEN is_join THEN ts END),
       -- 1 when the join timestamps differ in shape: then the text minimum is not the earliest
       CASE WHEN min(CASE WHEN is_join THEN ts END) <> max(CASE WHEN is_join THEN ts END)
            AND min(CASE WHEN is_join THEN length(ts) END)
                <> max(CASE WHEN is_join THEN length(ts) END) THEN 1 ELSE 0 END,
       min(received_at),
       max(received_at)
FROM (
    SELECT conversation_id, replica_id, received_at, event_type IN ({_JOINS}) AS is_join,
           coalesce(timestamp, received_at) AS ts
    FROM callbacks NOT INDEXED
    WHERE kind = ? AND id <= ? AND conversation_id IS NOT NULL
) AS calls
GROUP BY conversation_id
ORDER BY conversation_id
"""


# SQLite's json_type names for the jsonb_typeof names the code compares ('string' is 'text').
def _pg_type(path: str) -> str:
    """SQL for the SQLite ``json_type`` name of ``body_json``'s value at ``path`` (a text array
    such as ``{properties,s3_key}``); only 'string' (SQLite's 'text') and 'object' matter."""
    value = f"body_json #> '{path}'"
    return f"CASE jsonb_typeof({value}) WHEN 'string' THEN 'text' ELSE jsonb_typeof({value}) END"


# What the shutdown body holds: 'invalid' (the database's JSON functions cannot read it),
# 'properties' (properties is not an object), else the JSON type of shutdown_reason (NULL when
# absent), and its value. On PostgreSQL, body_json is NULL where jsonb cannot hold the body.
_SHUTDOWN_SQL = _SQL(
    sqlite="""
SELECT id, conversation_id, coalesce(timestamp, received_at),
       CASE WHEN NOT json_valid(body) THEN 'invalid'
            WHEN json_type(body, '$.properties') IS NOT 'object' THEN 'properties'
            ELSE json_type(body, '$.properties.shutdown_reason') END,
       CASE WHEN json_valid(body) THEN json_extract(body, '$.properties.shutdown_reason') END
FROM callbacks
WHERE event_type = ? AND kind = ? AND id <= ?
ORDER BY id
""",
    postgres=f"""
SELECT id, conversation_id, coalesce(timestamp, received_at),
       CASE WHEN body_json IS NULL THEN 'invalid'
            WHEN jsonb_typeof(body_json -> 'properties') IS DISTINCT FROM 'object'
            THEN 'properties'
            ELSE {_pg_type("{properties,shutdown_reason}")} END,
       body_json #>> '{{properties,shutdown_reason}}'
FROM callbacks
WHERE event_type = %s AND kind = %s AND id <= %s
ORDER BY id
""",
)
_PERCEPTION_SQL = _SQL(
    sqlite="""
SELECT id, conversation_id,
       CASE WHEN json_valid(body) THEN json_type(body, '$.properties.analysis') ELSE 'invalid' END
FROM callbacks
WHERE event_type = ? AND kind = ? AND id <= ?
ORDER BY id
""",
    postgres=f"""
SELECT id, conversation_id,
       CASE WHEN body_json IS NULL THEN 'invalid'
            ELSE {_pg_type("{properties,analysis}")} END
FROM callbacks
WHERE event_type = %s AND kind = %s AND id <= %s
ORDER BY id
""",
)
# Recordings: whether the body is readable, the JSON types of properties and of s3_key, and
# s3_key.
_RECORDING_SQL = _SQL(
    sqlite="""
SELECT id, conversation_id, coalesce(timestamp, received_at), json_valid(body),
       CASE WHEN json_valid(body) THEN json_type(body, '$.properties') END,
       CASE WHEN json_valid(body) THEN json_type(body, '$.properties.s3_key') END,
       CASE WHEN json_valid(body) THEN json_extract(body, '$.properties.s3_key') END
FROM callbacks
WHERE event_type = ? AND kind = ? AND id <= ?
ORDER BY id
""",
    postgres=f"""
SELECT id, conversation_id, coalesce(timestamp, received_at),
       CASE WHEN body_json IS NULL THEN 0 ELSE 1 END,
       jsonb_typeof(body_json -> 'properties'),
       {_pg_type("{properties,s3_key}")},
       body_json #>> '{{properties,s3_key}}'
FROM callbacks
WHERE event_type = %s AND kind = %s AND id <= %s
ORDER BY id
""",
)


def _latest(frame: pd.DataFrame, key: str, time: str) -> pd.DataFrame:
    """The last row per ``key`` in (``time``, ``id``) order (rows without a time come first)."""
    order = frame.sort_values([time, "id"], na_position="first", kind="stable")
    return order.drop_duplicates(key, keep="last")


def _columns(rows: list[tuple], n: int) -> list[np.ndarray]:
    """The columns of query rows as object arrays (``n`` empty arrays when there is no row)."""
    if not rows:
        return [np.empty(0, dtype=object) for _ in range(n)]
    out = []
    for col in zip(*rows, strict=True):
        arr = np.empty(len(col), dtype=object)
        arr[:] = col
        out.append(arr)
    return out


def _ns(times: pd.Series) -> np.ndarray:
    """Nanoseconds since the epoch (UTC) as int64; NaT is ``_NAT``."""
    return times.array.asi8


def _time_key(times: pd.Series, missing_last: bool = True) -> np.ndarray:
    """Nanoseconds since the epoch as int64, for sorting; NaT sorts last (or first)."""
    ns = _ns(times).copy()
    if missing_last:
        ns[ns == _NAT] = np.iinfo(np.int64).max
    return ns


def _first_per_group(groups: np.ndarray, *keys: np.ndarray) -> np.ndarray:
    """Row numbers of the first row of each group in ``keys`` order (the first key decides)."""
    if not len(groups):
        return np.empty(0, dtype=np.int64)
    order = np.lexsort((*reversed(keys), groups))
    g = groups[order]
    first = np.ones(len(g), dtype=bool)
    first[1:] = g[1:] != g[:-1]
    return order[first]


_JSON_PROBLEM = "body is not JSON that the database's JSON functions can read: skipped"


def _sql_side(reader: _AnyReader) -> dict[str, list[np.ndarray]]:
    """Every SQL query ``conversations`` needs, as columns; run in a thread beside the
    transcript pass (the database works with Python's GIL released, so the two use two cores)."""
    kind, top = ev.KIND_CONVERSATION, reader.max_id
    queries = {
        "calls": (_CONVERSATION_SQL, (*ev.JOIN_EVENTS, kind, top), 6),
        "shutdowns": (_SHUTDOWN_SQL, (ev.SHUTDOWN, kind, top), 5),
        "recordings": (_RECORDING_SQL, (ev.RECORDING_READY, kind, top), 7),
        "perception": (_PERCEPTION_SQL, (ev.PERCEPTION_ANALYSIS, kind, top), 3),
    }
    out = {}
    with reader.connect() as conn:
        for name, (sql, params, width) in queries.items():
            out[name] = _columns(reader.query(sql, params, conn), width)
    return out


def _read_conversations(reader: _AnyReader) -> tuple[pd.DataFrame, list[tuple]]:
    problems = _Problems("conversations")
    with ThreadPoolExecutor(max_workers=1) as pool:
        sql = pool.submit(_sql_side, reader)
        transcripts = _transcript_counts(reader, problems)
        q = sql.result()
    if not len(q["calls"][0]):
        return _frame(_CONVERSATIONS), problems.rows
    cid, replica, jmin, mixed, first, last = q["calls"]
    n = len(cid)
    index = pd.Index(cid, dtype=object)  # one row per conversation (GROUP BY)

    # The earliest join: the text minimum is the time minimum when every join timestamp of the
    # call has the same shape (one sender, one format); otherwise compare parsed times.
    joined_at = parse_times(jmin).copy()  # assigned into below (a view on pandas 2)
    mixed = mixed == 1
    if mixed.any():
        ids = cid[mixed].tolist()
        jc, jt = _columns(
            reader.query(
                "SELECT conversation_id, coalesce(timestamp, received_at) FROM callbacks "
                f"WHERE event_type IN ({_JOINS}) AND kind = ? AND id <= ? "
                f"AND conversation_id IN ({_placeholders(ids)})",
                (*ev.JOIN_EVENTS, ev.KIND_CONVERSATION, reader.max_id, *ids),
            ),
            2,
        )
        earliest = parse_times(jt).groupby(jc).min()
        joined_at[mixed] = earliest.reindex(cid[mixed]).to_numpy()
    has_join = ~pd.isna(jmin)
    for i in np.flatnonzero(has_join & joined_at.isna().to_numpy()):
        problems.add(None, cid[i], ev.REPLICA_JOINED, "join timestamp is not a time: join unknown")

    # Shutdown: the earliest shutdown of each call, with its reason (narrow SQL extraction).
    s_id, s_cid, s_time, s_type, s_reason = q["shutdowns"]
    s_at = parse_times(s_time)
    readable = s_type == "text"
    for i in np.flatnonzero(~readable | s_at.isna().to_numpy()):
        what = {
            "invalid": _JSON_PROBLEM,
            "properties": "properties is not an object",
            None: "no shutdown_reason",
            "text": "timestamp is not a time",
        }.get(s_type[i], "shutdown_reason is not text")
        problems.add(s_id[i], s_cid[i], ev.SHUTDOWN, what)
    s_reason = np.where(readable, s_reason, None)
    s_pos = index.get_indexer(s_cid)
    per_call = np.bincount(s_pos, minlength=n) if len(s_pos) else np.zeros(n, dtype=np.int64)
    for i in np.flatnonzero(per_call > 1):
        problems.add(
            None, cid[i], ev.SHUTDOWN, f"{per_call[i]} shutdown callbacks: the earliest is used"
        )
    firsts = _first_per_group(s_pos, _time_key(s_at), s_id.astype(np.int64))
    has_shutdown = per_call > 0
    shutdown_ns = np.full(n, _NAT, dtype=np.int64)
    shutdown_ns[s_pos[firsts]] = _ns(s_at)[firsts]
    joined_ns = _ns(joined_at)
    timed = (shutdown_ns != _NAT) & (joined_ns != _NAT)
    duration = np.full(n, np.nan)
    duration[timed] = (shutdown_ns[timed] - joined_ns[timed]) / 1e9
    reasons = np.full(n, None, dtype=object)
    reasons[s_pos[firsts]] = s_reason[firsts]

    status = np.where(
        has_join & has_shutdown, "complete", np.where(has_join, "in_progress", "incomplete")
    )
    columns: dict[str, Any] = {
        "conversation_id": cid,
        "replica_id": replica,
        "joined_at": joined_at,
        "shutdown_at": shutdown_ns.view("datetime64[ns]"),
        "duration_s": duration,
        "shutdown_reason": reasons,
        "status": status,
        "first_seen": first,
        "last_seen": last,
    }
    columns.update(_categorise(reasons, has_shutdown))

    # Transcripts (counted by the pass above): scatter into one row per call.
    t_pos = index.get_indexer(transcripts["conversation_id"])
    has_transcript = np.zeros(n, dtype=bool)
    has_transcript[t_pos] = True
    columns["has_transcript"] = has_transcript
    for name in ("user_turns", "assistant_turns", "user_words", "assistant_words"):
        values = np.zeros(n, dtype=np.int64)
        values[t_pos] = transcripts[name]
        columns[name] = pd.arrays.IntegerArray(values, ~has_transcript)
    codes = np.full(n, -1, dtype=np.int64)
    codes[t_pos] = transcripts["prompt_code"]
    columns["system_prompt"] = pd.Categorical.from_codes(
        codes, dtype=pd.CategoricalDtype(pd.Index(transcripts["prompts"], dtype=object))
    )

    # Recordings: the S3 key of the latest recording of each call.
    r_id, r_cid, r_time, r_valid, r_ptype, r_type, r_key = q["recordings"]
    for i in np.flatnonzero(r_valid != 1):
        problems.add(r_id[i], r_cid[i], ev.RECORDING_READY, _JSON_PROBLEM)
    r_pos = index.get_indexer(r_cid)
    has_recording = np.zeros(n, dtype=bool)
    has_recording[r_pos[r_ptype == "object"]] = True
    keyed = np.flatnonzero(r_type == "text")
    latest = keyed[
        _first_per_group(
            r_pos[keyed],
            -_time_key(parse_times(r_time[keyed]), missing_last=False),
            -r_id[keyed].astype(np.int64),
        )
    ]
    s3_key = np.full(n, None, dtype=object)
    s3_key[r_pos[latest]] = r_key[latest]
    columns["has_recording"] = has_recording
    columns["recording_s3_key"] = s3_key

    # Perception: an analysis that is text (perception_unavailable does not count).
    p_id, p_cid, p_type = q["perception"]
    for i in np.flatnonzero(p_type == "invalid"):
        problems.add(p_id[i], p_cid[i], ev.PERCEPTION_ANALYSIS, _JSON_PROBLEM)
    has_perception = np.zeros(n, dtype=bool)
    has_perception[index.get_indexer(p_cid[p_type == "text"])] = True
    columns["has_perception"] = has_perception
    return _frame(_CONVERSATIONS, columns), problems.rows


def _categorise(reasons: np.ndarray, has_shutdown: np.ndarray) -> dict[str, Any]:
    """shutdown_category, outcome and shutdown_error_step, computed once per distinct reason."""
    codes, unique = pd.factorize(reasons)  # few distinct reasons; -1: none
    category = [ev.shutdown_category(r) for r in unique]
    steps = []
    for r in unique:
        step = ev.shutdown_error_step(r)
        steps.append(int(step) if step is not None and step.isdigit() else None)
    outcome = [ev.CATEGORY_OUTCOME[c] for c in category]
    # A call that ended without a reason we can read ended for an unknown reason.
    none_outcome = np.where(has_shutdown, "unknown", None)

    def take(per_reason: list, missing: Any) -> np.ndarray:
        values = np.empty(len(per_reason) + 1, dtype=object)
        values[:-1] = per_reason
        values[-1] = None
        out = values[codes]  # code -1 picks the last slot: None
        if missing is not None:
            out[codes == -1] = missing[codes == -1]
        return out

    return {
        "shutdown_category": pd.Categorical(take(category, None), dtype=SHUTDOWN_CATEGORY_DTYPE),
        "outcome": pd.Categorical(take(outcome, none_outcome), dtype=OUTCOME_DTYPE),
        "shutdown_error_step": pd.array(take(steps, None), dtype="Int64"),
    }


def _transcript_rows(reader: _AnyReader) -> Iterator[list[tuple]]:
    return reader.stream(
        "SELECT id, conversation_id, coalesce(timestamp, received_at), CAST(body AS BLOB) "
        "FROM callbacks WHERE event_type = ? AND kind = ? AND id <= ? ORDER BY id",
        (ev.TRANSCRIPTION_READY, ev.KIND_CONVERSATION, reader.max_id),
    )


def _transcript_of(body: bytes, problems: _Problems, cid: Any, cb_id: int) -> list | None:
    """The transcript list of a transcription_ready body, or ``None`` (and a problem)."""
    try:
        obj = _loads(body)
    except (ValueError, RecursionError):
        problems.add(cb_id, cid, ev.TRANSCRIPTION_READY, "body is not JSON: skipped")
        return None
    props = obj.get("properties") if isinstance(obj, dict) else None
    if not isinstance(props, dict):
        problems.add(cb_id, cid, ev.TRANSCRIPTION_READY, "properties is not an object: skipped")
        return None
    transcript = props.get("transcript")
    if not isinstance(transcript, list):
        problems.add(cb_id, cid, ev.TRANSCRIPTION_READY, "transcript is not a list: skipped")
        return None
    return transcript


def _winners(ids: list, cids: list, times: list, problems: _Problems) -> np.ndarray:
    """Which transcripts count: the latest (sender's time, then arrival) per conversation."""
    keep = np.ones(len(ids), dtype=bool)
    dup = pd.Index(cids, dtype=object).duplicated(keep=False)
    if dup.any():
        frame = pd.DataFrame(
            {
                "id": ids,
                "conversation_id": pd.Series(cids, dtype=object),
                "time": parse_times(times).array,
            }
        )
        latest = set(_latest(frame[dup], "conversation_id", "time")["id"])
        for i in np.flatnonzero(dup):
            cb_id = frame.at[i, "id"]
            if cb_id not in latest:
                keep[i] = False
                problems.add(
                    int(cb_id),
                    frame.at[i, "conversation_id"],
                    ev.TRANSCRIPTION_READY,
                    "a later transcription_ready for the same conversation replaces this one",
                )
    return keep


def _transcript_counts(reader: _AnyReader, problems: _Problems) -> dict[str, Any]:
    """Turn and word counts and the system prompt of the transcript that counts for each call.

    Returns a dict of equal-length arrays (``conversation_id``, ``user_turns``,
    ``assistant_turns``, ``user_words``, ``assistant_words``, ``prompt_code``) and ``prompts``,
    the distinct system prompts that ``prompt_code`` indexes (-1: none).
    """
    # (callback id, conversation id, time, user turns, assistant turns, prompt code) each
    meta: list[tuple] = []
    prompts: dict[str, int] = {}  # system prompts repeat across calls: keep each once
    words: list[np.ndarray] = []
    for rows in _transcript_rows(reader):
        texts: list[str] = []
        for cb_id, cid, ts, body in rows:
            transcript = _transcript_of(body, problems, cid, cb_id)
            if transcript is None:
                continue
            try:  # the common case, in comprehensions: every message is an object
                roles = [m.get("role") for m in transcript]
                messages = transcript
            except AttributeError:
                messages = [m for m in transcript if type(m) is dict]
                roles = [m.get("role") for m in messages]
                problems.add(
                    cb_id,
                    cid,
                    ev.TRANSCRIPTION_READY,
                    f"{len(transcript) - len(messages)} transcript messages are not objects: "
                    "skipped",
                )
            user = [m.get("content") for m, r in zip(messages, roles, strict=True) if r == "user"]
            assistant = [
                m.get("content") for m, r in zip(messages, roles, strict=True) if r == "assistant"
            ]
            code = -1
            if "system" in roles:
                prompt = messages[roles.index("system")].get("content")
                if type(prompt) is not str:
                    prompt = _content_text(prompt)
                if prompt is not None:
                    code = prompts.setdefault(prompt, len(prompts))
            meta.append((cb_id, cid, ts, len(user), len(assistant), code))
            texts.append(_joined_text(user))
            texts.append(_joined_text(assistant))
        words.append(count_words(texts))
    counts = np.concatenate(words) if words else np.zeros(0, dtype=np.int64)
    ids, cids, times, user_turns, assistant_turns, codes = (
        map(list, zip(*meta, strict=True)) if meta else ([] for _ in range(6))
    )
    keep = _winners(ids, cids, times, problems)
    cid_arr = np.empty(len(cids), dtype=object)
    cid_arr[:] = cids
    return {
        "conversation_id": cid_arr[keep],
        "user_turns": np.asarray(user_turns, dtype=np.int64)[keep],
        "assistant_turns": np.asarray(assistant_turns, dtype=np.int64)[keep],
        "user_words": counts[0::2][keep],
        "assistant_words": counts[1::2][keep],
        "prompt_code": np.asarray(codes, dtype=np.int64)[keep],
        "prompts": list(prompts),
    }


def _joined_text(contents: list) -> str:
    """The text of messages' contents, joined by spaces (which adds no word)."""
    try:
        return " ".join(contents)
    except TypeError:  # some content is null, a list of parts or something else
        texts = (c if type(c) is str else _content_text(c) for c in contents)
        return " ".join(t for t in texts if t)


def _read_turns(reader: _AnyReader) -> pd.DataFrame:
    scratch = _Problems("turns")  # the same problems are reported by ds.conversations
    meta: list[tuple] = []  # (callback id, conversation id, time, messages) per transcript
    roles: list[Any] = []
    contents: list[str | None] = []
    extra: dict[str, list] = {name: [] for name in _EXTRA_FIELDS}
    words: list[np.ndarray] = []
    chars: list[np.ndarray] = []
    arrow: list[Any] = []  # content as Arrow arrays, when text columns are Arrow-backed
    for rows in _transcript_rows(reader):
        chunk: list[Any] = []
        for cb_id, cid, ts, body in rows:
            transcript = _transcript_of(body, scratch, cid, cb_id)
            if transcript is None:
                continue
            try:  # the common case, in comprehensions: every message is an object
                roles.extend([m.get("role") for m in transcript])
                messages = transcript
            except AttributeError:
                messages = [m for m in transcript if type(m) is dict]
                roles.extend([m.get("role") for m in messages])
            meta.append((cb_id, cid, ts, len(messages)))
            chunk.extend([m.get("content") for m in messages])
            if messages and max(map(len, messages)) > 2:  # newer payloads: per-message fields
                for name in _EXTRA_FIELDS:
                    extra[name].extend([m.get(name) for m in messages])
            else:
                nones = [None] * len(messages)
                for name in _EXTRA_FIELDS:
                    extra[name].extend(nones)
        for i in [i for i, c in enumerate(chunk) if type(c) is not str]:
            chunk[i] = _content_text(chunk[i])
        texts = [c if c is not None else "" for c in chunk]
        words.append(count_words(texts))
        chars.append(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)))
        if _ARROW_STR:  # keep the text in Arrow, chunk by chunk, not twice at the end
            arrow.append(_pa.array(chunk, type=_pa.large_string(), from_pandas=True))
        else:
            contents.extend(chunk)
    if not meta:
        return _frame(_TURNS)
    ids, cids, times, counts = (list(c) for c in zip(*meta, strict=True))
    counts_arr = np.asarray(counts, dtype=np.int64)
    keep = np.repeat(_winners(ids, cids, times, scratch), counts_arr)
    total = int(counts_arr.sum())
    starts = np.repeat(np.cumsum(counts_arr) - counts_arr, counts_arr)
    cid_arr = np.empty(len(cids), dtype=object)
    cid_arr[:] = cids
    for i in [i for i, r in enumerate(roles) if type(r) is not str]:
        roles[i] = ev.scalar_text(roles[i])
    col: dict[str, Any] = {
        "conversation_id": np.repeat(cid_arr, counts_arr),
        "turn": np.arange(total, dtype=np.int64) - starts,
        "role": roles,
        "content": _pa.chunked_array(arrow, type=_pa.large_string()) if _ARROW_STR else contents,
        "words": np.concatenate(words),
        "chars": np.concatenate(chars),
        "timestamp": extra["timestamp"],
        "seconds_from_start": _convert(extra["seconds_from_start"], _number),
        "duration": _convert(extra["duration"], _number),
        "inference_id": _convert(extra["inference_id"], ev.scalar_text),
        "tool_call_id": _convert(extra["tool_call_id"], ev.scalar_text),
        "tool_calls": _convert(extra["tool_calls"], _json_text),
    }
    del roles, contents, extra
    if not keep.all():
        col = {k: _keep(v, keep) for k, v in col.items()}
    return _frame(_TURNS, col)


def _keep(values: Any, mask: np.ndarray) -> Any:
    if _pa is not None and isinstance(values, _pa.ChunkedArray):
        return values.filter(_pa.array(mask))
    return _objects(values)[mask]


def _objects(values: Any) -> np.ndarray:
    if isinstance(values, np.ndarray):
        return values
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    return arr


def _convert(values: list, convert) -> np.ndarray:
    """``convert`` applied to the values that are not None (most are, in older payloads)."""
    arr = _objects(values)
    present = np.flatnonzero(pd.notna(arr))
    if len(present):
        arr[present] = [convert(v) for v in arr[present]]
    return arr


_EXTRA_FIELDS = (
    "timestamp",
    "seconds_from_start",
    "duration",
    "inference_id",
    "tool_call_id",
    "tool_calls",
)


def _bodies(reader: _AnyReader, where: str, params: Sequence) -> Iterator[tuple]:
    """(id, conversation_id, event_type, time, received_at, parsed body or exception)."""
    for rows in reader.stream(
        "SELECT id, conversation_id, event_type, coalesce(timestamp, received_at), received_at, "
        f"CAST(body AS BLOB) FROM callbacks WHERE {where} AND id <= ? ORDER BY id",
        (*params, reader.max_id),
    ):
        for cb_id, cid, et, ts, received, body in rows:
            try:
                obj: Any = _loads(body)
            except (ValueError, RecursionError) as e:
                obj = e
            yield cb_id, cid, et, ts, received, obj


def _props(obj: Any, problems: _Problems, cb_id, cid, et) -> dict | None:
    if isinstance(obj, Exception):
        problems.add(cb_id, cid, et, "body is not JSON: skipped")
        return None
    props = obj.get("properties") if isinstance(obj, dict) else None
    if not isinstance(props, dict):
        problems.add(cb_id, cid, et, "properties is not an object: skipped")
        return None
    return props


# Bold Markdown spans are the section headers, as in Tavus's own example app
# ("**User Appearance**", "**Emotional States & Patterns:**").
_HEADER = re.compile(r"\*\*(?P<title>[^*\n]{1,200}?)\*\*[ \t]*:?")
_MARKERS = re.compile(r"(?:^|\n)[ \t]*(?:[-*+]|\d+[.)]|#{1,6})?[ \t]*$")
_SECTION_NAMES = (
    ("appearance", "appearance"),
    ("behavio", "behavior"),
    ("emotion", "emotions"),
    ("screen", "screen_activity"),
)


def split_sections(analysis: str) -> dict[str, str]:
    """Split a perception analysis on its bold headers: ``{header: text}`` in order.

    The text before the first header is kept under ``""`` (Tavus's "Here's a summary of the
    visual observations..." preamble).
    """
    sections: dict[str, str] = {}
    matches = list(_HEADER.finditer(analysis))
    pre = _MARKERS.sub("", analysis[: matches[0].start()]) if matches else analysis
    if pre.strip():
        sections[""] = pre.strip()
    for i, m in enumerate(matches):
        title = m.group("title").strip().rstrip(":").strip()
        end = matches[i + 1].start() if i + 1 < len(matches) else len(analysis)
        # Drop the list marker or heading mark that introduces the next header.
        text = _MARKERS.sub("", analysis[m.end() : end]).strip()
        if title in sections:
            sections[title] = (sections[title] + "\n" + text).strip()
        else:
            sections[title] = text
    return sections


def _standard_sections(sections: dict[str, str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {name: None for _, name in _SECTION_NAMES}
    for title, text in sections.items():
        low = title.lower()
        for needle, name in _SECTION_NAMES:
            if needle in low and out[name] is None:
                out[name] = text
                break
    return out


def _read_perception(reader: _AnyReader) -> tuple[pd.DataFrame, list[tuple]]:
    problems = _Problems("perception")
    rows: list[dict] = []
    types = (ev.PERCEPTION_ANALYSIS, ev.PERCEPTION_UNAVAILABLE)
    for cb_id, cid, et, ts, _, obj in _bodies(
        reader,
        f"kind = ? AND event_type IN ({_placeholders(types)})",
        (ev.KIND_CONVERSATION, *types),
    ):
        props = _props(obj, problems, cb_id, cid, et)
        if props is None:
            continue
        if et == ev.PERCEPTION_UNAVAILABLE:
            rows.append(
                {
                    "conversation_id": cid,
                    "timestamp": ts,
                    "available": False,
                    "reason": ev.scalar_text(props.get("reason")),
                }
            )
            continue
        analysis = props.get("analysis")
        if not isinstance(analysis, str):
            problems.add(cb_id, cid, et, "analysis is not text: skipped")
            continue
        sections = split_sections(analysis)
        rows.append(
            {
                "conversation_id": cid,
                "timestamp": ts,
                "available": True,
                "analysis": analysis,
                "sections": sections,
                **_standard_sections(sections),
            }
        )
    if not rows:
        return _frame(_PERCEPTION), problems.rows
    data = {k: [r.get(k) for r in rows] for k in _PERCEPTION}
    analyses = [a for a in data["analysis"] if a is not None]
    counted = iter(count_words(analyses))
    data["words"] = [next(counted) if a is not None else None for a in data["analysis"]]
    return _frame(_PERCEPTION, data), problems.rows


def _read_recordings(reader: _AnyReader) -> tuple[pd.DataFrame, list[tuple]]:
    problems = _Problems("recordings")
    rows = []
    for cb_id, cid, et, ts, _, obj in _bodies(
        reader, "kind = ? AND event_type = ?", (ev.KIND_CONVERSATION, ev.RECORDING_READY)
    ):
        props = _props(obj, problems, cb_id, cid, et)
        if props is None:
            continue
        bucket = ev.scalar_text(props.get("bucket_name"))
        key = ev.scalar_text(props.get("s3_key"))
        uri = ev.scalar_text(props.get("storage_uri"))
        if uri is None and key is not None:
            uri = f"s3://{bucket}/{key}" if bucket else key
        rows.append(
            {
                "conversation_id": cid,
                "timestamp": ts,
                "bucket_name": bucket,
                "s3_key": key,
                "duration": _number(props.get("duration")),
                "storage_provider": ev.scalar_text(props.get("storage_provider")),
                "storage_uri": ev.scalar_text(props.get("storage_uri")),
                "uri": uri,
            }
        )
    data = {k: [r[k] for r in rows] for k in _RECORDINGS} if rows else None
    return _frame(_RECORDINGS, data), problems.rows


def _read_post_call_actions(reader: _AnyReader) -> tuple[pd.DataFrame, list[tuple]]:
    problems = _Problems("post_call_actions")
    rows = []
    for cb_id, cid, et, ts, _, obj in _bodies(
        reader, "kind = ? AND event_type = ?", (ev.KIND_CONVERSATION, ev.POST_CALL_ACTION)
    ):
        props = _props(obj, problems, cb_id, cid, et)
        if props is None:
            continue
        request = props.get("request")
        body = request.get("body") if isinstance(request, dict) else None
        if isinstance(body, str):
            # A string body that is not JSON stays a string.
            with contextlib.suppress(ValueError, RecursionError):
                body = _loads(body)
        rows.append(
            {
                "conversation_id": cid,
                "timestamp": ts,
                "tool_id": ev.scalar_text(props.get("tool_id")),
                "tool_name": ev.scalar_text(props.get("tool_name")),
                "status": ev.scalar_text(props.get("status")),
                "request": request,
                "request_body": body,
                "response": props.get("response"),
            }
        )
    data = {k: [r[k] for r in rows] for k in _POST_CALL_ACTIONS} if rows else None
    return _frame(_POST_CALL_ACTIONS, data), problems.rows


def _read_other_events(reader: _AnyReader) -> tuple[pd.DataFrame, list[tuple]]:
    problems = _Problems("other_events")
    rows = []
    for cb_id, cid, et, ts, _, obj in _bodies(
        reader,
        f"kind = ? AND event_type NOT IN ({_placeholders(_TABULATED)})",
        (ev.KIND_CONVERSATION, *_TABULATED),
    ):
        if isinstance(obj, Exception):
            problems.add(cb_id, cid, et, "body is not JSON: skipped")
            continue
        rows.append(
            {
                "conversation_id": cid,
                "event_type": et,
                "timestamp": ts,
                "properties": obj.get("properties") if isinstance(obj, dict) else None,
            }
        )
    data = {k: [r[k] for r in rows] for k in _OTHER_EVENTS} if rows else None
    return _frame(_OTHER_EVENTS, data), problems.rows


def _read_replicas(reader: _AnyReader) -> tuple[pd.DataFrame, list[tuple]]:
    problems = _Problems("replicas")
    rows = []
    for cb_id, _, et, _, received, obj in _bodies(reader, "kind = ?", (ev.KIND_REPLICA_TRAINING,)):
        if not isinstance(obj, dict):
            problems.add(cb_id, None, et, "body is not JSON: skipped")
            continue
        rows.append(
            {
                "replica_id": ev.scalar_text(obj.get("replica_id")),
                "status": ev.scalar_text(obj.get("status")),
                "received_at": received,
                "error_message": ev.scalar_text(obj.get("error_message")),
            }
        )
    data = {k: [r[k] for r in rows] for k in _REPLICAS} if rows else None
    return _frame(_REPLICAS, data), problems.rows


def _read_videos(reader: _AnyReader) -> tuple[pd.DataFrame, list[tuple]]:
    problems = _Problems("videos")
    rows = []
    for cb_id, _, et, _, received, obj in _bodies(reader, "kind = ?", (ev.KIND_VIDEO,)):
        if not isinstance(obj, dict):
            problems.add(cb_id, None, et, "body is not JSON: skipped")
            continue
        data = obj.get("data")
        script = data.get("script") if isinstance(data, dict) else None
        rows.append(
            {
                "id": cb_id,
                "received_at": received,
                "video_id": ev.scalar_text(obj.get("video_id")),
                "replica_id": ev.scalar_text(obj.get("replica_id")),
                "video_name": ev.scalar_text(obj.get("video_name")),
                "status": ev.scalar_text(obj.get("status")),
                "status_details": ev.scalar_text(obj.get("status_details")),
                "created_at": ev.scalar_text(obj.get("created_at")),
                "updated_at": ev.scalar_text(obj.get("updated_at")),
                "generation_progress": ev.scalar_text(obj.get("generation_progress")),
                "script": ev.scalar_text(script),
                "download_url": ev.scalar_text(obj.get("download_url")),
                "hosted_url": ev.scalar_text(obj.get("hosted_url")),
                "stream_url": ev.scalar_text(obj.get("stream_url")),
                "error_details": _json_text(obj.get("error_details")),
            }
        )
    if not rows:
        return _frame(_VIDEOS), problems.rows
    frame = pd.DataFrame(rows)
    frame["callbacks"] = frame.groupby("video_id", dropna=False)["id"].transform("size")
    for name in ("created_at", "updated_at", "received_at"):
        frame[name] = parse_times(frame[name]).array
    frame["order"] = frame["updated_at"].fillna(frame["received_at"])
    latest = _latest(frame, "video_id", "order").sort_values("id")
    latest["generation_s"] = (latest["updated_at"] - latest["created_at"]).dt.total_seconds()
    return _frame(_VIDEOS, {c: latest[c] for c in latest.columns}), problems.rows


# -- the public API ------------------------------------------------------------------------------
def _utc(value: Any) -> pd.Timestamp | None:
    if value is None:
        return None
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


class Dataset:
    """The tables of one database of Tavus callbacks, built lazily and kept once built.

    Make one with :func:`load`. Tables are attributes (``ds.conversations``, ``ds.turns``, ...);
    each is computed on first access only, so using ``ds.conversations`` alone never pays for
    ``ds.turns``. Metrics are methods that delegate to :mod:`tavus_analytics.metrics`.
    :meth:`filter` restricts every table and metric to a time range and to replica ids.

    Parameters
    ----------
    path : str or Path
        The SQLite database written by the collector, or the URL of its PostgreSQL database
        (``postgresql://user:password@host:port/database``).

    Attributes
    ----------
    path : Path or str
        The SQLite file (a Path), or the PostgreSQL URL (a str, password included: show
        :attr:`name` instead).
    name : str
        The database as it may be shown: the file, or the URL with its password masked.
    """

    def __init__(self, path: str | Path, *, _root: Dataset | None = None, **filters: Any) -> None:
        self.path: Path | str = str(path) if is_postgres(path) else Path(path)
        self._root = _root
        self._reader = _open_reader(self.path) if _root is None else _root._reader
        self.name = self._reader.name
        self._problem_rows: dict[str, list[tuple]] = {}
        self._since: pd.Timestamp | None = filters.get("since")
        self._until: pd.Timestamp | None = filters.get("until")
        self._replica_ids: frozenset[str] | None = filters.get("replicas")

    @property
    def filters(self) -> dict[str, Any]:
        """The filters applied: ``since``, ``until`` (UTC timestamps) and ``replicas`` (ids)."""
        return {"since": self._since, "until": self._until, "replicas": self._replica_ids}

    # -- filters ------------------------------------------------------------------------------
    @property
    def filtered(self) -> bool:
        """Whether this dataset is restricted by :meth:`filter`."""
        return self._root is not None

    def filter(
        self,
        *,
        since: Any = None,
        until: Any = None,
        replicas: Iterable[str] | str | None = None,
    ) -> Dataset:
        """The same data restricted to a time range and to some replicas.

        Conversations are kept when their ``joined_at`` (or ``first_seen`` when no join arrived)
        is within ``[since, until)`` and their ``replica_id`` is one of ``replicas``; turns,
        perception, recordings, post-call actions and their events follow their conversation.
        Replica training callbacks are placed by ``received_at``, videos by ``created_at``.
        Filters combine with the filters already applied.

        Parameters
        ----------
        since, until : str, datetime or pandas.Timestamp, optional
            Bounds (``since`` inclusive, ``until`` exclusive); a time without a zone is UTC.
        replicas : str or iterable of str, optional
            Replica ids to keep.
        """
        root = self._root or self
        new_since, new_until = _utc(since), _utc(until)
        if self._since is not None and (new_since is None or self._since > new_since):
            new_since = self._since
        if self._until is not None and (new_until is None or self._until < new_until):
            new_until = self._until
        reps = None
        if replicas is not None:
            reps = frozenset([replicas] if isinstance(replicas, str) else replicas)
        if self._replica_ids is not None:
            reps = self._replica_ids if reps is None else self._replica_ids & reps
        return Dataset(root.path, _root=root, since=new_since, until=new_until, replicas=reps)

    def _time_mask(self, times: pd.Series) -> np.ndarray:
        mask = np.ones(len(times), dtype=bool)
        if self._since is not None:
            mask &= (times >= self._since).to_numpy(dtype=bool)
        if self._until is not None:
            mask &= (times < self._until).to_numpy(dtype=bool)
        return mask

    def _replica_mask(self, replicas: pd.Series) -> np.ndarray:
        if self._replica_ids is None:
            return np.ones(len(replicas), dtype=bool)
        return replicas.isin(self._replica_ids).to_numpy(dtype=bool)

    def _by_conversation(self, table: pd.DataFrame) -> pd.DataFrame:
        keep = table["conversation_id"].isin(self.conversations["conversation_id"])
        return table[keep.to_numpy(dtype=bool)].reset_index(drop=True)

    def _root_table(self, name: str) -> pd.DataFrame:
        return getattr(self._root, name)

    # -- tables -------------------------------------------------------------------------------
    @functools.cached_property
    def events(self) -> pd.DataFrame:
        """One row per stored callback, in arrival order: the indexed columns, nothing parsed.

        Returns
        -------
        pandas.DataFrame
            id : int64, the row id in ``callbacks``.
            received_at : datetime64[ns, UTC], arrival time (the collector's clock).
            kind : str, ``conversation``, ``video``, ``replica_training`` or ``unknown``.
            event_type, message_type : str, as sent (NA for flat bodies).
            conversation_id, replica_id, video_id, status : str, as sent.
            timestamp : datetime64[ns, UTC], the sender's timestamp (NaT when absent or not a
            time).
        """
        if not self.filtered:
            return _read_events(self._reader)
        e = self._root_table("events")
        conv = e["kind"] == ev.KIND_CONVERSATION
        keep_conv = conv & e["conversation_id"].isin(self.conversations["conversation_id"])
        when = e["timestamp"].fillna(e["received_at"])
        other = ~conv & self._time_mask(when) & self._replica_mask(e["replica_id"])
        return e[(keep_conv | other).to_numpy(dtype=bool)].reset_index(drop=True)

    @functools.cached_property
    def conversations(self) -> pd.DataFrame:
        """One row per conversation_id seen in conversation callbacks.

        Returns
        -------
        pandas.DataFrame
            conversation_id : str.
            replica_id : str, from the join (else any callback of the call).
            joined_at : datetime64[ns, UTC], the earliest ``system.replica_joined`` or
            ``system.pal_joined`` (Tavus sends both for one join); NaT when none arrived.
            shutdown_at : datetime64[ns, UTC], the earliest ``system.shutdown``.
            duration_s : float64, seconds, ``shutdown_at - joined_at`` (NaN if either is missing).
            shutdown_reason : str, as sent.
            shutdown_category : category of ``events.SHUTDOWN_CATEGORIES`` (NA: no shutdown or no
            readable reason).
            outcome : category ``completed``, ``no_show``, ``failed``, ``unknown`` (NA: no
            shutdown yet).
            shutdown_error_step : Int64, the N of ``internal error occurred at step N``.
            status : category ``complete`` (join and shutdown), ``in_progress`` (join, no
            shutdown yet), ``incomplete`` (no join).
            has_transcript, has_recording, has_perception : boolean, whether a readable
            transcript, a recording, a perception analysis arrived.
            user_turns, assistant_turns : Int64, messages of each role (NA: no transcript).
            user_words, assistant_words : Int64, words of each role (``len(text.split())``
            summed; NA: no transcript).
            system_prompt : str, the first system message (NA when none).
            recording_s3_key : str, the ``s3_key`` of the latest recording.
            first_seen, last_seen : datetime64[ns, UTC], first and last arrival of a callback
            of the call (the collector's clock).
        """
        if not self.filtered:
            frame, self._problem_rows["conversations"] = _read_conversations(self._reader)
            return frame
        c = self._root_table("conversations")
        when = c["joined_at"].fillna(c["first_seen"])
        keep = self._time_mask(when) & self._replica_mask(c["replica_id"])
        return c[keep].reset_index(drop=True)

    @functools.cached_property
    def turns(self) -> pd.DataFrame:
        """One row per transcript message (the transcript that counts for each call).

        Returns
        -------
        pandas.DataFrame
            conversation_id : str.
            turn : int64, 0-based position in the transcript.
            role : str, ``system``, ``user``, ``assistant`` or ``tool`` (as sent).
            content : str, the message text (NA when null or not text).
            words : int64, ``len(content.split())`` (0 for no content).
            chars : int64, characters of content.
            timestamp : datetime64[ns, UTC], per-message time of newer payloads (ISO or Unix).
            seconds_from_start, duration : float64, seconds, where sent.
            inference_id, tool_call_id : str, where sent.
            tool_calls : str, the assistant's tool calls as JSON text, where sent.
        """
        if not self.filtered:
            return _read_turns(self._reader)
        return self._by_conversation(self._root_table("turns"))

    def _cached_table(self, name: str, reader) -> pd.DataFrame:
        if not self.filtered:
            frame, self._problem_rows[name] = reader(self._reader)
            return frame
        return self._by_conversation(self._root_table(name))

    @functools.cached_property
    def perception(self) -> pd.DataFrame:
        """One row per perception callback: analyses and ``perception_unavailable`` notices.

        Returns
        -------
        pandas.DataFrame
            conversation_id : str.
            timestamp : datetime64[ns, UTC].
            available : boolean, True for an analysis, False for ``perception_unavailable``.
            reason : str, why perception was unavailable (e.g. ``no_vision_history``).
            analysis : str, the Markdown as sent.
            words : Int64, words of the analysis.
            appearance, behavior, emotions, screen_activity : str, the text under the standard
            bold headers (**User Appearance**, **User Behavior & Actions**, ...).
            sections : object, ``{header: text}`` of every section, custom queries included.
        """
        return self._cached_table("perception", _read_perception)

    @functools.cached_property
    def recordings(self) -> pd.DataFrame:
        """One row per ``application.recording_ready``, in either payload shape.

        Returns
        -------
        pandas.DataFrame
            conversation_id : str.
            timestamp : datetime64[ns, UTC].
            bucket_name, s3_key : str, older payloads.
            duration : float64, seconds, older payloads.
            storage_provider, storage_uri : str, newer payloads.
            uri : str, ``storage_uri``, else ``s3://bucket_name/s3_key``.
        """
        return self._cached_table("recordings", _read_recordings)

    @functools.cached_property
    def post_call_actions(self) -> pd.DataFrame:
        """One row per ``application.post_call_action_executed``.

        Returns
        -------
        pandas.DataFrame
            conversation_id : str.
            timestamp : datetime64[ns, UTC].
            tool_id, tool_name, status : str.
            request : object, the request as sent.
            request_body : object, the request's body, parsed when it was sent as a JSON string.
            response : object, as sent.
        """
        return self._cached_table("post_call_actions", _read_post_call_actions)

    @functools.cached_property
    def other_events(self) -> pd.DataFrame:
        """Conversation callbacks of every other event type (new, unknown, memory, ...).

        Returns
        -------
        pandas.DataFrame
            conversation_id, event_type : str.
            timestamp : datetime64[ns, UTC].
            properties : object, as sent.
        """
        return self._cached_table("other_events", _read_other_events)

    @functools.cached_property
    def replicas(self) -> pd.DataFrame:
        """One row per replica training callback.

        Returns
        -------
        pandas.DataFrame
            replica_id, status : str.
            received_at : datetime64[ns, UTC].
            error_message : str, for ``status == "error"``.
        """
        if not self.filtered:
            frame, self._problem_rows["replicas"] = _read_replicas(self._reader)
            return frame
        r = self._root_table("replicas")
        keep = self._time_mask(r["received_at"]) & self._replica_mask(r["replica_id"])
        return r[keep].reset_index(drop=True)

    @functools.cached_property
    def videos(self) -> pd.DataFrame:
        """One row per video: the state of its latest callback.

        Returns
        -------
        pandas.DataFrame
            video_id, replica_id, video_name, status, status_details : str.
            created_at, updated_at : datetime64[ns, UTC] (sent without a zone: UTC).
            generation_s : float64, seconds, ``updated_at - created_at``.
            generation_progress : str, e.g. ``"100/100"``.
            script, download_url, hosted_url, stream_url : str.
            error_details : str, JSON text when not text.
            callbacks : int64, callbacks received for the video.
        """
        if not self.filtered:
            frame, self._problem_rows["videos"] = _read_videos(self._reader)
            return frame
        v = self._root_table("videos")
        keep = self._time_mask(v["created_at"]) & self._replica_mask(v["replica_id"])
        return v[keep].reset_index(drop=True)

    @functools.cached_property
    def problems(self) -> pd.DataFrame:
        """What could not be interpreted, and why (for the whole database, whatever the filter).

        Builds every table except ``events`` and ``turns`` (whose problems are the ones
        ``conversations`` reports).

        Returns
        -------
        pandas.DataFrame
            callback_id : Int64, the row in ``callbacks`` (NA for a problem of a whole call).
            conversation_id, event_type : str.
            table : str, the table the row was left out of (or annotated in).
            problem : str, what was wrong and what was done.
        """
        root = self._root or self
        for name in (
            "conversations",
            "perception",
            "recordings",
            "post_call_actions",
            "other_events",
            "replicas",
            "videos",
        ):
            getattr(root, name)
        rows = [r for name in root._problem_rows for r in root._problem_rows[name]]
        if not rows:
            return _frame(_PROBLEMS)
        return _frame(
            _PROBLEMS, dict(zip(_PROBLEMS, map(list, zip(*rows, strict=True)), strict=True))
        )

    # -- full-text search (see tavus_analytics.search) -----------------------------------------
    def search(
        self,
        query: str,
        *,
        role: str | None = None,
        conversation: str | None = None,
        limit: int | None = 20,
        fts: bool = False,
    ) -> pd.DataFrame:
        """Transcript messages that contain ``query``, best match first.

        The words are matched in this order, ignoring case, accents and English word endings
        (``fts=True`` takes the engine's query syntax instead: FTS5's on SQLite, ``to_tsquery``'s
        on PostgreSQL). Searching first brings the database's full-text index up to date, so it
        needs write access to the database. On a filtered dataset, only its conversations are
        searched. See :func:`tavus_analytics.search.search`.

        Returns
        -------
        pandas.DataFrame
            conversation_id : str. turn : int64, the message's index in the transcript.
            role : str. snippet : str, the words around the match, marked ``[...]``.
            content : str, the whole message. callback_id : int64. score : float64, lower is
            better (bm25 on SQLite, minus ``ts_rank`` on PostgreSQL).

        Raises
        ------
        InvalidQuery
            When ``query`` is empty, or (with ``fts=True``) not valid in the engine's syntax.
        """
        from .search import search

        if not self.filtered:
            return search(
                self.path, query, role=role, conversation=conversation, limit=limit, fts=fts
            )
        found = search(self.path, query, role=role, conversation=conversation, limit=None, fts=fts)
        found = found[found["conversation_id"].isin(self.conversations["conversation_id"])]
        return (found if limit is None else found.head(limit)).reset_index(drop=True)

    # -- metrics (see tavus_analytics.metrics) --------------------------------------------------
    def shutdown_breakdown(self, by: str = "reason", split: str | None = None) -> pd.DataFrame:
        """Count and share of each shutdown reason or category; see
        :func:`tavus_analytics.metrics.shutdown_breakdown`."""
        return metrics.shutdown_breakdown(self.conversations, by=by, split=split)

    def durations(
        self,
        by: str | None = None,
        *,
        max_call_duration: float = metrics.DEFAULT_MAX_CALL_DURATION_S,
    ) -> pd.DataFrame:
        """Call duration statistics in seconds; see :func:`tavus_analytics.metrics.durations`."""
        return metrics.durations(self.conversations, by=by, max_call_duration=max_call_duration)

    def turn_stats(self, by: str | None = None) -> pd.DataFrame:
        """Turns and words per conversation and per turn, by role; see
        :func:`tavus_analytics.metrics.turn_stats`."""
        return metrics.turn_stats(self.conversations, by=by)

    def talk_ratio(self) -> pd.DataFrame:
        """The user's share of the words of each call; see
        :func:`tavus_analytics.metrics.talk_ratio`."""
        return metrics.talk_ratio(self.conversations)

    def volume(self, freq: str = "D", by_replica: bool = False) -> pd.DataFrame:
        """Conversations per day or week with completion and error rates; see
        :func:`tavus_analytics.metrics.volume`."""
        return metrics.volume(self.conversations, freq=freq, by_replica=by_replica)

    def funnel(self) -> pd.DataFrame:
        """Joined, shutdown, transcript, recording, perception: counts and shares; see
        :func:`tavus_analytics.metrics.funnel`."""
        return metrics.funnel(self.conversations)

    def perception_summary(self, by: str | None = None) -> pd.DataFrame:
        """Perception coverage and analysis length; see
        :func:`tavus_analytics.metrics.perception_summary`."""
        return metrics.perception_summary(self.conversations, self.perception, by=by)

    def perception_terms(
        self, n: int = 1, top: int = 20, by: str | None = None, section: str | None = None
    ) -> pd.DataFrame:
        """The most frequent meaningful terms or phrases of the analyses; see
        :func:`tavus_analytics.metrics.perception_terms`."""
        return metrics.perception_terms(
            self.perception, self.conversations, n=n, top=top, by=by, section=section
        )

    def analyses(self, section: str | None = None) -> pd.DataFrame:
        """The perception analyses of this (filtered) set, to read; see
        :func:`tavus_analytics.metrics.analyses`."""
        return metrics.analyses(self.conversations, self.perception, section=section)

    # -- display ------------------------------------------------------------------------------
    def _counts(self) -> dict[str, int]:
        if self.filtered or "conversations" in self.__dict__:
            return {"conversations": len(self.conversations)}
        rows = self._reader.query(
            "SELECT count(*), count(DISTINCT CASE WHEN kind = ? THEN conversation_id END) "
            "FROM callbacks WHERE id <= ?",
            (ev.KIND_CONVERSATION, self._reader.max_id),
        )
        return {"callbacks": rows[0][0], "conversations": rows[0][1]}

    def _summary(self) -> list[tuple[str, str]]:
        lines = [("database", self.name)]
        for name, value in self._counts().items():
            lines.append((name, f"{value:,}"))
        if self.filtered:
            lines.append(("since", str(self._since) if self._since is not None else "-"))
            lines.append(("until", str(self._until) if self._until is not None else "-"))
            ids = self._replica_ids
            reps = ", ".join(sorted(ids)) if ids is not None else "all"
            lines.append(("replicas", reps))
        built = [n for n in TABLES if n in self.__dict__ and n != "conversations"]
        for name in built:
            lines.append((name, f"{len(self.__dict__[name]):,} rows"))
        return lines

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v}" for k, v in self._summary())
        return f"<Dataset {body}>"

    def _repr_html_(self) -> str:
        import html

        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
            f"<td style='text-align:left'>{html.escape(v)}</td></tr>"
            for k, v in self._summary()
        )
        return f"<table><caption>tavus-analytics Dataset</caption>{rows}</table>"


def load(
    db: str | Path | None = None,
    *,
    since: Any = None,
    until: Any = None,
    replicas: Iterable[str] | str | None = None,
) -> Dataset:
    """Open a database of Tavus callbacks for analysis (read-only; tables load lazily).

    Parameters
    ----------
    db : str or Path, optional
        The SQLite file, or a PostgreSQL URL (``postgresql://user:password@host:port/db``);
        default ``TAVUS_ANALYTICS_DB``, then ``data/tavus.db``. On PostgreSQL the same tables
        come back, the JSON extraction done by the server (on the ``body_json`` column) and the
        bodies streamed through a server-side cursor.
    since, until : str, datetime or pandas.Timestamp, optional
        Keep conversations joined (or first seen) in ``[since, until)``; see
        :meth:`Dataset.filter`.
    replicas : str or iterable of str, optional
        Keep only these replica ids.

    Returns
    -------
    Dataset

    Raises
    ------
    DatabaseNotFound
        When ``db`` does not exist (the message says how to make one).
    TavusAnalyticsError
        When ``db`` is not a tavus-analytics database, or its PostgreSQL server cannot be
        reached (one line naming the URL, its password masked).

    Examples
    --------
    >>> import tavus_analytics as ta
    >>> ds = ta.load("data/tavus.db")  # doctest: +SKIP
    >>> ds = ta.load("postgresql://analyst:secret@db.internal:5432/tavus")  # doctest: +SKIP
    >>> ds.conversations.groupby("shutdown_category", observed=False).size()  # doctest: +SKIP
    """
    if db is None:
        db = Settings.from_env().db
    ds = Dataset(db)
    if since is None and until is None and replicas is None:
        return ds
    return ds.filter(since=since, until=until, replicas=replicas)
