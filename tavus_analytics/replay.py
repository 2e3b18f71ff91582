"""Send stored callbacks again, byte for byte, to another endpoint.

For a staging collector, a teammate's app or a new version of a webhook handler: the stored
``body`` of each selected callback is POSTed exactly as it was received (the same bytes, so the
same SHA-256), in arrival order, with ``Content-Type: application/json``, at a bounded rate.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

import requests

from .errors import ReplayError
from .importer import connection_error, parse_time
from .masking import mask_url
from .progress import progress as progress_bar
from .store import Store

REPLAY_USER_AGENT = "tavus-analytics replay"


@dataclass
class ReplayResult:
    """What a replay did: how many callbacks matched and were sent, and the answers by HTTP
    status."""

    selected: int = 0
    sent: int = 0
    answers: Counter = field(default_factory=Counter)

    @property
    def refused(self) -> int:
        """Answers other than 2xx."""
        return sum(n for status, n in self.answers.items() if not 200 <= status < 300)


def display_url(url: str) -> str:
    """The URL as it may be printed: without its query string, which may carry a token."""
    return mask_url(url, hide_query=True)


def _utc_text(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def select_callbacks(
    store: Store,
    *,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
    event_types: Sequence[str] = (),
    conversations: Sequence[str] = (),
) -> list[tuple[int, str]]:
    """``(id, body)`` of the stored callbacks to replay, in arrival order.

    Parameters
    ----------
    store : Store or PgStore
        The database.
    since, until : str or datetime, optional
        Arrival time (``received_at``, UTC) at or after ``since`` and before ``until``.
    event_types : sequence of str
        Only these event types (all when empty).
    conversations : sequence of str
        Only these conversation ids (all when empty).
    """
    since, until = parse_time(since), parse_time(until)
    return store.select_bodies(
        since=None if since is None else _utc_text(since),
        until=None if until is None else _utc_text(until),
        event_types=event_types,
        conversations=conversations,
    )


def replay(
    store: Store,
    url: str,
    *,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
    event_types: Sequence[str] = (),
    conversations: Sequence[str] = (),
    rate: float = 10.0,
    timeout: float = 10.0,
    session: requests.Session | None = None,
    progress: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> ReplayResult:
    """POST the selected callbacks' stored bodies, byte for byte, to ``url``.

    Parameters
    ----------
    store : Store
        The database to read.
    url : str
        Where to POST (``http://HOST:PORT/webhook?token=...``).
    since, until, event_types, conversations
        The selection, as in :func:`select_callbacks`.
    rate : float
        At most this many requests per second (``0``: as fast as the target answers).
    timeout : float
        Seconds to wait for each answer.
    session : requests.Session, optional
        The HTTP session (one is made and closed when omitted).
    progress : bool
        Show a progress bar on standard error (only on a terminal).
    sleep : callable
        How to wait between requests.

    Raises
    ------
    ReplayError
        When ``url`` is not an http(s) URL, or the target cannot be reached (the message says how
        many callbacks were sent before).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ReplayError(f"{url!r} is not an http(s) URL: use --to http://HOST:PORT/PATH")
    rows = select_callbacks(
        store, since=since, until=until, event_types=event_types, conversations=conversations
    )
    result = ReplayResult(selected=len(rows))
    own = session is None
    session = session or requests.Session()
    headers = {"Content-Type": "application/json", "User-Agent": REPLAY_USER_AGENT}
    interval = 1.0 / rate if rate and rate > 0 else 0.0
    bar = progress_bar("replaying", total=len(rows), enabled=progress)
    last = None
    try:
        for _, body in rows:
            if interval and last is not None:
                wait = last + interval - time.monotonic()
                if wait > 0:
                    sleep(wait)
            last = time.monotonic()
            try:
                answer = session.post(
                    url, data=body.encode("utf-8"), headers=headers, timeout=timeout
                )
            except requests.RequestException as e:
                after = f" after {result.sent} of {len(rows)} callbacks" if result.sent else ""
                raise ReplayError(
                    f"cannot reach {display_url(url)}{after}: {connection_error(e)}"
                ) from None
            answer.close()
            result.sent += 1
            result.answers[answer.status_code] += 1
            bar.update(1)
    finally:
        bar.close()
        if own:
            session.close()
    return result
