"""The scenario room: what a user wrote, validated once into frozen typed models.

Everything below this room trusts its inputs. Modules, lowest first:

* ``errors``: ``ScenarioError`` and ``Problem`` (``FILE:LINE:COL: message``), exit code 2;
* ``distributions``: latency laws (sample, mean, scipy equivalent);
* ``arrivals``: open-loop arrival processes as numpy arrays;
* ``overrides``: ``--set key.path=value`` applied to plain data;
* ``validation``: pydantic errors walked back to positions, rules that span keys;
* ``model``: the frozen models (``Scenario``, ``Step``, ``Service``, ...);
* ``topology``: what the call graph alone implies (nominal calls and ops per request);
* ``loader``: ``load_scenario(path)``, YAML with positions.

Nothing here imports the engine, the results or the reports.
"""
