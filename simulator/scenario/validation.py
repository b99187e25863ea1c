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
from .size import too_big

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
    data = _python(data)
    try:
        scenario = model.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as e:
        problems += _problems(e.errors(), data, where, _known_keys(model))
    else:
        problems += [where(path, msg) for path, msg in _cross_checks(scenario)]
    if problems:
        raise ScenarioError(_unique(problems))
    return scenario


def _python(node: Any) -> Any:
    """Plain Python data: numpy scalars and arrays (a notebook's ``np.int64(5)``) and tuples
    become ints, floats, lists; everything else is left for validation to judge."""
    if isinstance(node, dict):
        return {k: _python(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [_python(v) for v in node]
    if hasattr(node, "dtype") and hasattr(node, "tolist"):  # numpy scalar or array
        return _python(node.tolist())
    return node


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


# pydantic's type errors, as a planner would say them (no class names, no regexes).
_EXPECTED = {
    "string_type": "text",
    "list_type": "a list",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "dict_type": "a mapping of keys",
    "model_type": "a mapping of keys",
    "model_attributes_type": "a mapping of keys",
    "literal_error": None,  # keeps pydantic's message: it lists the allowed values
}
_PATTERNS = {
    "name": "must be lowercase letters, digits and dashes, starting with a letter or digit",
    "after": "must be a percentile such as p95 or p99.9",
}
_SERVICE_NAME = (
    "a service name uses letters, digits, '_', '.' and '-', starting with a letter or digit"
)


def _problems(errors: list[dict], data: dict, where, known_keys: set[str]) -> list[Problem]:
    """pydantic's errors as positioned problems, one per key: the alternatives of a union (a
    call is a name or a list) are said in one line."""
    by_path: dict[Path_, list[dict]] = {}
    for err in errors:
        by_path.setdefault(_clean_path(err, data), []).append(err)
    out = []
    for path, errs in by_path.items():
        typed = [e for e in errs if _EXPECTED.get(e["type"])]
        if typed and len(typed) < len(errs):  # the union branch of the right type says why
            errs = [e for e in errs if e not in typed]
        kinds = [e["type"] for e in errs]
        if len(errs) > 1 and all(k in _EXPECTED and _EXPECTED[k] for k in kinds):
            wanted = " or ".join(dict.fromkeys(_EXPECTED[k] for k in kinds))
            out.append(where(path, f"{_dotted(path)}: expected {wanted}{_got(errs[0])}"))
        else:
            out += [_problem(err, path, data, where, known_keys) for err in errs]
    return out


def _got(err: dict) -> str:
    shown = err.get("input")
    if isinstance(shown, dict | list) or "input" not in err or str(shown) in err["msg"]:
        return ""  # a mapping or list is shown by its position; a value already in the message
    return f", got {shown!r}"


def _problem(err: dict, path: Path_, data: dict, where, known_keys: set[str]) -> Problem:
    """One pydantic error as a positioned problem at ``path`` (its loc cleaned of union tags)."""
    kind, msg = err["type"], err["msg"]
    node = _node(data, path) if kind not in ("missing", "extra_forbidden") else None
    key = _dotted(path)
    if kind == "missing":
        return Problem(where(path, "").file, f"{key}: required key is missing")
    if kind == "extra_forbidden":
        hint = difflib.get_close_matches(str(path[-1]), known_keys, n=1)
        tip = f" (did you mean '{hint[0]}'?)" if hint else ""
        if len(path) == 1 and not hint:
            tip = " (top-level keys starting with x- are ignored: a place for YAML anchors)"
        return where(path, f"{key}: unknown key '{path[-1]}'{tip}")
    if kind == "union_tag_invalid":
        got = err.get("input", {}).get("dist") if isinstance(err.get("input"), dict) else None
        return where(
            path + ("dist",) if isinstance(node, dict) and "dist" in node else path,
            f"{key}.dist: unknown distribution {got!r}; choose one of {', '.join(DIST_NAMES)}",
        )
    if kind == "union_tag_not_found":
        return where(path, f"{key}: needs a 'dist' key")
    if kind == "string_pattern_mismatch":
        if len(path) == 2 and path[0] == "services":
            return where(path, f"{key}: {_SERVICE_NAME}{_got(err)}")
        msg = _PATTERNS.get(str(path[-1]), msg)
    elif kind == "too_short":
        msg = f"needs at least {err.get('ctx', {}).get('min_length', 1)} item(s)"
    elif _EXPECTED.get(kind):
        msg = f"expected {_EXPECTED[kind]}"
    msg = msg.removeprefix("Value error, ").replace("Input should be ", "must be ", 1)
    return where(path, f"{key}: {msg}{'' if ', got ' in msg else _got(err)}")


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
        elif len(chain := _deepest_chain(s)) > MAX_CALL_DEPTH:
            shown = " -> ".join([*chain[:3], "...", chain[-1]])
            problems.append(
                ((), f"a call chain is {len(chain)} services deep ({shown}); "
                     f"fansim follows at most {MAX_CALL_DEPTH}")
            )  # fmt: skip
        elif (bursts := _bursts(s)) > MAX_BURSTS:
            problems.append(
                (("workload", "bursty", "every_s"),
                 f"workload.bursty.every_s: {bursts:,.0f} bursts in the run; at most "
                 f"{MAX_BURSTS:,}")
            )  # fmt: skip
        elif why := too_big(s):
            problems.append(((), why))
    return problems


MAX_CALL_DEPTH = 100  # services in one call chain; real systems are a handful deep
MAX_BURSTS = 1_000_000  # bursts of a bursty workload over the run (each is a rate segment)


def _bursts(s: Scenario) -> float:
    b = s.workload.bursty
    return 0.0 if b is None else (s.warmup_s + s.duration_s) / b.every_s


def _callees(s: Scenario, name: str) -> list[str]:
    return [c for step in s.services[name].steps for c in step.callees]


def _find_cycle(s: Scenario) -> list[str] | None:
    """A service call cycle (a -> b -> a), or None. Depth-first search with colours, iterative
    (a chain thousands of services deep must not hit Python's recursion limit)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in s.services:
        if root in state:
            continue
        path, todo = [root], [iter(_callees(s, root))]
        state[root] = 1
        while todo:
            callee = next(todo[-1], None)
            if callee is None:
                state[path.pop()] = 2
                todo.pop()
            elif state.get(callee) == 1:
                return path[path.index(callee) :] + [callee]
            elif callee not in state:
                state[callee] = 1
                path.append(callee)
                todo.append(iter(_callees(s, callee)))
    return None


def _deepest_chain(s: Scenario) -> list[str]:
    """The longest chain of calls from the request (the call graph has no cycle)."""
    below: dict[str, list[str]] = {}  # name -> the longest chain starting at it
    seen: set[str] = set()
    todo = [c for step in s.request.steps for c in step.callees]
    while todo:  # post-order without recursion: a name is finished after its callees
        name = todo.pop()
        if name in below:
            continue
        if name in seen:
            chains = [below[c] for c in _callees(s, name)]
            below[name] = [name, *max(chains, key=len, default=[])]
            continue
        seen.add(name)
        todo.append(name)
        todo += [c for c in _callees(s, name) if c not in below]
    roots = [c for step in s.request.steps for c in step.callees]
    return max((below[r] for r in roots), key=len, default=[])
