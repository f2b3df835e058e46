"""04 - React to model status changes: callbacks and an async iterator.

Every deployment has a health status (``healthy``, ``degraded``, ``down``) driven by its
circuit breaker. ``client.on("model_status_change", fn)`` calls ``fn`` on each change, and
``async for event in client.events.iterate()`` delivers the same events in an async task
(the in-process replacement for a status WebSocket).

Runs against bundled mock providers (no API keys, no network): ``flaky`` answers its first three
requests with 500s, so its breaker opens (``down``), waits out a short cooldown, lets one probe
through (``degraded``) and closes again (``healthy``); ``steady`` serves meanwhile. The events
come from the mock by design, so this example never calls real providers.

    python examples/04_model_status_events.py
"""

from __future__ import annotations

import anyio
import anyio.lowlevel

import multimodel as mm
from multimodel.testing import Behavior, MockDeployment, MockProviderServer

MODEL = "gpt-4o-mini"


async def watch(client: mm.AsyncClient, seen: list[str]) -> None:
    """Consume status events as they happen (runs until cancelled)."""
    async for event in client.events.iterate():
        seen.append(f"{event.deployment}: {event.previous} -> {event.status}")
        print(
            f"  [iterator] {event.deployment:<7} {event.previous:>8} -> {event.status:<8} "
            f"({event.reason})"
        )


async def main() -> None:
    mocks = {
        "steady": MockDeployment("openai", Behavior(latency=0.01)),
        "flaky": MockDeployment("openai", Behavior(latency=0.01, script=[500] * 3)),
    }
    with MockProviderServer(mocks) as server:
        deployments = [
            mm.Deployment(
                name=name,
                model=MODEL,
                provider="openai",
                base_url=server.base_url(name),
                api_key="mock-key",
            )
            for name in mocks
        ]
        async with mm.AsyncClient(
            deployments=deployments,
            strategy="round_robin",
            circuit=mm.CircuitPolicy(failure_threshold=3, cooldown=0.3),
            retry=mm.RetryPolicy(max_retries=2, backoff_initial=0.01, backoff_max=0.05),
        ) as client:
            client.on(
                "model_status_change",
                lambda e: print(f"  [callback] {e.deployment} is now {e.status}"),
            )
            seen: list[str] = []
            async with anyio.create_task_group() as tg:
                tg.start_soon(watch, client, seen)
                await anyio.lowlevel.checkpoint()  # let the iterator subscribe first
                served: dict[str, int] = {}
                for i in range(30):
                    response = await client.query(f"request {i}", model=MODEL, max_tokens=16)
                    served[response.deployment] = served.get(response.deployment, 0) + 1
                    await anyio.sleep(0.03)
                await anyio.sleep(0.05)
                tg.cancel_scope.cancel()
            print(f"\n30 requests, all answered: {served}")
            print(f"{len(seen)} status change(s) seen by the iterator; now: {client.status()}")


if __name__ == "__main__":
    anyio.run(main)
