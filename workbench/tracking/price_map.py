"""A litellm cost map with a team's self-hosted models priced in, for the MLflow server's gateway.

The gateway prices each call with litellm's cost map; a self-hosted model (vLLM, transformers serve) is in
no map, so its calls cost $0 and budgets never trip. litellm reads its map from LITELLM_MODEL_COST_MAP_URL
(http only) and rejects a map smaller than its bundled one, so the map we serve is the bundled map, whole,
plus our entries (as `<model>` and `openai/<model>`, the names the gateway looks up).

    python -m workbench.tracking.price_map team.yaml OUT_DIR     # writes OUT_DIR/cost_map.json
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

from workbench.errors import ConfigError
from workbench.tracking.team_spec import load_spec

__all__ = ["bundled_map_path", "write_price_map", "main", "FILE_NAME"]

FILE_NAME = "cost_map.json"


def bundled_map_path() -> Path:
    """litellm's bundled cost map, found without importing litellm (its import is slow)."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("litellm is not installed here: pip install litellm (the team server needs it for prices)")
    return Path(next(iter(spec.submodule_search_locations))) / "model_prices_and_context_window_backup.json"


def write_price_map(prices: dict[str, tuple[float, float]], out_dir: str | Path) -> Path:
    """Write the bundled map plus `prices` (model -> USD per 1M input, output tokens); returns the file."""
    cost_map = json.loads(bundled_map_path().read_text())
    for model, (input_per_1m, output_per_1m) in prices.items():
        entry = {"input_cost_per_token": input_per_1m / 1e6, "output_cost_per_token": output_per_1m / 1e6,
                 "litellm_provider": "openai", "mode": "chat", "max_tokens": 8192, "max_input_tokens": 8192,
                 "max_output_tokens": 8192}
        cost_map[model] = entry
        cost_map[f"openai/{model}"] = entry
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / FILE_NAME
    path.write_text(json.dumps(cost_map))
    return path


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m workbench.tracking.price_map TEAM_YAML OUT_DIR", file=sys.stderr)
        return 2
    try:
        spec = load_spec(args[0])
        path = write_price_map(spec.prices, args[1])
    except ConfigError as exc:
        print(f"price_map: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
