"""What runs cost: the arithmetic of capacity and usage (by cause) against hand-computed
figures, the cost in every output, and the cheapest design under an SLO found by search
exactly as a brute-force sweep of the same grid finds it."""

from __future__ import annotations

import json
import math

import pytest
from conftest import make_scenario
from typer.testing import CliRunner

from simulator import simulate, sweep
from simulator.cli import app
from simulator.experiments.cheapest import (
    Point,
    capacity_per_month,
    cheapest,
    judge_sweep,
    minimize_cost,
    pareto,
)
from simulator.experiments.slo import Verdict
from simulator.results.cost import money
from simulator.scenario.errors import ScenarioError

CONSTANT = {"arrivals": "constant"}


def _priced(api: dict | None = None, db: dict | None = None, steps=None, **top):
    services = {
        "api": {"latency": {"dist": "constant", "ms": 5}, "instances": 3,
                "cost": {"per_instance_hour": 0.5}, "steps": [{"call": "db", "repeat": 2}]}
        | (api or {}),
        "db": {"latency": {"dist": "constant", "ms": 1}, "cost": {"per_million_calls": 2.0}}
        | (db or {}),
    }  # fmt: skip
    top = {"rps": 100, "duration_s": 10, "workload": CONSTANT} | top
    return make_scenario(services, steps or [{"call": "api"}], **top)


def test_capacity_and_usage_match_the_hand_computed_bill():
    """100 rps for 10 s, each request 2 db calls: capacity 3 x $0.50 x 730 h = $1,095 a
    month; usage 200 calls/s x 3,600 s x 730 h x $2 a million = $1,051.20; per million
    requests ($1.50 + $1.44 an hour) / 0.36 million = $8.1667."""
    s = simulate(_priced(), workers=1).summary
    assert s["requests"]["arrived"] == 1000
    cost = s["cost"]
    assert cost["currency"] == "USD" and cost["hours_per_month"] == 730
    month = cost["per_month"]
    assert month["capacity"] == pytest.approx(1095.0)
    assert month["usage"] == pytest.approx(1051.2)
    assert month["total"] == pytest.approx(2146.2)
    assert month["usage_by_cause"] == pytest.approx(
        {"nominal": 1051.2, "retries": 0.0, "hedges": 0.0, "wasted": 0.0}
    )
    assert cost["per_million_requests"]["total"] == pytest.approx((1.5 + 1.44) / 0.36)
    assert cost["services"]["api"]["per_month"]["total"] == pytest.approx(1095.0)
    assert cost["services"]["db"]["per_month"]["usage"] == pytest.approx(1051.2)


def test_retries_are_billed_as_retries():
    """Every db call errs and is retried twice: of the 3,000 calls served, 1,000 are first
    tries and 2,000 retries, and usage splits 1:2 ($262.80 nominal, $525.60 retries)."""
    scenario = _priced(
        db={"error_rate": 1.0},
        steps=[{"call": "db", "retries": {"max": 2}}],
    )
    s = simulate(scenario, workers=1).summary
    assert s["services"]["db"]["calls_by_cause"] == {
        "nominal": 1000, "retries": 2000, "hedges": 0, "wasted": 0,
    }  # fmt: skip
    by_cause = s["cost"]["per_month"]["usage_by_cause"]
    per_call_month = 2.0 / 1e6 / 10 * 3600 * 730  # one call in the 10 s window, a month
    assert by_cause["nominal"] == pytest.approx(1000 * per_call_month)
    assert by_cause["retries"] == pytest.approx(2000 * per_call_month)
    assert s["cost"]["per_month"]["policies"] == pytest.approx(2000 * per_call_month)


def test_a_hedges_losing_copy_is_billed_as_wasted_work():
    """db takes 10 ms and every call is hedged after 5 ms: the first try answers at 10 ms
    and wins, the copy answers at 15 ms after its caller moved on. 1,000 nominal calls and
    1,000 wasted ones, none counted as a useful hedge."""
    scenario = _priced(
        db={"latency": {"dist": "constant", "ms": 10}},
        steps=[{"call": "db", "hedge": {"after_ms": 5, "max": 1}}],
    )
    s = simulate(scenario, workers=1).summary
    assert s["services"]["db"]["calls_by_cause"] == {
        "nominal": 1000, "retries": 0, "hedges": 0, "wasted": 1000,
    }  # fmt: skip


def test_refused_calls_are_not_billed():
    """One worker, no queue, 15 ms calls arriving every 10 ms: every other call is refused;
    only the 500 served are billed."""
    scenario = _priced(
        db={"latency": {"dist": "constant", "ms": 15}, "workers": 1, "queue_limit": 0},
        steps=[{"call": "db", "optional": True}],
    )
    s = simulate(scenario, workers=1).summary
    db = s["services"]["db"]
    assert (db["calls"], db["rejected"]) == (1000, 500)
    assert sum(db["calls_by_cause"].values()) == 500
    assert s["cost"]["per_month"]["usage"] == pytest.approx(500 * 2.0 / 1e6 / 10 * 3600 * 730)


def test_no_prices_no_cost_and_replications_give_intervals():
    """An unpriced scenario's cost is null; a priced one with replications has a 95% half-width
    for its monthly total."""
    bare = make_scenario({"db": {"latency": {"dist": "exponential", "mean_ms": 1}}},
                         [{"call": "db"}], duration_s=2)  # fmt: skip
    assert simulate(bare, workers=1).summary["cost"] is None
    scenario = _priced(workload={"arrivals": "poisson"}, duration_s=2)
    s = simulate(scenario, replications=3, workers=1).summary
    assert s["ci95"]["cost"]["per_month"]["usage"] > 0


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"currency": "usd"}, "currency"),
        ({"services": {"db": {"latency": {"dist": "constant", "ms": 1}, "cost": {}}}},
         "cost needs per_instance_hour, per_million_calls or both"),
        ({"services": {"db": {"latency": {"dist": "constant", "ms": 1},
                              "cost": {"per_million_calls": -1}}}}, "per_million_calls"),
    ],
)  # fmt: skip
def test_bad_prices_are_one_line_errors(tmp_scenario, patch, message):
    """A currency that is not a 3-letter code, a cost with no price, a negative price: one
    line naming the key, exit 2."""
    import yaml

    doc = {"name": "p", "duration_s": 1, "workload": {"rps": 10},
           "request": {"steps": [{"call": "db"}]},
           "services": {"db": {"latency": {"dist": "constant", "ms": 1}}}} | patch  # fmt: skip
    path = tmp_scenario(yaml.safe_dump(doc))
    res = CliRunner().invoke(app, ["validate", str(path)])
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and str(path) in lines[0]


def test_money_is_written_with_its_currency():
    """Amounts carry the currency's symbol (or its code), whole above 100."""
    assert money(1240.4, "USD") == "$1,240"
    assert money(12.5, "EUR") == "€12.50"
    assert money(3, "CHF") == "CHF 3.00"


def test_the_terminal_report_and_compare_show_the_cost(tmp_path):
    """``fansim run`` prints the monthly total; the report has a cost section; ``compare``
    prints each what-if's price in one line."""
    path = tmp_path / "p.yaml"
    path.write_text(json.dumps(_priced().resolved_data()))
    runner = CliRunner()
    a, b = tmp_path / "a", tmp_path / "b"
    res = runner.invoke(app, ["run", str(path), "--out", str(a)])
    assert res.exit_code == 0, res.output
    assert "cost / month" in res.output and "$2,146" in res.output
    assert 'id="cost"' in (a / "report.html").read_text()
    assert (a / "cost.png").is_file()
    res = runner.invoke(
        app, ["run", str(path), "--out", str(b), "--set", "services.api.instances=6"]
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["compare", str(a), str(b), "--out", str(tmp_path / "c")])
    assert res.exit_code == 0, res.output
    assert "b: p99 " in res.output and "+$1,095 a month" in res.output


# ---- the cheapest design under an SLO ------------------------------------------------


def _design_space():
    """An api whose p99 depends on its workers and instances (Poisson arrivals, exponential
    service): capacity costs per instance, the database per call."""
    return make_scenario(
        {
            "api": {"latency": {"dist": "exponential", "mean_ms": 10}, "workers": 2,
                    "instances": 1, "balancer": "least_outstanding",
                    "cost": {"per_instance_hour": 0.5}, "steps": [{"call": "db"}]},
            "db": {"latency": {"dist": "lognormal", "p50_ms": 1, "p99_ms": 8},
                   "cost": {"per_million_calls": 0.25}},
        },
        [{"call": "api"}],
        rps=300,
        duration_s=3,
    )  # fmt: skip


GRID = {"services.api.workers": [2, 3, 5], "services.api.instances": [1, 2, 3]}


def test_the_search_finds_what_a_brute_force_sweep_of_the_grid_finds(tmp_path):
    """``plan --minimize cost`` runs fewer points than the grid has, and names the same
    cheapest design meeting the SLO as judging every point of a full sweep (same seeds)."""
    scenario = _design_space()
    frame = sweep(scenario, GRID, replications=3, workers=1)
    judged = judge_sweep(frame, scenario, GRID, "p99<=60ms")
    brute = cheapest(judged)
    found = minimize_cost(scenario, "p99<=60ms", GRID, replications=3, workers=1)
    assert brute is not None and found.answer is not None
    assert found.answer.values == brute.values
    assert found.answer.cost == pytest.approx(brute.cost)
    assert len(found.judged) + found.skipped == 9 and found.skipped > 0
    # what was skipped could not have been cheaper: its capacity alone costs at least as much
    run = {p.index for p in found.judged}
    for p in judged:
        if p.index not in run:
            assert p.capacity > found.answer.cost
    # the next cheaper design run is named, with why it does not qualify
    if found.closest_cheaper is not None:
        assert found.closest_cheaper.cost < found.answer.cost
        assert not found.closest_cheaper.meets


