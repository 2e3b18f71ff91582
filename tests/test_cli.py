"""The command line as a whole: help text, examples, docs, errors, a real subprocess."""

from __future__ import annotations

import json
import re
import shlex
import sqlite3
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from conftest import SHUTDOWN_EXAMPLE

from tavus_analytics.cli import cli

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "cli.md"


def _every(group: click.Group, prefix: tuple[str, ...] = ()) -> dict[str, click.Command]:
    """Every command and group by its words: ``stats``, ``alerts``, ``alerts check``, ..."""
    found = {}
    for name, command in group.commands.items():
        words = " ".join((*prefix, name))
        found[words] = command
        if isinstance(command, click.Group):
            found.update(_every(command, (*prefix, name)))
    return found


ALL = _every(cli)
COMMANDS = sorted(ALL)


def example_lines(command: click.Command) -> list[str]:
    """The command lines under ``Example:`` in a command's help text, one line each (continued
    lines joined, spaces collapsed)."""
    text = command.help or ""
    if "Example:" not in text:
        return []
    block = text.split("Example:", 1)[1].replace("\b", "")
    joined = re.sub(r"\\\n\s*", " ", block)  # continuation lines
    return [" ".join(line.split()) for line in joined.splitlines() if "tavus-analytics" in line]


def examples(command: click.Command) -> list[list[str]]:
    """The example command lines, split like a shell."""
    return [shlex.split(line) for line in example_lines(command)]


def without_env(argv: list[str]) -> list[str]:
    while argv and re.match(r"^[A-Z_]+=", argv[0]):
        argv = argv[1:]
    return argv


def test_the_expected_commands_exist():
    expected = {"serve", "demo", "import", "replay", "backfill", "search", "export", "stats"}
    assert expected <= set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help_and_an_example(name):
    command = ALL[name]
    assert command.help and len(command.help.split("Example:")[0].strip()) > 20, name
    found = examples(command)
    assert found, f"{name}: no Example: in its help text"
    words = name.split()
    for argv in found:
        argv = without_env(argv)
        assert argv[: 1 + len(words)] == ["tavus-analytics", *words], argv
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"{name} {param.opts}: no help text"


@pytest.mark.parametrize("name", COMMANDS)
def test_every_example_parses(name):
    """Each example's options exist and its values are valid (nothing is run)."""
    command = ALL[name]
    for argv in examples(command):
        args = [a.replace("$TOKEN", "t") for a in without_env(argv)[1 + len(name.split()) :]]
        with command.make_context(name, args) as ctx:
            assert ctx.command is command


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_is_documented_with_its_example(name):
    docs = DOCS.read_text(encoding="utf-8")
    assert f"## `tavus-analytics {name}`" in docs, f"{name} is missing from docs/cli.md"
    section = docs.split(f"## `tavus-analytics {name}`", 1)[1].split("\n## ", 1)[0]
    assert "Example" in section
    flat = " ".join(re.sub(r"\\\n\s*", " ", section).split())
    for line in example_lines(ALL[name]):
        assert line in flat, (name, line)


def test_help_runs_for_every_command():
    runner = CliRunner()
    top = runner.invoke(cli, ["--help"])
    assert top.exit_code == 0
    for name in COMMANDS:
        assert name.split()[0] in top.output
        r = runner.invoke(cli, [*name.split(), "--help"])
        assert r.exit_code == 0, name
        assert "Example:" in r.output


# -- a real process -----------------------------------------------------------------------------
def run_process(*args, input=None):
    return subprocess.run(
        [sys.executable, "-m", "tavus_analytics.cli", *map(str, args)],
        capture_output=True,
        text=True,
        input=input,
        timeout=60,
        cwd=ROOT,
    )


def test_import_as_a_real_process(tmp_path):
    db = tmp_path / "sub.db"
    f = tmp_path / "cb.jsonl"
    f.write_text(
        json.dumps(SHUTDOWN_EXAMPLE) + "\n" + json.dumps({**SHUTDOWN_EXAMPLE, "n": 2}) + "\nnope\n"
    )
    p = run_process("import", f, "--db", db)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(f"{db}: 3 records from 1 file: 2 stored, 0 duplicates, 1 rejected")
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT count(*) FROM callbacks").fetchone() == (2,)
        assert conn.execute("SELECT count(*) FROM rejected").fetchone() == (1,)
    finally:
        conn.close()


def test_errors_as_a_real_process_are_one_line_without_traceback(tmp_path):
    missing = tmp_path / "missing.db"
    p = run_process("search", "refund", "--db", missing)
    assert p.returncode == 1
    assert p.stdout == ""
    assert p.stderr == (
        f"Error: no database at {missing}: start the collector (tavus-analytics serve) or make "
        f"demo data (tavus-analytics demo --db {missing})\n"
    )
    p = run_process("import", tmp_path / "nope.json", "--db", missing)
    assert (p.returncode, p.stderr) == (
        1,
        f"Error: cannot read {tmp_path / 'nope.json'}: no such file\n",
    )
    assert not missing.exists()


def test_bad_dates_are_usage_errors(tmp_path):
    r = CliRunner().invoke(
        cli, ["replay", "--to", "http://127.0.0.1:9/", "--since", "last week", "--db", tmp_path]
    )
    assert r.exit_code == 2
    assert "Invalid value for '--since': 'last week' is not a date: use YYYY-MM-DD" in r.output
