"""Routing state shared by many processes through Redis (``shared_state=``): fleet-wide rate
limits, Retry-After holds, open breakers, and what happens when Redis goes away.

The server is ``$MULTIMODEL_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/15``; ``.ci/run``
starts one and sets it), as in ``test_cache_redis.py``. Skipped without the ``redis`` extra or
without a server (a set variable with no server answering fails). The outage tests start a
``redis-server`` of their own (skipped when it is not installed). Multi-process tests run a
bounded number of subprocesses against 127.0.0.1 only.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import anyio
import pytest

import multimodel as mm
from multimodel.errors import ServerError
from multimodel.testing import Behavior, MockDeployment, MockProviderServer

if TYPE_CHECKING:
    from tests.conftest import RedisProcess

LOGGER = "multimodel.shared"
KEY = "sk-test-shared-0123456789"


@pytest.fixture
def prefix() -> str:
    return f"mmshared:{uuid.uuid4().hex}"


@pytest.fixture
def state(redis_url: str, prefix: str, raw: Any) -> Iterator[mm.RedisState]:
    yield mm.RedisState(redis_url, prefix=prefix)
    keys = list(raw.scan_iter(match=f"{{{prefix}}}:*"))
    if keys:
        raw.delete(*keys)


@pytest.fixture
def other(redis_url: str, state: mm.RedisState) -> Iterator[mm.RedisState]:
    """Another process's shared state: the same Redis and prefix as ``state``."""
    other = mm.RedisState(redis_url, prefix=state.prefix)
    yield other
    other.close()


def deployment(server: MockProviderServer, name: str = "openai-mock", **limits: Any) -> Any:
    return mm.Deployment(
        model="m", provider="openai", api_key=KEY, base_url=server.base_url(name), **limits
    )


def key(state: mm.RedisState, what: str, deployment: str = "openai/m") -> str:
    return state._key(deployment, what)


def requests_to(server: MockProviderServer, name: str = "openai-mock") -> int:
    return len(server.requests(name))


pytestmark = pytest.mark.filterwarnings("ignore::multimodel.errors.PricingWarning")


# -- options -----------------------------------------------------------------------------------


def test_option_accepts_a_url_a_state_or_a_table(redis_url: str) -> None:
    dep = mm.Deployment(model="m", provider="openai", api_key=KEY, base_url="http://127.0.0.1:9")
    state = mm.RedisState(redis_url, prefix="p", op_timeout=0.5)
    assert mm.ClientConfig(deployments=[dep], shared_state=state).shared_state is state
    built = mm.ClientConfig(deployments=[dep], shared_state=redis_url).shared_state
    assert isinstance(built, mm.RedisState) and built.prefix == "multimodel"
    table = {"url": redis_url, "prefix": "fleet", "on_unavailable": "fail"}
    built = mm.ClientConfig(deployments=[dep], shared_state=table).shared_state
    assert isinstance(built, mm.RedisState) and built.on_unavailable == "fail"
    assert mm.ClientConfig(deployments=[dep]).shared_state is None
    for bad in (42, "http://x", {"prefix": "p"}, {"url": redis_url, "colour": 1}):
        with pytest.raises(mm.ConfigError, match="shared_state"):
            mm.ClientConfig(deployments=[dep], shared_state=bad)
    with pytest.raises(mm.ConfigError, match="on_unavailable"):
        mm.RedisState(redis_url, on_unavailable="maybe")  # type: ignore[arg-type]
    with pytest.raises(mm.ConfigError, match="op_timeout"):
        mm.RedisState(redis_url, op_timeout=0)
    assert "hunter2" not in repr(mm.RedisState("redis://:hunter2@127.0.0.1:6379/0"))


def test_without_the_redis_extra_a_call_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # import redis raises ImportError
    state = mm.RedisState("redis://127.0.0.1:1/0")  # building needs nothing
    with MockProviderServer() as server, mm.Client([deployment(server)], shared_state=state) as c:
        with pytest.raises(mm.ConfigError, match=r"multimodel\[redis\]"):
            c.query("hi")
        assert requests_to(server) == 0


def test_callers_clients_stay_theirs(redis_url: str, prefix: str) -> None:
    import redis
    import redis.asyncio as aioredis

    sync_client = redis.Redis.from_url(redis_url)
    state = mm.RedisState(sync_client, prefix=prefix)
    with MockProviderServer() as server:
        with mm.Client([deployment(server, rpm=5)], shared_state=state) as client:
            assert client.query("hi").text
        assert sync_client.ping()  # not closed with the multimodel client
        assert "a caller's client" in repr(state)

        async def wrong_side() -> None:
            async with mm.AsyncClient([deployment(server)], shared_state=state) as c:
                await c.query("hi")

        with pytest.raises(mm.ConfigError, match="wraps a sync redis.Redis"):
            anyio.run(wrong_side)
        async_state = mm.RedisState(aioredis.Redis.from_url(redis_url), prefix=prefix)
        with (
            mm.Client([deployment(server)], shared_state=async_state) as c,
            pytest.raises(mm.ConfigError, match=r"wraps a redis\.asyncio client"),
        ):
            c.query("hi")
    sync_client.close()
    for k in redis.Redis.from_url(redis_url).scan_iter(match=f"{{{prefix}}}:*"):
        redis.Redis.from_url(redis_url).delete(k)


# -- fleet-wide rate limits (two clients stand for two processes) -----------------------------


