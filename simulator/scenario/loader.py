"""Read a scenario file into a validated :class:`~simulator.scenario.model.Scenario`, or fail
with ``FILE:LINE:COL: key.path: message`` lines (:class:`~simulator.scenario.errors.ScenarioError`).

The YAML is parsed in ruamel's round-trip mode, which keeps the line and column of every key and
value; :mod:`.overrides` applies ``--set`` paths to a plain copy, and :mod:`.validation` validates
it, walking each error back to a position recorded here.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from .errors import ScenarioError
from .model import Scenario
from .overrides import Path_, apply_overrides
from .validation import Positions


def load_scenario(
    path: str | Path,
    overrides: dict[str, Any] | None = None,
    labels: dict[str, str] | None = None,
) -> Scenario:
    """Read, override (dotted paths, e.g. ``{"workload.rps": 8000}``) and validate a scenario.
    An error in an overridden key names the override (``--set KEY``, or ``labels[KEY]``: the
    CLI passes ``{"seed": "--seed"}`` and the like)."""
    file = str(path)
    data, positions = read_yaml(Path(path))
    data, overridden = apply_overrides(data, overrides or {}, file, labels)
    return Scenario.from_data(data, file, positions, overridden, overrides)


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
