"""Traces out and in: simulated requests exported as OTLP JSON spans, and ``fansim import``
building a scenario from OTLP, Jaeger and Zipkin traces.

The round trip ``import(export(scenario))`` is checked against the scenario it came from: the
same call graph (each step's services, fan-out, repeat, require, policies), and each service's
latency p50 and p99 within the sampling error of the spans it was fitted from.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, check, make_scenario
from typer.testing import CliRunner

from simulator import load_scenario, simulate
from simulator.cli import app
from simulator.engine.sim import Sim
from simulator.results.summary import summarize
from simulator.results.traces import otlp_json
from simulator.traces import TraceError, import_traces
from simulator.traces.read import read_traces

SCENARIOS = ROOT / "scenarios"
Z = 4.0  # standard errors a sampled quantile may be off before a round trip fails


def _export(scenario, tmp_path: Path, sample: int, name: str = "traces.json") -> Path:
    result = simulate(scenario, workers=1, trace_sample=sample)
    path = tmp_path / name
    path.write_text(otlp_json(result.spans, "test"))
    return path


def _import(paths: list[Path], out: Path, fmt: str | None = None):
    """Import ``paths`` into ``out`` (and its latency files) and load the scenario."""
    result = import_traces(paths, fmt, out)
    result.write()
    return load_scenario(out), result


def _graph(steps) -> list[tuple]:
    return [
        (
            tuple(sorted(step.callees)),
            step.fanout,
            step.repeat,
            step.require,
            step.timeout_ms,
            step.retries.max if step.retries else None,
            step.hedge.max if step.hedge else None,
        )
        for step in steps
    ]


def _within_sampling_error(name, original, imported, samples: int, rng) -> None:
    """The imported latency's p50 and p99 are where the original distribution puts them, to
    ``Z`` standard errors of a quantile of ``samples`` draws (P-P: the original CDF at the
    imported quantile, against q; Monte Carlo error of both CDFs included; at an atom, such as
    a constant's, q may be anywhere in the CDF's jump)."""
    truth = np.sort(original.sample(rng, 400_000))
    mine = imported.sample(rng, 400_000)
    for q in (0.5, 0.99):
        at = float(np.quantile(mine, q))
        below = np.searchsorted(truth, at, side="left") / len(truth)
        upto = np.searchsorted(truth, at, side="right") / len(truth)
        se = math.sqrt(q * (1 - q) * (1 / samples + 2 / 400_000))
        where = min(max(q, below), upto)  # the original's quantile level of the imported value
        check(f"round trip: {name} p{q * 100:g} (quantile level)", where, q, Z * se)


def _round_trip(tmp_path: Path, file: str, sample: int, duration_s: float):
    original = load_scenario(SCENARIOS / file).with_overrides({"duration_s": duration_s})
    stem = file.removesuffix(".yaml")
    traces = _export(original, tmp_path, sample)
    imported, result = _import([traces], tmp_path / "imported.yaml")
    assert _graph(imported.request.steps) == _graph(original.request.steps)
    rng = np.random.default_rng(5)
    for name, spec in original.services.items():
        mine = imported.services[name]
        assert _graph(mine.steps) == _graph(spec.steps), name
        own = result.written.fits[name]
        assert own.checks or own.kind == "constant", name
        samples = sum(1 for _ in _service_rows(traces, name))
        _within_sampling_error(f"{stem} {name}", spec.latency, mine.latency, samples, rng)
    return original, imported, result


def _service_rows(path: Path, service: str):
    for span in read_traces([path])[0]:
        if span.service == service and span.attrs.get("error.type") != "rejected":
            yield span


@pytest.mark.slow
def test_round_trip_recovers_the_seed_examples_graph_and_latencies(tmp_path):
    """Importing the seed example's exported traces gives back fan-out 10, two sequential db
    calls per service, and both services' latency p50/p99 within sampling error."""
    original, imported, _ = _round_trip(tmp_path, "seed-example.yaml", 600, 3)
    assert imported.workload.rps == pytest.approx(original.workload.rps, rel=0.15)


