"""The demo behind `make demo`: a short offline tour of the gateway with the fake provider."""

from __future__ import annotations

__all__ = ["run_demo"]


def run_demo() -> int:
    import workbench as wb
    from workbench.gateway.prices import format_usd

    print("1. A call through the gateway (fake/echo answers offline):")
    answer = wb.complete("What does a gateway do?", "fake/echo", tags={"project": "demo"})
    print(f"   {answer.text!r} from {answer.model_used}, {answer.total_tokens} tokens, {format_usd(answer.cost_usd)}")
    print("2. The provider is down; the fallback answers:")
    answer = wb.complete("Still there?", "fake/fail", fallbacks=["fake/echo"], tags={"project": "demo"})
    print(f"   answered by {answer.model_used} after {len(answer.attempts)} failed attempt(s)")
    print("3. The same call again is a cache hit:")
    again = wb.complete("What does a gateway do?", "fake/echo", tags={"project": "demo"})
    print(f"   cache hit: {again.cache_hit}, cost {format_usd(again.cost_usd)}")
    print("4. Spend by project:")
    print(wb.spend(by="project").to_string())
    return 0
