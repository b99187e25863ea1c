"""The package layout stays the architecture: data flows scenario -> engine -> results ->
report -> CLI, imports point one way only, and what modules share is public.

The rules are read from the source with ``ast`` (every import, including those inside functions
and under ``TYPE_CHECKING``), so a new module is checked the day it is added. Each rule is also
run on a small made-up package that breaks it, to show the check can fail.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "simulator"
MAX_LINES = 600

# Each room and the rooms it may import (besides itself). The facade (``simulator/__init__``)
# may name anything and nothing may import it.
ALLOWED: dict[str, set[str]] = {
    "scenario": set(),
    "engine": {"scenario"},
    "analytic": {"scenario"},
    "results": {"engine", "scenario"},
    "report": {"results", "analytic", "scenario"},
    "experiments": {"results", "scenario"},
    "traces": {"results", "scenario"},
    "cli": {"experiments", "traces", "report", "results", "analytic", "engine", "scenario"},
}
FACADE = "facade"


def modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under the package ``root``."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def room(module: str) -> str:
    """``simulator.engine.sim`` -> ``engine``; ``simulator.cli`` -> ``cli``; the package's
    ``__init__`` -> the facade."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else FACADE


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    hidden: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            hidden |= {id(n) for n in ast.walk(node)}
    return hidden


def imports(mods: dict[str, Path]) -> Iterator[tuple[str, str, str, bool]]:
    """``(importer, imported module, imported name, at run time)`` for every import of a
    module of the package by another; the name is '' for ``import x.y``."""
    top = next(iter(mods)).split(".")[0]
    for module, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        hidden = _type_checking_nodes(tree)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(tree):
            runtime = id(node) not in hidden
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == top:
                        yield module, alias.name, "", runtime
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                if source.split(".")[0] != top:
                    continue
                for alias in node.names:
                    submodule = f"{source}.{alias.name}"
                    target = submodule if submodule in mods else source
                    yield module, target, alias.name, runtime


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        top = stack.pop()
                        on_stack.discard(top)
                        component.append(top)
                        if top == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(edges.get(child, ())))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def breaches(root: Path, allowed: dict[str, set[str]]) -> dict[str, list[str]]:
    """Every breach of the layout rules in the package at ``root``, by rule."""
    mods = modules(root)
    runtime: dict[str, set[str]] = {}
    out: dict[str, list[str]] = {"rooms": [], "circles": [], "private": [], "long": []}
    for importer, target, name, at_run_time in imports(mods):
        if target == importer or target not in mods:
            continue
        a, b = room(importer), room(target)
        if b == FACADE or (a != b and a != FACADE and b not in allowed.get(a, set())):
            out["rooms"].append(f"{importer} imports {target} ({a} may not import {b})")
        if name.startswith("_") and not name.startswith("__"):
            out["private"].append(f"{importer} imports {target}.{name}")
        if at_run_time:
            runtime.setdefault(importer, set()).add(target)
    out["circles"] = [" <-> ".join(c) for c in cycles(runtime)]
    for module, path in mods.items():
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > MAX_LINES:
            out["long"].append(f"{module}: {n} lines")
    return out


# ------------------------------------------------------------------------------------ the package


@pytest.fixture(scope="module")
def found() -> dict[str, list[str]]:
    return breaches(PACKAGE, ALLOWED)


def test_every_room_is_known() -> None:
    """Every subpackage and top-level module of simulator/ is a room the rules name."""
    rooms = {room(m) for m in modules(PACKAGE)} - {FACADE}
    assert rooms == set(ALLOWED)


def test_imports_point_down_the_data_flow(found: dict[str, list[str]]) -> None:
    """No room imports a higher one or one beside it, not even for type hints."""
    assert found["rooms"] == []


def test_no_run_time_import_circles(found: dict[str, list[str]]) -> None:
    """No two modules import each other at run time, directly or through others."""
    assert found["circles"] == []


def test_no_private_name_is_imported_from_another_module(found: dict[str, list[str]]) -> None:
    """What two modules share is public in the one that owns it."""
    assert found["private"] == []


def test_no_module_is_long(found: dict[str, list[str]]) -> None:
    """Every module stays short enough to read in one sitting."""
    assert found["long"] == []


def test_the_engine_never_uses_the_closed_forms() -> None:
    """The engine simulates; simulator.analytic is for reports, tests and planners."""
    assert "analytic" not in ALLOWED["engine"]
    mods = modules(PACKAGE)
    used = {t for m, t, _, _ in imports(mods) if room(m) == "engine"}
    assert not {t for t in used if room(t) == "analytic"}


# ------------------------------------------------------------------------- the checks can fail


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "simulator"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for sub in ("", "scenario", "engine"):
        (root / sub).mkdir(parents=True, exist_ok=True)
        (root / sub / "__init__.py").touch()
    return root


def test_the_checks_catch_a_made_up_breach_of_each_rule(tmp_path: Path) -> None:
    """A back edge (even a type hint), a run-time circle, a private import and a long module
    are each reported."""
    root = _package(
        tmp_path,
        {
            "scenario/model.py": (
                "from typing import TYPE_CHECKING\n"
                "from .loader import read\n"
                "if TYPE_CHECKING:\n"
                "    from ..engine.sim import Sim\n"
            ),
            "scenario/loader.py": "def read():\n    from .model import x\n",
            "engine/sim.py": "from ..scenario.model import _hidden\n" + "pass\n" * 601,
        },
    )
    found = breaches(root, {"scenario": set(), "engine": {"scenario"}})
    assert found["rooms"] == [
        "simulator.scenario.model imports simulator.engine.sim (scenario may not import engine)"
    ]
    assert found["circles"] == ["simulator.scenario.loader <-> simulator.scenario.model"]
    assert found["private"] == ["simulator.engine.sim imports simulator.scenario.model._hidden"]
    assert found["long"] == ["simulator.engine.sim: 602 lines"]


def test_a_type_hint_circle_inside_one_room_is_allowed(tmp_path: Path) -> None:
    """Inside a room, a circle closed only through TYPE_CHECKING imports is no breach."""
    root = _package(
        tmp_path,
        {
            "engine/sim.py": "from .flows import Call\n",
            "engine/flows.py": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .sim import Sim\n"
            ),
        },
    )
    assert breaches(root, {"scenario": set(), "engine": {"scenario"}}) == {
        "rooms": [],
        "circles": [],
        "private": [],
        "long": [],
    }
