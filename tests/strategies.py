"""Hypothesis strategies that build scenarios as plain data: valid by construction (random call
graphs a few levels deep, every distribution, balancer, arrival process and policy), and
invalid ones made by mutating valid documents (values, keys, and the YAML text itself)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import strategies as st

MAX_CALLS_PER_RUN = 4_000  # keeps one example's simulation well under a second


def latencies(data_dir: Path) -> st.SearchStrategy[dict]:
    """Every ``dist`` of SPEC §2, with parameters in a planner's range (ms)."""
    ms = st.floats(0.2, 20.0)
    empirical = data_dir / "latencies.csv"
    if not empirical.exists():
        empirical.write_text("\n".join(f"{0.5 + i * 0.37:.3f}" for i in range(40)) + "\n")
    flat = st.one_of(
        st.builds(lambda v: {"dist": "constant", "ms": v}, st.floats(0.0, 20.0)),
        st.builds(lambda m: {"dist": "exponential", "mean_ms": m}, ms),
        st.builds(
            lambda p, r: {"dist": "lognormal", "p50_ms": p, "p99_ms": p * r},
            ms,
            st.floats(1.5, 10.0),
        ),  # fmt: skip
        st.builds(
            lambda m, s: {"dist": "lognormal", "median_ms": m, "sigma": s}, ms, st.floats(0.1, 1.2)
        ),  # fmt: skip
        st.builds(
            lambda m, c: {"dist": "lognormal", "mean_ms": m, "cv": c}, ms, st.floats(0.1, 2.0)
        ),  # fmt: skip
        st.builds(lambda m, c: {"dist": "gamma", "mean_ms": m, "cv": c}, ms, st.floats(0.2, 2.0)),
        st.builds(
            lambda k, s: {"dist": "weibull", "shape": k, "scale_ms": s}, st.floats(0.6, 4.0), ms
        ),  # fmt: skip
        st.builds(
            lambda a, s, c: {"dist": "pareto", "alpha": a, "scale_ms": s, "cap_ms": s * c},
            st.floats(1.2, 4.0),
            st.floats(0.2, 5.0),
            st.floats(1.0, 50.0),
        ),  # fmt: skip
        st.builds(
            lambda lo, w: {"dist": "uniform", "min_ms": lo, "max_ms": lo + w},
            st.floats(0.0, 10.0),
            st.floats(0.0, 10.0),
        ),  # fmt: skip
        st.just({"dist": "empirical", "file": str(empirical)}),
        st.builds(
            lambda s: {"dist": "scipy", "name": "gamma", "params": {"a": 2.0}, "scale_ms": s},
            st.floats(0.2, 5.0),
        ),  # fmt: skip
    )
    mixture = st.builds(
        lambda parts: {
            "dist": "mixture",
            "components": [p | {"weight": w} for p, w in parts],
        },
        st.lists(
            st.tuples(flat.filter(lambda d: d["dist"] != "empirical"), st.floats(0.1, 1.0)),
            min_size=1,
            max_size=3,
        ),  # fmt: skip
    )
    return st.one_of(flat, mixture)


@st.composite
def policies(draw) -> dict:
    """Calling-side policies for one step (any subset)."""
    out: dict[str, Any] = {}
    if draw(st.booleans()):
        out["timeout_ms"] = draw(st.floats(1.0, 60.0))
    if draw(st.booleans()):
        out["retries"] = {
            "max": draw(st.integers(0, 2)),
            "backoff_ms": draw(st.floats(0.0, 5.0)),
            "jitter": draw(st.sampled_from(["none", "full", "equal"])),
        }
        if draw(st.booleans()):
            out["retries"]["budget_ratio"] = draw(st.floats(0.05, 0.5))
    if draw(st.booleans()):
        out["hedge"] = draw(
            st.one_of(
                st.builds(lambda d: {"after_ms": d}, st.floats(0.5, 30.0)),
                st.builds(lambda q: {"after": f"p{q}"}, st.sampled_from([50, 90, 95, 99])),
            )
        )
    if draw(st.booleans()):
        out["cancel_losers"] = True
    if draw(st.integers(0, 3)) == 0:
        out["circuit_breaker"] = {"failure_ratio": 0.5, "window": draw(st.integers(5, 40)),
                                  "open_ms": draw(st.floats(0.0, 200.0))}  # fmt: skip
    if draw(st.integers(0, 3)) == 0:
        out["optional"] = True
    if draw(st.integers(0, 3)) == 0:
        out["max_parallel"] = draw(st.integers(1, 3))
    return out


@st.composite
def steps(draw, callees: list[str], instances: dict[str, int], with_policies: bool) -> list[dict]:
    """One to three steps calling ``callees``, each with a fan-out and a fan-in."""
    out = []
    for _ in range(draw(st.integers(1, 2 if len(callees) > 1 else 3))):
        called = draw(st.lists(st.sampled_from(callees), min_size=1, max_size=2, unique=True))
        step: dict[str, Any] = {"call": called[0] if len(called) == 1 else called}
        if len(called) == 1 and draw(st.integers(0, 4)) == 0:
            step["fanout"] = "shards"
            n = instances[called[0]]
        else:
            step["fanout"] = draw(st.integers(1, 4))
            n = len(called) * step["fanout"]
        step["repeat"] = draw(st.integers(1, 2))
        step["require"] = draw(st.one_of(st.just("all"), st.just("any"), st.integers(1, n)))
        if with_policies:
            step |= draw(policies())
        out.append(step)
    return out


