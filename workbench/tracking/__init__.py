"""The only door to MLflow (issue 10 fills the rest of this floor); here: the team gateway's admin calls,
its spec file, the cost map for self-hosted models and a local team stack."""
