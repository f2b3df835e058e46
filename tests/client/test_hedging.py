"""Hedged requests: a slow first attempt is raced by a backup; the first answer wins."""

from __future__ import annotations

import time
from typing import Any

import pytest

import multimodel as mm
from multimodel.testing import Behavior, MockDeployment, MockProviderServer
from multimodel.testing.fixtures import MockServerFactory

KEY = "sk-test-hedge-0123456789"


def fleet(factory: MockServerFactory) -> tuple[MockProviderServer, list[mm.Deployment]]:
    server = factory(
        {
            "slow": MockDeployment(format="openai", behavior=Behavior(latency=1.0, text="slow")),
            "fast": MockDeployment(format="openai", behavior=Behavior(latency=0.0, text="fast")),
        }
    )
    deployments = [
        mm.Deployment(
            model="m", provider="openai", name=name, api_key=KEY, base_url=server.base_url(name)
        )
        for name in ("slow", "fast")
    ]
    return server, deployments


def options(deployments: list[mm.Deployment]) -> dict[str, Any]:
    return {
        "deployments": deployments,
        # round robin: the first call goes to "slow" first
        "strategy": "round_robin",
        "hedge": mm.HedgePolicy(min_delay=0.05, max_extra=1.0),
    }


def test_sync_hedge_wins_with_backup(mock_server_factory: MockServerFactory) -> None:
    server, deployments = fleet(mock_server_factory)
    with mm.Client(**options(deployments)) as client:
        started = time.perf_counter()
        response = client.query("hi", model="m")
        elapsed = time.perf_counter() - started
    assert response.text == "fast"
    assert response.deployment == "fast"
    assert elapsed < 0.8  # did not wait for the slow one (1 s)
    # The primary was handed to a worker thread first; on a loaded machine its request may not
    # have reached the server before the client closed, so it is counted at most once.
    assert len(server.requests("slow")) <= 1
    assert len(server.requests("fast")) == 1


@pytest.mark.anyio
async def test_async_hedge_cancels_the_loser(mock_server_factory: MockServerFactory) -> None:
    _, deployments = fleet(mock_server_factory)
    async with mm.AsyncClient(**options(deployments)) as client:
        response = await client.query("hi", model="m")
        stats = client.tracker.get("slow")
        assert stats.in_flight == 0  # the loser was cancelled and released
        assert stats.failures == 0  # ... and not counted as a failure of "slow"
    assert response.deployment == "fast"
    outcomes = {a.deployment: a.outcome for a in response.trace.attempts}
    assert outcomes == {"fast": "ok", "slow": "abandoned"}


@pytest.mark.anyio
async def test_hedging_is_capped(mock_server_factory: MockServerFactory) -> None:
    server, deployments = fleet(mock_server_factory)
    opts = options(deployments)
    opts["hedge"] = mm.HedgePolicy(min_delay=0.05, max_extra=0.0)  # never hedge
    opts["timeout"] = 5.0
    async with mm.AsyncClient(**opts) as client:
        response = await client.query("hi", model="m")
    assert response.deployment == "slow"
    assert server.requests("fast") == []


def test_no_hedge_without_policy(mock_server_factory: MockServerFactory) -> None:
    server, deployments = fleet(mock_server_factory)
    with mm.Client(deployments=deployments, strategy="round_robin") as client:
        response = client.query("hi", model="m")
    assert response.deployment == "slow"
    assert server.requests("fast") == []
