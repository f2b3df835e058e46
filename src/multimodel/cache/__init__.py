"""Response cache: canonical keys, a policy, pluggable backends and (de)serialization.

:func:`cache_key` hashes what changes the answer, within a tenant :func:`scope_for` names;
:class:`CachePolicy` says what is cached and how long; :class:`MemoryCache` (LRU + TTL) and
``RedisCache`` (``pip install 'multimodel[redis]'``) are :class:`CacheBackend` stores; and
:class:`ResponseCache` (see its example) is what the clients call. Only the backends do
I/O, and importing does nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from cachetools import TLRUCache

from multimodel._core.clock import Clock, SystemClock
from multimodel.cache._raw import RawEntries
from multimodel.types import ChatChunk, ChatRequest, ChatResponse, ToolCallDelta

if TYPE_CHECKING:
    from multimodel.cache._redis import RedisCache

__all__ = [
    "CACHE_VERSION", "CacheBackend", "CachePolicy", "MemoryCache", "RedisCache", "ResponseCache",
    "cache_key", "chunks_from_response", "decode_response", "encode_response", "scope_for",
]  # fmt: skip

_log = logging.getLogger("multimodel.cache")

CACHE_VERSION = "mm-cache-v1"
"""Hashed into every key; bump it when the key material or the stored format changes."""

# Request fields that do not change the answer (`user` selects the scope instead).
_NOT_IN_KEY = {"user": True, "metadata": True, "tags": True}
# What a stored response keeps; latency, ttft, cost and `cached` describe one delivery.
_STORED = {"id", "message", "finish_reason", "raw_finish_reason", "usage", "model", "provider"}
_STORED |= {"deployment", "request_id"}


def scope_for(request: ChatRequest, namespace: str | None = None) -> str:
    """Name the tenant whose entries ``request`` may read and write.

    An explicit ``namespace`` wins, shared by all its users (``"ns:<namespace>"``); else
    ``"user:<request.user>"``; else ``"global"``. The prefixes keep the three kinds apart.
    Example: ``scope_for(ChatRequest(model="m", messages=msgs, user="al"))`` is ``"user:al"``.

    .. versionadded:: 0.1
    """
    if namespace is not None:
        return "ns:" + namespace
    if request.user is not None:
        return "user:" + request.user
    return "global"


def cache_key(request: ChatRequest, *, scope: str) -> str:
    """Return the SHA-256 hex key (64 characters) of ``request`` within ``scope``.

    The material hashed is ``[CACHE_VERSION, scope, fields]`` as canonical JSON (sorted keys,
    compact, UTF-8); ``fields`` are the request's fields but ``user``, ``metadata`` and
    ``tags``, unset ones left out. Dict order (``tools``, ``response_format``, ``extra_body``)
    never matters and ``stop="x"`` equals ``["x"]``; list order does matter.

    Example: ``cache_key(request, scope=scope_for(request))``.

    Raises:
        TypeError, ValueError: ``extra_body`` holds something JSON cannot carry.

    .. versionadded:: 0.1
    """
    fields = request.model_dump(mode="json", by_alias=True, exclude_none=True, exclude=_NOT_IN_KEY)
    material = json.dumps(
        [CACHE_VERSION, scope, fields], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(material.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, kw_only=True, slots=True)
class CachePolicy:
    """Which requests are cached, for how long, and the default store's size.

    Args:
        ttl: seconds an entry lives (a per-call ``ttl`` to :meth:`ResponseCache.store` wins).
        max_entries: the bound of the default in-memory store.
        cache_sampled: also cache *sampled* requests. One with ``temperature > 0``, or with no
            temperature (providers then use 1), asks for a fresh random answer, so by default
            it is neither looked up nor stored (``cache=True`` on a call forces it).
        namespace: share entries among all users under this name (a per-call one wins).

    Example: ``CachePolicy(ttl=300, cache_sampled=True).cacheable(request, override=None)``.

    .. versionadded:: 0.1
    """

    ttl: float = 3600
    max_entries: int = 10_000
    cache_sampled: bool = False
    namespace: str | None = None

    def __post_init__(self) -> None:
        if not self.ttl > 0:
            raise ValueError(f"CachePolicy.ttl must be > 0 seconds, got {self.ttl!r}")
        if self.max_entries < 1:
            raise ValueError(f"CachePolicy.max_entries must be >= 1, got {self.max_entries!r}")

    def cacheable(self, request: ChatRequest, *, override: bool | None = None) -> bool:
        """Whether ``request`` may be served from and written to the cache.

        ``override`` is the per-call ``cache=``: ``False`` disables the cache for the call,
        ``True`` forces it even for a sampled request, ``None`` follows the policy.
        """
        if override is not None:
            return override
        return self.cache_sampled or request.temperature == 0


class CacheBackend(Protocol):
    """Where cached bytes live: key strings to opaque bytes, each with a TTL (``<= 0``: drop).

    The async twins keep the async client's loop free while a network store answers; a backend
    without I/O (:class:`MemoryCache`) implements them by calling the sync ones. A network
    backend may also offer ``get_many(keys)`` / ``set_many(items, ttl)`` and their async twins
    ``aget_many`` / ``aset_many`` (:class:`RedisCache` does): embeddings look up and store one
    entry per input, in one round trip with them, one per input without.

    .. versionadded:: 0.1
    """

    def get(self, key: str) -> bytes | None:
        """Return the value, or ``None`` when absent or expired."""

    def set(self, key: str, value: bytes, ttl: float) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds."""

    def delete(self, key: str) -> None:
        """Remove ``key`` if present."""

    def clear(self) -> None:
        """Remove every entry this backend owns."""

    async def aget(self, key: str) -> bytes | None:
        """Async :meth:`get`."""

    async def aset(self, key: str, value: bytes, ttl: float) -> None:
        """Async :meth:`set`."""

    async def adelete(self, key: str) -> None:
        """Async :meth:`delete`."""


