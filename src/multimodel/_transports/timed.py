"""A total time limit for blocking I/O, without threads or event loops.

The async client bounds an attempt with a cancel scope (``anyio.fail_after``); its streams,
on multimodel's async pool, pass the same limit to each read (:class:`AsyncTimedBackend`: the
read's own timeout, no extra cancel scope per read). A blocking read
cannot be cancelled, so the sync client passes every socket operation *the time left*: an
attempt sets a deadline (:func:`time_limit`, a context variable, so each thread and each hedged
attempt has its own), and :class:`TimedBackend` — the network backend of multimodel's sync pool
— gives each connect, TLS handshake, read and write ``min(its own timeout, time left)``, raising
httpcore's timeout error once nothing is left. A body that trickles in 4 bytes every 0.5 s then
ends at the limit, not after its last byte.

A transport that is not multimodel's pool (``transport="httpx"``, your own ``http_client``)
does not see the deadline in its socket calls; :class:`BoundedByteStream` still checks it
between the pieces of a body, so such a read overshoots by at most one read.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    import ssl

    import httpcore

__all__ = [
    "AsyncTimedBackend",
    "BoundedByteStream",
    "TimedBackend",
    "expired",
    "time_left",
    "time_limit",
]

_deadline: ContextVar[float | None] = ContextVar("multimodel_io_deadline", default=None)


class time_limit:
    """Bound the I/O inside the block to ``seconds`` (nested limits: the earliest wins).

    A class rather than a generator context manager: a stream enters one per read.
    """

    __slots__ = ("_at", "_token")

    def __init__(self, seconds: float) -> None:
        self._at = time.monotonic() + seconds

    def __enter__(self) -> None:
        at = self._at
        outer = _deadline.get()
        self._token = _deadline.set(at if outer is None or at < outer else outer)

    def __exit__(self, *exc: object) -> None:
        _deadline.reset(self._token)


def time_left() -> float | None:
    """Seconds left to the current limit (negative once past), or ``None`` without one."""
    at = _deadline.get()
    return None if at is None else at - time.monotonic()


def expired() -> bool:
    """Whether a current limit has passed."""
    at = _deadline.get()
    return at is not None and time.monotonic() >= at


def _bounded(timeout: float | None, error: type[Exception]) -> float | None:
    at = _deadline.get()
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise error("the attempt's time limit ran out")
    return left if timeout is None or left < timeout else timeout


class TimedStream:
    """A network stream whose every operation is bounded by the current limit."""

    __slots__ = ("_socket", "_stream")

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream
        self._socket: Any = None  # the raw socket, asked once (see get_extra_info)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        import httpcore

        return self._stream.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        import httpcore

        self._stream.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> TimedStream:
        import httpcore

        stream = self._stream.start_tls(
            ssl_context, server_hostname, _bounded(timeout, httpcore.ConnectTimeout)
        )
        return TimedStream(stream)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            self._socket = sock = self._socket or self._stream.get_extra_info("socket")
            return _readable(sock)
        return self._stream.get_extra_info(info)


class TimedBackend:
    """httpcore's sync network backend, with every operation bounded by the current limit."""

    def __init__(self) -> None:
        import httpcore

        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> TimedStream:
        import httpcore

        stream = self._backend.connect_tcp(
            host, port, _bounded(timeout, httpcore.ConnectTimeout), local_address, socket_options
        )
        return TimedStream(stream)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> TimedStream:
        import httpcore

        stream = self._backend.connect_unix_socket(
            path, _bounded(timeout, httpcore.ConnectTimeout), socket_options
        )
        return TimedStream(stream)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class AsyncTimedStream:
    """The async twin of :class:`TimedStream` (httpcore's anyio streams already bound each
    read with its timeout: passing the time left costs nothing more)."""

    __slots__ = ("_socket", "_stream")

    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream
        self._socket: Any = None  # the raw socket, asked once (see get_extra_info)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        import httpcore

        return await self._stream.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        import httpcore

        await self._stream.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> AsyncTimedStream:
        import httpcore

        stream = await self._stream.start_tls(
            ssl_context, server_hostname, _bounded(timeout, httpcore.ConnectTimeout)
        )
        return AsyncTimedStream(stream)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            self._socket = sock = self._socket or self._stream.get_extra_info("socket")
            return _readable(sock)
        return self._stream.get_extra_info(info)


class AsyncTimedBackend:
    """httpcore's anyio network backend, with every operation bounded by the current limit."""

    def __init__(self) -> None:
        import httpcore

        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> AsyncTimedStream:
        import httpcore

        stream = await self._backend.connect_tcp(
            host, port, _bounded(timeout, httpcore.ConnectTimeout), local_address, socket_options
        )
        return AsyncTimedStream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> AsyncTimedStream:
        import httpcore

        stream = await self._backend.connect_unix_socket(
            path, _bounded(timeout, httpcore.ConnectTimeout), socket_options
        )
        return AsyncTimedStream(stream)

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class BoundedByteStream(httpx.SyncByteStream):
    """A response body that stops with ``httpx.ReadTimeout`` once the current limit has passed.

    For transports that do not bound their socket calls themselves: the limit is checked
    between pieces of the body, and the deadline is read when the body is, not when the
    response was created.
    """

    def __init__(self, stream: httpx.SyncByteStream, deadline: float) -> None:
        self._stream = stream
        self._deadline = deadline

    def __iter__(self) -> Iterator[bytes]:
        deadline = self._deadline
        for chunk in self._stream:
            if time.monotonic() >= deadline:
                raise httpx.ReadTimeout("the attempt's time limit ran out")
            yield chunk

    def close(self) -> None:
        self._stream.close()


def _readable(sock: Any) -> bool:
    """Whether ``sock`` has something to read (a server that closed an idle connection): the
    pool asks at every release while others are idle. httpcore's answer builds anyio's whole
    attribute table (a ``getpeername`` call among it) to find the socket each time; the socket
    is asked for once here. A socket that is gone counts as readable, as in httpcore."""
    import select

    fd = -1 if sock is None else sock.fileno()
    if fd < 0:
        return True
    poll = getattr(select, "poll", None)
    if poll is None:  # Windows
        return bool(select.select([fd], [], [], 0)[0])
    poller = poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))
