"""The cheapest design that meets an SLO.

Two ways in:

* **Over a sweep** (``fansim sweep ... --slo "p99<=100ms"``): every grid point is judged from
  its replications (``slo.judge``: it meets the SLO when every term's confidence interval is on
  the right side of its line), and the point that meets it at the lowest mean monthly cost
  (``cost.per_month.total``) is the cheapest. The points no other point beats on both cost
  and p99 are the Pareto front.
* **By search** (``fansim plan ... --minimize cost --grid KEY=... --grid KEY=...``): the same
  answer as judging the whole grid, with fewer runs. A point's capacity cost (instances × their
  hourly price) is known before it runs and is a lower bound of its total (usage adds to it),
  so points are run in order of that bound and the search stops once the next bound is no
  lower than the cheapest point found to meet the SLO: no point left can be cheaper.

Ties in cost go to the lower p99, then to the earlier point. A point whose runs cannot decide
(an interval across the line) does not meet the SLO; it is reported as undecided.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..results.cost import HOURS_PER_MONTH
from ..results.files import summary_json, write_atomic
from ..results.outdir import locked_dir
from ..results.provenance import fansim_version
from ..results.summary import mean_half_width
from ..scenario.errors import ScenarioError
from .grid import points
from .runner import Run, Runner, replication_seed
from .slo import Term, Verdict, judge, parse_slo
from .sweep import (
    ROWS_DIR,
    check_replications,
    resolved_at,
    sweep_doc,
    write_sweep_json,
    write_tables,
)

if TYPE_CHECKING:
    import pandas as pd

    from ..scenario.model import Scenario

COST = "cost.per_month.total"
P99 = "latency_ms.p99"
PLAN_JSON = "plan.json"


@dataclass
class Point:
    """One design: its keys' values, its runs' verdict on the SLO, its cost and p99."""

    index: int
    values: dict[str, Any]
    verdict: Verdict
    runs: int
    cost: float  # mean monthly total (NaN when nothing is priced)
    cost_half_width: float
    capacity: float  # monthly capacity cost, known before running: a lower bound of cost
    p99: float
    p99_half_width: float

    @property
    def meets(self) -> bool:
        return self.verdict.outcome == "pass"

    def as_dict(self) -> dict[str, Any]:
        return {
            "point": self.index,
            "values": self.values,
            "outcome": self.verdict.outcome,
            "reason": self.verdict.reason,
            "runs": self.runs,
            "cost_per_month": _none(self.cost),
            "cost_half_width": _none(self.cost_half_width),
            "capacity_per_month": self.capacity,
            "p99_ms": _none(self.p99),
            "p99_half_width": _none(self.p99_half_width),
        }


def _none(x: float) -> float | None:
    return None if x is None or math.isnan(x) else float(x)


def capacity_per_month(data: Mapping[str, Any]) -> float:
    """A resolved scenario's monthly capacity cost: each priced service's instances × its
    hourly price × ``HOURS_PER_MONTH``."""
    total = 0.0
    for service in data["services"].values():
        price = (service.get("cost") or {}).get("per_instance_hour") or 0.0
        total += price * service.get("instances", 1) * HOURS_PER_MONTH
    return total


def judge_point(
    index: int, values: dict, rows: Sequence[Mapping], terms, confidence: float, capacity: float
) -> Point:
    """A point from its runs' rows."""
    verdict = judge(rows, terms, confidence)
    cost, cost_half = _mean(rows, COST, confidence)
    p99, p99_half = _mean(rows, P99, confidence)
    return Point(index, values, verdict, len(rows), cost, cost_half, capacity, p99, p99_half)


def _mean(rows: Sequence[Mapping], column: str, confidence: float) -> tuple[float, float]:
    values = [float(r[column]) for r in rows if _finite(r.get(column))]
    return mean_half_width(values, confidence)  # (NaN, NaN) for none


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def judge_sweep(
    frame: pd.DataFrame,
    scenario: Scenario,
    grid: Mapping[str, list[Any]],
    slo: str,
    confidence: float = 0.95,
) -> list[Point]:
    """Every point of a sweep's rows judged against ``slo``, in point order."""
    terms = _terms(slo, confidence)
    out = []
    for index, values in enumerate(points(dict(grid))):
        rows = frame[frame["point"] == index].to_dict("records")
        capacity = capacity_per_month(resolved_at(scenario, values, "--grid"))
        out.append(judge_point(index, values, rows, terms, confidence, capacity))
    return out