class MemoryCache:
    """An in-process backend: least recently used evicted first, a TTL per entry, thread-safe.

    A :class:`cachetools.TLRUCache` behind a lock, timed by the clock's ``monotonic``, so
    tests inject a :class:`~multimodel._core.clock.ManualClock` and never sleep. Example::

        store = MemoryCache(max_entries=100, clock=clock)
        store.set("k", b"v", ttl=10); clock.advance(11); assert store.get("k") is None

    .. versionadded:: 0.1
    """

    __slots__ = ("_data", "_lock")

    def __init__(self, *, max_entries: int = 10_000, clock: Clock | None = None) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be >= 1, got {max_entries!r}")
        timer = (clock or SystemClock()).monotonic
        self._data: TLRUCache[str, tuple[float, bytes]]
        self._data = TLRUCache(max_entries, lambda _key, entry, now: now + entry[0], timer)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            self._data.expire()
            return len(self._data)

    def get(self, key: str) -> bytes | None:
        """See :meth:`CacheBackend.get`."""
        with self._lock:
            entry = self._data.get(key)
        return None if entry is None else entry[1]

    def set(self, key: str, value: bytes, ttl: float) -> None:
        """See :meth:`CacheBackend.set`."""
        with self._lock:
            if ttl > 0:
                self._data[key] = (ttl, value)
            else:
                self._data.pop(key, None)

    def delete(self, key: str) -> None:
        """See :meth:`CacheBackend.delete`."""
        with self._lock:
            self._data.pop(key, None)

    def clear(self) -> None:
        """See :meth:`CacheBackend.clear`."""
        with self._lock:
            self._data.clear()

    async def aget(self, key: str) -> bytes | None:
        """:meth:`get` (no I/O, nothing to await)."""
        return self.get(key)

    async def aset(self, key: str, value: bytes, ttl: float) -> None:
        """:meth:`set` (no I/O, nothing to await)."""
        self.set(key, value, ttl)

    async def adelete(self, key: str) -> None:
        """:meth:`delete` (no I/O, nothing to await)."""
        self.delete(key)


def encode_response(response: ChatResponse) -> bytes:
    """Serialize ``response`` for a backend, as UTF-8 JSON.

    Kept: id, message, finish reasons, usage, model, provider, deployment, request id. Not
    kept: the raw body, trace, cost and its breakdown, latency, ttft and ``cached``.

    .. versionadded:: 0.1
    """
    return response.model_dump_json(include=_STORED).encode("utf-8")


def decode_response(data: bytes) -> ChatResponse:
    """Rebuild a stored response, with ``cached=True`` and ``cost=Decimal(0)`` (hits are free).

    ``latency`` is 0; the caller sets it. Example: ``decode_response(encode_response(r))``.

    Raises:
        ValueError: ``data`` is not a stored response (corrupt, truncated, foreign).

    .. versionadded:: 0.1
    """
    response = ChatResponse.model_validate_json(data)
    return response.model_copy(update={"cached": True, "cost": Decimal(0)})


