"""Read a scenario file into a validated :class:`~simulator.model.Scenario`, or fail with
``FILE:LINE:COL: key.path: message`` lines (:class:`~simulator.errors.ScenarioError`).

The YAML is parsed in ruamel's round-trip mode, which keeps the line and column of every key and
value; pydantic validates a plain copy, and each error's ``loc`` is walked back to a position.
Rules that span fields (a called service exists, ``require`` fits the fan-out, no call cycles)
are checked here after the per-field validation passes.
"""

from __future__ import annotations

import copy
import difflib
import io
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .errors import Problem, ScenarioError
from .model import Scenario

Path_ = tuple[Any, ...]
Positions = dict[Path_, tuple[int, int]]


def load_scenario(path: str | Path, overrides: dict[str, Any] | None = None) -> Scenario:
    """Read, override (dotted paths, e.g. ``{"workload.rps": 8000}``) and validate a scenario."""
    file = str(path)
    data, positions = read_yaml(Path(path))
    data, overridden = apply_overrides(data, overrides or {}, file)
    return validate(data, file, positions, overridden)


def read_yaml(path: Path) -> tuple[dict, Positions]:
    """The file's top-level mapping as plain Python data, and the position of every node."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    file = str(path)
    if not path.exists():
        raise ScenarioError.single(file, "no such file")
    if path.is_dir():
        raise ScenarioError.single(file, "is a directory, not a scenario file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ScenarioError.single(file, f"cannot read: {e}") from None
    if not text.strip():
        raise ScenarioError.single(file, "file is empty")
    yaml = YAML(typ="rt")
    try:
        tree = yaml.load(io.StringIO(text))
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        what = " ".join(str(x) for x in (e.problem, e.context) if x) or "invalid YAML"
        if e.context and e.context_mark and e.problem_mark:
            what += f" that starts at line {e.context_mark.line + 1}"
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise ScenarioError.single(file, f"YAML syntax error: {what}", line, col) from None
    except YAMLError as e:
        raise ScenarioError.single(file, f"YAML error: {e}") from None
    if tree is None:
        raise ScenarioError.single(file, "file is empty (no keys)")
    if not isinstance(tree, dict):
        raise ScenarioError.single(
            file, f"the top level must be a mapping of keys, got {_kind(tree)}", 1, 1
        )
    positions: Positions = {}
    return _plain(tree, (), positions), positions


def _plain(node: Any, path: Path_, positions: Positions) -> Any:
    """Copy a ruamel tree into dicts, lists and scalars, recording 1-based positions."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if hasattr(node, "lc"):
                kl, kc = node.lc.key(key)
                positions[path + (key,)] = (kl + 1, kc + 1)
            out[str(key) if not isinstance(key, str) else key] = _plain(
                value, path + (key,), positions
            )
        return out
    if isinstance(node, list):
        for i in range(len(node)):
            if hasattr(node, "lc"):
                il, ic = node.lc.item(i)
                positions[path + (i,)] = (il + 1, ic + 1)
        return [_plain(v, path + (i,), positions) for i, v in enumerate(node)]
    if isinstance(node, bool) or node is None:
        return node
    for kind in (int, float, str):  # ruamel's ScalarFloat etc. become plain types
        if isinstance(node, kind):
            return kind(node)
    return node


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )


def apply_overrides(
    data: dict, overrides: dict[str, Any], file: str
) -> tuple[dict, dict[Path_, str]]:
    """A copy of ``data`` with each dotted-path override applied; also which paths were set.

    List items are addressed by index (``request.steps.0.fanout``); a missing last key is created.
    A bad path raises ``--set KEY: message``.
    """
    data = copy.deepcopy(data)
    paths: dict[Path_, str] = {}
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        node: Any = data
        path: list[Any] = []
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ScenarioError.single(
                        f"--set {dotted}",
                        f"'{'.'.join(parts[:i]) or '(top)'}' is a list of {len(node)} items; "
                        f"'{part}' is not an index in it",
                    )
                key: Any = int(part)
            elif isinstance(node, dict):
                key = part
                if not last and key not in node:
                    raise ScenarioError.single(
                        f"--set {dotted}", f"no key '{'.'.join(parts[: i + 1])}' in the scenario"
                    )
            else:
                raise ScenarioError.single(
                    f"--set {dotted}", f"'{'.'.join(parts[:i])}' is a value, not a mapping or list"
                )
            path.append(key)
            if last:
                node[key] = value
            else:
                node = node[key]
        paths[tuple(path)] = f"--set {dotted}"
    return data, paths


def validate(
    data: dict,
    file: str,
    positions: Positions | None = None,
    overridden: dict[Path_, str] | None = None,
) -> Scenario:
    """Validate plain data into a Scenario, mapping every error to a positioned line."""
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
        scenario = Scenario.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as e:
        problems += [_problem(err, data, where) for err in e.errors()]
    else:
        problems += [where(path, msg) for path, msg in _cross_checks(scenario)]
    if problems:
        raise ScenarioError(_unique(problems))
    scenario._source = file
    scenario._raw = data
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


def _known_keys() -> set[str]:
    from pydantic import BaseModel

    from . import distributions, model

    keys: set[str] = set()
    for mod in (model, distributions):
        for obj in vars(mod).values():
            if isinstance(obj, type) and issubclass(obj, BaseModel):
                keys.update(obj.model_fields)
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


def _problem(err: dict, data: dict, where) -> Problem:
    """One pydantic error as a positioned problem, its loc cleaned of union tags."""
    path = _clean_path(err, data)
    kind, msg = err["type"], err["msg"]
    node = _node(data, path) if kind not in ("missing", "extra_forbidden") else None
    key = _dotted(path)
    if kind == "missing":
        return Problem(where(path, "").file, f"{key}: required key is missing")
    if kind == "extra_forbidden":
        hint = difflib.get_close_matches(str(path[-1]), _known_keys(), n=1)
        tip = f" (did you mean '{hint[0]}'?)" if hint else ""
        return where(path, f"{key}: unknown key '{path[-1]}'{tip}")
    if kind == "union_tag_invalid":
        from .distributions import DIST_NAMES

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