@pytest.mark.slow
def test_round_trip_recovers_the_homepage_with_its_mixture_and_queueing(tmp_path):
    """The homepage's four-way parallel step, the db repeat under recommendations and every
    service's p50/p99 come back; inventory's cold-miss mixture is not passed off as a
    lognormal, and queueing time is not taken for service time."""
    _, _, result = _round_trip(tmp_path, "homepage.yaml", 2500, 6)
    assert result.written.fits["inventory"].kind == "empirical"
    assert result.written.fits["session-cache"].kind == "constant"


@pytest.mark.slow
def test_round_trip_recovers_timeouts_and_retries_in_a_retry_storm(tmp_path):
    """From the retry storm's traces: the 50 ms per-attempt timeout, at most 3 retries, the
    api -> db edge, and api's and db's latencies (api's spans queue for up to ~200 ms, which
    the import leaves out of its service time)."""
    _, imported, _ = _round_trip(tmp_path, "retry-storm.yaml", 2000, 30)
    step = imported.request.steps[0]
    assert step.timeout_ms == pytest.approx(50, abs=1e-3)
    assert step.retries.max == 3


def test_hedges_are_recovered_with_their_delay(tmp_path):
    """Hedged calls come back as a hedge after 20 ms, at most one per call, on a fan-out of 4."""
    scenario = load_scenario(SCENARIOS / "hedging.yaml").with_overrides({"duration_s": 4})
    imported, _ = _import([_export(scenario, tmp_path, 1000)], tmp_path / "h.yaml")
    step = imported.request.steps[0]
    assert (step.fanout, step.hedge.after_ms, step.hedge.max) == (4, 20, 1)


def test_require_and_an_error_rate_are_recovered(tmp_path):
    """A step that needs 3 of 5 answers comes back as ``require: 3``, and a 10% own error rate
    within 4 binomial standard errors."""
    scenario = make_scenario(
        {
            "api": {"latency": {"dist": "exponential", "mean_ms": 5}, "error_rate": 0.1},
            "shard": {"latency": {"dist": "uniform", "min_ms": 1, "max_ms": 9}},
        },
        [{"call": "shard", "fanout": 5, "require": 3}, {"call": "api"}],
        rps=400,
        duration_s=4,
    )
    imported, _ = _import([_export(scenario, tmp_path, 1500)], tmp_path / "r.yaml")
    assert _graph(imported.request.steps) == _graph(scenario.request.steps)
    rate, n = imported.services["api"].error_rate, 1500
    assert abs(rate - 0.1) <= 4 * math.sqrt(0.1 * 0.9 / n)


# ---- export ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "file", sorted(p.name for p in SCENARIOS.glob("*.yaml") if p.name != "shop.yaml")
)
def test_recording_spans_changes_no_figure_of_the_run(file):
    """A traced run's summary is the untraced run's, on every shipped scenario (recording
    consumes no random draw and changes no path)."""
    scenario = load_scenario(SCENARIOS / file).with_overrides({"duration_s": 3, "warmup_s": 1})
    plain, traced = Sim(scenario, 3), Sim(scenario, 3, trace_sample=200)
    plain.run()
    traced.run()
    assert summarize(plain, 3)[0] == summarize(traced, 3)[0]
    assert traced.spans is not None
    assert len(traced.spans.roots) == min(200, traced.spans.window_requests)


