"""`local/...`: causal LMs run in-process with transformers (the bundled SmolLM2, any HF id or folder, adapters).

    weights.py    where a name's weights come from; loading them; one shared copy per process
    progress.py   listeners for slow one-time work (converting the bundled GGUF); the notebook subscribes
    decoder.py    the fast path: a hand-written Llama decoder (fp16 weights via fbgemm, a KV cache)
    generate.py   generation settings, chat prompts, generate and stream under one generation lock
    logprobs.py   token log-probabilities in OpenAI's shape (a judge's logprobs mode)
    adapters.py   `local/<base>+adapter:<name>[@<version>]`: adapters stacked on the shared base
    resolvers.py  the registry that maps an adapter name to its folder (higher floors register into it)
    provider.py   the litellm CustomLLM that puts them behind `local/...` model strings

Nothing is imported here: the package face imports resolvers.py alone, without loading the model modules.
"""

__all__: list[str] = []
