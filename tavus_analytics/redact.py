"""Personal data out of what leaves the database: the one place that redacts it.

Transcripts, perception analyses, post-call actions and objective outputs hold what callers
said and showed. Where a table, a report, a search result or a conversation's page leaves the
analyst's hands, ``redact=True`` (``--redact`` on the command line) replaces, in every text:

==============================  =============================================================
``[URL_WITH_CREDENTIALS]``      a URL with a user name or password (``https://u:p@host/x``)
``[EMAIL]``                     an e-mail address
``[CARD]``                      13 to 19 digits starting with 2 to 6, in one run or in groups
                                of four (4-6-5 and 4-6-4 too) split by spaces or dashes, that
                                pass the Luhn check
``[IP]``                        an IPv4 or IPv6 address
``[PHONE]``                     a phone number: international (``+44 20 7946 0958``,
                                ``0044 20 ...``), North American (``(415) 555-2671``,
                                ``415-555-2671``), or national with a leading 0 and at least
                                one separator (``030 1234567``, ``06 12 34 56 78``)
==============================  =============================================================

What is left alone, on purpose: dates and times (``2026-06-09``, ``09.06.2026``, ``10:30``),
years, order and account numbers, UUIDs, digit runs that fail the Luhn check, and bare runs of
digits without a ``+`` (``4155552671`` cannot be told from an order number). Redaction happens
on the way out only: the stored bodies, their SHA-256 and ``replay`` stay exact.

Identifiers Tavus generates (:data:`KEY_COLUMNS`: ``conversation_id``, ``replica_id``, ...) are
kept by :func:`redact_frame`, so that redacted tables still join.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Any

import pandas as pd

__all__ = [
    "KEY_COLUMNS",
    "PLACEHOLDERS",
    "luhn_valid",
    "redact_frame",
    "redact_snippet",
    "redact_text",
    "redact_value",
    "spans",
]

#: What each kind of personal data becomes, in the order they are looked for.
PLACEHOLDERS: dict[str, str] = {
    "url_with_credentials": "[URL_WITH_CREDENTIALS]",
    "email": "[EMAIL]",
    "card": "[CARD]",
    "ip": "[IP]",
    "phone": "[PHONE]",
}

#: Columns :func:`redact_frame` leaves as they are by default: identifiers that Tavus or this
#: library make, not what a caller said.
KEY_COLUMNS = frozenset(
    {
        "annotation_id",
        "callback_id",
        "conversation_id",
        "guardrail_uuid",
        "id",
        "inference_id",
        "interaction_id",
        "recording_id",
        "replica_id",
        "tool_call_id",
        "tool_id",
        "video_id",
    }
)


def _start(after: str) -> str:
    """Where a match may start: not right after one of the characters ``after`` (inside a word
    or a number), but right after a JSON escape such as ``\\n`` (text holding JSON text)."""
    return rf"(?:(?<=\\[nrtbf])|(?<![\\{after}]))"


_URL_WITH_CREDENTIALS = re.compile(
    _start(r"\w+.-") + r"[A-Za-z][A-Za-z0-9+.-]*://[^\s/?#@\[\]<>\"'`\\]+@[^\s<>\"'`\\]*"
)
_EMAIL = re.compile(_start(r"\w.+%'-") + r"[\w.+%'-]+@(?:[^\W_][\w-]*\.)+[^\W\d_]{2,}(?![\w-])")
# 13-19 digits starting with 2 to 6 (every major network: Mastercard 2 and 5, American Express 3,
# Visa 4, Maestro and Discover 5 and 6; a Unix time in milliseconds starts with 1): in one run,
# in groups of four (the last of one to four, and an optional fifth group of one to three), or
# 4-6-5 / 4-6-4; one kind of separator throughout.
_CARD = re.compile(
    _start(r"\w.,-") + r"(?=[2-6])(?:\d{13,19}"
    r"|\d{4}(?P<s>[ -])\d{4}(?P=s)\d{4}(?P=s)\d{1,4}(?:(?P=s)(?P<fifth>\d{1,3}))?"
    r"|\d{4}(?P<t>[ -])\d{6}(?P=t)\d{4,5})"
    r"(?![\w]|[.,-]\d)"
)
_IPV6 = re.compile(
    _start(r"\w:.%")
    + r"(?=[0-9A-Fa-f.]*:[0-9A-Fa-f.]*:)[0-9A-Fa-f:.]+(?:%[0-9A-Za-z_-]+)?(?![\w:%])"
)
_IPV4 = re.compile(_start(r"\w.") + r"(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
_PHONE = re.compile(
    _start(r"\w+/.,-")
    + r"""
    (?:
        (?:\+|00(?=\d{1,3}[ .-]))\d{1,3}                  # country code
        (?:[ .-]?\(0\))?                                  # (0), the trunk prefix
        [ .-]?(?:\(\d{1,5}\)|\d{1,14})                      # one group, or all the digits
        (?:[ .-]?\(\d{1,5}\)|(?<=\))\d{1,12}|[ .-]\d{1,12}){0,6}  # more, after a separator
      |
        (?:1[ .-])?(?:\(\d{3}\)[ .-]?|\d{3}[ .-])\d{3}[ .-]\d{4}     # North America
      |
        (?:\(0\d{1,4}\)[ ]?|0\d{1,4}[ ./-])\d{2,8}(?:[ .-]\d{2,8}){0,4}  # national, 0...
    )
    (?![\w]|[.,:/-]\d)
    """,
    re.VERBOSE,
)
# A date at the start of a phone candidate: 09.06.2026, 2026-06-09, 06/09/26.
_DATE = re.compile(r"\d{1,2}([./-])\d{1,2}\1\d{2,4}(?!\d)|\d{4}([./-])\d{1,2}\2\d{1,2}(?!\d)")
_TRAILING = ".,;:!?)]}'\""
_SEPARATOR = re.compile(r"[ .-]")


def luhn_valid(digits: str) -> bool:
    """Whether a string of digits passes the Luhn check (as every payment card number does).

    >>> luhn_valid("4242424242424242"), luhn_valid("4242424242424241")
    (True, False)
    """
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _url(m: re.Match) -> tuple[int, int] | None:
    end = m.end()
    text = m.string
    while end > m.start() and text[end - 1] in _TRAILING:
        end -= 1
    return (m.start(), end) if "@" in text[m.start() : end] else None


def _card(m: re.Match) -> tuple[int, int] | None:
    digits = re.sub(r"\D", "", m.group(0))
    if 13 <= len(digits) <= 19 and luhn_valid(digits):
        return m.span()
    if m.group("fifth"):
        # "4242 4242 4242 4242 3": the number may be the four groups before what follows it.
        end = m.start("fifth") - 1
        digits = re.sub(r"\D", "", m.string[m.start() : end])
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            return m.start(), end
    return None


def _ipv6(m: re.Match) -> tuple[int, int] | None:
    start, end = m.span()
    text = m.string
    while end > start and text[end - 1] == ".":
        end -= 1
    address = text[start:end].split("%", 1)[0]
    if not any(ch.isalnum() for ch in address):
        return None  # "::" alone is punctuation, not an address
    try:
        ipaddress.IPv6Address(address)
    except ValueError:
        return None  # a time such as 10:30:45
    return start, end


def _ipv4(m: re.Match) -> tuple[int, int] | None:
    try:
        ipaddress.IPv4Address(m.group(0))
    except ValueError:
        return None
    return m.span()


def _phone(m: re.Match) -> tuple[int, int] | None:
    text = m.group(0)
    if _DATE.match(text):
        return None
    if text.startswith(("+", "00")):
        # At most 15 digits (E.164) besides the 00: a group of digits after them is another
        # number.
        limit = 15 + (2 if text.startswith("00") else 0)
        while sum(ch.isdigit() for ch in text) > limit and _SEPARATOR.search(text):
            text = text[: max(i.start() for i in _SEPARATOR.finditer(text))]
        digits = sum(ch.isdigit() for ch in text)
        ok = 8 + limit - 15 <= digits <= limit
        return (m.start(), m.start() + len(text)) if ok else None
    digits = sum(ch.isdigit() for ch in text)
    if text.lstrip("(").startswith("0"):
        return m.span() if 9 <= digits <= 12 else None
    return m.span() if digits in (10, 11) else None  # North America, with or without the 1


def _digits(text: str) -> int:
    return sum(map(text.count, "0123456789"))


#: Each kind: what a text must hold for it to be worth looking for (given the text and its
#: number of digits; most texts hold none of them), its pattern, and the check of a match.
_FINDERS = (
    ("url_with_credentials", lambda t, d: "@" in t and "://" in t, _URL_WITH_CREDENTIALS, _url),
    ("email", lambda t, d: "@" in t, _EMAIL, lambda m: m.span()),
    ("card", lambda t, d: d >= 13, _CARD, _card),
    ("ip", lambda t, d: "::" in t or t.count(":") >= 6, _IPV6, _ipv6),
    ("ip", lambda t, d: d >= 4 and t.count(".") >= 3, _IPV4, _ipv4),
    ("phone", lambda t, d: d >= 8, _PHONE, _phone),
)


def spans(text: str) -> list[tuple[int, int, str]]:
    """Where ``text`` holds personal data: ``(start, end, placeholder)``, in order, not
    overlapping. Each kind is looked for in the order of :data:`PLACEHOLDERS`, in what the
    kinds before it left (the e-mail address in a URL's credentials is the URL's)."""
    digits = _digits(text)
    found: list[tuple[int, int, str]] = []
    masked = text
    for kind, worth, pattern, check in _FINDERS:
        if not worth(text, digits):
            continue
        new = []
        for m in pattern.finditer(masked):
            span = check(m)
            if span is not None and span[1] > span[0]:
                new.append((*span, PLACEHOLDERS[kind]))
        if new:
            found.extend(new)
            # Blank out what was found, keeping offsets, so that no later kind matches in it.
            chars = list(masked)
            for start, end, _ in new:
                chars[start:end] = "\0" * (end - start)
            masked = "".join(chars)
    return sorted(found)


def redact_text(text: str) -> str:
    """``text`` with every e-mail address, phone number, card number (Luhn-checked), IP address
    and URL with credentials replaced by its placeholder (:data:`PLACEHOLDERS`).

    >>> redact_text("Mail jane.doe@example.com or call +44 20 7946 0958 on 2026-06-09 at 10:30")
    'Mail [EMAIL] or call [PHONE] on 2026-06-09 at 10:30'
    """
    found = spans(text)
    if not found:
        return text
    out, at = [], 0
    for start, end, placeholder in found:
        out.append(text[at:start])
        out.append(placeholder)
        at = end
    out.append(text[at:])
    return "".join(out)


def redact_value(value: Any) -> Any:
    """A value as a callback holds it, redacted: text as by :func:`redact_text`, the keys and
    values of dicts and the items of lists and tuples in turn, and an integer that is a card
    number (a JSON number, as an objective's output may send one) as ``[CARD]``. Other values
    come back as they are."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {redact_value(k): redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_value(v) for v in value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**12:
        text = str(abs(value))
        if redact_text(text) != text:
            return redact_text(text)
    return value


def _redact_strings(column: pd.Series) -> pd.Series:
    values = column.to_numpy(dtype=object, na_value=None)
    out = values.copy()
    done: dict[str, str] = {}  # a column repeats its values (reasons, prompts, statuses)
    for i, v in enumerate(values):
        if isinstance(v, str):
            got = done.get(v)
            out[i] = got if got is not None else done.setdefault(v, redact_text(v))
    return pd.Series(pd.array(out, dtype=column.dtype), index=column.index, name=column.name)


def _redact_categories(column: pd.Series) -> pd.Series:
    categories = column.cat.categories
    renamed = [redact_text(c) if isinstance(c, str) else c for c in categories]
    if len(set(renamed)) == len(renamed):
        return column.cat.rename_categories(pd.Index(renamed, dtype=categories.dtype))
    # Two texts that differ only in what was redacted are one category now.
    values = column.astype(object).map(redact_value, na_action="ignore")
    kept = pd.Index(list(dict.fromkeys(renamed)), dtype=categories.dtype)
    return values.astype(pd.CategoricalDtype(kept, column.cat.ordered))


def redact_frame(frame: pd.DataFrame, columns: Iterable[str] | None = None) -> pd.DataFrame:
    """A copy of ``frame`` with personal data in its text replaced by placeholders.

    Parameters
    ----------
    frame : pandas.DataFrame
        Any table (those of :func:`tavus_analytics.load` or your own).
    columns : iterable of str, optional
        The columns to redact; default: every text, categorical and object column but the
        identifiers of :data:`KEY_COLUMNS`. Nested values (dicts, lists) are redacted inside.

    Returns
    -------
    pandas.DataFrame
        The same columns, dtypes and index; ``frame`` itself is not changed.
    """
    out = frame.copy()
    if columns is None:
        names = [
            name
            for name in out.columns
            if name not in KEY_COLUMNS
            and (
                pd.api.types.is_string_dtype(out[name].dtype)
                or isinstance(out[name].dtype, pd.CategoricalDtype)
            )
        ]
    else:
        names = list(columns)
        missing = [name for name in names if name not in out.columns]
        if missing:
            raise KeyError(f"no column {', '.join(map(repr, missing))} to redact")
    for name in names:
        column = out[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            out[name] = _redact_categories(column)
        elif column.dtype == object:
            out[name] = column.map(redact_value, na_action="ignore")
        elif pd.api.types.is_string_dtype(column.dtype):
            out[name] = _redact_strings(column)
    return out


def redact_snippet(snippet: str, content: str, before: str = "[", after: str = "]") -> str:
    """A search snippet of ``content`` (the words around a match, marked with ``before`` and
    ``after``, ``…`` where text was cut) with the personal data of ``content`` redacted.

    Redacting the snippet alone would miss what its cut leaves: three of the four groups of a
    card number, the end of a phone number, an address split by a match's marks. Here the
    snippet is found in ``content``, widened to whole pieces of personal data, and each is
    replaced by its placeholder; marks inside one move to its edges. A snippet that cannot be
    found in ``content`` becomes the whole redacted ``content``.
    """
    plain, marks = _unmark(snippet, before, after)
    lead = plain.startswith("…") and not content.startswith("…")
    trail = plain.endswith("…") and not content.endswith("…")
    core = plain[1 if lead else 0 : len(plain) - (1 if trail else 0)]
    at = content.find(core) if core else -1
    if at < 0:
        return redact_text(content)
    found = spans(content)
    a, b = at, at + len(core)
    for start, end, _ in found:
        if start < b and end > a:
            a, b = min(a, start), max(b, end)
    shift = at - (1 if lead else 0)
    inserts: dict[int, list[str]] = {}
    for offset, is_open in marks:
        pos = offset + shift
        for start, end, _ in found:
            if start < pos < end:  # inside a piece of personal data: to its edge
                pos = start if is_open else end
        inserts.setdefault(pos, []).append(before if is_open else after)
    out = ["…" if content[:a].strip() else ""]
    i = a
    for start, end, placeholder in [*(s for s in found if a <= s[0] < b), (b, b, "")]:
        for j in range(i, start):
            out.extend(inserts.get(j, ()))
            out.append(content[j])
        out.extend(inserts.get(start, ()))
        out.append(placeholder)
        i = end
    rest = content[b:]
    if trail and rest:
        out.append("…" if any(ch.isalnum() for ch in rest) else rest.rstrip())
    return "".join(out)


def _unmark(snippet: str, before: str, after: str) -> tuple[str, list[tuple[int, bool]]]:
    """``snippet`` without its marks, and where each mark was: (offset in the plain text,
    whether it opens)."""
    if not before and not after:
        return snippet, []
    plain: list[str] = []
    marks: list[tuple[int, bool]] = []
    i, n, size = 0, len(snippet), 0
    opened = False
    while i < n:
        # With equal marks, they alternate: open, close, open, ...
        mark = after if opened else before
        other = before if opened else after
        if mark and snippet.startswith(mark, i):
            marks.append((size, not opened))
            opened = not opened
            i += len(mark)
        elif other and other != mark and snippet.startswith(other, i):
            marks.append((size, other == before))
            i += len(other)
        else:
            plain.append(snippet[i])
            size += 1
            i += 1
    return "".join(plain), marks
