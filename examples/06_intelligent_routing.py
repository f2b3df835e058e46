"""06 - Intelligent routing: trade cost against speed and quality.

The ``intelligent`` strategy scores every candidate on three factors, normalized across the
candidates and weighted by you: ``cost`` (catalog prices for this request), ``performance``
(live latency) and ``quality`` (the catalog's score), times recent availability. Hard limits
(``require``, ``min_context``, ``max_cost_per_request``, ``min_quality``) exclude candidates first.
With ``model="auto"`` every deployment competes.

The same three deployments are routed with three factor settings; each favours a different one.
Runs against bundled mock providers by default (no API keys, no network; the cheap model is
also the fastest here). With OPENAI_API_KEY, ANTHROPIC_API_KEY and GEMINI_API_KEY all set, it
sends 3 short real requests per setting instead.

    python examples/06_intelligent_routing.py
"""

from __future__ import annotations

import os
from collections import Counter

import multimodel as mm
from multimodel.testing import Behavior, MockDeployment, MockProviderServer

# name: (provider, catalog model, provider's model id, mock latency in seconds)
FLEET = {
    "gpt-4o-mini": ("openai", "gpt-4o-mini", "gpt-4o-mini", 0.02),
    "claude-sonnet-4.5": ("anthropic", "claude-sonnet-4.5", "claude-sonnet-4-5", 0.08),
    "gemini-2.5-flash": ("gemini", "gemini-2.5-flash", "gemini-2.5-flash", 0.06),
}
PROFILES = {
    "cheapest": {"cost": 0.8, "performance": 0.1, "quality": 0.1},
    "best answers": {"cost": 0.1, "performance": 0.1, "quality": 0.8},
    "balanced": {"cost": 0.3, "performance": 0.4, "quality": 0.3},
}
KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY")


def deployments(server: MockProviderServer | None) -> list[mm.Deployment]:
    return [
        mm.Deployment(
            name=name,
            model=model,
            provider=provider,
            provider_model=wire,
            base_url=server.base_url(name) if server else None,
            api_key="mock-key" if server else None,
        )
        for name, (provider, model, wire, _) in FLEET.items()
    ]


def run(fleet: list[mm.Deployment], requests: int) -> None:
    print(f"{'profile':<13} {'cost/performance/quality':<25} share of {requests} requests")
    for label, factors in PROFILES.items():
        strategy = {"name": "intelligent", "factors": factors, "seed": 1}
        with mm.Client(deployments=fleet, strategy=strategy) as client:
            served: Counter[str] = Counter()
            cost = 0.0
            for i in range(requests):
                r = client.query(f"Question {i}: what is 2+2?", model="auto", max_tokens=20)
                served[r.deployment] += 1
                cost += float(r.cost or 0)
        share = ", ".join(f"{name} {n / requests:.0%}" for name, n in served.most_common())
        weights = "/".join(f"{v:.1f}" for v in factors.values())
        print(f"{label:<13} {weights:<25} {share}  (${cost:.5f})")


def main() -> None:
    if all(os.environ.get(k) for k in KEYS):
        run(deployments(None), requests=3)
        return
    mocks = {
        name: MockDeployment(provider, Behavior(latency=latency, text="4"))
        for name, (provider, _, _, latency) in FLEET.items()
    }
    with MockProviderServer(mocks) as server:
        print(f"mock providers on {server.url}\n")
        run(deployments(server), requests=12)


if __name__ == "__main__":
    main()
