"""Closed-form estimates for fan-out tail latency, queueing and retries/hedging.

Plain functions for capacity planners and for the simulator's theory tests. Units are in the
names: rates are requests per second (``_rps``), times are milliseconds (``_ms``); counts and
probabilities are dimensionless. Bad arguments raise :class:`ValueError` naming the argument and
its value. scipy is imported lazily inside the functions that need it.

Every formula is importable from here (``from simulator import analytic; analytic.mmc(...)``);
the modules group them by topic:

* ``order_stats``: the slowest (or ``k``-th) of ``n`` parallel calls, and which of them was the
  slowest in the tail;
* ``policies``: timeouts over a fan-out, retry amplification, hedging;
* ``queues``: Erlang B/C, M/M/1, M/M/c, M/M/c/K blocking;
* ``request``: a scenario's nominal load and contention-free latency distribution;
* ``slowness``: what stop-the-world pauses and slow periods do to an instance's calls.

The reports and the tests use these formulas; the engine never does.
"""

from __future__ import annotations

from .checks import Ppf
from .order_stats import (
    critical_branch_shares,
    exponential_max_mean_ms,
    fanout_slow_probability,
    kth_of_n_cdf,
    kth_of_n_mean,
    kth_of_n_quantile,
    max_of_n_quantile,
)
from .policies import (
    HedgedLatency,
    TimeoutRetry,
    exponential_timeout_retry,
    hedged_exponential,
    retry_attempts_per_call,
    retry_failure_probability,
    timeout_failure_probability,
)
from .queues import (
    QueueMetrics,
    erlang_b,
    erlang_c,
    mm1,
    mm1k_blocking_probability,
    mmc,
    mmc_max_rate,
    mmc_min_servers,
    mmck_blocking_probability,
)
from .request import LatencyPrediction, amplification, contention_free_latency
from .slowness import PauseEffect, pause_effect, slow_share

__all__ = [
    "HedgedLatency",
    "LatencyPrediction",
    "PauseEffect",
    "Ppf",
    "QueueMetrics",
    "TimeoutRetry",
    "amplification",
    "contention_free_latency",
    "critical_branch_shares",
    "erlang_b",
    "erlang_c",
    "exponential_max_mean_ms",
    "exponential_timeout_retry",
    "fanout_slow_probability",
    "hedged_exponential",
    "kth_of_n_cdf",
    "kth_of_n_mean",
    "kth_of_n_quantile",
    "max_of_n_quantile",
    "mm1",
    "mm1k_blocking_probability",
    "mmc",
    "mmc_max_rate",
    "mmc_min_servers",
    "mmck_blocking_probability",
    "pause_effect",
    "retry_attempts_per_call",
    "retry_failure_probability",
    "slow_share",
    "timeout_failure_probability",
]
