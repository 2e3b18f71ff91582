"""Helpers the project's tests, benchmarks and reliability harness share.

Small and public, so that a test suite built on tavus-analytics can use them too.
"""

from __future__ import annotations

import socket

__all__ = ["free_port"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (another process may take it before it is used:
    bind soon, and retry on a conflict)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]
