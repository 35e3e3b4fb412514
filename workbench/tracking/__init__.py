"""The only door to MLflow: the import gate, the store backend, runs, the prompt registry, the UI launcher.

    gate.py      MLflow's first import, under a lock; "not found" told by MLflow's error code
    backend.py   the store of a tracking URI, probed with a short timeout, opened once
    active.py    the run that calls log under now (tracing stamps traces with it)
    runs.py      `workbench.run(...)`, `workbench.runs()`
    prompts.py   the MLflow prompt registry
    ui.py        the MLflow UI on 127.0.0.1
    pending.py   writes a higher floor holds back (the trace exporter) that reads must wait for

Nothing is imported here, so `import workbench.tracking.gate` stays cheap.
"""

__all__: list[str] = []
