"""Drawing primitives every chart shares: the figure size and resolution, a rendered
:class:`Chart`, a placeholder that keeps the page's shape, log axes, per-second steps, the
warm-up and drain shading and the percentile "nines" axis.

matplotlib is imported inside the functions that use it, so importing this module costs
nothing. Charts are drawn on ``matplotlib.figure.Figure`` objects directly (never
``pyplot``): that needs no GUI backend and no display, and, unlike ``matplotlib.use("Agg")``,
does not switch the backend of a notebook that calls us.
"""

from __future__ import annotations

import base64
import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

FIGSIZE_IN = (8.0, 4.5)
DPI = 132  # 8 in x 132 = 1,056 px: the page's content width, so charts show at 100%
# Use a log latency axis when the largest value exceeds the smallest by this factor.
LOG_Y_RATIO = 30.0


@dataclass(frozen=True)
class Chart:
    """One rendered chart: its file name, its heading and caption in the HTML, its PNG."""

    filename: str
    title: str
    caption: str
    png: bytes

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


def new_figure(nrows: int = 1) -> tuple[Figure, list[Axes]]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIGSIZE_IN, dpi=DPI, layout="constrained")
    return fig, _stacked_axes(fig, nrows)


def _stacked_axes(fig: Figure, nrows: int) -> list[Axes]:
    """``nrows`` panels on a shared x axis, with the light major grid every chart uses."""
    axes = fig.subplots(nrows, 1, sharex=True, squeeze=False)[:, 0]
    for ax in axes:
        ax.grid(True, which="major", alpha=0.35)
        ax.set_axisbelow(True)
    return list(axes)


# The over-time charts share one time axis: fixed margins (inches) put every panel's plot area
# at the same place, so a second can be followed down from chart to chart. Room on the left for
# compact tick labels ("25k", "1.2M"), on the right for side legends of up to LEGEND_CHARS.
TIME_MARGINS_IN = {"left": 0.85, "right": 2.25, "top": 0.42, "bottom": 0.6}
LEGEND_CHARS = 24


def time_figure(nrows: int = 1) -> tuple[Figure, list[Axes]]:
    """A figure for an over-time chart: panels stacked on one shared time axis, laid out with
    ``TIME_MARGINS_IN`` (no layout engine), so all such charts line up on the page."""
    return fixed_figure(nrows, **TIME_MARGINS_IN)


