"""judge_mode="logprobs": a 1-5 judge's score as the probability-weighted mean of the score tokens.

The judge is asked for one digit and generates one token; from that token's top log-probabilities, the
probability of each of "1".."5" (any spacing) is summed, renormalised over the five, and averaged:
sum(d * p(d)) / sum(p(d)). One short forward pass, nothing to parse, and a graded value (3.4 says more than
"3"). It needs a provider that returns logprobs (`local/...`, OpenAI-compatible APIs); one that does not is
reported per row, as a parse failure would be.
"""

from __future__ import annotations

import math
from typing import Any

from workbench.errors import WorkbenchError
from workbench.evals.concurrency import limited
from workbench.gateway import client

__all__ = ["TOP_LOGPROBS", "digit_prompt", "expected_score", "judge_by_logprobs"]

TOP_LOGPROBS = 20
DIGIT_INSTRUCTION = "Reply with a single digit from 1 to 5 and nothing else."
_JSON_INSTRUCTION = "Reply with JSON only"


def digit_prompt(prompt: str) -> str:
    """The judge's prompt, asking for one digit instead of JSON with a rationale."""
    head = prompt.split(_JSON_INSTRUCTION, 1)[0].rstrip()
    return f"{head} {DIGIT_INSTRUCTION}"


def expected_score(tokens: list[dict[str, Any]] | None, low: int = 1, high: int = 5) -> tuple[float | None, str]:
    """(probability-weighted score, a note) from the first generated token's top logprobs; None when no score
    token is among them."""
    if not tokens:
        return None, "the provider returned no logprobs: use judge_mode='parse' with this judge"
    first = tokens[0]
    candidates = first.get("top_logprobs") or [first]
    mass = {d: 0.0 for d in range(low, high + 1)}
    for candidate in candidates:
        text = str(candidate.get("token") or "").strip()
        logprob = candidate.get("logprob")
        if text.isdigit() and low <= int(text) <= high and isinstance(logprob, int | float):
            mass[int(text)] += math.exp(logprob)
    total = sum(mass.values())
    if total <= 0:
        seen = ", ".join(repr(str(c.get("token"))) for c in candidates[:8])
        return None, f"no score token {low}-{high} among the top {len(candidates)} tokens ({seen})"
    value = sum(d * p for d, p in mass.items()) / total
    shares = " ".join(f"{d}:{p / total:.2f}" for d, p in mass.items())
    return value, f"probability-weighted over the score tokens ({shares}; they hold {total:.0%} of the mass)"


def judge_by_logprobs(model: str, prompt: str) -> tuple[float | None, str, float, str | None]:
    """(score or None, rationale or why not, cost, trace id) of one judging read from logprobs."""
    try:
        response = limited(lambda: client.complete(digit_prompt(prompt), model, temperature=0, max_tokens=1,
                                                   logprobs=True, top_logprobs=TOP_LOGPROBS,
                                                   tags={"workbench.role": "judge"}))
    except WorkbenchError as exc:
        return None, f"judge {model} failed: {exc}"[:1000], 0.0, None
    value, note = expected_score(response.logprobs)
    if value is None:
        note = f"{note}; answer {response.text!r:.200}"
    return value, note, response.cost_usd or 0.0, response.trace_id
