"""Point the account's objectives and guardrails at the collector: ``tavus-analytics setup``.

A conversation's callbacks go to the conversation's ``callback_url``; an objective's completion
goes to that objective's own ``callback_url``, a guardrail's trigger to that guardrail's. Tavus
sends these once, keeps no history of them and has no endpoint to fetch them again
(:data:`LOST_IF_MISSED`): every objective and guardrail must point at a running collector
before the calls happen.

:func:`plan` lists them (``GET /v2/objectives``, pages from 1; ``GET /v2/guardrails?legacy=false``,
pages from 0) and says, for each, whether its ``callback_url`` already is the collector's;
:func:`apply` patches those that are not and reads the listings again to confirm the change.

The JSON Patch sent
-------------------
``PATCH /v2/objectives/{objectives_id}`` and ``PATCH /v2/guardrails/{uuid}`` take a JSON Patch
array (RFC 6902) as ``application/json``. Tavus's reference says that the paths must match the
*current* document shape, and its own examples disagree about that shape (``/data/0/...`` in the
prose, written for the older sets of objectives and guardrails, ``/callback_url`` in the
objectives' request examples). So the path follows the shape the listing shows: an item that
holds its own ``callback_url`` (what both listings answer today) gets ``/callback_url``; an item
shaped as a set, ``{"data": [...]}``, gets ``/data/{i}/callback_url`` for each member that needs
it. The operation is ``replace`` when the item has a ``callback_url`` member (even ``null``) and
``add`` when it has none: RFC 6902's ``replace`` fails on a missing member, and Tavus's own
example for setting a guardrail's ``callback_url`` uses ``add``. Whatever Tavus answers,
:func:`apply` then reads the listings again and reports a resource whose ``callback_url`` did not
change as *unconfirmed*: a change is only claimed when Tavus shows it.

What is printed
---------------
URLs go through :func:`shown`: a token (``token=``, ``secret=``, ...) shows as ``***``, and a URL
with query parameters of other names (someone else's endpoint, whose secrets may have any name)
shows its query as ``?...``. The API key is never shown.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .errors import TavusApiError
from .importer import LOST_IF_MISSED, TavusClient
from .masking import SECRET_PARAMETERS, mask_text, mask_url

OBJECTIVE = "objective"
GUARDRAIL = "guardrail"

#: Where a resource's ``callback_url`` points, against the collector's URL.
COLLECTOR = "collector"  # exactly the collector's URL
OTHER_TOKEN = "other_token"  # the collector's endpoint with another token, or none
ELSEWHERE = "elsewhere"  # another URL
NONE = "none"  # no callback_url: its callbacks are not sent anywhere

STATES = {
    COLLECTOR: "points at the collector",
    OTHER_TOKEN: "the collector's endpoint with another token",
    ELSEWHERE: "points elsewhere",
    NONE: "no callback_url",
}

#: What became of a resource: planned (dry run), changed, failed, or unconfirmed (Tavus took the
#: PATCH but the listing still shows another URL).
WOULD_CHANGE = "would change"
CHANGED = "changed"
FAILED = "failed"
UNCONFIRMED = "unconfirmed"

# The id and name fields of each kind, first found wins (older answers used other names).
_ID_FIELDS = {
    OBJECTIVE: ("objectives_id", "objective_id", "uuid"),
    GUARDRAIL: ("uuid", "guardrail_id", "guardrails_id"),
}
_NAME_FIELDS = {OBJECTIVE: ("objective_name", "name"), GUARDRAIL: ("guardrail_name", "name")}


@dataclass(frozen=True)
class Resource:
    """One objective or guardrail, as Tavus listed it.

    ``pointer`` is the JSON Pointer of its ``callback_url`` in the resource's document
    (``/callback_url``, or ``/data/{i}/callback_url`` for a member of a set); ``present`` whether
    the document holds that member (even ``null``).
    """

    kind: str
    id: str
    name: str | None
    callback_url: str | None
    pointer: str = "/callback_url"
    present: bool = True

    @property
    def collection(self) -> str:
        """The API's collection: ``objectives`` or ``guardrails``."""
        return self.kind + "s"

    def operation(self, url: str) -> dict:
        """The JSON Patch operation that points this resource's ``callback_url`` at ``url``."""
        return {"op": "replace" if self.present else "add", "path": self.pointer, "value": url}


@dataclass
class Entry:
    """A resource, where it points (``state``, None when no collector URL was given) and what
    became of it (``outcome``, None when nothing was to be done); ``error`` says why it failed."""

    resource: Resource
    state: str | None
    outcome: str | None = None
    error: str | None = None

    @property
    def to_change(self) -> bool:
        return self.state in (OTHER_TOKEN, ELSEWHERE, NONE)


