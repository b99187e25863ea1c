"""The engine room: one replication of a validated scenario on SimPy (simulated time in ms).

Modules, lowest first:

* ``limits``: adaptive concurrency limits (AIMD, Gradient2) an instance admits calls under;
* ``services``: a service's runtime state: random streams, instances, queues, counters;
* ``flows``: a call in flight, a step's fan-in, a flow of steps, a user request;
* ``policies``: the calling side's timeouts, retries, hedges, circuit breakers;
* ``sim``: ``Sim``, which wires them to SimPy and runs a replication.

The engine reads only ``simulator.scenario``; what it measured is read out by
``simulator.results`` (``results.summary.summarize``). It never imports the results, the
reports or ``simulator.analytic``.
"""