def test_exported_spans_form_one_tree_per_request_in_otlp_json(tmp_path):
    """Every span has hex ids of OTLP's lengths and its parent in its trace; each request is
    one root with the seed example's 30 calls below it (10 services, 2 db calls each)."""
    scenario = load_scenario(SCENARIOS / "seed-example.yaml").with_overrides({"duration_s": 1})
    doc = json.loads(_export(scenario, tmp_path, 50).read_text())
    spans = [
        (r["resource"]["attributes"][0]["value"]["stringValue"], s)
        for r in doc["resourceSpans"]
        for scope in r["scopeSpans"]
        for s in scope["spans"]
    ]
    by_trace: dict[str, list] = {}
    for service, span in spans:
        assert len(span["traceId"]) == 32 and len(span["spanId"]) == 16
        assert int(span["endTimeUnixNano"]) >= int(span["startTimeUnixNano"])
        by_trace.setdefault(span["traceId"], []).append((service, span))
    assert len(by_trace) == 50
    for members in by_trace.values():
        ids = {s["spanId"] for _, s in members}
        roots = [(svc, s) for svc, s in members if not s["parentSpanId"]]
        assert len(roots) == 1 and roots[0][0] == "users"
        assert all(s["parentSpanId"] in ids for _, s in members if s["parentSpanId"])
        assert sum(svc == "service" for svc, _ in members) == 10
        assert sum(svc == "db" for svc, _ in members) == 20


def test_timed_out_attempts_and_retries_are_marked_in_the_spans(tmp_path):
    """In a retry storm's traces, attempts that timed out say so (status ERROR, error.type
    timeout, given up after 50 ms), and retries are marked as such."""
    scenario = load_scenario(SCENARIOS / "retry-storm.yaml").with_overrides({"duration_s": 15})
    spans, _ = read_traces([_export(scenario, tmp_path, 300)])
    timed_out = [s for s in spans if s.attrs.get("fansim.timed_out")]
    assert timed_out and all(s.error for s in timed_out)
    assert {s.attrs["fansim.given_up_after_ms"] for s in timed_out} == {50.0}
    assert any(s.attrs.get("fansim.attempt") == "retry" for s in spans)


def test_run_traces_writes_the_file_and_says_so(tmp_path):
    """``fansim run --traces F --trace-sample N`` writes N requests' spans to F."""
    out = tmp_path / "t.json"
    res = CliRunner().invoke(
        app,
        [
            "run",
            str(SCENARIOS / "hedging.yaml"),
            "--duration",
            "2",
            "--out",
            str(tmp_path / "r"),
            "--traces",
            str(out),
            "--trace-sample",
            "25",
        ],  # fmt: skip
    )
    assert res.exit_code == 0, res.output
    assert "25 requests" in " ".join(res.output.split())
    roots = [s for s in read_traces([out])[0] if not s.parent_id]
    assert len(roots) == 25


# ---- import: formats, the shipped trace file, bad traces --------------------------------


def _shop_spans():
    otel_shop = pytest.importorskip("otel_shop")
    return otel_shop, otel_shop.shop_spans()


def test_the_shipped_shop_scenario_is_what_import_makes_of_the_shipped_traces(tmp_path):
    """``scenarios/shop.yaml`` is a fresh import of ``scenarios/shop-traces.json`` (the shipped
    pair stays in step), and the traces are what the OTel SDK chain makes today."""
    otel_shop, spans = _shop_spans()
    shipped = SCENARIOS / "shop-traces.json"
    assert otel_shop.collector_lines(spans) == shipped.read_text()
    result = import_traces([shipped], None, tmp_path / "shop.yaml")
    assert result.written.text == (SCENARIOS / "shop.yaml").read_text()


