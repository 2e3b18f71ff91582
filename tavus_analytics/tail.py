"""``serve --tail``: one line per request while the collector serves.

A callback's line says when it arrived (UTC, milliseconds), its event type (or its kind, for the
flat bodies that have none), its conversation (or video, or replica) and the answer::

    2026-11-04T10:15:02.114Z  system.shutdown                   c123456         200 stored #42
    2026-11-04T10:15:02.131Z  application.transcription_ready   c123456         200 duplicate of #38
    2026-11-04T10:15:09.870Z  -                                 -               401 missing or ...
    2026-11-04T10:16:40.515Z  GET /healthz                      -               200

A refusal's answer is its status and the reason the sender got: ``401 missing or wrong token``,
``400 body is not valid JSON: ...``, ``413 body is 20000000 bytes, over the limit ...``,
``503 database unavailable, retry later``. Other requests show their method and path, never the
query string (where the token travels).

Nothing of a body is shown but its envelope's event type and ids: never a transcript, never the
token. What a sender wrote is shown with control characters escaped (a hostile event type
cannot move the cursor or recolour the terminal) and cut at a reasonable width.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

__all__ = ["Tail"]

_WHAT = 32
_WHO = 14
_LONGEST = 120


def _shown(text: Any, width: int | None = None) -> str:
    """Sender-written text made safe for a terminal: control characters as ``\\x1b``-style
    escapes, cut at ``_LONGEST`` characters, padded to ``width``."""
    if text is None or text == "":
        text = "-"
    text = str(text)
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    if len(text) > _LONGEST:
        text = text[: _LONGEST - 3] + "..."
    return text if width is None else text.ljust(width)


class Tail:
    """Writes the tail's lines to ``out`` (default: standard output), one whole line at a time.

    Parameters
    ----------
    out : text stream, optional
        Where the lines go; flushed after each.
    clock : callable, optional
        ``() -> datetime`` (UTC), for tests; default the current time.
    """

    def __init__(self, out: TextIO | None = None, clock: Callable[[], datetime] | None = None):
        self.out = out
        self.clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()

    def line(self, what: Any, who: Any, answer: str) -> None:
        """One line: the time, ``what`` (an event type, a kind or ``METHOD /path``), ``who``
        (a conversation, video or replica id) and the answer."""
        now = self.clock().astimezone(UTC)
        stamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
        text = f"{stamp}  {_shown(what, _WHAT)}  {_shown(who, _WHO)}  {_shown(answer)}\n"
        out = self.out or sys.stdout
        with self._lock:
            out.write(text)
            out.flush()

    def callback(
        self,
        status: int,
        fields: Any = None,
        *,
        rowid: int | None = None,
        duplicate: bool = False,
        reason: str | None = None,
    ) -> None:
        """The line of one ``POST /webhook``: ``fields`` is the body's
        :class:`~tavus_analytics.events.Fields` when it was read and parsed."""
        what = who = None
        if fields is not None:
            what = fields.event_type or fields.kind
            who = fields.conversation_id or fields.video_id or fields.replica_id
        if status == 200:
            answer = f"200 duplicate of #{rowid}" if duplicate else f"200 stored #{rowid}"
        else:
            answer = f"{status} {reason}" if reason else str(status)
        self.line(what, who, answer)

    def request(self, method: str | None, path: str | None, status: str | int) -> None:
        """The line of any other request: method and path (never the query string)."""
        self.line(f"{method or '-'} {path or '/'}", None, str(status))