@dataclass
class Setup:
    """The account's objectives and guardrails against the collector's URL.

    ``skipped`` counts listed items without an id (they cannot be patched); ``applied`` says
    whether :func:`apply` ran.
    """

    callback_url: str | None
    entries: list[Entry]
    skipped: int = 0
    applied: bool = False
    warnings: list[str] = field(default_factory=list)

    def count(self, kind: str) -> int:
        return sum(1 for e in self.entries if e.resource.kind == kind)

    @property
    def to_change(self) -> list[Entry]:
        return [e for e in self.entries if e.to_change]

    def outcomes(self, outcome: str) -> list[Entry]:
        return [e for e in self.entries if e.outcome == outcome]


# -- reading -------------------------------------------------------------------------------------
def resources(client: TavusClient) -> tuple[list[Resource], int]:
    """Every objective and guardrail of the account, and how many listed items had no id."""
    found: list[Resource] = []
    skipped = 0
    listings = ((OBJECTIVE, client.list_objectives()), (GUARDRAIL, client.list_guardrails()))
    for kind, items in listings:
        for item in items:
            got = _resources(kind, item)
            skipped += not got
            found.extend(got)
    return found, skipped


def _resources(kind: str, item: dict) -> list[Resource]:
    rid = _first_text(item, _ID_FIELDS[kind])
    if rid is None:
        return []
    members = item.get("data")
    if isinstance(members, list) and members and all(isinstance(m, dict) for m in members):
        # A set: {"data": [{objective_name, callback_url, ...}, ...]} under one id.
        return [
            Resource(
                kind,
                rid,
                _first_text(m, _NAME_FIELDS[kind]) or _first_text(item, _NAME_FIELDS[kind]),
                _text(m.get("callback_url")),
                f"/data/{i}/callback_url",
                "callback_url" in m,
            )
            for i, m in enumerate(members)
        ]
    return [
        Resource(
            kind,
            rid,
            _first_text(item, _NAME_FIELDS[kind]),
            _text(item.get("callback_url")),
            "/callback_url",
            "callback_url" in item,
        )
    ]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _first_text(item: dict, names: Iterable[str]) -> str | None:
    for name in names:
        value = _text(item.get(name))
        if value is not None:
            return value
    return None


# -- comparing -----------------------------------------------------------------------------------
def state(current: str | None, target: str) -> str:
    """Where ``current`` points against the collector's URL ``target``: :data:`COLLECTOR`,
    :data:`OTHER_TOKEN` (same scheme, host and path, another query), :data:`ELSEWHERE` or
    :data:`NONE`."""
    if current is None:
        return NONE
    if current.strip() == target.strip():
        return COLLECTOR
    return OTHER_TOKEN if _endpoint(current) == _endpoint(target) else ELSEWHERE


def _endpoint(url: str) -> tuple[str, str, str]:
    parts = urlsplit(url.strip())
    return parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/") or "/"


def shown(url: str | None) -> str | None:
    """``url`` as it may be printed: secret parameters as ``***``, and the whole query as
    ``?...`` when it has parameters of other names."""
    if url is None:
        return None
    names = [name.lower() for name, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True)]
    return mask_url(url, hide_query=any(n not in SECRET_PARAMETERS for n in names))


def _secrets(url: str) -> list[str]:
    """The secret values in ``url``: its password and the values of secret parameters."""
    parts = urlsplit(url)
    found = [parts.password] if parts.password else []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name.lower() in SECRET_PARAMETERS and value:
            found.append(value)
    return found


