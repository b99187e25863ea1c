"""The scenario's call graph, drawn for the report: who calls whom, how many times, at what rate.

With Graphviz installed ``dot`` lays the chart out (``dot_source``, ``render_png``); without it,
``chart`` draws it itself.

``call_graph`` turns a scenario and its run's summary into plain nodes and edges; ``chart``
draws them left to right (the user request on the left, each service in the column of its
longest call path from the request), one box per service coloured by how busy it was, one
arrow per caller → callee with the step's fan-out, repeat, ``require`` and policies and the
calls per second the topology implies at the offered load (``nominal``). A box gives the
calls per second the run measured, so a box measuring more than its arrows imply shows
retries and hedges at a glance.
"""

from __future__ import annotations

import html
import shutil
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..results.format import dig, fmt_ms, fmt_num, fmt_pct, is_missing
from ..scenario.topology import nominal_amplification
from .figure import DPI, Chart, png_bytes

if TYPE_CHECKING:
    from ..scenario.model import Scenario, Step
    from .data import ReportData

__all__ = ["Edge", "Node", "call_graph", "chart"]

ROOT = "request"
DOT_TIMEOUT_S = 20
# Box fill by utilization: below 70% calm, below 90% warm, above that saturated.
_FILL_IDLE, _FILL_OK, _FILL_WARM, _FILL_HOT = "#eef1f4", "#dcefdc", "#fbe7c2", "#f6c9c4"
_FILL_ROOT = "#dbe7f6"
FIGURE_WIDTH_IN = 8.0
DOT_CAPTION = (
    "The request's story, left to right: each caller's steps in order (a later step's calls "
    "to the right of the earlier ones), the calls of one step stacked. Each arrow is a step: "
    "its number, what one call of the caller sends (fan-out, sequential repeats, answers "
    "required, max in parallel, timeout, retries, hedge, optional) and the calls per second "
    "that implies at the offered load. Each box is a service: its configured p50 and p99, "
    "workers × instances and queue or concurrency limit, error rate, and in italics what "
    "the run measured (busy share, calls per second, rejected share). Green below 70% busy, "
    "amber below 90%, red above; grey: unlimited workers."
)


@dataclass(frozen=True)
class Node:
    name: str
    depth: int  # longest call path from the request (the request is 0)
    lines: tuple[str, ...]  # the box's text, name first
    utilization: float | None


@dataclass(frozen=True)
class Edge:
    caller: str
    callee: str
    label: str  # what one run of the caller sends: "×10", "×2 in sequence", policies
    nominal_per_s: float | None  # calls/s the topology implies at the offered load


def _step_label(scenario: Scenario, step: Step, callee: str, number: int | None = None) -> str:
    """What one call of the caller sends in ``step``: its number among the caller's steps (when
    there are several), fan-out, repeats, answers required and policies."""
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
        parts.append(f"timeout {step.timeout_ms:g} ms")
    if step.retries:
        parts.append(f"retries {step.retries.max}")
    if step.hedge:
        after = step.hedge.after_ms
        parts.append(f"hedge {after:g} ms" if after is not None else f"hedge {step.hedge.after}")
    if step.circuit_breaker:
        parts.append("breaker")
    if step.optional:
        parts.append("optional")
    return ", ".join(parts) or "×1"


def _slowness_text(spec: Any) -> str:
    """The service's correlated slowness in a few words ("" when it has none)."""
    parts = []
    if spec.slow_periods is not None:
        sp = spec.slow_periods
        parts.append(f"slow ×{fmt_num(sp.factor)} for {fmt_num(sp.length_s)} s of "
                     f"{fmt_num(sp.every_s)} s (p {fmt_num(sp.instances)})")  # fmt: skip
    if spec.pauses is not None:
        pa = spec.pauses
        parts.append(f"pauses {fmt_num(pa.length_ms)} ms every {fmt_num(pa.every_s)} s")
    return ", ".join(parts)


def _describe_latency(latency: Any) -> str:
    """'lognormal p50 2.00 ms, p99 10.0 ms' (the configured law's exact quantiles), or its mean
    where the quantiles have no closed form here (a mixture, an empirical file)."""
    try:
        p50, p99 = latency.exact_tail_ms(0.5), latency.exact_tail_ms(0.01)
        if is_missing(p50) or is_missing(p99):
            raise ValueError("no quantiles")
        return f"{latency.dist} p50 {fmt_ms(p50)} ms, p99 {fmt_ms(p99)} ms"
    except Exception:  # no exact quantile: the mean, or the name alone
        try:
            return f"{latency.dist}, mean {fmt_ms(latency.mean())} ms"
        except Exception:
            return str(latency.dist)


