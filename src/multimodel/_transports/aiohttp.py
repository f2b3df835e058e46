"""An httpx async transport over ``aiohttp`` (``AsyncClient(transport="aiohttp")``; asyncio only).

aiohttp parses HTTP in C and keeps its connection pool in O(1): its own client makes 3,700-4,600
requests/s at 200 in flight on a 2-core machine against the local mock server, where httpx's
pool makes a few hundred. Going through a generic httpx transport costs most of that back
(``httpx_aiohttp`` made 1,000-1,500): each response is wrapped in an async byte stream that httpx
reads through its decoders, chunkers and generators. This transport does less per request:

* **Whole bodies are read inside aiohttp.** A request that carries the ``"total_timeout"``
  extension (seconds for the whole exchange, body included: what multimodel's client sends for a
  non-streamed attempt) is answered with a response whose body is already read (aiohttp
  decompresses it, as httpx would; the headers are kept as sent). Without the extension the
  body is streamed: an :class:`httpx.AsyncByteStream` over aiohttp's content, closed (and the
  connection given back or dropped) when the caller stops early.
* **No cookies, no environment proxies, no redirects**: the httpx client above does the
  client-level work (and multimodel's requests need none of it).
* **Errors are httpx's**: connection refused is :class:`httpx.ConnectError`, a connect timeout
  :class:`httpx.ConnectTimeout`, waiting too long for a connection :class:`httpx.PoolTimeout`,
  a read timeout or an exceeded total :class:`httpx.ReadTimeout`, a server that hangs up or
  sends broken HTTP :class:`httpx.RemoteProtocolError`, so callers map them as usual.

Timeouts come from the request's ``timeout`` extension (``connect``, ``read``, ``pool``; aiohttp
has no write timeout). ``max_connections`` of the :class:`httpx.Limits` bounds the requests in
flight (a streamed response holds its slot until it is closed); waiting for a slot counts
against the ``pool`` timeout and the total. Idle connections expire after ``keepalive_expiry``.

aiohttp is imported when the first transport is built, never by ``import multimodel``.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import httpx

from ..errors import ConfigError

if TYPE_CHECKING:
    import aiohttp

__all__ = ["AiohttpTransport"]

TOTAL_TIMEOUT = "total_timeout"
"""The request extension asking for the whole body within this many seconds (see the module)."""

_HTTP11 = b"HTTP/1.1"


def _import_aiohttp() -> Any:
    try:
        import aiohttp
    except ImportError as exc:
        raise ConfigError(
            "transport='aiohttp' needs the aiohttp package: pip install 'multimodel[aiohttp]'"
        ) from exc
    return aiohttp


def _import_yarl() -> Any:
    from yarl import URL  # an aiohttp dependency

    return URL


class _Slots:
    """``max_connections`` as requests in flight, first come first served.

    The caller takes a free slot itself (``_free``: a count, ``None`` when unbounded) and
    waits (:meth:`enqueue`, :meth:`abandon`) only when none is free; :meth:`release` hands a
    slot straight to the oldest waiter. One timer serves every waiter (the earliest deadline), rather than one per waiter:
    at 200 requests in flight over 100 connections every other request waits.
    """

    __slots__ = ("_free", "_timer", "_timer_at", "_waiters")

    def __init__(self, size: int | None) -> None:
        self._free = size
        self._waiters: deque[tuple[asyncio.Future[None], float | None, float | None]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    # A wait in two halves around the caller's own ``await`` of the future: no coroutine of
    # its own to create and resume (once per request that waits).
    def enqueue(
        self, loop: asyncio.AbstractEventLoop, now: float, timeout: float | None
    ) -> tuple[asyncio.Future[None], float | None, float | None]:
        """Queue a waiter (``now``: ``loop.time()``); await its future (``[0]``), and pass
        the entry to :meth:`abandon` if that raises (:class:`httpx.PoolTimeout` once
        ``timeout`` seconds have passed, or a cancellation)."""
        waiter: asyncio.Future[None] = loop.create_future()
        deadline = None
        if timeout is not None:
            deadline = now + timeout
            if self._timer is None or deadline < self._timer_at:
                self._arm(loop, deadline)
        entry = (waiter, deadline, timeout)
        self._waiters.append(entry)
        return entry

    def abandon(self, entry: tuple[asyncio.Future[None], float | None, float | None]) -> None:
        """The wait for ``entry`` ended with an exception (timed out, cancelled)."""
        waiter = entry[0]
        if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
            self.release()  # handed a slot, then cancelled: pass it on
        else:
            try:
                self._waiters.remove(entry)
            except ValueError:
                pass

    def release(self) -> None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()[0]
            if not waiter.done():
                waiter.set_result(None)
                return
        if self._free is not None:
            self._free += 1

    def _arm(self, loop: asyncio.AbstractEventLoop, at: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_at(at, self._expire, loop)
        self._timer_at = at

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        now = loop.time()
        upcoming: float | None = None
        for waiter, deadline, timeout in self._waiters:
            if deadline is None or waiter.done():
                continue
            if deadline <= now:
                waiter.set_exception(
                    httpx.PoolTimeout(f"no connection free within {timeout:g} s (max_connections)")
                )
            elif upcoming is None or deadline < upcoming:
                upcoming = deadline
        if upcoming is not None:
            self._arm(loop, upcoming)


_TIMEOUT_FIELDS = ("total", "connect", "sock_read", "sock_connect", "ceil_threshold")


def _timeout_builder(kind: Any) -> Callable[[Any, Any, Any, Any], Any]:
    """``(total, connect, sock_read, sock_connect) -> kind(total=..., connect=..., ...)`` for
    aiohttp's ``ClientTimeout`` (``kind``), built by setting its slots.

    Its frozen attrs ``__init__`` sets each field through ``object.__setattr__`` (~9.5 k
    instructions a timeout, ~6 k this way); a request that waited for a slot needs its own
    (the total left). Checked against the constructor once; other fields, the constructor."""

    def construct(total: Any, connect: Any, sock_read: Any, sock_connect: Any) -> Any:
        return kind(total=total, connect=connect, sock_read=sock_read, sock_connect=sock_connect)

    try:
        names = tuple(field.name for field in kind.__attrs_attrs__)
        setters = [vars(kind)[name].__set__ for name in names]
        threshold = kind().ceil_threshold
    except (AttributeError, KeyError, TypeError):  # pragma: no cover - another layout
        return construct
    if names != _TIMEOUT_FIELDS:  # pragma: no cover - another aiohttp's fields
        return construct
    set_total, set_connect, set_read, set_sock_connect, set_threshold = setters
    new = object.__new__

    def build(total: Any, connect: Any, sock_read: Any, sock_connect: Any) -> Any:
        timeout = new(kind)
        set_total(timeout, total)
        set_connect(timeout, connect)
        set_read(timeout, sock_read)
        set_sock_connect(timeout, sock_connect)
        set_threshold(timeout, threshold)
        return timeout

    for probe in ((1.5, 2.0, 3.0, 4.0), (None, None, None, None), (0.001, None, 7, None)):
        built, expected = build(*probe), construct(*probe)
        if not (built == expected and repr(built) == repr(expected)):  # pragma: no cover
            return construct
    return build


_READ_SIZE = 8192
"""Bytes a streamed body's read returns at most. Not ``readany()``: that joins everything
buffered, and aiohttp buffers each piece the server wrote apart (an SSE event each), moving
them one by one in Python (~1 µs a piece): when a fast server's whole answer was already
buffered, the first event waited for all of them (500 events: +0.6 ms to the first chunk).
8 KiB is a few dozen events: the first one comes quickly, the reads stay few."""
_FIRST_READ_SIZE = 2048
"""The first read of a streamed body: an opening event and the first content event or two
(~300 bytes each), so the time to the first chunk pays for moving ~7 buffered pieces, not
~27 (−40 µs measured per stream over loopback)."""


class _ResponseStream(httpx.AsyncByteStream):
    """A streamed body; closing it gives the connection back (or drops it, when unread)."""

    __slots__ = ("_release", "_response", "_size")

    def __init__(self, response: aiohttp.ClientResponse, release: Any) -> None:
        self._response: aiohttp.ClientResponse | None = response
        self._release = release
        self._size = _FIRST_READ_SIZE  # then _READ_SIZE

    # An iterator object, not an async generator: an abandoned generator would be finalized by
    # the garbage collector outside the event loop.
    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        response = self._response
        if response is None:
            raise StopAsyncIteration
        size = self._size
        self._size = _READ_SIZE
        try:
            data: bytes = await response.content.read(size)
        except Exception as exc:
            raise _httpx_error(exc, None) from exc
        if not data:
            raise StopAsyncIteration
        return data

    async def aclose(self) -> None:
        response, self._response = self._response, None
        if response is None:
            return
        try:
            # release() keeps a connection whose body was read to the end, else closes it.
            response.release()
        finally:
            self._release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An :class:`httpx.AsyncBaseTransport` that sends requests with one ``aiohttp.ClientSession``.

    Args:
        limits: ``max_connections`` (requests in flight) and ``keepalive_expiry`` are used.
        ssl_context: TLS settings for ``https`` URLs (default: the system's trust store).

    The session is created on the first request, on the running asyncio loop; ``aclose()``
    closes it. On any other event loop library (trio) a request raises
    :class:`~multimodel.errors.ConfigError`.

    Raises:
        ConfigError: aiohttp is not installed.
    """

    # The transport enforces the ``total_timeout`` extension itself: a caller need not wrap the
    # request in a cancel scope of its own.
    enforces_total_timeout = True

    def __init__(
        self,
        *,
        limits: httpx.Limits | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._aiohttp = _import_aiohttp()
        limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
        self._slots = _Slots(limits.max_connections)
        self._keepalive = limits.keepalive_expiry
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timeouts: dict[tuple[Any, ...], aiohttp.ClientTimeout] = {}
        # The last kept timeout, its phases and total: found again by one dict comparison.
        self._last_timeout: tuple[Any, Any, Any] = (None, None, None)
        self._new_timeout = _timeout_builder(self._aiohttp.ClientTimeout)
        self._urls: dict[int, tuple[object, Any]] = {}
        self._texts: dict[bytes, str] = {}
        self._header_lists: dict[tuple[tuple[bytes, bytes, bytes], ...], Any] = {}
        self._yarl = _import_yarl()
        from multidict import CIMultiDict  # an aiohttp dependency

        self._multidict = CIMultiDict
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._session is not None else "idle"
        return f"<AiohttpTransport {state}>"

    def _open(self) -> aiohttp.ClientSession:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise ConfigError(
                "transport='aiohttp' runs on asyncio only; on trio use the default transport"
            ) from None
        if self._closed:
            raise RuntimeError("the transport is closed")
        session = self._session
        if session is not None and self._loop is loop:
            return session
        if session is not None:
            raise RuntimeError("an aiohttp transport is bound to the event loop it first ran on")
        aio = self._aiohttp
        connector = aio.TCPConnector(
            limit=0,  # the slots bound the requests in flight, with httpx's pool timeout
            ssl=self._ssl,
            keepalive_timeout=self._keepalive if self._keepalive is not None else 15.0,
        )
        self._session = aio.ClientSession(
            connector=connector,
            cookie_jar=aio.DummyCookieJar(),
            trust_env=False,
            timeout=aio.ClientTimeout(total=None),
        )
        self._loop = loop
        return self._session

    def _timeout(
        self, timeouts: dict[str, float | None], total: float | None, keep: bool = True
    ) -> Any:
        """aiohttp's timeout for these phases and total; ``keep``: remember it for the next
        request (not for a total shortened by a wait for a slot: those never repeat)."""
        connect = timeouts.get("connect")
        read = timeouts.get("read")
        pool = timeouts.get("pool")
        if total is not None:  # no timer for a phase that the total bounds anyway
            if connect is not None and connect >= total:
                connect = None
            if read is not None and read >= total:
                read = None
            if pool is not None and pool >= total:
                pool = None
        if not keep:
            return self._new_timeout(total, pool, read, connect)
        key = (connect, read, pool, total)
        found = self._timeouts.get(key)
        if found is None:
            if len(self._timeouts) > 256:
                self._timeouts.clear()
            found = self._timeouts[key] = self._new_timeout(total, pool, read, connect)
        self._last_timeout = (dict(timeouts), total, found)  # a copy: the caller's may change
        return found

    def _headers(self, headers: httpx.Headers) -> Any:
        """The request's headers as aiohttp takes them (a ``CIMultiDict``), built once per
        distinct header list.

        Requests built from an endpoint's prepared headers repeat the same few lists (they
        differ in ``Content-Length`` alone): one tuple and one lookup per request, against a
        decode per name and value and a multidict. aiohttp only reads it (it copies the
        headers into the request's own multidict).
        """
        # (name, lowered, value) triples: httpx's layout, as _can_preset found it.
        key = tuple(headers._list) if _PRESET else tuple((k, b"", v) for k, v in headers.raw)
        found = self._header_lists.get(key)
        if found is None:
            text = self._text
            found = self._multidict([(text(k), text(v)) for k, _, v in key])
            if len(self._header_lists) > 256:
                self._header_lists.clear()
            self._header_lists[key] = found
        return found

    def _text(self, raw: bytes) -> str:
        """A header name or value as aiohttp takes it (it sends str headers as UTF-8)."""
        text = self._texts.get(raw)
        if text is None:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:  # httpx sent it as latin-1
                text = raw.decode("latin-1")
            if len(self._texts) > 1024:
                self._texts.clear()
            self._texts[raw] = text
        return text

    def _url(self, url: httpx.URL) -> Any:
        """aiohttp's URL for ``url``, parsed once per URL object (adapters reuse theirs)."""
        # httpx.Request copies the URL it is given, but the copy shares the parsed reference.
        key = getattr(url, "_uri_reference", url)
        entry = self._urls.get(id(key))
        if entry is None or entry[0] is not key:  # the entry keeps ``key`` alive: no id reuse
            if len(self._urls) > 256:
                self._urls.clear()
            entry = self._urls[id(key)] = (key, self._yarl(str(url)))
        return entry[1]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session
        if session is None or self._loop is not asyncio.get_running_loop():
            session = self._open()
        extensions = request.extensions
        timeouts: dict[str, float | None] = extensions.get("timeout") or {}
        total: float | None = extensions.get(TOTAL_TIMEOUT)
        slots = self._slots
        waited = False  # for a slot, with a total: the total left is this request's own
        free = slots._free
        if free:
            slots._free = free - 1
        elif free is not None:  # every slot taken: wait (pool timeout, and within the total)
            pool = timeouts.get("pool")
            loop = asyncio.get_running_loop()
            started = loop.time()
            entry = slots.enqueue(
                loop,
                started,
                pool if total is None else total if pool is None else min(pool, total),
            )
            try:
                await entry[0]  # slots.wait(), inline
            except BaseException:
                slots.abandon(entry)
                raise
            if total is not None:
                total = max(total - (loop.time() - started), 0.001)
                waited = True
        try:
            try:
                body = request.content
            except httpx.RequestNotRead:
                body = await request.aread()
            read = TOTAL_TIMEOUT in extensions
            last = self._last_timeout
            if not waited and last[1] == total and last[0] == timeouts:
                timeout = last[2]  # the same phases and total as the last request's (common)
            else:
                timeout = self._timeout(timeouts, total, not waited)
            try:
                response = await session.request(
                    request.method,
                    self._url(request.url),
                    headers=self._headers(request.headers),
                    data=body or None,
                    allow_redirects=False,
                    auto_decompress=read,  # a streamed body is decoded by httpx
                    timeout=timeout,
                    server_hostname=extensions.get("sni_hostname"),
                )
                if read:
                    try:
                        content = await response.read()
                    finally:
                        response.release()
            except Exception as exc:
                raise _httpx_error(exc, total) from exc
        except BaseException:
            slots.release()
            raise
        ext = {"http_version": _HTTP11}
        if response.reason:
            ext["reason_phrase"] = response.reason.encode("ascii", "replace")
        if read:
            slots.release()
            return _loaded(response.status, response.raw_headers, content, request, ext)
        return httpx.Response(
            response.status,
            headers=response.raw_headers,
            stream=_ResponseStream(response, slots.release),
            request=request,
            extensions=ext,
        )

    async def aclose(self) -> None:
        """Close the session and its connections."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.close()


_new_response = httpx.Response.__new__
_new_headers = httpx.Headers.__new__


def _loaded(
    status: int,
    headers: Any,
    content: bytes,
    request: httpx.Request,
    extensions: dict[str, bytes],
) -> httpx.Response:
    """A response whose body is already read (the state ``aread()`` leaves one in).

    ``httpx.Response(content=...)`` runs the body through httpx's decoder and chunker (about
    15 µs, more than building the rest); the body here is complete and already decoded. The
    response and its headers are set field by field (aiohttp's raw headers are byte pairs:
    httpx's per-header normalization has nothing to do); :func:`_can_preset` compares that with
    what httpx's constructor and ``read()`` give, once.
    """
    if not _PRESET:  # pragma: no cover - an httpx whose private layout changed: the public way
        response = httpx.Response(
            status,
            headers=headers,
            stream=httpx.ByteStream(content),
            request=request,
            extensions=extensions,
        )
        response.read()
        return response
    return _preset(status, headers, content, request, extensions)


def _preset(
    status: int,
    headers: Any,
    content: bytes,
    request: httpx.Request | None,
    extensions: dict[str, bytes],
) -> httpx.Response:
    fields = _new_headers(httpx.Headers)
    fields._list = [(k, k.lower(), v) for k, v in headers]
    fields._encoding = None
    response = _new_response(httpx.Response)
    response.status_code = status
    response.headers = fields
    response._request = request
    response.next_request = None
    response.extensions = extensions  # built per response by the caller: no copy
    response.history = []
    response.is_closed = True
    response.is_stream_consumed = True
    response.default_encoding = "utf-8"
    response.stream = httpx.ByteStream(content)
    response._num_bytes_downloaded = len(content)
    response._content = content
    return response


def _can_preset() -> bool:
    """Whether :func:`_preset` gives a response in the state ``httpx.Response(...)`` and
    ``read()`` leave it in: the same fields, headers, body and stream."""
    try:
        raw = ((b"Content-Type", b"application/json"), (b"X-Request-ID", b"r-1"))
        probe = _preset(200, raw, b"{}", None, {"http_version": _HTTP11})
        expected = httpx.Response(
            200, headers=raw, stream=httpx.ByteStream(b"{}"), extensions={"http_version": _HTTP11}
        )
        # What aread() leaves, but for its decoder (only used while a body is streamed): the
        # state this transport presets (checked against read() itself just below).
        expected._content = b"{}"
        expected.is_stream_consumed = expected.is_closed = True
        expected._num_bytes_downloaded = 2
        mine, theirs = vars(probe), vars(expected)
        return (
            mine.keys() == theirs.keys()
            and all(mine[k] == theirs[k] for k in mine if k not in ("headers", "stream"))
            and vars(probe.headers) == vars(expected.headers)
            and type(probe.stream) is type(expected.stream) is httpx.ByteStream
            and list(probe.stream) == list(expected.stream)
            and probe.content == b"{}"
            and probe.json() == {}
            and probe.num_bytes_downloaded == 2
            and probe.headers["x-request-id"] == "r-1"
            and _read_state(raw) == {k: v for k, v in theirs.items() if k != "stream"}
        )
    except (AttributeError, TypeError, httpx.HTTPError):  # pragma: no cover
        return False


def _read_state(raw: Any) -> dict[str, Any]:
    """The fields ``read()`` leaves a response with (its decoder and stream aside)."""
    response = httpx.Response(
        200, headers=raw, stream=httpx.ByteStream(b"{}"), extensions={"http_version": _HTTP11}
    )
    response.read()
    return {k: v for k, v in vars(response).items() if k not in ("stream", "_decoder")}


_PRESET = _can_preset()


def _httpx_error(exc: Exception, total: float | None) -> Exception:
    """The httpx exception for an aiohttp (or asyncio) one; other exceptions pass unchanged."""
    if isinstance(exc, httpx.HTTPError):
        return exc
    aio = _import_aiohttp()
    message = str(exc) or type(exc).__name__
    kind: type[httpx.HTTPError]
    if isinstance(exc, aio.ConnectionTimeoutError):
        kind = httpx.ConnectTimeout
    elif isinstance(exc, asyncio.TimeoutError):  # a socket read, or the total
        kind = httpx.ReadTimeout
        if not isinstance(exc, aio.ServerTimeoutError) and total is not None:
            message = f"no complete response within {total:g} s"
    elif isinstance(exc, aio.ClientConnectorError):
        kind = httpx.ConnectError
    elif isinstance(
        exc,
        # a hang-up, a truncated body, a response aiohttp could not parse
        aio.ServerDisconnectedError | aio.ClientPayloadError | aio.ClientResponseError,
    ):
        kind = httpx.RemoteProtocolError
    elif isinstance(exc, aio.NonHttpUrlClientError | aio.InvalidURL):
        kind = httpx.UnsupportedProtocol
    elif isinstance(exc, aio.ClientError | OSError):
        kind = httpx.ReadError
    else:
        return exc
    return kind(message)
