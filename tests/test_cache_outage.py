"""A cache backend that goes down: one WARNING per outage, one when it comes back, requests go
on uncached meanwhile; thread-safe and async-safe.

Against a real Redis server that the tests start, stop and restart on a port of their own
(``redis_process`` of ``conftest.py``; skipped when ``redis-server`` is not installed), against a port where nothing listens, and
against an in-memory backend that fails on demand.
"""

from __future__ import annotations

import logging
import threading
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import anyio
import pytest

import multimodel as mm
from multimodel.cache import CachePolicy, MemoryCache, ResponseCache
from multimodel.testing import MockProviderServer
from multimodel.types import ChatRequest, ChatResponse, Message, Usage

if TYPE_CHECKING:
    from tests.conftest import RedisProcess

LOGGER = "multimodel.cache"


def req(content: str = "hi") -> ChatRequest:
    return ChatRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": content}], "temperature": 0}
    )


def resp(text: str = "hello") -> ChatResponse:
    return ChatResponse(
        id="r1",
        message=Message(role="assistant", content=text),
        finish_reason="stop",
        usage=Usage(input_tokens=3, output_tokens=1),
        model="m-1",
        provider="openai",
        deployment="d1",
        cost=Decimal("0.1"),
    )


def warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and r.levelno >= logging.WARNING]


def assert_short(record: logging.LogRecord) -> None:
    """One line, no traceback."""
    assert record.exc_info is None and record.exc_text is None
    assert "\n" not in record.getMessage()


