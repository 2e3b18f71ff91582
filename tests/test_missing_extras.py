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
