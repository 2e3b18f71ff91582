"""Secrets out of what is printed: the one place that masks passwords and tokens.

A database URL's password, a callback URL's token and an API key never reach a banner, an error
message, a report or a log line; whatever prints one of them goes through here.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

MASK = "***"

#: Query parameters whose values are secrets.
SECRET_PARAMETERS = frozenset({"password", "token", "secret", "api_key", "apikey", "key"})


def mask_url(url: str, *, hide_query: bool = False) -> str:
    """``url`` with its password (``user:password@``) and the values of secret query
    parameters (``token=``, ``password=``, ...) replaced by ``***``; with ``hide_query``, the
    whole query string as ``?...`` (for a URL of someone else's, whose secrets may have any
    name).

    >>> mask_url("postgresql://tavus:s3cret@db:5432/tavus?password=x&sslmode=require")
    'postgresql://tavus:***@db:5432/tavus?password=***&sslmode=require'
    >>> mask_url("https://example.ngrok.app/webhook?token=abc")
    'https://example.ngrok.app/webhook?token=***'
    >>> mask_url("https://hooks.example.com/in?sig=abc", hide_query=True)
    'https://hooks.example.com/in?...'
    """
    parts = urlsplit(url)
    if hide_query:
        shown = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        return mask_url(shown) + ("?..." if parts.query else "")
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":" + MASK
        netloc = f"{userinfo}@{host}"
    query = "&".join(
        (p.split("=", 1)[0] + "=" + MASK)
        if p.split("=", 1)[0].lower() in SECRET_PARAMETERS and "=" in p
        else p
        for p in parts.query.split("&")
        if p
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def mask_text(text: str, *secrets: str | None) -> str:
    """``text`` with every occurrence of each (non-empty) secret replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


def first_line(exc: BaseException, *secrets: str | None) -> str:
    """The first line of an exception's message (its type's name when empty), secrets masked:
    what a one-line error may say about a driver's exception."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return mask_text(line, *secrets)
