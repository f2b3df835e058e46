"""The response cache under embeddings, over the mock server on ``Client`` and ``AsyncClient``
(asyncio and trio): one lookup and one store per call on a backend that takes many keys at
once (Redis: MGET and a pipeline), one per input on one that does not, the vectors of answered
batches kept when another batch fails the call, and a real Redis server."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

import multimodel as mm
from multimodel import errors
from multimodel.cache import ResponseCache
from multimodel.providers import register_provider
from multimodel.providers.presets import ProviderPreset
from multimodel.testing import Behavior, MockDeployment, MockProviderServer

KEY = "sk-test-embedding-cache-0123456789"
register_provider(  # two inputs a request
    ProviderPreset("test-embed-cache-pairs", "openai", None, ("TEST_EMBED_KEY",),
                   options={"embedding_batch_size": 2})
)  # fmt: skip
TEXTS = [f"passage {i}" for i in range(10)]
MOCKS = {"ok": MockDeployment(format="openai")}


class Backend:
    """A ``CacheBackend`` over a dict that counts its calls; ``many`` adds ``get_many`` /
    ``set_many`` (and their async twins)."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.calls: list[str] = []

    def get(self, key: str) -> bytes | None:
        self.calls.append("get")
        return self.data.get(key)

    def set(self, key: str, value: bytes, ttl: float) -> None:
        self.calls.append("set")
        self.data[key] = value

    def delete(self, key: str) -> None:
        self.data.pop(key, None)

    def clear(self) -> None:
        self.data.clear()

    async def aget(self, key: str) -> bytes | None:
        return self.get(key)

    async def aset(self, key: str, value: bytes, ttl: float) -> None:
        self.set(key, value, ttl)

    async def adelete(self, key: str) -> None:
        self.delete(key)


class ManyBackend(Backend):
    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        self.calls.append("get_many")
        return [self.data.get(k) for k in keys]

    def set_many(self, items: Sequence[tuple[str, bytes]], ttl: float) -> None:
        self.calls.append("set_many")
        self.data.update(items)

    async def aget_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return self.get_many(keys)

    async def aset_many(self, items: Sequence[tuple[str, bytes]], ttl: float) -> None:
        self.set_many(items, ttl)


def fleet(server: MockProviderServer, name: str = "ok") -> list[mm.Deployment]:
    return [
        mm.Deployment(
            model="text-embedding-3-small", provider="test-embed-cache-pairs", api_key=KEY,
            base_url=server.base_url(name), name=name,
        )
    ]  # fmt: skip


def check_calls(backend: Backend, first: Any, second: Any) -> None:
    assert first.vectors[:5] == second.vectors[:5] and len(second.vectors) == 10
    assert (first.cached, second.cached) == (0, 5)
    if isinstance(backend, ManyBackend):  # one lookup and one store a call
        assert backend.calls == ["get_many", "set_many", "get_many", "set_many"]
    else:  # one per input
        assert backend.calls == ["get"] * 5 + ["set"] * 5 + ["get"] * 10 + ["set"] * 5


@pytest.mark.parametrize("kind", [Backend, ManyBackend])
def test_one_lookup_and_one_store_a_call_when_the_backend_takes_many(kind: type) -> None:
    backend = kind()
    with MockProviderServer(MOCKS) as server:
        with mm.Client(fleet(server), cache=ResponseCache(backend=backend)) as c:
            first = c.embed(TEXTS[:5])
            second = c.embed(TEXTS)
            assert c.cache is not None and (c.cache.hits, c.cache.stores) == (5, 10)
    check_calls(backend, first, second)


@pytest.mark.anyio
@pytest.mark.parametrize("kind", [Backend, ManyBackend])
async def test_async_one_lookup_and_one_store_a_call_when_the_backend_takes_many(
    kind: type,
) -> None:
    backend = kind()
    with MockProviderServer(MOCKS) as server:
        async with mm.AsyncClient(fleet(server), cache=ResponseCache(backend=backend)) as c:
            first = await c.embed(TEXTS[:5])
            second = await c.embed(TEXTS)
    check_calls(backend, first, second)


# -- a failed call keeps what it paid for -----------------------------------------------------

ONE_THEN_REFUSED = Behavior(script=[200], fail_rate=1.0, fail_status=400)


def test_answered_batches_are_cached_when_another_fails_the_call() -> None:
    mocks = {"half": MockDeployment(format="openai", behavior=ONE_THEN_REFUSED)}
    with MockProviderServer(mocks) as server:
        with mm.Client(fleet(server, "half"), cache=True) as c:
            with pytest.raises(errors.BadRequestError):
                c.embed(TEXTS[:4])  # two batches: the first request answered, the next refused
            assert c.cache is not None and c.cache.stores == 2
            server.set_behavior("half", Behavior())
            sent = len(server.requests("half"))
            again = c.embed(TEXTS[:4])
        assert len(server.requests("half")) == sent + 1  # only the batch still missing
    assert again.cached == 2 and len(again.vectors) == 4


@pytest.mark.anyio
async def test_async_answered_batches_are_cached_when_another_fails_the_call() -> None:
    mocks = {"half": MockDeployment(format="openai", behavior=ONE_THEN_REFUSED)}
    with MockProviderServer(mocks) as server:
        async with mm.AsyncClient(fleet(server, "half"), cache=True) as c:
            with pytest.raises(errors.BadRequestError):
                await c.embed(TEXTS[:4])
            server.set_behavior("half", Behavior())
            again = await c.embed(TEXTS[:4])
    assert again.cached == 2 and len(again.vectors) == 4


# -- a real Redis server ----------------------------------------------------------------------


def test_redis_serves_cached_vectors(redis_url: str) -> None:
    from multimodel.cache import RedisCache

    texts = [f"{redis_url} sync {i}" for i in range(2_500)]  # three MGETs of at most 1,000
    backend = RedisCache(redis_url, prefix="mm-test-embed:")
    try:
        with MockProviderServer(MOCKS) as server:
            with mm.Client(fleet(server), cache=ResponseCache(backend=backend)) as c:
                first = c.embed(texts)
                second = c.embed(texts)
                batches = len(server.requests("ok"))
        assert (first.cached, second.cached, second.batches) == (0, 2_500, 0)
        assert second.vectors == first.vectors and batches == first.batches
    finally:
        backend.clear()
        backend.close()


# redis.asyncio runs on asyncio only.
@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_async_redis_serves_cached_vectors(redis_url: str) -> None:
    from multimodel.cache import RedisCache

    texts = [f"{redis_url} async {i}" for i in range(1_500)]
    backend = RedisCache(redis_url, prefix="mm-test-embed-async:")
    try:
        with MockProviderServer(MOCKS) as server:
            async with mm.AsyncClient(fleet(server), cache=ResponseCache(backend=backend)) as c:
                first = await c.embed(texts)
                second = await c.embed(texts)
        assert (first.cached, second.cached) == (0, 1_500)
        assert second.vectors == first.vectors
    finally:
        await backend.aclear()
        await backend.aclose()
