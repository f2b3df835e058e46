"""Generated from ``_async/driver.py`` by ``.ci/unasync.py``: do not edit.

Edit ``_async/driver.py``, then run ``nox -s generate`` (or ``python .ci/unasync.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from ..._core.dispatch import DispatchPlan, Send, Sleep
from ..._transports.send import send_http, direct_transport
from ...errors import ProviderError
from ...providers.base import ParsedResponse
from ...types import ChatRequest, ChatResponse
from .._base import BaseClient
from .._primitives import race, sleep, time_limit
from .admission import admitted

if TYPE_CHECKING:
    from ...security._rules import Policy

__all__ = ["Driver"]


class Driver(BaseClient):
    """The call loop of the async client (a base of :class:`~multimodel.Client`)."""

    # Set by Client.__init__: the HTTP client, and its transport when multimodel's own
    # pool bounds a whole exchange itself (None: send through the client).
    _http: httpx.Client
    _timed_transport: httpx.BaseTransport | None

    def _call(
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
            return self._run(request, timeout, policy, prefer)
        hit = self.cache.lookup(request, override=cache)
        if hit is not None:
            return self._from_cache(request, hit, started)
        response = self._run(request, timeout, policy, prefer)
        self.cache.store(request, response, ttl=cache_ttl, override=cache)
        return response

    def _run(
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
                sleep(action.seconds)
                continue
            shared = plan.shared
            if shared is not None and not admitted(plan, shared, action):
                continue  # the fleet refused the attempt (one Redis round trip)
            delay = plan.hedge_delay(action)
            if delay is not None:
                hedged = self._hedged(plan, action, request, delay)
                if hedged is not None:
                    return hedged
                continue
            try:
                parsed, headers = self._attempt(action, request)
            except ProviderError as exc:
                plan.failed(action, exc)
                if shared is not None and shared.pending:  # a hold or an opened breaker
                    shared.settle()
                continue
            except BaseException:
                plan.cancelled(action)
                raise
            response = self._succeed(plan, action, parsed, headers)
            if shared is not None and shared.pending:  # with the next round trip leaving
                shared.settle()
            return response

    def _hedged(
        self, plan: DispatchPlan, primary: Send, request: ChatRequest, delay: float
    ) -> ChatResponse | None:
        """Run ``primary``; after ``delay`` without an answer, race a backup against it."""
        won: list[ChatResponse] = []

        def attempt(send: Send) -> Any:
            def run() -> ChatResponse | None:
                shared = plan.shared
                if (  # the fleet admits a backup too
                    send is not primary
                    and shared is not None
                    and not admitted(plan, shared, send)
                ):
                    return None
                try:
                    parsed, headers = self._attempt(send, request)
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

        return race(attempt(primary), delay, backup)

    def _attempt(
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
                assert isinstance(transport, httpx.BaseTransport)
                http_response = transport.handle_request(http_request)
            else:
                with time_limit(send.timeout):
                    http_response = send_http(http, http_request)
        except (httpx.HTTPError, TimeoutError) as exc:
            raise self._transport_error(exc, endpoint, http_request) from exc
        adapter = self._adapters[endpoint.name]
        if http_response.status_code >= 300:  # 3xx: not followed, see error_from_status
            raise adapter.map_error(http_response, endpoint)
        return adapter.parse_response(http_response, endpoint), http_response.headers
