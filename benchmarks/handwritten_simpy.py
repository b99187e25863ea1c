"""A minimal, idiomatic hand-written SimPy model of scenarios/seed-example.yaml.

This is the baseline `bench.py` races fansim against: what an engineer would write by hand in an
afternoon. One process per request, one per service call, one per DB call; the request waits
for its fan-out with ``env.all_of``; one ``random.Random`` draw per sample (stdlib
``lognormvariate`` / ``expovariate``). Simulated time is in milliseconds.

With ``--workers W --instances I`` each service instance is a ``simpy.Resource`` of ``W``
workers, chosen round robin, and a call holds its worker through its DB calls (as fansim's
services do); ``--db-workers W`` puts the database behind one ``simpy.Resource`` too.

Arrivals stop at warm-up + duration, then the model drains (every request that arrived gets
its answer), like fansim. The measured window is the requests that *arrived* in
[warm-up, warm-up + duration). Prints one JSON line: request and DB-op counts over the whole
run (warm-up included) and the window's p50/p99 request latency.

    python benchmarks/handwritten_simpy.py --duration 10 --warmup 5
"""

from __future__ import annotations

import argparse
import json
import math
import random

import numpy as np
import simpy

Z99 = 2.3263478740408408  # standard normal 99th percentile


def lognormal_params(p50_ms: float, p99_ms: float) -> tuple[float, float]:
    return math.log(p50_ms), (math.log(p99_ms) - math.log(p50_ms)) / Z99


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=60.0, help="measured seconds")
    ap.add_argument("--warmup", type=float, default=5.0, help="warm-up seconds")
    ap.add_argument("--rps", type=float, default=5000.0)
    ap.add_argument("--fanout", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=2, help="sequential DB calls per service call")
    ap.add_argument("--svc", type=float, nargs=2, default=(2.0, 10.0), metavar=("P50", "P99"))
    ap.add_argument("--db", type=float, nargs=2, default=(1.0, 8.0), metavar=("P50", "P99"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=0, help="workers per service instance")
    ap.add_argument("--instances", type=int, default=1, help="service instances")
    ap.add_argument("--db-workers", type=int, default=0, help="database workers")
    a = ap.parse_args()

    rng = random.Random(a.seed)
    svc_mu, svc_sigma = lognormal_params(*a.svc)
    db_mu, db_sigma = lognormal_params(*a.db)
    rate_per_ms = a.rps / 1000.0
    warmup_ms = a.warmup * 1000.0
    end_ms = (a.warmup + a.duration) * 1000.0

    env = simpy.Environment()
    stats = {"requests": 0, "db_ops": 0, "service_calls": 0}
    window_latencies: list[float] = []

    pools = [simpy.Resource(env, a.workers) for _ in range(a.instances)] if a.workers else []
    db_pool = simpy.Resource(env, a.db_workers) if a.db_workers else None
    next_instance = [0]

    def db_call(env):
        if db_pool is None:
            yield env.timeout(rng.lognormvariate(db_mu, db_sigma))
        else:
            with db_pool.request() as worker:
                yield worker
                yield env.timeout(rng.lognormvariate(db_mu, db_sigma))
        stats["db_ops"] += 1

    def service_work(env):
        yield env.timeout(rng.lognormvariate(svc_mu, svc_sigma))
        for _ in range(a.repeat):
            yield env.process(db_call(env))

    def service_call(env):
        if pools:
            next_instance[0] = (next_instance[0] + 1) % len(pools)
            with pools[next_instance[0]].request() as worker:
                yield worker
                yield from service_work(env)
        else:
            yield from service_work(env)
        stats["service_calls"] += 1

    def request(env):
        start = env.now
        yield env.all_of([env.process(service_call(env)) for _ in range(a.fanout)])
        stats["requests"] += 1
        if warmup_ms <= start < end_ms:
            window_latencies.append(env.now - start)

    def arrivals(env):
        while True:
            yield env.timeout(rng.expovariate(rate_per_ms))
            if env.now >= end_ms:
                return
            env.process(request(env))

    env.process(arrivals(env))
    env.run()  # runs until no events are left: arrivals stopped, everything drained

    lat = np.asarray(window_latencies)
    print(
        json.dumps(
            {
                "requests": stats["requests"],
                "service_calls": stats["service_calls"],
                "db_ops": stats["db_ops"],
                "window_requests": int(lat.size),
                "p50_ms": float(np.percentile(lat, 50)),
                "p99_ms": float(np.percentile(lat, 99)),
                "mean_ms": float(lat.mean()),
                "sim_end_ms": env.now,
            }
        )
    )


if __name__ == "__main__":
    main()
