"""Validate a scenario's plain data into the frozen model, or fail with positioned lines.

pydantic checks each field; each error's ``loc`` is walked back to a ``FILE:LINE:COL`` position
(or to the ``--set`` that wrote the key). Rules that span fields (a called service exists,
``require`` fits the fan-out, no call cycles) are checked after the per-field validation passes.
"""

from __future__ import annotations

import difflib
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from .distributions import DIST_NAMES
from .errors import Problem, ScenarioError
from .overrides import Path_

if TYPE_CHECKING:
    from .model import Scenario

Positions = dict[Path_, tuple[int, int]]


def validate(
    model: type[Scenario],
    data: dict,
    file: str,
    positions: Positions | None = None,
    overridden: dict[Path_, str] | None = None,
) -> Scenario:
    """Validate plain data into a ``model`` (the Scenario class), mapping every error to a
    positioned line. The class is passed in, not imported, so that ``Scenario.from_data`` can
    call this without an import circle."""
    positions = positions or {}
    overridden = overridden or {}
    base_dir = str(Path(file).parent) if not file.startswith("<") else "."

    def where(path: Path_, message: str) -> Problem:
        for p, label in overridden.items():
            if path[: len(p)] == p:
                return Problem(label, message)
        pos = positions.get(path)
        return Problem(file, message, *pos) if pos else Problem(file, message)

    problems: list[Problem] = []
    try:
        scenario = model.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as e:
        keys = _known_keys(model)
        problems += [_problem(err, data, where, keys) for err in e.errors()]
    else:
        problems += [where(path, msg) for path, msg in _cross_checks(scenario)]
    if problems:
        raise ScenarioError(_unique(problems))
    return scenario


def _unique(problems: list[Problem]) -> list[Problem]:
    seen, out = set(), []
    for p in problems:
        if str(p) not in seen:
            seen.add(str(p))
            out.append(p)
    return out


def _dotted(path: Path_) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def _known_keys(model: type[BaseModel]) -> set[str]:
    """Every key any model reachable from ``model`` accepts (for "did you mean" hints)."""
    keys: set[str] = set()
    seen: set[type] = set()

    def visit(tp: Any) -> None:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if tp not in seen:
                seen.add(tp)
                keys.update(tp.model_fields)
                for f in tp.model_fields.values():
                    visit(f.annotation)
        else:
            for arg in typing.get_args(tp):
                visit(arg)

    visit(model)
    return keys


def _clean_path(err: dict, data: dict) -> Path_:
    """An error's loc as a path into the data: union tags dropped, a missing last key kept."""
    node: Any = data
    path: list[Any] = []
    loc = list(err["loc"])
    for i, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            node = node[part]
            path.append(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            path.append(part)
        elif err["type"] in ("missing", "extra_forbidden") and i == len(loc) - 1:
            path.append(part)
    return tuple(path)


def _node(data: Any, path: Path_) -> Any:
    for part in path:
        data = data[part]
    return data


def _problem(err: dict, data: dict, where, known_keys: set[str]) -> Problem:
    """One pydantic error as a positioned problem, its loc cleaned of union tags."""
    path = _clean_path(err, data)
    kind, msg = err["type"], err["msg"]
    node = _node(data, path) if kind not in ("missing", "extra_forbidden") else None
    key = _dotted(path)
    if kind == "missing":
        return Problem(where(path, "").file, f"{key}: required key is missing")
    if kind == "extra_forbidden":
        hint = difflib.get_close_matches(str(path[-1]), known_keys, n=1)
        tip = f" (did you mean '{hint[0]}'?)" if hint else ""
        return where(path, f"{key}: unknown key '{path[-1]}'{tip}")
    if kind == "union_tag_invalid":
        got = err.get("input", {}).get("dist") if isinstance(err.get("input"), dict) else None
        return where(
            path + ("dist",) if isinstance(node, dict) and "dist" in node else path,
            f"{key}.dist: unknown distribution {got!r}; choose one of {', '.join(DIST_NAMES)}",
        )
    if kind == "union_tag_not_found":
        return where(path, f"{key}: needs a 'dist' key")
    msg = msg.removeprefix("Value error, ")
    shown = err.get("input")
    value = "" if isinstance(shown, (dict, list)) else f", got {shown!r}"
    return where(path, f"{key}: {msg}{value}")


def _cross_checks(s: Scenario) -> list[tuple[Path_, str]]:
    """Rules that span keys: called services exist, ``require`` fits, no call cycles."""
    problems: list[tuple[Path_, str]] = []
    owners: list[tuple[Path_, list]] = [(("request",), list(s.request.steps))]
    owners += [(("services", n), list(svc.steps)) for n, svc in s.services.items()]
    for owner, steps in owners:
        for i, step in enumerate(steps):
            at = owner + ("steps", i)
            missing = [c for c in step.callees if c not in s.services]
            for c in missing:
                j = step.callees.index(c)
                path = at + ("call", j) if isinstance(step.call, list) else at + ("call",)
                hint = difflib.get_close_matches(c, list(s.services), n=1)
                tip = f" (did you mean '{hint[0]}'?)" if hint else ""
                problems.append(
                    (
                        path,
                        f"{_dotted(path)}: unknown service '{c}'{tip}; services are: "
                        f"{', '.join(s.services)}",
                    )
                )
            if missing:
                continue
            n, k = s.calls_in(step), s.required(step)
            if k > n:
                problems.append(
                    (
                        at + ("require",),
                        f"{_dotted(at + ('require',))}: require is {k} but the "
                        f"step sends only {n} call{'s' * (n != 1)}",
                    )
                )
    if not problems:
        cycle = _find_cycle(s)
        if cycle:
            problems.append(((), "call cycle: " + " -> ".join(cycle)))
    return problems


def _find_cycle(s: Scenario) -> list[str] | None:
    """A service call cycle (a -> b -> a), or None. Depth-first search with colours."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        stack.append(name)
        for step in s.services[name].steps:
            for callee in step.callees:
                if state.get(callee) == 1:
                    return stack[stack.index(callee) :] + [callee]
                if callee not in state and (found := visit(callee)):
                    return found
        stack.pop()
        state[name] = 2
        return None

    for name in s.services:
        if name not in state and (found := visit(name)):
            return found
    return None
