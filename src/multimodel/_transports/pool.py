"""HTTP/1.1 transports (async and sync) whose connection pool reuses a connection in O(1).

httpx's default async pool (httpcore's ``AsyncConnectionPool``) re-examines every connection,
and for each idle one counts all of them again, on every request start and end
(encode/httpcore#1035, encode/httpx#3215). With 32 requests in flight against a 20 ms local
server that is ~2,000 state checks and dozens of socket polls per request: the client saturates
a core at ~150 requests/s. This pool keeps, per origin, a stack of idle connections: a request
pops the most recently used one (checking only that one for expiry), and its response hands the
connection back when it is closed. Measured the same way: ~860 requests/s at 32 in flight,
~760 at 200, on asyncio and on trio (anyio).

The limits are httpx's, and pool-wide: at most ``max_keepalive_connections`` idle connections
in all (an LRU across origins, beside the per-origin stacks: when one too many is idle, the
least recently used one, of any origin, is closed), and at most ``max_connections`` open in all
(in use or idle: opening a connection when the pool is full first closes the least recently
used idle one). Every step stays O(1) per request.

The connections themselves are httpcore's (``httpcore.AsyncHTTPConnection``: connect, TLS,
HTTP/1.1 framing, keep-alive expiry), so the wire behaviour is httpx's. What differs is only the
bookkeeping: HTTP/1.1 only (no HTTP/2 multiplexing), ``max_connections`` enforced with a
semaphore (waiting counts against the ``pool`` timeout).

:class:`~multimodel.AsyncClient` and :class:`~multimodel.Client` use them for the httpx client
they create themselves; a client or transport you pass in is used as given. The sync pool is
thread-safe (one lock around the idle stacks, a bounded semaphore for ``max_connections``).
Proxies from the environment still go through httpx's own proxy transports (httpx mounts them
in front of these).
"""

from __future__ import annotations

import contextlib
import math
import ssl
import threading
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import anyio
import httpx

from .select import default_ssl_context
from .timed import time_left

if TYPE_CHECKING:
    import httpcore

__all__ = ["AsyncPoolTransport", "PoolTransport"]

_Key = tuple[bytes, bytes, "int | None"]  # an origin: scheme, host, port


class _Connection(Protocol):
    def is_idle(self) -> bool: ...
    def has_expired(self) -> bool: ...


_C = TypeVar("_C", bound=_Connection)  # httpcore's async or sync connection


