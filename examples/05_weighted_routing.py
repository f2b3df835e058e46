"""05 - Split traffic in fixed proportions: weighted routing.

A weights table such as ``{"gpt-4": 0.4, "claude-3.5": 0.3, "gemini-pro": 0.3}`` (the seed
configuration's style) is mapped to deployments: each name is looked up in the model catalog
("gpt-4" is an alias of gpt-4.1 on OpenAI, "claude-3.5" of claude-3.5-sonnet on Anthropic,
"gemini-pro" of gemini-2.5-pro on Gemini), and the ``weighted`` strategy splits one model group
across them. The split is smooth and deterministic (no long runs on one deployment).

Runs against bundled mock providers by default (no API keys, no network). With OPENAI_API_KEY,
ANTHROPIC_API_KEY and GEMINI_API_KEY all set, it sends 10 short real requests instead.

    python examples/05_weighted_routing.py
"""

from __future__ import annotations

import os
from collections import Counter

import multimodel as mm
from multimodel.catalog import default_catalog
from multimodel.testing import Behavior, MockDeployment, MockProviderServer

WEIGHTS = {"gpt-4": 0.4, "claude-3.5": 0.3, "gemini-pro": 0.3}
GROUP = "chat"  # the model group callers ask for
KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY")


def deployments(server: MockProviderServer | None) -> list[mm.Deployment]:
    """One deployment per weights entry, named after it, with the catalog's provider/model."""
    catalog = default_catalog()
    out = []
    for name in WEIGHTS:
        spec = catalog.get(name)  # alias -> ModelSpec (provider, API model id, prices)
        out.append(
            mm.Deployment(
                name=name,
                model=GROUP,
                provider=spec.provider,
                provider_model=spec.api_model,
                base_url=server.base_url(name) if server else None,
                api_key="mock-key" if server else None,
            )
        )
    return out


def run(fleet: list[mm.Deployment], requests: int) -> None:
    for d in fleet:
        print(f"  {d.name:<11} -> {d.provider}/{d.provider_model}  weight {WEIGHTS[d.name]}")
    strategy = {"name": "weighted", "weights": WEIGHTS}
    with mm.Client(deployments=fleet, strategy=strategy) as client:
        results = client.batch(
            [f"Say hi #{i}" for i in range(requests)], model=GROUP, concurrency=8, max_tokens=10
        )
    served = Counter(r.deployment for r in results if not isinstance(r, mm.MultimodelError))
    print(f"\n{requests} requests:")
    for name, weight in WEIGHTS.items():
        print(
            f"  {name:<11} {served[name]:>4}  {served[name] / requests:6.1%}  "
            f"(configured {weight:.0%})"
        )


def main() -> None:
    if all(os.environ.get(k) for k in KEYS):
        run(deployments(None), requests=10)
        return
    mocks = {
        name: MockDeployment(provider, Behavior(latency=0.002))
        for name, provider in zip(WEIGHTS, ("openai", "anthropic", "gemini"), strict=True)
    }
    with MockProviderServer(mocks) as server:
        print(f"mock providers on {server.url}:")
        run(deployments(server), requests=200)


if __name__ == "__main__":
    main()