def test_capacity_cost_is_a_lower_bound_known_before_running():
    """A point's capacity cost comes from its resolved scenario alone (instances x hourly
    price x 730), and its simulated total is never below it."""
    scenario = _design_space()
    data = scenario.with_overrides({"services.api.instances": 4}).resolved_data()
    assert capacity_per_month(data) == pytest.approx(4 * 0.5 * 730)
    s = simulate(scenario.with_overrides({"services.api.instances": 4}), workers=1).summary
    assert s["cost"]["per_month"]["total"] >= capacity_per_month(data)


def _point(index: int, cost: float, p99: float, outcome: str = "pass") -> Point:
    return Point(index, {"k": index}, Verdict(outcome, (), 0, ""), 3, cost, 0.0, cost, p99, 0.0)


def test_cheapest_and_the_pareto_front_on_known_points():
    """Among (cost, p99) points, the cheapest passing one wins (a cheaper failing one does
    not); the Pareto front keeps exactly the points nothing beats on both."""
    pts = [_point(0, 100, 50, "fail"), _point(1, 120, 40), _point(2, 120, 30), _point(3, 200, 20),
           _point(4, 250, 25), _point(5, 90, math.nan, "undecided")]  # fmt: skip
    assert cheapest(pts).index == 2  # cost tie: the lower p99
    assert [p.index for p in pareto(pts)] == [0, 2, 3]


def test_sweep_slo_and_plan_minimize_from_the_command_line(tmp_path):
    """``fansim sweep --slo`` records every point's verdict and the cheapest in sweep.json;
    ``fansim plan --minimize cost`` writes plan.json with the same answer."""
    path = tmp_path / "d.yaml"
    path.write_text(json.dumps(_design_space().resolved_data()))
    grid = [f"--grid={k}={','.join(map(str, v))}" for k, v in GRID.items()]
    runner = CliRunner()
    res = runner.invoke(app, ["sweep", str(path), *grid, "--replications", "3", "--workers", "1",
                              "--slo", "p99<=60ms", "--out", str(tmp_path / "s")])  # fmt: skip
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "s" / "sweep.json").read_text())
    assert doc["grid"] == GRID and len(doc["slo"]["points"]) == 9
    assert "The cheapest that meets it" in res.output
    assert (tmp_path / "s" / "sweep_cost_p99.png").is_file()
    res = runner.invoke(app, ["plan", str(path), "--slo", "p99<=60ms", "--minimize", "cost",
                              *grid, "--replications", "3", "--workers", "1",
                              "--out", str(tmp_path / "p")])  # fmt: skip
    assert res.exit_code == 0, res.output
    plan = json.loads((tmp_path / "p" / "plan.json").read_text())
    assert plan["answer"]["values"] == doc["slo"]["cheapest"]["values"]


def test_minimize_needs_prices_and_a_grid(tmp_path):
    """``--minimize cost`` on an unpriced scenario, or without --grid, is one line, exit 2."""
    bare = make_scenario({"db": {"latency": {"dist": "exponential", "mean_ms": 1}}},
                         [{"call": "db"}], duration_s=1)  # fmt: skip
    with pytest.raises(ScenarioError, match="no service has a cost"):
        minimize_cost(bare, "p99<=10ms", {"services.db.instances": [1, 2]})
    path = tmp_path / "d.yaml"
    path.write_text(json.dumps(_design_space().resolved_data()))
    res = CliRunner().invoke(app, ["plan", str(path), "--slo", "p99<=60ms", "--minimize", "cost"])
    assert res.exit_code == 2 and "needs --grid" in res.output


def test_the_search_keeps_a_tie_the_brute_force_would_choose():
    """Workers cost nothing here, so every point costs the same: the search must still run
    them all and pick the lowest p99, as judging the whole grid does."""
    scenario = _design_space().with_overrides(
        {"services.db.cost": None, "services.api.instances": 2}
    )
    grid = {"services.api.workers": [4, 8, 16]}
    frame = sweep(scenario, grid, replications=3, workers=1)
    brute = cheapest(judge_sweep(frame, scenario, grid, "p99<=500ms"))
    found = minimize_cost(scenario, "p99<=500ms", grid, replications=3, workers=1)
    assert found.answer.values == brute.values and found.skipped == 0
