"""No traceback reaches a user: every command, against every bad input that applies.

The commands are enumerated from the click group, so a new command is covered as soon as it is
added: it must be classified below (reads, writes, or has no database), and its required
parameters must have a value in ``FILL``, or the first test fails. Each bad input must give exit
code 1 or 2 and a single line on stderr that says what is wrong, with no traceback and no
password; a command that reads must leave a foreign or empty file byte for byte as it was.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import subprocess
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from tavus_analytics import demo
from tavus_analytics.cli import cli

#: Commands that only read the database given with --db (or --from). (``digest`` writes its
#: ledger only with --send.)
READS = {
    "stats", "report", "charts", "export", "search", "replay", "migrate", "show", "evaluate",
    "content", "labels", "alerts status", "digest", "cache",
}  # fmt: skip
#: Commands that write it (and may create it; ``alerts check`` writes its alert states into a
#: database that must exist).
WRITES = {"serve", "demo", "import", "backfill", "annotate", "unannotate", "alerts check"}
#: Commands without a database.
NO_DB = {"setup", "alerts test"}


def _leaves(group: click.Group, prefix: tuple[str, ...] = ()) -> dict[str, click.Command]:
    """Every command a user runs, by its words: ``stats``, ``alerts check``, ..."""
    found = {}
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found.update(_leaves(command, (*prefix, name)))
        else:
            found[" ".join((*prefix, name))] = command
    return found


COMMANDS = _leaves(cli)

PASSWORD = "not-the-password-7f3a"


def fill(name: str, tmp: Path) -> list[str] | None:
    """A valid value for a required parameter, by its name; None when unknown."""
    body = tmp / "callback.json"
    body.write_text('{"conversation_id": "c1", "event_type": "system.shutdown"}')
    criteria = tmp / "criteria.toml"
    criteria.write_text('[[rule]]\noutcome = "completed"\n')
    rules = tmp / "alerts.toml"
    rules.write_text('[[rule]]\nname = "silence"\nmetric = "no_callbacks"\nwindow = "6h"\n')
    values = {
        "rules": ["--rules", str(rules)],
        "files": [str(body)],
        "phrase": ["hello"],
        "url": ["--to", "http://127.0.0.1:9/webhook"],
        "table": ["--table", "conversations"],
        "fmt": ["--format", "csv"],
        "out": ["--out", str(tmp / "result")],
        "source": [],  # --from: the database under test
        "target": ["--to", str(tmp / "target.db")],
        "conversation_id": ["c1"],
        "annotation_id": ["1"],
        "criteria_file": ["--criteria", str(criteria)],
    }
    return values.get(name)


def command_args(name: str, tmp: Path) -> list[str]:
    args: list[str] = []
    for param in COMMANDS[name].params:
        if param.required:
            value = fill(param.name, tmp)
            assert value is not None, f"{name}: add a value for {param.name} to FILL"
            args += value
    return args


def with_db(name: str, db: str | Path, tmp: Path) -> list[str]:
    option = "--from" if name == "migrate" else "--db"
    extra = ["--api-key", "k", "--base-url", "http://127.0.0.1:9"] if name == "backfill" else []
    if name == "serve":
        extra = ["--port", "0", "--secret", "s"]
    return [*name.split(), *command_args(name, tmp), option, str(db), *extra]


def run(args: list[str], tmp: Path) -> click.testing.Result:
    env = {"TAVUS_API_KEY": "", "TAVUS_WEBHOOK_SECRET": ""}
    with contextlib.chdir(tmp):
        return CliRunner().invoke(cli, args, env=env, catch_exceptions=True)


def one_line_error(result, what: str) -> str:
    assert result.exit_code in (1, 2), (what, result.exit_code, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        what,
        repr(result.exception),
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), (what, result.stderr)
    assert "Traceback" not in result.output + result.stderr, what
    assert PASSWORD not in result.output + result.stderr, what
    return lines[0]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad")
    empty = tmp / "empty.db"
    empty.touch()
    notes = tmp / "notes.txt"
    notes.write_text("my notes, not a database\n")
    foreign = tmp / "other.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    return {"empty": empty, "notes": notes, "foreign": foreign}


def test_every_command_is_classified_and_can_be_run():
    assert set(COMMANDS) == READS | WRITES | NO_DB
    for name, command in COMMANDS.items():
        assert command.help and "Example" in command.help, name


@pytest.mark.parametrize("name", sorted(READS | WRITES))
def test_a_missing_database(name, tmp_path):
    if name in WRITES:
        pytest.skip("a command that writes makes the database it is given")
    missing = tmp_path / "nope.db"
    line = one_line_error(run(with_db(name, missing, tmp_path), tmp_path), name)
    assert str(missing) in line and "tavus-analytics" in line
    assert not missing.exists()


@pytest.mark.parametrize("name", sorted(READS | WRITES))
@pytest.mark.parametrize("bad", ["empty", "notes", "foreign"])
def test_a_file_that_is_not_our_database(name, bad, inputs, tmp_path):
    path = inputs[bad]
    if bad == "empty" and name in WRITES:
        pytest.skip("an empty file is a new database to a command that writes")
    before = digest(path)
    line = one_line_error(run(with_db(name, path, tmp_path), tmp_path), f"{name} {bad}")
    assert str(path) in line
    assert "not a" in line or "another program" in line or "empty" in line, line
    # Nothing changed, and nothing was made beside it.
    assert digest(path) == before, f"{name} changed {bad}"
    assert not Path(str(path) + "-wal").exists() and not Path(str(path) + "-writelock").exists()


@pytest.mark.parametrize("name", sorted(READS | WRITES))
def test_a_postgresql_server_that_refuses_connections(name, tmp_path):
    url = f"postgresql://tavus:{PASSWORD}@127.0.0.1:9/tavus"
    line = one_line_error(run(with_db(name, url, tmp_path), tmp_path), name)
    assert "postgresql://tavus:***@127.0.0.1:9/tavus" in line


@pytest.mark.parametrize("name", sorted(READS | WRITES))
def test_a_wrong_password(name, pg_url, tmp_path):
    wrong = pg_url.replace(pg_url.split("@")[0].rsplit(":", 1)[1], PASSWORD)
    line = one_line_error(run(with_db(name, wrong, tmp_path), tmp_path), name)
    assert "password" in line.lower() and "***" in line


@pytest.fixture(scope="module")
def ours(tmp_path_factory):
    db = tmp_path_factory.mktemp("ours") / "tavus.db"
    demo.write(db, conversations=20, seed=1)
    return db


@pytest.mark.parametrize("name", sorted(READS | WRITES))
def test_an_output_path_that_cannot_be_written(name, ours, inputs, tmp_path):
    if not any(p.name == "out" for p in COMMANDS[name].params):
        pytest.skip("no output path")
    args = with_db(name, ours, tmp_path)
    if "--out" not in args:  # an optional --out (digest)
        args += ["--out", "result"]
    at = args.index("--out") + 1
    args[at] = str(inputs["notes"] / "result")  # a file stands where a folder must be
    line = one_line_error(run(args, tmp_path), name)
    assert "notes.txt" in line


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_malformed_option_value(name, ours, tmp_path):
    typed = [
        p
        for p in COMMANDS[name].params
        if isinstance(p, click.Option)
        and (
            isinstance(p.type, (click.types.IntParamType, click.types.FloatParamType))
            or p.name in ("since", "until")
        )
    ]
    if not typed:
        pytest.skip("no option with a typed value")
    args = with_db(name, ours, tmp_path) if name in READS | WRITES else name.split()
    args += [typed[0].opts[0], "not-a-value"]
    result = run(args, tmp_path)
    line = one_line_error(result, name)
    assert result.exit_code == 2 and typed[0].opts[0] in line and "--help" in line


@pytest.fixture
def readonly_db(ours, tmp_path):
    """A tavus-analytics database on a read-only filesystem (root: a tmpfs remounted
    read-only), or a read-only file (others)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        db = folder / "tavus.db"
        db.write_bytes(ours.read_bytes())
        db.chmod(0o444)
        folder.chmod(0o555)
        yield db
        folder.chmod(0o755)
        return
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip("a read-only database needs a tmpfs, which could not be mounted")
    try:
        db = folder / "tavus.db"
        db.write_bytes(ours.read_bytes())
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True, timeout=30)
        yield db
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=30)


@pytest.mark.parametrize("name", sorted(WRITES - {"serve", "backfill"}))
def test_a_read_only_database_where_the_command_writes(name, readonly_db, tmp_path):
    # (serve starts and answers 503 until the database can be written: that is its promise.)
    line = one_line_error(run(with_db(name, readonly_db, tmp_path), tmp_path), name)
    assert "read" in line.lower() or "cannot be written" in line, line


def test_reading_commands_leave_a_read_only_database_usable(readonly_db, tmp_path):
    result = run(["stats", "--db", str(readonly_db)], tmp_path)
    assert result.exit_code == 0, result.output + result.stderr
