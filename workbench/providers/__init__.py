"""litellm custom providers: `fake/...` (a test double) and `local/...` (causal LMs run in-process).

    registry.py   which prefixes are ours, registering them with litellm, litellm imported quietly
    fake.py       `fake/echo`, `fake/fail`, `fake/script`... for tests and offline demos
    local/        the bundled SmolLM2, any Hugging Face id or folder, adapters stacked on a base

Nothing is imported here: the package face imports `providers.local.resolvers` at `import workbench`, which must
stay light.
"""

__all__: list[str] = []