@st.composite
def scenarios(draw, data_dir: Path, contention_free: bool = False) -> dict:
    """A valid scenario as plain data: services on up to three levels (each calls only
    deeper ones), a small load. ``contention_free``: no workers, limits, errors, policies or
    deadline, so the request latency has a closed form (``analytic.contention_free_latency``)."""
    levels = draw(st.lists(st.integers(1, 2), min_size=1, max_size=3))
    names = [[f"s{d}{i}" for i in range(n)] for d, n in enumerate(levels)]
    services: dict[str, dict] = {}
    instances = {name: draw(st.integers(1, 3)) for level in names for name in level}
    for d, level in enumerate(names):
        for name in level:
            svc: dict[str, Any] = {"latency": draw(latencies(data_dir)),
                                   "instances": instances[name]}  # fmt: skip
            if not contention_free:
                svc["balancer"] = draw(
                    st.sampled_from(["round_robin", "random", "least_outstanding", "p2c"])
                )
                limit = draw(st.sampled_from(["none", "workers", "concurrency", "both"]))
                if limit in ("workers", "both"):
                    svc["workers"] = draw(st.integers(1, 20))
                if limit in ("concurrency", "both"):
                    svc["concurrency"] = {"algorithm": draw(st.sampled_from(["aimd", "gradient"])),
                                          "initial": 5, "min": 1, "max": 50}  # fmt: skip
                if limit != "none" and draw(st.booleans()):
                    svc["queue_limit"] = draw(st.integers(0, 20))
                if draw(st.integers(0, 3)) == 0:
                    svc["error_rate"] = draw(st.floats(0.0, 0.2))
            if d + 1 < len(names) and draw(st.booleans()):
                svc["steps"] = draw(steps(names[d + 1], instances, not contention_free))
            services[name] = svc
    request: dict[str, Any] = {"steps": draw(steps(names[0], instances, not contention_free))}
    if not contention_free and draw(st.integers(0, 3)) == 0:
        request["deadline_ms"] = draw(st.floats(5.0, 200.0))
    duration = draw(st.floats(0.5, 2.0))
    rps = draw(st.floats(20.0, 300.0))
    workload: dict[str, Any] = {"rps": rps}
    if not contention_free:
        kind = draw(st.sampled_from(["poisson", "constant", "bursty", "schedule"]))
        workload["arrivals"] = kind
        if kind == "bursty":
            workload["bursty"] = {"burst_rps": rps * 3, "every_s": 0.5, "length_s": 0.1}
        elif kind == "schedule":
            changes = [{"at_s": 0, "rps": rps}, {"at_s": duration / 2, "rps": rps / 2}]
            workload = {"arrivals": "schedule", "schedule": changes}
    doc = {
        "name": "generated",
        "duration_s": duration,
        "warmup_s": draw(st.sampled_from([0.0, 0.2])),
        "seed": draw(st.integers(0, 2**31)),
        "workload": workload,
        "request": request,
        "services": services,
    }
    return doc


def scale_to_budget(doc: dict, calls_per_request: float, budget: int | None = None) -> dict:
    """Lower the rate so the run makes about ``budget`` (``MAX_CALLS_PER_RUN``) calls at most."""
    total_s = doc["duration_s"] + doc["warmup_s"]
    budget_rps = (budget or MAX_CALLS_PER_RUN) / max(calls_per_request, 1.0) / total_s
    w = doc["workload"]
    peak = max([w.get("rps") or 0.0, *(c["rps"] for c in w.get("schedule", []))])
    factor = min(1.0, budget_rps / max(peak, 1e-9))
    if "rps" in w:
        w["rps"] *= factor
    if "bursty" in w:
        w["bursty"]["burst_rps"] *= factor
    for change in w.get("schedule", []):
        change["rps"] *= factor
    return doc


# --------------------------------------------------------------------------- invalid documents

JUNK = st.one_of(
    st.just(-1), st.just(0), st.just(1e400), st.just(float("nan")), st.just("many"),
    st.just(None), st.just(True), st.just([1, 2]), st.just({"x": 1}), st.just(""),
    st.integers(-10**12, 10**12), st.text(max_size=8),
)  # fmt: skip


def _paths(node: Any, path: tuple = ()) -> list[tuple]:
    out = [path] if path else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, path + (i,))
    return out


@st.composite
def mutated(draw, valid: dict) -> dict:
    """A copy of ``valid`` with one value replaced by junk, one key removed, or one added."""
    import copy

    doc = copy.deepcopy(valid)
    path = draw(st.sampled_from(_paths(doc)))
    *parent_path, last = path
    parent: Any = doc
    for key in parent_path:
        parent = parent[key]
    action = draw(st.sampled_from(["replace", "delete", "add"]))
    if action == "replace" or isinstance(parent, list):
        parent[last] = draw(JUNK)
    elif action == "delete":
        del parent[last]
    else:
        parent[draw(st.sampled_from(["wrokers", "fanuot", "x", "latency_ms"]))] = draw(JUNK)
    return doc


@st.composite
def corrupted_text(draw, text: str) -> bytes:
    """The YAML text with a character deleted or inserted, cut short, or a non-UTF-8 byte."""
    raw = text.encode()
    at = draw(st.integers(0, len(raw)))
    action = draw(st.sampled_from(["delete", "insert", "truncate", "byte"]))
    if action == "delete":
        return raw[:at] + raw[at + 1 :]
    if action == "insert":
        return (
            raw[:at]
            + draw(st.sampled_from([b":", b"[", b"{", b"\t", b"&a", b"*a", b"- ", b"'", b"!x "]))
            + raw[at:]
        )  # noqa: E501
    if action == "truncate":
        return raw[:at]
    return raw[:at] + b"\xff" + raw[at:]