def test_rpm_holds_across_clients(state: mm.RedisState) -> None:
    with MockProviderServer() as server:
        dep = deployment(server, rpm=3)
        with (
            mm.Client([dep], shared_state=state, deadline=1) as a,
            mm.Client([dep], shared_state=state, deadline=1) as b,
        ):
            for _ in range(3):
                assert a.query("hi").text
            with pytest.raises(mm.NoDeploymentAvailable, match="fleet-wide rate limit"):
                b.query("hi")
            assert requests_to(server) == 3
            # One round trip admits each attempt (the refused one included); the bookkeeping
            # of a sent one (its log time, tokens) is one pipelined trip after the answer.
            assert state.round_trips == 3 * 2 + 1
        # Without shared state, the other client would have sent its own quota.
        with mm.Client([dep], deadline=1) as alone:
            assert alone.query("hi").text


def test_tokens_are_reserved_then_reconciled(state: mm.RedisState, raw: Any) -> None:
    with MockProviderServer() as server:
        dep = deployment(server, tpm=100_000)
        with mm.Client([dep], shared_state=state) as client:
            answers = [client.query("hello there", max_tokens=5000) for _ in range(3)]
        # close() flushed the last reconciliation: Redis holds the real usage, not estimates.
        used = int(raw.get(key(state, "tokused")) or 0)
        assert used == sum(a.usage.total_tokens for a in answers)


def test_tpm_refuses_what_the_fleet_has_in_flight(
    state: mm.RedisState, other: mm.RedisState
) -> None:
    slow = {"slow": MockDeployment(format="openai", behavior=Behavior(latency=1.0))}
    with MockProviderServer(slow) as server:
        dep = deployment(server, "slow", tpm=600)
        with (
            mm.Client([dep], shared_state=state, deadline=3) as a,
            mm.Client([dep], shared_state=other, deadline=3) as b,
        ):
            first = threading.Thread(target=a.query, args=("hi",), kwargs={"max_tokens": 500})
            first.start()  # reserves ~500 tokens until its answer reconciles them
            time.sleep(0.3)
            with pytest.raises(mm.NoDeploymentAvailable, match="tokens"):
                b.query("hi", max_tokens=500)
            first.join()
            assert b.query("hi", max_tokens=500).text  # reconciled: a few tokens were used


# -- holds and breakers ------------------------------------------------------------------------


def test_retry_after_seen_by_one_holds_all(state: mm.RedisState) -> None:
    behavior = Behavior(script=[429], retry_after=30)
    deployments = {"limited": MockDeployment(format="openai", behavior=behavior)}
    with MockProviderServer(deployments) as server:
        dep = deployment(server, "limited")
        with (
            mm.Client([dep], shared_state=state, max_retries=0, deadline=1) as a,
            mm.Client([dep], shared_state=state, max_retries=0, deadline=1) as b,
        ):
            with pytest.raises(mm.RateLimited):
                a.query("hi")
            with pytest.raises(mm.NoDeploymentAvailable, match="Retry-After"):
                b.query("hi")
            assert requests_to(server, "limited") == 1  # b sent nothing
            assert b.health.status("openai/m") == "degraded"


def test_breaker_opened_by_one_is_open_for_all(state: mm.RedisState) -> None:
    behavior = Behavior(script=[500, 500])
    deployments = {"failing": MockDeployment(format="openai", behavior=behavior)}
    circuit = mm.CircuitPolicy(failure_threshold=1, cooldown=30)
    with MockProviderServer(deployments) as server:
        dep = deployment(server, "failing")
        with (
            mm.Client([dep], shared_state=state, max_retries=0, circuit=circuit, deadline=1) as a,
            mm.Client([dep], shared_state=state, max_retries=0, circuit=circuit, deadline=1) as b,
        ):
            with pytest.raises(ServerError):
                a.query("hi")
            assert a.health.status("openai/m") == "down"
            with pytest.raises(mm.NoDeploymentAvailable, match="circuit open in another"):
                b.query("hi")
            assert requests_to(server, "failing") == 1
            # b learnt it from the refusal (its listener started after a's announcement): the
            # deployment is down here too, not merely held
            assert b.status()["openai/m"] == "down"


def test_status_events_reach_the_other_process_once(
    state: mm.RedisState, other: mm.RedisState
) -> None:
    behavior = Behavior(script=[500])
    deployments = {
        "failing": MockDeployment(format="openai", behavior=behavior),
        "ok": MockDeployment(format="openai"),
    }
    circuit = mm.CircuitPolicy(failure_threshold=1, cooldown=30)
    with MockProviderServer(deployments) as server:
        deps = [
            deployment(server, "failing"),
            mm.Deployment(
                model="ok", provider="openai", api_key=KEY, base_url=server.base_url("ok")
            ),
        ]
        seen: list[Any] = []
        with (
            mm.Client(deps, shared_state=state, max_retries=0, circuit=circuit, deadline=1) as a,
            mm.Client(deps, shared_state=other, max_retries=0, circuit=circuit, deadline=1) as b,
        ):
            assert b.query("hi", model="ok").text  # b's first read: where the stream ends
            b.on("model_status_change", seen.append)
            with pytest.raises(ServerError):
                a.query("hi", model="m")  # a opens the breaker and announces it
            for _ in range(3):
                with pytest.raises(mm.NoDeploymentAvailable):
                    b.query("hi", model="m")
            # Down here as in the fleet, whichever came first: the pushed event, or b's own
            # admission refused by the open breaker.
            assert b.status()["openai/m"] == "down"

            def remote() -> list[Any]:
                return [e for e in seen if e.reason.endswith("(in another process)")]

            # Pushed by b's listener thread (or read with b's next round trip): wait for it
            # while b is open, then check that the change was announced once.
            _wait_for(lambda: bool(remote()))
            time.sleep(0.2)
        assert [(e.previous, e.status) for e in remote()] == [("healthy", "down")]
        event = remote()[0]
        assert event.deployment == "openai/m"
        # a's reason when the push came first, the admission's when b's request did
        assert event.reason.startswith(("ServerError", "circuit open"))


