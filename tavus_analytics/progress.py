"""The progress bar of long work (import, backfill, replay, migrate, demo, report, charts).

One look for every command: on standard error, and only when it is a terminal, so that scripts,
pipes and cron get clean output.
"""

from __future__ import annotations

from typing import Any


def progress(
    desc: str,
    *,
    total: int | None = None,
    unit: str = "callbacks",
    enabled: bool = True,
    leave: bool = False,
    scale: bool = False,
    delay: float = 0.0,
) -> Any:
    """A ``tqdm`` bar (``update``, ``close``, a context manager) that draws nothing unless
    ``enabled`` and standard error is a terminal.

    Parameters
    ----------
    desc : str
        What is being done: ``importing``, ``demo``, ...
    total : int, optional
        How many units there will be, when known.
    unit : str
        What is counted.
    enabled : bool
        False: never drawn (the library's ``progress=False``).
    leave : bool
        Keep the finished bar on screen.
    scale : bool
        Show large counts as 12.3k.
    delay : float
        Seconds before the bar first shows (none for quick work).
    """
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit=" " + unit,
        unit_scale=scale,
        disable=None if enabled else True,  # None: a terminal only
        leave=leave,
        mininterval=0.5,
        delay=delay,
    )
