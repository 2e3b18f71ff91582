"""The notebooks, executed from a clean kernel against a small demo database.

The notebooks are committed as ``.ipynb`` with outputs cleared (not paired with jupytext): they
open as they are in JupyterLab, and nbclient runs the very files analysts use.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from tavus_analytics import demo

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
NAMES = [
    "01_overview.ipynb",
    "02_transcripts.ipynb",
    "03_perception.ipynb",
    "04_replicas_and_videos.ipynb",
    "05_objectives_guardrails_timing.ipynb",
    "06_what_callers_say.ipynb",
]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("notebooks") / "tavus.db"
    demo.write(path, conversations=120, seed=0)
    return path


def execute(name: str, db: Path | None, cwd: Path, monkeypatch) -> nbformat.NotebookNode:
    """Run a notebook in a fresh python3 kernel with ``TAVUS_ANALYTICS_DB=db`` (unset when
    ``db`` is None); any error in a cell fails (nbclient raises CellExecutionError)."""
    if db is None:
        monkeypatch.delenv("TAVUS_ANALYTICS_DB", raising=False)
    else:
        monkeypatch.setenv("TAVUS_ANALYTICS_DB", str(db))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(
        nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(cwd)}}
    )
    client.execute()
    return nb


def outputs(nb: nbformat.NotebookNode, kind: str) -> list:
    """Every output of the code cells: ``text`` (streams and plain results), ``png`` (images)
    or ``html``."""
    found = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if kind == "text" and out.get("output_type") == "stream":
                found.append(out["text"])
            data = out.get("data", {})
            if kind == "text" and "text/plain" in data:
                found.append(data["text/plain"])
            if kind == "png" and "image/png" in data:
                found.append(base64.b64decode(data["image/png"]))
            if kind == "html" and "text/html" in data:
                found.append(data["text/html"])
    return found


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_committed_clean_and_opens_with_an_explanation(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    assert "TAVUS_ANALYTICS_DB" in nb.cells[0].source
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, name


def test_every_notebook_is_tested():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_on_the_demo_database(name, demo_db, tmp_path, monkeypatch):
    nb = execute(name, demo_db, tmp_path, monkeypatch)
    text = "\n".join(outputs(nb, "text"))
    assert f"database={demo_db}" in text
    images = outputs(nb, "png")
    charts = sum(1 for c in nb.cells if c.cell_type == "code" and c.source.startswith("charts."))
    assert charts >= 1 and len(images) == charts
    assert all(img.startswith(PNG) for img in images)
    assert outputs(nb, "html"), "tables are shown as HTML"
    assert "Traceback" not in text
    if name == "01_overview.ipynb":
        import tavus_analytics as ta

        n = len(ta.load(demo_db).conversations)
        assert re.search(rf"Conversations\s+{n:,} \(\d+ ended", text), text
    if name == "02_transcripts.ipynb":
        assert "messages found" in text and "Longest: c" in text
        longest = re.search(r"Longest: (c[0-9a-f]+)", text).group(1)
        pages = [h for h in outputs(nb, "html") if h.startswith('<div class="tac">')]
        assert len(pages) >= 2  # the longest call's page and the shortest's (ds.conversation)
        assert f"Conversation <code>{longest}</code>" in pages[0]
        assert "slowest answers" in text  # ds.calls_to_look_at(3)
    if name == "03_perception.ipynb":
        assert "analyses" in text and "week of" in text
    if name == "04_replicas_and_videos.ipynb":
        assert "generation time, minutes" in text
    if name == "05_objectives_guardrails_timing.ipynb":
        assert "completion_rate" in text and "triggers_per_100_calls" in text
        assert "calls with a guardrail triggered more than once" in text
        assert "median_s" in text and "error_code" in text
    if name == "06_what_callers_say.ipynb":
        import tavus_analytics as ta

        ds = ta.load(demo_db)
        calls = ds.sentiment()
        sourest = calls[calls["user_turns"] >= 6].nsmallest(1, "drift")
        assert f"Sourest call: {sourest['conversation_id'].iloc[0]} - keywords: " in text
        top = ds.questions().groups.iloc[0]
        assert f"Most asked: {top['example']} ({top['calls']:,} calls" in text


@pytest.mark.parametrize("name", NAMES)
def test_notebook_code_starts_in_two_lines_without_engine_code(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    first = nb.cells[1].source
    assert "import tavus_analytics as ta" in first and "ds = ta.load()" in first
    for engine_code in ("is_postgres", "Path(", "os.environ", "demo.write", "Settings"):
        assert engine_code not in code, (name, engine_code)


def test_a_named_database_that_does_not_exist_is_an_error_not_a_demo(tmp_path, monkeypatch):
    db = tmp_path / "new" / "tavus.db"
    with pytest.raises(CellExecutionError) as failed:
        execute("04_replicas_and_videos.ipynb", db, tmp_path, monkeypatch)
    assert f"no database at {db}" in str(failed.value)
    assert "tavus-analytics demo" in str(failed.value)
    assert not db.exists() and not db.parent.exists()


def test_a_notebook_opened_from_notebooks_finds_the_projects_database(tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / "notebooks").mkdir(parents=True)
    demo.write(project / "data" / "tavus.db", conversations=30, seed=1)
    nb = execute("04_replicas_and_videos.ipynb", None, project / "notebooks", monkeypatch)
    text = "\n".join(outputs(nb, "text"))
    assert f"database={project / 'data' / 'tavus.db'}" in text
    assert "Traceback" not in text


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_on_a_postgresql_url(name, pg_url, tmp_path, monkeypatch):
    demo.write(pg_url, conversations=60, seed=0)
    nb = execute(name, pg_url, tmp_path, monkeypatch)
    text = "\n".join(outputs(nb, "text"))
    assert "database=postgresql://tavus_test:***@127.0.0.1" in text
    assert pg_url.split("@")[0].rsplit(":", 1)[1] not in text + "\n".join(outputs(nb, "html"))
    assert "Traceback" not in text and outputs(nb, "png")
    if name == "01_overview.ipynb":
        assert re.search(r"Conversations\s+60 \(\d+ ended", text), text
    if name == "02_transcripts.ipynb":
        assert "messages found" in text