def test_half_open_probe_is_coordinated(state: mm.RedisState, raw: Any) -> None:
    circuit = mm.CircuitPolicy(failure_threshold=1, cooldown=0.2)
    with MockProviderServer() as server:
        dep = deployment(server)
        # Another process opened the breaker, the cooldown passed, and it is probing now.
        raw.set(key(state, "open"), 1, px=60_000)
        raw.set(key(state, "probe"), "other", px=60_000)
        with mm.Client([dep], shared_state=state, circuit=circuit, deadline=0.5) as client:
            with pytest.raises(mm.NoDeploymentAvailable, match="probing"):
                client.query("hi")
            raw.delete(key(state, "probe"))  # the probe ended
            assert client.query("hi").text  # this one probes, succeeds, closes for all
            assert raw.get(key(state, "open")) is None


def test_hedged_backups_are_admitted_by_the_fleet(
    state: mm.RedisState, other: mm.RedisState
) -> None:
    servers = {
        "slow": MockDeployment(format="openai", behavior=Behavior(latency=0.6, text="slow")),
        "fast": MockDeployment(format="openai", behavior=Behavior(text="fast")),
    }
    with MockProviderServer(servers) as server:
        deps = [
            mm.Deployment(
                model="m",
                provider="openai",
                name=name,
                api_key=KEY,
                base_url=server.base_url(name),
                rpm=1 if name == "fast" else None,
            )
            for name in ("slow", "fast")
        ]
        hedge = mm.HedgePolicy(min_delay=0.05, max_extra=1.0)
        with (
            mm.Client(deps[1:], shared_state=other) as b,  # "fast" only
            mm.Client(deps, shared_state=state, strategy="round_robin", hedge=hedge) as a,
        ):
            assert b.query("hi").deployment == "fast"  # the fleet's one request a minute
            # a's backup would go to "fast", whose fleet quota b has used: the primary answers.
            assert a.query("hi", model="m").text == "slow"
        assert len(server.requests("fast")) == 1


# -- budgets -----------------------------------------------------------------------------------


def priced(server: MockProviderServer) -> tuple[Any, Any, Any]:
    from multimodel.catalog import Catalog
    from multimodel.testing import MockUsage

    catalog = Catalog()
    catalog.add(
        {
            "id": "m",
            "provider": "openai",
            "context_window": 100000,
            "max_output_tokens": 4096,
            "pricing": {"input": "1000", "output": "1000"},
        },
        replace=True,
    )
    usage = MockUsage(input_tokens=100, output_tokens=100)  # $0.20 a request
    server.add("priced", MockDeployment(format="openai", behavior=Behavior(usage=usage)))
    return catalog, deployment(server, "priced"), usage


def test_budget_shared_by_two_stops_both(state: mm.RedisState, other: mm.RedisState) -> None:
    budget = mm.Budget(name="daily", limit=Decimal("1.00"), alert_at=0.5)
    with MockProviderServer() as server:
        catalog, dep, _ = priced(server)
        alerts: list[Any] = []
        with (
            mm.Client([dep], shared_state=state, catalog=catalog, budgets=[budget]) as a,
            mm.Client([dep], shared_state=other, catalog=catalog, budgets=[budget]) as b,
        ):
            a.on("budget_alert", alerts.append)
            b.on("budget_alert", alerts.append)
            spent = Decimal(0)
            stopped = set()
            reasons: list[str] = []
            for _ in range(10):
                for name, client in (("a", a), ("b", b)):
                    try:
                        spent += client.query("hi", max_tokens=100).cost or 0
                    except mm.BudgetExceeded as exc:
                        stopped.add(name)
                        reasons.append(str(exc))
            assert stopped == {"a", "b"}
            assert all("daily" in r for r in reasons)
            # Each alone has spent less than the limit; together they stop at it.
            assert spent <= Decimal("1.00") + Decimal("0.20")
            assert spent >= Decimal("1.00") - Decimal("0.21")  # within one estimate
            assert requests_to(server, "priced") == int(spent / Decimal("0.20"))
        assert len(alerts) == 1  # once per window for the fleet, not once per process
        assert alerts[0].budget == "daily" and alerts[0].spent >= Decimal("0.50")


# -- degradation -------------------------------------------------------------------------------


def _warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and r.levelno >= logging.WARNING]


