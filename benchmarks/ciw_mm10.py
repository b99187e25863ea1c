"""M/M/10 at 90% load on Ciw: the reference `bench.py` races fansim's benchmarks/mm10.yaml against.

Ciw's time unit here is one mean service time (fansim's 10 ms): arrivals Exponential(9),
service Exponential(1), 10 servers. Runs to ``--until`` units (warm-up included, Ciw does not
drain) and prints one JSON line: customers completed over the whole run, and the mean sojourn
(exit - arrival, in Ciw units) of customers that arrived after ``--warmup`` units.

    python benchmarks/ciw_mm10.py --until 44444 --warmup 500
"""

from __future__ import annotations

import argparse
import json


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--until", type=float, required=True, help="simulated time units, total")
    ap.add_argument("--warmup", type=float, default=0.0, help="units excluded from the mean")
    ap.add_argument("--arrival-rate", type=float, default=9.0)
    ap.add_argument("--service-rate", type=float, default=1.0)
    ap.add_argument("--servers", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()

    import ciw

    network = ciw.create_network(
        arrival_distributions=[ciw.dists.Exponential(rate=a.arrival_rate)],
        service_distributions=[ciw.dists.Exponential(rate=a.service_rate)],
        number_of_servers=[a.servers],
    )
    ciw.seed(a.seed)
    sim = ciw.Simulation(network)
    sim.simulate_until_max_time(a.until)
    records = sim.get_all_records()
    window = [r.exit_date - r.arrival_date for r in records if r.arrival_date >= a.warmup]
    print(
        json.dumps(
            {
                "customers": len(records),
                "window_customers": len(window),
                "mean_sojourn_units": sum(window) / len(window),
                "ciw_version": ciw.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
