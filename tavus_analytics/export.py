"""The derived tables as files for other tools: CSV, Parquet (DuckDB, Spark, pandas) or JSON Lines.

Tables come from :func:`tavus_analytics.load`, so an export holds exactly what an analyst sees in
``ds.conversations``, ``ds.turns``, ... with the same filters.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import ExportError
from .redact import redact_frame
from .tables import TABLES

FORMATS = ("csv", "parquet", "jsonl")

#: The tables that can be exported: every table of a Dataset, conversations first.
TABLE_NAMES = ("conversations", *(name for name in TABLES if name != "conversations"))

_ISO = "%Y-%m-%dT%H:%M:%S.%fZ"


def _is_nested(value: Any) -> bool:
    return isinstance(value, dict | list | tuple)


def _json_text(value: Any) -> Any:
    if value is None or isinstance(value, str) or (isinstance(value, float) and value != value):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _mixed(column: pd.Series) -> bool:
    """Whether an object column holds nested values, or text beside other values (an output
    variable sent as ``"50k"`` in one call and ``50000`` in another)."""
    kinds = {type(v) for v in column if v is not None and not (isinstance(v, float) and v != v)}
    return any(issubclass(k, dict | list | tuple) for k in kinds) or (
        str in kinds and len(kinds) > 1
    )


def flatten(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every object column that holds dicts or lists, or text beside numbers,
    turned into JSON text (text stays as it is), so that CSV and Parquet get one plain type per
    column."""
    out = frame.copy()
    for name in out.columns:
        column = out[name]
        if column.dtype == object and _mixed(column):
            out[name] = column.map(_json_text)
    return out


def _records(frame: pd.DataFrame) -> Iterable[str]:
    """One JSON text per row: times as ISO 8601 UTC, missing values as null, nested values as
    JSON."""
    columns = {}
    for name in frame.columns:
        column = frame[name]
        if isinstance(column.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(column):
            text = column.dt.strftime(_ISO)
            columns[name] = text.astype(object).where(column.notna(), None)
        else:
            values = column.astype(object)
            columns[name] = values.where(column.notna(), None)
    plain = pd.DataFrame(columns, index=frame.index)
    for row in plain.itertuples(index=False, name=None):
        yield json.dumps(
            dict(zip(plain.columns, row, strict=True)), ensure_ascii=False, default=_default
        )


def _default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if pd.isna(value):
        return None
    return str(value)


def write_table(frame: pd.DataFrame, path: str | Path, fmt: str, *, redact: bool = False) -> int:
    """Write ``frame`` to ``path`` as ``fmt`` (``csv``, ``parquet`` or ``jsonl``); return the
    number of rows.

    The file is written beside its destination and moved into place at the end: a failed export
    never leaves a half-written file. Times are ISO 8601 UTC; in CSV and Parquet, nested values
    (perception ``sections``, post-call ``request``/``response``, ``properties``) are JSON text.
    With ``redact``, personal data in text and nested values is replaced by placeholders first
    (:func:`tavus_analytics.redact.redact_frame`; identifiers are kept).

    Raises
    ------
    ExportError
        For an unknown format, a missing folder, or Parquet without pyarrow.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ExportError(f"cannot write {path}: folder {folder} does not exist")
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ExportError(
                "Parquet needs pyarrow: pip install pyarrow (or use --format csv or jsonl)"
            ) from None
    if redact:
        frame = redact_frame(frame)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        if fmt == "jsonl":
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
                for line in _records(frame):
                    f.write(line)
                    f.write("\n")
        else:
            os.close(fd)
            flat = flatten(frame)
            if fmt == "csv":
                flat.to_csv(tmp, index=False, date_format=_ISO)
            else:
                flat.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return len(frame)


def export(
    db: str | Path,
    table: str,
    fmt: str,
    out: str | Path,
    *,
    since: Any = None,
    until: Any = None,
    replicas: Iterable[str] | None = None,
    redact: bool = False,
    labels: Iterable[str] | None = None,
) -> int:
    """Export one table of ``tavus_analytics.load(db, since=, until=, replicas=, labels=)``;
    return the number of rows written.

    Parameters
    ----------
    db : str or Path
        The database.
    table : str
        One of :data:`TABLE_NAMES`.
    fmt : str
        ``csv``, ``parquet`` or ``jsonl``.
    out : str or Path
        The file to write (replaced when it exists).
    since, until, replicas
        The loader's filters: conversations joined in ``[since, until)``, of these replicas.
    redact : bool
        Replace personal data by placeholders (see :func:`write_table`).
    labels : iterable of str, optional
        Only conversations with one of these review labels (and what belongs to them).
    """
    from .dataset import load

    if table not in TABLE_NAMES:
        raise ExportError(f"unknown table {table!r}: choose one of {', '.join(TABLE_NAMES)}")
    ds = load(
        db,
        since=since,
        until=until,
        replicas=list(replicas) if replicas else None,
        labels=list(labels) if labels else None,
    )
    return write_table(getattr(ds, table), out, fmt, redact=redact)
