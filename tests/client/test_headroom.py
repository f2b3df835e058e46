"""Rate-limit headroom: a deployment whose own headers say its budget is spent gets no more
traffic until the budget resets, so its 429 never happens (both clients, at the HTTP boundary).

``fast`` answers at once and is preferred; it allows ``LIMIT`` requests per window and says how
many are left (``x-ratelimit-remaining-requests``), answering 429 past them; ``slow`` (40 ms, no
limit) takes the rest. Without headroom in the score, request ``LIMIT + 1`` goes to ``fast`` and
is refused (then retried on ``slow``).
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

import multimodel as mm

LIMIT = 10
KEY = "sk-test-headroom-0123456789"


def body(model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": model},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1},
    }


class Provider:
    """Two hosts: ``fast`` with a request budget it reports, ``slow`` without one."""

    def __init__(self) -> None:
        self.used = 0
        self.refused = 0
        self.served = {"fast": 0, "slow": 0}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host.split(".")[0]
        if host == "slow":
            time.sleep(0.04)
            self.served["slow"] += 1
            return httpx.Response(200, json=body("slow"))
        if self.used >= LIMIT:
            self.refused += 1
            return httpx.Response(429, json={"error": {"message": "rate"}}, headers=self._budget())
        self.used += 1
        self.served["fast"] += 1
        return httpx.Response(200, json=body("fast"), headers=self._budget())

    def _budget(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit-requests": str(LIMIT),
            "x-ratelimit-remaining-requests": str(LIMIT - self.used),
            "x-ratelimit-reset-requests": "60s",
            "retry-after": "60",
        }


def client_kwargs(provider: Provider) -> dict[str, Any]:
    return {
        "deployments": [
            mm.Deployment(
                model="m", provider="openai", api_key=KEY, name=n, base_url=f"https://{n}.test/v1"
            )
            for n in ("fast", "slow")
        ],
        "transport": httpx.MockTransport(provider),
        "strategy": {"name": "adaptive", "seed": 1},
    }


def check(provider: Provider, answers: list[str]) -> None:
    assert provider.refused == 0  # never sent past the budget it reported
    assert provider.served["fast"] == LIMIT  # ... and all of it was used first
    assert answers.count("slow") == len(answers) - LIMIT


def test_sync_spent_budget_steers_traffic_before_a_429() -> None:
    provider = Provider()
    with mm.Client(**client_kwargs(provider)) as client:
        answers = [client.query("hi").text for _ in range(LIMIT + 8)]
    check(provider, answers)


@pytest.mark.anyio
async def test_async_spent_budget_steers_traffic_before_a_429() -> None:
    provider = Provider()
    async with mm.AsyncClient(**client_kwargs(provider)) as client:
        answers = [(await client.query("hi")).text for _ in range(LIMIT + 8)]
    check(provider, answers)
