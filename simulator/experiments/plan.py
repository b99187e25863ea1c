"""``plan()``: goal-seek the largest rate, or the smallest capacity, that meets an SLO.

The searched key is ``workload.rps`` or any integer or real key ``--set`` accepts. Its *goal*
says which side passes: ``largest`` for load (keys under ``workload``, ``fanout``, ``repeat``:
more of them is harder), ``smallest`` for capacity (``workers``, ``instances``, ``queue_limit``,
``concurrency.*``: fewer is harder); any other key needs ``goal=`` (``--goal``).

How the values are chosen is ``experiments.search``; what each probe's runs say is
``experiments.slo``. The answer is the passing probe closest to the failing ones, with the
interval up to the closest failing probe: the true boundary lies between them. Replication ``r``
has the same seed at every probe (common random numbers), so neighbouring probes differ by their
value, not by seed noise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..results.files import summary_json, write_atomic
from ..results.outdir import locked_dir
from ..results.provenance import fansim_version
from ..scenario.errors import ScenarioError
from ..scenario.overrides import longest_key
from .runner import Runner
from .search import Probe, Search
from .slo import Term, busiest_mean, parse_slo
from .sweep import ROWS_DIR, check_replications, write_tables

if TYPE_CHECKING:
    import pandas as pd

    from ..scenario.model import Scenario

PLAN_JSON = "plan.json"
LOAD_KEYS = ("fanout", "repeat")  # besides workload.*: more of them is harder
CAPACITY_KEYS = ("workers", "instances", "queue_limit")  # and concurrency.*: fewer is harder


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
    confidence_per_look: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """``plan.json``: the answer, its interval, the SLO, the headroom and the probes."""
        return {
            "scenario": self.scenario,
            "find": self.find,
            "goal": self.goal,
            "slo": [t.as_dict() for t in self.slo],
            "confidence": self.confidence,
            "confidence_per_look": self.confidence_per_look,
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
        if None in self.interval:
            why = (
                "does not bind in the searched range"
                if self.status == "all_pass"
                else "not bracketed: no failing value found before the search stopped"
            )
            return f"every {self.find} tried meets {slo}, up to {_num(self.value)}: {why}"
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
    if low < 2:
        raise ScenarioError.single("--min-replications", f"must be at least 2, got {low}")
    if high < low:
        raise ScenarioError.single(
            "--max-replications", f"must be at least --min-replications ({low}), got {high}"
        )
    if not 0 < resolution <= 0.25:
        raise ScenarioError.single("--resolution", f"must be in (0, 0.25], got {resolution!r}")
    if isinstance(max_probes, bool) or not isinstance(max_probes, int) or max_probes < 2:
        raise ScenarioError.single("--max-probes", f"must be an integer >= 2, got {max_probes!r}")
    start = value_at(scenario.resolved_data(), find)
    goal = goal or guess_goal(find)
    if goal not in ("largest", "smallest"):
        raise ScenarioError.single("--goal", f"expected largest or smallest, got {goal!r}")
    search = Search(scenario, find, goal, terms, confidence, (low, high), start, resolution)
    with locked_dir(out_dir) as where:
        rows_dir = where / ROWS_DIR if where is not None else None
        with Runner(workers, cluster, rows_dir) as runner:
            status = search.run(runner, max_probes, progress)
        good, bad = search.bracket()
        answer = Plan(
            find=find, goal=goal, slo=terms, confidence=confidence, value=good,
            interval=(good, bad) if goal == "largest" else (bad, good),
            status=status,
            probes=search.order, headroom=search.headroom(),
            limited_by=None if bad is None else search.probes[bad].verdict.reason,
            scenario=scenario.name, notes=search.notes(status, max_probes),
            confidence_per_look=search.look_confidence,
        )  # fmt: skip
        if where is not None:
            write_atomic(where / PLAN_JSON, summary_json(answer.as_dict()))
            write_tables(answer.rows(), where)
    return answer


def guess_goal(key: str) -> str:
    """``largest`` for load keys, ``smallest`` for capacity keys; else a ``ScenarioError``
    asking for ``--goal`` (which side of, say, a latency is harder is the planner's call)."""
    parts = key.split(".")
    if parts[0] == "workload" or parts[-1] in LOAD_KEYS:
        return "largest"
    if parts[-1] in CAPACITY_KEYS or "concurrency" in parts:
        return "smallest"
    raise ScenarioError.single(
        f"--find {key}",
        "say which value is wanted: --goal largest (larger values are harder to serve) or "
        "--goal smallest (smaller values are harder)",
    )


def value_at(data: Mapping[str, Any], key: str) -> int | float:
    """The number at dotted ``key`` in resolved scenario data (a ``ScenarioError`` naming
    ``--find`` when there is none to start from)."""
    node: Any = data
    parts = key.split(".")
    i = 0
    while i < len(parts):
        if isinstance(node, list) and parts[i].isdigit() and int(parts[i]) < len(node):
            node, i = node[int(parts[i])], i + 1
        elif isinstance(node, Mapping) and (found := longest_key(node, parts, i))[0] is not None:
            node, i = node[found[0]], found[1]
        else:
            node = None
            break
    if isinstance(node, bool) or not isinstance(node, (int, float)) or node <= 0:
        raise ScenarioError.single(
            f"--find {key}",
            f"the scenario has no positive number there to start from (found {node!r}); "
            f"give one with --set {key}=VALUE",
        )
    return node


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.6g}"
