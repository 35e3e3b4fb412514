"""`local/...`: causal LMs run in-process with transformers (the bundled SmolLM2, any HF id or folder, adapters).

    weights.py    where a name's weights come from; loading them; one shared copy per process
    generate.py   generation settings, chat prompts, generate and stream under one generation lock
    adapters.py   `local/<base>+adapter:<name>[@<version>]`: adapters stacked on the shared base
    resolvers.py  the registry that maps an adapter name to its folder (higher floors register into it)
    provider.py   the litellm CustomLLM that puts them behind `local/...` model strings

Nothing is imported here: the package face imports resolvers.py alone, without loading the model modules.
"""

__all__: list[str] = []
