"""``fansim plan`` and ``simulator.plan`` (SPEC §3–§5): SLOs parsed and judged with confidence
intervals, and the goal-seek's answer against queueing theory (M/M/1 rate, M/M/c servers),
against capacity, reproducible and resumable."""

from __future__ import annotations

import json
import math

import pytest
from conftest import ROOT
from typer.testing import CliRunner

from simulator import ScenarioError, analytic, load_scenario, plan
from simulator.cli import app
from simulator.experiments.slo import judge, parse_slo

SEED = ROOT / "scenarios" / "seed-example.yaml"
MM1 = """\
name: mm1
duration_s: {duration}
warmup_s: 20
seed: 1
workload: {{rps: {rps}, arrivals: poisson}}
request:
  steps:
    - call: server
services:
  server:
    latency: {{dist: exponential, mean_ms: 10}}
    workers: {workers}
"""


def mm1(tmp_path, rps=50, workers=1, duration=100):
    path = tmp_path / "mm1.yaml"
    path.write_text(MM1.format(rps=rps, workers=workers, duration=duration))
    return load_scenario(path)


# --- the SLO ---------------------------------------------------------------------------


def test_slo_terms_parse_with_their_units():
    """Latencies in ms (s converted), shares as fractions (% converted), dotted figures."""
    terms = parse_slo("p99<=200ms, p999<1s,error_rate<=0.1%,services.db.utilization<=0.8")
    assert [(t.metric, t.op, t.threshold) for t in terms] == [
        ("p99", "<=", 200.0), ("p999", "<", 1000.0), ("error_rate", "<=", 0.001),
        ("services.db.utilization", "<=", 0.8),
    ]  # fmt: skip
    assert parse_slo("throughput_rps>=100")[0].op == ">="
    with pytest.raises(ScenarioError, match="--slo thruput>=1: the summary has no figure"):
        judge(rows([1, 1]), parse_slo("thruput>=1"), 0.95)
    assert parse_slo("p99<=150")[0].threshold == 150.0  # ms by default
    assert parse_slo("latency_ok_ms.p99<=0.2s")[0].threshold == 200.0  # a *_ms figure: ms or s


@pytest.mark.parametrize(
    "text, words",
    [("p99=200ms", "expected METRIC<=VALUE"), ("p98<=1s", "unknown metric"),
     ("p99<=200%", "unit '%' does not fit p99"), ("error_rate<=1ms", "does not fit"),
     ("p99<=", "expected METRIC"), ("error_rate<=5", "did you mean 5%"),
     ("utilization<=120%", "a share is between 0 and 1")],
)  # fmt: skip
def test_a_bad_slo_is_one_line_naming_the_term(text, words):
    with pytest.raises(ScenarioError, match=words) as caught:
        parse_slo(text)
    assert len(str(caught.value).splitlines()) == 1
    assert str(caught.value).startswith("--slo ")


def rows(p99s, unstable=False, util=0.5):
    return [{"latency_ms.p99": v, "unstable": unstable, "services.db.utilization": util,
             "requests.arrived": 1000, "requests.failed": 1, "requests.rejected": 0}
            for v in p99s]  # fmt: skip


@pytest.mark.parametrize(
    "p99s, outcome",
    [([100, 101, 99], "pass"), ([300, 310, 290], "fail"), ([150, 250, 200], "undecided"),
     ([199.0, 199.0, 199.0], "pass"), ([150.0], "undecided")],
)  # fmt: skip
def test_a_point_passes_only_when_its_whole_interval_is_under_the_line(p99s, outcome):
    """Student-t intervals at the stated confidence decide; one run decides nothing."""
    assert judge(rows(p99s), parse_slo("p99<=200ms"), 0.95).outcome == outcome


def test_a_strict_comparison_fails_a_figure_on_the_line():
    assert judge(rows([10.0, 10.0]), parse_slo("p99<=10ms"), 0.95).outcome == "pass"
    assert judge(rows([10.0, 10.0]), parse_slo("p99<10ms"), 0.95).outcome == "fail"
    assert judge(rows([10.0, 10.0]), parse_slo("p99>10ms"), 0.95).outcome == "fail"


def test_a_figure_that_is_not_a_number_is_one_line():
    with pytest.raises(ScenarioError, match="--slo scenario<=1: scenario is not a number"):
        judge([{"scenario": "mm1", "unstable": False}], parse_slo("scenario<=1"), 0.95)


def test_the_interval_is_student_t_at_the_confidence_asked():
    """[180, 190, 200]: mean 190, sd 10, half-width t(0.975, 2) * 10 / sqrt(3) = 24.8 ms."""
    verdict = judge(rows([180, 190, 200]), parse_slo("p99<=200ms"), 0.95)
    (figure,) = verdict.figures
    assert figure.mean == pytest.approx(190.0)
    assert figure.half_width == pytest.approx(4.302653 * 10 / math.sqrt(3), rel=1e-6)
    assert verdict.outcome == "undecided"
    assert judge(rows([180, 190, 200]), parse_slo("p99<=215ms"), 0.5).outcome == "pass"


def test_an_unstable_run_fails_the_point_whatever_its_figures():
    verdict = judge(rows([10, 10, 10], unstable=True, util=0.97), parse_slo("p99<=1s"), 0.95)
    assert verdict.outcome == "fail"
    assert "unstable in 3 of 3 runs (busiest: db, 97.0% busy)" in verdict.reason


def test_error_rate_and_utilization_terms():
    """error_rate = (failed + rejected) / arrived; utilization = the busiest service's."""
    terms = parse_slo("error_rate<=0.2%,utilization<=0.6")
    verdict = judge(rows([1, 1, 1]), terms, 0.95)
    assert [f.mean for f in verdict.figures] == [pytest.approx(0.001), pytest.approx(0.5)]
    assert verdict.outcome == "pass"
    assert judge(rows([1, 1, 1], util=0.7), terms, 0.95).outcome == "fail"


# --- the search against theory -----------------------------------------------------------


@pytest.mark.slow
def test_the_largest_rate_of_an_mm1_queue_brackets_theory(tmp_path):
    """M/M/1, Exp(10 ms), p99 <= 200 ms: theory says 76.97 rps (ln 100 / (mu - lambda) =
    200 ms). The answer's interval holds it, is narrow, and the headroom names the capacity
    (100 rps) within the utilization's sampling error."""
    truth = analytic.mmc_max_rate(10.0, 1, 0.99, 200.0)
    answer = plan(mm1(tmp_path), "p99<=200ms", "workload.rps")
    lo, hi = answer.interval
    assert answer.status == "found" and answer.goal == "largest"
    assert lo <= truth <= hi, (lo, truth, hi)
    assert hi - lo <= 0.1 * truth
    assert answer.value == lo
    assert answer.headroom["service"] == "server"
    assert answer.headroom["capacity_rps"] == pytest.approx(100.0, rel=0.03)
    values = [p.value for p in answer.probes]
    assert len(values) == len(set(values)) <= 30  # no value probed twice


@pytest.mark.slow
def test_the_fewest_workers_of_an_mmc_queue_match_erlang_c(tmp_path):
    """M/M/c at 250 rps of Exp(10 ms), p99 <= 75 ms: the fewest workers Erlang C allows (4,
    p99 50.7 ms; 3 workers are stable, 83% busy, but give 98.9 ms)."""
    truth = analytic.mmc_min_servers(250.0, 10.0, 0.99, 75.0)
    scenario = mm1(tmp_path, rps=250, workers=8, duration=60)
    answer = plan(scenario, "p99<=75ms", "services.server.workers")
    assert answer.goal == "smallest"
    assert answer.value == truth
    assert answer.interval == (truth - 1, truth)
    assert all(isinstance(p.value, int) for p in answer.probes)


def test_a_point_at_capacity_fails_whatever_the_slo(tmp_path):
    """A loose SLO: the answer is set by stability, and says so."""
    answer = plan(mm1(tmp_path, duration=30), "p99<=60s", "workload.rps", resolution=0.05)
    assert answer.value is not None and answer.value < 100.0
    assert "unstable" in answer.limited_by
    assert answer.headroom["utilization"] < 0.95


