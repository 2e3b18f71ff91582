"""Helpers the project's tests, benchmarks and reliability harness share.

Small and public, so that a test suite built on tavus-analytics can use them too.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

__all__ = ["clean_environment", "free_port", "process_group"]


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without any ``TAVUS_*`` variable (so that a collector or
    command started with it reads no setting of the machine it runs on), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAVUS_")}
    env.update(extra)
    return env


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (another process may take it before it is used:
    bind soon, and retry on a conflict)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def process_group(pgid: int) -> dict[int, list[str]] | None:
    """The live processes of process group ``pgid`` (zombies excluded), by PID, with the fields
    of their ``/proc/PID/stat`` after the command name; None where there is no ``/proc``."""
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    found = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            found[int(entry.name)] = fields
    return found
