"""The ``fansim`` command (SPEC §3): run, validate, schema, compare, sweep, plan.

Every bad input ends as ``FILE:LINE:COL: message`` on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from .results.outdir import default_run_dir
from .scenario.errors import EXIT_BAD_INPUT, ScenarioError
from .scenario.overrides import parse_sets

app = typer.Typer(
    add_completion=False,
    rich_markup_mode=None,  # plain help: flags without a "<bool>" type column
    no_args_is_help=True,
    help="fansim: simulate fan-out, tail latency and load amplification.",
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from .results.provenance import fansim_version

        typer.echo(f"fansim {fansim_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """fansim: simulate fan-out, tail latency and load amplification."""


def _fail(error: ScenarioError) -> None:
    for problem in error.problems:
        typer.echo(str(problem), err=True)
    raise typer.Exit(EXIT_BAD_INPUT)


# Options several commands share, declared once.
DurationOption = Annotated[
    float | None, typer.Option(help="Measured simulated seconds (overrides duration_s).")
]
ProcessesOption = Annotated[int | None, typer.Option(help="Processes [CPU count].")]
ClusterOption = Annotated[
    str | None, typer.Option(help="A Dask scheduler, tcp://HOST:PORT (fansim[dask]).")
]


# Flags that override a scenario key: (flag, key). An error in the key names the flag.
_FLAG_KEYS = {"duration": ("--duration", "duration_s"), "replications": ("--replications",
              "replications"), "seed": ("--seed", "seed")}  # fmt: skip


def _load(file: Path, sets: dict[str, Any], **flags: Any):
    """The scenario with the ``--set`` overrides and the flags given (None: not given)."""
    from .scenario.loader import load_scenario

    overrides, labels = dict(sets), {}
    for name, value in flags.items():
        if value is not None:
            flag, key = _FLAG_KEYS[name]
            overrides[key], labels[key] = value, flag
    return load_scenario(file, overrides, labels)


@app.command()
def run(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="Scenario YAML file.")],
    out: Annotated[
        Path | None,
        typer.Option(help="Output directory (default reports/NAME/, NAME from the scenario)."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed (overrides the scenario's).")] = None,
    duration: DurationOption = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="KEY=VALUE",
            help="Override a key: --set workload.rps=8000 (repeatable).",
        ),
    ] = None,
    replications: Annotated[int | None, typer.Option(help="Overrides replications.")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Processes for replications [CPU count].")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No table, no progress.")] = False,
    traces: Annotated[
        Path | None,
        typer.Option(help="Also write sampled requests as OTLP JSON spans to this file."),
    ] = None,
    trace_sample: Annotated[
        int, typer.Option(help="Requests to export with --traces (chosen uniformly).")
    ] = 1000,
) -> None:
    """Simulate FILE; print a summary table; write summary.json, timeseries.csv, report.html."""

    try:
        sets = parse_sets(set_ or [])
        scenario = _load(file, sets, duration=duration, replications=replications, seed=seed)
        if trace_sample < 1:
            raise ScenarioError.single("--trace-sample", f"must be >= 1, got {trace_sample}")
    except ScenarioError as e:
        _fail(e)
    out_dir = out or default_run_dir(scenario.name, sets)
    command = ["fansim", "run", str(file)]
    for flag, value in (("--out", out), ("--seed", seed), ("--duration", duration),
                        ("--replications", replications), ("--workers", workers)):  # fmt: skip
        if value is not None:
            command += [flag, str(value)]
    for item in set_ or []:
        command += ["--set", item]
    if traces is not None:
        command += ["--traces", str(traces), "--trace-sample", str(trace_sample)]
    _simulate_and_write(
        scenario,
        out_dir,
        workers,
        quiet,
        announce=out is None and bool(sets),
        command=command,
        traces=(traces, trace_sample) if traces is not None else None,
    )


def _simulate_and_write(
    scenario,
    out_dir: Path,
    workers: int | None,
    quiet: bool,
    announce: bool = False,
    command: list[str] | None = None,
    traces: tuple[Path, int] | None = None,
) -> None:
    """Reserve ``out_dir`` (writable, not being written by another run), simulate, write the
    run into a staging directory and swap it in whole; print the summary. ``command`` (the
    command line, as words) is recorded in the summary; ``traces``: (file, requests) to
    export as OTLP JSON spans."""
    import shlex

    from rich.console import Console

    from .report.run_dir import write_run_files
    from .results.outdir import staged_dir
    from .results.simulate import simulate

    err = Console(stderr=True)
    live = not quiet and err.is_terminal
    command_line = shlex.join(command) if command else None
    try:
        with staged_dir(out_dir) as stage:
            if announce and not quiet:
                err.print(f"--set without --out: writing {out_dir}/ (the baseline's is untouched)")
            sample = traces[1] if traces is not None else 0
            with _progress(f"simulating {scenario.name}", quiet) as bar:
                step = (lambda f: bar(round(f * 100), 100)) if bar else None
                result = simulate(scenario, workers=workers, progress=step,
                                  command=command_line, trace_sample=sample)  # fmt: skip
            if live:
                with err.status(f"writing {out_dir}"):
                    written = write_run_files(result, scenario, stage)
            else:
                written = write_run_files(result, scenario, stage)
            _stop_if_signalled()  # never swap in a run that was told to stop
    except ScenarioError as e:
        _fail(e)
    except OSError as e:
        _fail(ScenarioError.single(str(out_dir), f"cannot write the run's files: {e.strerror}"))
    if traces is not None:
        _write_traces(result, traces[0], quiet)
    if not quiet:
        from .report.terminal import print_summary, print_warnings

        print_summary(result.summary, Console())
        print_warnings(result.warnings, Console())
        names = ", ".join(sorted(p.name for p in written if p.suffix != ".png"))
        pngs = sum(p.suffix == ".png" for p in written)
        Console().print(f"wrote {out_dir}/: {names} and {pngs} PNG charts")


def _write_traces(result, path: Path, quiet: bool) -> None:
    """Write the run's sampled spans to ``path`` as OTLP JSON (atomically)."""
    from rich.console import Console

    from .results.traces import write_traces

    try:
        requests, calls = write_traces(path, result.spans)
    except OSError as e:
        _fail(ScenarioError.single(str(path), f"cannot write the traces: {e.strerror}"))
    if not quiet:
        Console().print(f"wrote {path}: {requests} requests, {calls} call spans (OTLP JSON)")


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(metavar="FILE", help="Scenario files.")],
) -> None:
    """Check scenario files: exit 0, or exit 2 with one line per problem."""
    from .scenario.loader import load_scenario

    bad = False
    for file in files:
        try:
            load_scenario(file)
        except ScenarioError as e:
            bad = True
            for problem in e.problems:
                typer.echo(str(problem), err=True)
        else:
            typer.echo(f"{file}: ok")
    if bad:
        raise typer.Exit(EXIT_BAD_INPUT)


