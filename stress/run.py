"""Run the reliability harness: ``python -m stress.run SCENARIO [options]``.

Scenarios: crash, contention, diskfull (root, for a tmpfs), fuzz, access, soak, and ``all``
(everything but soak). Each prints its figures as JSON and exits non-zero when a guarantee did
not hold. Everything happens in a temporary directory, on 127.0.0.1, bounded in time.
``--server`` chooses the server of every collector process started (default: the collector's
own default, granian).

With ``--pg`` (a throwaway PostgreSQL server started here) or ``--pg-url URL`` (an existing
one), the scenarios run on PostgreSQL instead, each on a database of its own: crash (with two
collectors), pg-restart (PostgreSQL stopped and started under load, always on a throwaway server
of its own), fuzz, access and soak; ``all`` is every one of them but soak.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from tavus_analytics.server import SERVERS

from . import harness, hostile, pg


def _log(msg: str) -> None:
    print(f"  {msg}", file=sys.stderr, flush=True)


def run_crash(args, workdir: Path) -> dict:
    return harness.crash(
        workdir,
        kills=args.kills,
        threads=args.threads,
        seed=args.seed,
        server=args.server,
        log=_log,
    )


def run_contention(args, workdir: Path) -> list[dict]:
    out = []
    for busy in (None, args.tight_busy_timeout_ms):
        sub = workdir / f"busy{busy or 'default'}"
        sub.mkdir()
        out.append(
            harness.contention(
                sub,
                collectors=args.collectors,
                threads=args.threads,
                duration=args.duration,
                busy_timeout_ms=busy,
                seed=args.seed,
                server=args.server,
                log=_log,
            )
        )
    return out


def run_diskfull(args, workdir: Path) -> dict:
    if os.geteuid() != 0:
        return {"scenario": "diskfull", "skipped": "needs root to mount a tmpfs", "ok": True}
    with harness.tmpfs(workdir / "fs", size=args.tmpfs_size) as fs:
        return harness.diskfull(fs, workdir, server=args.server, log=_log)


def run_fuzz(args, workdir: Path) -> list[dict]:
    return [
        hostile.fuzz_app(workdir, examples=args.examples, seed=args.seed),
        hostile.fuzz_server(workdir, examples=args.server_examples, server=args.server),
    ]


def run_access(args, workdir: Path) -> list[dict]:
    timing = hostile.token_timing(workdir, samples=args.timing_samples, seed=args.seed)
    timing["ok"] = (
        abs(timing["http_z_all_but_last_vs_nothing"]) < 3
        and abs(timing["check_z_all_but_last_vs_nothing"]) < 3
        and abs(timing["control_z"]) >= 3
    )
    # The collector process as run (its server), and the app in this process with every log
    # record at DEBUG level.
    sub = workdir / "in-process"
    sub.mkdir()
    return [
        hostile.access(workdir, server=harness.server_name(args.server), log=_log),
        hostile.access(sub, log=_log),
        timing,
    ]


def run_soak(args, workdir: Path) -> dict:
    return harness.soak(
        workdir,
        duration=args.duration,
        rate=args.rate,
        sample_every=args.sample_every,
        server=args.server,
        log=_log,
    )


SCENARIOS = {
    "crash": run_crash,
    "contention": run_contention,
    "diskfull": run_diskfull,
    "fuzz": run_fuzz,
    "access": run_access,
    "soak": run_soak,
}


# -- on PostgreSQL: each scenario gets a new database on the server, dropped afterwards ----------
def run_pg_crash(args, workdir: Path, server: pg.PgServer) -> dict:
    with pg.database(server.url, "crash") as url:
        return harness.crash(
            workdir,
            db=url,
            collectors=args.collectors,
            kills=args.kills,
            threads=args.threads,
            seed=args.seed,
            server=args.server,
            log=_log,
        )


def run_pg_restart(args, workdir: Path, server: pg.PgServer | None) -> dict:
    return pg.restart(
        workdir,
        restarts=args.restarts,
        modes=tuple(args.shutdown_modes.split(",")),
        collectors=args.collectors,
        threads=args.threads,
        min_down=args.min_down,
        seed=args.seed,
        server=args.server,
        log=_log,
    )


def run_pg_fuzz(args, workdir: Path, server: pg.PgServer) -> list[dict]:
    with pg.database(server.url, "fuzz_app") as url:
        app = hostile.fuzz_app(workdir, examples=args.examples, seed=args.seed, db=url)
    with pg.database(server.url, "fuzz_server") as url:
        real = hostile.fuzz_server(
            workdir, examples=args.server_examples, db=url, server=args.server
        )
    return [app, real]


def run_pg_access(args, workdir: Path, server: pg.PgServer) -> dict:
    # The token check never touches the store: its timing is measured on SQLite (`access`).
    with pg.database(server.url, "access") as url:
        return hostile.access(workdir, db=url, server=harness.server_name(args.server), log=_log)


def run_pg_soak(args, workdir: Path, server: pg.PgServer) -> dict:
    with pg.database(server.url, "soak") as url:
        return harness.soak(
            workdir,
            db=url,
            duration=args.duration,
            rate=args.rate,
            sample_every=args.sample_every,
            server=args.server,
            log=_log,
        )


PG_SCENARIOS = {
    "crash": run_pg_crash,
    "pg-restart": run_pg_restart,
    "fuzz": run_pg_fuzz,
    "access": run_pg_access,
    "soak": run_pg_soak,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stress.run", description=__doc__)
    parser.add_argument("scenario", choices=[*SCENARIOS, "pg-restart", "all"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--server",
        choices=SERVERS,
        default=None,
        help=f"the --server of every collector process started (default: the collector's "
        f"default, {SERVERS[0]})",
    )
    parser.add_argument("--threads", type=int, default=4, help="sender threads")
    parser.add_argument("--kills", type=int, default=20, help="crash: SIGKILLs")
    parser.add_argument(
        "--collectors",
        type=int,
        default=2,
        help="contention; crash and pg-restart on PostgreSQL: processes",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        help="contention: seconds (default 20); soak: seconds (default 600)",
    )
    parser.add_argument("--tight-busy-timeout-ms", type=int, default=50)
    parser.add_argument("--tmpfs-size", default="8m", help="diskfull: size of the tmpfs")
    parser.add_argument("--examples", type=int, default=3000, help="fuzz: test-client examples")
    parser.add_argument("--server-examples", type=int, default=500, help="fuzz: real server")
    parser.add_argument("--timing-samples", type=int, default=2000, help="access: per class")
    parser.add_argument("--rate", type=float, default=20.0, help="soak: callbacks per second")
    parser.add_argument("--sample-every", type=float, default=5.0, help="soak: seconds")
    parser.add_argument(
        "--pg",
        action="store_true",
        help="run on PostgreSQL: a throwaway server started here (initdb and pg_ctl installed)",
    )
    parser.add_argument(
        "--pg-url",
        metavar="URL",
        default=None,
        help="run on PostgreSQL: this existing server, whose role may create databases (one is "
        "made for each scenario and dropped after)",
    )
    parser.add_argument("--restarts", type=int, default=3, help="pg-restart: server restarts")
    parser.add_argument(
        "--shutdown-modes",
        default="fast,immediate",
        help="pg-restart: pg_ctl stop modes, used in turn",
    )
    parser.add_argument(
        "--min-down", type=float, default=2.0, help="pg-restart: seconds the server stays away"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    on_pg = args.pg or args.pg_url is not None
    table = PG_SCENARIOS if on_pg else SCENARIOS
    if args.scenario == "pg-restart":
        table, on_pg = PG_SCENARIOS, True
    elif args.scenario not in (*table, "all"):
        parser.error(f"{args.scenario} runs on SQLite only: without --pg or --pg-url")
    names = [n for n in table if n != "soak"] if args.scenario == "all" else [args.scenario]
    results = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "server": harness.server_name(args.server),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
    }
    ok = True
    with contextlib.ExitStack() as stack:
        server = None
        if on_pg and names != ["pg-restart"]:
            server = stack.enter_context(pg.PgServer(args.pg_url))
            results["database"] = server.describe()
        for name in names:
            if args.duration is None:
                args.duration = 600.0 if name == "soak" else 20.0
            print(f"== {name}", file=sys.stderr, flush=True)
            t0 = time.monotonic()
            with tempfile.TemporaryDirectory(prefix=f"stress-{name}-") as tmp:
                if on_pg:
                    got = PG_SCENARIOS[name](args, Path(tmp), server)
                else:
                    got = SCENARIOS[name](args, Path(tmp))
            parts = got if isinstance(got, list) else [got]
            ok = ok and all(p.get("ok") for p in parts)
            results[name] = got
            print(
                f"== {name}: {'ok' if all(p.get('ok') for p in parts) else 'FAILED'} "
                f"in {time.monotonic() - t0:.1f} s",
                file=sys.stderr,
                flush=True,
            )
    text = json.dumps(results, indent=2, ensure_ascii=False)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
