"""Copy the history of one store into another: ``tavus-analytics migrate --from A --to B``.

Typically from the SQLite file a collector filled on a laptop into the PostgreSQL database that
several collectors now share; any direction works (SQLite or PostgreSQL on either side, two
SQLite files merged into one).

Every column is kept (``received_at``, sender address, user agent, the body byte for byte);
rows get new ids in the target. Callbacks and rejected bodies are copied in id order, ``chunk``
of each per transaction, and each transaction also records how far the copy got in the
target's ``copy_progress`` table (keyed by the source): an interrupted copy resumes where it
stopped, and a finished one run again copies nothing. A callback the target already holds
(same SHA-256, e.g. one that a collector wrote there too) is counted as a duplicate, not stored
twice. Each callback copied keeps its deliveries (every arrival: a guardrail triggered three
times is one callback delivered three times); a delivery the source receives after its callback
was copied is not copied by a later run. The source is only read.

Review labels and notes (``annotations``) are copied after the callbacks: those the target
lacks (the same conversation, label, note, author and time count as one), with their removal
when they were removed in the source, so that running the copy again adds only what is new.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import TavusAnalyticsError
from . import display_url, is_postgres, open_store


@dataclass
class CopyResult:
    """What one :func:`copy_history` call did."""

    callbacks: int = 0  #: callbacks read from the source in this run
    stored: int = 0  #: of which stored in the target
    duplicate: int = 0  #: of which the target already held
    rejected: int = 0  #: rejected bodies copied
    resumed_from: tuple[int, int] = (0, 0)  #: (callback id, rejected id) already copied before
    seconds: float = 0.0
    annotations: int = 0  #: review labels and notes copied


def source_key(db: str | Path) -> str:
    """How ``copy_progress`` names a source: its URL without the password, or its file's
    absolute path."""
    if is_postgres(db):
        return display_url(db)
    return "sqlite:" + str(Path(db).resolve())


def copy_history(
    source: str | Path,
    target: str | Path,
    *,
    chunk: int = 5000,
    on_progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> CopyResult:
    """Copy every callback and rejected body of ``source`` not yet copied into ``target``.

    Parameters
    ----------
    source, target : str or Path
        SQLite files or ``postgresql://`` URLs. The source must exist; the target is created
        (SQLite) or its schema made (PostgreSQL) if needed.
    chunk : int
        Rows of each table per transaction.
    on_progress : callable, optional
        Called with the number of rows copied after each transaction.
    on_total : callable, optional
        Called once with the number of rows left to copy.

    Returns
    -------
    CopyResult
    """
    if chunk < 1:
        raise ValueError("chunk must be at least 1")
    key = source_key(source)
    if key == source_key(target):
        raise TavusAnalyticsError("--from and --to name the same database: nothing to copy")
    started = time.perf_counter()
    result = CopyResult()
    src = open_store(source, must_exist=True)  # only read: never made or migrated here
    dst = open_store(target)
    try:
        dst.migrate()
        cb_upto, rj_upto = dst.copy_progress(key)
        result.resumed_from = (cb_upto, rj_upto)
        if on_total is not None:
            on_total(src.count_after(cb_upto, rj_upto))
        while True:
            callbacks = src.read_callbacks(cb_upto, chunk)
            rejected = src.read_rejected(rj_upto, chunk)
            if not callbacks and not rejected:
                break
            cb_upto = callbacks[-1][0] if callbacks else cb_upto
            rj_upto = rejected[-1][0] if rejected else rj_upto
            deliveries = src.read_deliveries([row[0] for row in callbacks])
            stored, copied = dst.copy_in(key, callbacks, rejected, (cb_upto, rj_upto), deliveries)
            result.callbacks += len(callbacks)
            result.stored += stored
            result.duplicate += len(callbacks) - stored
            result.rejected += copied
            if on_progress is not None:
                on_progress(len(callbacks) + len(rejected))
        result.annotations = _copy_annotations(src, dst)
    finally:
        src.close()
        dst.close()
    result.seconds = time.perf_counter() - started
    return result


def _copy_annotations(src, dst) -> int:
    """Copy the annotations ``dst`` lacks, and mark removed there those removed in ``src``;
    return how many were copied."""

    def key(row: tuple) -> tuple:
        return row[1:6]  # conversation, label, note, author, created_at

    held = {key(row): row for row in dst.read_annotations(include_removed=True)}
    copied = 0
    for row in src.read_annotations(include_removed=True):
        there = held.get(key(row))
        if there is None:
            new = dst.annotate(row[1], label=row[2], note=row[3], author=row[4], created_at=row[5])
            there = (new, *row[1:6], None, None)
            held[key(row)] = there
            copied += 1
        if row[6] is not None and there[6] is None:
            dst.remove_annotation(there[0], author=row[7], removed_at=row[6])
    return copied
