"""03 - Send a batch of requests, a few at a time, results in input order.

``client.batch(items, concurrency=N)`` takes prompts, message lists or dicts with per-item
parameters; a failed item comes back as its exception instead of failing the whole batch.

Runs against two bundled mock providers by default (no API keys, no network); the first request
to ``primary`` fails with a 500, and the client retries it on ``backup``. With OPENAI_API_KEY set it
uses gpt-4o-mini on OpenAI instead (six short real calls).

    python examples/03_batch.py
"""

from __future__ import annotations

import os
from decimal import Decimal

import multimodel as mm
from multimodel.testing import Behavior, MockDeployment, MockProviderServer

MODEL = "gpt-4o-mini"
ITEMS = [
    "Translate to Spanish: Hello world",
    "Translate to French: Good morning",
    "Summarize in five words: The router picks a deployment for every request.",
    {"prompt": "Name three prime numbers.", "max_tokens": 20},
    [
        {"role": "system", "content": "Answer with one word."},
        {"role": "user", "content": "Capital of Japan?"},
    ],
    "Write a one-line slogan for a load balancer.",
]


def run(fleet: list[mm.Deployment]) -> None:
    with mm.Client(deployments=fleet, strategy="round_robin") as client:
        results = client.batch(ITEMS, model=MODEL, concurrency=3, max_tokens=60)
    total = Decimal(0)
    for i, result in enumerate(results, 1):
        if isinstance(result, mm.MultimodelError):
            print(f"{i}. FAILED: {result}")
            continue
        total += result.cost or 0
        tried = " -> ".join(result.trace.deployments())
        print(f"{i}. [{tried}] {result.text[:70]}")
    ok = sum(not isinstance(r, mm.MultimodelError) for r in results)
    print(f"\n{ok}/{len(results)} answered, total cost ${float(total):.6f}")


def main() -> None:
    if os.environ.get("OPENAI_API_KEY"):
        run([mm.Deployment(model=MODEL, provider="openai")])
        return
    mocks = {
        "primary": MockDeployment("openai", Behavior(echo=True, latency=0.02, script=[500])),
        "backup": MockDeployment("openai", Behavior(echo=True, latency=0.04)),
    }
    with MockProviderServer(mocks) as server:
        print(f"two mock OpenAI endpoints on {server.url} (they echo the prompt)\n")
        run(
            [
                mm.Deployment(
                    name=name,
                    model=MODEL,
                    provider="openai",
                    base_url=server.base_url(name),
                    api_key="mock-key",
                )
                for name in mocks
            ]
        )


if __name__ == "__main__":
    main()
