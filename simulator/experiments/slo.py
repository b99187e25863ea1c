"""Service-level objectives (``--slo "p99<=200ms,error_rate<=0.1%"``) and the confidence
decision at one point: does it meet them, fail them, or can its replications not tell yet?

A term is ``METRIC OP VALUE[UNIT]``, ``OP`` one of ``<=``, ``<``, ``>=``, ``>``. Metrics:

* ``p50``, ``p90``, ``p95``, ``p99``, ``p999``, ``mean``, ``max``: request latency over every
  request (``latency_ms``); unit ``ms`` (the default) or ``s``;
* ``error_rate``: the share of arrived requests not answered (failed or rejected); ``%`` or a
  fraction;
* ``utilization``: the busiest service's utilization (of those with a worker limit); ``%`` or a
  fraction;
* any number of the flat row by its (dotted) name (``latency_ok_ms.p99``,
  ``services.db.utilization``, ``throughput_rps``), in its own unit (``ms`` or ``s`` for a
  name with ``_ms`` in it); a name the summary does not have is reported after the first
  probe's runs. Shares are fractions: ``error_rate<=5`` (500%) is refused.

Judging a point from its ``n`` replications: each term's mean ± the Student-t half-width at the
confidence asked. A point passes when every term's whole interval is on the right side of its
threshold, fails when some term's whole interval is on the wrong side, and is undecided
otherwise (a strict ``<`` fails a figure exactly on the line, ``<=`` passes it). A point whose
run carries an ``unstable`` warning (a service at or above 95% busy or past its capacity, a queue
still growing) fails whatever its figures: its tail grows with the run's length, so no figure of
it is a steady-state answer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..results.summary import mean_half_width
from ..scenario.errors import ScenarioError

LATENCY = ("p50", "p90", "p95", "p99", "p999", "mean", "max")
SHARES = ("error_rate", "utilization")
_TERM = re.compile(r"^\s*([A-Za-z_][\w.\-]*)\s*(<=|<|>=|>)\s*([-+0-9.eE]+)\s*([a-z%]*)\s*$")
_UNITS = {"latency": {"": 1.0, "ms": 1.0, "s": 1000.0}, "share": {"": 1.0, "%": 0.01},
          "figure": {"": 1.0}}  # fmt: skip

Row = Mapping[str, Any]


@dataclass(frozen=True)
class Term:
    """One objective: ``metric`` (as written) compared by ``op`` to ``threshold`` (in ms for
    latencies, a fraction for shares, the figure's own unit otherwise)."""

    metric: str
    op: str  # "<=", "<", ">=" or ">"
    threshold: float
    text: str  # as the user wrote it, for messages

    @property
    def unit(self) -> str:
        """``ms`` for a latency, ``%`` for a share (its threshold still a fraction), else
        empty."""
        return {"latency": "ms", "share": "%"}.get(kind_of(self.metric), "")

    def as_dict(self) -> dict[str, Any]:
        """As ``plan.json`` records it (``threshold`` in ms, or as a fraction for a share)."""
        return {"text": self.text, "metric": self.metric, "op": self.op,
                "threshold": self.threshold, "unit": self.unit}  # fmt: skip

    def value(self, row: Row) -> float:
        """This term's figure in one run's row (NaN when the run has none)."""
        if self.metric in LATENCY:
            return _number(row.get(f"latency_ms.{self.metric}"))
        if self.metric == "error_rate":
            arrived = _number(row.get("requests.arrived"))
            lost = _number(row.get("requests.failed")) + _number(row.get("requests.rejected"))
            return lost / arrived if arrived > 0 else math.nan
        if self.metric == "utilization":
            return busiest(row)[1]
        value = row.get(self.metric)
        if isinstance(value, str):
            raise ScenarioError.single(f"--slo {self.text}", f"{self.metric} is not a number")
        return _number(value)

    def show(self, value: float) -> str:
        """``value`` in this term's unit, as a planner reads it."""
        if math.isnan(value):
            return "n/a"
        if self.unit == "%":
            return f"{value:.2%}"
        if self.unit == "ms":
            return f"{value:,.1f} ms"
        return f"{value:,.4g}"


def parse_slo(text: str, where: str = "--slo") -> list[Term]:
    """``"p99<=200ms,error_rate<=0.1%"`` as terms; a ``ScenarioError`` naming ``where`` and the
    bad term otherwise."""
    terms = []
    for part in str(text).split(","):
        match = _TERM.match(part)
        if not match:
            raise ScenarioError.single(
                f"{where} {part.strip() or repr(text)}",
                "expected METRIC<=VALUE, e.g. p99<=200ms, p999<=1s, error_rate<=0.1%",
            )
        metric, op, number, unit = match.groups()
        kind = kind_of(metric)
        if kind == "figure" and re.fullmatch(r"p\d+", metric):
            known = ", ".join((*LATENCY, *SHARES))
            raise ScenarioError.single(
                f"{where} {part.strip()}",
                f"unknown metric {metric!r}: use {known}, or a summary figure's dotted name",
            )
        if unit not in _UNITS[kind]:
            units = ", ".join(repr(u) for u in _UNITS[kind] if u) or "no unit"
            raise ScenarioError.single(
                f"{where} {part.strip()}", f"unit {unit!r} does not fit {metric}: use {units}"
            )
        try:
            threshold = float(number) * _UNITS[kind][unit]
        except ValueError:
            raise ScenarioError.single(f"{where} {part.strip()}", "not a number") from None
        if kind == "share" and not 0 <= threshold <= 1:
            raise ScenarioError.single(
                f"{where} {part.strip()}",
                f"a share is between 0 and 1 (or 0% and 100%): did you mean {number}%?",
            )
        terms.append(Term(metric, op, threshold, part.strip()))
    return terms


def kind_of(metric: str) -> str:
    """``latency`` (ms), ``share`` (a fraction) or ``figure`` (its own unit)."""
    if metric in LATENCY or metric.endswith("_ms") or "_ms." in metric:
        return "latency"
    return "share" if metric in SHARES else "figure"


@dataclass(frozen=True)
class Figure:
    """One term at one point: mean over its runs and the half-width of its interval."""

    term: Term
    mean: float
    half_width: float
    outcome: str  # "pass", "fail" or "undecided"

    def describe(self) -> str:
        t = self.term
        band = "" if math.isnan(self.half_width) else f" ± {t.show(self.half_width)}"
        return f"{t.metric} {t.show(self.mean)}{band} vs {t.op} {t.show(t.threshold)}"


@dataclass(frozen=True)
class Verdict:
    """What one point's runs say about the SLO."""

    outcome: str  # "pass", "fail" or "undecided"
    figures: tuple[Figure, ...]
    unstable_runs: int
    reason: str


def judge(rows: Sequence[Row], terms: Sequence[Term], confidence: float) -> Verdict:
    """The decision for one point from its runs (see the module's doc)."""
    for term in terms:
        if term.metric not in (*LATENCY, *SHARES) and not any(term.metric in r for r in rows):
            raise ScenarioError.single(
                f"--slo {term.text}",
                f"the summary has no figure {term.metric!r} (see results.csv for the names)",
            )
        if "utilization" in term.metric and all(math.isnan(term.value(r)) for r in rows):
            raise ScenarioError.single(
                f"--slo {term.text}",
                "no run has this utilization: it needs a service with a worker limit",
            )
    unstable = sum(bool(row.get("unstable")) for row in rows)
    figures = tuple(_figure(term, [term.value(r) for r in rows], confidence) for term in terms)
    if unstable:
        name, share = busiest_mean(rows)
        busy = f" (busiest: {name}, {share:.1%} busy)" if name else ""
        reason = f"unstable in {unstable} of {len(rows)} runs{busy}"
        return Verdict("fail", figures, unstable, reason)
    failed = [f for f in figures if f.outcome == "fail"]
    if failed:
        return Verdict("fail", figures, 0, "; ".join(f.describe() for f in failed))
    unsure = [f for f in figures if f.outcome == "undecided"]
    if unsure:
        return Verdict("undecided", figures, 0, "; ".join(f.describe() for f in unsure))
    return Verdict("pass", figures, 0, "; ".join(f.describe() for f in figures))


def _figure(term: Term, values: list[float], confidence: float) -> Figure:
    """One term's mean over ``values`` (one per run), its half-width at ``confidence``
    (Student-t, two-sided), and what they say against the threshold."""
    finite = [v for v in values if not math.isnan(v)]
    if len(finite) < len(values) or not finite:
        return Figure(term, _mean(finite), math.nan, "undecided")
    mean, half = mean_half_width(finite, confidence)
    if math.isnan(half):
        return Figure(term, mean, half, "undecided")
    # "<": pass when the whole interval is below the line; fail when it is all at or above
    high, low, line = mean + half, mean - half, term.threshold
    passes = {"<=": high <= line, "<": high < line, ">=": low >= line, ">": low > line}
    fails = {"<=": low > line, "<": low >= line, ">=": high < line, ">": high <= line}
    if passes[term.op]:
        return Figure(term, mean, half, "pass")
    if fails[term.op]:
        return Figure(term, mean, half, "fail")
    return Figure(term, mean, half, "undecided")


def busiest(row: Row) -> tuple[str | None, float]:
    """The service with the highest utilization in one run's row, and that utilization (NaN
    when no service has a worker limit)."""
    best: tuple[str | None, float] = (None, math.nan)
    for key, value in row.items():
        if key.startswith("services.") and key.endswith(".utilization") and value is not None:
            if best[0] is None or float(value) > best[1]:
                best = (key[len("services.") : -len(".utilization")], float(value))
    return best


def busiest_mean(rows: Sequence[Row]) -> tuple[str | None, float]:
    """The service busiest on average over ``rows``, and its mean utilization."""
    names = {busiest(row)[0] for row in rows} - {None}
    means = {n: _mean([_number(r.get(f"services.{n}.utilization")) for r in rows]) for n in names}
    if not means:
        return None, math.nan
    name = max(means, key=means.get)
    return name, means[name]


def _number(value: Any) -> float:
    return math.nan if value is None or isinstance(value, bool) else float(value)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan
