"""No starvation over real sockets: three deployments with the same latency, one fails its
first request once, then one query every 0.1 s (virtual: the injected clock skips the gaps
instead of sleeping). The one that failed must serve its share again within 15 s.

With ``adaptive``'s default cost a failure costs the time it takes (2 ms here), so the one that
failed comes back on its cost alone; with the former penalty (``error_penalty=30``) it loses
every comparison until the no-starvation probe brings it back, which the routing trace
explains."""

from __future__ import annotations

import time
from typing import Any

import pytest

import multimodel as mm
from multimodel.strategies.adaptive import Adaptive
from multimodel.testing import Behavior, MockDeployment, MockProviderServer
from multimodel.testing.fixtures import MockServerFactory

KEY = "sk-test-starvation-0123456789"
NAMES = ("a", "b", "c")
GAP = 0.1  # seconds between two queries
WINDOW = 15.0  # seconds after the failure in which c must be back
QUERIES = int(WINDOW / GAP)


class SkippingClock:
    """The real clocks, plus the idle gaps between queries that the test skips over."""

    def __init__(self) -> None:
        self.skipped = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.skipped

    def time(self) -> float:
        return time.time() + self.skipped


def server(factory: MockServerFactory) -> MockProviderServer:
    return factory(
        {
            name: MockDeployment(
                format="openai",
                behavior=Behavior(latency=0.002, script=[500] if name == "c" else []),
            )
            for name in NAMES
        }
    )


# The strategy, and whether the one that failed needs a probe to come back.
STRATEGIES = [
    pytest.param(lambda: "adaptive", False, id="adaptive"),
    pytest.param(lambda: Adaptive(error_penalty=30.0), True, id="former-penalty"),
]


def options(srv: MockProviderServer, clock: SkippingClock, strategy: object) -> dict[str, object]:
    return {
        "deployments": [
            mm.Deployment(
                model="m", provider="openai", name=n, api_key=KEY, base_url=srv.base_url(n)
            )
            for n in NAMES
        ],
        "strategy": strategy,
        "clock": clock,
        "retry": mm.RetryPolicy(max_retries=2, backoff_initial=0.001, backoff_max=0.002),
    }


def check(served_after: int, status: str, notes: list[str], probed: bool) -> None:
    share = served_after / QUERIES
    assert share >= 0.15, f"c served {served_after} of {QUERIES} queries after failing once"
    assert status == "healthy", status
    # The routing trace explains the probe that brought c back, when one did.
    probe = any(n.startswith("probing c: its last attempt failed (1 in a row") for n in notes)
    assert probe or not probed


@pytest.mark.parametrize(("strategy", "probed"), STRATEGIES)
def test_sync_single_failure_does_not_starve(
    mock_server_factory: MockServerFactory, strategy: Any, probed: bool
) -> None:
    srv = server(mock_server_factory)
    clock = SkippingClock()
    with mm.Client(**options(srv, clock, strategy())) as client:  # type: ignore[arg-type]
        c = client.tracker.get("c")
        while not c.failures:  # until c got (and failed) its first request
            client.query("hi", model="m")
            clock.skipped += GAP
        before = c.requests - c.failures
        notes: list[str] = []
        for _ in range(QUERIES):
            notes += client.query("hi", model="m").trace.notes
            clock.skipped += GAP
        check(c.requests - c.failures - before, client.status()["c"], notes, probed)


@pytest.mark.anyio
@pytest.mark.parametrize(("strategy", "probed"), STRATEGIES)
async def test_async_single_failure_does_not_starve(
    mock_server_factory: MockServerFactory, strategy: Any, probed: bool
) -> None:
    srv = server(mock_server_factory)
    clock = SkippingClock()
    async with mm.AsyncClient(**options(srv, clock, strategy())) as client:  # type: ignore[arg-type]
        c = client.tracker.get("c")
        while not c.failures:
            await client.query("hi", model="m")
            clock.skipped += GAP
        before = c.requests - c.failures
        notes: list[str] = []
        for _ in range(QUERIES):
            notes += (await client.query("hi", model="m")).trace.notes
            clock.skipped += GAP
        check(c.requests - c.failures - before, client.status()["c"], notes, probed)
