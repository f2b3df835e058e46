"""The asynchronous client: the same surface as :class:`~multimodel.Client`, awaited.

Example::

    import multimodel as mm

    client = mm.AsyncClient(deployments=[
        mm.Deployment(model="gpt-4o-mini", provider="openai"),      # key from OPENAI_API_KEY
        mm.Deployment(model="gpt-4o-mini", provider="azure", provider_model="my-4o-mini",
                      base_url="https://my-resource.openai.azure.com"),
    ])
    response = await client.query("Explain quantum computing", max_tokens=200)
    print(response.text, response.deployment, response.usage)
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from functools import cached_property
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import anyio
import httpx

from ._base_client import (
    HTTP_LIMITS,
    BaseClient,
    RequestInput,
    default_ssl_context,
    pick_transport,
)
from ._core.dispatch import DispatchPlan, Send, Sleep
from ._params import RequestParams
from ._send import asend_http, direct_transport
from .errors import InvalidRequestError, MultimodelError, ProviderError
from .providers.base import ParsedResponse
from .streaming import AsyncStream
from .types import ChatRequest, ChatResponse

if sys.version_info >= (3, 11):
    from typing import Self, Unpack
else:  # pragma: no cover
    from typing_extensions import Self, Unpack

if TYPE_CHECKING:
    from .openai_compat import AsyncChat
    from .security._rules import Policy

__all__ = ["AsyncClient"]


class AsyncClient(BaseClient):
    """Send chat requests to the configured deployments (async; asyncio or trio via anyio).

    Args:
        deployments: the deployments to route over (``Deployment`` objects or dicts).
        config: instead of ``deployments``, a ``ClientConfig``, a dict or a TOML file path.
        strategy: how to choose among deployments of a model (a registered name, a
            ``{"name": ..., **params}`` dict, or a strategy object).
        timeout: per-attempt timeout in seconds (default 60).
        max_retries: retries after the first attempt (default 2).
        deadline: overall seconds for one call, attempts and back-offs included.
        http_client: an ``httpx.AsyncClient`` to use (you keep ownership; it is not closed).
        transport: an httpx async transport for the client's own ``httpx.AsyncClient``;
            ``"aiohttp"`` for multimodel's transport over ``aiohttp`` (the
            ``multimodel[aiohttp]`` extra; asyncio only, a request on trio raises
            ``ConfigError``); ``"httpx"`` for httpx's own pool. The default is
            multimodel's pool over httpcore connections, which reuses a connection in O(1)
            (httpx's pool costs CPU quadratic in its connections on every request).

    Raises:
        ConfigError: invalid configuration; MissingAPIKeyError names the variable to set.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        deployments: Sequence[Any] | None = None,
        *,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | Literal["aiohttp", "httpx"] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(deployments, **options)
        chosen = pick_transport(
            transport,
            http_client,
            named={"aiohttp": _aiohttp_transport, "httpx": lambda: None},
            pool=_pool_transport,
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(
            transport=chosen,
            timeout=self._timeout,
            limits=HTTP_LIMITS,
            verify=default_ssl_context(),
        )
        # A self-timed transport of the client's own httpx client, with no mounts (proxies from
        # the environment) in front of it: every attempt goes to it without looking it up.
        self._timed_transport = (
            chosen
            if self._owns_http
            and getattr(chosen, "enforces_total_timeout", False)
            and not getattr(self._http, "_mounts", True)
            else None
        )

    # -- public API ----------------------------------------------------------------------------

    async def query(
        self,
        prompt: RequestInput | ChatRequest,
        *,
        model: str | None = None,
        timeout: float | None = None,
        cache: bool | None = None,
        cache_ttl: float | None = None,
        policy: str | None = None,
        **params: Unpack[RequestParams],
    ) -> ChatResponse:
        """Send one request and return the complete answer.

        Args:
            prompt: a prompt string, a list of messages, or a ``ChatRequest``.
            model: the model group (optional when only one is configured).
            timeout: per-attempt timeout for this call.
            cache: ``False`` skips the response cache for this call; ``True`` uses it even for
                a sampled request (temperature > 0).
            cache_ttl: seconds to keep this answer in the cache.
            policy: the access policy to apply (default: the caller's, from ``user``).
            **params: ``max_tokens``, ``temperature``, ``tools`` ... (``RequestParams``).

        Raises:
            InvalidRequestError, UnknownModelError: bad input; nothing was sent.
            ProviderError: a non-retryable provider error (bad request, content filter ...).
            AllAttemptsFailed, NoDeploymentAvailable: retries and fallbacks ran out.
        """
        started = self._clock.monotonic()
        request, resolved = self._prepare(prompt, model, params, policy)
        if self.cache is None:  # one coroutine fewer to resume on every wake-up
            return await self._run(request, timeout, resolved)
        return await self._call(request, resolved, timeout, cache, cache_ttl, started)

    def stream(
        self,
        prompt: RequestInput | ChatRequest,
        *,
        model: str | None = None,
        timeout: float | None = None,
        cache: bool | None = None,
        cache_ttl: float | None = None,
        policy: str | None = None,
        **params: Unpack[RequestParams],
    ) -> AsyncStream:
        """Stream the answer: an async context manager and async iterator of ``ChatChunk``.

        The request is validated now and sent when the stream is entered or first iterated.
        A cached answer is replayed as chunks. Options are as for :meth:`query`.
        """
        request, resolved = self._prepare(prompt, model, params, policy)
        plan = self._plan(request, timeout, resolved, stream=True)
        return AsyncStream(self, request, plan, cache=(cache, cache_ttl))

    async def batch(
        self,
        requests: Iterable[Any],
        *,
        model: str | None = None,
        concurrency: int = 8,
        **params: Unpack[RequestParams],
    ) -> list[ChatResponse | MultimodelError]:
        """Send many requests, ``concurrency`` at a time; results come back in input order.

        Each item is a prompt string, a list of messages, a ``ChatRequest``, or a dict such as
        ``{"prompt": "...", "model": "...", "max_tokens": 50}``. A failed item is returned as
        its exception instead of failing the batch.
        """
        if concurrency < 1:
            raise InvalidRequestError("concurrency must be at least 1", field="concurrency")
        from .security.limits import check_batch

        items = list(requests)
        check_batch(len(items), self.limits)

        results: list[ChatResponse | MultimodelError | None] = [None] * len(items)
        limiter = anyio.Semaphore(concurrency)

        async def one(index: int, item: Any) -> None:
            async with limiter:
                try:
                    started = self._clock.monotonic()
                    request, resolved = self._prepare(
                        self._batch_item(item, model, params), None, {}
                    )
                    results[index] = await self._call(request, resolved, None, None, None, started)
                except MultimodelError as exc:
                    results[index] = exc

        async with anyio.create_task_group() as group:
            for index, item in enumerate(items):
                group.start_soon(one, index, item)
        return [r for r in results if r is not None]

    @cached_property
    def chat(self) -> AsyncChat:
        """The OpenAI-shaped surface: ``client.chat.completions.create(...)``."""
        from .openai_compat import AsyncChat

        return AsyncChat(self)

    async def aclose(self) -> None:
        """Close the connections (not those of an ``http_client`` you passed in)."""
        if self._owns_http:
            await self._http.aclose()
        self._close_owned()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- the driver ----------------------------------------------------------------------------

    async def _call(
        self,
        request: ChatRequest,
        policy: Policy | None,
        timeout: float | None,
        cache: bool | None,
        cache_ttl: float | None,
        started: float,
    ) -> ChatResponse:
        """One call: the response cache around the routed run."""
        if self.cache is None:
            return await self._run(request, timeout, policy)
        hit = await self.cache.alookup(request, override=cache)
        if hit is not None:
            return self._from_cache(request, hit, started)
        response = await self._run(request, timeout, policy)
        await self.cache.astore(request, response, ttl=cache_ttl, override=cache)
        return response

    async def _run(
        self, request: ChatRequest, timeout: float | None, policy: Policy | None = None
    ) -> ChatResponse:
        plan = self._plan(request, timeout, policy)
        while True:
            action = plan.next_action()
            if isinstance(action, Sleep):
                await anyio.sleep(action.seconds)
                continue
            delay = plan.hedge_delay(action)
            if delay is not None:
                hedged = await self._hedged(plan, action, request, delay)
                if hedged is not None:
                    return hedged
                continue
            try:
                parsed, headers = await self._attempt(action, request)
            except TimeoutError as exc:
                plan.failed(action, self._transport_error(exc, action.endpoint))
                continue
            except ProviderError as exc:
                plan.failed(action, exc)
                continue
            except BaseException:
                plan.cancelled(action)
                raise
            return self._succeed(plan, action, parsed, headers)

    async def _hedged(
        self, plan: DispatchPlan, primary: Send, request: ChatRequest, delay: float
    ) -> ChatResponse | None:
        """Run ``primary``; after ``delay`` without an answer, race a backup against it."""
        won: list[ChatResponse] = []
        running: dict[int, Send] = {}
        done = anyio.Event()

        async def attempt(send: Send) -> None:
            try:
                parsed, headers = await self._attempt(send, request)
            except TimeoutError as exc:
                plan.failed(send, self._transport_error(exc, send.endpoint))
            except ProviderError as exc:
                plan.failed(send, exc)
            except anyio.get_cancelled_exc_class():
                (plan.abandoned if won else plan.cancelled)(send)  # no await: nothing to shield
                raise
            else:
                response = self._succeed(plan, send, parsed, headers)
                if not won:
                    won.append(response)
            finally:
                running.pop(id(send), None)
                if won or not running:
                    done.set()

        async with anyio.create_task_group() as group:
            running[id(primary)] = primary
            group.start_soon(attempt, primary)
            with anyio.move_on_after(delay):
                await done.wait()
            if not done.is_set():
                backup = plan.hedge_action(primary)
                if backup is not None:
                    running[id(backup)] = backup
                    group.start_soon(attempt, backup)
            await done.wait()
            group.cancel_scope.cancel()
        return won[0] if won else None

    async def _attempt(
        self, send: Send, request: ChatRequest
    ) -> tuple[ParsedResponse, httpx.Headers]:
        """One non-streamed attempt, within ``send.timeout`` (raises ``TimeoutError`` past it)."""
        endpoint = send.endpoint
        http_request = self._http_request(send, request, stream=False)
        http = self._http
        transport = self._timed_transport or direct_transport(http, http_request.url)
        try:
            if getattr(transport, "enforces_total_timeout", False):
                # The transport bounds the whole exchange itself (multimodel's aiohttp
                # transport): no cancel scope per request, which costs ~17 µs on asyncio.
                http_request.extensions["total_timeout"] = send.timeout
                assert isinstance(transport, httpx.AsyncBaseTransport)
                http_response = await transport.handle_async_request(http_request)
            else:
                with anyio.fail_after(send.timeout):
                    http_response = await asend_http(http, http_request)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, endpoint) from exc
        adapter = self._adapters[endpoint.name]
        if http_response.status_code >= 400:
            raise adapter.map_error(http_response, endpoint)
        return adapter.parse_response(http_response, endpoint), http_response.headers


def _pool_transport() -> httpx.AsyncBaseTransport:
    from ._pool import AsyncPoolTransport  # loaded with the first client, not at import

    return AsyncPoolTransport(limits=HTTP_LIMITS, ssl_context=default_ssl_context())


def _aiohttp_transport() -> httpx.AsyncBaseTransport:
    from ._aiohttp import AiohttpTransport  # imports aiohttp; ConfigError when it is missing

    return AiohttpTransport(limits=HTTP_LIMITS, ssl_context=default_ssl_context())