def test_unreachable_redis_falls_back_to_local_state(
    dead_redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    state = mm.RedisState(dead_redis_url, op_timeout=0.1)
    with (
        MockProviderServer() as server,
        mm.Client([deployment(server, rpm=5)], shared_state=state) as c,
    ):
        for _ in range(5):
            assert c.query("hi").text
        assert not state.available and state.errors >= 5
    assert len(_warnings(caplog)) == 1


def test_on_unavailable_fail_raises_typed(dead_redis_url: str) -> None:
    state = mm.RedisState(dead_redis_url, op_timeout=0.1, on_unavailable="fail")
    with MockProviderServer() as server, mm.Client([deployment(server)], shared_state=state) as c:
        with pytest.raises(mm.SharedStateUnavailable):
            c.query("hi")
        assert requests_to(server) == 0


def test_redis_killed_and_restarted(
    redis_process: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    state = mm.RedisState(redis_process.url, op_timeout=0.2)
    with (
        MockProviderServer() as server,
        mm.Client([deployment(server, rpm=1000)], shared_state=state, max_retries=0) as client,
    ):
        outcomes: list[str] = []

        def run(n: int) -> None:
            for _ in range(n):
                try:
                    outcomes.append(client.query("hi").text or "")
                except mm.MultimodelError as exc:  # typed, never anything else
                    outcomes.append(type(exc).__name__)

        run(5)
        redis_process.stop()
        run(5)
        assert not state.available
        redis_process.start()
        run(5)
        assert state.available
        assert outcomes == ["Hello from openai-mock"] * 15  # none lost, none failed
        assert requests_to(server) == 15  # none sent twice
        records = [r.getMessage() for r in _warnings(caplog)]
        assert len(records) == 2, records  # one when it went down, one when it came back
        assert "unavailable" in records[0] and "available again" in records[1]
        # Resynchronized: the restarted server holds the 5 requests sent since, and the 5
        # admitted on local state during the outage, written back at their times.
        import redis

        raw = redis.Redis.from_url(redis_process.url)
        assert raw.zcard(key(state, "req")) == 10
        raw.close()


# -- asyncio -----------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_async_rpm_hold_and_breaker(state: mm.RedisState) -> None:
    deployments = {
        "ok": MockDeployment(format="openai"),
        "limited": MockDeployment(format="openai", behavior=Behavior(script=[429], retry_after=30)),
    }
    with MockProviderServer(deployments) as server:
        ok = mm.Deployment(
            model="ok", provider="openai", api_key=KEY, base_url=server.base_url("ok"), rpm=2
        )
        limited = mm.Deployment(
            model="lim", provider="openai", api_key=KEY, base_url=server.base_url("limited")
        )
        async with (
            mm.AsyncClient([ok, limited], shared_state=state, max_retries=0, deadline=1) as a,
            mm.AsyncClient([ok, limited], shared_state=state, max_retries=0, deadline=1) as b,
        ):
            assert (await a.query("hi", model="ok")).text
            assert (await b.query("hi", model="ok")).text
            with pytest.raises(mm.NoDeploymentAvailable, match="fleet-wide"):
                await a.query("hi", model="ok")
            with pytest.raises(mm.RateLimited):
                await a.query("hi", model="lim")
            with pytest.raises(mm.NoDeploymentAvailable, match="Retry-After"):
                await b.query("hi", model="lim")
            # Streams are admitted the same way.
            with pytest.raises(mm.NoDeploymentAvailable, match="fleet-wide"):
                async with b.stream("hi", model="ok") as stream:
                    async for _ in stream:
                        pass
        assert requests_to(server, "ok") == 2 and requests_to(server, "limited") == 1


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_async_admissions_at_the_same_moment_share_a_round_trip(
    state: mm.RedisState,
) -> None:
    import asyncio

    with MockProviderServer() as server:
        limited = [deployment(server, rpm=30)]
        async with mm.AsyncClient(limited, shared_state=state, deadline=1) as client:
            answers = await asyncio.gather(
                *(client.query("hi") for _ in range(40)), return_exceptions=True
            )
    assert sum(isinstance(a, mm.ChatResponse) for a in answers) == 30  # the fleet's limit
    assert all(isinstance(a, mm.ChatResponse | mm.NoDeploymentAvailable) for a in answers)
    assert requests_to(server) == 30
    assert state.round_trips < 40  # far fewer than one per admission


def in_threads(work: Any, n: int = 8) -> None:
    """Run ``work`` in ``n`` threads that start together (at a barrier); wait for them all."""
    start = threading.Barrier(n)

    def run() -> None:
        start.wait()
        work()

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)


def assert_counted_once(state: mm.RedisState, raw: Any, answers: list[mm.ChatResponse]) -> None:
    """Redis holds each answered request once, at its real token count and its real cost (the
    bookkeeping of every answer written, none twice)."""
    real = [a.usage.total_tokens for a in answers]
    assert raw.zcard(key(state, "req")) == raw.zcard(key(state, "tok")) == len(answers)
    assert sorted(int(v) for v in raw.hvals(key(state, "toksize"))) == sorted(real)
    assert int(raw.get(key(state, "tokused"))) == sum(real)
    spend = [k for k in raw.scan_iter(match=f"{{{state.prefix}}}:budget:*") if b"alert" not in k]
    assert len(spend) == 1
    assert int(raw.get(spend[0])) == sum(int((a.cost or 0) * 10**9) for a in answers)


def concurrent_fleet(server: MockProviderServer) -> tuple[list[Any], dict[str, Any]]:
    """A deployment with rpm, tpm and a budget: every kind of bookkeeping after an answer."""
    catalog, dep, _ = priced(server)
    dep = dep.model_copy(update={"rpm": 1000, "tpm": 1_000_000})
    budget = mm.Budget(name="daily", limit=Decimal(1000))
    return [dep], {"catalog": catalog, "budgets": [budget]}


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_async_bookkeeping_rides_with_other_admissions_and_stays_exact(
    state: mm.RedisState, raw: Any
) -> None:
    """An answer's bookkeeping (its log time, real tokens, real cost) goes with the round trip
    other tasks' admissions are about to make, not a trip of its own: after the calls, nothing
    waits and Redis holds every real count once."""
    import asyncio

    with MockProviderServer() as server:
        deps, options = concurrent_fleet(server)
        async with mm.AsyncClient(deps, shared_state=state, **options) as client:
            answers = await asyncio.gather(*(client.query("hi", max_tokens=500) for _ in range(40)))
            assert not state.pending  # every answer's bookkeeping was written with a trip
            trips = state.round_trips
            assert_counted_once(state, raw, answers)
    # The estimate (~500 tokens) was replaced by the real count (200) for every request.
    assert {a.usage.total_tokens for a in answers} == {200}
    assert trips < 40, trips  # 80 without batching: an admission and a flush per request


def test_threads_bookkeeping_rides_with_other_admissions_and_stays_exact(
    state: mm.RedisState, raw: Any
) -> None:
    with MockProviderServer() as server:
        deps, options = concurrent_fleet(server)
        answers: list[mm.ChatResponse] = []
        with mm.Client(deps, shared_state=state, **options) as client:
            in_threads(lambda: answers.extend(client.query("hi", max_tokens=500) for _ in range(5)))
            client_trips = state.round_trips
        assert len(answers) == 40 and not state.pending
        assert_counted_once(state, raw, answers)
    assert client_trips < 80, client_trips


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_async_cancelled_calls_leave_the_fleet_consistent(
    state: mm.RedisState, raw: Any
) -> None:
    """Calls cancelled while their admission rides in another task's batch or while their
    request is in flight: the fleet keeps each one's reservation once (the provider may have
    counted it), the calls that answer are reconciled, and nothing is left queued."""
    slow = {"slow": MockDeployment(format="openai", behavior=Behavior(latency=0.3))}
    with MockProviderServer(slow) as server:
        dep = deployment(server, "slow", rpm=1000, tpm=1_000_000)
        async with mm.AsyncClient([dep], shared_state=state) as client:
            with anyio.move_on_after(0.1):
                async with anyio.create_task_group() as group:
                    for _ in range(10):
                        group.start_soon(client.query, "hi")
            answers = [await client.query("hi") for _ in range(3)]
        assert not state.pending
    sizes = [int(v) for v in raw.hvals(key(state, "toksize"))]
    assert raw.zcard(key(state, "tok")) == len(sizes) == 13  # each admission once
    assert int(raw.get(key(state, "tokused"))) == sum(sizes)  # no double count
    real = answers[0].usage.total_tokens
    assert sizes.count(real) == 3  # the answered ones reconciled
    assert all(size > real for size in sizes if size != real)  # the cancelled: the estimate


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_async_outage_budget_and_breaker(
    redis_process: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    import asyncio

    caplog.set_level(logging.DEBUG, logger=LOGGER)
    state = mm.RedisState(redis_process.url, op_timeout=0.2)
    other = mm.RedisState(redis_process.url, op_timeout=0.2)  # another process's
    budget = mm.Budget(name="daily", limit=Decimal("1.00"))
    circuit = mm.CircuitPolicy(failure_threshold=1, cooldown=30)
    with MockProviderServer() as server:
        catalog, dep, _ = priced(server)
        server.add("failing", MockDeployment(format="openai", behavior=Behavior(script=[500])))
        failing = mm.Deployment(
            model="f", provider="openai", api_key=KEY, base_url=server.base_url("failing")
        )
        options: dict[str, Any] = {"catalog": catalog, "budgets": [budget], "circuit": circuit}
        async with (
            mm.AsyncClient([dep, failing], shared_state=state, max_retries=0, **options) as a,
            mm.AsyncClient([dep, failing], shared_state=other, max_retries=0, **options) as b,
        ):
            # A breaker opened in one is open in the other.
            with pytest.raises(ServerError):
                await a.query("hi", model="f")
            # Refused by the fleet, or by b's own breaker once the listener pushed it.
            opened = "circuit open in another|cooldown"
            with pytest.raises(mm.NoDeploymentAvailable, match=opened):
                await b.query("hi", model="f", timeout=0.5)
            # Redis goes away and comes back: every call ends answered or typed.
            redis_process.stop()
            outcomes = await asyncio.gather(
                *(c.query("hi", model="m", max_tokens=1) for c in (a, b)),
                return_exceptions=True,
            )
            assert all(isinstance(o, mm.ChatResponse) for o in outcomes)
            redis_process.start()
            # The budget is the fleet's: both stop at it.
            spent = Decimal(0)
            for o in outcomes:
                if isinstance(o, mm.ChatResponse):
                    spent += o.cost or Decimal(0)
            stopped: set[int] = set()
            for _ in range(8):
                for i, c in enumerate((a, b)):
                    try:
                        answer = await c.query("hi", model="m", max_tokens=100)
                        spent += answer.cost or Decimal(0)
                    except mm.BudgetExceeded:
                        stopped.add(i)
            assert stopped == {0, 1}
            assert spent <= Decimal("1.00") + Decimal("0.21")
    records = [r.getMessage() for r in _warnings(caplog)]
    assert sum("unavailable" in m for m in records) <= 2  # one per RedisState and outage
    assert state.available and other.available


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_trio_is_refused_with_a_config_error(redis_url: str) -> None:
    pytest.importorskip("trio")
    with MockProviderServer() as server:
        async with mm.AsyncClient([deployment(server)], shared_state=redis_url) as client:
            with pytest.raises(mm.ConfigError, match="asyncio only"):
                await client.query("hi")


# -- many processes ----------------------------------------------------------------------------


class LimitedServer:
    """An OpenAI-shaped server that answers 429 above ``rpm`` requests in any 60 seconds."""

    def __init__(self, rpm: int) -> None:
        self.rpm = rpm
        self.times: deque[float] = deque()
        self.answered = 0
        self.rejected = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                now = time.monotonic()
                with outer.lock:
                    while outer.times and outer.times[0] <= now - 60:
                        outer.times.popleft()
                    ok = len(outer.times) < outer.rpm
                    if ok:
                        outer.times.append(now)
                        outer.answered += 1
                    else:
                        outer.rejected += 1
                if ok:
                    status, body = (
                        200,
                        {
                            "id": "c1",
                            "object": "chat.completion",
                            "created": 0,
                            "model": "m",
                            "choices": [
                                {
                                    "index": 0,
                                    "message": {"role": "assistant", "content": "ok"},
                                    "finish_reason": "stop",
                                }
                            ],
                            "usage": {
                                "prompt_tokens": 5,
                                "completion_tokens": 1,
                                "total_tokens": 6,
                            },
                        },
                    )
                else:
                    status = 429
                    body = {"error": {"message": "rate limited", "type": "rate_limit_error"}}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        ThreadingHTTPServer.request_queue_size = 256  # 80 connections at once
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> LimitedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


WORKER = textwrap.dedent(
    """
    import asyncio, json, sys, time, warnings
    warnings.simplefilter("ignore")
    import multimodel as mm

    base_url, shared, n, kind = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    dep = mm.Deployment(model="m", provider="openai", api_key="sk-test-fleet-0123456789",
                        base_url=base_url, rpm=120)
    options = dict(max_retries=0, timeout=20, deadline=100)
    state = None
    if shared != "-":  # a generous op_timeout: the test machine may be loaded
        state = options["shared_state"] = mm.RedisState(shared, op_timeout=5.0)
    results = []
    started = time.monotonic()

    def note(fn):
        try:
            fn()
            results.append("ok")
        except mm.MultimodelError as exc:
            results.append(type(exc).__name__)

    if kind == "sync":
        with mm.Client([dep], **options) as client:
            for _ in range(n):
                note(lambda: client.query("hi"))
    else:
        async def main():
            async with mm.AsyncClient([dep], **options) as client:
                async def one():
                    try:
                        await client.query("hi")
                        results.append("ok")
                    except mm.MultimodelError as exc:
                        results.append(type(exc).__name__)
                await asyncio.gather(*(one() for _ in range(n)))
        asyncio.run(main())
    report = {"results": results, "elapsed": time.monotonic() - started}
    if state is not None:
        report["redis_errors"] = state.errors
        report["round_trips"] = state.round_trips
    print(json.dumps(report))
    """
)


def _fleet(base_url: str, shared: str, kinds: list[str], n: int) -> list[dict[str, Any]]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, base_url, shared, str(n), kind],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for kind in kinds
    ]
    out = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=110)  # under the per-test 120 s
        assert proc.returncode == 0, stderr.decode()[-2000:]
        out.append(json.loads(stdout.decode().strip().splitlines()[-1]))
    return out


