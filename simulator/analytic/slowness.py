"""Correlated slowness in closed form: what stop-the-world pauses and slow periods do to the
calls of one instance, for Poisson arrivals (which see time averages)."""

from __future__ import annotations

from dataclasses import dataclass

from .checks import positive, probability, real


@dataclass(frozen=True)
class PauseEffect:
    """What periodic pauses do to a call of fixed own latency."""

    delayed_share: float  # probability the call waits out a pause
    mean_added_ms: float  # mean added delay over all calls
    added_second_moment_ms2: float  # E[added²]: its variance, and a sum's (Campbell)


def pause_effect(every_s: float, length_ms: float, own_ms: float) -> PauseEffect:
    """A call of ``own_ms`` on an instance that stops for L = ``length_ms`` every T =
    ``every_s``: it is delayed when it starts in a pause (it waits for the rest, uniform on
    [0, L]) or a pause starts while it runs (it waits L), so with probability (L + d) / T, by
    (L²/2 + d·L) / T on average; E[added²] = (L³/3 + d·L²) / T. Exact while d + L ≤ T (a call
    meets at most one pause)."""
    period = positive("every_s", every_s) * 1000.0
    length = positive("length_ms", length_ms)
    d = real("own_ms", own_ms)
    if d < 0 or d + length > period:
        raise ValueError(
            f"own_ms + length_ms must be within [0, every_s] (one pause per call), got "
            f"{d:g} + {length:g} ms against {period:g} ms"
        )
    return PauseEffect(
        delayed_share=(length + d) / period,
        mean_added_ms=(length * length / 2.0 + d * length) / period,
        added_second_moment_ms2=(length**3 / 3.0 + d * length * length) / period,
    )


def slow_share(every_s: float, length_s: float, instances: float) -> float:
    """The share of calls started while their instance is slow: each instance is slow for
    ``length_s`` of every ``every_s`` with probability ``instances``, so
    ``instances x length_s / every_s`` of the time (calls spread evenly over instances)."""
    every = positive("every_s", every_s)
    length = positive("length_s", length_s)
    if length > every:
        raise ValueError(f"length_s must be at most every_s, got {length:g} > {every:g}")
    return probability("instances", instances) * length / every
