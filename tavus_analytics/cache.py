"""What the loader derives from each callback, kept between loads.

A raw callback never changes once stored, and neither do the facts a table builder extracts
from it (:mod:`tavus_analytics.tables`): a transcript's turn and word counts, a parsed time, the
rows of its messages. The cache keeps them, and a load reads them back and extracts only the
callbacks that arrived since. The tables are then assembled from the facts of every callback,
so the rules that span callbacks (which join, shutdown or transcript counts; a guardrail
delivered again) are applied anew each time and a late callback changes an older conversation
as it should: a table built with the cache is exactly the table built without it.

**Where.** ``DB.cache/`` beside a SQLite file when its folder can be written; else the folder
named by ``TAVUS_ANALYTICS_CACHE_DIR``; else the user's cache folder (``~/.cache`` or
``$XDG_CACHE_HOME`` on Linux, ``~/Library/Caches`` on macOS, ``%LOCALAPPDATA%`` on Windows,
then ``tavus-analytics/tables/<database>``). A PostgreSQL database has no folder of its own: its
cache is in the user's. ``ta.load(db, cache=False)`` neither reads nor writes it;
``tavus-analytics cache --clear`` removes it.

**What.** One folder per database and loader version (``<key>/``, the SHA-256 of
:data:`LOADER_VERSION` and the database's identity: its file or server, schema version and
first callback), so that a database made again at the same path, a migrated schema or a new
loader is a new key; the folders of other keys are removed when a new one is made. In it, per
builder, segments ``<builder>/<lo>-<hi>/``: the facts of the callbacks with ids in ``(lo, hi]``,
one Arrow IPC file per part, and ``meta.json``, which names the last callback at or below
``hi`` (id and SHA-256) so that a segment is used only while the database still holds it.
Segments are read memory-mapped; small ones are merged when there are more than
:data:`MAX_SEGMENTS`.

**Safety.** A segment is written in a temporary folder and renamed into place: a loader killed
while writing leaves no half segment, only a temporary folder, removed later. Two loaders at
once may write the same segment; it holds the same facts, and the second rename is dropped.
Nothing waits for a lock, nothing here writes the database, and a cache that cannot be read or
written only makes a load slower: the tables are built without it.

**Processes.** A large range of ids is extracted in several processes (forked, on Linux), one
sub-range each, which write their facts as segments: the transcripts of a million callbacks are
parsed on every core. ``TAVUS_ANALYTICS_LOAD_PROCESSES`` sets how many (1: none).
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import logging
import multiprocessing
import os
import re
import secrets
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from . import content_cache
from .store import queries as q
from .store.base import ReaderInterface
from .tables import BUILDERS, Facts

__all__ = [
    "ENV",
    "LOADER_VERSION",
    "PROCESSES_ENV",
    "TableCache",
    "build",
    "cache_of",
    "user_cache_dir",
]

#: The version of what the builders extract. Change it whenever a builder's facts or rules
#: change: every cache made by another version is then ignored (and removed).
LOADER_VERSION = 1

#: The environment variable naming the cache folder for databases whose own folder cannot be
#: written (and for PostgreSQL databases): the same folder as content analysis's cache.
ENV = content_cache.ENV
#: That folder: ``TAVUS_ANALYTICS_CACHE_DIR``, else the platform's cache folder.
user_cache_dir = content_cache.cache_dir

#: The environment variable setting how many processes extract a large range (default: the
#: cores, at most 4; 1 extracts in the loading process only).
PROCESSES_ENV = "TAVUS_ANALYTICS_LOAD_PROCESSES"

#: Ranges of fewer ids than this are extracted in the loading process.
PARALLEL_MIN_IDS = 100_000

#: Segments per builder above which the smallest neighbours are merged.
MAX_SEGMENTS = 4

#: Temporary folders older than this (seconds) were left by a loader that stopped.
STALE_S = 3600

_log = logging.getLogger(__name__)
_SEGMENT = re.compile(r"^(\d+)-(\d+)$")
_KEY = re.compile(r"^[0-9a-f]{16}$")


def _writable(folder: Path) -> bool:
    """Whether files can be made in ``folder`` (made if missing, when its parent allows)."""
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            return False
        probe = probe.parent
    return probe.is_dir() and os.access(probe, os.W_OK | os.X_OK)


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Segment:
    """The facts of the callbacks with ids in ``(lo, hi]``, as kept in ``path``."""

    lo: int
    hi: int
    path: Path
    meta: dict
    facts: Facts | None = None


class TableCache:
    """The kept facts of one database, read through ``reader``.

    Parameters
    ----------
    reader : ReaderInterface
        The database's reader (its snapshot decides which segments can be used).
    folder : Path, optional
        Keep the cache here instead of the usual place (see the module's documentation).
    """

    def __init__(self, reader: ReaderInterface, folder: str | Path | None = None) -> None:
        self.reader = reader
        self._folder = None if folder is None else Path(folder)
        self._identity: dict | None = None
        self._warned = False

    # -- where --------------------------------------------------------------------------
    @property
    def identity(self) -> dict:
        if self._identity is None:
            self._identity = self.reader.identity()
        return self._identity

    @property
    def root(self) -> Path:
        """The folder of this database's cache (every key of it): beside the database when
        that folder can be written, else in the user's cache folder."""
        places = self.places()
        if len(places) > 1 and _writable(places[0]):
            return places[0]
        return places[-1]

    @property
    def path(self) -> Path:
        """The folder of the facts of this database as it is, for this loader version."""
        key = _digest({"version": LOADER_VERSION, **self.identity})[:16]
        return self.root / key

    def size(self) -> int:
        """Bytes kept for this database (every key), 0 when there is no cache."""
        return _size(self.root)

    def places(self) -> list[Path]:
        """Every folder this database's cache may be in: beside it, and the user's."""
        found = []
        beside = self.reader.beside()
        if self._folder is None and beside is not None:
            found.append(beside)
        place = self.identity["place"]
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", place.rsplit("/", 1)[-1])[:40] or "db"
        folder = user_cache_dir() if self._folder is None else self._folder
        found.append(folder / "tables" / f"{name}-{_digest(place)[:12]}")
        return found

    def clear(self) -> int:
        """Remove this database's cache, wherever it is; the bytes it held. The next load
        makes it again."""
        freed = 0
        for folder in self.places():
            if folder.is_dir():
                freed += _size(folder)
                shutil.rmtree(folder)
        return freed

    # -- reading ------------------------------------------------------------------------
    def chain(self, builder: str) -> list[Segment]:
        """The segments to use for ``builder``: consecutive from id 0, none above the
        reader's ``max_id``, each checked against the database and read (memory-mapped). Stops
        at the first segment that cannot be used."""
        for attempt in range(2):  # a segment merged away meanwhile: look again, once
            try:
                return self._chain(builder)
            except FileNotFoundError:
                if attempt:
                    return []
            except Exception as e:  # a damaged file: as if there were no cache
                self._warn("read", e)
                return []
        return []

    def _chain(self, builder: str) -> list[Segment]:
        folder = self.path / builder
        if not folder.is_dir():
            return []
        found: dict[int, list[Segment]] = {}
        for entry in folder.iterdir():
            m = _SEGMENT.match(entry.name)
            if m:
                lo, hi = int(m.group(1)), int(m.group(2))
                if hi <= self.reader.max_id:
                    found.setdefault(lo, []).append(Segment(lo, hi, entry, {}))
        chain: list[Segment] = []
        at = 0
        while at in found:
            seg = max(found[at], key=lambda s: s.hi)  # the longest step
            chain.append(seg)
            at = seg.hi
        usable: list[Segment] = []
        with self.reader.connect() as conn:
            for seg in chain:
                try:
                    seg.meta = json.loads((seg.path / "meta.json").read_text())
                    last = self.reader.query(q.LAST_UPTO, (seg.hi,), conn)
                    if seg.meta.get("last") != (list(last[0]) if last else None):
                        raise ValueError("made from other callbacks")
                    seg.facts = {
                        part: _read_table(seg.path / f"{part}.arrow") for part in seg.meta["parts"]
                    }
                except FileNotFoundError:
                    raise  # merged away meanwhile: look again
                except Exception as e:
                    # Damaged, or not the callbacks it was made from: never used again.
                    _log.info("tavus-analytics cache: %s not used (%s)", seg.path, e)
                    _remove(seg.path)
                    break
                usable.append(seg)
        return usable

    # -- writing ------------------------------------------------------------------------
    @property
    def writable(self) -> bool:
        """Whether facts read now may be kept: the reader's snapshot is settled."""
        return self.reader.settled

    def folder(self, builder: str) -> Path | None:
        """The folder of ``builder``'s segments, made if needed (None when it cannot be)."""
        try:
            made = not self.path.exists()
            folder = self.path / builder
            folder.mkdir(parents=True, exist_ok=True)
            if made:
                self._forget_other_keys()
            return folder
        except OSError as e:
            self._warn("write", e)
            return None

    def store(self, builder: str, lo: int, hi: int, facts: Facts) -> Segment | None:
        """Keep ``facts`` as the segment ``(lo, hi]`` of ``builder``."""
        folder = self.folder(builder)
        if folder is None:
            return None
        try:
            path = write_segment(folder, self.reader, lo, hi, facts)
        except OSError as e:
            self._warn("write", e)
            return None
        return Segment(lo, hi, path, {}, facts) if path else None

    def compact(self, builder_name: str, chain: list[Segment]) -> None:
        """Merge the two neighbours smallest together while there are more than
        :data:`MAX_SEGMENTS`, so that a cache read often stays a few files."""
        builder = BUILDERS[builder_name]
        chain = list(chain)
        while len(chain) > MAX_SEGMENTS:
            sizes = [_bytes(s.facts) for s in chain]
            i = min(range(len(chain) - 1), key=lambda k: sizes[k] + sizes[k + 1])
            a, b = chain[i], chain[i + 1]
            merged = self.store(builder_name, a.lo, b.hi, builder.merge([a.facts, b.facts]))
            if merged is None:
                return
            for old in (a, b):
                _remove(old.path)
            chain[i : i + 2] = [merged]

    def _forget_other_keys(self) -> None:
        """Remove the folders of other keys (another loader version, a database replaced) and
        what stopped loaders left behind."""
        for entry in self.root.iterdir():
            if entry != self.path and _KEY.match(entry.name) and entry.is_dir():
                _remove(entry)

    def _warn(self, what: str, error: BaseException) -> None:
        if not self._warned:
            self._warned = True
            _log.warning(
                "tavus-analytics cache: cannot %s %s (%s); tables are built without it",
                what,
                self.root,
                error,
            )


def _read_table(path: Path) -> pa.Table:
    with pa.memory_map(str(path), "r") as source:
        return pa.ipc.open_file(source).read_all()


def _bytes(facts: Facts) -> int:
    return sum(t.nbytes for t in facts.values())


def _size(folder: Path) -> int:
    total = 0
    if folder.is_dir():
        for root, _, files in os.walk(folder):
            for f in files:
                with contextlib.suppress(OSError):
                    total += os.stat(os.path.join(root, f)).st_size
    return total


def _remove(path: Path) -> None:
    """Remove a folder: renamed away first, so that nobody reads it half removed."""
    gone = path.with_name(f".gone-{path.name}-{secrets.token_hex(4)}")
    try:
        os.rename(path, gone)
    except OSError:
        return
    shutil.rmtree(gone, ignore_errors=True)


def _sweep(folder: Path) -> None:
    """Remove temporary folders that stopped loaders left."""
    now = time.time()
    for entry in folder.iterdir():
        if entry.name.startswith("."):
            with contextlib.suppress(OSError):
                if now - entry.stat().st_mtime > STALE_S:
                    shutil.rmtree(entry, ignore_errors=True)


def write_segment(
    folder: Path, reader: ReaderInterface, lo: int, hi: int, facts: Facts, rebased: bool = True
) -> Path | None:
    """Write ``facts`` as the segment ``folder/<lo>-<hi>``, whole or not at all; None when
    another loader wrote it first. ``rebased``: whether the facts are numbered as the segments
    before them continue to (see :attr:`tavus_analytics.tables.Builder.rebase`); those of a
    range extracted on its own are rebased when read."""
    tmp = folder / f".tmp-{lo}-{hi}-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        for part, table in facts.items():
            with (
                pa.OSFile(str(tmp / f"{part}.arrow"), "wb") as sink,
                pa.ipc.new_file(sink, table.schema) as writer,
            ):
                writer.write_table(table)
        last = reader.query(q.LAST_UPTO, (hi,))
        meta = {
            "version": LOADER_VERSION,
            "lo": lo,
            "hi": hi,
            "last": list(last[0]) if last else None,
            "parts": list(facts),
            "rows": {part: table.num_rows for part, table in facts.items()},
            "rebased": rebased,
        }
        (tmp / "meta.json").write_text(json.dumps(meta))
        target = folder / f"{lo}-{hi}"
        try:
            os.rename(tmp, target)
        except OSError:
            if target.is_dir():  # written by another loader meanwhile: the same facts
                return None
            raise
        return target
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def cache_of(db: str | Path) -> TableCache:
    """The cache of the database ``db`` (a SQLite file or a PostgreSQL URL), to show or clear."""
    from .store import open_reader

    return TableCache(open_reader(db))


# -- building a table ------------------------------------------------------------------------
def build(
    name: str, reader: ReaderInterface, cache: TableCache | None
) -> tuple[dict[str, pd.DataFrame], list[tuple]]:
    """The tables of builder ``name`` (see :data:`tavus_analytics.tables.BUILDERS`) for the
    reader's snapshot, and their problem rows: from the kept facts and those of newer callbacks
    (kept in turn), or, with ``cache`` None, from every callback."""
    builder = BUILDERS[name]
    top = reader.max_id
    chain = cache.chain(name) if cache is not None else []
    after = chain[-1].hi if chain else 0
    pieces: list[Facts] = []
    for seg in chain:
        if not seg.meta.get("rebased", True):  # kept by a child process as it read it
            seg.facts = builder.combine(pieces, [seg.facts])[0]
        pieces.append(seg.facts)
    new: list[Segment] = []
    if after < top or not chain:
        # Child processes keep what they read themselves (into the cache, when it is kept).
        keep = cache is not None and cache.writable
        new = _extract(name, reader, after, top, cache if keep else None)
        rebased = builder.combine(pieces, [seg.facts for seg in new])
        for seg, facts in zip(new, rebased, strict=True):
            seg.facts = facts
        pieces += rebased
    tables, problems = builder.assemble(builder.merge(pieces), reader)
    if cache is not None and cache.writable and top > after:
        if len(new) > 1 and all(seg.path is None for seg in new):  # kept as one segment
            new = [Segment(new[0].lo, new[-1].hi, None, {}, builder.merge(rebased))]
        stored = [
            seg if seg.path is not None else cache.store(name, seg.lo, seg.hi, seg.facts)
            for seg in new
        ]
        if all(stored):
            cache.compact(name, [*chain, *stored])
        with contextlib.suppress(OSError):
            _sweep(cache.path / name)
    return tables, problems


def processes() -> int:
    """How many processes extract a large range (:data:`PROCESSES_ENV`, else the cores this
    process may use, at most 4)."""
    named = os.environ.get(PROCESSES_ENV, "")
    if named.strip().isdigit():
        return max(1, int(named))
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 4))


