"""The Redis backend of the response cache (``pip install 'multimodel[redis]'``).

This module imports ``redis`` at its top, so it is imported only when :class:`RedisCache` is
first used (``multimodel.cache.RedisCache`` resolves it lazily). It shares entries between
processes and hosts; entries expire in Redis itself (``SET ... PX``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

try:
    import redis
    import redis.asyncio as aioredis
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "multimodel.cache.RedisCache needs the `redis` package: pip install 'multimodel[redis]'"
    ) from exc

__all__ = ["RedisCache"]

_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")
_SCAN_BATCH = 500


def _as_bytes(value: Any) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str):  # a client built with decode_responses=True
        return value.encode("utf-8")
    raise TypeError(f"unexpected value type from Redis: {type(value).__name__}")


def _px(ttl: float) -> int:
    return max(1, round(ttl * 1000))


_MANY = 1_000  # keys per MGET: bounded replies, still ~one round trip per thousand vectors


def _queue_sets(pipe: Any, prefix: str, items: Sequence[tuple[str, bytes]], ttl: float) -> None:
    for key, value in items:
        if ttl > 0:
            pipe.set(prefix + key, value, px=_px(ttl))
        else:
            pipe.delete(prefix + key)


class RedisCache:
    """A :class:`~multimodel.cache.CacheBackend` on Redis, with sync and async clients.

    Give a ``url`` and both clients are built from it when first needed (building one does no
    I/O), and closed by :meth:`close` / :meth:`aclose`. Or pass your own ``client``
    (:class:`redis.Redis`) and/or ``async_client`` (:class:`redis.asyncio.Redis`); those stay
    yours to close. Clients must return bytes (the default ``decode_responses=False``).

    ``redis.asyncio`` runs on asyncio only, so the async methods do not work under trio.

    Args:
        url: a Redis URL such as ``redis://localhost:6379/0``.
        client: a sync client to use instead of one built from ``url``.
        async_client: an asyncio client to use instead of one built from ``url``.
        prefix: prepended to every key; :meth:`clear` deletes only keys under it.

    Raises:
        ValueError: neither ``url`` nor a client was given.

    Example::

        from multimodel.cache import RedisCache, ResponseCache

        cache = ResponseCache(backend=RedisCache("redis://localhost:6379/0"))

    .. versionadded:: 0.1
    """

    __slots__ = ("_async", "_owned", "_prefix", "_sync", "_url")

    def __init__(
        self,
        url: str | None = None,
        *,
        client: redis.Redis | None = None,
        async_client: aioredis.Redis | None = None,
        prefix: str = "multimodel:",
    ) -> None:
        if url is None and client is None and async_client is None:
            raise ValueError("RedisCache needs a `url`, a `client` or an `async_client`")
        self._url = url
        self._sync = client
        self._async = async_client
        self._prefix = prefix
        self._owned: set[str] = set()

    def __repr__(self) -> str:
        # The URL may carry a password: never show it.
        return f"RedisCache(prefix={self._prefix!r})"

    @property
    def prefix(self) -> str:
        """The key prefix."""
        return self._prefix

    def _client(self) -> redis.Redis:
        if self._sync is None:
            if self._url is None:
                raise RuntimeError(
                    "this RedisCache has only an async client; pass `client=` or `url=` "
                    "to use it from the sync Client"
                )
            self._sync = redis.Redis.from_url(self._url)
            self._owned.add("sync")
        return self._sync

    def _aclient(self) -> aioredis.Redis:
        if self._async is None:
            if self._url is None:
                raise RuntimeError(
                    "this RedisCache has only a sync client; pass `async_client=` or `url=` "
                    "to use it from the AsyncClient"
                )
            self._async = aioredis.Redis.from_url(self._url)
            self._owned.add("async")
        return self._async

    def _match(self) -> str:
        return _GLOB_SPECIAL.sub(r"\\\1", self._prefix) + "*"

    def get(self, key: str) -> bytes | None:
        """See :meth:`CacheBackend.get <multimodel.cache.CacheBackend.get>`."""
        return _as_bytes(self._client().get(self._prefix + key))

    def set(self, key: str, value: bytes, ttl: float) -> None:
        """See :meth:`CacheBackend.set <multimodel.cache.CacheBackend.set>`."""
        if ttl > 0:
            self._client().set(self._prefix + key, value, px=_px(ttl))
        else:
            self.delete(key)

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values of ``keys`` in order, in one ``MGET`` per 1,000 keys."""
        client, prefix = self._client(), self._prefix
        out: list[bytes | None] = []
        for start in range(0, len(keys), _MANY):
            names = [prefix + k for k in keys[start : start + _MANY]]
            out.extend(map(_as_bytes, client.mget(names)))
        return out

    def set_many(self, items: Sequence[tuple[str, bytes]], ttl: float) -> None:
        """Store ``(key, value)`` pairs in one pipelined round trip (``ttl <= 0``: delete)."""
        if not items:
            return
        pipe = self._client().pipeline(transaction=False)
        _queue_sets(pipe, self._prefix, items, ttl)
        pipe.execute()

    async def aget_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Async :meth:`get_many`."""
        client, prefix = self._aclient(), self._prefix
        out: list[bytes | None] = []
        for start in range(0, len(keys), _MANY):
            names = [prefix + k for k in keys[start : start + _MANY]]
            out.extend(map(_as_bytes, await client.mget(names)))
        return out

    async def aset_many(self, items: Sequence[tuple[str, bytes]], ttl: float) -> None:
        """Async :meth:`set_many`."""
        if not items:
            return
        pipe = self._aclient().pipeline(transaction=False)
        _queue_sets(pipe, self._prefix, items, ttl)
        await pipe.execute()

    def delete(self, key: str) -> None:
        """See :meth:`CacheBackend.delete <multimodel.cache.CacheBackend.delete>`."""
        self._client().delete(self._prefix + key)

    def clear(self) -> None:
        """Delete every key under :attr:`prefix` (SCAN + UNLINK, in batches)."""
        client = self._client()
        batch: list[Any] = []
        for name in client.scan_iter(match=self._match(), count=_SCAN_BATCH):
            batch.append(name)
            if len(batch) >= _SCAN_BATCH:
                client.unlink(*batch)
                batch.clear()
        if batch:
            client.unlink(*batch)

    async def aget(self, key: str) -> bytes | None:
        """See :meth:`CacheBackend.aget <multimodel.cache.CacheBackend.aget>`."""
        return _as_bytes(await self._aclient().get(self._prefix + key))

    async def aset(self, key: str, value: bytes, ttl: float) -> None:
        """See :meth:`CacheBackend.aset <multimodel.cache.CacheBackend.aset>`."""
        if ttl > 0:
            await self._aclient().set(self._prefix + key, value, px=_px(ttl))
        else:
            await self.adelete(key)

    async def adelete(self, key: str) -> None:
        """See :meth:`CacheBackend.adelete <multimodel.cache.CacheBackend.adelete>`."""
        await self._aclient().delete(self._prefix + key)

    async def aclear(self) -> None:
        """Async :meth:`clear`."""
        client = self._aclient()
        batch: list[Any] = []
        async for name in client.scan_iter(match=self._match(), count=_SCAN_BATCH):
            batch.append(name)
            if len(batch) >= _SCAN_BATCH:
                await client.unlink(*batch)
                batch.clear()
        if batch:
            await client.unlink(*batch)

    def close(self) -> None:
        """Close the sync client if this object built it."""
        if "sync" in self._owned and self._sync is not None:
            self._sync.close()
            self._sync = None
            self._owned.discard("sync")

    async def aclose(self) -> None:
        """Close the async client if this object built it."""
        if "async" in self._owned and self._async is not None:
            await self._async.aclose()
            self._async = None
            self._owned.discard("async")
