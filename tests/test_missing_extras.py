"""A missing optional package is one line naming the extra to install, never a traceback."""

from __future__ import annotations

import sys

import pytest
from click.testing import CliRunner

from tavus_analytics.cli import cli
from tavus_analytics.errors import MissingExtra
from tavus_analytics.extras import require
from tavus_analytics.store import open_reader, open_store

URL = "postgresql://tavus:secret@127.0.0.1:1/tavus"
MESSAGE = (
    "a PostgreSQL database needs the optional package psycopg: "
    "pip install 'tavus-analytics[postgres]'"
)


@pytest.fixture
def no_psycopg(monkeypatch):
    for name in [m for m in sys.modules if m.split(".")[0] in ("psycopg", "psycopg_pool")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg now fails
    monkeypatch.delitem(sys.modules, "tavus_analytics.store.postgres", raising=False)


def test_require_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "granian", None)
    with pytest.raises(MissingExtra) as info:
        require("granian", "granian", "--server granian")
    assert str(info.value) == (
        "--server granian needs the optional package granian: "
        "pip install 'tavus-analytics[granian]'"
    )
    assert info.value.extra == "granian"
    assert require("json", "none", "json").dumps([]) == "[]"


def test_a_postgresql_url_without_psycopg_says_which_extra(no_psycopg):
    for opening in (open_store, open_reader):
        with pytest.raises(MissingExtra) as info:
            opening(URL)
        assert str(info.value) == MESSAGE


def test_the_command_line_says_it_in_one_line(no_psycopg):
    result = CliRunner().invoke(cli, ["stats", "--db", URL])
    assert result.exit_code == 1
    assert result.output == f"Error: {MESSAGE}\n"
    assert "secret" not in result.output


def test_the_base_install_has_no_optional_part_and_requirements_list_everything():
    import re
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]

    def name(requirement: str) -> str:
        return re.split(r"[<>=!;\[ ]", requirement, maxsplit=1)[0].lower()

    base = {name(r) for r in project["dependencies"]}
    assert not base & {"jupyterlab", "gunicorn", "psycopg", "psycopg-pool"}
    # granian is the default server: a base dependency, where it publishes wheels (elsewhere the
    # collector serves with waitress, also a base dependency)
    assert {"granian", "waitress"} <= base
    extras = project["optional-dependencies"]
    assert {"postgres", "granian", "gunicorn", "notebook", "all", "test"} <= set(extras)
    assert "tavus-analytics[all]" in extras["test"]  # CI installs and tests every part
    listed = {
        name(line)
        for line in (root / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    wanted = base | {
        name(r) for reqs in extras.values() for r in reqs if not r.startswith("tavus-analytics")
    }
    assert wanted <= listed, wanted - listed


def test_a_server_whose_extra_is_missing_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "granian", None)
    db = tmp_path / "t.db"
    result = CliRunner().invoke(
        cli, ["serve", "--db", str(db), "--server", "granian", "--port", "5999", "--secret", "s"]
    )
    assert result.exit_code == 2  # nothing was served: as a usage error
    assert result.stderr == (
        "Error: --server granian needs the optional package granian: "
        "pip install 'tavus-analytics[granian]'\n"
    )
