"""Which transport a client gets, with what limits and TLS context.

The async and sync tables differ only in what exists on each side (``"aiohttp"`` is async
only); the generated sync client reads the names without the ``async_`` prefix.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Literal, TypeVar

import httpx

from ..errors import ConfigError, InvalidRequestError

if TYPE_CHECKING:
    from ..config import ClientConfig

__all__ = [
    "DEFAULT_MAX_CONNECTIONS",
    "HTTP_LIMITS",
    "AsyncTransportName",
    "TransportName",
    "async_pool_transport",
    "async_transport_names",
    "client_verify",
    "connection_limit",
    "default_ssl_context",
    "http_limits",
    "pick_transport",
    "pool_transport",
    "transport_names",
]

DEFAULT_MAX_CONNECTIONS = 100
"""``max_connections`` of a client that does not set it (as httpx's and aiohttp's defaults)."""


def http_limits(max_connections: int) -> httpx.Limits:
    """The limits of a client's own connections: ``max_connections`` open at most (in use or
    idle, every origin together), half of them kept idle for reuse."""
    return httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max(1, max_connections // 2)
    )


HTTP_LIMITS = http_limits(DEFAULT_MAX_CONNECTIONS)
"""The limits of the httpx client a multimodel client creates for itself, by default."""

AsyncTransportName = Literal["aiohttp", "httpx"]
"""Transports ``AsyncClient(transport=...)`` accepts by name."""
TransportName = Literal["httpx"]
"""Transports ``Client(transport=...)`` accepts by name."""

_T = TypeVar("_T")


_ssl_lock = threading.Lock()
_ssl_context: ssl.SSLContext | None = None


def default_ssl_context() -> ssl.SSLContext:
    """One TLS context for every client: loading the CA bundle costs ~70 ms and ~1.6 MiB.

    Built on first use (multimodel's pools: their first ``https`` connection), once even when
    threads ask at the same time, and never modified afterwards.
    """
    global _ssl_context
    context = _ssl_context
    if context is None:
        with _ssl_lock:
            if _ssl_context is None:
                _ssl_context = httpx.create_ssl_context()
            context = _ssl_context
    return context


def client_verify(chosen: object) -> ssl.SSLContext | bool:
    """``verify=`` for the httpx client built around ``chosen`` (``pick_transport``'s answer).

    httpx reads it only when it builds transports itself: its own pool (``chosen`` is
    ``None``) and the proxies of the environment, which it mounts only then. Around a transport
    it is unused, so the CA bundle is not loaded for it (a pool loads it at its first ``https``
    connection, a plain-``http`` fleet never).
    """
    return default_ssl_context() if chosen is None else True


def connection_limit(config: ClientConfig, http_client: object | None, transport: object) -> str:
    """What bounds a client's connections and where to raise it (``PoolExhausted`` says so):
    its ``max_connections``, or the limits of the ``http_client`` or transport object given.

    Raises:
        ConfigError: the client's ``config`` sets ``max_connections`` (``model_fields_set``)
            next to an ``http_client`` or transport object, which keep their own limits.
    """
    explicit = "max_connections" in config.model_fields_set
    if http_client is not None:
        if explicit:
            raise ConfigError(
                "max_connections sizes the connections of the client's own transport; with "
                "http_client= set them on that client instead (httpx.Limits(max_connections=...))"
            )
        return "the limits of the http_client given (raise max_connections there)"
    if transport is not None and not isinstance(transport, str):
        if explicit:
            raise ConfigError(
                "max_connections sizes the connections of a transport the client builds; a "
                "transport object keeps its own limits: set them where it is built, or pass a "
                "transport name"
            )
        return "the limits of the transport given (raise them where it is built)"
    return f"its max_connections={config.max_connections} (raise it)"


def pick_transport(
    transport: _T | str | None,
    http_client: object | None,
    *,
    named: Mapping[str, Callable[[httpx.Limits], _T | None]],
    pool: Callable[[httpx.Limits], _T],
    limits: httpx.Limits = HTTP_LIMITS,
) -> _T | None:
    """The transport for a client's own httpx client (``None``: httpx's default).

    ``transport`` may be a transport, one of the ``named`` ones, or ``None``: then, unless the
    caller brings its own ``http_client``, multimodel's pool (``pool(limits)``). A transport
    built here gets ``limits``; one the caller built keeps its own.

    Raises:
        InvalidRequestError: both ``transport`` and ``http_client``, or an unknown name.
    """
    if http_client is not None and transport is not None:
        raise InvalidRequestError("pass http_client or transport, not both", field="transport")
    if isinstance(transport, str):
        make = named.get(transport)
        if make is None:
            known = ", ".join(repr(name) for name in named)
            raise InvalidRequestError(
                f"unknown transport {transport!r}; pass {known} or an httpx transport",
                field="transport",
            )
        return make(limits)
    if transport is None and http_client is None:
        return pool(limits)
    return transport


def async_pool_transport(limits: httpx.Limits = HTTP_LIMITS) -> httpx.AsyncBaseTransport:
    """multimodel's async pool (the default transport of ``AsyncClient``)."""
    from .pool import AsyncPoolTransport  # loaded with the first client, not at import

    return AsyncPoolTransport(limits=limits)  # the TLS context: at the first https origin


def pool_transport(limits: httpx.Limits = HTTP_LIMITS) -> httpx.BaseTransport:
    """multimodel's thread-safe sync pool (the default transport of ``Client``)."""
    from .pool import PoolTransport  # loaded with the first client, not at import

    return PoolTransport(limits=limits)  # the TLS context: at the first https origin


def _aiohttp_transport(limits: httpx.Limits) -> httpx.AsyncBaseTransport:
    from .aiohttp import AiohttpTransport  # imports aiohttp; ConfigError when it is missing

    return AiohttpTransport(limits=limits, ssl_context=default_ssl_context())


def _httpx_pool(limits: httpx.Limits) -> None:
    return None  # httpx builds its own pool, with the limits of the httpx client


async_transport_names: Mapping[str, Callable[[httpx.Limits], httpx.AsyncBaseTransport | None]] = {
    "aiohttp": _aiohttp_transport,
    "httpx": _httpx_pool,
}
"""``AsyncClient(transport=NAME)``: what each name builds (``None``: httpx's own pool)."""

transport_names: Mapping[str, Callable[[httpx.Limits], httpx.BaseTransport | None]] = {
    "httpx": _httpx_pool,
}
"""``Client(transport=NAME)``: what each name builds (``None``: httpx's own pool)."""