def slo_section(
    judged: Sequence[Point], slo: str, confidence: float, currency: str
) -> dict[str, Any]:
    """sweep.json's ``slo``: the SLO, every point judged (whether it meets it, whether it is
    on the Pareto front of cost and p99) and the cheapest point that meets it."""
    best, front = cheapest(judged), {p.index for p in pareto(judged)}
    return {
        "text": slo,
        "terms": [t.as_dict() for t in parse_slo(slo)],
        "confidence": confidence,
        "currency": currency,
        "points": [p.as_dict() | {"meets": p.meets, "pareto": p.index in front} for p in judged],
        "cheapest": None if best is None else best.as_dict(),
    }


def record_slo(
    frame: pd.DataFrame,
    scenario: Scenario,
    grid: Mapping[str, list[Any]],
    slo: str,
    confidence: float,
    out_dir: Path,
) -> dict[str, Any]:
    """``fansim sweep --slo``: judge every point, add the verdicts to ``sweep.json`` as
    ``slo`` (``slo_section``) and return them."""
    judged = judge_sweep(frame, scenario, grid, slo, confidence)
    section = slo_section(judged, slo, confidence, scenario.currency)
    reps = int(frame["replication"].max()) + 1 if len(frame) else 0
    write_sweep_json(Path(out_dir), sweep_doc(scenario, grid, reps) | {"slo": section})
    return section


def cheapest(judged: Sequence[Point]) -> Point | None:
    """The point that meets the SLO at the lowest mean monthly cost (ties: lower p99, then the
    earlier point); None when none meets it or nothing is priced."""
    feasible = [p for p in judged if p.meets and not math.isnan(p.cost)]
    if not feasible:
        return None
    return min(feasible, key=lambda p: (p.cost, _nan_last(p.p99), p.index))


def _nan_last(x: float) -> float:
    return math.inf if math.isnan(x) else x


def pareto(judged: Sequence[Point]) -> list[Point]:
    """The points no other point beats on both mean cost and mean p99 (lower is better),
    ordered by cost."""
    known = [p for p in judged if not math.isnan(p.cost) and not math.isnan(p.p99)]
    front = [
        p
        for p in known
        if not any(
            q.cost <= p.cost and q.p99 <= p.p99 and (q.cost < p.cost or q.p99 < p.p99)
            for q in known
        )
    ]
    return sorted(front, key=lambda p: (p.cost, p.p99))


def next_cheaper(judged: Sequence[Point], answer: Point) -> Point | None:
    """Of the points cheaper than ``answer`` that were run, the most expensive one (the one
    that came closest to being the answer)."""
    cheaper = [p for p in judged if not math.isnan(p.cost) and p.cost < answer.cost]
    return max(cheaper, key=lambda p: (p.cost, -p.index)) if cheaper else None


