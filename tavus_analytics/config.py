"""Settings, declared once as data.

Every setting has a default, a ``TAVUS_ANALYTICS_*`` (or documented) environment variable and a
help string. Precedence: defaults, then the environment, then explicit keyword arguments (the
command-line flags).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_DB = Path("data") / "tavus.db"


def _setting(
    default,
    help: str,
    env: str | None = None,
    *,
    shown: str | None = None,
    choices: tuple[str, ...] | None = None,
    minimum: int | None = None,
):
    """A setting: its default, help, environment variable, and for the command line how its
    default reads (``shown``), the values it takes (``choices``) and its ``minimum``."""
    return field(
        default=default,
        metadata={"help": help, "env": env, "shown": shown, "choices": choices, "min": minimum},
    )


@dataclass(frozen=True)
class Settings:
    """Configuration of the collector and of the command line."""

    db: str = _setting(
        str(DEFAULT_DB),
        "Where the callbacks are stored: a SQLite file, or a PostgreSQL URL "
        "(postgresql://user:password@host:5432/database).",
        "TAVUS_ANALYTICS_DB",
    )
    host: str = _setting("127.0.0.1", "Interface the collector listens on.", "TAVUS_ANALYTICS_HOST")
    port: int = _setting(5000, "TCP port the collector listens on.", "TAVUS_ANALYTICS_PORT")
    secret: str | None = _setting(
        None,
        "Token a sender must present (?token=... or X-Webhook-Token). When unset, one is "
        "generated on first start and kept beside the database in DB.secret.",
        "TAVUS_WEBHOOK_SECRET",
        shown="generated once and kept in DB.secret",
    )
    no_auth: bool = _setting(
        False,
        "Accept callbacks without a token. Anyone who can reach the collector can then write.",
        "TAVUS_ANALYTICS_NO_AUTH",
    )
    max_body: int = _setting(
        16 * 1024 * 1024,
        "Largest accepted callback body in bytes; larger bodies are refused with 413.",
        "TAVUS_ANALYTICS_MAX_BODY",
        shown="16 MiB",
    )
    busy_timeout_ms: int = _setting(
        5000,
        "How long a write waits for a locked database before the sender gets 503, in ms.",
        "TAVUS_ANALYTICS_BUSY_TIMEOUT_MS",
    )
    threads: int = _setting(
        16,
        "Worker threads of the WSGI server. They mostly wait for the disk: the more of them, the "
        "more callbacks one commit (one fsync) stores.",
        "TAVUS_ANALYTICS_THREADS",
    )
    server: str = _setting(
        "granian",
        "WSGI server: granian (Rust HTTP server, the fastest measured; where it has no wheel "
        "and the server is not chosen, waitress serves instead), waitress (one process, pure "
        "Python, any platform) or gunicorn (Linux and macOS).",
        "TAVUS_ANALYTICS_SERVER",
        choices=("granian", "waitress", "gunicorn"),
    )
    workers: int = _setting(
        1,
        "Server processes, each with `threads` threads: granian and gunicorn only (waitress "
        "runs one process). More than one uses more cores.",
        "TAVUS_ANALYTICS_WORKERS",
        minimum=1,
    )
    tunnel: bool = _setting(
        False,
        "Open a public HTTPS URL to the collector with ngrok, inside the process (the [tunnel] "
        "extra; needs NGROK_AUTHTOKEN), print the callback URL and a ready curl, and close it "
        "on exit. With granian (the default) or waitress, not gunicorn.",
        "TAVUS_ANALYTICS_TUNNEL",
    )
    tunnel_domain: str | None = _setting(
        None,
        "A fixed ngrok domain for the tunnel (e.g. callbacks.example.ngrok.app), so that the "
        "callback URL stays the same between restarts; implies --tunnel.",
        "TAVUS_ANALYTICS_TUNNEL_DOMAIN",
    )
    tail: bool = _setting(
        False,
        "Print one line per request on standard output: time, event type or kind, "
        "conversation and the answer. Never the token, never transcript content.",
        "TAVUS_ANALYTICS_TAIL",
    )
    dashboard_cache: int = _setting(
        30,
        "Seconds a dashboard page is kept before it is computed again from the database "
        "(0: every request computes).",
        "TAVUS_ANALYTICS_DASHBOARD_CACHE",
    )
    dashboard_transcripts: bool = _setting(
        False,
        "Let the dashboard show what was said or seen: the one-call pages' transcripts and the "
        "perception terms. Off by default: figures and charts only.",
        "TAVUS_ANALYTICS_DASHBOARD_TRANSCRIPTS",
    )
    alerts: str | None = _setting(
        None,
        "An alert rules file (TOML) the collector checks every alerts_every seconds, "
        "notifying its channels of each change. With granian (the default) or waitress; with "
        "gunicorn run tavus-analytics alerts check from cron.",
        "TAVUS_ANALYTICS_ALERTS",
    )
    alerts_every: int = _setting(
        300,
        "Seconds between two checks of the alert rules by the collector.",
        "TAVUS_ANALYTICS_ALERTS_EVERY",
    )

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides) -> Settings:
        """Build settings from defaults, then ``environ`` (default ``os.environ``), then
        ``overrides`` (keyword arguments whose value is ``None`` are ignored)."""
        environ = os.environ if environ is None else environ
        values = {}
        for f in dataclasses.fields(cls):
            env = f.metadata.get("env")
            if env and environ.get(env, "") != "":
                values[f.name] = _coerce(f, environ[env], env)
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
        return cls(**values)

    @property
    def secret_path(self) -> Path:
        """Where the generated secret is kept: beside the database."""
        return Path(str(self.db) + ".secret")


def find_database(environ: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    """The database an analysis opens when none is named.

    ``TAVUS_ANALYTICS_DB`` when it is set (exactly as given: a name that does not exist is an
    error later, never replaced by another database); else ``data/tavus.db`` in ``cwd`` (default:
    the current folder) or, when it is not there, in its parent, so that a notebook run from
    the project's ``notebooks/`` folder finds the project's database. When neither exists, the
    path in ``cwd``: opening it then says how to make one.
    """
    environ = os.environ if environ is None else environ
    named = environ.get("TAVUS_ANALYTICS_DB", "")
    if named:
        return named
    cwd = Path.cwd() if cwd is None else cwd
    for folder in (cwd, cwd.parent):
        if (folder / DEFAULT_DB).is_file():
            return str(DEFAULT_DB) if folder == cwd else str(folder / DEFAULT_DB)
    return str(DEFAULT_DB)


def _coerce(f: dataclasses.Field, raw: str, env: str):
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    if kind.startswith("bool"):
        low = raw.strip().lower()
        if low in {"1", "true", "yes", "on"}:
            return True
        if low in {"0", "false", "no", "off"}:
            return False
        raise ValueError(f"{env}={raw!r} is not a boolean: use 1/0, true/false or yes/no")
    if kind.startswith("int"):
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"{env}={raw!r} is not a whole number") from None
    return raw


@dataclass(frozen=True)
class Option:
    """How a setting reads on the command line (:func:`options`)."""

    name: str  #: the Settings field
    flag: str  #: ``--max-body``
    kind: str  #: ``str``, ``int`` or ``bool``
    help: str  #: the help text, with the environment variable and the default
    choices: tuple[str, ...] | None
    minimum: int | None


def options() -> list[Option]:
    """Every setting as a command-line option: the flag, its type, and a help text made from
    the setting's own help, environment variable and default (declared once, here)."""
    out = []
    for f in dataclasses.fields(Settings):
        meta = f.metadata
        kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        kind = "bool" if kind.startswith("bool") else "int" if kind.startswith("int") else "str"
        default = meta.get("shown") or ("off" if kind == "bool" else str(f.default))
        extra = [f"env {meta['env']}"] if meta.get("env") else []
        extra.append(f"default {default}")
        out.append(
            Option(
                name=f.name,
                flag="--" + f.name.replace("_", "-"),
                kind=kind,
                help=f"{meta['help']} [{'; '.join(extra)}]",
                choices=meta.get("choices"),
                minimum=meta.get("min"),
            )
        )
    return out


def settings_help() -> list[tuple[str, str | None, str]]:
    """(name, environment variable, help) for every setting, for docs and tests."""
    return [
        (f.name, f.metadata.get("env"), f.metadata["help"]) for f in dataclasses.fields(Settings)
    ]