def test_import_recovers_the_instrumented_shop_chain(tmp_path):
    """From the OTel SDK's spans (client and server pairs, internal spans, database client
    spans with no server side, resend counts): frontend calls catalog and pricing in
    parallel, then recommendations with retries 5 ms apart (as many as the traces show);
    catalog makes 2 queries in a
    row, pricing 3 in parallel; recommendations fails 4% of the time on its own."""
    imported, _ = _import([SCENARIOS / "shop-traces.json"], tmp_path / "shop.yaml")
    assert _graph(imported.request.steps) == [(("frontend",), 1, 1, "all", None, None, None)]
    front = imported.services["frontend"]
    spans, _ = read_traces([SCENARIOS / "shop-traces.json"])
    most = max(int(s.attrs.get("http.request.resend_count", 0)) for s in spans)
    assert most >= 1  # the sample has retries (up to 2 are allowed; none needed 2 here)
    assert _graph(front.steps) == [
        (("catalog", "pricing"), 1, 1, "all", None, None, None),
        (("recommendations",), 1, 1, "all", None, most, None),
    ]
    assert front.steps[1].retries.backoff_ms == pytest.approx(5, abs=0.01)
    assert _graph(imported.services["catalog"].steps) == [
        (("postgresql",), 1, 2, "all", None, None, None)
    ]
    assert _graph(imported.services["pricing"].steps) == [
        (("redis",), 3, 1, "all", None, None, None)
    ]
    rate = imported.services["recommendations"].error_rate
    n = 300 * 1.04
    assert abs(rate - 0.04) <= 4 * math.sqrt(0.04 * 0.96 / n)
    # own times: the medians the chain draws (catalog 2 ms, pricing 0.8, redis 0.3 ms),
    # within 4 standard errors of a lognormal median from its samples
    for name, median, sigma, n in (("catalog", 2.0, 0.5, 300), ("pricing", 0.8, 0.4, 300),
                                   ("redis", 0.3, 0.6, 900)):  # fmt: skip
        fitted = imported.services[name].latency.median_ms
        assert abs(math.log(fitted / median)) <= 4 * sigma * math.sqrt(math.pi / 2 / n), name


def _to_jaeger(spans) -> dict:
    processes = {s.service: f"p{i}" for i, s in enumerate({s.service: s for s in spans}.values())}
    traces: dict[str, list] = {}
    for s in spans:
        tags = [{"key": "span.kind", "type": "string", "value": s.kind}]
        tags += [{"key": k, "type": "string", "value": v} for k, v in s.attrs.items()]
        if s.error:
            tags.append({"key": "error", "type": "bool", "value": True})
        refs = [{"refType": "CHILD_OF", "traceID": s.trace_id, "spanID": s.parent_id}]
        traces.setdefault(s.trace_id, []).append(
            {
                "traceID": s.trace_id,
                "spanID": s.span_id,
                "operationName": s.name,
                "references": refs if s.parent_id else [],
                "startTime": round(s.start_ms * 1000),
                "duration": round((s.end_ms - s.start_ms) * 1000),
                "tags": tags,
                "processID": processes[s.service],
            }  # fmt: skip
        )
    procs = {p: {"serviceName": name, "tags": []} for name, p in processes.items()}
    return {"data": [{"traceID": t, "spans": v, "processes": procs} for t, v in traces.items()]}


def _to_zipkin(spans) -> list:
    out = []
    for s in spans:
        span = {"traceId": s.trace_id, "id": s.span_id, "name": s.name,
                "timestamp": round(s.start_ms * 1000),
                "duration": round((s.end_ms - s.start_ms) * 1000),
                "localEndpoint": {"serviceName": s.service},
                "tags": {k: str(v) for k, v in s.attrs.items()}}  # fmt: skip
        if s.kind in ("client", "server"):
            span["kind"] = s.kind.upper()
        if s.parent_id:
            span["parentId"] = s.parent_id
        if s.error:
            span["tags"]["error"] = "true"
        out.append(span)
    return out


def test_jaeger_zipkin_and_base64_otlp_give_the_same_scenario(tmp_path):
    """The shop's traces as Jaeger JSON, as Zipkin v2 JSON (microsecond times) and as protobuf
    JSON (base64 ids, one document) import to the same call graph as the shipped OTLP file."""
    otel_shop, sdk_spans = _shop_spans()
    spans, _ = read_traces([SCENARIOS / "shop-traces.json"])
    files = {
        "jaeger": json.dumps(_to_jaeger(spans)),
        "zipkin": json.dumps(_to_zipkin(spans)),
        "otlp": otel_shop.protobuf_json(sdk_spans),
    }
    reference, _ = _import([SCENARIOS / "shop-traces.json"], tmp_path / "ref.yaml")
    for fmt, text in files.items():
        path = tmp_path / f"{fmt}.json"
        path.write_text(text)
        got, result = _import([path], tmp_path / f"{fmt}.yaml")
        assert result.formats == [fmt]
        assert _graph(got.request.steps) == _graph(reference.request.steps), fmt
        for name, service in reference.services.items():
            assert _graph(got.services[name].steps) == _graph(service.steps), (fmt, name)


