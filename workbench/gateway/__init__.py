"""The unified adapter over litellm: complete / acomplete / stream, fallbacks, routes, cache, ledger, budgets."""

# The endpoints file's names resolve like routes: its registry registers itself with models and prices on import,
# so whichever gateway module is used first, the endpoints are known (nothing else here is imported eagerly).
from workbench.gateway import endpoint_registry as _endpoint_registry  # noqa: F401

__all__: list[str] = []
