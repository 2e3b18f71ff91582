"""Where alerts and digests go: a Slack-compatible incoming webhook, a generic webhook (JSON) or
e-mail (SMTP).

A :class:`Message` has a subject, a plain text (what a person reads), an optional HTML body (for
e-mail) and ``fields`` (what a machine reads: the JSON a generic webhook receives). Channels are
declared in the rules file (:func:`tavus_analytics.alerts.read_rules`) and made by
:func:`channel`; :func:`deliver` sends one message to several and says which failed, without
stopping at the first.

Secrets stay out of what is sent and printed: a webhook URL (Slack's holds its token in the
path) is shown as its scheme and host only; a password is named by the environment variable
that holds it, never written in the file; and every message passes through :func:`scrub`, which
masks the collector's token wherever it might appear.
"""

from __future__ import annotations

import os
import smtplib
import ssl
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

from .errors import NotificationFailed
from .masking import first_line, mask_text

__all__ = [
    "CHANNEL_TYPES",
    "Channel",
    "EmailChannel",
    "Message",
    "SlackChannel",
    "WebhookChannel",
    "channel",
    "deliver",
    "scrub",
]

#: Seconds a channel may take to accept a message.
TIMEOUT_S = 10
USER_AGENT = "tavus-analytics"


@dataclass(frozen=True)
class Message:
    """One notification: ``subject`` and ``text`` for people, ``html`` for e-mail readers that
    show it, ``fields`` for machines (a generic webhook receives them as JSON). ``monospace``:
    the text is laid out in columns (a chat shows it as a code block)."""

    subject: str
    text: str
    fields: dict[str, Any] = field(default_factory=dict)
    html: str | None = None
    monospace: bool = False


