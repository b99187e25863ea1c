"""Numbers and values as the reports show them: one formatter per kind of figure, shared by
every table, caption and chart label so that a figure reads the same everywhere."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

DASH = "—"  # a figure that is missing or undefined


def is_missing(x: Any) -> bool:
    return x is None or (isinstance(x, float | np.floating) and not math.isfinite(x))


def fmt_sig(x: float | None, sig: int = 3) -> str:
    """``sig`` significant digits, thousands separators, no exponent: 1234.5 -> '1,230'."""
    if is_missing(x):
        return DASH
    x = float(x)  # type: ignore[arg-type]
    if x == 0:
        return "0"
    decimals = sig - 1 - math.floor(math.log10(abs(x)))
    rounded = round(x, decimals)
    if rounded != 0 and math.floor(math.log10(abs(rounded))) > math.floor(math.log10(abs(x))):
        decimals -= 1  # 9.996 -> 10.0, not 10.00
    return f"{rounded:,.{max(decimals, 0)}f}"


def fmt_ms(x: float | None) -> str:
    """A latency in ms with 3 significant digits."""
    return fmt_sig(x, 3)


def fmt_num(x: float | None) -> str:
    """A count or rate: whole numbers above 1,000, else up to 4 significant digits."""
    if is_missing(x):
        return DASH
    x = float(x)  # type: ignore[arg-type]
    if abs(x) >= 1000 or x == int(x):
        return f"{x:,.0f}"
    text = fmt_sig(x, 4)
    return text.rstrip("0").rstrip(".") if "." in text else text


def fmt_pct(x: float | None, decimals: int = 1) -> str:
    """A fraction as a percentage with ``decimals`` decimals (0.8734 -> '87.3%'); shares too
    small for that keep two significant digits (0.00042 -> '0.042%')."""
    if is_missing(x):
        return DASH
    pct = 100.0 * float(x)  # type: ignore[arg-type]
    if pct != 0 and abs(pct) < 10.0**-decimals:
        return f"{fmt_sig(pct, 2)}%"
    return f"{pct:.{decimals}f}%"


def dig(d: Mapping[str, Any] | None, path: str) -> Any:
    """``d[a][b][c]`` for ``path='a.b.c'``, or None where any key is missing."""
    for key in path.split("."):
        if not isinstance(d, Mapping) or key not in d:
            return None
        d = d[key]
    return d


def fmt_signed(x: float, unit: str) -> str:
    """A change: +12.3%, −0.04 pp (one decimal, or two significant digits below 0.1; a
    typographic minus, as wide as the plus)."""
    sign = "+" if x > 0 else "\u2212"
    text = f"{abs(x):.1f}" if abs(x) >= 0.1 else fmt_sig(abs(x), 2).rstrip("0")
    return f"{sign}{text}{unit}"
