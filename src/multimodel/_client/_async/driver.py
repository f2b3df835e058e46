"""The routed call loop of :class:`~multimodel.AsyncClient`: the response cache around a
plan, its attempts (hedged when the policy says so) and their transport.

Written once here; the sync ``Driver`` is generated from it by ``.ci/unasync.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from ..._core.dispatch import DispatchPlan, Send, Sleep
from ..._transports.send import asend_http, direct_transport
from ...errors import ProviderError
from ...providers.base import ParsedResponse
from ...types import ChatRequest, ChatResponse
from .._base import BaseClient
from .._primitives import async_race, async_sleep, async_time_limit
from .admission import admitted

if TYPE_CHECKING:
    from ...security._rules import Policy

__all__ = ["AsyncDriver"]


class AsyncDriver(BaseClient):
    """The call loop of the async client (a base of :class:`~multimodel.AsyncClient`)."""

    # Set by AsyncClient.__init__: the HTTP client, and its transport when multimodel's own
    # pool bounds a whole exchange itself (None: send through the client).
    _http: httpx.AsyncClient
    _timed_transport: httpx.AsyncBaseTransport | None

    async def _call(
        self,
        request: ChatRequest,
        policy: Policy | None,
        timeout: float | None,
        cache: bool | None,
        cache_ttl: float | None,
        started: float,
        prefer: str | None = None,
    ) -> ChatResponse:
        """One call: the response cache around the routed run (``prefer``: the deployment
        to try first)."""
        if self.cache is None:
            return await self._run(request, timeout, policy, prefer)
        hit = await self.cache.alookup(request, override=cache)
        if hit is not None:
            return self._from_cache(request, hit, started)
        response = await self._run(request, timeout, policy, prefer)
        await self.cache.astore(request, response, ttl=cache_ttl, override=cache)
        return response

    async def _run(
        self,
        request: ChatRequest,
        timeout: float | None,
        policy: Policy | None = None,
        prefer: str | None = None,
        left: float | None = None,
    ) -> ChatResponse:
        plan = self._plan(request, timeout, policy, prefer=prefer, left=left)
        while True:
            action = plan.next_action()
            if isinstance(action, Sleep):
                await async_sleep(action.seconds)
                continue
            shared = plan.shared
            if shared is not None and not await admitted(plan, shared, action):
                continue  # the fleet refused the attempt (one Redis round trip)
            delay = plan.hedge_delay(action)
            if delay is not None:
                hedged = await self._hedged(plan, action, request, delay)
                if hedged is not None:
                    return hedged
                continue
            try:
                parsed, headers = await self._attempt(action, request)
            except ProviderError as exc:
                plan.failed(action, exc)
                if shared is not None and shared.pending:  # a hold or an opened breaker
                    await shared.async_settle()
                continue
            except BaseException:
                plan.cancelled(action)
                raise
            response = self._succeed(plan, action, parsed, headers)
            if shared is not None and shared.pending:  # with the next round trip leaving
                await shared.async_settle()
            return response

    async def _hedged(
        self, plan: DispatchPlan, primary: Send, request: ChatRequest, delay: float
    ) -> ChatResponse | None:
        """Run ``primary``; after ``delay`` without an answer, race a backup against it."""
        won: list[ChatResponse] = []

        def attempt(send: Send) -> Any:
            async def run() -> ChatResponse | None:
                shared = plan.shared
                if (  # the fleet admits a backup too
                    send is not primary
                    and shared is not None
                    and not await admitted(plan, shared, send)
                ):
                    return None
                try:
                    parsed, headers = await self._attempt(send, request)
                except ProviderError as exc:
                    plan.failed(send, exc)
                    return None
                except BaseException:
                    # Cancelled because the other attempt answered, or by the caller.
                    (plan.abandoned if won else plan.cancelled)(send)
                    raise
                response = self._succeed(plan, send, parsed, headers)
                won.append(response)
                return response

            return run

        def backup() -> Any:
            send = plan.hedge_action(primary)
            return None if send is None else attempt(send)

        return await async_race(attempt(primary), delay, backup)

    async def _attempt(
        self, send: Send, request: ChatRequest
    ) -> tuple[ParsedResponse, httpx.Headers]:
        """One non-streamed attempt, within ``send.timeout`` in all."""
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
                with async_time_limit(send.timeout):
                    http_response = await asend_http(http, http_request)
        except (httpx.HTTPError, TimeoutError) as exc:
            raise self._transport_error(exc, endpoint, http_request) from exc
        adapter = self._adapters[endpoint.name]
        if http_response.status_code >= 300:  # 3xx: not followed, see error_from_status
            raise adapter.map_error(http_response, endpoint)
        return adapter.parse_response(http_response, endpoint), http_response.headers
