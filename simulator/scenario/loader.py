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


MAX_BYTES = 10 * 1024 * 1024  # a scenario is a few KB; refuse what no one writes by hand
MAX_VALUES = 1_000_000  # values after YAML aliases are expanded (a "billion laughs" stops here)
MAX_DEPTH = 100  # levels of nested mappings and lists
EXTENSION_PREFIX = "x-"  # top-level keys ignored, to hold YAML anchors (as in Docker Compose)
_PLAIN_TAGS = {
    "tag:yaml.org,2002:str": str,
    "tag:yaml.org,2002:int": int,
    "tag:yaml.org,2002:float": float,
}


def read_yaml(path: Path) -> tuple[dict, Positions]:
    """The file's top-level mapping as plain Python data, and the position of every node.

    YAML anchors, aliases and merge keys (``<<: *defaults``) work; top-level keys starting with
    ``x-`` are dropped (a place for anchors). Refused in one positioned line: text that is not
    UTF-8, custom tags, sets, dates and binary values, nesting deeper than ``MAX_DEPTH``, and
    documents that expand past ``MAX_VALUES`` values."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    file = str(path)
    try:
        if not path.exists():
            raise ScenarioError.single(file, "no such file")
        if path.is_dir():
            raise ScenarioError.single(file, "is a directory, not a scenario file")
        if path.stat().st_size > MAX_BYTES:
            raise ScenarioError.single(
                file, f"is {path.stat().st_size:,} bytes; a scenario file is at most {MAX_BYTES:,}"
            )
        raw = path.read_bytes()
    except OSError as e:
        raise ScenarioError.single(file, f"cannot read: {e.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        col = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        byte = raw[e.start : e.start + 1].hex()
        raise ScenarioError.single(file, f"not UTF-8 text (byte 0x{byte})", line, col) from None
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
        raise ScenarioError.single(file, f"YAML error: {str(e).splitlines()[0]}") from None
    except RecursionError:
        raise ScenarioError.single(
            file, f"nested too deeply: a scenario nests at most {MAX_DEPTH} levels"
        ) from None
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as e:
        # ruamel's constructors raise these for values a tag cannot take (!!int "0x")
        raise ScenarioError.single(file, f"YAML value not understood: {e}") from None
    if tree is None:
        raise ScenarioError.single(file, "file is empty (no keys)")
    if not isinstance(tree, dict):
        raise ScenarioError.single(
            file, f"the top level must be a mapping of keys, got {_kind(tree)}", 1, 1
        )
    for key in [k for k in tree if isinstance(k, str) and k.startswith(EXTENSION_PREFIX)]:
        del tree[key]
    positions: Positions = {}
    return _Copy(file, positions).plain(tree, (), (1, 1)), positions


class _Copy:
    """Copies a ruamel tree into dicts, lists and scalars, recording 1-based positions and
    counting values (aliases share nodes, so a copy can be exponentially larger)."""

    def __init__(self, file: str, positions: Positions):
        self.file, self.positions, self.values = file, positions, 0

    def plain(self, node: Any, path: Path_, at: tuple[int, int]) -> Any:
        self.values += 1
        if self.values > MAX_VALUES:
            raise ScenarioError.single(
                self.file, f"expands to more than {MAX_VALUES:,} values (YAML aliases repeated?)"
            )
        if len(path) > MAX_DEPTH:
            raise ScenarioError.single(self.file, f"nested more than {MAX_DEPTH} levels deep", *at)
        tag = getattr(getattr(node, "tag", None), "value", None)
        if isinstance(node, dict | list) and tag is not None:
            raise ScenarioError.single(self.file, f"YAML tag {tag} is not supported", *at)
        if isinstance(node, dict):
            out = {}
            lines = getattr(getattr(node, "lc", None), "data", None) or {}
            for key, value in node.items():
                if not isinstance(key, str | int | float | bool):
                    raise ScenarioError.single(self.file, "a key must be a plain value", *at)
                where = lines.get(key)  # None for a key merged in with <<
                pos = (where[0] + 1, where[1] + 1) if where else at
                self.positions[path + (key,)] = pos
                out[str(key) if not isinstance(key, str) else key] = self.plain(
                    value, path + (key,), pos
                )
            return out
        if isinstance(node, list):
            out_list = []
            for i, value in enumerate(node):
                pos = at
                data = getattr(getattr(node, "lc", None), "data", None) or {}
                if i in data:
                    il, ic = data[i][:2]
                    pos = (il + 1, ic + 1)
                self.positions[path + (i,)] = pos
                out_list.append(self.plain(value, path + (i,), pos))
            return out_list
        if isinstance(node, bool) or node is None:
            return node
        if tag is not None:  # a scalar with a tag: !!str 5 is fine, !custom 5 is not
            if tag not in _PLAIN_TAGS:
                raise ScenarioError.single(self.file, f"YAML tag {tag} is not supported", *at)
            try:
                return _PLAIN_TAGS[tag](node.value)
            except ValueError:
                raise ScenarioError.single(
                    self.file, f"{node.value!r} is not a valid {tag}", *at
                ) from None
        for kind in (int, float, str):  # ruamel's ScalarFloat etc. become plain types
            if isinstance(node, kind):
                return kind(node)
        what = type(node).__name__.removeprefix("Commented").lower()
        raise ScenarioError.single(
            self.file, f"a {what} value is not supported here (write a number, text or list)", *at
        )


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )
