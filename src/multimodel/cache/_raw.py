"""The raw entries of the response cache: caller-made keys to bytes (embeddings keep one
vector per input), many at a time, with the cache's counters and outage handling.

:class:`RawEntries` is a mixin of :class:`~multimodel.cache.ResponseCache`, which sets the
attributes it reads. A backend with ``get_many`` / ``set_many`` (and ``aget_many`` /
``aset_many``; :class:`~multimodel.cache.RedisCache`: one MGET, one pipelined write) answers a
call in one round trip instead of one per key (5,000 cached vectors over a local Redis: 0.86 s
one by one, 0.12 s at once).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multimodel.cache import CachePolicy

__all__ = ["RawEntries"]


class RawEntries:
    """``get_bytes_many`` / ``set_bytes_many`` and their async twins (a mixin)."""

    __slots__ = ()
    _backend: Any
    _counts: dict[str, int]
    _down: bool
    _epoch: int
    _lock: threading.Lock
    _policy: CachePolicy

    if TYPE_CHECKING:  # ResponseCache's outage handling, which these methods share

        def _failed(self, action: str, exc: Exception) -> bool: ...

        def _succeeded(self, epoch: int) -> None: ...

    def _found(self, epoch: int, found: list[bytes | None]) -> list[bytes | None]:
        if self._down:
            self._succeeded(epoch)
        hits = sum(data is not None for data in found)
        with self._lock:
            self._counts["hits"] += hits
            self._counts["misses"] += len(found) - hits
        return found

    def get_bytes_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The raw entries under ``keys``, in order (``None`` for each miss; every hit and
        miss counted); all ``None`` while the backend fails."""
        epoch = self._epoch
        backend = self._backend
        many = getattr(backend, "get_many", None)
        try:
            found = list(many(keys)) if many is not None else [backend.get(k) for k in keys]
        except Exception as exc:  # noqa: BLE001 - a broken cache must not fail the request
            self._failed("lookup", exc)
            return [None] * len(keys)
        return self._found(epoch, found)

    async def aget_bytes_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Async :meth:`get_bytes_many`."""
        epoch = self._epoch
        backend = self._backend
        many = getattr(backend, "aget_many", None)
        try:
            found = (
                list(await many(keys))
                if many is not None
                else [await backend.aget(k) for k in keys]
            )
        except Exception as exc:  # noqa: BLE001 - a broken cache must not fail the request
            self._failed("lookup", exc)
            return [None] * len(keys)
        return self._found(epoch, found)

    def _stored(self, epoch: int, count: int) -> bool:
        if self._down:
            self._succeeded(epoch)
        with self._lock:
            self._counts["stores"] += count
        return True

    def set_bytes_many(
        self, items: Sequence[tuple[str, bytes]], *, ttl: float | None = None
    ) -> bool:
        """Write raw entries, ``(key, value)`` pairs (``ttl`` defaults to the policy's)."""
        ttl = self._policy.ttl if ttl is None else ttl
        epoch = self._epoch
        backend = self._backend
        many = getattr(backend, "set_many", None)
        try:
            if many is not None:
                many(items, ttl)
            else:
                for key, value in items:
                    backend.set(key, value, ttl)
        except Exception as exc:  # noqa: BLE001 - a broken cache must not fail the request
            return self._failed("store", exc)
        return self._stored(epoch, len(items))

    async def aset_bytes_many(
        self, items: Sequence[tuple[str, bytes]], *, ttl: float | None = None
    ) -> bool:
        """Async :meth:`set_bytes_many`."""
        ttl = self._policy.ttl if ttl is None else ttl
        epoch = self._epoch
        backend = self._backend
        many = getattr(backend, "aset_many", None)
        try:
            if many is not None:
                await many(items, ttl)
            else:
                for key, value in items:
                    await backend.aset(key, value, ttl)
        except Exception as exc:  # noqa: BLE001 - a broken cache must not fail the request
            return self._failed("store", exc)
        return self._stored(epoch, len(items))
