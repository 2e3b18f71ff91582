"""The README's commands and examples are run here, so that they cannot drift."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

from tavus_analytics.testing import clean_environment

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_readme_opens_with_the_two_commands():
    first = _blocks("bash")[0]
    lines = [line for line in first.splitlines() if line and not line.startswith("#")]
    assert len(lines) == 2
    assert "pip install -e '.[all]'" in lines[0] and "tavus-analytics demo" in lines[0]
    assert lines[1] == "pip install -e '.[test]' && python -m pytest"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install --quiet -e '.[test]'" in ci and "python -m pytest" in ci


def test_the_main_command_works_on_an_empty_folder(tmp_path):
    first = _blocks("bash")[0].splitlines()
    install_and_run = next(line for line in first if line.startswith("python3 -m venv"))
    steps = [step.strip() for step in install_and_run.split("&&")]
    commands = [shlex.split(step) for step in steps if step.startswith("tavus-analytics")]
    assert [c[1] for c in commands] == ["demo", "stats", "report"]
    env = clean_environment(MPLBACKEND="Agg")
    for command in commands:
        result = subprocess.run(
            [sys.executable, "-m", "tavus_analytics.cli", *command[1:]],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "tavus.db").is_file()
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert html.count("<img") >= 10 and "Key figures" in html


def test_the_python_example_runs(tmp_path, monkeypatch):
    from tavus_analytics import demo

    db = tmp_path / "data" / "tavus.db"
    demo.write(db, conversations=150, seed=1)
    monkeypatch.chdir(tmp_path)
    example = next(b for b in _blocks("python") if "ta.load" in b)
    namespace: dict = {}
    exec(compile(example, "README.md", "exec"), namespace)
    ds = namespace["ds"]
    assert len(ds.conversations) == ds.conversations.conversation_id.nunique() > 100
    assert namespace["fig"].axes


def test_the_what_callers_say_example_runs(tmp_path, monkeypatch):
    from tavus_analytics import demo

    db = tmp_path / "data" / "tavus.db"
    demo.write(db, conversations=150, seed=1)
    monkeypatch.chdir(tmp_path)
    example = next(b for b in _blocks("python") if "ds.topics(" in b)
    namespace: dict = {}
    exec(compile(example, "README.md", "exec"), namespace)
    assert namespace["topics"].k == 8 and len(namespace["topics"].topics) == 8
    assert len(namespace["questions"].groups) > 0
    assert namespace["fig"].axes