@app.command("import")
def import_(
    traces: Annotated[
        list[Path], typer.Argument(metavar="TRACES...", help="Trace files (JSON or JSON Lines).")
    ],
    format_: Annotated[
        str | None,
        typer.Option("--format", help="otlp, jaeger or zipkin [detected from the file]."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Scenario file to write [NAME.yaml, NAME from the first].")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing.")] = False,
) -> None:
    """Build a commented scenario from OpenTelemetry (OTLP JSON), Jaeger or Zipkin v2 traces."""
    from .traces import TraceError, import_traces

    out = out or Path(f"{traces[0].stem}.yaml")
    try:
        result = import_traces(traces, format_, out)
        result.write()
    except TraceError as e:  # its message is the one line: FILE: what is wrong
        typer.echo(str(e), err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    if not quiet:
        typer.echo("\n".join(result.report()))


@app.command()
def compare(
    run_dirs: Annotated[
        list[Path],
        typer.Argument(
            metavar="RUN_DIR",
            help="Run directories written by `fansim run`: the baseline first, then what-ifs.",
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            help="Output directory (default: reports/compare-FIRST-vs-SECOND, FIRST and "
            "SECOND the first two run directories' names)."
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing.")] = False,
) -> None:
    """Put runs side by side: write compare.html and PNG charts (the first run is the baseline)."""
    from .report.compare import write_comparison
    from .report.runs import default_out_dir, load_runs

    try:
        if len(run_dirs) < 2:
            raise ScenarioError.single(
                str(run_dirs[0]),
                "compare needs at least two run directories: a baseline, then what-ifs",
            )
        runs = load_runs(run_dirs)
    except ScenarioError as e:
        _fail(e)
    out_dir = out or default_out_dir(run_dirs)
    try:
        written = write_comparison(runs, out_dir)
    except ScenarioError as e:
        _fail(e)
    except OSError as e:
        _fail(ScenarioError.single(str(out_dir), f"cannot write the comparison: {e.strerror}"))
    if not quiet:
        from rich.console import Console
        from rich.table import Table

        from .report.compare import mixed_scenarios, terminal_rows, tradeoff

        headings, rows = terminal_rows(runs)
        table = Table(title=f"compared with the baseline, {runs[0].label}")
        for i, heading in enumerate(headings):
            table.add_column(heading, justify="left" if i == 0 else "right")
        for row in rows:
            table.add_row(*row)
        Console().print(table)
        for run in runs[1:]:
            if line := tradeoff(runs[0], run):
                typer.echo(f"{run.label}: {line}")
        if note := mixed_scenarios(runs):
            typer.echo(note)
        typer.echo(f"wrote {written[-1]} and {len(written) - 1} charts")


@app.command()
def sweep(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="Scenario YAML file.")],
    grid: Annotated[
        list[str],
        typer.Option(
            metavar="KEY=VALUES",
            help="KEY=V1,V2,... or KEY=start:stop:step (repeatable: full factorial).",
        ),
    ],
    out: Annotated[
        Path | None, typer.Option(help="Output directory (default reports/NAME-sweep/).")
    ] = None,
    replications: Annotated[int | None, typer.Option(help="Runs per point.")] = None,
    workers: ProcessesOption = None,
    cluster: ClusterOption = None,
    duration: DurationOption = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set", metavar="KEY=VALUE", help="Override a key for every point (repeatable)."
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress, no summary.")] = False,
    slo: Annotated[
        str | None, typer.Option(help='Mark the points that meet it, e.g. "p99<=100ms".')
    ] = None,
    confidence: Annotated[float, typer.Option(help="Of each point's --slo decision.")] = 0.95,
) -> None:
    """Run FILE at every grid point x replications; write results.csv and results.parquet.
    Finished runs are kept: the same command again runs only what is missing. With --slo,
    judge every point and name the cheapest that meets it."""
    from .experiments.grid import parse_grid
    from .experiments.sweep import RESULTS_CSV, RESULTS_PARQUET
    from .experiments.sweep import sweep as run_sweep
    from .results.outdir import locked_dir

    out_dir = out
    try:
        scenario = _load(file, parse_sets(set_ or []), duration=duration)
        axes = parse_grid(grid)
        out_dir = out or Path("reports") / f"{scenario.name}-sweep"
        with locked_dir(out_dir), _progress(f"sweeping {scenario.name}", quiet) as progress:
            table = run_sweep(scenario, axes, replications=replications, workers=workers,
                              out_dir=out_dir, cluster=cluster, progress=progress)  # fmt: skip
            from .report.sweep_report import slo_lines, write_sweep_report

            section = None
            if slo is not None:  # every point judged, recorded in sweep.json
                from .experiments.cheapest import record_slo

                section = record_slo(table, scenario, axes, slo, confidence, out_dir)
            write_sweep_report(table, list(axes), out_dir, scenario.name, section)
    except ScenarioError as e:
        _fail(e)
    except OSError as e:
        _fail(ScenarioError.single(str(out_dir), f"cannot write the sweep: {e.strerror}"))
    if not quiet:
        before = table.attrs.get("runs_done_before", 0)
        kept = f" ({before} already done, kept)" if before else ""
        wrote = f"{out_dir / RESULTS_CSV}, {out_dir / RESULTS_PARQUET} and report.html"
        for line in slo_lines(section) if section else []:
            typer.echo(line)
        typer.echo(f"{len(table)} runs{kept}: wrote {wrote}")


@app.command()
def plan(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="Scenario YAML file.")],
    slo: Annotated[
        str, typer.Option(help='Objectives, e.g. "p99<=200ms" or "p999<=1s,error_rate<=0.1%".')
    ],
    find: Annotated[
        str, typer.Option(help="The key to goal-seek, e.g. services.db.workers.")
    ] = "workload.rps",
    goal: Annotated[
        str | None,
        typer.Option(
            metavar="largest|smallest",
            help="Which value is wanted [largest for load: workload.*, fanout, repeat; "
            "smallest for capacity: workers, instances, queue_limit, concurrency.*].",
        ),
    ] = None,
    confidence: Annotated[float, typer.Option(help="Of each probe's decision.")] = 0.95,
    max_utilization: Annotated[
        float | None, typer.Option(help="Also keep the busiest service at most this busy (0-1).")
    ] = None,
    min_replications: Annotated[int, typer.Option(help="Runs per probe at first.")] = 3,
    max_replications: Annotated[int, typer.Option(help="Runs per probe at most.")] = 12,
    resolution: Annotated[
        float, typer.Option(help="Stop when the interval is this narrow (share of the answer).")
    ] = 0.01,
    max_probes: Annotated[int, typer.Option(help="Stop after this many probes.")] = 30,
    out: Annotated[
        Path | None, typer.Option(help="Output directory (default reports/NAME-plan/).")
    ] = None,
    workers: ProcessesOption = None,
    cluster: ClusterOption = None,
    duration: DurationOption = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set", metavar="KEY=VALUE", help="Override a key for every probe (repeatable)."
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print the answer only.")] = False,
    minimize: Annotated[
        str | None, typer.Option(metavar="cost", help="Find the cheapest design over --grid.")
    ] = None,
    grid: Annotated[
        list[str] | None,
        typer.Option(metavar="KEY=VALUES", help="With --minimize cost: the designs (repeatable)."),
    ] = None,
    replications: Annotated[int, typer.Option(help="With --minimize: runs per design.")] = 5,
) -> None:
    """Goal-seek the largest rate (or the smallest capacity) of FILE that meets the SLO: bracket,
    then bisect, each probe replicated until its confidence interval decides. Writes plan.json,
    knee.png, report.html and every run's row (a repeated plan reuses them). With --minimize
    cost: the cheapest point of the --grid keys that meets the SLO."""
    from .experiments.plan import PLAN_JSON
    from .experiments.plan import plan as run_plan
    from .report.plan_report import headroom_line, write_plan_report
    from .results.outdir import locked_dir

    def show(probe) -> None:
        if not quiet:
            v = probe.verdict
            typer.echo(f"  {find} = {probe.value:<10,g} {v.outcome:<9} ({len(probe.rows)} runs) "
                       f"{v.reason}")  # fmt: skip

    out_dir = out
    try:
        scenario = _load(file, parse_sets(set_ or []), duration=duration)
        out_dir = out or Path("reports") / f"{scenario.name}-plan"
        if minimize is not None:
            _minimize(scenario, minimize, slo, grid, confidence, replications, workers,
                      cluster, out_dir, quiet)  # fmt: skip
            return
        with locked_dir(out_dir):
            answer = run_plan(
                scenario, slo, find, goal=goal, confidence=confidence,
                max_utilization=max_utilization, min_replications=min_replications,
                max_replications=max_replications, resolution=resolution, max_probes=max_probes,
                workers=workers, cluster=cluster, out_dir=out_dir, progress=show,
            )  # fmt: skip
            doc = answer.as_dict()
            write_plan_report(doc, answer.describe(), out_dir)
    except ScenarioError as e:
        _fail(e)
    except OSError as e:
        _fail(ScenarioError.single(str(out_dir), f"cannot write the plan: {e.strerror}"))
    typer.echo(answer.describe())
    for line in (headroom_line(doc), answer.limited_by and f"closest failing probe: "
                 f"{answer.limited_by}", *answer.notes):  # fmt: skip
        if line and not quiet:
            typer.echo(line)
    if not quiet:
        typer.echo(f"wrote {out_dir / PLAN_JSON}, knee.png and report.html")


