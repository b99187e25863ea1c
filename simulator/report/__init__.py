"""The report room: pages and charts a person reads, drawn from results only (never the engine).

* ``format``: how every figure is written (ms, counts, shares, "—" for missing);
* ``figure``: drawing primitives every chart shares (``Chart``, axes, shading);
* ``data``: ``ReportData``, everything a run report's section may read;
* ``charts``, ``callgraph``, ``findings``, ``crosscheck``: the run report's sections;
* ``html``: the jinja2 environment (``templates/``);
* ``run_report``: ``report.html`` and its PNGs; ``run_dir``: a whole run directory;
* ``runs``: finished run directories read back; ``compare``, ``compare_charts``: ``fansim
  compare``.
"""
