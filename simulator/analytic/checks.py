"""Argument checks shared by the closed forms: each returns the value as a plain ``float`` or
``int``, or raises :class:`ValueError` naming the argument and its value."""

from __future__ import annotations

import math
from collections.abc import Callable
from numbers import Integral, Real

import numpy as np

Ppf = Callable[[float], float]
"""Inverse CDF (quantile function) of one call's latency; numpy-vectorised callables are fine."""


def real(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or math.isnan(value):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    return float(value)


def positive(name: str, value: float, allow_zero: bool = False) -> float:
    v = real(name, value)
    if not (0.0 < v < math.inf or (allow_zero and v == 0.0)):
        raise ValueError(
            f"{name} must be {'>=' if allow_zero else '>'} 0 and finite, got {value!r}"
        )
    return v


def probability(name: str, value: float) -> float:
    v = real(name, value)
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return v


def integer(name: str, value: int, minimum: int, maximum: int | None = None) -> int:
    ok = isinstance(value, Integral) and not isinstance(value, bool)
    if not ok or value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{name} must be an integer {bound}, got {value!r}")
    return int(value)


def scalar(x: object) -> float:
    """A float from a ppf result that may be a Python float or a size-1 numpy array."""
    return float(np.asarray(x, dtype=float).reshape(()))