def _depths(scenario: Scenario) -> dict[str, int]:
    """Longest call path from the request to each service reached (the graph is acyclic)."""
    depth: dict[str, int] = {ROOT: 0}

    def visit(name: str, steps: list[Step], d: int) -> None:
        for step in steps:
            for callee in step.callees:
                if depth.get(callee, -1) < d + 1:
                    depth[callee] = d + 1
                    visit(callee, scenario.services[callee].steps, d + 1)

    visit(ROOT, scenario.request.steps, 0)
    return depth


def call_graph(scenario: Scenario, summary: dict) -> tuple[list[Node], list[Edge]]:
    """Nodes (the request, then services in call order) and edges of the request's call tree."""
    offered = summary.get("offered_rps")
    per_request = nominal_amplification(scenario)["calls"]
    depth = _depths(scenario)

    labels: dict[tuple[str, str], list[str]] = {}
    calls_per_request: dict[tuple[str, str], float] = {}
    for caller in depth:
        steps = scenario.request.steps if caller == ROOT else scenario.services[caller].steps
        caller_calls = 1.0 if caller == ROOT else per_request.get(caller, 0.0)
        for step in steps:
            for callee in step.callees:
                per_run = (
                    scenario.services[callee].instances if step.fanout == "shards" else step.fanout
                )
                key = (caller, callee)
                labels.setdefault(key, []).append(_step_label(scenario, step, callee))
                calls = caller_calls * per_run * step.repeat
                calls_per_request[key] = calls_per_request.get(key, 0.0) + calls

    nodes = [
        Node(
            ROOT,
            0,
            ("user request", f"{fmt_num(offered)} rps offered" if offered else ""),
            None,
        )
    ]
    for name in depth:
        if name == ROOT:
            continue
        spec = scenario.services[name]
        util = dig(summary, f"services.{name}.utilization")
        if spec.workers is not None:
            pool = f"{spec.workers} workers" + (
                f" × {spec.instances} instances" if spec.instances > 1 else ""
            )
        elif spec.concurrency is not None:
            pool = f"adaptive limit ({spec.concurrency.algorithm})"
        else:
            pool = "unlimited workers"
        if not is_missing(util):
            pool += f" · {100 * util:.0f}% busy"
        slowness = _slowness_text(spec)
        if slowness:
            pool += f" · {slowness}"
        calls = dig(summary, f"services.{name}.calls_per_sec")
        nominal = None if not offered else offered * per_request.get(name, 0.0)
        rate = f"{fmt_num(calls)} calls/s" if not is_missing(calls) else ""
        if rate and nominal and abs(calls - nominal) > 0.02 * nominal:
            rate += f" (nominal {fmt_num(nominal)})"
        lines = (name, _describe_latency(spec.latency), pool, rate)
        nodes.append(Node(name, depth[name], lines, util))
    return nodes, [
        Edge(*key, "; ".join(labels[key]), offered * calls if offered else None)
        for key, calls in calls_per_request.items()
    ]


def fill(utilization: Any) -> str:
    """A service box's colour by how busy it was: calm, warm, hot; grey when unlimited."""
    if is_missing(utilization):
        return _FILL_IDLE
    u = utilization
    return _FILL_OK if u < 0.7 else _FILL_WARM if u < 0.9 else _FILL_HOT


def _fill(node: Node) -> str:
    return _FILL_ROOT if node.name == ROOT else fill(node.utilization)


def _edge_text(edge: Edge) -> str:
    """The arrow's label: one line per part of the step, then the implied calls/s."""
    lines = edge.label.replace("; ", ", ").split(", ")
    if edge.nominal_per_s:
        lines.append(f"{fmt_num(edge.nominal_per_s)} calls/s")
    return "\n".join(lines)