def _minimize(scenario, what, slo, grid, confidence, replications, workers, cluster, out_dir,
              quiet) -> None:  # fmt: skip
    """``plan --minimize cost``: search the grid for the cheapest design meeting the SLO."""
    from .experiments.cheapest import minimize_cost
    from .experiments.grid import parse_grid
    from .report.plan_report import write_cost_plan_report

    if what != "cost":
        raise ScenarioError.single("--minimize", f"only cost can be minimized, got {what!r}")
    if not grid:
        raise ScenarioError.single("--minimize cost", "needs --grid KEY=V1,V2,... (the designs)")

    def show(point) -> None:
        if not quiet:
            keys = ", ".join(f"{k}={v}" for k, v in point.values.items())
            typer.echo(f"  {keys}: {point.verdict.outcome} at {point.cost:,.2f} a month "
                       f"({point.runs} runs) {point.verdict.reason}")  # fmt: skip

    answer = minimize_cost(scenario, slo, parse_grid(grid), confidence=confidence,
                           replications=replications, workers=workers, cluster=cluster,
                           out_dir=out_dir, progress=show)  # fmt: skip
    write_cost_plan_report(answer.as_dict(), answer.describe(), out_dir)
    typer.echo(answer.describe())
    for note in [] if quiet else answer.notes:
        typer.echo(note)
    if not quiet:
        typer.echo(f"wrote {out_dir / 'plan.json'}, cost_p99.png and report.html")


