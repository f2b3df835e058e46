"""07 - Spend limits with alerts: a Budget that fires, then blocks.

``Budget(name=..., limit=USD, window="hour"|"day"|"month", alert_at=0.5)`` counts the spend of
every request (catalog prices x real token usage). Crossing ``alert_at`` x limit fires one
``budget_alert`` event per window (``client.on("budget_alert", fn)``); once the next request's
estimated cost no longer fits under the hard limit, the call raises ``BudgetExceeded`` before
anything is sent.

Runs against a bundled mock provider by default (no API keys, no network): it reports 2,000
output tokens per answer on gpt-4.1 (about $0.018 each) against a $0.05 daily budget. With
OPENAI_API_KEY set it uses gpt-4o-mini with a $0.0002 budget instead (at most 12 tiny calls).

    python examples/07_budget_alert.py
"""

from __future__ import annotations

import os
from decimal import Decimal

import multimodel as mm
from multimodel.testing import Behavior, MockDeployment, MockProviderServer, MockUsage


def alert(event: mm.BudgetAlert) -> None:
    """The alert callback: page someone, switch to cheaper models, ..."""
    print(
        f"  ALERT budget {event.budget!r}: spent ${float(event.spent):.4f} of "
        f"${float(event.limit or 0):.4f} this {event.window} "
        f"(threshold ${float(event.threshold):.4f})"
    )


def run(deployment: mm.Deployment, limit: Decimal, max_tokens: int) -> None:
    budget = mm.Budget(name="daily", limit=limit, window="day", alert_at=0.5)
    with mm.Client(deployments=[deployment], budgets=[budget]) as client:
        client.on("budget_alert", alert)
        for i in range(1, 13):
            try:
                r = client.query(f"Request {i}: say ok", max_tokens=max_tokens)
            except mm.BudgetExceeded as exc:
                print(f"request {i:>2}: blocked before sending: {exc}")
                break
            print(f"request {i:>2}: {r.usage.output_tokens} tokens, ${float(r.cost or 0):.6f}")


def main() -> None:
    if os.environ.get("OPENAI_API_KEY"):
        run(mm.Deployment(model="gpt-4o-mini", provider="openai"), Decimal("0.0002"), 20)
        return
    answer = Behavior(latency=0.01, usage=MockUsage(input_tokens=1000, output_tokens=2000))
    with MockProviderServer({"openai": MockDeployment("openai", answer)}) as server:
        print(f"mock OpenAI endpoint on {server.url}; budget $0.05 per day, alert at 50 %\n")
        run(
            mm.Deployment(
                model="gpt-4.1",
                provider="openai",
                base_url=server.base_url("openai"),
                api_key="mock-key",
            ),
            Decimal("0.05"),
            2000,
        )


if __name__ == "__main__":
    main()
