"""Every exception tavus-analytics raises, in one place.

``TavusAnalyticsError`` is the base; the command line shows its message (no traceback) and exits
non-zero. The collector maps ``InvalidCallback`` to 400, ``PayloadTooLarge`` to 413 and
``StoreUnavailable`` to 503. The command line's own errors (``ImportFileError``,
``TavusApiError``, ``ReplayError``, ``InvalidQuery``, ``ExportError``) are listed here too, with
``DatabaseNotFound`` (no file at the path), ``NotOurDatabase`` (an empty file, a file that is not
a database, another program's database: never written to) and ``MissingExtra`` (an optional
package is not installed: the message says which extra). Each message says what is wrong and
what to do, in one line.
``ConversationNotFound`` (no such call in the dataset: ``tavus-analytics show`` exits 2) and
``InvalidCriteria`` (success criteria that cannot be read: the message names the line and the
rule) come from one call's page and from ``Dataset.evaluate``.
``NotEnoughText`` (content analysis asked for more than the transcripts hold).
``InvalidAnnotation`` (a review label or note that cannot be stored as given).
package is not installed: the message says which extra). Live operations add ``TunnelUnavailable``
(``serve --tunnel`` cannot open its public URL), ``InvalidRules`` (an alert or digest rules file
that cannot be used: the message names the file, the line and the rule) and
``NotificationFailed`` (a channel refused a message or could not be reached). Each message says
what is wrong and what to do, in one line.
"""

from __future__ import annotations


class TavusAnalyticsError(Exception):
    """Base class of the errors a user can cause and fix."""


class InvalidCallback(TavusAnalyticsError):
    """A callback body that is not a UTF-8 JSON object."""


class PayloadTooLarge(TavusAnalyticsError):
    """A callback body over the configured size limit."""


class StoreUnavailable(TavusAnalyticsError):
    """The database cannot be written right now (locked, read-only, disk full)."""


class ImportFileError(TavusAnalyticsError):
    """A file to import cannot be read."""


class TavusApiError(TavusAnalyticsError):
    """Tavus's API refused a request, or could not be reached (``status`` is ``None`` then)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ReplayError(TavusAnalyticsError):
    """The replay target cannot be reached, or is not a URL."""


class InvalidQuery(TavusAnalyticsError):
    """A full-text query SQLite FTS5 cannot parse."""


class ExportError(TavusAnalyticsError):
    """An export that cannot be made as asked."""


class MissingExtra(TavusAnalyticsError):
    """An optional package is not installed; the message names the extra that brings it."""

    def __init__(self, message: str, extra: str) -> None:
        super().__init__(message)
        self.extra = extra


class NotOurDatabase(TavusAnalyticsError):
    """A database that tavus-analytics did not make (another program's, an empty file, a file
    that is not a database): commands that read refuse it, and nothing creates tables in it."""


class DatabaseNotFound(TavusAnalyticsError):
    """The database file does not exist."""

    def __init__(self, path) -> None:
        super().__init__(
            f"no database at {path}: start the collector (tavus-analytics serve) or make demo "
            f"data (tavus-analytics demo --db {path})"
        )
        self.path = path


class ConversationNotFound(TavusAnalyticsError):
    """No callback of the dataset names this conversation id (``conversation_id`` says which)."""

    def __init__(self, message: str, conversation_id: str) -> None:
        super().__init__(message)
        self.conversation_id = conversation_id


class InvalidCriteria(TavusAnalyticsError):
    """Success criteria that cannot be read: not TOML, an unknown rule, a value of the wrong
    type. ``line`` (1-based, in the file; ``None`` for criteria given as a dict) and ``rule``
    (the rule's number and name, ``None`` for the file as a whole) say where."""

    def __init__(self, message: str, line: int | None = None, rule: str | None = None) -> None:
        super().__init__(message)
        self.line = line
        self.rule = rule


class NotEnoughText(TavusAnalyticsError, ValueError):
    """Content analysis was asked for more than the transcripts can give (for example more
    topics than there are calls with words); the message says what to change."""


class InvalidAnnotation(TavusAnalyticsError):
    """A review label or note that cannot be stored as given: empty, too long, for a
    conversation the database holds no callback of, or an annotation id that does not exist."""


class TunnelUnavailable(TavusAnalyticsError):
    """``serve --tunnel`` cannot open its public URL: no ngrok authtoken, a server other than
    waitress, or ngrok refused (a domain that is not yours, no network)."""


class InvalidRules(TavusAnalyticsError):
    """An alert or digest rules file that cannot be used; the message names the file, the line
    and the rule."""


class NotificationFailed(TavusAnalyticsError):
    """A channel (a Slack-compatible or generic webhook, an SMTP server) refused a message or
    could not be reached; ``channel`` is its name."""

    def __init__(self, message: str, channel: str) -> None:
        super().__init__(message)
        self.channel = channel
