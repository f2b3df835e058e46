"""Routing and resilience through the real clients (sync, and async on asyncio and trio)."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import AsyncGenerator
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from typing import Any

import anyio
import anyio.lowlevel
import pytest

import multimodel as mm
from multimodel import errors
from multimodel.events import ModelStatusEvent
from multimodel.resilience.circuit import CircuitPolicy
from multimodel.testing.fake import FakeProvider, FakeReply

KEY = "sk-test-routing-0123456789"
FAST_RETRY = mm.RetryPolicy(backoff_initial=0.001, backoff_max=0.002)


def dep(name: str, model: str = "m", **kw: Any) -> mm.Deployment:
    return mm.Deployment(
        model=model,
        provider="openai",
        name=name,
        base_url=f"https://{name}.test/v1",
        api_key=KEY,
        **kw,
    )


def hosts(fake: FakeProvider) -> list[str]:
    return [h.split(".")[0] for h in fake.hosts()]


def sync_client(
    fake: FakeProvider, deployments: list[mm.Deployment] | None = None, **kw: Any
) -> mm.Client:
    kw.setdefault("strategy", "round_robin")
    kw.setdefault("retry", FAST_RETRY)
    return mm.Client(deployments=deployments or [dep("a"), dep("b")], transport=fake, **kw)


def async_client(
    fake: FakeProvider, deployments: list[mm.Deployment] | None = None, **kw: Any
) -> mm.AsyncClient:
    kw.setdefault("strategy", "round_robin")
    kw.setdefault("retry", FAST_RETRY)
    return mm.AsyncClient(deployments=deployments or [dep("a"), dep("b")], transport=fake, **kw)


# -- circuit breaker across calls --------------------------------------------------------------


def check_breaker_skips(fake: FakeProvider, traces: list[Any]) -> None:
    # Call 1: a fails (1 of 2), b serves. Call 2: a fails again: open; b serves.
    # Call 3: a is skipped without being tried.
    assert hosts(fake) == ["a", "b", "a", "b", "b"]
    assert "a" not in traces[0].excluded
    assert traces[2].deployments() == ["b"]
    assert traces[2].excluded["a"].startswith("cooldown")


def test_breaker_opens_across_calls_sync() -> None:
    fake = FakeProvider()
    fake.script("a.test", [500, 500])
    with sync_client(fake, circuit=CircuitPolicy(failure_threshold=2, cooldown=30)) as client:
        traces = [client.query("hi", model="m").trace for _ in range(3)]
        assert client.status() == {"a": "down", "b": "healthy"}
    check_breaker_skips(fake, traces)


@pytest.mark.anyio
async def test_breaker_opens_across_calls_async() -> None:
    fake = FakeProvider()
    fake.script("a.test", [500, 500])
    async with async_client(fake, circuit=CircuitPolicy(failure_threshold=2, cooldown=30)) as c:
        traces = [(await c.query("hi", model="m")).trace for _ in range(3)]
        assert c.status() == {"a": "down", "b": "healthy"}
    check_breaker_skips(fake, traces)


FAIL_FAST = CircuitPolicy(failure_threshold=1, cooldown=30, when_all_unavailable="fail")


def check_all_in_cooldown(exc: errors.NoDeploymentAvailable) -> None:
    assert set(exc.exclusions) == {"a", "b"}
    assert all(reason.startswith("cooldown") for reason in exc.exclusions.values())
    assert "a: cooldown" in str(exc) and "b: cooldown" in str(exc)
    assert exc.retry_at is not None
    assert exc.trace is not None and exc.trace.attempts == []


def test_all_in_cooldown_fail_sync() -> None:
    fake = FakeProvider()
    fake.script("a.test", [500])
    fake.script("b.test", [500])
    with sync_client(fake, circuit=FAIL_FAST) as client:
        with pytest.raises(errors.AllAttemptsFailed):
            client.query("hi", model="m")
        sent = len(fake.requests)
        with pytest.raises(errors.NoDeploymentAvailable) as info:
            client.query("hi", model="m")
        assert len(fake.requests) == sent  # nothing was sent
    check_all_in_cooldown(info.value)


@pytest.mark.anyio
async def test_all_in_cooldown_fail_async() -> None:
    fake = FakeProvider()
    fake.script("a.test", [500])
    fake.script("b.test", [500])
    async with async_client(fake, circuit=FAIL_FAST) as client:
        with pytest.raises(errors.AllAttemptsFailed):
            await client.query("hi", model="m")
        sent = len(fake.requests)
        with pytest.raises(errors.NoDeploymentAvailable) as info:
            await client.query("hi", model="m")
        assert len(fake.requests) == sent
    check_all_in_cooldown(info.value)


WAIT = CircuitPolicy(failure_threshold=1, cooldown=0.05, when_all_unavailable="wait")


def check_waited(response: mm.ChatResponse, elapsed: float) -> None:
    assert response.text == "ok"
    trace = response.trace
    assert trace is not None
    assert len(trace.sleeps) == 1
    assert 0.0 < trace.sleeps[0] <= 0.05
    assert elapsed < 2.0  # generous: it waited for the cooldown, not for MAX_WAIT


def test_all_in_cooldown_wait_sync() -> None:
    fake = FakeProvider()
    fake.script("a.test", [500])
    fake.script("b.test", [500])
    with sync_client(fake, circuit=WAIT, max_retries=1) as client:
        with pytest.raises(errors.AllAttemptsFailed):
            client.query("hi", model="m")
        assert client.status() == {"a": "down", "b": "down"}
        start = time.monotonic()
        response = client.query("hi", model="m")
        check_waited(response, time.monotonic() - start)
        assert client.status()[response.deployment] == "healthy"  # the probe closed it


@pytest.mark.anyio
async def test_all_in_cooldown_wait_async() -> None:
    fake = FakeProvider()
    fake.script("a.test", [500])
    fake.script("b.test", [500])
    async with async_client(fake, circuit=WAIT, max_retries=1) as client:
        with pytest.raises(errors.AllAttemptsFailed):
            await client.query("hi", model="m")
        start = time.monotonic()
        response = await client.query("hi", model="m")
        check_waited(response, time.monotonic() - start)


# -- fallbacks ---------------------------------------------------------------------------------


def fallback_deployments() -> list[mm.Deployment]:
    return [dep("a"), dep("b"), dep("c", model="n")]


def check_fallback(fake: FakeProvider, response: mm.ChatResponse) -> None:
    assert response.deployment == "c"
    assert response.trace is not None
    assert response.trace.models == ["m", "n"]
    assert response.trace.deployments() == ["a", "b", "c"]
    assert sorted(hosts(fake)[:2]) == ["a", "b"]


def test_fallback_chain_sync() -> None:
    fake = FakeProvider()
    fake.script("a.test", [500])
    fake.script("b.test", [503])
    with sync_client(fake, fallback_deployments(), fallbacks={"m": ["n"]}) as client:
        check_fallback(fake, client.query("hi", model="m"))


@pytest.mark.anyio
async def test_fallback_chain_async() -> None:
    fake = FakeProvider()
    fake.script("a.test", [500])
    fake.script("b.test", [503])
    async with async_client(fake, fallback_deployments(), fallbacks={"m": ["n"]}) as client:
        check_fallback(fake, await client.query("hi", model="m"))


def test_fallback_not_used_when_group_serves() -> None:
    fake = FakeProvider()
    fake.script("a.test", [500])
    with sync_client(fake, fallback_deployments(), fallbacks={"m": ["n"]}) as client:
        response = client.query("hi", model="m")
    assert response.deployment == "b"
    assert response.trace is not None and response.trace.models == ["m"]


def test_fallback_to_unknown_model_is_rejected() -> None:
    with pytest.raises(errors.ConfigError, match="fallbacks: .* group 'nope'"):
        sync_client(FakeProvider(), fallbacks={"m": ["nope"]})


CTX_ERR = FakeReply(400, error_code="context_length_exceeded")


def context_deployments() -> list[mm.Deployment]:
    return [dep("a"), dep("big1", model="big")]


def check_context_fallback(fake: FakeProvider, response: mm.ChatResponse) -> None:
    assert response.deployment == "big1"
    assert response.trace is not None
    assert response.trace.models == ["m", "big"]
    assert hosts(fake) == ["a", "big1"]
    assert fake.bodies()[1]["model"] == "big"


def test_context_fallback_sync() -> None:
    fake = FakeProvider()
    fake.script("a.test", [CTX_ERR])
    with sync_client(fake, context_deployments(), context_fallbacks={"m": "big"}) as client:
        check_context_fallback(fake, client.query("hi", model="m"))


@pytest.mark.anyio
async def test_context_fallback_async() -> None:
    fake = FakeProvider()
    fake.script("a.test", [CTX_ERR])
    async with async_client(fake, context_deployments(), context_fallbacks={"m": "big"}) as client:
        check_context_fallback(fake, await client.query("hi", model="m"))


def test_context_error_without_fallback_is_raised() -> None:
    fake = FakeProvider()
    fake.script("a.test", [CTX_ERR])
    with (
        sync_client(fake, context_deployments()) as client,
        pytest.raises(errors.ContextLengthExceeded),
    ):
        client.query("hi", model="m")
    assert hosts(fake) == ["a"]


# -- client-side rate limits under concurrency -------------------------------------------------

RPM_POLICY = CircuitPolicy(when_all_unavailable="fail")


def check_rpm(fake: FakeProvider, results: list[object]) -> None:
    assert len(fake.requests) == 20
    kinds = Counter(type(r).__name__ for r in results)
    assert kinds == {"ChatResponse": 20, "NoDeploymentAvailable": len(results) - 20}
    for r in results:
        if isinstance(r, errors.NoDeploymentAvailable):
            assert "rate limit" in str(r)
            assert r.exclusions["a"].startswith("rate limit")


def test_rpm_limit_under_threads() -> None:
    fake = FakeProvider()
    with sync_client(fake, [dep("a", rpm=20)], circuit=RPM_POLICY) as client:

        def one(_: int) -> object:
            try:
                return client.query("hi", model="m")
            except errors.MultimodelError as exc:
                return exc

        with ThreadPoolExecutor(max_workers=64) as pool:
            results = list(pool.map(one, range(200)))
    check_rpm(fake, results)


@pytest.mark.anyio
async def test_rpm_limit_under_tasks() -> None:
    fake = FakeProvider()
    results: list[object] = []
    async with async_client(fake, [dep("a", rpm=20)], circuit=RPM_POLICY) as client:

        async def one() -> None:
            try:
                results.append(await client.query("hi", model="m"))
            except errors.MultimodelError as exc:
                results.append(exc)

        async with anyio.create_task_group() as tg:
            for _ in range(200):
                tg.start_soon(one)
    assert len(results) == 200
    check_rpm(fake, results)


class SlotThief:
    """A strategy that lets "another thread" take the last rate-limit slot while it chooses."""

    def __init__(self) -> None:
        self.client: mm.Client | None = None

    def choose(self, candidates: Any, stats: Any, ctx: Any) -> Any:
        assert self.client is not None
        limiter = self.client._router.limiter
        assert limiter.acquire(candidates[0].name, 1, time.monotonic()) is not None
        return candidates[0]


@pytest.mark.parametrize("when_all_unavailable", ["fail", "wait"])
def test_losing_the_last_slot_race_respects_policy_and_deadline(
    when_all_unavailable: str,
) -> None:
    # The slot is taken between the availability check and the reservation: the plan must
    # decide again (fail now, or wait within the deadline), not sleep for up to a minute.
    thief = SlotThief()
    fake = FakeProvider()
    policy = CircuitPolicy(when_all_unavailable=when_all_unavailable)  # type: ignore[arg-type]
    with sync_client(fake, [dep("a", rpm=1)], circuit=policy, strategy=thief) as client:
        thief.client = client
        request = client._build_request("hi", "m", {})
        plan = client._router.plan(request, timeout=5.0, deadline=1.0)
        with pytest.raises(errors.NoDeploymentAvailable) as info:
            plan.next_action()
    assert info.value.exclusions["a"].startswith("rate limit")
    assert fake.requests == []


def test_rpm_limit_spills_to_another_deployment() -> None:
    fake = FakeProvider()
    with sync_client(fake, [dep("a", rpm=5), dep("b")], circuit=RPM_POLICY) as client:
        served = Counter(client.query("hi", model="m").deployment for _ in range(20))
    assert served == {"a": 5, "b": 15}


# -- deadline ----------------------------------------------------------------------------------

RA_429 = FakeReply(429, headers={"retry-after-ms": "100"})


def check_deadline(exc: errors.AllAttemptsFailed, elapsed: float) -> None:
    assert elapsed < 0.6  # deadline 0.2 s: generous upper bound
    assert isinstance(exc.errors[0], errors.RateLimited)
    assert isinstance(exc.last, errors.ProviderTimeout)
    assert "deadline" in str(exc.last)


def test_deadline_sync() -> None:
    fake = FakeProvider(default=RA_429)
    with sync_client(fake, [dep("a")], deadline=0.2, max_retries=50) as client:
        start = time.monotonic()
        with pytest.raises(errors.AllAttemptsFailed) as info:
            client.query("hi", model="m")
        elapsed = time.monotonic() - start
    check_deadline(info.value, elapsed)
    assert 1 <= len(fake.requests) <= 3


@pytest.mark.anyio
async def test_deadline_async() -> None:
    fake = FakeProvider(default=RA_429)
    async with async_client(fake, [dep("a")], deadline=0.2, max_retries=50) as client:
        start = time.monotonic()
        with pytest.raises(errors.AllAttemptsFailed) as info:
            await client.query("hi", model="m")
        elapsed = time.monotonic() - start
    check_deadline(info.value, elapsed)


# -- status events -----------------------------------------------------------------------------


def check_down_event(event: ModelStatusEvent) -> None:
    assert isinstance(event, ModelStatusEvent)
    assert event.type == "model_status_change"
    assert (event.deployment, event.model, event.provider) == ("a", "m", "openai")
    assert (event.previous, event.status) == ("healthy", "down")
    assert event.reason == "ServerError"
    assert event.at > 1_000_000_000  # wall clock


def test_status_events_callback_sync() -> None:
    fake = FakeProvider()
    fake.script("a.test", [500])
    events: list[ModelStatusEvent] = []
    with sync_client(fake, circuit=CircuitPolicy(failure_threshold=1, cooldown=30)) as client:
        assert client.status() == {"a": "healthy", "b": "healthy"}
        unsubscribe = client.on("model_status_change", events.append)
        assert client.query("hi", model="m").deployment == "b"
        assert client.status() == {"a": "down", "b": "healthy"}
        unsubscribe()
    assert len(events) == 1
    check_down_event(events[0])


def test_unknown_event_name() -> None:
    with sync_client(FakeProvider()) as client, pytest.raises(errors.ConfigError):
        client.on("model_status", print)


def test_status_events_from_threads_once_per_transition() -> None:
    fake = FakeProvider()
    fake.script("a.test", [500] * 40)
    events: list[ModelStatusEvent] = []
    lock = threading.Lock()

    def collect(event: ModelStatusEvent) -> None:
        with lock:
            events.append(event)

    with sync_client(fake, circuit=CircuitPolicy(failure_threshold=3, cooldown=30)) as client:
        client.on("model_status_change", collect)
        with ThreadPoolExecutor(max_workers=16) as pool:
            responses = list(pool.map(lambda _: client.query("hi", model="m"), range(64)))
        assert all(r.text == "ok" for r in responses)
        assert client.status()["a"] == "down"
    a_events = [(e.previous, e.status) for e in events if e.deployment == "a"]
    assert a_events[-1][1] == "down"
    assert a_events.count(("degraded", "down")) + a_events.count(("healthy", "down")) == 1
    for (_, status), (previous, _) in itertools.pairwise(a_events):
        assert previous == status


@pytest.mark.anyio
async def test_status_events_async_iterator() -> None:
    fake = FakeProvider()
    fake.script("a.test", [500])
    got: list[ModelStatusEvent] = []
    async with async_client(fake, circuit=CircuitPolicy(failure_threshold=1, cooldown=30)) as c:

        async def consume() -> None:
            events = c.events.iterate()
            assert isinstance(events, AsyncGenerator)
            async with aclosing(events) as stream:
                async for event in stream:
                    got.append(event)
                    break

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(consume)
                for _ in range(100):  # bounded: until the consumer has subscribed
                    if c.events.wants("model_status_change"):
                        break
                    await anyio.lowlevel.checkpoint()
                assert c.events.wants("model_status_change")
                response = await c.query("hi", model="m")
        assert response.deployment == "b"
        assert c.status() == {"a": "down", "b": "healthy"}
        assert not c.events.wants("model_status_change")  # unsubscribed on close
    assert len(got) == 1
    check_down_event(got[0])
