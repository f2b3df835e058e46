"""The live tracker: exact counters under threads and tasks, bounded memory, typed snapshots."""

from __future__ import annotations

import threading
from decimal import Decimal

import anyio
import anyio.lowlevel
import pytest

from multimodel import ManualClock
from multimodel.tracking import Outcome, Tracker
from multimodel.tracking.stats import MAX_GROUPS, OTHER
from multimodel.types import Usage


def outcome(i: int, *, ok: bool = True, deployment: str = "d", **kw: object) -> Outcome:
    return Outcome(
        deployment=deployment,
        model="m",
        provider="p",
        ok=ok,
        latency=0.01 + (i % 100) / 1000,
        started_at=0.0,
        usage=Usage(input_tokens=3, output_tokens=2),
        cost=Decimal("0.001"),
        error=None if ok else "ServerError",
        **kw,  # type: ignore[arg-type]
    )


def test_counters_exact_under_32_threads() -> None:
    clock = ManualClock()
    tracker = Tracker(clock.monotonic)
    per_thread = 2_000

    def work(t: int) -> None:
        for i in range(per_thread):
            tracker.started("d")
            tracker.record(outcome(i, ok=(i % 10 != 0), user=f"u{t % 4}", tags=("x",)))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    snap = tracker.snapshot()
    d = snap.deployments["d"]
    total = 32 * per_thread
    assert d.requests == total
    assert d.failures == total // 10
    assert d.successes == total - total // 10
    assert d.errors == {"ServerError": total // 10}
    assert d.in_flight == 0
    assert d.input_tokens == 3 * total
    assert d.output_tokens == 2 * total
    assert d.cost == Decimal("0.001") * total
    assert sum(u.requests for u in snap.users.values()) == total
    assert snap.tags["x"].requests == total
    assert snap.models["m"].requests == total
    assert snap.providers["p"].requests == total


@pytest.mark.anyio
async def test_counters_exact_under_1000_tasks() -> None:
    clock = ManualClock()
    tracker = Tracker(clock.monotonic)

    async def work(i: int) -> None:
        tracker.started("d")
        await anyio.lowlevel.checkpoint()
        tracker.record(outcome(i))

    async with anyio.create_task_group() as group:
        for i in range(1_000):
            group.start_soon(work, i)
    d = tracker.snapshot().deployments["d"]
    assert d.requests == 1_000
    assert d.in_flight == 0


def test_quantiles_ewma_and_availability() -> None:
    clock = ManualClock()
    tracker = Tracker(clock.monotonic)
    for i in range(1_000):
        tracker.started("d")
        tracker.record(outcome(i))
    for _ in range(250):
        tracker.started("d")
        tracker.record(outcome(0, ok=False))
    d = tracker.snapshot().deployments["d"]
    exact = sorted(0.01 + (i % 100) / 1000 for i in range(1_000))
    for q, value in ((0.5, d.latency_p50), (0.95, d.latency_p95), (0.99, d.latency_p99)):
        truth = exact[int(q * (len(exact) - 1))]
        assert value is not None
        assert abs(value - truth) / truth <= 0.02
    assert d.availability == pytest.approx(1_000 / 1_250)
    assert d.request_rate["1m"] == pytest.approx(1_250 / 60)
    clock.advance(400)  # past the 5-minute window: availability is about recent traffic
    assert tracker.snapshot().deployments["d"].availability == 1.0


def test_group_cells_are_bounded() -> None:
    clock = ManualClock()
    tracker = Tracker(clock.monotonic)
    for i in range(MAX_GROUPS + 500):
        tracker.record(outcome(i, user=f"user-{i}"))
    users = tracker.snapshot().users
    assert len(users) <= MAX_GROUPS
    assert OTHER in users
    assert sum(u.requests for u in users.values()) == MAX_GROUPS + 500


def test_cached_and_abandoned_outcomes() -> None:
    tracker = Tracker(ManualClock().monotonic)
    tracker.record(outcome(0, cached=True))
    tracker.started("d")
    tracker.record(
        Outcome(
            deployment="d",
            model="m",
            provider="p",
            ok=False,
            latency=0.1,
            started_at=0.0,
            error="Abandoned",
            cost=Decimal("0.002"),
        )
    )
    d = tracker.snapshot().deployments["d"]
    assert d.cached == 1
    assert d.requests == 1  # the abandoned hedge is not a request ...
    assert d.failures == 0  # ... nor a failure
    assert d.cost == Decimal("0.003")  # ... but its prompt cost counts
    assert d.in_flight == 0
