"""Typed pandas frames: the building blocks of every table the loader makes.

Each table has a schema (column name -> dtype); :func:`frame` builds exactly those columns, in
order and of their dtype, from lists or arrays. Timestamps are tz-aware UTC (:data:`TIME`),
text is pandas' default string dtype (:data:`STR`), and the helpers here work on whole columns
(numpy) rather than on rows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from .events import valid_utf8

_PANDAS3 = int(pd.__version__.split(".")[0]) >= 3
try:
    import pyarrow as pa
    import pyarrow.compute as pc
except ImportError:  # pragma: no cover - pyarrow is optional
    pa = pc = None

#: The dtype of text columns: pandas' default string dtype (``str`` on pandas 3, ``object`` on 2).
STR: Any = "str" if _PANDAS3 else object

#: The dtype of every timestamp column.
TIME = "datetime64[ns, UTC]"

NAT = np.iinfo(np.int64).min  # NaT as int64 nanoseconds

# Whether text columns are Arrow-backed (pandas 3 with pyarrow): then they are built with
# pyarrow directly, which is several times faster than through pandas' checks.
ARROW_STR = pa is not None and getattr(pd.Series([], dtype=STR).dtype, "storage", "") == "pyarrow"


# -- building blocks -----------------------------------------------------------------------------
def column(values: Any, dtype: Any, n: int) -> Any:
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
        if pa is not None and isinstance(values, (pa.Array, pa.ChunkedArray)):
            return pd.array(values, dtype=STR)
        if not isinstance(values, (list, np.ndarray)):
            values = list(values)
        if ARROW_STR:
            try:
                arrow = pa.array(values, type=pa.large_string(), from_pandas=True)
                return pd.array(arrow, dtype=STR)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                pass  # not all text: let pandas convert (and say what is wrong)
        return pd.array(objects(values), dtype=STR)
    if isinstance(values, pd.api.extensions.ExtensionArray) and values.dtype == dtype:
        return values
    if dtype in ("int64", "float64"):
        return np.asarray(values, dtype=dtype)
    return pd.array(values, dtype=dtype)


def frame(schema: dict[str, Any], columns: dict[str, Any] | None = None) -> pd.DataFrame:
    """A DataFrame with exactly the columns of ``schema``, in order and of their dtype.

    ``columns`` maps names to values (lists, arrays or Series of one length); missing columns
    are all-NA. With no columns, the empty table.
    """
    columns = columns or {}
    n = len(next(iter(columns.values()))) if columns else 0
    data = {name: column(columns.get(name), dtype, n) for name, dtype in schema.items()}
    return pd.DataFrame(data, index=pd.RangeIndex(n), columns=list(schema))


_TS_MIN = pd.Timestamp("1678-01-01", tz="UTC")

_TS_MAX = pd.Timestamp("2261-12-31", tz="UTC")


def clip_ns(s: pd.Series) -> pd.Series:
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
        return clip_ns(values.reset_index(drop=True))
    if isinstance(values, np.ndarray) and values.dtype.kind == "M":  # naive: UTC
        return clip_ns(pd.Series(values).dt.tz_localize("UTC"))
    obj = pd.Series(values, dtype=object).reset_index(drop=True)
    kind = pd.api.types.infer_dtype(obj, skipna=True)
    if kind == "empty":
        return pd.Series(pd.NaT, index=obj.index, dtype=TIME)
    if kind == "string":
        out = clip_ns(pd.to_datetime(obj, format="ISO8601", utc=True, errors="coerce"))
        if not (out.isna() & obj.notna()).any():
            return out
    ns = np.full(len(obj), NAT, dtype=np.int64)
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
            ns[present[where]] = clip_ns(pd.Series(parse(pd.Series(values[where])))).array.asi8
    # What is left: Unix seconds as numbers or numeric strings, within what ns can hold.
    rest = present[ns[present] == NAT]
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
# The same classes as text, for one text at a time: " " white space, "x" a word byte, "?" the
# first byte of a sequence that may be a Unicode space.
_MARKS = _CLASS.translate(bytes.maketrans(b"\x00\x01\x02", b" x?"))
_MARKS = b"x" + _MARKS[1:]  # NUL is not a space in a text of its own


def count_words(texts: Sequence[str]) -> np.ndarray:
    """The number of words of each text: exactly ``len(text.split())``, computed in bulk.

    A word is a run of characters between whitespace (Python's definition, Unicode spaces
    included). A text whose only white space is single ASCII spaces (most of what people and
    replicas say) has its spaces counted; one with other ASCII white space (a system prompt's
    lines) and no byte that may start a Unicode space has its UTF-8 bytes marked and its word
    starts counted; the others are joined into one UTF-8 buffer, separated by NUL bytes, and
    word starts are found with numpy. Either way no object is made per word.

    Returns
    -------
    numpy.ndarray of int64, one count per text.
    """
    if not texts:
        return np.zeros(0, dtype=np.int64)
    # Most texts separate their words by single ASCII spaces: then the words are the spaces
    # plus one, counted at C speed. str.isprintable() is False for every other white-space
    # character (Unicode's separators and control characters, the ASCII space excepted).
    counts = np.fromiter(map(_plain_words, texts), dtype=np.int64, count=len(texts))
    rest = np.flatnonzero(counts < 0)
    if len(rest):  # other ASCII white space (system prompts have lines): from UTF-8 bytes
        counts[rest] = [_utf8_words(texts[i]) for i in rest]
        rest = rest[counts[rest] < 0]
    if len(rest):
        counts[rest] = _count_words_bulk([texts[i] for i in rest])
    return counts


def _plain_words(text: str) -> int:
    """The words of ``text`` if its only white space is single ASCII spaces, else -1."""
    if not text.isprintable() or "  " in text:
        return -1
    if not text:
        return 0
    return text.count(" ") + 1 - (text[0] == " ") - (text[-1] == " ")


def _utf8_words(text: str) -> int:
    """The words of ``text`` if it holds no byte that may start a Unicode space, else -1: its
    UTF-8 bytes marked (:data:`_MARKS`), the words are the word bytes after a space."""
    marks = text.encode("utf-8", "surrogatepass").translate(_MARKS)
    if b"?" in marks:
        return -1
    return marks.count(b" x") + marks.startswith(b"x")


def _count_words_bulk(texts: Sequence[str]) -> np.ndarray:
    """:func:`count_words` for texts with any white space: joined and counted with numpy."""
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


def latest(frame: pd.DataFrame, key: str, time: str) -> pd.DataFrame:
    """The last row per ``key`` in (``time``, ``id``) order (rows without a time come first)."""
    order = frame.sort_values([time, "id"], na_position="first", kind="stable")
    return order.drop_duplicates(key, keep="last")


def columns_of(rows: list[tuple], n: int) -> list[np.ndarray]:
    """The columns of query rows as object arrays (``n`` empty arrays when there is no row)."""
    if not rows:
        return [np.empty(0, dtype=object) for _ in range(n)]
    out = []
    for col in zip(*rows, strict=True):
        arr = np.empty(len(col), dtype=object)
        arr[:] = col
        out.append(arr)
    return out


def ns(times: pd.Series) -> np.ndarray:
    """Nanoseconds since the epoch (UTC) as int64; NaT is ``NAT``."""
    return times.array.asi8


def time_key(times: pd.Series, missing_last: bool = True) -> np.ndarray:
    """Nanoseconds since the epoch as int64, for sorting; NaT sorts last (or first)."""
    out = ns(times).copy()
    if missing_last:
        out[out == NAT] = np.iinfo(np.int64).max
    return out


def first_per_group(groups: np.ndarray, *keys: np.ndarray) -> np.ndarray:
    """Row numbers of the first row of each group in ``keys`` order (the first key decides)."""
    if not len(groups):
        return np.empty(0, dtype=np.int64)
    order = np.lexsort((*reversed(keys), groups))
    g = groups[order]
    first = np.ones(len(g), dtype=bool)
    first[1:] = g[1:] != g[:-1]
    return order[first]


def keep(values: Any, mask: np.ndarray) -> Any:
    if pa is not None and isinstance(values, pa.ChunkedArray):
        return values.filter(pa.array(mask))
    return objects(values)[mask]


def objects(values: Any) -> np.ndarray:
    if isinstance(values, np.ndarray):
        return values
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    return arr


def convert(values: list, convert) -> np.ndarray:
    """``convert`` applied to the values that are not None (most are, in older payloads)."""
    arr = objects(values)
    present = np.flatnonzero(pd.notna(arr))
    if len(present):
        arr[present] = [convert(v) for v in arr[present]]
    return arr


# -- Arrow: facts kept between loads -------------------------------------------------------------
def arrow_text(values: Any) -> Any:
    """Text (``str`` or ``None`` values, a list or an object array) as an Arrow large_string
    array. A lone surrogate (a body stored without the collector's checks) becomes U+FFFD:
    Arrow text is UTF-8."""
    try:
        return pa.array(values, type=pa.large_string())
    except (UnicodeEncodeError, pa.ArrowInvalid):
        return pa.array([valid_utf8(v) for v in values], type=pa.large_string())


def repeated(values: Any) -> np.ndarray:
    """Which of ``values`` (Arrow) appear more than once, as a boolean array (like pandas'
    ``duplicated(keep=False)``; nulls count as a value)."""
    counts = pc.value_counts(values)
    many = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
    found = pc.is_in(values, value_set=many, skip_nulls=False)
    return found.to_numpy(zero_copy_only=False).astype(bool, copy=False)


def rows_in_order(table: Any, rows: np.ndarray) -> Any:
    """The rows ``rows`` (increasing) of an Arrow table, as slices of it where they follow each
    other: no copy when most rows are kept (a ``take`` of a table read from a memory-mapped file
    copies every row, and may concatenate its chunks first)."""
    if not len(rows):
        return table.slice(0, 0)
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    starts = rows[np.concatenate(([0], breaks))]
    ends = rows[np.concatenate((breaks - 1, [len(rows) - 1]))] + 1
    return pa.concat_tables(
        [table.slice(int(a), int(b - a)) for a, b in zip(starts, ends, strict=True)]
    )


def positions(values: Any, index: Any) -> np.ndarray:
    """Where each of ``values`` is in ``index`` (Arrow text, unique), -1 where it is not:
    hashed by Arrow, without making a Python string of either."""
    found = pc.index_in(values, value_set=index)
    return found.fill_null(-1).to_numpy().astype(np.int64, copy=False)


def arrow_json(values: Any) -> Any:
    """JSON values (what a parsed body holds: dicts, lists, text, numbers, booleans, ``None``)
    as Arrow text, each value as JSON (``None`` as null). Python's own encoder, so that
    :func:`from_json` gives back exactly the same values: integers of any size, NaN and
    infinities, lone surrogates (escaped) included."""
    return pa.array(
        [None if v is None else json.dumps(v, allow_nan=True) for v in values],
        type=pa.large_string(),
    )


def from_json(column: Any) -> list:
    """The values :func:`arrow_json` encoded."""
    loads = json.loads
    return [None if v is None else loads(v) for v in column.to_pylist()]


def texts(column: Any) -> np.ndarray:
    """An Arrow text column as an object array of ``str`` and ``None``."""
    return objects(column.to_pylist())


def arrow_series(column: Any, dtype: Any) -> Any:
    """An Arrow column (a chunked array of facts) as values :func:`frame` takes for the table
    dtype ``dtype``: text as it is (Arrow-backed text columns take it without a copy), times
    from int64 nanoseconds (:data:`NAT` for none), numbers and booleans (nullable where the
    dtype is)."""
    if dtype is STR:
        return column if ARROW_STR else texts(column)  # frame() takes Arrow text as it is
    if dtype == TIME:
        ns_values = column.to_numpy()
        return pd.Series(ns_values.view("datetime64[ns]")).dt.tz_localize("UTC")
    if dtype in ("int64", "float64"):
        return column.to_numpy().astype(dtype, copy=False)
    if dtype == "boolean":
        values = column.fill_null(False).to_numpy(zero_copy_only=False)
        return pd.arrays.BooleanArray(values, column.is_null().to_numpy(zero_copy_only=False))
    if dtype == "Int64":
        values = column.fill_null(0).to_numpy()
        return pd.arrays.IntegerArray(values, column.is_null().to_numpy(zero_copy_only=False))
    raise TypeError(f"no Arrow conversion to {dtype!r}")