@dataclass
class CostPlan:
    """The answer of ``minimize_cost``: the cheapest point meeting the SLO (None when none
    does), the cheaper point that came closest, and every point run, in the order run."""

    slo: list[Term]
    confidence: float
    grid: dict[str, list[Any]]
    answer: Point | None
    closest_cheaper: Point | None
    judged: list[Point]
    skipped: int  # points never run: their capacity alone cost more than the answer
    scenario: str
    currency: str
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """The answer in one sentence."""
        slo = ",".join(t.text for t in self.slo)
        if self.answer is None:
            return f"no point of the grid meets {slo} (of {len(self.judged)} run)"
        a = self.answer
        keys = ", ".join(f"{k}={v}" for k, v in a.values.items())
        text = (
            f"cheapest meeting {slo}: {keys} at {a.cost:,.2f} a month "
            f"(p99 {a.p99:.4g} ± {a.p99_half_width:.2g} ms)"
        )
        c = self.closest_cheaper
        if c is not None:
            keys = ", ".join(f"{k}={v}" for k, v in c.values.items())
            text += f"; the next cheaper, {keys} at {c.cost:,.2f}, {c.verdict.outcome}s: "
            text += c.verdict.reason
        return text

    def as_dict(self) -> dict[str, Any]:
        """``plan.json``: the answer, the cheaper point that came closest, every point run
        (as ``slo_section`` gives them: ``text``, ``terms``, ``points``, ``cheapest``)."""
        text = ",".join(t.text for t in self.slo)
        section = slo_section(self.judged, text, self.confidence, self.currency)
        return {
            "scenario": self.scenario,
            "minimize": "cost",
            "grid": self.grid,
            "answer": None if self.answer is None else self.answer.as_dict(),
            "closest_cheaper": None
            if self.closest_cheaper is None
            else self.closest_cheaper.as_dict(),
            "points_run": len(self.judged),
            "points_skipped": self.skipped,
            "notes": self.notes,
            "slo": [t.as_dict() for t in self.slo],
            **section,
            "fansim_version": fansim_version(),
        }


def _terms(slo: str, confidence: float) -> list[Term]:
    if not 0.5 <= confidence < 1:
        raise ScenarioError.single("--confidence", f"must be in [0.5, 1), got {confidence!r}")
    return parse_slo(slo)


def minimize_cost(
    scenario: Scenario,
    slo: str,
    grid: Mapping[str, list[Any]],
    *,
    confidence: float = 0.95,
    replications: int = 5,
    workers: int | None = None,
    cluster: str | None = None,
    out_dir: Path | str | None = None,
    progress: Callable[[Point], None] | None = None,
) -> CostPlan:
    """The cheapest point of ``grid`` whose runs meet ``slo`` (see the module's doc);
    ``replications`` runs per point; ``progress(point)`` as each is judged. With ``out_dir``
    every run is kept (a repeated search reuses them) and ``plan.json`` is written."""
    terms = _terms(slo, confidence)
    reps = check_replications("--replications", replications)
    if reps < 2:
        raise ScenarioError.single("--replications", "must be at least 2 (an interval needs 2)")
    grid = dict(grid)
    if not any(s.cost for s in scenario.services.values()):
        raise ScenarioError.single(
            "--minimize cost", "no service has a cost: give services `cost:` prices first"
        )
    candidates = []
    for index, values in enumerate(points(grid)):
        data = resolved_at(scenario, values, "--grid")
        candidates.append((capacity_per_month(data), index, values, data))
    candidates.sort(key=lambda c: (c[0], c[1]))
    judged: list[Point] = []
    kept_rows: list[dict] = []
    best: Point | None = None
    skipped = 0
    with locked_dir(out_dir) as where:
        rows_dir = where / ROWS_DIR if where is not None else None
        with Runner(workers, cluster, rows_dir) as runner:
            for n, (capacity, index, values, data) in enumerate(candidates):
                if best is not None and capacity > best.cost:
                    skipped = len(candidates) - n  # none left can cost as little as best
                    break
                runs = [
                    Run(
                        index, r, replication_seed(scenario.seed, r), values, data, scenario.source
                    )  # fmt: skip
                    for r in range(reps)
                ]
                rows = runner.run(runs)
                kept_rows += rows
                point = judge_point(index, values, rows, terms, confidence, capacity)
                judged.append(point)
                if progress:
                    progress(point)
                if point.meets and (best is None or cheapest([best, point]) is point):
                    best = point
        closest = next_cheaper(judged, best) if best is not None else None
        notes = []
        if skipped:
            notes.append(
                f"{skipped} of {len(candidates)} points not run: their capacity alone costs "
                "more than the answer's total"
            )
        answer = CostPlan(terms, confidence, grid, best, closest, judged, skipped,
                          scenario.name, scenario.currency, notes)  # fmt: skip
        if where is not None:
            write_atomic(where / PLAN_JSON, summary_json(answer.as_dict()))
            if kept_rows:
                import pandas as pd

                write_tables(pd.DataFrame(kept_rows), where)
    return answer