def _can_fork() -> bool:
    # Fork is fast (the child has everything imported) and safe on Linux; macOS's system
    # libraries are not safe after fork, and Windows has none.
    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


def _extract(
    name: str, reader: ReaderInterface, after: int, upto: int, cache: TableCache | None
) -> list[Segment]:
    """The facts of the callbacks with ids in ``(after, upto]``, as segments: written by child
    processes when the range is large (into the cache, else a temporary folder), else read
    here (``path`` None: not written)."""
    builder = BUILDERS[name]
    n = processes()
    if not builder.parallel or n < 2 or upto - after < PARALLEL_MIN_IDS or not _can_fork():
        return [Segment(after, upto, None, {}, builder.extract(reader, after, upto))]
    bounds = [after + (upto - after) * k // n for k in range(n + 1)]
    ranges = list(zip(bounds, bounds[1:], strict=False))
    folder = cache.folder(name) if cache is not None else None
    temporary = folder is None
    if temporary:
        folder = Path(tempfile.mkdtemp(prefix="tavus-analytics-"))
    try:
        done = _run_children(name, reader, ranges, folder)
        out = []
        for (lo, hi), path in zip(ranges, done, strict=True):
            if path is None:  # the child failed: read its range here
                out.append(Segment(lo, hi, None, {}, builder.extract(reader, lo, hi)))
                continue
            meta = json.loads((path / "meta.json").read_text())
            facts = {part: _read_table(path / f"{part}.arrow") for part in meta["parts"]}
            out.append(Segment(lo, hi, None if temporary else path, meta, facts))
        return out
    finally:
        if temporary:
            # The tables are memory-mapped: on Linux the files live on until they are unmapped.
            shutil.rmtree(folder, ignore_errors=True)


def _run_children(
    name: str, reader: ReaderInterface, ranges: list[tuple[int, int]], folder: Path
) -> list[Path | None]:
    """Extract each range in a forked child that writes it as a segment in ``folder``; the
    segments' paths, None for a child that failed."""
    ctx = multiprocessing.get_context("fork")
    children = []
    with warnings.catch_warnings():
        # Python 3.12+ warns when a process with threads forks; the children only read the
        # database on connections of their own and write files.
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*fork.*")
        for lo, hi in ranges:
            child = ctx.Process(target=_child, args=(name, reader, lo, hi, folder), daemon=True)
            child.start()
            children.append(child)
    try:
        for child in children:
            child.join()
    finally:
        for child in children:
            if child.is_alive():
                child.terminate()
                child.join()
    paths = []
    for (lo, hi), child in zip(ranges, children, strict=True):
        path = folder / f"{lo}-{hi}"
        ok = child.exitcode == 0 and (path / "meta.json").is_file()
        paths.append(path if ok else None)
    return paths


def _child(name: str, reader: ReaderInterface, lo: int, hi: int, folder: Path) -> None:
    # The child reads one range and exits: the garbage collector's passes over what the
    # parent holds and over every parsed body would find next to nothing to free. Its Arrow
    # buffers come from the C library's allocator, which keeps freed memory for the next
    # batch where Arrow's default gives it back to the system and faults it in again (at
    # 250,000 conversations, a second of each child's eleven).
    gc.disable()
    pa.set_memory_pool(pa.system_memory_pool())
    builder = BUILDERS[name]
    rebased = builder.rebase is None or lo == 0
    try:
        write_segment(folder, reader, lo, hi, builder.extract(reader, lo, hi), rebased)
    except BaseException as e:  # the parent reads the range itself: say why, briefly
        _log.info("extracting %s (%s, %s] failed in a child process: %r", name, lo, hi, e)
        os._exit(1)
