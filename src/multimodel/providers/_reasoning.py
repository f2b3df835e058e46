"""OpenAI's ``reasoning_effort`` in the other wire formats' terms: Anthropic's extended thinking
(``thinking.budget_tokens``) and Gemini's ``thinkingConfig`` (``thinkingBudget`` on 2.5 models,
``thinkingLevel`` on Gemini 3 and later).

The budgets are LiteLLM's defaults, so that a configuration moved from LiteLLM thinks as much
as it did; Anthropic's floor of 1,024 budget tokens lifts ``minimal`` to it. The table is in
``docs/migration/openai-sdk.md``.
"""

from __future__ import annotations

import re

from ..errors import InvalidRequestError

__all__ = ["ANTHROPIC_MIN_BUDGET", "anthropic_thinking", "gemini_thinking"]

# effort -> thinking tokens (LiteLLM's DEFAULT_REASONING_EFFORT_*_THINKING_BUDGET)
_BUDGETS = {"none": 0, "minimal": 128, "low": 1024, "medium": 2048, "high": 4096}

ANTHROPIC_MIN_BUDGET = 1024
"""Anthropic refuses a smaller ``budget_tokens``."""

# Gemini 3 and later take levels; they cannot switch thinking off, so "none" asks the least.
_GEMINI_LEVELS = {
    "none": "minimal",
    "minimal": "minimal",
    "low": "low",
    "medium": "medium",
    "high": "high",
}
_LEVELLED = re.compile(r"(?:^|/)gemini-(?:[3-9]|\d\d)")


def _effort(value: object, provider: str) -> str:
    if isinstance(value, str) and value in _BUDGETS:
        return value
    raise InvalidRequestError(
        f"reasoning_effort {value!r} has no equivalent on {provider}; use one of "
        f"{', '.join(map(repr, _BUDGETS))}",
        field="reasoning_effort",
    )


def anthropic_thinking(value: object, max_tokens: int) -> tuple[dict[str, object] | None, int]:
    """The ``thinking`` block for ``reasoning_effort=value`` (``None``: "none", no thinking) and
    the ``max_tokens`` to send with it.

    ``max_tokens`` covers thinking and answer on both sides (OpenAI's reasoning tokens count
    against ``max_completion_tokens``); when it leaves no room above the budget (Anthropic
    needs ``budget_tokens < max_tokens``), the budget is added to it, so the caller's limit
    still bounds the answer.
    """
    effort = _effort(value, "anthropic")
    if effort == "none":
        return None, max_tokens
    budget = max(_BUDGETS[effort], ANTHROPIC_MIN_BUDGET)
    if max_tokens <= budget:
        max_tokens += budget
    return {"type": "enabled", "budget_tokens": budget}, max_tokens


def gemini_thinking(value: object, wire_model: str) -> dict[str, object]:
    """The ``generationConfig.thinkingConfig`` for ``reasoning_effort=value`` on ``wire_model``:
    ``thinkingLevel`` for Gemini 3 and later, else ``thinkingBudget`` (0 switches it off)."""
    effort = _effort(value, "gemini")
    if _LEVELLED.search(wire_model):
        return {"thinkingLevel": _GEMINI_LEVELS[effort]}
    return {"thinkingBudget": _BUDGETS[effort]}