def chunks_from_response(response: ChatResponse, *, chunk_chars: int = 64) -> list[ChatChunk]:
    """Replay a (cached) response as stream chunks, for a caller that asked to stream.

    The text comes in chunks of ``chunk_chars`` characters (joined, they are ``response.text``);
    then the refusal, if any, in one chunk; then the tool calls, each one whole :class:`~multimodel.types.ToolCallDelta`; the last
    chunk has the finish reason and the usage.

    Example::

        text = "".join(chunk.text for chunk in chunks_from_response(response))

    .. versionadded:: 0.1
    """
    if chunk_chars < 1:
        raise ValueError(f"chunk_chars must be >= 1, got {chunk_chars!r}")
    common: dict[str, Any] = {"id": response.id, "model": response.model}
    text = response.text
    chunks = [
        ChatChunk(text=text[i : i + chunk_chars], **common)
        for i in range(0, len(text), chunk_chars)
    ]
    if refusal := response.refusal:
        chunks.append(ChatChunk(refusal=refusal, **common))
    if calls := response.tool_calls:
        deltas = [ToolCallDelta(index=i, **c.model_dump()) for i, c in enumerate(calls)]
        chunks.append(ChatChunk(tool_calls=deltas, **common))
    usage, finish, raw = response.usage, response.finish_reason, response.raw_finish_reason
    chunks.append(ChatChunk(finish_reason=finish, raw_finish_reason=raw, usage=usage, **common))
    return chunks