def fixed_figure(
    nrows: int = 1,
    left: float = TIME_MARGINS_IN["left"],
    right: float = TIME_MARGINS_IN["right"],
    top: float = TIME_MARGINS_IN["top"],
    bottom: float = TIME_MARGINS_IN["bottom"],
) -> tuple[Figure, list[Axes]]:
    """A figure with fixed margins (inches) instead of a layout engine, for charts whose
    labels have a known reach: measuring every label to place the axes (constrained layout)
    costs more than drawing the chart. Panels stack on a shared x axis."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIGSIZE_IN, dpi=DPI)
    width, height = FIGSIZE_IN
    m = {"left": left, "right": right, "top": top, "bottom": bottom}
    fig.subplots_adjust(
        left=m["left"] / width,
        right=1.0 - m["right"] / width,
        top=1.0 - m["top"] / height,
        bottom=m["bottom"] / height,
        hspace=0.18,
    )
    return fig, _stacked_axes(fig, nrows)


def legend_label(text: str) -> str:
    """A legend entry short enough for the fixed legend room (``LEGEND_CHARS``)."""
    return text if len(text) <= LEGEND_CHARS else text[: LEGEND_CHARS - 1] + "…"


def compact_count(value: float, _pos=None) -> str:
    """A tick label that stays short: 950, 2,500, 25k, 1.2M."""
    v = abs(value)
    if v >= 1e6:
        return f"{value / 1e6:,.3g}M"
    if v >= 1e4:
        return f"{value / 1e3:,.3g}k"
    if value == int(value) or v >= 100:
        return f"{value:,.0f}"
    return f"{value:.2g}"


def png_bytes(fig: Figure) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # A legend of very many services can squeeze the plot to nothing; the chart is still
        # drawn (legend beside it), so this is no news for the terminal.
        warnings.filterwarnings("ignore", "constrained_layout not applied", UserWarning)
        # No "Software" metadata: the same run gives byte-identical PNGs. zlib level 3
        # instead of 6 encodes in a third of the time for files ~8% larger.
        fig.savefig(
            buf,
            format="png",
            dpi=DPI,
            metadata={"Software": None},
            pil_kwargs={"compress_level": 3},
        )
    return buf.getvalue()


def placeholder(filename: str, title: str, message: str, caption: str) -> Chart:
    """A chart that says why there is nothing to plot, so the report keeps its shape."""
    fig, (ax,) = new_figure()
    ax.set_title(title)
    ax.set_axis_off()
    ax.text(
        0.5,
        0.5,
        message,
        ha="center",
        va="center",
        fontsize=16,
        color="0.4",
        transform=ax.transAxes,
    )
    return Chart(filename, title, caption, png_bytes(fig))


def maybe_log_y(ax: Axes, values: np.ndarray) -> None:
    positive = values[np.isfinite(values) & (values > 0)]
    if positive.size and positive.max() / positive.min() > LOG_Y_RATIO:
        from matplotlib.ticker import FuncFormatter, LogLocator

        ax.set_yscale("log")
        ax.grid(True, which="minor", alpha=0.12)
        # Plain numbers (1, 2, 5, 10, 20, ...) rather than 10^1: a reader wants milliseconds.
        ax.yaxis.set_minor_locator(LogLocator(base=10, subs=(2.0, 5.0)))
        plain = FuncFormatter(lambda v, _pos: f"{v:,g}")
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain)
    else:
        ax.set_ylim(bottom=0)


def bin_edges(t_s: np.ndarray, end_s: float | None = None) -> np.ndarray:
    """Edges of the timeseries rows: row i covers [t_s[i], t_s[i+1]), the last one second, or
    only up to ``end_s`` (the run's end, ``run_end_s``) when that falls inside it, so a
    drain's partial last second is drawn as the sliver it is, not as a second of collapse."""
    width = float(np.median(np.diff(t_s))) if len(t_s) > 1 else 1.0
    edges = np.append(t_s, t_s[-1] + width)
    if end_s is not None and edges[-2] < end_s < edges[-1]:
        edges[-1] = float(end_s)
    return edges


def plot_steps(
    ax: Axes, t_s: np.ndarray, values: np.ndarray, edges: np.ndarray | None = None, **style: Any
) -> None:
    """Plot a per-second column as steps: each value holds for its row (``edges``: the rows'
    edges, by default whole seconds)."""
    edges = bin_edges(t_s) if edges is None else edges
    ax.plot(edges, np.append(values, values[-1]), drawstyle="steps-post", **style)


def shade_phases(
    axes: Sequence[Axes],
    warmup_s: float,
    window_end_s: float | None,
    t_start: float,
    t_end: float,
    warmup_label: str = "warm-up",
) -> None:
    """Grey [0, ``warmup_s``) and hatch the drain after ``window_end_s`` (None: no drain) on
    every panel, labelled on the top one; the x axes span [``t_start``, ``t_end``]."""
    spans = []
    if warmup_s > 0:
        spans.append((0.0, min(warmup_s, t_end), warmup_label, {"facecolor": "0.88"}))
    if window_end_s is not None and t_end > window_end_s:
        hatch = {"facecolor": "none", "hatch": "//", "edgecolor": "0.82", "linewidth": 0}
        spans.append((window_end_s, t_end, "drain", hatch))
    for lo, hi, label, style in spans:
        for ax in axes:
            ax.axvspan(lo, hi, zorder=0, **style)
        axes[0].annotate(
            label,
            (lo, 0.03),
            xycoords=axes[0].get_xaxis_transform(),
            textcoords="offset points",
            xytext=(4, 0),
            ha="left",
            va="bottom",
            fontsize=8,
            color="0.3",
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1},
        )
    for ax in axes:
        ax.set_xlim(t_start, t_end)


def side_legend(ax: Axes) -> None:
    """Legend beside the plot, so it never hides a line or the drain."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)


def nines_axis(ax: Axes, x_max: float) -> None:
    """Make the x axis a log "nines" axis for data plotted at x = 1/(1 - p): ticks at
    1 -> 0%, 2 -> 50%, 10 -> 90%, 100 -> 99%, ... up to ``x_max``."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ax.set_xscale("log")
    labels = {1.0: "0%", 2.0: "50%"} | {10.0**k: f"{100 - 100 / 10**k:g}%" for k in range(1, 8)}
    ticks = [t for t in labels if t <= x_max * 1.0001]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: labels.get(v, "")))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(1.0, x_max)
    ax.set_xlabel("percentile (log scale of 1 / (1 − p))")