def test_max_utilization_demands_headroom(tmp_path):
    answer = plan(mm1(tmp_path, duration=30), "p99<=60s", max_utilization=0.6, resolution=0.05)
    assert 50 <= answer.value <= 62
    assert answer.headroom["utilization"] <= 0.6


def test_without_worker_limits_the_rate_does_not_bind(tmp_path):
    """No queue anywhere: one probe, every rate passes, and the plan says why."""
    scenario = load_scenario(SEED).with_overrides({"duration_s": 0.5, "warmup_s": 0.1})
    answer = plan(scenario, "p99<=1s", "workload.rps")
    assert answer.status == "all_pass" and len(answer.probes) == 1
    assert "no service has a worker limit" in answer.notes[0]


def test_a_value_the_scenario_refuses_ends_the_range(tmp_path):
    """Fan-out 8 needing 4 answers: halving reaches fan-out 2, which cannot give 4, so the
    search stops there and says why, instead of failing the whole plan."""
    scenario = mm1(tmp_path, duration=2).with_overrides(
        {"request.steps.0.fanout": 8, "request.steps.0.require": 4}
    )
    answer = plan(scenario, "p99<=1ms", "request.steps.0.fanout")
    assert answer.status == "none_pass" and [p.value for p in answer.probes] == [8, 4]
    assert "request.steps.0.fanout=2 is not a valid value" in " ".join(answer.notes)


def test_the_goal_of_a_key_that_is_neither_load_nor_capacity_must_be_given(tmp_path):
    with pytest.raises(ScenarioError, match="--goal largest"):
        plan(mm1(tmp_path), "p99<=200ms", "services.server.latency.mean_ms")


def test_the_probe_limit_is_reported_as_such(tmp_path):
    answer = plan(mm1(tmp_path, duration=5), "p99<=200ms", max_probes=2)
    assert answer.status == "probe_limit" and len(answer.probes) == 2
    assert "stopped after 2 probes" in answer.notes[0]
    with pytest.raises(ScenarioError, match="--max-probes: must be an integer >= 2"):
        plan(mm1(tmp_path), "p99<=200ms", max_probes=1)


def test_an_slo_nothing_meets_says_so(tmp_path):
    """An Exp(10 ms) service cannot answer 99% within 1 ms at any rate."""
    answer = plan(mm1(tmp_path, duration=5, rps=50), "p99<=1ms", "workload.rps")
    assert answer.status == "none_pass" and answer.value is None
    assert "no workload.rps meets p99<=1ms" in answer.describe()


# --- reproducible, resumable, locked -------------------------------------------------------


def test_a_plan_is_the_same_on_one_or_two_workers_and_reuses_its_runs(tmp_path):
    scenario = mm1(tmp_path, duration=20)
    one = plan(scenario, "p99<=200ms", workers=1, resolution=0.05, out_dir=tmp_path / "a")
    two = plan(scenario, "p99<=200ms", workers=2, resolution=0.05)
    assert one.as_dict() == two.as_dict()
    runs = len(list((tmp_path / "a" / "rows").glob("*.json")))
    assert runs == sum(len(p.rows) for p in one.probes)
    again = plan(scenario, "p99<=200ms", workers=1, resolution=0.05, out_dir=tmp_path / "a")
    assert again.as_dict() == one.as_dict()
    saved = json.loads((tmp_path / "a" / "plan.json").read_text())
    assert saved["value"] == one.value and len(saved["probes"]) == len(one.probes)


