"""A deployment that wrote long answers is not mistaken for a slow one (both clients, at the
HTTP boundary, on an injected clock).

``snappy`` has a low fixed overhead but writes slowly (0.15 s + 4 ms per token), ``steady`` the
opposite (0.6 s + 1.5 ms per token); each answer is as long as the request's ``max_tokens``.
Short requests (50 tokens: 0.35 s against 0.68 s) belong on ``snappy``, long ones (1,500
tokens: 6.15 s against 2.85 s) on ``steady``. Each answer advances the client's clock by what
the deployment would take, so the router measures exactly those latencies. Scored on its
average latency (short and long answers mixed) ``adaptive`` sent most short requests to the
deployment that is slow for them; with the latency fitted against output tokens
(:mod:`multimodel.tracking.lengths`) each length goes where it is fastest.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import httpx
import pytest

import multimodel as mm

KEY = "sk-test-lengths-0123456789"
TIMING = {"snappy": (0.15, 0.004), "steady": (0.6, 0.0015)}
SHORT, LONG = 50, 1500
# 70 % short, 30 % long, in a fixed order (three short, then a long, then ...).
LENGTHS = [LONG if i % 10 in (3, 6, 9) else SHORT for i in range(240)]
MEASURED = 120  # the requests after this many are checked


class Provider:
    """Answers ``max_tokens`` tokens and moves the clock by the deployment's time for them."""

    def __init__(self, clock: mm.ManualClock) -> None:
        self.clock = clock
        self.served: list[tuple[str, int]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host.split(".")[0]
        sent = json.loads(request.content)
        tokens = int(sent.get("max_completion_tokens") or sent["max_tokens"])
        overhead, per_token = TIMING[host]
        self.clock.advance(overhead + per_token * tokens)
        self.served.append((host, tokens))
        return httpx.Response(
            200,
            json={
                "id": "chatcmpl-1",
                "model": host,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": host},
                        "finish_reason": "length",
                    }
                ],
                "usage": {"prompt_tokens": 3, "completion_tokens": tokens},
            },
        )


def client_kwargs(provider: Provider) -> dict[str, Any]:
    return {
        "deployments": [
            mm.Deployment(
                model="m", provider="openai", api_key=KEY, name=n, base_url=f"https://{n}.test/v1"
            )
            for n in TIMING
        ],
        "transport": httpx.MockTransport(provider),
        "strategy": {"name": "adaptive", "seed": 1},
        "clock": provider.clock,
    }


def check(provider: Provider) -> None:
    assert len(provider.served) == len(LENGTHS)
    late = Counter(provider.served[MEASURED:])
    short = late[("snappy", SHORT)] + late[("steady", SHORT)]
    long = late[("snappy", LONG)] + late[("steady", LONG)]
    assert late[("snappy", SHORT)] >= 0.9 * short, late
    assert late[("steady", LONG)] >= 0.9 * long, late


def test_sync_long_answers_are_not_mistaken_for_a_slow_deployment() -> None:
    provider = Provider(mm.ManualClock())
    with mm.Client(**client_kwargs(provider)) as client:
        for tokens in LENGTHS:
            client.query("hi", max_tokens=tokens)
    check(provider)


@pytest.mark.anyio
async def test_async_long_answers_are_not_mistaken_for_a_slow_deployment() -> None:
    provider = Provider(mm.ManualClock())
    async with mm.AsyncClient(**client_kwargs(provider)) as client:
        for tokens in LENGTHS:
            await client.query("hi", max_tokens=tokens)
    check(provider)
