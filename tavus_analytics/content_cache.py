"""A small file cache for content analysis results, so that reopening a database does not redo
the analysis.

Each entry is one file, ``<key>.zip``, holding a Parquet file per table and a ``meta.json``
that says what the entry is (for a person looking in the folder; never trusted). The key is a
SHA-256 of everything the result depends on (see :func:`key`); callers put there the database's
identity and the callbacks the analysis read, its parameters and the code and package versions,
so that an entry is never stale: a changed input is a new key. Parquet is used rather than
pickle so that reading the cache never runs code.

The folder is ``TAVUS_ANALYTICS_CACHE_DIR`` when it is set, else the platform's cache folder
(``$XDG_CACHE_HOME/tavus-analytics`` or ``~/.cache/tavus-analytics`` on Linux,
``~/Library/Caches/tavus-analytics`` on macOS, ``%LOCALAPPDATA%\\tavus-analytics\\Cache`` on
Windows). Entries are written whole or not at all (a temporary file, then a rename), never
inside the database, and the cache is never required: an entry that cannot be written or read
is logged and the analysis runs as if there were none. Past :data:`MAX_ENTRIES` entries, the
least recently used are removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import sys
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["ENV", "MAX_ENTRIES", "cache_dir", "get", "key", "put"]

#: The environment variable that names the cache folder.
ENV = "TAVUS_ANALYTICS_CACHE_DIR"

#: Entries kept; past this, the least recently used are removed when one is written.
MAX_ENTRIES = 200

_log = logging.getLogger(__name__)
_warned: set[str] = set()


def cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The cache folder: ``TAVUS_ANALYTICS_CACHE_DIR``, else the platform's cache folder."""
    environ = os.environ if environ is None else environ
    named = environ.get(ENV, "")
    if named:
        return Path(named).expanduser()
    home = Path.home()
    if sys.platform == "win32":
        base = Path(environ.get("LOCALAPPDATA") or home / "AppData" / "Local")
        return base / "tavus-analytics" / "Cache"
    if sys.platform == "darwin":
        return home / "Library" / "Caches" / "tavus-analytics"
    xdg = environ.get("XDG_CACHE_HOME", "")
    return (Path(xdg) if xdg else home / ".cache") / "tavus-analytics"


def key(**parts: Any) -> str:
    """A cache key: the SHA-256 of ``parts`` as canonical JSON (sorted keys; values that are not
    JSON, such as paths, as text)."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _path(folder: Path, k: str) -> Path:
    return folder / f"{k}.zip"


def _warn_once(folder: Path, what: str, error: BaseException) -> None:
    if str(folder) not in _warned:
        _warned.add(str(folder))
        _log.warning(
            "content analysis cache: cannot %s in %s (%s); the analysis is redone instead",
            what,
            folder,
            error,
        )


def get(k: str, folder: Path | None = None) -> dict[str, pd.DataFrame] | None:
    """The tables stored under key ``k``, or ``None`` when there is no readable entry."""
    folder = cache_dir() if folder is None else folder
    path = _path(folder, k)
    try:
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if n.endswith(".parquet")]
            tables = {
                n.removesuffix(".parquet"): pd.read_parquet(io.BytesIO(z.read(n))) for n in names
            }
    except FileNotFoundError:
        return None
    except Exception as e:  # a damaged or foreign file: as if there were none
        _log.info("content analysis cache: ignoring %s (%s)", path, e)
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # recently used: kept longest
    return tables


def put(
    k: str,
    tables: Mapping[str, pd.DataFrame],
    *,
    meta: Mapping[str, Any] | None = None,
    folder: Path | None = None,
) -> bool:
    """Store ``tables`` under key ``k``, whole or not at all. Returns whether it was stored (a
    failure is logged once per folder, never raised)."""
    folder = cache_dir() if folder is None else folder
    tmp = folder / f".{k}.{os.getpid()}.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as z:
            z.writestr("meta.json", json.dumps(dict(meta or {}), default=str, indent=1))
            for name, table in tables.items():
                buf = io.BytesIO()
                table.to_parquet(buf, index=False)
                z.writestr(f"{name}.parquet", buf.getvalue())
        os.replace(tmp, _path(folder, k))
    except Exception as e:  # a full disk, a read-only folder, a table Parquet cannot hold
        _warn_once(folder, "store an entry", e)
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        return False
    _prune(folder)
    return True


def _prune(folder: Path) -> None:
    try:
        entries = sorted(folder.glob("*.zip"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in entries[MAX_ENTRIES:]:
            old.unlink(missing_ok=True)
    except OSError:
        pass
