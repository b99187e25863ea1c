"""The call graph laid out by Graphviz ``dot``, when it is installed (``apt install graphviz``;
``.ci/run`` installs it): the request's story left to right.

Each caller's steps run in order, so a later step's callees are ranked after every callee of the
steps before it (invisible ordering edges), while the calls of one step stack in one column.
Arrows carry the step number and what shapes latency and load (fan-out, repeats, answers
required, timeout, retries, hedge, ``max_parallel``, optional, breaker) and the calls per second
the topology implies; boxes carry a service's configured p50/p99, workers × instances, queue
or concurrency limit, error rate, and what the run measured (utilization, calls/s, rejected
share). Without ``dot`` the report keeps :mod:`.callgraph`'s own drawing.
"""

from __future__ import annotations

import html
import shutil
import subprocess
from typing import TYPE_CHECKING, Any

from ..results.format import dig, fmt_ms, fmt_num, fmt_pct, is_missing
from ..scenario.topology import nominal_amplification
from .figure import DPI

if TYPE_CHECKING:
    from ..scenario.model import Scenario, Step

ROOT = "request"
DOT_TIMEOUT_S = 20
FILL_ROOT, FILL_IDLE, FILL_OK, FILL_WARM, FILL_HOT = (
    "#dbe7f6", "#eef1f4", "#dcefdc", "#fbe7c2", "#f6c9c4")  # fmt: skip


def available() -> bool:
    """Whether Graphviz ``dot`` is on the PATH."""
    return shutil.which("dot") is not None


def render_png(source: str) -> bytes | None:
    """``dot -Tpng`` of ``source`` at the report's DPI; None when dot fails or is missing."""
    dot = shutil.which("dot")
    if dot is None:
        return None
    try:
        done = subprocess.run([dot, "-Tpng", f"-Gdpi={DPI}"], input=source.encode(),
                              capture_output=True, timeout=DOT_TIMEOUT_S, check=False)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 and done.stdout.startswith(b"\x89PNG") else None


def dot_source(scenario: Scenario, summary: dict[str, Any]) -> str:
    """The DOT text of the scenario's call graph with the run's figures."""
    offered = summary.get("offered_rps")
    per_request = nominal_amplification(scenario)["calls"]
    lines = [
        "digraph callgraph {",
        '  graph [rankdir=LR, nodesep=0.25, ranksep=0.55, fontname="DejaVu Sans", '
        "fontsize=11, labelloc=t];",
        '  node [shape=box, style="rounded,filled", fontname="DejaVu Sans", fontsize=9, '
        'color="#737373", margin="0.12,0.06"];',
        '  edge [fontname="DejaVu Sans", fontsize=8, color="#595959", arrowsize=0.7];',
    ]
    request_lines = ["<b>user request</b>"]
    if offered:
        request_lines.append(f"{fmt_num(offered)} rps offered")
    if scenario.request.deadline_ms is not None:
        request_lines.append(f"deadline {fmt_num(scenario.request.deadline_ms)} ms")
    lines.append(f'  "{ROOT}" [label=<{"<br/>".join(request_lines)}>, fillcolor="{FILL_ROOT}"];')
    reached = _reached(scenario)
    for name in reached:
        fill = _fill(dig(summary, f"services.{name}.utilization"))
        label = _service_label(scenario, summary, name)
        lines.append(f'  "{_q(name)}" [label=<{label}>, fillcolor="{fill}"];')
    for caller in [ROOT, *reached]:
        steps = scenario.request.steps if caller == ROOT else scenario.services[caller].steps
        caller_calls = 1.0 if caller == ROOT else per_request.get(caller, 0.0)
        previous: list[str] = []
        for i, step in enumerate(steps, 1):
            for callee in step.callees:
                per_run = (scenario.services[callee].instances if step.fanout == "shards"
                           else step.fanout)  # fmt: skip
                rate = offered * caller_calls * per_run * step.repeat if offered else None
                label = _step_label(scenario, step, callee, i if len(steps) > 1 else None)
                if rate:
                    label += f"<br/>{fmt_num(rate)} calls/s"
                lines.append(f'  "{_q(caller)}" -> "{_q(callee)}" [label=<{label}>];')
            for before in previous:  # this step starts after the last one: rank it later
                for callee in step.callees:
                    if before != callee:
                        lines.append(f'  "{_q(before)}" -> "{_q(callee)}" [style=invis];')
            previous = step.callees
    lines.append("}")
    return "\n".join(lines) + "\n"


