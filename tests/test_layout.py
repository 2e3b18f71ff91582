"""The layout shows the architecture: one storage boundary, no private reach-ins, no cycles, and
tables documented as they are."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import tavus_analytics as ta
from tavus_analytics.tables import TABLES

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tavus_analytics"


def modules() -> dict[str, Path]:
    """``tavus_analytics.x.y`` -> its file, for every module of the package."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = modules()


def resolve(module: str, node: ast.ImportFrom) -> str | None:
    """The absolute module an ``ImportFrom`` in ``module`` names (None outside the package)."""
    if node.level:
        package = module if MODULES[module].name == "__init__.py" else module.rsplit(".", 1)[0]
        base = package.split(".")
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    return target if target.split(".")[0] == "tavus_analytics" else None


def imports(module: str, *, top_level_only: bool) -> list[tuple[str, ast.ImportFrom]]:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = []
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and (target := resolve(module, node)):
            found.append((target, node))
    return found


def test_only_the_store_package_asks_which_engine_it_is():
    offenders = []
    for path in [*PACKAGE.rglob("*.py"), *(ROOT / "notebooks").glob("*.ipynb")]:
        if "store" in path.relative_to(ROOT).parts[1:2]:
            continue
        if "is_postgres" in path.read_text(encoding="utf-8"):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_no_module_imports_another_modules_private_name():
    offenders = []
    for module in MODULES:
        imported_names: set[str] = set()
        for target, node in imports(module, top_level_only=False):
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    offenders.append(f"{module}: from {target} import {alias.name}")
                imported_names.add(alias.asname or alias.name)
        # nor reaches for one through a name it imported: Store._callback_row
        tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in imported_names
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                offenders.append(f"{module}: {node.value.id}.{node.attr}")
    assert offenders == []


def test_no_import_cycle_between_modules():
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module in MODULES:
        for target, node in imports(module, top_level_only=True):
            names = [f"{target}.{a.name}" for a in node.names]
            # ``from . import views`` imports a module; ``from .store import X`` the package
            hits = [n for n in names if n in MODULES] or [target]
            graph[module].update(h for h in hits if h in MODULES and h != module)
    seen: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        seen[node] = 1
        for nxt in sorted(graph[node]):
            if seen.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join([*path, node, nxt]))
            if nxt not in seen:
                visit(nxt, [*path, node])
        seen[node] = 2

    for module in sorted(graph):
        if module not in seen:
            visit(module, [])
    assert graph["tavus_analytics.store.sqlite"]  # the graph is real


def documented_columns(doc: str) -> list[str]:
    """The column names of a numpydoc ``Returns`` block: ``a, b : dtype, ...`` lines."""
    block = doc.split("Returns", 1)[1].split("-------", 1)[1]
    names = []
    for line in block.splitlines():
        m = re.match(r"^ {12}([a-z_][a-z0-9_]*(?:, [a-z_][a-z0-9_]*)*) : ", line)
        if m:
            names.extend(m.group(1).split(", "))
    return names


@pytest.mark.parametrize("name", list(TABLES))
def test_each_tables_documented_columns_are_its_real_columns(name):
    doc = getattr(ta.Dataset, name).__doc__
    assert documented_columns(doc) == list(TABLES[name]), name
