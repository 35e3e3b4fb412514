"""Route: a name that splits calls between deployments by weight (a litellm Router with simple-shuffle).

Its own module so that endpoints (gateway/endpoint_routes.py, a Route whose deployments are servers) can extend it
while models.py, which resolves names to routes, imports the endpoints file's registry without a cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Route"]


@dataclass
class Route:
    """A name that splits calls between models by weight (a litellm Router with simple-shuffle)."""

    name: str
    weights: dict[str, float]
    _router: Any = field(default=None, repr=False)
    # Set by a rollout (workbench.traffic): picks the model itself from the call's tags (sticky per user) and returns
    # it with tags to add (the variant), before the call, so the ledger, budget and trace all see the variant.
    pick: Callable[[dict[str, str]], tuple[str, dict[str, str]]] | None = field(default=None, repr=False)

    def router(self) -> Any:
        if self._router is None:
            from litellm import Router

            deployments = [
                {"model_name": self.name, "litellm_params": {"model": model, "weight": weight},
                 "model_info": {"id": model}}
                for model, weight in self.weights.items()
            ]
            # Our gateway retries and falls back itself, so every attempt is ours to record:
            # no Router retries, no fallbacks, no cooldowns.
            self._router = Router(
                model_list=deployments,
                routing_strategy="simple-shuffle",
                num_retries=0,
                disable_cooldowns=True,
                set_verbose=False,
            )
        return self._router

    def cache_identity(self) -> str:
        return "route:" + self.name + ":" + ",".join(f"{m}={w:g}" for m, w in sorted(self.weights.items()))