def hold_lock(path, seconds: float = 30.0):
    """Another process holding ``path``'s lock, as a second fansim would."""
    import subprocess
    import sys

    code = ("import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
            "fcntl.lockf(fd, fcntl.LOCK_EX); print('held', flush=True); "
            f"time.sleep({seconds})")  # fmt: skip
    holder = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_directory_in_use_is_refused_at_once(tmp_path):
    """A second plan or sweep into a directory another fansim holds stops before any run."""
    from simulator import sweep

    (tmp_path / "busy").mkdir()
    holder = hold_lock(tmp_path / ".busy.lock")
    try:
        scenario = mm1(tmp_path, duration=5)
        with pytest.raises(ScenarioError, match="another fansim is writing"):
            plan(scenario, "p99<=1s", out_dir=tmp_path / "busy")
        with pytest.raises(ScenarioError, match="another fansim is writing"):
            sweep(scenario, {"workload.rps": [10]}, out_dir=tmp_path / "busy")
    finally:
        holder.kill()
    assert list((tmp_path / "busy").iterdir()) == []


def test_workers_left_by_a_killed_fansim_do_not_keep_the_lock(tmp_path):
    """A process that forked workers while holding a directory, then died, leaves the
    directory free: the workers do not inherit the lock (lockf, not flock)."""
    import os
    import signal
    import subprocess
    import sys

    from simulator.results.outdir import locked_dir

    code = ("import os, sys, time; from simulator.results.outdir import locked_dir\n"
            "with locked_dir(sys.argv[1]):\n"
            "    pid = os.fork()\n"
            "    if pid == 0:\n        os.close(1)\n        os.close(2)\n"
            "        time.sleep(60)\n        os._exit(0)\n"
            "    print(pid, flush=True)\n    os._exit(9)\n")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    orphan = int(done.stdout.strip())
    try:
        with locked_dir(tmp_path / "out"):  # free although the orphan still runs
            os.kill(orphan, 0)
    finally:
        os.kill(orphan, signal.SIGKILL)


# --- the command ---------------------------------------------------------------------------


def test_cli_plan_writes_the_answer_chart_and_page(tmp_path):
    scenario = tmp_path / "mm1.yaml"
    scenario.write_text(MM1.format(rps=50, workers=1, duration=20))
    out = tmp_path / "plan"
    args = ["plan", str(scenario), "--slo", "p99<=200ms", "--resolution", "0.05", "--out",
            str(out)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "largest workload.rps meeting p99<=200ms:" in result.output
    assert "reaches capacity at about" in result.output
    doc = json.loads((out / "plan.json").read_text())
    assert doc["slo"][0] == {"text": "p99<=200ms", "metric": "p99", "op": "<=",
                             "threshold": 200.0, "unit": "ms"}  # fmt: skip
    assert doc["interval"][0] == doc["value"] < doc["interval"][1]
    assert {"knee.png", "report.html", "results.csv"} <= {p.name for p in out.iterdir()}
    assert "Probes, in the order run" in (out / "report.html").read_text()


@pytest.mark.parametrize(
    "extra, words",
    [(["--slo", "p99<<1"], "--slo p99<<1: expected METRIC"),
     (["--slo", "p99<=1s", "--find", "services.nope.workers"], "--find services.nope.workers:"),
     (["--slo", "p99<=1s", "--max-utilization", "2"], "--max-utilization: must be in"),
     (["--slo", "p99<=1s", "--goal", "most"], "--goal: expected largest or smallest")],
)  # fmt: skip
def test_cli_plan_bad_input_is_one_line_exit_2(tmp_path, extra, words):
    scenario = tmp_path / "mm1.yaml"
    scenario.write_text(MM1.format(rps=50, workers=1, duration=5))
    result = CliRunner().invoke(app, ["plan", str(scenario), *extra, "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert words in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_plan_on_a_dask_cluster_gives_the_same_answer(tmp_path):
    """The same plan on a Dask LocalCluster: identical probes, runs and answer."""
    distributed = pytest.importorskip("distributed")
    scenario = mm1(tmp_path, duration=20)
    local = plan(scenario, "p99<=200ms", workers=1, resolution=0.05)
    with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=2,
                                  dashboard_address=None) as cluster:  # fmt: skip
        remote = plan(scenario, "p99<=200ms", resolution=0.05, cluster=cluster.scheduler_address)
    assert remote.as_dict() == local.as_dict()
    assert remote.rows().equals(local.rows())
