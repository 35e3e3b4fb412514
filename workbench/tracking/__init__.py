"""The only door to MLflow: the import gate, the store backend, runs, the prompt registry, the UI launcher,
and the team gateway's admin side.

    gate.py        MLflow's first import, under a lock; "not found" told by MLflow's error code
    backend.py     the store of a tracking URI, probed with a short timeout, opened once
    active.py      the run that calls log under now (tracing stamps traces with it)
    runs.py        `workbench.run(...)`, `workbench.runs()`
    prompts.py     the MLflow prompt registry
    ui.py          the MLflow UI on 127.0.0.1
    pending.py     writes a higher floor holds back (the trace exporter) that reads must wait for
    team_spec.py   team.yaml: secrets, models, endpoints, budgets, permissions
    team_admin.py  `workbench team apply/status` over the team server's REST API
    team_cli.py    the `workbench team` sub-commands
    team_stack.py  a local team stack (PostgreSQL + start-server.sh) for notebook 07 and the tests
    price_map.py   the cost map the team server reads for self-hosted models

Nothing is imported here, so `import workbench.tracking.gate` stays cheap.
"""

__all__: list[str] = []