def test_bad_traces_are_counted_by_reason_and_skipped(tmp_path):
    """An orphan span, a span with no service name and a child outliving its parent each
    skip their trace, with the count by reason in the scenario's header; the good traces are
    used."""
    spans, _ = read_traces([SCENARIOS / "shop-traces.json"])
    traces = sorted({s.trace_id for s in spans})
    broken = {traces[0]: "orphan", traces[1]: "service", traces[2]: "skew"}
    docs = []
    for s in spans:
        why = broken.get(s.trace_id)
        if why == "orphan" and s.parent_id:
            s.parent_id = "f" * 16
        elif why == "service" and s.kind == "client":
            s.service = ""
        elif why == "skew" and s.parent_id:
            s.start_ms += 500.0
            s.end_ms += 500.0
        docs.append(s)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_to_zipkin(docs)))
    _, result = _import([path], tmp_path / "bad.yaml")
    assert result.requests == len(traces) - 3
    assert dict(result.skipped) == {
        "orphan spans (parent not in the trace)": 1,
        "a span with no service name": 1,
        "clock skew (a call outside its caller's span)": 1,
    }
    assert "# Skipped 3 bad traces" in result.written.text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty file"),
        ("{not json", "not JSON"),
        ('{"spans": []}', "not OTLP (resourceSpans), Jaeger (data) or Zipkin v2"),
        ('{"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": "ab"}]}]}]}', "not valid otlp"),
    ],
)
def test_unreadable_trace_files_are_one_line_errors_with_exit_2(tmp_path, content, message):
    """A trace file that is empty, not JSON, of no known format or missing keys is one line
    naming the file, exit 2, no traceback."""
    path = tmp_path / "t.json"
    path.write_text(content)
    res = CliRunner().invoke(app, ["import", str(path), "--out", str(tmp_path / "s.yaml")])
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(str(path)) and message in lines[0]
    assert not (tmp_path / "s.yaml").exists()


def test_a_file_of_only_bad_traces_is_an_error(tmp_path):
    """When no trace is usable, import says why and writes nothing."""
    path = tmp_path / "t.json"
    path.write_text(json.dumps([{"traceId": "a" * 32, "id": "b" * 16, "parentId": "c" * 16,
                                 "timestamp": 1, "duration": 5}]))  # fmt: skip
    with pytest.raises(TraceError, match="no usable trace .*1 a span with no service name"):
        import_traces([path], None, tmp_path / "s.yaml")


