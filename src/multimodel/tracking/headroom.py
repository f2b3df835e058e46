"""Rate-limit headroom from a provider's response headers: how much of its request and token
budget a deployment has left, and until when that reading holds.

OpenAI (and Groq, Azure, most OpenAI-compatible servers) send
``x-ratelimit-limit-requests`` / ``x-ratelimit-remaining-requests`` /
``x-ratelimit-reset-requests`` and the same for ``-tokens``; Anthropic sends
``anthropic-ratelimit-requests-limit`` / ``-remaining`` / ``-reset`` and the same for
``tokens``, ``input-tokens`` and ``output-tokens``. The headroom is the smallest
``remaining / limit`` over the budgets a response reports, so a strategy can steer traffic away
from a deployment that is about to answer 429 *before* it does (the ``Retry-After`` hold only
follows a refusal).

Pure: headers and the wall clock in, numbers out.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..resilience.rate_limit import WINDOW, parse_reset

__all__ = ["parse_headroom"]

_OPENAI = "x-ratelimit-remaining-requests"
_ANTHROPIC = "anthropic-ratelimit-requests-remaining"
_OPENAI_KINDS = ("requests", "tokens")
_ANTHROPIC_KINDS = ("requests", "tokens", "input-tokens", "output-tokens")


def parse_headroom(
    headers: Mapping[str, str], now_wall: float | None = None
) -> tuple[float, float] | None:
    """``(fraction left, seconds it holds)`` from rate-limit headers, or ``None`` when the
    response reports no budget (the common case costs two header lookups).

    The fraction is the smallest ``remaining / limit`` over the budgets reported (a budget
    without its limit counts only when nothing is left: 0); it holds until that budget's
    reset (at most a minute, the providers' window, when no reset is given)."""
    if _OPENAI in headers or "x-ratelimit-remaining-tokens" in headers:
        names = [
            (f"x-ratelimit-limit-{k}", f"x-ratelimit-remaining-{k}", f"x-ratelimit-reset-{k}")
            for k in _OPENAI_KINDS
        ]
    elif _ANTHROPIC in headers or "anthropic-ratelimit-tokens-remaining" in headers:
        names = [
            (
                f"anthropic-ratelimit-{k}-limit",
                f"anthropic-ratelimit-{k}-remaining",
                f"anthropic-ratelimit-{k}-reset",
            )
            for k in _ANTHROPIC_KINDS
        ]
    else:
        return None
    lowest: tuple[float, float] | None = None
    for limit_name, remaining_name, reset_name in names:
        remaining = _number(headers.get(remaining_name))
        if remaining is None:
            continue
        limit = _number(headers.get(limit_name))
        if limit is not None and limit > 0:
            fraction = max(0.0, min(1.0, remaining / limit))
        elif remaining <= 0:
            fraction = 0.0
        else:
            continue
        reset = parse_reset(headers.get(reset_name), now_wall=now_wall)
        holds = WINDOW if reset is None else min(reset, WINDOW)
        if lowest is None or fraction < lowest[0]:
            lowest = (fraction, holds)
    return lowest


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None
