"""The Redis cache backend, against a real Redis server.

The server is ``$MULTIMODEL_TEST_REDIS_URL`` (the ``redis_url`` and ``raw`` fixtures of
``conftest.py``: skipped without the ``redis`` extra or a server, failed when the variable is set
and nothing answers).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from multimodel.cache import CachePolicy, ResponseCache, encode_response
from multimodel.types import ChatRequest, ChatResponse, Message, Usage


@pytest.fixture
def prefix() -> str:
    return f"mmtest:{uuid.uuid4().hex}:"


@pytest.fixture
def store(redis_url: str, prefix: str, raw: Any) -> Iterator[Any]:
    from multimodel.cache import RedisCache

    cache = RedisCache(redis_url, prefix=prefix)
    yield cache
    cache.clear()
    cache.close()


def req(**kw: Any) -> ChatRequest:
    base: dict[str, Any] = {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0,
    }
    return ChatRequest.model_validate({**base, **kw})


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


def _eventually_gone(get: Any, key: str, within: float = 3.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if get(key) is None:
            return True
        time.sleep(0.02)
    return False


def test_get_set_delete(store: Any, raw: Any, prefix: str) -> None:
    assert store.get("k") is None
    store.set("k", b"\x00bytes\xff", 60)
    assert store.get("k") == b"\x00bytes\xff"
    assert raw.get(prefix + "k") == b"\x00bytes\xff"  # stored under the prefix
    store.delete("k")
    store.delete("k")  # absent: no error
    assert store.get("k") is None


def test_ttl_is_set_in_milliseconds(store: Any, raw: Any, prefix: str) -> None:
    store.set("k", b"v", 1.5)
    assert 0 < raw.pttl(prefix + "k") <= 1500
    store.set("short", b"v", 0.05)
    assert _eventually_gone(store.get, "short")
    store.set("k", b"v", 0)  # not positive: do not keep
    assert store.get("k") is None


def test_clear_only_touches_its_prefix(redis_url: str, raw: Any) -> None:
    from multimodel.cache import RedisCache

    tag = uuid.uuid4().hex
    glob_prefix = f"mm[{tag}]*:"  # glob characters must be matched literally
    neighbour = f"mm[{tag}]x:keep"
    raw.set(neighbour, b"keep", px=60_000)
    cache = RedisCache(redis_url, prefix=glob_prefix)
    try:
        for i in range(1200):  # more than one SCAN/UNLINK batch
            cache.set(f"k{i}", b"v", 60)
        cache.clear()
        assert cache.get("k0") is None
        assert list(raw.scan_iter(match=f"mm\\[{tag}\\]\\*:*")) == []
        assert raw.get(neighbour) == b"keep"
    finally:
        raw.delete(neighbour)
        cache.close()


def test_response_cache_over_redis(store: Any) -> None:
    cache = ResponseCache(CachePolicy(ttl=60), backend=store)
    assert cache.lookup(req(user="alice")) is None
    assert cache.store(req(user="alice"), resp())
    hit = cache.lookup(req(user="alice"))
    assert hit is not None
    assert (hit.text, hit.cached, hit.cost) == ("hello", True, Decimal(0))
    assert cache.lookup(req(user="bob")) is None
    key = cache.key_for(req(seed=1))
    store.set(key, encode_response(resp())[:10], 60)  # corrupt
    assert cache.lookup(req(seed=1)) is None
    assert store.get(key) is None
    assert (cache.hits, cache.misses, cache.stores, cache.errors) == (1, 3, 1, 0)


def test_caller_clients_and_secrets(redis_url: str, raw: Any, prefix: str) -> None:
    from multimodel.cache import RedisCache

    with pytest.raises(ValueError, match="url"):
        RedisCache()
    assert "hunter2" not in repr(RedisCache("redis://:hunter2@localhost:6379/0"))
    mine = RedisCache(client=raw, prefix=prefix)
    mine.set("k", b"v", 60)
    assert mine.get("k") == b"v"
    mine.clear()
    mine.close()  # not ours to close: the caller's client still works
    assert raw.ping()


def test_unreachable_redis_degrades_to_no_cache(dead_redis_url: str) -> None:
    from multimodel.cache import RedisCache

    backend = RedisCache(dead_redis_url)
    cache = ResponseCache(backend=backend)
    try:
        assert cache.lookup(req()) is None
        assert cache.store(req(), resp()) is False
        assert cache.errors == 2
    finally:
        backend.close()


# redis.asyncio runs on asyncio only.
@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_async_get_set_clear(redis_url: str, prefix: str, raw: Any) -> None:
    from multimodel.cache import RedisCache

    store = RedisCache(redis_url, prefix=prefix)
    try:
        assert await store.aget("k") is None
        await store.aset("k", b"v", 1.5)
        assert await store.aget("k") == b"v"
        assert 0 < raw.pttl(prefix + "k") <= 1500
        await store.adelete("k")
        assert await store.aget("k") is None
        await store.aset("gone", b"v", 0)
        assert await store.aget("gone") is None

        cache = ResponseCache(CachePolicy(ttl=60), backend=store)
        assert await cache.astore(req(user="alice"), resp("async"))
        hit = await cache.alookup(req(user="alice"))
        assert hit is not None
        assert (hit.text, hit.cached) == ("async", True)
        assert await cache.alookup(req(user="bob")) is None
        assert store.get(cache.key_for(req(user="alice"))) is not None  # the twins share data

        await store.aclear()
        assert await store.aget(cache.key_for(req(user="alice"))) is None
    finally:
        await store.aclose()
        store.close()


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_async_needs_an_async_client(raw: Any, prefix: str) -> None:
    from multimodel.cache import RedisCache

    sync_only = RedisCache(client=raw, prefix=prefix)
    with pytest.raises(RuntimeError, match="async_client"):
        await sync_only.aget("k")
    # Through ResponseCache the mistake is logged and counted, never raised.
    cache = ResponseCache(backend=sync_only)
    assert await cache.alookup(req()) is None
    assert cache.errors == 1