@contextlib.contextmanager
def _progress(description: str, quiet: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar with ETA on a terminal's stderr (None when quiet or not a terminal):
    yields the ``progress(done, total)`` callback sweeps and plans call as runs end."""
    from rich.console import Console

    err = Console(stderr=True)
    if quiet or not err.is_terminal:
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("ETA"), TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(description, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


@app.command()
def schema() -> None:
    """Print the scenario JSON Schema (for editors' YAML autocompletion)."""
    from .scenario.model import Scenario

    doc = Scenario.model_json_schema()
    doc["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    doc["title"] = "fansim scenario"
    typer.echo(json.dumps(doc, indent=2))


# Signals received (SIGINT, SIGTERM). The handler raises SystemExit to unwind at once, but an
# exception raised inside an import or a C extension's callback can be swallowed, so a run also
# checks this list before it swaps its output directory into place.
_SIGNALLED: list[int] = []


def _on_signal(signum: int, _frame) -> None:
    if not _SIGNALLED:
        print("interrupted" if signum == 2 else "terminated", file=sys.stderr)
    _SIGNALLED.append(signum)
    raise SystemExit(128 + signum)


def _stop_if_signalled() -> None:
    if _SIGNALLED:
        raise SystemExit(128 + _SIGNALLED[0])


def main() -> None:
    """Console entry point: the typer app, with Ctrl-C and SIGTERM reported without a
    traceback (both unwind, so a run's staging directory is removed and its output directory
    left as it was)."""
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _on_signal)
    # typer vendors click: its usage errors derive from this class (BadParameter is one)
    usage_error = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
    try:
        code = app(standalone_mode=False)
    except usage_error as e:  # a bad flag or argument: one line, exit 2, as for bad input
        if type(e).__name__ == "NoArgsIsHelpError" and e.ctx is not None:
            typer.echo(e.ctx.get_help())  # bare `fansim` or `fansim run`: the help
        else:
            where = e.ctx.command_path if e.ctx is not None else "fansim"
            typer.echo(f"{where}: {e.format_message()} (see {where} --help)", err=True)
        raise SystemExit(EXIT_BAD_INPUT) from None
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    raise SystemExit(code if isinstance(code, int) else 0)