KINDS = ["sync", "sync", "async", "async"]  # both clients in one fleet


@pytest.mark.slow
def test_four_processes_share_one_rpm(redis_url: str, prefix: str, raw: Any) -> None:
    """4 processes x 40 requests through rpm=120: more than a minute's quota, zero 429s."""
    shared = redis_url  # the default prefix: workers share state, as an application would

    for stale in raw.scan_iter(match="{multimodel}:*"):
        raw.delete(stale)
    started = time.monotonic()
    with LimitedServer(rpm=120) as server:
        runs = _fleet(server.base_url, shared, KINDS, 40)
    elapsed = time.monotonic() - started
    results = [r for run in runs for r in run["results"]]
    assert [run["redis_errors"] for run in runs] == [0, 0, 0, 0]
    assert results.count("ok") == 160, {r: results.count(r) for r in set(results)}
    assert server.rejected == 0 and server.answered == 160
    assert elapsed >= 60  # the 121st request cannot go before the first minute is over
    for stale in raw.scan_iter(match="{multimodel}:*"):
        raw.delete(stale)


def test_four_processes_without_shared_state_exceed_the_rpm() -> None:
    """The counter-test: each process keeps its own quota, so the fleet sends 4x40 at once."""
    with LimitedServer(rpm=120) as server:
        runs = _fleet(server.base_url, "-", KINDS, 40)
    results = [r for run in runs for r in run["results"]]
    counts = {r: results.count(r) for r in set(results)}
    assert server.rejected == 40 and counts == {"ok": 120, "RateLimited": 40}, counts


