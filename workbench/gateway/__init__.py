"""The unified adapter over litellm: complete / acomplete / stream, fallbacks, routes, cache, ledger, budgets."""
