"""The scenario data model: frozen, typed, validated once at the edge (see :mod:`.loader`
and :mod:`.validation`).

The engine reads only these models and trusts them: every number has its unit in its name, every
cross-reference (a called service, ``require`` against the fan-out) has been checked.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .arrivals import expected_arrivals
from .distributions import (
    MAX_LATENCY_MS,
    TAIL_PROBABILITY,
    Latency,
    read_number_file,
    resolve_path,
)
from .overrides import Path_, apply_overrides
from .validation import Positions, validate

PosFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
PosInt = Annotated[int, Field(ge=1)]
ServiceName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]

ARRIVALS = ("poisson", "constant", "bursty", "schedule", "trace")
BALANCERS = ("round_robin", "random", "least_outstanding", "p2c")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class Bursty(_Model):
    """Every ``every_s`` seconds the rate is ``burst_rps`` for ``length_s`` seconds."""

    burst_rps: PosFloat
    every_s: PosFloat
    length_s: PosFloat

    @model_validator(mode="after")
    def _fits(self) -> Bursty:
        if self.every_s < 0.001:
            raise ValueError(f"every_s must be at least 0.001 (1 ms), got {self.every_s:g}")
        if self.length_s > self.every_s:
            raise ValueError(
                f"length_s ({self.length_s:g}) must not exceed every_s ({self.every_s:g})"
            )
        return self


class RateChange(_Model):
    """From ``at_s`` on, arrivals come at ``rps`` (piecewise-constant rate)."""

    at_s: NonNegFloat
    rps: PosFloat


class Workload(_Model):
    rps: PosFloat | None = None
    arrivals: Literal["poisson", "constant", "bursty", "schedule", "trace"] = "poisson"
    bursty: Bursty | None = None
    schedule: Annotated[list[RateChange], Field(min_length=1)] | None = None
    trace: str | None = None
    _trace_s: np.ndarray | None = PrivateAttr(default=None)

    @field_validator("schedule")
    @classmethod
    def _increasing(cls, schedule: list[RateChange] | None) -> list[RateChange] | None:
        if schedule:
            times = [c.at_s for c in schedule]
            if any(b <= a for a, b in zip(times, times[1:], strict=False)):
                raise ValueError(f"at_s values must increase, got {times}")
        return schedule

    @field_validator("trace")
    @classmethod
    def _trace_exists(cls, name: str | None, info: ValidationInfo) -> str | None:
        if name is not None:
            read_number_file(resolve_path(name, info), "arrival time")
        return name

    @model_validator(mode="after")
    def _matches_arrivals(self, info: ValidationInfo) -> Workload:
        kind = self.arrivals
        if kind in ("poisson", "constant", "bursty") and self.rps is None:
            raise ValueError(f"rps is required with arrivals: {kind}")
        for block in ("bursty", "schedule", "trace"):
            if block == kind and getattr(self, block) is None:
                raise ValueError(f"arrivals: {kind} needs a '{kind}' key")
            if block != kind and getattr(self, block) is not None:
                raise ValueError(f"'{block}' is set but arrivals is {kind}")
        if self.trace is not None:
            self._trace_s = np.sort(
                read_number_file(resolve_path(self.trace, info), "arrival time")
            )
        return self

    @property
    def trace_s(self) -> np.ndarray:
        """Arrival times (s) read from the trace file, sorted."""
        assert self._trace_s is not None
        return self._trace_s

    def mean_rps(self, duration_s: float, warmup_s: float) -> float:
        """The offered rate (requests per simulated second) over the measured window."""
        return expected_arrivals(self, warmup_s, warmup_s + duration_s) / duration_s


def _check_fanout(v: Any) -> Any:
    if v == "shards" or (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
        return v
    raise ValueError(f"fanout must be an integer >= 1 or 'shards', got {v!r}")


def _check_require(v: Any) -> Any:
    if v in ("all", "any") or (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
        return v
    raise ValueError(f"require must be 'all', 'any' or an integer >= 1, got {v!r}")


class Retries(_Model):
    """Retries after the first attempt, on error, timeout and rejection.

    Backoff before retry ``n`` (1-based) is ``backoff_ms * multiplier ** (n - 1)``; ``jitter``
    full draws uniformly in [0, backoff], equal in [backoff / 2, backoff]. With
    ``budget_ratio`` a retry is sent only while the step's retries over the last 10 simulated
    seconds stay under ``budget_ratio`` x its first tries over those seconds plus
    ``min_per_s`` x 10 (Finagle's RetryBudget)."""

    max: Annotated[int, Field(ge=0, le=1000)]
    backoff_ms: NonNegFloat = 0.0
    multiplier: Annotated[float, Field(ge=1)] = 2.0
    jitter: Literal["none", "full", "equal"] = "none"
    budget_ratio: PosFloat | None = None
    min_per_s: NonNegFloat = 10.0

    @model_validator(mode="after")
    def _bounded_backoff(self) -> Retries:
        if self.max and self.backoff_ms > 0:
            log_last = math.log(self.backoff_ms) + (self.max - 1) * math.log(self.multiplier)
            if log_last > math.log(MAX_LATENCY_MS):
                raise ValueError(
                    f"retry {self.max} would wait {self.backoff_ms:g} x {self.multiplier:g}^"
                    f"{self.max - 1} ms, beyond the {MAX_LATENCY_MS:,.0f} ms (one day) a run "
                    "allows: lower max, backoff_ms or multiplier"
                )
        return self


class Hedge(_Model):
    """Send up to ``max`` extra copies of a call still unanswered ``after_ms`` (or at the
    observed percentile ``after: pNN`` of this step's answers); the first answer wins."""

    after_ms: NonNegFloat | None = None
    after: Annotated[str, Field(pattern=r"^p\d+(\.\d+)?$")] | None = None
    max: Annotated[int, Field(ge=1, le=100)] = 1

    @model_validator(mode="after")
    def _one_delay(self) -> Hedge:
        if (self.after_ms is None) == (self.after is None):
            raise ValueError("hedge takes after_ms (a delay) or after (an observed pNN), not both")
        if self.after is not None and not 0 < self.percentile < 100:
            raise ValueError(f"after must be a percentile between p0 and p100, got {self.after}")
        return self

    @property
    def percentile(self) -> float:
        """``after: p95`` as 95.0."""
        assert self.after is not None
        return float(self.after[1:])


class CircuitBreaker(_Model):
    """Per step and callee: open when more than ``failure_ratio`` of the last ``window`` calls
    failed (errors, timeouts, rejections); reject at once for ``open_ms``; then half-open lets
    one probe through, whose success closes it (and failure opens it again)."""

    failure_ratio: Annotated[float, Field(gt=0, le=1)]
    window: PosInt
    open_ms: NonNegFloat


class Step(_Model):
    """Send ``call`` (one service or a list of distinct ones) ``fanout`` times in parallel, wait
    for ``require`` answers; the whole step runs ``repeat`` times in sequence. The calling-side
    policies (timeout, retries, hedge, cancel_losers) apply to each call of the step."""

    call: str | Annotated[list[str], Field(min_length=1)]
    fanout: Any = 1
    repeat: PosInt = 1
    require: Any = "all"
    timeout_ms: PosFloat | None = None
    retries: Retries | None = None
    hedge: Hedge | None = None
    cancel_losers: bool = False
    circuit_breaker: CircuitBreaker | None = None
    optional: bool = False
    max_parallel: PosInt | None = None

    @property
    def has_policies(self) -> bool:
        """Whether a calling-side policy needs the event path (timers, cancellation)."""
        return bool(
            self.timeout_ms
            or self.retries
            or self.hedge
            or self.cancel_losers
            or self.circuit_breaker
            or self.optional
            or self.max_parallel
        )

    _v_fanout = field_validator("fanout")(_check_fanout)
    _v_require = field_validator("require")(_check_require)

    @field_validator("call")
    @classmethod
    def _distinct(cls, call: str | list[str]) -> str | list[str]:
        if isinstance(call, list):
            dup = sorted({c for c in call if call.count(c) > 1})
            if dup:
                raise ValueError(f"a call list names distinct services; repeated: {', '.join(dup)}")
        return call

    @property
    def callees(self) -> list[str]:
        return [self.call] if isinstance(self.call, str) else list(self.call)


class Request(_Model):
    steps: Annotated[list[Step], Field(min_length=1)]
    deadline_ms: PosFloat | None = None  # the user gets what has arrived by then


class Concurrency(_Model):
    """An adaptive concurrency limit per instance, in place of a fixed ``workers``
    (see :mod:`simulator.engine.limits`)."""

    algorithm: Literal["aimd", "gradient"]
    initial: PosInt = 20
    min: PosInt = 1
    max: PosInt = 1000
    backoff_ratio: Annotated[float, Field(gt=0, lt=1)] = 0.9  # aimd
    latency_target_ms: PosFloat = 1000.0  # aimd: a slower call counts as dropped
    smoothing: Annotated[float, Field(gt=0, le=1)] = 0.2  # gradient
    queue_size: NonNegFloat = 4.0  # gradient: head-room added to the limit
    long_window: PosInt = 600  # gradient: calls in the long-term RTT average

    @model_validator(mode="after")
    def _ordered(self) -> Concurrency:
        if not self.min <= self.initial <= self.max:
            raise ValueError(
                f"need min <= initial <= max, got {self.min}, {self.initial}, {self.max}"
            )
        return self


class SlowPeriods(_Model):
    """Correlated slowness: every ``every_s`` each instance, on its own random phase, is slow
    for ``length_s`` with probability ``instances`` (the share of instances degraded at a
    time); a call a slow instance starts serving takes ``factor`` times its own latency (a GC
    storm, a noisy neighbour, a slow disk)."""

    every_s: PosFloat
    length_s: PosFloat
    factor: Annotated[float, Field(ge=1, le=1e6)]
    instances: Annotated[float, Field(gt=0, le=1)] = 1.0

    @model_validator(mode="after")
    def _fits(self) -> SlowPeriods:
        if self.length_s > self.every_s:
            raise ValueError("length_s must be at most every_s (one slow period at a time)")
        return self


class Pauses(_Model):
    """Stop-the-world pauses: every ``every_s`` each instance, on its own random phase, stops
    for ``length_ms``; a call in service waits the pause out, one arriving during it starts
    when it ends."""

    every_s: PosFloat
    length_ms: PosFloat

    @model_validator(mode="after")
    def _fits(self) -> Pauses:
        if self.length_ms >= self.every_s * 1000.0:
            raise ValueError("length_ms must be shorter than every_s (the instance must run)")
        return self


class Cost(_Model):
    """A service's prices, in the scenario's ``currency``: provisioned capacity (each instance,
    per hour) and usage (per million calls it serves: a managed database, a paid API)."""

    per_instance_hour: NonNegFloat | None = None
    per_million_calls: NonNegFloat | None = None

    @model_validator(mode="after")
    def _priced(self) -> Cost:
        if self.per_instance_hour is None and self.per_million_calls is None:
            raise ValueError("cost needs per_instance_hour, per_million_calls or both")
        return self


class Service(_Model):
    latency: Latency
    workers: PosInt | None = None
    queue_limit: Annotated[int, Field(ge=0)] | None = None
    instances: PosInt = 1
    balancer: Literal["round_robin", "random", "least_outstanding", "p2c"] = "round_robin"
    error_rate: Annotated[float, Field(ge=0, le=1)] = 0.0
    steps: list[Step] = Field(default_factory=list)
    concurrency: Concurrency | None = None  # an adaptive limit instead of fixed workers
    slow_periods: SlowPeriods | None = None  # correlated slowness per instance
    pauses: Pauses | None = None  # stop-the-world pauses per instance
    cost: Cost | None = None  # prices (results.cost)

    @field_validator("latency")
    @classmethod
    def _bounded_tail(cls, latency: Any) -> Any:
        # parameters at the edge of floating point can overflow or divide by zero: refused
        quiet = (
            np.errstate(over="raise", divide="raise", invalid="raise"),
            warnings.catch_warnings(),
        )
        with quiet[0], quiet[1]:
            warnings.simplefilter("ignore")
            try:
                tail = latency.tail_ms(TAIL_PROBABILITY)
            except (ArithmeticError, ValueError):  # FloatingPointError is an ArithmeticError
                tail = math.inf
            if tail > MAX_LATENCY_MS:  # +inf too; NaN (unknown) passes
                shown = (
                    f"about {tail:.3g} ms" if math.isfinite(tail) else "longer than a float holds"
                )
                raise ValueError(
                    f"one call in a billion would take {shown}, beyond the "
                    f"{MAX_LATENCY_MS:,.0f} ms (one day) a run allows: cap or lighten the tail "
                    "(pareto cap_ms, a smaller sigma or cv, a mixture)"
                )
            try:
                draws = latency.sample(np.random.default_rng(0), 1000)
                mean = latency.mean()
            except (ArithmeticError, ValueError) as e:
                why = e.args[-1] if isinstance(e, OverflowError) and e.args else e
                raise ValueError(f"these parameters cannot be sampled: {why}") from None
        if not (np.all(np.isfinite(draws)) and np.all(draws >= 0)) or math.isnan(mean):
            raise ValueError("these parameters give latencies that are not finite numbers >= 0")
        return latency

    @model_validator(mode="after")
    def _queue_needs_workers(self) -> Service:
        if self.queue_limit is not None and self.workers is None and self.concurrency is None:
            raise ValueError(
                "queue_limit needs workers or concurrency (with no limit nothing ever waits)"
            )
        return self


class Scenario(_Model):
    """A validated scenario. Build it with :func:`simulator.load_scenario`."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]
    description: str | None = None
    duration_s: PosFloat
    warmup_s: NonNegFloat = 0.0
    seed: Annotated[int, Field(ge=0)] = 1
    replications: Annotated[int, Field(ge=1, le=10_000)] = 1
    # exact: every latency kept (4 bytes a call); streaming: HdrHistograms, bounded memory
    percentiles: Literal["exact", "streaming"] = "exact"
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "USD"  # of every service's cost
    workload: Workload
    request: Request
    services: Annotated[dict[ServiceName, Service], Field(min_length=1)]
    _source: str = PrivateAttr(default="<scenario>")
    _raw: dict = PrivateAttr(default_factory=dict)
    _overrides: dict = PrivateAttr(default_factory=dict)

    @property
    def source(self) -> str:
        """The file this scenario was read from."""
        return self._source

    def calls_in(self, step: Step) -> int:
        """How many calls one run of ``step`` sends (fan-out included; ``repeat`` not)."""
        if step.fanout == "shards":
            return sum(self.services[c].instances for c in step.callees)
        return len(step.callees) * step.fanout

    def required(self, step: Step) -> int:
        """How many answers the step's fan-in waits for."""
        n = self.calls_in(step)
        return {"all": n, "any": 1}.get(step.require, step.require)  # type: ignore[arg-type]

    @property
    def overrides(self) -> dict[str, Any]:
        """The dotted-path overrides applied to the file, in order (``--set``, ``--seed``, ...)."""
        return dict(self._overrides)

    @classmethod
    def from_data(
        cls,
        data: dict[str, Any],
        file: str = "<scenario>",
        positions: Positions | None = None,
        overridden: dict[Path_, str] | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> Scenario:
        """Validate a scenario given as plain data (as a YAML file would load); raise
        ``ScenarioError`` with one line per problem, placed by ``positions`` when given.
        ``overrides`` records the dotted-path overrides already applied to ``data``."""
        scenario = validate(cls, data, file, positions, overridden)
        scenario._source = file
        scenario._raw = data
        scenario._overrides = dict(overrides or {})
        return scenario

    def with_overrides(self, overrides: dict[str, Any]) -> Scenario:
        """A new scenario with dotted-path overrides (``{"workload.rps": 8000}``), re-validated."""
        data, paths = apply_overrides(self._raw, overrides, self._source)
        merged = self._overrides | overrides
        return type(self).from_data(data, self._source, overridden=paths, overrides=merged)

    def resolved_data(self) -> dict[str, Any]:
        """The scenario as plain data with every default filled in and the overrides applied:
        valid input again, with data file paths made absolute so it runs from anywhere."""
        data = self.model_dump(mode="json", exclude_none=True)
        base = Path(self._source).parent if not self._source.startswith("<") else Path(".")

        def absolute(name: str) -> str:
            return str((base / name).resolve())

        def visit(node: Any) -> None:
            if isinstance(node, dict):
                if node.get("dist") == "empirical" and isinstance(node.get("file"), str):
                    node["file"] = absolute(node["file"])
                for value in node.values():
                    visit(value)
            elif isinstance(node, list):
                for value in node:
                    visit(value)

        if isinstance(data["workload"].get("trace"), str):
            data["workload"]["trace"] = absolute(data["workload"]["trace"])
        visit(data["services"])
        return data

    def with_seed(self, seed: int) -> Scenario:
        return self.with_overrides({"seed": seed})