def check_url(url: str) -> list[str]:
    """Warnings about a collector URL that Tavus could not use as it is; ``ValueError`` for
    one that is no http(s) URL at all."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"{shown(url)!r} is not an http(s) URL: pass the collector's public callback URL, "
            "e.g. https://<your-ngrok-domain>/webhook?token=..."
        )
    warnings = []
    if not any(name == "token" for name, _ in parse_qsl(parts.query, keep_blank_values=True)):
        warnings.append(
            "the callback URL has no token=: the collector refuses callbacks without its token "
            "(tavus-analytics serve prints the URL to use)"
        )
    host = parts.hostname
    try:
        local = ipaddress.ip_address(host).is_loopback or ipaddress.ip_address(host).is_private
    except ValueError:
        local = host == "localhost" or host.endswith(".local")
    if local:
        warnings.append(
            f"Tavus cannot reach {host}: expose the collector (ngrok http 5000) and pass its "
            "public URL"
        )
    return warnings


# -- planning and applying -----------------------------------------------------------------------
def plan(client: TavusClient, callback_url: str | None = None) -> Setup:
    """The account's objectives and guardrails, and, when ``callback_url`` (the collector's URL,
    with its token) is given, which already point at it and which :func:`apply` would change.
    Only reads.

    Raises
    ------
    ValueError
        When ``callback_url`` is not an http(s) URL.
    TavusApiError
        When Tavus refuses a listing or cannot be reached.
    """
    warnings = check_url(callback_url) if callback_url is not None else []
    found, skipped = resources(client)
    entries = [
        Entry(r, None if callback_url is None else state(r.callback_url, callback_url))
        for r in found
    ]
    for entry in entries:
        if entry.to_change:
            entry.outcome = WOULD_CHANGE
    return Setup(callback_url, entries, skipped=skipped, warnings=warnings)


def apply(client: TavusClient, setup: Setup) -> Setup:
    """Point every resource of ``setup`` that needs it at ``setup.callback_url``: one PATCH per
    objective or guardrail (all the members of a set that need it in one), then the listings
    again, to confirm. Outcomes: :data:`CHANGED`, :data:`FAILED` (Tavus refused it with a 4xx,
    ``error`` says how) or :data:`UNCONFIRMED` (Tavus took it, but still lists another URL).

    Raises
    ------
    TavusApiError
        On a refused key (401), retries exhausted or an unreachable API: resources patched
        before that keep their new URL.
    """
    target = setup.callback_url
    if target is None:
        raise ValueError("apply needs the collector's callback URL")
    groups: dict[tuple[str, str], list[Entry]] = {}
    for entry in setup.to_change:
        groups.setdefault((entry.resource.collection, entry.resource.id), []).append(entry)
    for (collection, rid), group in groups.items():
        operations = [e.resource.operation(target) for e in group]
        try:
            client.patch(collection, rid, operations)
        except TavusApiError as e:
            # Tavus's message may quote the URL sent: its secrets are masked.
            message = mask_text(str(e), *_secrets(target))
            if e.status in (None, 401, 429) or not 400 <= e.status < 500:
                raise TavusApiError(message, e.status) from None
            for entry in group:
                entry.outcome, entry.error = FAILED, message
            continue
        for entry in group:
            entry.outcome = CHANGED
    setup.applied = True
    if any(e.outcome == CHANGED for e in setup.entries):
        _confirm(client, setup)
    return setup


def _confirm(client: TavusClient, setup: Setup) -> None:
    """Read the listings again: a changed resource that Tavus still lists with another URL is
    unconfirmed. A resource is found by its id, else by its name (a guardrail's uuid can change
    when it is edited; its name stays)."""
    now, _ = resources(client)
    by_id = {(r.kind, r.id, r.pointer): r for r in now}
    by_name = {(r.kind, r.name): r for r in now if r.name}
    for entry in setup.outcomes(CHANGED):
        r = entry.resource
        again = by_id.get((r.kind, r.id, r.pointer)) or by_name.get((r.kind, r.name))
        if again is None or state(again.callback_url, setup.callback_url) != COLLECTOR:
            entry.outcome = UNCONFIRMED
            entry.error = (
                "Tavus no longer lists it"
                if again is None
                else f"Tavus still lists {shown(again.callback_url) or 'no callback_url'}"
            )


def as_dict(setup: Setup) -> dict:
    """``setup`` as JSON-ready data, every URL through :func:`shown`."""
    target = shown(setup.callback_url)
    resources_ = []
    for e in setup.entries:
        r = e.resource
        item = {
            "kind": r.kind,
            "id": r.id,
            "name": r.name,
            "callback_url": shown(r.callback_url),
            "state": e.state,
            "outcome": e.outcome,
        }
        if e.to_change:
            item["change"] = {
                "from": shown(r.callback_url),
                "to": target,
                "patch": {**r.operation(setup.callback_url), "value": target},
            }
        if e.error:
            item["error"] = e.error
        resources_.append(item)
    return {
        "callback_url": target,
        "dry_run": not setup.applied,
        "objectives": setup.count(OBJECTIVE),
        "guardrails": setup.count(GUARDRAIL),
        "skipped_without_id": setup.skipped,
        "to_change": len(setup.to_change),
        "changed": len(setup.outcomes(CHANGED)),
        "failed": len(setup.outcomes(FAILED)),
        "unconfirmed": len(setup.outcomes(UNCONFIRMED)),
        "resources": resources_,
        "warnings": [*setup.warnings, LOST_IF_MISSED],
    }
