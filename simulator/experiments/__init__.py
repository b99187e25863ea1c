"""The experiments room: many runs of one scenario (sweeps now; goal-seeking next), as tidy rows.

* ``grid``: ``--grid KEY=V1,V2`` and ``KEY=start:stop:step`` into the points of a full factorial;
* ``sweep``: ``sweep()``, the points × replications in parallel, with common random numbers
  (replication ``r`` has the same seed at every point), each finished run kept as it finishes
  so an interrupted sweep resumes where it stopped.

It reads scenarios and runs them through ``simulator.results``; it never reads the engine's
internals, and reports read its rows.
"""
