"""01 - One query, and let multimodel choose the model: ``model="auto"``.

With ``model="auto"`` every configured deployment is a candidate; the ``intelligent`` strategy
scores them on cost, speed and quality (from the model catalog and live latency) and the
response says which one answered, what it cost and how long it took.

Runs against the bundled mock providers by default (no API keys, no network). When any of
OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY is set, it calls those providers instead
(real calls, real cost: a few hundred tokens).

    python examples/01_simple_query_auto.py
"""

from __future__ import annotations

import os

import multimodel as mm
from multimodel.testing import Behavior, MockDeployment, MockProviderServer

# deployment name: (provider = mock wire format, catalog model, provider's model id, key variable)
FLEET = {
    "openai": ("openai", "gpt-4o-mini", "gpt-4o-mini", "OPENAI_API_KEY"),
    "anthropic": ("anthropic", "claude-3.5-haiku", "claude-3-5-haiku-latest", "ANTHROPIC_API_KEY"),
    "gemini": ("gemini", "gemini-2.0-flash", "gemini-2.0-flash", "GEMINI_API_KEY"),
}
MOCK_ANSWER = (
    "Quantum computers use qubits, which can be 0 and 1 at once, to explore many "
    "possibilities in parallel; interference then amplifies the right answers."
)


def deployments(server: MockProviderServer | None) -> list[mm.Deployment]:
    """Real deployments for the keys that are set, or one per mock provider."""
    return [
        mm.Deployment(
            name=name,
            model=model,
            provider=provider,
            provider_model=wire,
            base_url=server.base_url(name) if server else None,
            api_key="mock-key" if server else None,
        )
        for name, (provider, model, wire, var) in FLEET.items()
        if server is not None or os.environ.get(var)
    ]


def run(fleet: list[mm.Deployment]) -> None:
    with mm.Client(deployments=fleet) as client:
        print("deployments:", ", ".join(f"{d.name} ({d.model})" for d in fleet))
        response = client.query(
            "Explain quantum computing in two sentences.", model="auto", max_tokens=120
        )
        print(f"\n{response.text}\n")
        cost = "unknown" if response.cost is None else f"${float(response.cost):.6f}"
        print(
            f"chosen: {response.deployment} ({response.model})  tokens: "
            f"{response.usage.total_tokens}  cost: {cost}  latency: {response.latency:.3f} s"
        )
        print("routing:", " -> ".join(response.trace.deployments()))


def main() -> None:
    if any(os.environ.get(var) for *_, var in FLEET.values()):
        run(deployments(None))
        return
    mocks = {
        "openai": MockDeployment("openai", Behavior(latency=0.05, text=MOCK_ANSWER)),
        "anthropic": MockDeployment("anthropic", Behavior(latency=0.08, text=MOCK_ANSWER)),
        "gemini": MockDeployment("gemini", Behavior(latency=0.03, text=MOCK_ANSWER)),
    }
    with MockProviderServer(mocks) as server:
        print(f"mock providers on {server.url} (set OPENAI_API_KEY etc. for real ones)")
        run(deployments(server))


if __name__ == "__main__":
    main()