class ResponseCache(RawEntries):
    """A policy over a backend: what the clients call around each request.

    The cache never fails a request: a backend error is counted in :attr:`errors` and the
    request goes on uncached (to a provider); an entry that cannot be decoded is deleted and
    counts as a miss. Requests the policy skips count nowhere. The defaults are
    ``CachePolicy()`` and a :class:`MemoryCache` of ``policy.max_entries``.

    A backend that fails (a Redis server that is down) is logged once per outage on
    ``multimodel.cache``: one WARNING line when an operation first fails (the error, no
    traceback; later failures only at DEBUG), and one WARNING when an operation begun after
    that succeeds again, with how long the outage lasted and how many operations failed.
    :attr:`available` says which state the cache is in.

    Example::

        if (hit := cache.lookup(request, override=call_cache)) is not None:
            return hit.model_copy(update={"latency": elapsed})
        cache.store(request, response := send(request), override=call_cache)

    .. versionadded:: 0.1
    """

    __slots__ = (
        "_backend", "_counts", "_down", "_down_failures", "_down_since", "_epoch", "_lock",
        "_policy",
    )  # fmt: skip

    def __init__(
        self, policy: CachePolicy | None = None, *, backend: CacheBackend | None = None
    ) -> None:
        self._policy = CachePolicy() if policy is None else policy
        if backend is None:  # not `backend or ...`: an empty MemoryCache is falsy
            backend = MemoryCache(max_entries=self._policy.max_entries)
        self._backend = backend
        self._lock = threading.Lock()
        self._counts = {"hits": 0, "misses": 0, "stores": 0, "errors": 0}
        # Outage state, changed under the lock. `_epoch` counts outages: an operation that
        # began before the current one started cannot tell that the backend came back.
        self._down = False
        self._epoch = 0
        self._down_since = 0.0
        self._down_failures = 0

    @property
    def policy(self) -> CachePolicy:
        """The policy in force."""
        return self._policy

    @property
    def hits(self) -> int:
        """Lookups answered from the cache."""
        return self._counts["hits"]

    @property
    def misses(self) -> int:
        """Cacheable lookups that found nothing usable."""
        return self._counts["misses"]

    @property
    def stores(self) -> int:
        """Responses written."""
        return self._counts["stores"]

    @property
    def errors(self) -> int:
        """Backend operations that raised."""
        return self._counts["errors"]

    @property
    def available(self) -> bool:
        """``False`` from a backend failure until a later operation succeeds (an outage)."""
        return not self._down

    def key_for(self, request: ChatRequest, *, namespace: str | None = None) -> str:
        """The key of ``request``: the per-call namespace, else the policy's, else per user."""
        ns = namespace if namespace is not None else self._policy.namespace
        return cache_key(request, scope=scope_for(request, ns))

    # The I/O-free steps, shared; the sync and async methods below only add the backend calls.

    def _count(self, name: str) -> bool:
        with self._lock:
            self._counts[name] += 1
        return name == "stores"

    def _failed(self, action: str, exc: Exception) -> bool:
        """Count a failed backend operation; log it if it starts an outage (once per outage)."""
        with self._lock:
            self._counts["errors"] += 1
            first = not self._down
            if first:
                self._down = True
                self._epoch += 1
                self._down_since = time.monotonic()
                self._down_failures = 0
            self._down_failures += 1
        error = f"{type(exc).__name__}: {str(exc)[:200]}"
        if first:
            _log.warning(
                "cache backend %r is unavailable (%s failed: %s); requests go on uncached "
                "until it answers again",
                self._backend,
                action,
                error,
            )
        else:
            _log.debug("cache backend %s failed again: %s", action, error)
        return False

    def _succeeded(self, epoch: int) -> None:
        """A backend operation that began at outage count ``epoch`` succeeded."""
        with self._lock:
            if not self._down or epoch != self._epoch:
                return  # up already, or it began before the outage: it proves nothing
            self._down = False
            lasted = time.monotonic() - self._down_since
            failures = self._down_failures
        _log.warning(
            "cache backend %r answers again after %.1f s (%d failed operations); caching resumed",
            self._backend,
            lasted,
            failures,
        )

    def _key(self, request: ChatRequest, override: bool | None, ns: str | None) -> str | None:
        if not self._policy.cacheable(request, override=override):
            return None
        try:
            return self.key_for(request, namespace=ns)
        except (TypeError, ValueError):  # extra_body JSON cannot carry; the request will say so
            return None

    def _decode(self, data: bytes | None) -> ChatResponse | None:
        if data is not None:
            try:
                response = decode_response(data)
            except ValueError:
                _log.warning("discarding a cache entry that cannot be decoded")
            else:
                self._count("hits")
                return response
        self._count("misses")
        return None

    def _entry(
        self, request: ChatRequest, response: ChatResponse, ttl: float | None,
        override: bool | None, ns: str | None,
    ) -> tuple[str, bytes, float] | None:  # fmt: skip
        ttl = self._policy.ttl if ttl is None else ttl
        if not ttl > 0:
            raise ValueError(f"ttl must be > 0 seconds, got {ttl!r}")
        # A replayed hit or a failed generation is not worth (re)storing.
        if response.cached or response.finish_reason == "error":
            return None
        key = self._key(request, override, ns)
        return None if key is None else (key, encode_response(response), ttl)

    def lookup(
        self, request: ChatRequest, *, override: bool | None = None, namespace: str | None = None
    ) -> ChatResponse | None:
        """Return the cached answer to ``request`` (``cached=True``, cost 0), or ``None``.

        ``override`` is the per-call ``cache=`` (see :meth:`CachePolicy.cacheable`);
        ``namespace`` a per-call namespace (see :func:`scope_for`).
        """
        if (key := self._key(request, override, namespace)) is None:
            return None
        epoch = self._epoch
        try:
            data = self._backend.get(key)
            if (hit := self._decode(data)) is None and data is not None:
                self._backend.delete(key)
        except Exception as exc:  # noqa: BLE001 - a broken cache must not fail the request
            self._failed("lookup", exc)
            return None
        if self._down:
            self._succeeded(epoch)
        return hit

    async def alookup(
        self, request: ChatRequest, *, override: bool | None = None, namespace: str | None = None
    ) -> ChatResponse | None:
        """Async :meth:`lookup`, through the backend's async methods."""
        if (key := self._key(request, override, namespace)) is None:
            return None
        epoch = self._epoch
        try:
            data = await self._backend.aget(key)
            if (hit := self._decode(data)) is None and data is not None:
                await self._backend.adelete(key)
        except Exception as exc:  # noqa: BLE001 - a broken cache must not fail the request
            self._failed("lookup", exc)
            return None
        if self._down:
            self._succeeded(epoch)
        return hit

    def store(
        self, request: ChatRequest, response: ChatResponse, *, ttl: float | None = None,
        override: bool | None = None, namespace: str | None = None,
    ) -> bool:  # fmt: skip
        """Remember ``response`` as the answer to ``request``; return whether it was written.

        Not written: requests the policy skips, responses that are cache hits themselves or
        ended with ``finish_reason="error"``. ``ttl`` defaults to the policy's; ``override``
        and ``namespace`` are as for :meth:`lookup` (use the same ones).

        Raises:
            ValueError: ``ttl`` is not positive.
        """
        if (entry := self._entry(request, response, ttl, override, namespace)) is None:
            return False
        epoch = self._epoch
        try:
            self._backend.set(*entry)
        except Exception as exc:  # noqa: BLE001 - a broken cache must not fail the request
            return self._failed("store", exc)
        if self._down:
            self._succeeded(epoch)
        return self._count("stores")

    async def astore(
        self, request: ChatRequest, response: ChatResponse, *, ttl: float | None = None,
        override: bool | None = None, namespace: str | None = None,
    ) -> bool:  # fmt: skip
        """Async :meth:`store`, through the backend's async methods."""
        if (entry := self._entry(request, response, ttl, override, namespace)) is None:
            return False
        epoch = self._epoch
        try:
            await self._backend.aset(*entry)
        except Exception as exc:  # noqa: BLE001 - a broken cache must not fail the request
            return self._failed("store", exc)
        if self._down:
            self._succeeded(epoch)
        return self._count("stores")


def __getattr__(name: str) -> Any:
    # RedisCache lives in its own module so that `redis` is imported only when it is used.
    if name == "RedisCache":
        from multimodel.cache._redis import RedisCache

        return RedisCache
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
