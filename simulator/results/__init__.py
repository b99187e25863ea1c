"""The results room: what a run measured, as flat rows and arrays (SPEC §4, §5).

* ``summary``: read a finished ``Sim`` out into the summary dict, the window's latencies and the
  per-second time series; combine replications;
* ``simulate``: ``simulate(scenario)``, replications in parallel, the ``Result``;
* ``files``: the run's data files (summary.json, timeseries.csv, percentiles.csv), atomically.

Reports, sweeps and notebooks read these results, never the engine's internals.
"""