def chart(data: ReportData) -> Chart | None:
    """The call graph as a chart; None when the report has no scenario to draw.

    Columns are spaced so the widest arrow label fits between the widest boxes: the text is
    drawn first, measured, and the figure widened to fit (at least ``FIGURE_WIDTH_IN``)."""
    if data.scenario is None:
        return None
    if dot_available():  # Graphviz lays the story out better than we can by hand
        png = render_png(dot_source(data.scenario, dict(data.summary)))
        if png is not None:
            return Chart("call_graph.png", "Call graph", DOT_CAPTION, png)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    nodes, edges = call_graph(data.scenario, dict(data.summary))
    columns: dict[int, list[Node]] = {}
    for node in nodes:
        columns.setdefault(node.depth, []).append(node)
    n_cols, n_rows = len(columns), max(len(c) for c in columns.values())
    height_in = max(1.7, 1.05 * n_rows + 0.45)
    fig = Figure(figsize=(FIGURE_WIDTH_IN, height_in), dpi=DPI)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0 - 0.35 / height_in))
    ax.set_axis_off()
    ax.set_ylim(-0.55, n_rows - 0.45)

    boxes, labels = {}, []
    for d, column in columns.items():
        for j, node in enumerate(column):
            y = (n_rows - 1) / 2 + ((len(column) - 1) / 2 - j)
            text = "\n".join(line for line in node.lines if line)
            boxes[node.name] = ax.text(
                d,
                y,
                text,
                ha="center",
                va="center",
                fontsize=8,
                linespacing=1.35,
                bbox={"boxstyle": "round,pad=0.5", "facecolor": _fill(node), "edgecolor": "0.45"},
                zorder=3,
            )
    for edge in edges:
        labels.append(
            ax.text(
                0,
                0,
                _edge_text(edge),
                ha="center",
                va="center",
                fontsize=7.5,
                linespacing=1.2,
                color="0.15",
                bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none"},
                zorder=4,
            )
        )

    # Measure (in pixels), then widen the figure so a column pitch holds a box and a label.
    canvas = FigureCanvasAgg(fig)
    renderer = canvas.get_renderer()
    box_px = max(b.get_window_extent(renderer).width for b in boxes.values())
    label_px = max((t.get_window_extent(renderer).width for t in labels), default=0.0)
    pitch_px = box_px + label_px + 40.0
    width_in = max(FIGURE_WIDTH_IN, (n_cols * pitch_px) / DPI)
    fig.set_size_inches(width_in, height_in)
    margin = (width_in * DPI / n_cols - pitch_px) / pitch_px / 2  # spare room, in columns
    ax.set_xlim(-0.5 + min(label_px / pitch_px / 2, 0.45) - margin, n_cols - 0.5)
    renderer = canvas.get_renderer()

    def edge_x(name: str, side: int) -> float:
        bb = boxes[name].get_window_extent(renderer)
        x_px = bb.x1 if side > 0 else bb.x0
        return float(ax.transData.inverted().transform((x_px, bb.y0))[0])

    for edge, label in zip(edges, labels, strict=True):
        ax.annotate(
            "",
            xy=(0.0, 0.5),
            xycoords=boxes[edge.callee],
            xytext=(1.0, 0.5),
            textcoords=boxes[edge.caller],
            arrowprops={
                "arrowstyle": "-|>",
                "color": "0.35",
                "lw": 1.2,
                "shrinkA": 2,
                "shrinkB": 2,
            },  # fmt: skip
            zorder=2,
        )
        x0, x1 = edge_x(edge.caller, +1), edge_x(edge.callee, -1)
        y0, y1 = boxes[edge.caller].get_position()[1], boxes[edge.callee].get_position()[1]
        label.set_position(((x0 + x1) / 2, (y0 + y1) / 2))
    fig.suptitle(f"Call graph — {data.scenario_name}", fontsize=11, y=0.995, va="top")
    caption = (
        "Each arrow is a step: what one call of the caller sends (fan-out, sequential "
        "repeats, answers required, policies) and the calls per second that implies at the "
        "offered load. Each box is a service: its latency, its workers and how busy they were "
        "(green below 70%, amber below 90%, red above; grey: unlimited), and the calls per "
        "second the run measured, retries and hedges included."
    )
    return Chart("call_graph.png", "Call graph", caption, png_bytes(fig))


# --------------------------------------------------------------------------- Graphviz layout
# With Graphviz ``dot`` installed (``apt install graphviz``; ``.ci/run`` installs it) the chart
# is laid out by dot: each caller's steps in order (a later step's callees ranked after every
# callee of the steps before it, by invisible ordering edges), the calls of one step stacked.


def dot_available() -> bool:
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
    lines.append(f'  "{ROOT}" [label=<{"<br/>".join(request_lines)}>, fillcolor="{_FILL_ROOT}"];')
    reached = [name for name in _depths(scenario) if name != ROOT]
    for name in reached:
        fill_color = fill(dig(summary, f"services.{name}.utilization"))
        label = _service_label(scenario, summary, name)
        lines.append(f'  "{_q(name)}" [label=<{label}>, fillcolor="{fill_color}"];')
    for caller in [ROOT, *reached]:
        steps = scenario.request.steps if caller == ROOT else scenario.services[caller].steps
        caller_calls = 1.0 if caller == ROOT else per_request.get(caller, 0.0)
        previous: list[str] = []
        for i, step in enumerate(steps, 1):
            for callee in step.callees:
                per_run = (scenario.services[callee].instances if step.fanout == "shards"
                           else step.fanout)  # fmt: skip
                rate = offered * caller_calls * per_run * step.repeat if offered else None
                label = _e(_step_label(scenario, step, callee, i if len(steps) > 1 else None))
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


def _service_label(scenario: Scenario, summary: dict[str, Any], name: str) -> str:
    spec = scenario.services[name]
    rows = [f"<b>{_e(name)}</b>", _e(_describe_latency(spec.latency))]
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
    slowness = _slowness_text(spec)
    if slowness:
        rows.append(_e(slowness))
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


def _e(text: str) -> str:
    """Text for a Graphviz HTML-like label."""
    return html.escape(str(text), quote=False)


def _q(name: str) -> str:
    """A node id inside double quotes."""
    return name.replace("\\", "\\\\").replace('"', '\\"')