def test_import_then_run_works_from_the_command_line(tmp_path):
    """``fansim import`` then ``fansim run`` on what it wrote: a report from the shipped file."""
    out = tmp_path / "shop.yaml"
    runner = CliRunner()
    res = runner.invoke(app, ["import", str(SCENARIOS / "shop-traces.json"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert f"next: fansim run {out}" in res.output
    res = runner.invoke(app, ["run", str(out), "--duration", "5", "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "r" / "report.html").exists()


# ---- found in review: each of these failed before its fix --------------------------------


@pytest.mark.parametrize("slow_workers", [None, 100])
def test_losers_of_a_require_any_step_are_marked_and_round_trip(tmp_path, slow_workers):
    """A ``require: any`` step over a 1 ms and a 10 ms service: the loser is marked as given
    up (on numpy blocks, and when it is the one event-path call of a mixed step), so import
    keeps every trace and gives back ``require: 1``."""
    slow = {"latency": {"dist": "constant", "ms": 10}}
    if slow_workers:
        slow["workers"] = slow_workers
    scenario = make_scenario(
        {"fast": {"latency": {"dist": "constant", "ms": 1}}, "slow": slow},
        [{"call": ["fast", "slow"], "require": "any"}],
        rps=50,
        duration_s=2,
    )
    imported, result = _import([_export(scenario, tmp_path, 300)], tmp_path / "a.yaml")
    assert not result.skipped
    assert imported.request.steps[0].require == 1


def test_a_step_a_deadline_always_cuts_comes_back_optional(tmp_path):
    """A request deadline of 20 ms after a 5 ms step cuts a 50 ms optional step every time: it
    had no answer when the request went on, so it comes back ``optional: true`` (a scenario
    that loads), not ``require: 0``."""
    scenario = make_scenario(
        {"main": {"latency": {"dist": "constant", "ms": 5}},
         "extra": {"latency": {"dist": "constant", "ms": 50}}},
        [{"call": "main"}, {"call": "extra", "optional": True}],
        rps=50, duration_s=2, request={"deadline_ms": 20, "steps": [
            {"call": "main"}, {"call": "extra", "optional": True}]},
    )  # fmt: skip
    imported, _ = _import([_export(scenario, tmp_path, 100)], tmp_path / "d.yaml")
    assert imported.request.steps[1].optional


def test_a_call_served_at_time_zero_did_not_queue(tmp_path):
    """The first request arrives at 0 ms and is served at once: its span's queueing is 0 (a
    call's serving time of 0.0 is a time, not "never served")."""
    scenario = make_scenario(
        {"api": {"latency": {"dist": "constant", "ms": 5}, "workers": 4}},
        [{"call": "api"}], rps=10, duration_s=1, workload={"arrivals": "constant"},
    )  # fmt: skip
    spans, _ = read_traces([_export(scenario, tmp_path, 10)])
    assert {s.attrs["fansim.queue_ms"] for s in spans if s.service == "api"} == {0.0}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"fansim.queue_ms": "soon"}, "a non-numeric fansim.queue_ms attribute"),
        ({"http.request.resend_count": "x"}, "a non-numeric http.request.resend_count attribute"),
        ({"fansim.sampling_ratio": 5}, "a fansim.sampling_ratio outside (0, 1]"),
    ],
)
def test_attributes_that_are_not_numbers_skip_their_trace(tmp_path, change, reason):
    """A numeric attribute holding text (or a sampling ratio above 1) makes its trace bad:
    counted by reason and skipped, never a traceback."""
    spans, _ = read_traces([SCENARIOS / "shop-traces.json"])
    first = sorted({s.trace_id for s in spans})[0]
    for s in spans:
        if s.trace_id == first:
            s.attrs.update(change)
    path = tmp_path / "z.json"
    path.write_text(json.dumps(_to_zipkin(spans)))
    _, result = _import([path], tmp_path / "z.yaml")
    assert dict(result.skipped) == {reason: 1}


def test_duplicate_ids_and_parent_cycles_skip_their_trace(tmp_path):
    """Two spans with one id, or spans whose parents form a cycle away from the root, make
    their trace bad (no recursion without end)."""
    spans, _ = read_traces([SCENARIOS / "shop-traces.json"])
    traces = sorted({s.trace_id for s in spans})
    one = [s for s in spans if s.trace_id == traces[0]]
    one[2].span_id = one[1].span_id
    two = [s for s in spans if s.trace_id == traces[1] and s.parent_id]
    two[0].parent_id, two[1].parent_id = two[1].span_id, two[0].span_id
    path = tmp_path / "c.json"
    path.write_text(json.dumps(_to_zipkin(spans)))
    _, result = _import([path], tmp_path / "c.yaml")
    assert result.skipped["duplicate span ids"] == 1
    assert sum(result.skipped.values()) == 2