def until(check: Any, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# -- a real Redis that goes away and comes back ------------------------------------------------


def test_sync_client_through_a_redis_outage(
    redis_process: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    from multimodel.cache import RedisCache

    caplog.set_level(logging.DEBUG, logger=LOGGER)
    backend = RedisCache(redis_process.url)
    cache = ResponseCache(CachePolicy(ttl=60), backend=backend)
    with (
        MockProviderServer() as server,
        mm.Client(
            deployments=[
                mm.Deployment(
                    model="m",
                    provider="openai",
                    api_key="sk-test-outage-0123",
                    base_url=server.base_url("openai-mock"),
                )
            ],
            cache=cache,
        ) as client,
    ):
        assert not client.query("warm", temperature=0).cached
        assert client.query("warm", temperature=0).cached
        redis_process.stop()
        for i in range(20):  # each one a lookup and a store that fail
            answer = client.query(f"during {i}", temperature=0)
            assert answer.text and not answer.cached
        assert not cache.available
        assert cache.errors == 40
        records = warnings(caplog)
        assert len(records) == 1
        assert_short(records[0])
        assert "unavailable" in records[0].getMessage()

        redis_process.start()
        until(lambda: client.query("after", temperature=0) is not None and cache.available)
        assert client.query("after", temperature=0).cached  # caching resumed
        records = warnings(caplog)
        assert len(records) == 2  # the outage and the recovery, nothing else
        assert_short(records[1])
        assert "answers again" in records[1].getMessage()
    backend.close()


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # redis.asyncio runs on asyncio only
async def test_async_client_through_a_redis_outage(
    redis_process: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    from multimodel.cache import RedisCache

    caplog.set_level(logging.DEBUG, logger=LOGGER)
    backend = RedisCache(redis_process.url)
    cache = ResponseCache(CachePolicy(ttl=60), backend=backend)
    with MockProviderServer() as server:
        async with mm.AsyncClient(
            deployments=[
                mm.Deployment(
                    model="m",
                    provider="openai",
                    api_key="sk-test-outage-0123",
                    base_url=server.base_url("openai-mock"),
                )
            ],
            cache=cache,
        ) as client:
            assert not (await client.query("warm", temperature=0)).cached
            assert (await client.query("warm", temperature=0)).cached
            redis_process.stop()

            async def one(i: int) -> None:
                answer = await client.query(f"during {i}", temperature=0)
                assert answer.text and not answer.cached

            async with anyio.create_task_group() as group:  # concurrent failures
                for i in range(30):
                    group.start_soon(one, i)
            assert not cache.available
            records = warnings(caplog)
            assert len(records) == 1
            assert_short(records[0])

            redis_process.start()
            deadline = time.monotonic() + 10
            while not cache.available:
                assert time.monotonic() < deadline
                await client.query("after", temperature=0)
                await anyio.sleep(0.05)
            assert (await client.query("after", temperature=0)).cached
            records = warnings(caplog)
            assert len(records) == 2
            assert "answers again" in records[1].getMessage()
    await backend.aclose()


def test_a_second_outage_is_reported_again(
    redis_process: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    from multimodel.cache import RedisCache

    backend = RedisCache(redis_process.url)
    cache = ResponseCache(CachePolicy(ttl=60), backend=backend)
    try:
        for _ in range(2):
            redis_process.stop()
            for _ in range(5):
                assert cache.lookup(req()) is None
                assert cache.store(req(), resp()) is False
            redis_process.start()
            until(lambda: cache.lookup(req()) is None and cache.available)
        messages = [r.getMessage() for r in warnings(caplog)]
        assert len(messages) == 4
        assert ["unavailable" in m for m in messages] == [True, False, True, False]
    finally:
        backend.close()


def test_nothing_listening_warns_once(
    caplog: pytest.LogCaptureFixture, dead_redis_url: str
) -> None:
    from multimodel.cache import RedisCache

    backend = RedisCache(dead_redis_url)
    cache = ResponseCache(backend=backend)
    try:
        for _ in range(25):
            assert cache.lookup(req()) is None
            assert cache.store(req(), resp()) is False
        assert cache.errors == 50 and not cache.available
        records = warnings(caplog)
        assert len(records) == 1
        assert_short(records[0])
        assert "ConnectionError" in records[0].getMessage()
    finally:
        backend.close()


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_nothing_listening_warns_once_async(
    caplog: pytest.LogCaptureFixture, dead_redis_url: str
) -> None:
    from multimodel.cache import RedisCache

    backend = RedisCache(dead_redis_url)
    cache = ResponseCache(backend=backend)
    try:
        async with anyio.create_task_group() as group:
            for _ in range(25):
                group.start_soon(cache.alookup, req())
                group.start_soon(cache.astore, req(), resp())
        assert cache.errors == 50
        assert len(warnings(caplog)) == 1
    finally:
        await backend.aclose()


# -- a backend that fails on demand ------------------------------------------------------------


class Switchable(MemoryCache):
    """A memory backend that raises while ``down`` is set; ``gate`` can hold a get open."""

    def __init__(self) -> None:
        super().__init__(max_entries=100)
        self.down = False
        self.gate: threading.Event | None = None
        self.entered = threading.Event()

    def get(self, key: str) -> bytes | None:
        gate = self.gate
        if gate is not None:
            self.entered.set()
            gate.wait(10)
        if self.down:
            raise ConnectionError("down")
        return super().get(key)

    def set(self, key: str, value: bytes, ttl: float) -> None:
        if self.down:
            raise ConnectionError("down")
        super().set(key, value, ttl)


def test_many_threads_failing_together_warn_once(caplog: pytest.LogCaptureFixture) -> None:
    backend = Switchable()
    cache = ResponseCache(backend=backend)
    backend.down = True
    barrier = threading.Barrier(16)

    def worker() -> None:
        barrier.wait()
        for _ in range(50):
            cache.lookup(req())
            cache.store(req(), resp())

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.errors == 16 * 100
    assert len(warnings(caplog)) == 1
    backend.down = False
    barrier = threading.Barrier(16)
    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.available
    assert len(warnings(caplog)) == 2  # one recovery, whatever the number of threads


def test_an_operation_begun_before_the_outage_does_not_end_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = Switchable()
    cache = ResponseCache(backend=backend)
    gate = backend.gate = threading.Event()
    slow = threading.Thread(target=cache.lookup, args=(req("slow"),))
    slow.start()
    assert backend.entered.wait(5)  # a lookup is under way, the backend up for it
    backend.gate = None
    backend.down = True
    assert cache.store(req(), resp()) is False  # the outage begins
    backend.down = False
    gate.set()  # the slow lookup succeeds now, but it began before the outage
    slow.join(10)
    assert not cache.available  # it proved nothing about the backend now
    assert len(warnings(caplog)) == 1
    assert cache.lookup(req()) is None  # a lookup begun after it: the backend is back
    assert cache.available
    assert len(warnings(caplog)) == 2
