"""Dotted-path overrides (``--set workload.rps=8000``) applied to a scenario's plain data."""

from __future__ import annotations

import copy
from typing import Any

from .errors import ScenarioError

Path_ = tuple[Any, ...]


def apply_overrides(
    data: dict, overrides: dict[str, Any], file: str, labels: dict[str, str] | None = None
) -> tuple[dict, dict[Path_, str]]:
    """A copy of ``data`` with each dotted-path override applied; also which paths were set.

    List items are addressed by index (``request.steps.0.fanout``); a missing last key is
    created. A key that itself holds dots (a service named ``db.primary``) is matched whole:
    at each mapping the longest run of parts naming an existing key wins. A bad path raises
    ``--set KEY: message`` (or ``LABEL: message`` with ``labels[KEY]``).
    """
    if not isinstance(overrides, dict):
        raise ScenarioError.single(
            "overrides", f"expected a mapping of dotted keys to values, got {overrides!r}"
        )
    data = copy.deepcopy(data)
    paths: dict[Path_, str] = {}
    for dotted, value in overrides.items():
        if not isinstance(dotted, str) or not dotted.strip(".") or ".." in dotted:
            raise ScenarioError.single(f"--set {dotted}", "expected a dotted key path")
        where = (labels or {}).get(dotted, f"--set {dotted}")
        parts = dotted.split(".")
        node: Any = data
        path: list[Any] = []
        i = 0
        while True:
            if isinstance(node, list):
                part = parts[i]
                if not part.isdigit() or int(part) >= len(node):
                    raise ScenarioError.single(
                        where,
                        f"'{'.'.join(parts[:i]) or '(top)'}' is a list of {len(node)} items; "
                        f"'{part}' is not an index in it",
                    )
                key: Any = int(part)
                i += 1
            elif isinstance(node, dict):
                key, i = longest_key(node, parts, i)
                if key is None:
                    if i < len(parts) - 1:
                        raise ScenarioError.single(
                            where, f"no key '{'.'.join(parts[: i + 1])}' in the scenario"
                        )
                    key, i = parts[i], i + 1  # a missing last key is created
            else:
                raise ScenarioError.single(
                    where, f"'{'.'.join(parts[:i])}' is a value, not a mapping or list"
                )
            path.append(key)
            if i == len(parts):
                node[key] = value
                break
            node = node[key]
        paths[tuple(path)] = where
    return data, paths


def longest_key(node: dict, parts: list[str], i: int) -> tuple[str | None, int]:
    """The longest ``parts[i:j]`` joined by dots that is a key of ``node``, and ``j``."""
    for j in range(len(parts), i, -1):
        key = ".".join(parts[i:j])
        if key in node:
            return key, j
    return None, i


def yaml_value(where: str, text: str) -> Any:
    """A ``--set`` or ``--grid`` value parsed as YAML (empty: None), or ``ScenarioError``
    ``WHERE: message`` in one line."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    if not text.strip():
        return None
    try:
        return YAML(typ="safe", pure=True).load(text)
    except YAMLError as e:
        what = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ScenarioError.single(where, f"cannot parse value {text!r} as YAML: {what}") from None
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError) as e:
        raise ScenarioError.single(where, f"cannot parse value {text!r} as YAML: {e}") from None


def parse_sets(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; each VALUE parsed as YAML (scalars, lists, mappings)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ScenarioError.single(
                f"--set {item}", "expected KEY=VALUE, e.g. workload.rps=8000"
            )
        out[key.strip()] = yaml_value(f"--set {key}", text)
    return out