# -- a stream's bookkeeping at the end of its body ---------------------------------------------


def test_stream_reconciles_when_its_body_ends(state: mm.RedisState, raw: Any) -> None:
    with MockProviderServer() as server:
        dep = deployment(server, tpm=100_000)
        with mm.Client([dep], shared_state=state) as client:
            stream = client.stream("hello there", max_tokens=5000)
            for _ in stream:
                pass
            # No other call, the stream not closed: the end of the body wrote the real usage.
            assert stream.response is not None
            assert not state.pending
            used = int(raw.get(key(state, "tokused")) or 0)
            assert used == stream.response.usage.total_tokens < 5000


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_async_stream_reconciles_when_its_body_ends(state: mm.RedisState, raw: Any) -> None:
    with MockProviderServer() as server:
        dep = deployment(server, tpm=100_000)
        async with mm.AsyncClient([dep], shared_state=state) as client:
            stream = client.stream("hello there", max_tokens=5000)
            async for _ in stream:
                pass
            assert stream.response is not None
            assert not state.pending
            used = int(raw.get(key(state, "tokused")) or 0)
            assert used == stream.response.usage.total_tokens < 5000


# -- status changes pushed to idle processes ---------------------------------------------------


def _open_breaker_in(state: mm.RedisState, server: MockProviderServer) -> None:
    """Another process (its own RedisState and client) opens the breaker of "failing"."""
    circuit = mm.CircuitPolicy(failure_threshold=1, cooldown=30)
    dep = deployment(server, "failing")
    with mm.Client([dep], shared_state=state, max_retries=0, circuit=circuit, deadline=1) as a:
        with pytest.raises(ServerError):
            a.query("hi")
        assert a.status() == {"openai/m": "down"}