def scrub(message: Message, *secrets: str | None) -> Message:
    """``message`` with every occurrence of each secret (the collector's token) masked."""
    secrets = tuple(s for s in secrets if s)
    if not secrets:
        return message

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return mask_text(value, *secrets)
        if isinstance(value, dict):
            return {clean(k): clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        return value

    return Message(
        clean(message.subject),
        clean(message.text),
        clean(message.fields),
        None if message.html is None else clean(message.html),
        message.monospace,
    )


def _shown(url: str) -> str:
    """A webhook URL as it may be printed: scheme and host (the path may hold its token)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")


@dataclass
class Channel:
    """A place to send messages to; ``name`` is its name in the rules file."""

    name: str

    def send(self, message: Message) -> None:  # pragma: no cover - every type has its own
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover
        raise NotImplementedError


@dataclass
class _HttpChannel(Channel):
    url: str = ""

    def _post(self, payload: dict[str, Any]) -> None:
        import requests

        try:
            r = requests.post(
                self.url, json=payload, timeout=TIMEOUT_S, headers={"User-Agent": USER_AGENT}
            )
        except requests.RequestException as e:
            parts = urlsplit(self.url)
            hidden = (self.url, parts.path + (f"?{parts.query}" if parts.query else ""))
            raise NotificationFailed(
                f"channel {self.name}: could not reach {_shown(self.url)}: "
                f"{first_line(e, *(h for h in hidden if len(h) > 1))}",
                self.name,
            ) from None
        if not 200 <= r.status_code < 300:
            raise NotificationFailed(
                f"channel {self.name}: {_shown(self.url)} answered {r.status_code}", self.name
            )


@dataclass
class SlackChannel(_HttpChannel):
    """A Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat, Discord's
    ``/slack`` endpoint): receives ``{"text": ...}``."""

    def send(self, message: Message) -> None:
        if message.monospace:  # the subject in bold, the columns in a code block
            self._post({"text": f"*{message.subject}*\n```\n{message.text.rstrip()}\n```"})
        else:
            self._post({"text": message.text})

    def describe(self) -> str:
        return f"slack webhook at {_shown(self.url)}"


@dataclass
class WebhookChannel(_HttpChannel):
    """A generic webhook: receives the message's ``fields`` as JSON, with ``subject`` and
    ``text``."""

    def send(self, message: Message) -> None:
        self._post({**message.fields, "subject": message.subject, "text": message.text})

    def describe(self) -> str:
        return f"webhook at {_shown(self.url)}"


@dataclass
class EmailChannel(Channel):
    """E-mail through an SMTP server: STARTTLS when asked (the default on port 587), TLS from
    the start on port 465 (``tls = true``), a login when a username is given."""

    host: str = ""
    port: int = 587
    sender: str = ""
    to: tuple[str, ...] = ()
    username: str | None = None
    password: str | None = None
    starttls: bool = True
    tls: bool = False

    def send(self, message: Message) -> None:
        email = EmailMessage()
        email["Subject"] = message.subject
        email["From"] = self.sender
        email["To"] = ", ".join(self.to)
        email.set_content(message.text)
        if message.html:
            email.add_alternative(message.html, subtype="html")
        try:
            if self.tls:
                smtp = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=TIMEOUT_S, context=ssl.create_default_context()
                )
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=TIMEOUT_S)
            with smtp:
                if self.starttls and not self.tls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(email)
        except (OSError, smtplib.SMTPException) as e:
            raise NotificationFailed(
                f"channel {self.name}: the SMTP server {self.host}:{self.port} refused or could "
                f"not be reached: {first_line(e, self.password)}",
                self.name,
            ) from None

    def describe(self) -> str:
        return f"e-mail to {', '.join(self.to)} through {self.host}:{self.port}"


#: The channel types a rules file may declare.
CHANNEL_TYPES = ("slack", "webhook", "email")

_KEYS = {
    "slack": {"type", "url", "url_env"},
    "webhook": {"type", "url", "url_env"},
    "email": {
        "type",
        "host",
        "port",
        "from",
        "to",
        "username",
        "password_env",
        "starttls",
        "tls",
    },
}


def channel(
    name: str,
    table: Mapping[str, Any],
    problem: Callable[[str, str | None], Exception],
    environ: Mapping[str, str] | None = None,
) -> Channel:
    """The channel a rules file declares as ``[channels.NAME]``.

    ``problem(message, key)`` makes the exception to raise (it names the file, the line of
    ``key`` and the channel); ``environ`` gives the variables named by ``url_env`` and
    ``password_env`` (default ``os.environ``).
    """
    environ = os.environ if environ is None else environ
    kind = table.get("type")
    if kind not in CHANNEL_TYPES:
        raise problem(f"type must be one of {', '.join(CHANNEL_TYPES)} (got {kind!r})", "type")
    unknown = sorted(set(table) - _KEYS[kind])
    if unknown:
        allowed = ", ".join(sorted(_KEYS[kind]))
        raise problem(
            f"unknown key {unknown[0]!r} for a {kind} channel (use {allowed})", unknown[0]
        )

    def text(key: str, required: bool = True) -> str | None:
        value = table.get(key)
        if value is None:
            if required:
                raise problem(f"a {kind} channel needs {key}", None)
            return None
        if not isinstance(value, str) or not value.strip():
            raise problem(f"{key} must be a non-empty string", key)
        return value.strip()

    def from_env(key: str) -> str | None:
        variable = text(key, required=False)
        if variable is None:
            return None
        value = environ.get(variable, "")
        if not value:
            raise problem(f"{key} names {variable}, which is not set in the environment", key)
        return value

    if kind in ("slack", "webhook"):
        if ("url" in table) == ("url_env" in table):
            raise problem(f"a {kind} channel needs url or url_env (one of them)", None)
        url = text("url", required=False) or from_env("url_env")
        if not url.startswith(("https://", "http://")):
            raise problem("the webhook URL must start with https:// or http://", "url")
        cls = SlackChannel if kind == "slack" else WebhookChannel
        return cls(name, url)
    to = table.get("to")
    if isinstance(to, str):
        to = [to]
    if not to or not all(isinstance(t, str) and "@" in t for t in to):
        raise problem("to must be an e-mail address or a list of them", "to")
    port = table.get("port", 587)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise problem(f"port must be a TCP port number (got {port!r})", "port")
    flags = {}
    for key, default in (("starttls", port == 587), ("tls", port == 465)):
        value = table.get(key, default)
        if not isinstance(value, bool):
            raise problem(f"{key} must be true or false", key)
        flags[key] = value
    return EmailChannel(
        name,
        host=text("host"),
        port=port,
        sender=text("from"),
        to=tuple(to),
        username=text("username", required=False),
        password=from_env("password_env"),
        **flags,
    )


def deliver(
    message: Message, channels: Iterable[Channel], *secrets: str | None
) -> dict[str, NotificationFailed | None]:
    """Send ``message`` (scrubbed of ``secrets``) to every channel; ``{name: None}`` for each
    that took it, ``{name: NotificationFailed}`` for each that did not."""
    message = scrub(message, *secrets)
    outcome: dict[str, NotificationFailed | None] = {}
    for ch in channels:
        try:
            ch.send(message)
            outcome[ch.name] = None
        except NotificationFailed as e:
            outcome[ch.name] = e
    return outcome
