"""``plan()``: goal-seek the largest rate, or the smallest capacity, that meets an SLO.

The searched key is ``workload.rps`` or any integer or real key ``--set`` accepts. Its *goal*
says which side passes: ``largest`` for keys under ``workload`` and for ``fanout``/``repeat``
(more of them is harder), ``smallest`` for everything else (``services.db.workers``,
``instances``: fewer is harder); ``goal=`` overrides the guess.

1. **Bracket**: probe the scenario's own value, then step by doubling (or halving) away from
   it until one probe passes and one fails. For ``workload.rps`` the step up is capped at the
   rate where the busiest service of the last passing probe would be fully busy, which fails
   at once (as unstable) and so saves most doublings.
2. **Bisect** between the closest pass and fail until they are within ``resolution`` (relative
   to the answer; at least one step for an integer key).

At each probe the replications grow (``min_replications``, then doubling up to
``max_replications``) until ``slo.judge`` decides at the stated confidence; a probe still
undecided at the cap is recorded as such, and the search narrows the gaps on both of its sides,
so the reported interval is the closest pass and fail: the answer lies between them. Replication
``r`` has the same seed at every probe (common random numbers), so neighbouring probes differ by
their value, not by seed noise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..results.files import summary_json, write_atomic
from ..results.outdir import locked_dir
from ..results.provenance import fansim_version
from ..scenario.errors import ScenarioError
from .runner import Row, Run, Runner, replication_seed
from .slo import Term, Verdict, busiest_mean, judge, parse_slo
from .sweep import ROWS_DIR, check_replications, resolved_at, write_tables

if TYPE_CHECKING:
    import pandas as pd

    from ..scenario.model import Scenario

PLAN_JSON = "plan.json"
SEARCH_FACTOR = 1024.0  # bracketing stops this far from the scenario's own value
LARGER_IS_HARDER = ("fanout", "repeat")


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
                    "mean": _json(f.mean),
                    "half_width": _json(f.half_width),
                    "outcome": f.outcome,
                }  # fmt: skip
                for f in self.verdict.figures
            },
            "busiest": {"service": name, "utilization": _json(share)} if name else None,
        }


@dataclass
class Plan:
    """The answer of ``plan()``: ``value`` is the best probe that meets the SLO (None when
    none does), ``interval`` the closest pass and fail around the true boundary (sorted), and
    ``probes`` every probe in the order run."""

    find: str
    goal: str  # "largest" or "smallest"
    slo: list[Term]
    confidence: float
    value: float | None
    interval: tuple[float | None, float | None]
    status: str  # "found", "none_pass", "all_pass", "probe_limit"
    probes: list[Probe]
    headroom: dict[str, Any] | None
    limited_by: str | None
    scenario: str
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """``plan.json``: the answer, its interval, the SLO, the headroom and the probes."""
        return {
            "scenario": self.scenario,
            "find": self.find,
            "goal": self.goal,
            "slo": [t.as_dict() for t in self.slo],
            "confidence": self.confidence,
            "status": self.status,
            "value": self.value,
            "interval": list(self.interval),
            "limited_by": self.limited_by,
            "headroom": self.headroom,
            "notes": self.notes,
            "probes": [p.as_dict() for p in self.probes],
            "fansim_version": fansim_version(),
        }

    def table(self) -> pd.DataFrame:
        """The probes as a DataFrame, sorted by value."""
        import pandas as pd

        records = []
        for p in self.probes:
            record = {"value": p.value, "outcome": p.outcome, "runs": len(p.rows)}
            for f in p.verdict.figures:
                record[f.term.metric] = f.mean
                record[f"{f.term.metric}_half_width"] = f.half_width
            record["busiest_utilization"] = busiest_mean(p.rows)[1]
            records.append(record)
        return pd.DataFrame(records).sort_values("value", ignore_index=True)

    def rows(self) -> pd.DataFrame:
        """Every run of every probe, one row each (as ``sweep()`` returns them)."""
        import pandas as pd

        return pd.DataFrame([row for p in self.probes for row in p.rows])

    def describe(self) -> str:
        """The answer in one sentence, as the terminal prints it."""
        slo = ",".join(t.text for t in self.slo)
        lo, hi = self.interval
        if self.value is None:
            tried = _num(hi if self.goal == "largest" else lo)
            return f"no {self.find} meets {slo} (the closest tried: {tried}): {self.limited_by}"
        if self.status == "all_pass":
            return (f"every {self.find} tried meets {slo}, up to {_num(self.value)}: the SLO "
                    "does not bind in the searched range")  # fmt: skip
        words = f"{self.goal} {self.find} meeting {slo}: {_num(self.value)}"
        pct = f"{self.confidence:.0%}"
        return f"{words} (between {_num(lo)} and {_num(hi)}, {pct} confidence per probe)"


def plan(
    scenario: Scenario,
    slo: str,
    find: str = "workload.rps",
    *,
    goal: str | None = None,
    confidence: float = 0.95,
    max_utilization: float | None = None,
    min_replications: int = 3,
    max_replications: int = 12,
    resolution: float = 0.01,
    max_probes: int = 30,
    workers: int | None = None,
    cluster: str | None = None,
    out_dir: Path | str | None = None,
    progress: Callable[[Probe], None] | None = None,
) -> Plan:
    """Goal-seek ``find`` (see the module's doc): the largest (or smallest) value whose runs
    meet ``slo`` (``"p99<=200ms"``, terms joined with ``,``) at ``confidence``.
    ``max_utilization`` adds ``utilization<=U`` (headroom on the busiest service). Runs go to
    ``workers`` processes or the Dask scheduler at ``cluster``; with ``out_dir`` every run is
    kept (a repeated plan reuses them) and ``plan.json`` and ``results.csv`` are written there.
    ``progress(probe)`` is called as each probe is decided."""
    terms = parse_slo(slo)
    if max_utilization is not None:
        if not 0 < max_utilization <= 1:
            raise ScenarioError.single(
                "--max-utilization", f"must be in (0, 1], got {max_utilization!r}"
            )
        terms.append(Term("utilization", "<=", float(max_utilization),
                          f"utilization<={max_utilization:g}"))  # fmt: skip
    if not 0.5 <= confidence < 1:
        raise ScenarioError.single("--confidence", f"must be in [0.5, 1), got {confidence!r}")
    low = check_replications("--min-replications", min_replications)
    high = check_replications("--max-replications", max_replications)
    if low < 2 or high < low:
        raise ScenarioError.single(
            "--max-replications", f"need 2 <= min ({low}) <= max ({high}) for an interval"
        )
    start = value_at(scenario.resolved_data(), find)
    goal = goal or guess_goal(find)
    if goal not in ("largest", "smallest"):
        raise ScenarioError.single("--goal", f"expected largest or smallest, got {goal!r}")
    if not 0 <= resolution < 1:
        raise ScenarioError.single("--resolution", f"must be in [0, 1), got {resolution!r}")
    search = _Search(scenario, find, goal, terms, confidence, (low, high), start, resolution)
    with locked_dir(out_dir) as where:
        rows_dir = where / ROWS_DIR if where is not None else None
        with Runner(workers, cluster, rows_dir) as runner:
            answer = search.run(runner, max_probes, progress)
        if where is not None:
            write_atomic(where / PLAN_JSON, summary_json(answer.as_dict()))
            write_tables(answer.rows(), where)
    return answer


def guess_goal(key: str) -> str:
    """``largest`` for load (``workload.*``, ``fanout``, ``repeat``), else ``smallest``."""
    last = key.rsplit(".", 1)[-1]
    return "largest" if key.startswith("workload.") or last in LARGER_IS_HARDER else "smallest"


def value_at(data: Mapping[str, Any], key: str) -> int | float:
    """The number at dotted ``key`` in resolved scenario data (a ``ScenarioError`` naming
    ``--find`` when there is none to start from)."""
    node: Any = data
    parts = key.split(".")
    i = 0
    while i < len(parts):
        if isinstance(node, list) and parts[i].isdigit() and int(parts[i]) < len(node):
            node, i = node[int(parts[i])], i + 1
            continue
        if isinstance(node, Mapping):  # the longest run of parts naming a key wins
            j = next((j for j in range(len(parts), i, -1) if ".".join(parts[i:j]) in node), None)
            if j is not None:
                node, i = node[".".join(parts[i:j])], j
                continue
        node = None
        break
    if isinstance(node, bool) or not isinstance(node, (int, float)) or node <= 0:
        raise ScenarioError.single(
            f"--find {key}",
            f"the scenario has no positive number there to start from (found {node!r}); "
            f"give one with --set {key}=VALUE",
        )
    return node


class _Search:
    """The bracket-and-bisect state of one plan: every probe by value."""

    def __init__(
        self, scenario, find, goal, terms, confidence, replications, start, resolution
    ) -> None:
        self.scenario, self.find, self.goal = scenario, find, goal
        self.terms, self.confidence, self.resolution = terms, confidence, resolution
        self.low, self.high = replications
        self.start = start
        self.integer = isinstance(start, int)
        self.probes: dict[float, Probe] = {}
        self.order: list[Probe] = []
        self.unlimited = False  # a rate search on a scenario without worker limits

    # --- the search ---------------------------------------------------------------------

    def run(self, runner: Runner, max_probes: int, progress) -> Plan:
        notes: list[str] = []
        status = "probe_limit"
        while len(self.order) < max_probes:
            good, bad = self.bracket()
            if good is None:
                value = self.toward_pass(self.extreme(pass_side=True))
                if value is None:
                    status = "none_pass"
                    break
            elif bad is None:
                value = self.toward_fail(self.extreme(pass_side=False), good)
                if value is None:
                    status = "all_pass"
                    break
            else:
                value = self.next_inside(good, bad)
                if value is None:
                    status = "found"
                    break
            probe = self.probe(runner, value)
            if progress:
                progress(probe)
        else:
            notes.append(f"stopped after {max_probes} probes: the interval is wider than asked")
        if self.unlimited:
            notes.append(
                "no service has a worker limit, so no queue forms and the latency does not "
                "depend on the rate: every rate meets the SLO if this one does"
            )
        good, bad = self.bracket()
        if self.non_monotonic(good, bad):
            notes.append(
                "some probe beyond the boundary passed: the figure is not monotonic in "
                f"{self.find} at this confidence; read the probes"
            )
        interval = (good, bad) if self.goal == "largest" else (bad, good)
        if status == "probe_limit" and good is not None and bad is not None:
            status = "found"
        return Plan(
            find=self.find, goal=self.goal, slo=list(self.terms), confidence=self.confidence,
            value=good, interval=interval, status=status, probes=self.order,
            headroom=self.headroom(good), limited_by=self.limited_by(bad),
            scenario=self.scenario.name, notes=notes,
        )  # fmt: skip

    def bracket(self) -> tuple[float | None, float | None]:
        """The failing value closest to the pass side, and the passing value closest to it."""
        sign = 1 if self.goal == "largest" else -1  # pass side: smaller values when largest
        fails = [v for v, p in self.probes.items() if p.outcome == "fail"]
        bad = min(fails, key=lambda v: sign * v) if fails else None
        passes = [v for v, p in self.probes.items()
                  if p.outcome == "pass" and (bad is None or sign * v < sign * bad)]  # fmt: skip
        good = max(passes, key=lambda v: sign * v) if passes else None
        return good, bad

    def non_monotonic(self, good, bad) -> bool:
        sign = 1 if self.goal == "largest" else -1
        return bad is not None and any(
            p.outcome == "pass" and sign * v > sign * bad for v, p in self.probes.items()
        )

    def extreme(self, pass_side: bool) -> float:
        """The probed value furthest toward the pass side (or the fail side)."""
        if not self.probes:
            return self.start
        toward_small = (self.goal == "largest") == pass_side
        return min(self.probes) if toward_small else max(self.probes)

    def toward_pass(self, value: float) -> float | None:
        """The next bracketing value toward the pass side, None past the search's end."""
        if not self.probes:
            return self.snap(value)
        step = value / 2 if self.goal == "largest" else value * 2
        return self.within(step)

    def toward_fail(self, value: float, good: float) -> float | None:
        if not self.probes:
            return self.snap(value)
        if self.goal == "smallest":
            return self.within(value / 2)
        step = value * 2
        if self.find == "workload.rps":  # capped where the busiest service would be full
            _, busy = busiest_mean(self.probes[good].rows)
            if math.isnan(busy):  # no worker limit anywhere: nothing depends on the rate
                self.unlimited = True
                return None
            if busy > 0:
                step = min(step, max(value * 1.05, good / busy))
        return self.within(step)

    def within(self, value: float) -> float | None:
        """``value`` snapped to the key's type, or None when it leaves the search's range
        (below one for an integer, or ``SEARCH_FACTOR`` from the start) or was probed."""
        v = self.snap(value)
        low = max(self.start / SEARCH_FACTOR, 1 if self.integer else 0)
        if v < low or v > self.start * SEARCH_FACTOR or v in self.probes:
            return None
        return v

    def next_inside(self, good: float, bad: float) -> float | None:
        """The middle of the widest gap still wider than ``resolution`` between the pass,
        the undecided probes and the fail; None when every gap is narrow enough."""
        lo, hi = sorted((good, bad))
        unsure = sorted(v for v, p in self.probes.items() if lo < v < hi)
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

    # --- one probe ---------------------------------------------------------------------

    def probe(self, runner: Runner, value: float) -> Probe:
        index = len(self.order)
        data = resolved_at(self.scenario, {self.find: value}, "--find")
        rows: list[Row] = []
        n = self.low
        while True:
            runs = [
                Run(
                    index,
                    r,
                    replication_seed(self.scenario.seed, r),
                    {self.find: value},
                    data,
                    self.scenario.source,
                )  # fmt: skip
                for r in range(len(rows), n)
            ]
            rows += runner.run(runs)
            verdict = judge(rows, self.terms, self.confidence)
            if verdict.outcome != "undecided" or n >= self.high:
                break
            n = min(2 * n, self.high)
        probe = Probe(value, verdict, tuple(rows))
        self.probes[value] = probe
        self.order.append(probe)
        return probe

    # --- what the answer means ----------------------------------------------------------

    def headroom(self, good: float | None) -> dict[str, Any] | None:
        """At the answer: the busiest service, its utilization, and the offered rate at which
        it would be fully busy (utilization grows in proportion to the rate)."""
        if good is None:
            return None
        rows = self.probes[good].rows
        name, busy = busiest_mean(rows)
        if name is None or not busy > 0:
            return None
        rate = sum(r["requests.arrived"] / r["duration_s"] for r in rows) / len(rows)
        return {"service": name, "utilization": busy, "offered_rps": rate,
                "capacity_rps": rate / busy, "headroom": 1 / busy - 1}  # fmt: skip

    def limited_by(self, bad: float | None) -> str | None:
        """Why the closest failing probe failed."""
        return None if bad is None else self.probes[bad].verdict.reason


def _json(x: float) -> float | None:
    return None if x is None or math.isnan(x) else x


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.6g}"