def _wait_for(predicate: Any, seconds: float = 10.0) -> float:
    # A bound, not a timing claim: ~1 s on an idle machine, more on a loaded CI runner.
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < seconds, "not pushed in time"
        time.sleep(0.01)
    return time.monotonic() - started


FAILING = {"failing": MockDeployment(format="openai", behavior=Behavior(script=[500]))}


def test_an_opened_breaker_is_pushed_to_an_idle_client(
    state: mm.RedisState, other: mm.RedisState
) -> None:
    with MockProviderServer(FAILING) as server:
        dep = deployment(server, "failing")
        seen: list[Any] = []
        with mm.Client([dep], shared_state=other, max_retries=0, deadline=1) as idle:
            idle.on("model_status_change", seen.append)
            assert idle.status() == {"openai/m": "healthy"}
            time.sleep(0.2)  # the listener found the stream's end
            trips = other.round_trips
            _open_breaker_in(state, server)
            # pushed (the idle client makes no round trip: checked below), not polled
            _wait_for(lambda: idle.status() == {"openai/m": "down"})
            _wait_for(lambda: len(seen) == 1)
            assert other.round_trips == trips  # the idle client sent nothing
            assert [(e.previous, e.status) for e in seen] == [("healthy", "down")]
            assert seen[0].reason == "ServerError (in another process)"
            # Its own breaker is open for the rest of the cooldown: refused without Redis.
            with pytest.raises(mm.NoDeploymentAvailable, match="cooldown"):
                idle.query("hi")
            assert requests_to(server, "failing") == 1
            thread = other._thread
            assert thread is not None and thread.is_alive()
        # close() stopped and joined the listener, woken at once.
        assert not thread.is_alive() and not other.listening
        time.sleep(0.1)
        assert len(seen) == 1  # once, never echoed back


def test_a_client_dropped_unclosed_is_collected_and_its_listener_stops(
    state: mm.RedisState, other: mm.RedisState
) -> None:
    """The shared state holds its subscribers weakly: a client dropped without ``close()`` is
    not kept alive by it (or by the listener thread), and the listener ends once no
    subscriber is left, closing its connection."""
    import gc
    import weakref

    with MockProviderServer(FAILING) as server:
        client = mm.Client([deployment(server, "failing")], shared_state=other)
        assert client.status() == {"openai/m": "healthy"}  # first use: the listener starts
        _wait_for(lambda: other.listening)
        dropped = weakref.ref(client)
        del client
        gc.collect()
        assert dropped() is None
        _wait_for(lambda: not other.listening)
    other.close()


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_async_an_opened_breaker_is_pushed_to_an_idle_client(
    state: mm.RedisState, other: mm.RedisState
) -> None:
    import asyncio

    with MockProviderServer(FAILING) as server:
        dep = deployment(server, "failing")
        seen: list[Any] = []
        async with mm.AsyncClient([dep], shared_state=other, max_retries=0, deadline=1) as idle:
            idle.on("model_status_change", seen.append)
            await asyncio.sleep(0.2)
            task = other._task
            assert task is not None and other.listening
            trips = other.round_trips
            await asyncio.to_thread(_open_breaker_in, state, server)
            started = time.monotonic()
            while idle.status() != {"openai/m": "down"} or not seen:
                assert time.monotonic() - started < 1.0, "not pushed in time"
                await asyncio.sleep(0.01)
            assert other.round_trips == trips
            assert [(e.previous, e.status) for e in seen] == [("healthy", "down")]
        # aclose() cancelled and awaited the listener task.
        assert task.done() and not other.listening


def test_a_probe_that_closes_the_breaker_is_pushed(
    state: mm.RedisState, other: mm.RedisState
) -> None:
    behavior = Behavior(script=[500, 200])
    circuit = mm.CircuitPolicy(failure_threshold=1, cooldown=0.3)
    with MockProviderServer({"failing": MockDeployment(format="openai", behavior=behavior)}) as s:
        dep = deployment(s, "failing")
        with (
            mm.Client([dep], shared_state=state, max_retries=0, circuit=circuit, deadline=1) as a,
            mm.Client([dep], shared_state=other, max_retries=0, circuit=circuit) as idle,
        ):
            assert idle.status() == {"openai/m": "healthy"}
            time.sleep(0.2)
            with pytest.raises(ServerError):
                a.query("hi")
            _wait_for(lambda: idle.status() == {"openai/m": "down"})
            time.sleep(0.35)
            assert a.query("hi").text  # the probe succeeds and closes the fleet's breaker
            _wait_for(lambda: idle.status()["openai/m"] != "down")


# -- Redis Cluster: the key layout, and scripts the server forgot ------------------------------


