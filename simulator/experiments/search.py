"""The bracket-and-bisect search behind ``plan()``: which value to probe next, and each probe's
replications until the SLO is decided.

Values are probed in this order:

1. the scenario's own value;
2. **bracket**: doubling away from the pass side (or halving toward it) from the furthest value
   probed, until one probe passes and one fails. For ``workload.rps`` a step up is capped at the
   rate where the last passing probe's busiest service would be fully busy, which fails at once
   (as unstable) and so saves most doublings;
3. **bisect**: the middle of the widest gap still wider than ``resolution`` (relative to the
   answer; at least one step for an integer key) between the closest pass, the undecided probes
   and the closest fail.

The search stays within ``SEARCH_FACTOR`` of the start, above zero (one for an integer key),
and short of any value the scenario refuses (a ``require`` above a smaller fan-out, an
``error_rate`` above 1): such a value ends the range in its direction, with a note. Each probe
re-judges its runs at ``min_replications``, then at twice as many, up to ``max_replications``;
so that those repeated looks keep the stated confidence, each look decides at confidence
``1 - (1 - confidence) / looks`` (Bonferroni over the looks).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..scenario.errors import ScenarioError
from .runner import Row, Run, Runner, replication_seed
from .slo import Term, Verdict, busiest_mean, judge
from .sweep import resolved_at

if TYPE_CHECKING:
    from ..scenario.model import Scenario

SEARCH_FACTOR = 1024.0  # bracketing stops this far from the scenario's own value


@dataclass(frozen=True)
class Probe:
    """One value of the searched key, its runs and what they say."""

    value: float
    verdict: Verdict
    rows: tuple[Row, ...] = field(repr=False)

    @property
    def outcome(self) -> str:
        return self.verdict.outcome

    def as_dict(self) -> dict[str, Any]:
        name, share = busiest_mean(self.rows)
        return {
            "value": self.value,
            "outcome": self.outcome,
            "runs": len(self.rows),
            "reason": self.verdict.reason,
            "unstable_runs": self.verdict.unstable_runs,
            "figures": {
                f.term.metric: {
                    "mean": nan_to_none(f.mean),
                    "half_width": nan_to_none(f.half_width),
                    "outcome": f.outcome,
                }
                for f in self.verdict.figures
            },  # fmt: skip
            "busiest": {"service": name, "utilization": nan_to_none(share)} if name else None,
        }


class Search:
    """The state of one plan's search: every probe by value, and the range still open."""

    def __init__(
        self,
        scenario: Scenario,
        find: str,
        goal: str,
        terms: list[Term],
        confidence: float,
        replications: tuple[int, int],
        start: float,
        resolution: float,
    ) -> None:
        self.scenario, self.find, self.goal = scenario, find, goal
        self.terms, self.confidence, self.resolution = terms, confidence, resolution
        self.low_runs, self.high_runs = replications
        looks = 1 + math.ceil(math.log2(self.high_runs / self.low_runs))
        self.look_confidence = 1 - (1 - confidence) / looks
        self.start = start
        self.integer = isinstance(start, int)
        # the open range of values: bounds refused by the scenario or past SEARCH_FACTOR
        self.floor = max(start / SEARCH_FACTOR, 1 if self.integer else 0)
        self.ceiling = start * SEARCH_FACTOR
        self.probes: dict[float, Probe] = {}
        self.order: list[Probe] = []
        self.refused: dict[float, str] = {}  # values the scenario does not accept, and why
        self.unlimited = False  # a rate search on a scenario without worker limits

    def run(self, runner: Runner, max_probes: int, progress: Callable | None) -> str:
        """Probe until the interval is as narrow as asked; the status (``found``,
        ``none_pass``, ``all_pass`` or ``probe_limit``)."""
        while True:
            value, status = self.next_value()
            if value is None:
                return status
            if len(self.order) >= max_probes:
                return "probe_limit"
            probe = self.probe(runner, value)
            if probe is not None and progress:
                progress(probe)

    def next_value(self) -> tuple[float | None, str]:
        """The next value to probe, and the status if there is none."""
        if not self.probes and not self.refused:
            return self.start, "found"
        good, bad = self.bracket()
        if good is None:
            return self.step(toward_pass=True), "none_pass"
        if bad is None:
            return self.step(toward_pass=False), "all_pass"
        return self.next_inside(good, bad), "found"

    def bracket(self) -> tuple[float | None, float | None]:
        """The passing value closest to the failing ones, and the failing value closest to
        the passing ones (None where there is none yet)."""
        sign = 1 if self.goal == "largest" else -1  # pass side: smaller values when largest
        fails = [v for v, p in self.probes.items() if p.outcome == "fail"]
        bad = min(fails, key=lambda v: sign * v) if fails else None
        passes = [v for v, p in self.probes.items()
                  if p.outcome == "pass" and (bad is None or sign * v < sign * bad)]  # fmt: skip
        good = max(passes, key=lambda v: sign * v) if passes else None
        return good, bad

    def non_monotonic(self) -> bool:
        """Whether some probe beyond the closest fail passed."""
        _, bad = self.bracket()
        sign = 1 if self.goal == "largest" else -1
        return bad is not None and any(
            p.outcome == "pass" and sign * v > sign * bad for v, p in self.probes.items()
        )

    def step(self, toward_pass: bool) -> float | None:
        """The next bracketing value: double (or halve) from the furthest value probed in
        that direction until the value is new; None past the open range."""
        up = toward_pass != (self.goal == "largest")
        tried = [*self.probes, *self.refused]
        value = max(tried) if up else min(tried)
        cap = math.inf
        if up and self.find == "workload.rps":  # capped where the busiest service is full
            good, _ = self.bracket()
            _, busy = busiest_mean(self.probes[good].rows) if good is not None else (None, 0.0)
            if math.isnan(busy):  # no worker limit anywhere: nothing depends on the rate
                self.unlimited = True
                return None
            if busy > 0:
                cap = max(value * 1.05, good / busy)
        while True:
            value = min(value * 2, cap) if up else value / 2
            cap = math.inf  # the cap applies to the first step only
            v = self.snap(value)
            if not self.floor < v < self.ceiling:
                return None
            if v not in self.probes and v not in self.refused:
                return v

    def next_inside(self, good: float, bad: float) -> float | None:
        """The middle of the widest gap still wider than ``resolution`` between the pass,
        the undecided (or refused) values and the fail; None when every gap is narrow
        enough."""
        lo, hi = sorted((good, bad))
        unsure = sorted(v for v in [*self.probes, *self.refused] if lo < v < hi)
        gaps = [(lo, unsure[0]), (unsure[-1], hi)] if unsure else [(lo, hi)]
        step = max(abs(good) * self.resolution, 1 if self.integer else 0)
        wide = [(b - a, a, b) for a, b in gaps if b - a > step]
        for _, a, b in sorted(wide, reverse=True):
            v = self.snap((a + b) / 2)
            if a < v < b:
                return v
        return None

    def snap(self, value: float) -> float:
        """``value`` rounded to a step a planner can read and type back: a whole number for an
        integer key, else the power of ten at or below ``resolution`` of it (2,410 rps, not
        2,413.28)."""
        if self.integer:
            return int(round(value))
        grain = 10.0 ** math.floor(math.log10(max(abs(value) * self.resolution, 1e-12)))
        return float(f"{round(value / grain) * grain:.12g}")

    def probe(self, runner: Runner, value: float) -> Probe | None:
        """Run ``value`` until its verdict is decided or the replication cap; None (and the
        range closed there) when the scenario refuses the value."""
        try:
            data = resolved_at(self.scenario, {self.find: value}, "--find")
        except ScenarioError as e:
            self.refused[value] = str(e)
            if value > self.start:
                self.ceiling = min(self.ceiling, value)
            else:
                self.floor = max(self.floor, value)
            return None
        index = len(self.order)
        rows: list[Row] = []
        n = self.low_runs
        while True:
            runs = [Run(index, r, replication_seed(self.scenario.seed, r), {self.find: value},
                        data, self.scenario.source)
                    for r in range(len(rows), n)]  # fmt: skip
            rows += runner.run(runs)
            verdict = judge(rows, self.terms, self.look_confidence)
            if verdict.outcome != "undecided" or n >= self.high_runs:
                break
            n = min(2 * n, self.high_runs)
        probe = Probe(value, verdict, tuple(rows))
        self.probes[value] = probe
        self.order.append(probe)
        return probe

    def headroom(self) -> dict[str, Any] | None:
        """At the answer: the busiest service, its utilization, and the offered rate at which
        it would be fully busy (utilization grows in proportion to the rate)."""
        good, _ = self.bracket()
        if good is None:
            return None
        rows = self.probes[good].rows
        name, busy = busiest_mean(rows)
        if name is None or not busy > 0:
            return None
        rate = sum(r["requests.arrived"] / r["duration_s"] for r in rows) / len(rows)
        return {"service": name, "utilization": busy, "measured_rps": rate,
                "capacity_rps": rate / busy, "headroom": 1 / busy - 1}  # fmt: skip

    def notes(self, status: str, max_probes: int) -> list[str]:
        """What a planner should read beside the answer."""
        good, bad = self.bracket()
        notes = []
        if status == "probe_limit":
            notes.append(f"stopped after {max_probes} probes, before the interval was as narrow "
                         "as asked")  # fmt: skip
        if self.unlimited:
            notes.append(
                "no service has a worker limit, so no queue forms and the latency does not "
                "depend on the rate: every rate meets the SLO if this one does"
            )
        for value, why in self.refused.items():
            notes.append(f"{self.find}={value:g} is not a valid value, so the search stops "
                         f"there ({why})")  # fmt: skip
        if good is not None and bad is not None:
            lo, hi = sorted((good, bad))
            unsure = [v for v, p in self.probes.items() if lo < v < hi]
            width = (hi - lo) / abs(good)
            if unsure and hi - lo > max(abs(good) * self.resolution, 1 if self.integer else 0):
                notes.append(
                    f"{len(unsure)} probe(s) between could not be decided at "
                    f"{self.high_runs} runs, so the interval is {width:.1%} wide, wider than "
                    f"the {self.resolution:.1%} asked: run longer (--duration) or raise "
                    "--max-replications"
                )
        if self.non_monotonic():
            notes.append(
                "some probe beyond the boundary passed: the figure is not monotonic in "
                f"{self.find} at this confidence; read the probes"
            )
        return notes


def nan_to_none(x: float | None) -> float | None:
    return None if x is None or math.isnan(x) else x