def _exception_map() -> tuple[tuple[type[Exception], type[httpx.HTTPError]], ...]:
    import httpcore

    # Most specific first: the first match wins.
    return (
        (httpcore.ConnectTimeout, httpx.ConnectTimeout),
        (httpcore.ReadTimeout, httpx.ReadTimeout),
        (httpcore.WriteTimeout, httpx.WriteTimeout),
        (httpcore.PoolTimeout, httpx.PoolTimeout),
        (httpcore.TimeoutException, httpx.TimeoutException),
        (httpcore.ConnectError, httpx.ConnectError),
        (httpcore.ReadError, httpx.ReadError),
        (httpcore.WriteError, httpx.WriteError),
        (httpcore.NetworkError, httpx.NetworkError),
        (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
        (httpcore.LocalProtocolError, httpx.LocalProtocolError),
        (httpcore.ProtocolError, httpx.ProtocolError),
        (httpcore.ProxyError, httpx.ProxyError),
        (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    )


_EXCEPTIONS: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = ()

pool_wait_ended: ContextVar[httpx.Request | None] = ContextVar(
    "multimodel_pool_wait_ended", default=None
)
"""The request whose wait for a free connection an enclosing time limit cancelled (this task):
the client reports that as its own pool's exhaustion, not as the provider's timeout."""


@contextlib.contextmanager
def _httpx_errors() -> Iterator[None]:
    """Raise httpcore's exceptions as the matching httpx ones (the rest pass unchanged)."""
    try:
        yield
    except Exception as exc:
        mapped = _as_httpx(exc)
        if mapped is None:
            raise
        raise mapped from exc


def _as_httpx(exc: Exception) -> httpx.HTTPError | None:
    """The httpx exception for an httpcore one, else ``None``."""
    global _EXCEPTIONS
    if not _EXCEPTIONS:
        _EXCEPTIONS = _exception_map()
    for source, target in _EXCEPTIONS:
        if isinstance(exc, source):
            return target(str(exc))
    return None


class _ResponseStream(httpx.AsyncByteStream):
    """The body of one response; closing it hands the connection back to the pool."""

    bounds_io = True
    """Each read is bounded by the current ``time_limit`` (the connection's network backend)."""

    def __init__(
        self,
        stream: Any,
        connection: httpcore.AsyncHTTPConnection,
        key: _Key,
        pool: AsyncPoolTransport,
    ) -> None:
        self._stream = stream
        self._key = key
        self._parts: AsyncIterator[bytes] | None = None
        self._connection: httpcore.AsyncHTTPConnection | None = connection
        self._pool = pool

    # An iterator object rather than an async generator: a generator abandoned mid-body would
    # be finalized by the garbage collector, outside the event loop (trio and asyncio warn).
    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        parts = self._parts
        if parts is None:
            parts = self._parts = self._stream.__aiter__()
        # Once per piece of the body: a try block, not a context manager (~1.5 µs each).
        try:
            part: bytes = await parts.__anext__()
        except StopAsyncIteration:
            raise
        except Exception as exc:
            mapped = _as_httpx(exc)
            if mapped is None:
                raise
            raise mapped from exc
        return part

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            with anyio.CancelScope(shield=True):
                await self._stream.aclose()
        finally:
            await self._pool._release(connection, self._key)

    def release_abandoned(self) -> None:
        """The response was dropped without being closed, where nothing can be awaited (a
        finalizer): free its connection slot now; the pool closes the connection on its next
        use (or when it is closed)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            self._pool._abandon(connection)

    __del__ = release_abandoned  # the last resort when nobody called either


class _Pool(Generic[_C]):
    """What both pools share: their limits, their counts, and the idle connections.

    Idle connections sit in two structures kept in step: a stack per origin (``_idle``; a
    request takes the most recently used one) and one LRU across origins (``_lru``, oldest
    first; the keep-alive cap and ``max_connections`` evict from its head). A connection is
    in both or in neither. The sync pool calls these methods under its lock; none does I/O
    but the socket poll of ``has_expired``.
    """

    def __init__(self, limits: httpx.Limits | None, ssl_context: ssl.SSLContext | None) -> None:
        limits = limits or httpx.Limits()
        self._max_connections = limits.max_connections
        self._max_idle = (
            limits.max_keepalive_connections
            if limits.max_keepalive_connections is not None
            else 1 << 30
        )
        if self._max_connections is not None:  # as httpx: no more idle than may be open
            self._max_idle = min(self._max_idle, self._max_connections)
        self._keepalive_expiry = limits.keepalive_expiry
        self._ssl_context = ssl_context  # None: the shared default, at the first https origin
        self._idle: dict[_Key, deque[_C]] = {}
        self._lru: OrderedDict[_C, _Key] = OrderedDict()
        self._open = 0
        self._closed = False

    @property
    def open_connections(self) -> int:
        """Connections open now, in use or idle."""
        return self._open

    @property
    def idle_connections(self) -> int:
        """Connections open and idle now, kept for reuse (at most ``max_keepalive_connections``)."""
        return len(self._lru)

    _slots: Any  # a semaphore of max_connections (None: unlimited)

    def _tls(self, origin: httpcore.Origin) -> ssl.SSLContext | None:
        """The TLS context of a new connection to ``origin`` (``None`` for plain http).

        The default is taken here, not when the pool is made: loading the CA bundle costs
        ~70 ms and ~1.6 MiB that a fleet of plain-``http`` servers never needs.
        """
        context = self._ssl_context
        if context is None and origin.scheme == b"https":
            context = self._ssl_context = default_ssl_context()
        return context

    def _release_slot(self) -> None:
        if self._slots is not None:
            self._slots.release()

    def _timed_out(self, timeout: float | None) -> httpx.PoolTimeout:
        return httpx.PoolTimeout(
            f"no connection free within {timeout}s (max_connections={self._max_connections})"
        )

    def _pop_idle(self, key: _Key) -> _C | None:
        """Take the most recently used idle connection to ``key`` (``None``: there is none)."""
        stack = self._idle.get(key)
        if not stack:
            return None
        connection = stack.pop()
        del self._lru[connection]
        return connection

    def _evict_oldest(self) -> _C:
        """Take the least recently used idle connection, of any origin, out of the pool."""
        connection, key = self._lru.popitem(last=False)
        stack = self._idle[key]
        # The oldest idle connection overall is the oldest of its origin: the bottom of its stack.
        stack.popleft()
        if not stack:
            del self._idle[key]
        return connection

    def _open_one(self) -> _C | None:
        """Count a new connection; returns an idle one to close first when the pool is full.

        That one is no longer counted: the caller closes it before the new one connects.
        """
        if self._max_connections is not None and self._open >= self._max_connections and self._lru:
            return self._evict_oldest()
        self._open += 1
        return None

    def _keep(self, key: _Key, connection: _C) -> _C | None:
        """Make a released ``connection`` idle, for reuse, if it may be kept.

        Returns what to close: ``connection`` itself when it may not be kept; else the least
        recently used idle connection when the keep-alive cap is passed, or when it has expired
        (it is reused last, so a socket the server already closed would linger: one check per
        release); else ``None``.
        """
        if self._closed or not connection.is_idle() or self._max_idle <= 0:
            return connection
        stack = self._idle.get(key)
        if stack is None:
            stack = self._idle[key] = deque()
        stack.append(connection)
        lru = self._lru
        lru[connection] = key
        if len(lru) > self._max_idle:
            return self._evict_oldest()
        if len(lru) > 1 and next(iter(lru)).has_expired():
            return self._evict_oldest()
        return None

    def _take_all_idle(self) -> list[_C]:
        """Empty the pool of its idle connections (to close them) and refuse new ones."""
        self._closed = True
        idle = list(self._lru)
        self._lru.clear()
        self._idle.clear()
        return idle


def _key(origin: httpcore.Origin) -> _Key:
    return (origin.scheme, origin.host, origin.port)


class AsyncPoolTransport(_Pool["httpcore.AsyncHTTPConnection"], httpx.AsyncBaseTransport):
    """An ``httpx`` async transport with an O(1) HTTP/1.1 connection pool (see the module).

    Its connections use :class:`~multimodel._transports.timed.AsyncTimedBackend`: inside a
    ``time_limit``, each read and write gets at most the time left.

    Args:
        limits: ``max_connections`` (in flight at once; ``None``: unlimited),
            ``max_keepalive_connections`` (idle ones kept, in all: of every origin together)
            and ``keepalive_expiry``.
        ssl_context: the TLS context for ``https`` origins (default: multimodel's shared one,
            loaded at the first ``https`` connection).
    """

    def __init__(
        self, *, limits: httpx.Limits | None = None, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        super().__init__(limits, ssl_context)
        self._slots: anyio.Semaphore | None = None  # made in the event loop, on first use
        self._backend: Any = None  # AsyncTimedBackend, built with the first connection
        # Connections of responses dropped unclosed: their slots are free, their sockets are
        # closed on the pool's next use (closing needs the event loop).
        self._abandoned: list[httpcore.AsyncHTTPConnection] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise RuntimeError("the transport is closed")
        if self._abandoned:
            await self._reap()
        core_request = _core_request(request)
        await self._acquire(request)
        origin = core_request.url.origin
        key = _key(origin)
        try:
            connection = await self._checkout(origin, key)
        except BaseException:
            self._release_slot()
            raise
        try:
            with _httpx_errors():
                response = await connection.handle_async_request(core_request)
        except BaseException:
            await self._discard(connection)
            raise
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream, connection, key, self),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        """Close every idle connection; connections in use close when their response does."""
        with anyio.CancelScope(shield=True):
            for connection in self._take_all_idle():
                self._open -= 1
                await connection.aclose()
            await self._reap()

    def _abandon(self, connection: httpcore.AsyncHTTPConnection) -> None:
        """A response was dropped unclosed: free its slot now, close its socket later."""
        self._abandoned.append(connection)
        self._release_slot()

    async def _reap(self) -> None:
        abandoned, self._abandoned = self._abandoned, []
        for connection in abandoned:
            await self._close(connection)

    # -- the pool --------------------------------------------------------------------------------

    async def _acquire(self, request: httpx.Request) -> None:
        if self._max_connections is None:
            return
        slots = self._slots
        if slots is None:
            slots = self._slots = anyio.Semaphore(self._max_connections)
        try:
            slots.acquire_nowait()
            return
        except anyio.WouldBlock:
            pass
        # The request's pool timeout: the client sets it a little below the attempt's own
        # time limit, so the wait gives up first (waiting for the client's own pool is the
        # client's failure, never the provider's). Not the effective deadline of the enclosing
        # scopes: that is also the caller's, and a caller's ``move_on_after`` that ends first
        # must cancel the call, not turn it into PoolExhausted.
        timeout = request.extensions.get("timeout", {}).get("pool")
        with anyio.move_on_after(math.inf if timeout is None else timeout) as scope:
            try:
                await slots.acquire()
            except anyio.get_cancelled_exc_class():
                # An enclosing limit may still win the race (a late wake-up on a loaded
                # machine): say that this request was waiting for the pool when it ended.
                pool_wait_ended.set(request)
                raise
        if scope.cancelled_caught:
            raise self._timed_out(timeout)

    async def _checkout(self, origin: httpcore.Origin, key: _Key) -> httpcore.AsyncHTTPConnection:
        import httpcore

        while (connection := self._pop_idle(key)) is not None:
            # Only the connection taken is checked (a socket poll): expired keep-alive, or a
            # server that closed it while it sat idle.
            if connection.is_idle() and not connection.has_expired():
                return connection
            await self._close(connection)
        victim = self._open_one()
        if victim is not None:
            with anyio.CancelScope(shield=True):
                await victim.aclose()
        if self._backend is None:
            from .timed import AsyncTimedBackend

            self._backend = AsyncTimedBackend()
        return httpcore.AsyncHTTPConnection(
            origin,
            ssl_context=self._tls(origin),
            keepalive_expiry=self._keepalive_expiry,
            network_backend=self._backend,
        )

    async def _release(self, connection: httpcore.AsyncHTTPConnection, key: _Key) -> None:
        """A response was closed: keep its connection for reuse, or close it."""
        try:
            dropped = self._keep(key, connection)
            if dropped is not None:
                await self._close(dropped)
        finally:
            self._release_slot()

    async def _discard(self, connection: httpcore.AsyncHTTPConnection) -> None:
        """A request failed or was cancelled before its response: drop its connection."""
        try:
            await self._close(connection)
        finally:
            self._release_slot()

    async def _close(self, connection: httpcore.AsyncHTTPConnection) -> None:
        self._open -= 1
        with anyio.CancelScope(shield=True):
            await connection.aclose()


def _core_request(request: httpx.Request) -> httpcore.Request:
    import httpcore

    url = request.url
    return httpcore.Request(
        method=request.method,
        url=httpcore.URL(
            scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
        ),
        headers=request.headers.raw,
        content=request.stream,
        extensions=request.extensions,
    )


class _SyncResponseStream(httpx.SyncByteStream):
    """The body of one response (sync); closing it hands the connection back to the pool."""

    bounds_io = True
    """Each read is bounded by the current ``time_limit`` (the connection's network backend)."""

    def __init__(
        self, stream: Any, connection: httpcore.HTTPConnection, key: _Key, pool: PoolTransport
    ) -> None:
        self._stream = stream
        self._key = key
        self._connection: httpcore.HTTPConnection | None = connection
        self._pool = pool

    def __iter__(self) -> Iterator[bytes]:
        with _httpx_errors():
            yield from self._stream

    def __del__(self) -> None:
        # Dropped without being closed: hand the connection back (a sync close needs no loop).
        self.close()

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            self._stream.close()
        finally:
            self._pool._release(connection, self._key)


class PoolTransport(_Pool["httpcore.HTTPConnection"], httpx.BaseTransport):
    """The sync twin of :class:`AsyncPoolTransport`, safe to share between threads.

    Its connections use :class:`~multimodel._transports.timed.TimedBackend`: inside a
    ``time_limit``, every connect, read and write gets at most the time left to the attempt.
    """

    bounds_io = True
    """Socket calls are bounded by the current ``time_limit`` (no checks needed around it)."""

    def __init__(
        self, *, limits: httpx.Limits | None = None, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        super().__init__(limits, ssl_context)
        self._backend: Any = None  # TimedBackend, built with the first connection
        self._lock = threading.Lock()
        self._slots = (
            threading.BoundedSemaphore(self._max_connections)
            if self._max_connections is not None
            else None
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        import httpcore

        if self._closed:
            raise RuntimeError("the transport is closed")
        core_request = _core_request(request)
        self._acquire(request)
        origin = core_request.url.origin
        key = _key(origin)
        try:
            connection = self._checkout(origin, key)
        except BaseException:
            self._release_slot()
            raise
        try:
            with _httpx_errors():
                response = connection.handle_request(core_request)
        except BaseException:
            self._discard(connection)
            raise
        assert isinstance(response, httpcore.Response)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_SyncResponseStream(response.stream, connection, key, self),
            extensions=response.extensions,
        )

    def close(self) -> None:
        """Close every idle connection; connections in use close when their response does."""
        with self._lock:
            idle = self._take_all_idle()
        for connection in idle:
            self._close(connection)

    def _acquire(self, request: httpx.Request) -> None:
        if self._slots is None:
            return
        timeout = request.extensions.get("timeout", {}).get("pool")
        left = time_left()  # the attempt's time limit bounds the wait too
        if left is not None and (timeout is None or left < timeout):
            timeout = max(left, 0.0)
        if not self._slots.acquire(timeout=timeout):
            raise self._timed_out(timeout)

    def _checkout(self, origin: httpcore.Origin, key: _Key) -> httpcore.HTTPConnection:
        import httpcore

        while True:
            with self._lock:
                connection = self._pop_idle(key)
                if connection is None:
                    victim = self._open_one()
                    break
            if connection.is_idle() and not connection.has_expired():
                return connection
            self._close(connection)
        if victim is not None:
            victim.close()
        if self._backend is None:
            from .timed import TimedBackend

            self._backend = TimedBackend()
        return httpcore.HTTPConnection(
            origin,
            ssl_context=self._tls(origin),
            keepalive_expiry=self._keepalive_expiry,
            network_backend=self._backend,
        )

    def _release(self, connection: httpcore.HTTPConnection, key: _Key) -> None:
        try:
            with self._lock:
                dropped = self._keep(key, connection)
            if dropped is not None:
                self._close(dropped)
        finally:
            self._release_slot()

    def _discard(self, connection: httpcore.HTTPConnection) -> None:
        try:
            self._close(connection)
        finally:
            self._release_slot()

    def _close(self, connection: httpcore.HTTPConnection) -> None:
        with self._lock:
            self._open -= 1
        connection.close()
