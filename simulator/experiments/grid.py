"""A sweep's grid: keys that ``--set`` accepts, each with a list of values, as a full factorial."""

from __future__ import annotations

import itertools
import math
from typing import Any

from ..scenario.errors import ScenarioError
from ..scenario.overrides import yaml_value

MAX_POINTS = 10_000


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """``KEY=V1,V2,...`` (each value parsed as YAML) or ``KEY=start:stop:step`` (numbers,
    ``stop`` included when the steps land on it), one key per item, in the order given."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        where = f"--grid {key or item}"
        if not sep or not key or not text.strip():
            raise ScenarioError.single(where, "expected KEY=V1,V2,... or KEY=start:stop:step")
        if key in grid:
            raise ScenarioError.single(where, "this key is already swept")
        if text.count(":") == 2 and "," not in text:
            grid[key] = _range(where, text)
            continue
        grid[key] = [yaml_value(where, part) for part in text.split(",")]
    if math.prod(len(v) for v in grid.values()) > MAX_POINTS:
        raise ScenarioError.single("--grid", f"more than {MAX_POINTS:,} points")
    return grid


def _range(where: str, text: str) -> list[float | int]:
    try:
        start, stop, step = (float(x) for x in text.split(":"))
    except ValueError:
        raise ScenarioError.single(
            where, f"start:stop:step needs three numbers, got {text!r}"
        ) from None
    if not (math.isfinite(start) and math.isfinite(stop) and math.isfinite(step)) or step <= 0:
        raise ScenarioError.single(where, f"step must be a finite number > 0, got {text!r}")
    if stop < start:
        raise ScenarioError.single(where, f"stop must not be below start, got {text!r}")
    count = math.floor((stop - start) / step + 1e-9) + 1
    if count > MAX_POINTS:
        raise ScenarioError.single(where, f"{count:,} values; at most {MAX_POINTS:,}")
    values = [start + i * step for i in range(count)]
    if all(float(v).is_integer() for v in (start, step)):
        return [int(v) for v in values]
    return [round(v, 12) for v in values]


def points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values (the first key varies slowest)."""
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*grid.values())]
