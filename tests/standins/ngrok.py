"""A stand-in for the ``ngrok`` package, for the tests: no agent, no network.

Put its folder first on ``PYTHONPATH`` and ``import ngrok`` finds it instead of the real SDK.
Every call is appended as a JSON line to the file named by ``STANDIN_NGROK_LOG``;
``STANDIN_NGROK_FAIL`` makes ``forward`` raise with that message, as the real agent does when
ngrok refuses (a bad authtoken, a domain of someone else's, no network). Only what
``tavus_analytics.tunnel`` uses is here: ``forward(addr, proto, **options)`` returning a listener
with ``url()``, and ``disconnect(url)``.
"""

from __future__ import annotations

import json
import os

URL = "https://standin-7f3a.ngrok-free.app"


def _record(**event) -> None:
    path = os.environ.get("STANDIN_NGROK_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(event) + "\n")


class Listener:
    def __init__(self, url: str, addr: str) -> None:
        self._url = url
        self._addr = addr

    def url(self) -> str:
        return self._url

    def forwards_to(self) -> str:
        return self._addr


def forward(addr=None, proto=None, **options):
    _record(
        call="forward",
        addr=addr,
        proto=proto,
        options=options,
        authtoken_seen=bool(os.environ.get("NGROK_AUTHTOKEN")),
    )
    failure = os.environ.get("STANDIN_NGROK_FAIL")
    if failure:
        raise ValueError(failure)
    domain = options.get("domain")
    return Listener(f"https://{domain}" if domain else URL, str(addr))


def disconnect(url=None) -> None:
    _record(call="disconnect", url=url)
