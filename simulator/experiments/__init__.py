"""The experiments room: many runs of one scenario, as tidy rows.

* ``grid``: ``--grid KEY=V1,V2`` and ``KEY=start:stop:step`` into the points of a full factorial;
* ``runner``: a ``Run`` as plain data, its row, and the ``Runner`` that owns the processes (or
  the Dask client) and keeps each finished row on disk;
* ``sweep``: ``sweep()``, the points × replications in parallel, with common random numbers
  (replication ``r`` has the same seed at every point), resumable;
* ``slo``: ``--slo`` terms and the confidence decision at one point;
* ``search``: the bracket-and-bisect search, which value to probe next and each probe's runs;
* ``plan``: ``plan()``, goal-seeking one key under an SLO, and its answer (``Plan``).

It reads scenarios and runs them through ``simulator.results``; it never reads the engine's
internals, and reports read its rows.
"""
