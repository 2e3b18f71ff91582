"""A public HTTPS URL to the collector in one flag: ``tavus-analytics serve --tunnel``.

The tunnel is the ``ngrok`` package (the ``[tunnel]`` extra): the ngrok agent as a library,
running inside the collector's process. Nothing is downloaded and no binary is started; the
tunnel opens when the collector has its port, and closes when the collector stops (Ctrl-C,
SIGTERM, or an error). The account is the one of ``NGROK_AUTHTOKEN``, read from the
environment by ngrok itself: it is never passed on a command line, stored or printed.

:func:`check` says, before anything starts, what stands in the way (the extra is missing, no
authtoken, gunicorn, which forks its workers); :func:`open_tunnel` opens it. Both raise
:class:`~tavus_analytics.errors.MissingExtra` or
:class:`~tavus_analytics.errors.TunnelUnavailable` with one line saying what to do.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from .errors import TunnelUnavailable
from .extras import require
from .masking import first_line

__all__ = ["AUTHTOKEN_ENV", "Tunnel", "check", "conversation_curl", "open_tunnel"]

log = logging.getLogger("tavus_analytics.collector")

#: Where ngrok reads the account's authtoken.
AUTHTOKEN_ENV = "NGROK_AUTHTOKEN"

_NO_TOKEN = (
    "--tunnel needs an ngrok authtoken: export NGROK_AUTHTOKEN=... (free at "
    "https://dashboard.ngrok.com/get-started/your-authtoken), or run without --tunnel and "
    "expose the collector yourself"
)


@dataclass
class Tunnel:
    """An open tunnel: ``url`` is its public ``https://`` address (no path, no token)."""

    url: str
    _ngrok: ModuleType | None = field(default=None, repr=False)
    _closed: bool = field(default=False, repr=False)

    def close(self) -> None:
        """Close the tunnel (once; later calls do nothing). A failure to close is logged: the
        ngrok service drops the URL anyway when the process ends."""
        if self._closed:
            return
        self._closed = True
        if self._ngrok is None:
            return
        try:
            self._ngrok.disconnect(self.url)
        except Exception as e:  # the process is ending: say so, do not mask the real exit
            log.warning("could not close the tunnel %s: %s", self.url, first_line(e))

    def __enter__(self) -> Tunnel:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def check(server: str = "granian", environ: Mapping[str, str] | None = None) -> ModuleType:
    """The ``ngrok`` module, once it is clear a tunnel can be asked for.

    Raises
    ------
    MissingExtra
        The ``ngrok`` package is not installed (``pip install 'tavus-analytics[tunnel]'``).
    TunnelUnavailable
        No ``NGROK_AUTHTOKEN`` in the environment, or gunicorn, whose master forks workers from
        the process that would hold the tunnel's threads (granian's supervisor opens the tunnel
        after its workers are started, waitress in its only process).
    """
    environ = os.environ if environ is None else environ
    if server == "gunicorn":
        raise TunnelUnavailable(
            "--tunnel runs with granian (the default) or waitress, not --server gunicorn: its "
            "master forks workers from the process that would hold the tunnel; run ngrok "
            "beside it instead (docs/deployment.md)"
        )
    ngrok = require("ngrok", "tunnel", "--tunnel")
    if not environ.get(AUTHTOKEN_ENV, "").strip():
        raise TunnelUnavailable(_NO_TOKEN)
    return ngrok


def open_tunnel(
    port: int,
    *,
    host: str = "127.0.0.1",
    domain: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Tunnel:
    """Open a public HTTPS URL that forwards to the collector on ``host:port``.

    Parameters
    ----------
    port : int
        The port the collector listens on (after binding: never 0).
    host : str
        The interface it listens on; a wildcard (``0.0.0.0``, ``::``) is reached on loopback.
    domain : str, optional
        A fixed domain of the ngrok account (``callbacks.example.ngrok.app``); default: one
        ngrok chooses.

    Returns
    -------
    Tunnel
        Close it with :meth:`Tunnel.close` (or use it as a context manager).
    """
    environ = os.environ if environ is None else environ
    ngrok = check(environ=environ)
    target = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(host, host)
    if ":" in target and not target.startswith("["):
        target = f"[{target}]"
    options: dict[str, Any] = {
        "authtoken_from_env": True,
        "session_metadata": "tavus-analytics collector",
    }
    if domain:
        options["domain"] = _bare_domain(domain)
    try:
        listener = ngrok.forward(f"{target}:{port}", proto="http", **options)
        url = str(listener.url())
    except Exception as e:  # the agent says why in its own words: one line of it
        token = environ.get(AUTHTOKEN_ENV)
        raise TunnelUnavailable(
            f"ngrok could not open the tunnel: {first_line(e, token)} (check NGROK_AUTHTOKEN"
            + (f", that {_bare_domain(domain)} is a domain of your ngrok account" if domain else "")
            + " and the network)"
        ) from None
    if url.startswith("http://"):
        url = "https://" + url.removeprefix("http://")
    return Tunnel(url.rstrip("/"), ngrok)


def _bare_domain(domain: str) -> str:
    """``https://x.ngrok.app/`` as ``x.ngrok.app``: what ngrok's ``domain`` option takes."""
    bare = domain.strip()
    for scheme in ("https://", "http://"):
        bare = bare.removeprefix(scheme)
    return bare.rstrip("/")


def conversation_curl(callback_url: str) -> str:
    """A ready ``curl`` that creates a Tavus conversation reporting to ``callback_url``.

    The API key stays in the environment (``$TAVUS_API_KEY``); the replica and persona are
    placeholders to fill in.
    """
    body = json.dumps(
        {"replica_id": "REPLICA_ID", "persona_id": "PERSONA_ID", "callback_url": callback_url}
    )
    return (
        "curl -X POST https://tavusapi.com/v2/conversations \\\n"
        '    -H "x-api-key: $TAVUS_API_KEY" -H "Content-Type: application/json" \\\n'
        f"    -d {shlex.quote(body)}"
    )
