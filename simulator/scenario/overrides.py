"""Dotted-path overrides (``--set workload.rps=8000``) applied to a scenario's plain data."""

from __future__ import annotations

import copy
from typing import Any

from .errors import ScenarioError

Path_ = tuple[Any, ...]


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