def _reached(scenario: Scenario) -> list[str]:
    """Services the request reaches, in call order."""
    seen: list[str] = []

    def visit(steps: list[Step]) -> None:
        for step in steps:
            for callee in step.callees:
                if callee not in seen:
                    seen.append(callee)
                    visit(scenario.services[callee].steps)

    visit(scenario.request.steps)
    return seen


def _step_label(scenario: Scenario, step: Step, callee: str, number: int | None) -> str:
    parts = [f"step {number}"] if number is not None else []
    if step.fanout == "shards":
        parts.append(f"×{scenario.services[callee].instances} shards")
    elif step.fanout != 1:
        parts.append(f"×{step.fanout}")
    if step.repeat > 1:
        parts.append(f"{step.repeat}× in sequence")
    n, k = scenario.calls_in(step), scenario.required(step)
    if k < n:
        parts.append(f"need {k} of {n}")
    if step.max_parallel:
        parts.append(f"max {step.max_parallel} at once")
    if step.timeout_ms:
        parts.append(f"timeout {fmt_num(step.timeout_ms)} ms")
    if step.retries:
        parts.append(f"retries {step.retries.max}")
    if step.hedge:
        after = step.hedge.after_ms
        parts.append(f"hedge {fmt_num(after)} ms" if after is not None
                     else f"hedge at {step.hedge.after}")  # fmt: skip
    if step.circuit_breaker:
        parts.append("breaker")
    if step.optional:
        parts.append("optional")
    return _e(", ".join(parts) or "×1")


def _service_label(scenario: Scenario, summary: dict[str, Any], name: str) -> str:
    spec = scenario.services[name]
    rows = [f"<b>{_e(name)}</b>", _e(_latency(spec.latency))]
    if spec.workers is not None:
        pool = f"{spec.workers} workers" + (f" × {spec.instances}" if spec.instances > 1 else "")
    elif spec.concurrency is not None:
        pool = f"adaptive limit ({spec.concurrency.algorithm})"
    else:
        pool = "unlimited workers" + (f" × {spec.instances}" if spec.instances > 1 else "")
    if spec.queue_limit is not None:
        pool += f", queue ≤ {spec.queue_limit}"
    rows.append(_e(pool))
    if spec.error_rate:
        rows.append(_e(f"error rate {fmt_pct(spec.error_rate)}"))
    measured = []
    util = dig(summary, f"services.{name}.utilization")
    if not is_missing(util):
        measured.append(f"{fmt_pct(util)} busy")
    calls = dig(summary, f"services.{name}.calls_per_sec")
    if not is_missing(calls):
        measured.append(f"{fmt_num(calls)} calls/s")
    rejected = dig(summary, f"services.{name}.rejected")
    total = dig(summary, f"services.{name}.calls")
    if not is_missing(rejected) and rejected and total:
        measured.append(f"{fmt_pct(rejected / total)} rejected")
    if measured:
        rows.append(f"<i>{_e(', '.join(measured))}</i>")
    return "<br/>".join(rows)


def _latency(latency: Any) -> str:
    """'lognormal p50 2 ms, p99 10 ms' (the configured law's exact quantiles), or its mean
    where the quantiles have no closed form here (a mixture, an empirical file)."""
    try:
        p50, p99 = latency.exact_tail_ms(0.5), latency.exact_tail_ms(0.01)
    except Exception:  # no exact quantile: the mean, or the name alone
        try:
            return f"{latency.dist}, mean {fmt_ms(latency.mean())} ms"
        except Exception:
            return str(latency.dist)
    if is_missing(p50) or is_missing(p99):
        return str(latency.dist)
    return f"{latency.dist} p50 {fmt_ms(p50)} ms, p99 {fmt_ms(p99)} ms"


def _fill(util: Any) -> str:
    if is_missing(util):
        return FILL_IDLE
    return FILL_OK if util < 0.7 else FILL_WARM if util < 0.9 else FILL_HOT


def _e(text: str) -> str:
    """Text for a Graphviz HTML-like label."""
    return html.escape(str(text), quote=False)


def _q(name: str) -> str:
    """A node id inside double quotes."""
    return name.replace("\\", "\\\\").replace('"', '\\"')
