"""What was inferred from traces, written as a commented scenario file.

The header says what was inferred and from how much, and what to check by hand; each service
says how many calls its figures rest on, which latency distribution was chosen and how its
quantiles compare with the traces', and each step its fan-out distribution. Services whose
own times fit no lognormal get an empirical distribution: their samples go to a CSV file
beside the scenario (``files``), named in ``file:``.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from .fit import Fit, fit_latency, quantile_label
from .infer import EdgePolicy, ServiceGuess, StepGuess, median_or_none

THIN = 100  # fewer own-time samples than this: the p99 is not seen, only guessed


@dataclass
class Written:
    """A scenario's text, its empirical latency files (name -> samples, ms), and what the
    user should hear (one line each)."""

    text: str
    files: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    fits: dict[str, Fit] = field(default_factory=dict)


def service_name(name: str) -> str:
    """A service name fansim accepts (letters, digits, ``_.-``; starting with one of the
    first two)."""
    clean = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-_.")
    return clean or "service"


def scenario_name(name: str) -> str:
    """A scenario name fansim accepts (``[a-z0-9][a-z0-9-]*``)."""
    clean = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    return clean or "imported"


def write_scenario(
    guesses: dict[str | None, ServiceGuess],
    *,
    name: str,
    sources: str,
    rps: float,
    ratio: float,
    requests: int,
    skipped: Counter,
    file_prefix: str,
    version: str,
) -> Written:
    """The scenario text for ``guesses`` (``infer.infer``); ``sources`` names the files read."""
    request = guesses.get(None)
    if request is None or not request.steps:
        raise ValueError("no trace with a successful request to infer the call graph from")
    names = {s: service_name(s) for s in guesses if s is not None}
    out = Written("")
    dropped = _drop_cycles(guesses)
    calls = sum(g.visits + g.rejected for s, g in guesses.items() if s is not None)
    lines = [
        "# yaml-language-server: $schema=fansim.schema.json",
        f"# Imported by `fansim import` (fansim {version}) from {sources}:",
        f"# {requests:,} traces, {len(names)} services, {calls:,} calls.",
        "# Inferred from the traces (see the comments at each key):",
        "#   - the call graph: each step's services, fan-out (most common; its distribution",
        "#     is in a comment), repeat and require, from the successful visits;",
        "#   - own times: a server span's duration minus the time it waited on its calls,",
        "#     fitted per service (lognormal, or empirical when the fit is poor);",
        "#   - the arrival rate, from the root spans' start times"
        + (f" (scaled by 1/{ratio:.4g}, their sampling ratio);" if ratio < 1 else ";"),
        "#   - error rates from span status; retries, timeouts and hedges from repeated calls.",
        "# Check by hand:",
        "#   - capacity: traces do not show workers, queue limits or instances. Every service",
        "#     here is unlimited (no queueing), and own times include any queueing the traced",
        "#     system had. Add `workers` where the real service has a pool.",
        "#   - arrivals are Poisson at the mean rate; bursts and daily swings are not inferred.",
    ]
    out.notes = _to_check(guesses, dropped)
    lines += [f"#   - {note}" for note in out.notes]
    if skipped:
        reasons = ", ".join(f"{n} {why}" for why, n in skipped.most_common())
        lines.append(f"# Skipped {sum(skipped.values()):,} bad traces: {reasons}.")
    lines += [
        f"name: {name}",
        f"description: Imported from traces of {len(names)} services ({requests:,} requests).",
        "duration_s: 60",
        "warmup_s: 5",
        "seed: 1",
        "",
        "workload:",
        f"  rps: {_num(rps)}    # from {requests:,} root spans",
        "  arrivals: poisson",
        "",
        "request:",
        "  steps:",
    ]
    lines += _steps(request.steps, request, names, "    ")
    lines += ["", "services:"]
    for s in sorted(names):
        g = guesses[s]
        key = names[s]
        lines.append(f"  {key}:")
        lines += _latency(g, key, out, file_prefix)
        served = g.visits
        if g.own_errors:
            rate = g.own_errors / served
            lines.append(
                f"    error_rate: {_num(rate)}    # {g.own_errors:,} of {served:,} calls failed"
                " on their own"
            )
        if g.steps:
            lines.append("    steps:")
            lines += _steps(g.steps, g, names, "      ")
    out.text = "\n".join(lines) + "\n"
    return out


def _to_check(guesses: dict[str | None, ServiceGuess], dropped: list) -> list[str]:
    """What the traces leave uncertain, service by service (one line each)."""
    notes = []
    for s, g in sorted(guesses.items(), key=lambda kv: str(kv[0])):
        who = "the request" if s is None else s
        if s is not None and g.visits < THIN:
            notes.append(f"thin sample: {s} has {g.visits} calls; its p99 is extrapolated.")
        if g.ambiguous:
            notes.append(
                f"ambiguous overlaps: {g.ambiguous} calls of {who} started just before an"
                " answer (parallel, or sequential under clock jitter?)."
            )
        if g.ok_visits and g.plan_share < 0.95:
            notes.append(
                f"only {g.plan_share:.0%} of {who}'s successful visits had the plan written"
                " here; the rest called other services or made other steps."
            )
        if g.rejected:
            notes.append(
                f"{s}: {g.rejected} calls were refused (queue full); set workers and"
                " queue_limit to model it."
            )
    notes += [f"{a} -> {b} dropped: it would make a call cycle." for a, b in dropped]
    return notes


def _latency(g: ServiceGuess, key: str, out: Written, prefix: str) -> list[str]:
    samples = np.asarray(g.own_ms)
    fit = fit_latency(samples) if len(samples) else fit_latency(np.zeros(1))
    out.fits[key] = fit
    lines = []
    what = f"{g.visits:,} calls; own time {fit.kind}"
    if fit.kind == "empirical":
        file = f"{prefix}{key}-latency.csv"
        out.files[file] = samples
        fit.dist = {"dist": "empirical", "file": file}
        lines.append(f"    # {what}: {fit.why}; resampling the traces' own times.")
    elif fit.checks:
        compared = ", ".join(
            f"p{quantile_label(q)} {model:.3g} ms (traces {have:.3g})"
            for q, model, have in fit.checks
        )
        lines.append(f"    # {what}: {compared}")
    else:
        lines.append(f"    # {what}")
    queued = [q for q in g.queue_ms if q > 0]
    if queued:
        lines.append(
            f"    # (queueing the spans report is left out: mean {np.mean(g.queue_ms):.3g} ms a"
            " call; set workers to model it)"
        )
    body = ", ".join(f"{k}: {_num(v) if isinstance(v, float) else v}" for k, v in fit.dist.items())
    lines.append(f"    latency: {{{body}}}")
    return lines


def _steps(steps: list[StepGuess], g: ServiceGuess, names: dict, indent: str) -> list[str]:
    lines = []
    for step in steps:
        callees = [names[c] for c in step.callees]
        call = callees[0] if len(callees) == 1 else "[" + ", ".join(callees) + "]"
        lines.append(f"{indent}- call: {call}")
        total = sum(step.fanout_counts.values())
        seen = ", ".join(
            f"{n} ({count / total:.0%})" for n, count in sorted(step.fanout_counts.items())
        )
        if step.fanout != 1 or len(step.fanout_counts) > 1:
            lines.append(f"{indent}  fanout: {step.fanout}    # calls per service seen: {seen}")
        if step.repeat > 1:
            lines.append(f"{indent}  repeat: {step.repeat}")
        if step.require is not None:
            lines.append(f"{indent}  require: {step.require}    # answers it had when it went on")
        if step.optional:
            lines.append(f"{indent}  optional: true    # it usually went on with no answer")
        edge = _merged([g.edges.get(c, EdgePolicy()) for c in step.callees])
        lines += _policies(edge, indent + "  ")
    return lines


def _merged(edges: list[EdgePolicy]) -> EdgePolicy:
    out = EdgePolicy()
    for e in edges:
        out.logical_calls += e.logical_calls
        out.retries_max = max(out.retries_max, e.retries_max)
        out.hedges_max = max(out.hedges_max, e.hedges_max)
        out.first_retry_wait_ms += e.first_retry_wait_ms
        out.timed_out_after_ms += e.timed_out_after_ms
        out.hedge_after_ms += e.hedge_after_ms
    return out


def _policies(edge: EdgePolicy, indent: str) -> list[str]:
    lines = []
    timeout = median_or_none(edge.timed_out_after_ms)
    if timeout is not None:
        lines.append(
            f"{indent}timeout_ms: {_num(timeout)}    # median of {len(edge.timed_out_after_ms)}"
            " timed-out attempts"
        )
    if edge.retries_max:
        wait = median_or_none(edge.first_retry_wait_ms) or 0.0
        backoff = f", backoff_ms: {_num(wait)}" if wait > 0.001 else ""
        lines.append(
            f"{indent}retries: {{max: {edge.retries_max}{backoff}}}    # the most retries one"
            f" call had; median wait before a first retry {wait:.3g} ms"
        )
    hedge = median_or_none(edge.hedge_after_ms)
    if hedge is not None:
        lines.append(
            f"{indent}hedge: {{after_ms: {_num(hedge)}, max: {edge.hedges_max}}}    # median delay"
            f" of {len(edge.hedge_after_ms)} hedges"
        )
    return lines


def _drop_cycles(guesses: dict[str | None, ServiceGuess]) -> list[tuple[str, str]]:
    """Remove steps' calls that would close a call cycle (a service calling itself or an
    ancestor); return the edges removed."""
    dropped: list[tuple[str, str]] = []

    def visit(service: str, path: list[str]) -> None:
        g = guesses.get(service)
        if g is None:
            return
        kept = []
        for step in g.steps:
            callees = tuple(c for c in step.callees if c not in path + [service])
            dropped.extend((service, c) for c in step.callees if c not in callees)
            if callees:
                step.callees = callees
                kept.append(step)
        g.steps = kept
        for step in kept:
            for c in step.callees:
                visit(c, path + [service])

    for step in guesses[None].steps:
        for c in step.callees:
            visit(c, [])
    return sorted(set(dropped))


def _num(x: float) -> str:
    """A number as YAML: integers plain, others to four significant figures."""
    if float(x).is_integer():
        return str(int(x))
    text = f"{x:.4g}"
    return f"{x:.0f}" if "e+" in text else text