@pytest.mark.parametrize("prefix", ["multimodel", "fleet:eu", "odd}{prefix"])
def test_every_key_of_a_prefix_shares_one_cluster_slot(prefix: str) -> None:
    pytest.importorskip("redis")
    from redis.crc import key_slot

    state = mm.RedisState("redis://127.0.0.1:1/0", prefix=prefix)
    names = ["openai/gpt-4o", "azure/{weird}", "x"]
    keys = [state._key(n, w) for n in names for w in ("req", "tok", "toksize", "tokused")]
    keys += [state._key(n, w) for n in names for w in ("hold", "open", "probe")]
    keys += [state._budget_key("daily", k, "2026-12-07") for k in ("*", "user-1", "{u}")]
    keys += [state._events_key]
    # One admission script reads a deployment's keys and its budget cells together; on a
    # Cluster that is legal only when every key hashes to the same slot.
    assert len({key_slot(k.encode()) for k in keys}) == 1


def test_scripts_flushed_on_the_server_are_loaded_again(state: mm.RedisState, raw: Any) -> None:
    with MockProviderServer() as server:
        dep = deployment(server, rpm=100)
        with mm.Client([dep], shared_state=state) as client:
            assert client.query("hi").text
            raw.script_flush()  # a restarted or failed-over server forgot the scripts
            trips = state.round_trips
            assert client.query("hi").text
            # NOSCRIPT costs one more trip (load, then run), no error, no outage.
            assert state.round_trips == trips + 3 and state.errors == 0 and state.available
            assert raw.zcard(key(state, "req")) == 2


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_async_scripts_flushed_on_the_server_are_loaded_again(
    state: mm.RedisState, raw: Any
) -> None:
    with MockProviderServer() as server:
        dep = deployment(server, rpm=100)
        async with mm.AsyncClient([dep], shared_state=state) as client:
            assert (await client.query("hi")).text
            raw.script_flush()
            assert (await client.query("hi")).text
            assert state.errors == 0 and state.available
            assert raw.zcard(key(state, "req")) == 2


def test_threads_admitted_at_the_same_moment_share_round_trips(state: mm.RedisState) -> None:
    with MockProviderServer() as server:
        limited = [deployment(server, rpm=30)]
        answers: list[Any] = []
        with mm.Client(limited, shared_state=state, deadline=1) as client:

            def worker() -> None:
                for _ in range(5):
                    try:
                        answers.append(client.query("hi"))
                    except mm.NoDeploymentAvailable as exc:
                        answers.append(exc)

            in_threads(worker)
        trips = state.round_trips
    # Each verdict reached its own thread: exactly the fleet's limit was answered.
    assert sum(isinstance(a, mm.ChatResponse) for a in answers) == 30
    assert len(answers) == 40 and requests_to(server) == 30
    # 40 admissions and 30 answers' bookkeeping: one trip per admission at least without
    # batching (60 measured); threads asking while a trip is in flight share the next one
    # (~22 measured).
    assert trips < 40, trips


# -- learned quality ---------------------------------------------------------------------------


def feedback_client(state: mm.RedisState, ledger: Any = None) -> mm.Client:
    from multimodel.testing.fake import FakeProvider

    deps = [mm.Deployment(model="gpt-4o-mini", provider="openai", api_key=KEY)]
    return mm.Client(deps, shared_state=state, transport=FakeProvider(), ledger=ledger)


def test_feedback_reaches_the_other_process_estimates_once(
    state: mm.RedisState, other: mm.RedisState, tmp_path: Any
) -> None:
    path = tmp_path / "usage.db"
    with feedback_client(state, path) as a, feedback_client(other, path) as b:
        assert b.query("hi", model="gpt-4o-mini").text  # b's first read: where the stream ends
        r = a.query("hi", model="gpt-4o-mini", task="code")
        for _ in range(3):
            a.feedback(r, 0.0)
        # b's listener pushes a's scores, or b's next round trip brings them.
        b.query("hi", model="gpt-4o-mini")
        deadline = time.monotonic() + 10  # generous: a loaded CI machine delays the listener
        while b.quality.estimate("gpt-4o-mini", "code").samples < 3:
            assert time.monotonic() < deadline, "a's scores never reached b"
            time.sleep(0.02)
        est = b.quality.estimate("gpt-4o-mini", "code")
        assert est.samples == 3 and est.mean < 0.5
        assert a.quality.estimate("gpt-4o-mini", "code").samples == 3  # its own, once
        # The same scores, stored in the shared ledger too, are not counted twice.
        assert a.ledger is not None
        a.ledger.flush()
        assert b.sync_feedback() == 0
        assert b.quality.estimate("gpt-4o-mini", "code").samples == 3


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_async_feedback_reaches_the_other_process(
    state: mm.RedisState, other: mm.RedisState
) -> None:
    from multimodel.testing.fake import FakeProvider

    deps = [mm.Deployment(model="gpt-4o-mini", provider="openai", api_key=KEY)]
    async with (
        mm.AsyncClient(deps, shared_state=state, transport=FakeProvider()) as a,
        mm.AsyncClient(deps, shared_state=other, transport=FakeProvider()) as b,
    ):
        await b.query("hi", model="gpt-4o-mini")
        r = await a.query("hi", model="gpt-4o-mini", task="math")
        a.feedback(r, 1.0)
        await a.query("hi", model="gpt-4o-mini")  # a's next round trip sends it
        await b.query("hi", model="gpt-4o-mini")  # b's listener or round trip brings it
        for _ in range(500):  # within one read (~1 s) on an idle machine; 10 s bound
            if b.quality.estimate("gpt-4o-mini", "math").samples:
                break
            await anyio.sleep(0.02)
        assert b.quality.estimate("gpt-4o-mini", "math").samples == 1
