"""A throwaway PostgreSQL server for the tests and benchmarks: initdb and pg_ctl in a folder.

    python -m tests.pgserver start DIR   # prints the server's URL (password included)
    python -m tests.pgserver stop DIR

The server listens on 127.0.0.1 only, on a free port, with its socket in DIR; host connections
need the password written to ``DIR/password``. Run as root, the server runs as the ``postgres``
user (initdb refuses root). Binaries are found on PATH or in Debian's ``/usr/lib/postgresql/N/bin``.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

from tavus_analytics.testing import free_port

USER = "tavus_test"


def bindir() -> Path | None:
    """The folder of initdb and pg_ctl, or None when PostgreSQL is not installed."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: int(Path(p).parent.parent.name),
    )
    return Path(versions[-1]).parent if versions else None


def _as_owner(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def _own(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


def start(folder: str | Path, *, durable: bool = False) -> str:
    """Create and start a server in ``folder`` (made if missing); return its URL.

    ``durable=False`` turns fsync off: fast for tests, wrong for benchmarks of commits.
    """
    bins = bindir()
    if bins is None:
        raise RuntimeError("PostgreSQL is not installed (no pg_ctl on PATH or in /usr/lib)")
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)  # its parents must let the server's user in
    folder.chmod(0o755)
    _own(folder)
    data = folder / "data"
    password = secrets.token_urlsafe(16)
    pwfile = folder / "password"
    pwfile.write_text(password + "\n")
    pwfile.chmod(0o600)
    _own(pwfile)
    subprocess.run(
        _as_owner(
            [
                str(bins / "initdb"),
                "-D",
                str(data),
                "-U",
                USER,
                f"--pwfile={pwfile}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    port = free_port()
    options = [
        "-c listen_addresses=127.0.0.1",
        f"-c port={port}",
        f"-c unix_socket_directories={folder}",
        "-c max_connections=200",
        "-c shared_buffers=128MB",
    ]
    if not durable:
        options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
    (folder / "options").write_text(" ".join(options) + "\n")
    resume(folder)
    url = f"postgresql://{USER}:{password}@127.0.0.1:{port}/postgres"
    (folder / "url").write_text(url + "\n")
    return url


def resume(folder: str | Path) -> None:
    """Start the server of ``folder`` again (same data, port and password), waiting until it
    accepts connections."""
    folder = Path(folder).resolve()
    subprocess.run(
        _as_owner(
            [
                str(bindir() / "pg_ctl"),
                "-D",
                str(folder / "data"),
                "-l",
                str(folder / "server.log"),
                "-o",
                (folder / "options").read_text().strip(),
                "-w",
                "-t",
                "60",
                "start",
            ]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
    )


def stop(folder: str | Path) -> None:
    """Stop the server started in ``folder`` (fast shutdown); nothing when none runs."""
    folder = Path(folder).resolve()
    data = folder / "data"
    bins = bindir()
    if bins is None or not (data / "postmaster.pid").exists():
        return
    subprocess.run(
        _as_owner([str(bins / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
        check=False,
        stdout=subprocess.DEVNULL,
    )


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in {"start", "stop"}:
        print(__doc__, file=sys.stderr)
        return 2
    if argv[0] == "start":
        print(start(argv[1]))
    else:
        stop(argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
