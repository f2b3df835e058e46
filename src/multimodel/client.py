"""The synchronous client.

Example::

    import multimodel as mm

    client = mm.Client(deployments=[
        mm.Deployment(model="gpt-4o-mini", provider="openai"),      # key from OPENAI_API_KEY
        mm.Deployment(model="gpt-4o-mini", provider="azure", provider_model="my-4o-mini",
                      base_url="https://my-resource.openai.azure.com"),
    ])
    response = client.query("Explain quantum computing", max_tokens=200)
    print(response.text, response.deployment, response.usage)
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from functools import cached_property
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

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
from ._send import send_http
from .errors import InvalidRequestError, MultimodelError, ProviderError
from .providers.base import ParsedResponse
from .streaming import Stream
from .types import ChatRequest, ChatResponse

if sys.version_info >= (3, 11):
    from typing import Self, Unpack
else:  # pragma: no cover
    from typing_extensions import Self, Unpack

if TYPE_CHECKING:
    from .openai_compat import Chat
    from .security._rules import Policy

__all__ = ["Client"]


class Client(BaseClient):
    """Send chat requests to the configured deployments (blocking I/O).

    Args:
        deployments: the deployments to route over (``Deployment`` objects or dicts).
        config: instead of ``deployments``, a ``ClientConfig``, a dict or a TOML file path.
        strategy: how to choose among deployments of a model (a registered name, a
            ``{"name": ..., **params}`` dict, or a strategy object).
        timeout: per-attempt timeout in seconds (default 60).
        max_retries: retries after the first attempt (default 2).
        deadline: overall seconds for one call, attempts and back-offs included.
        http_client: an ``httpx.Client`` to use (you keep ownership; it is not closed).
        transport: an httpx transport for the client's own ``httpx.Client``, or ``"httpx"`` for
            httpx's own pool. The default is multimodel's thread-safe pool over httpcore
            connections, which reuses a connection in O(1).

    Raises:
        ConfigError: invalid configuration; MissingAPIKeyError names the variable to set.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        deployments: Sequence[Any] | None = None,
        *,
        http_client: httpx.Client | None = None,
        transport: httpx.BaseTransport | Literal["httpx"] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(deployments, **options)
        chosen = pick_transport(
            transport, http_client, named={"httpx": lambda: None}, pool=_pool_transport
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(
            transport=chosen,
            timeout=self._timeout,
            limits=HTTP_LIMITS,
            verify=default_ssl_context(),
        )

    # -- public API ----------------------------------------------------------------------------

    def query(
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
        return self._call(request, resolved, timeout, cache, cache_ttl, started)

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
    ) -> Stream:
        """Stream the answer: a context manager and iterator of ``ChatChunk``.

        The request is validated now and sent when the stream is entered or first iterated.
        A cached answer is replayed as chunks. Options are as for :meth:`query`.
        """
        started = self._clock.monotonic()
        request, resolved = self._prepare(prompt, model, params, policy)
        hit = self.cache.lookup(request, override=cache) if self.cache is not None else None
        plan = self._plan(request, timeout, resolved, stream=True)
        if hit is not None:
            return Stream(self, request, plan, cached=self._from_cache(request, hit, started))
        return Stream(self, request, plan, cache=(cache, cache_ttl))

    def batch(
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

        def one(item: Any) -> ChatResponse | MultimodelError:
            try:
                started = self._clock.monotonic()
                request, resolved = self._prepare(self._batch_item(item, model, params), None, {})
                return self._call(request, resolved, None, None, None, started)
            except MultimodelError as exc:
                return exc

        if concurrency == 1 or len(items) <= 1:
            return [one(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(concurrency, len(items))) as pool:
            return list(pool.map(one, items))

    @cached_property
    def chat(self) -> Chat:
        """The OpenAI-shaped surface: ``client.chat.completions.create(...)``."""
        from .openai_compat import Chat

        return Chat(self)

    def close(self) -> None:
        """Close the connections (not those of an ``http_client`` you passed in)."""
        if self._owns_http:
            self._http.close()
        self._close_owned()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- the driver ----------------------------------------------------------------------------

    def _call(
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
            return self._run(request, timeout, policy)
        hit = self.cache.lookup(request, override=cache)
        if hit is not None:
            return self._from_cache(request, hit, started)
        response = self._run(request, timeout, policy)
        self.cache.store(request, response, ttl=cache_ttl, override=cache)
        return response

    def _run(
        self, request: ChatRequest, timeout: float | None, policy: Policy | None = None
    ) -> ChatResponse:
        plan = self._plan(request, timeout, policy)
        while True:
            action = plan.next_action()
            if isinstance(action, Sleep):
                time.sleep(action.seconds)
                continue
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
                continue
            except BaseException:
                plan.cancelled(action)
                raise
            return self._succeed(plan, action, parsed, headers)

    def _hedged(
        self, plan: DispatchPlan, primary: Send, request: ChatRequest, delay: float
    ) -> ChatResponse | None:
        """Run ``primary`` in a worker; after ``delay`` without an answer, race a backup.

        A blocking read cannot be interrupted: the losing attempt finishes in its worker thread
        and records its outcome (and cost) when it does.
        """
        lock = threading.Lock()
        won: list[ChatResponse] = []

        def attempt(send: Send) -> None:
            try:
                parsed, headers = self._attempt(send, request)
            except ProviderError as exc:
                plan.failed(send, exc)
                return
            except BaseException:
                plan.cancelled(send)
                raise
            response = self._succeed(plan, send, parsed, headers)
            with lock:
                if not won:
                    won.append(response)

        pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="multimodel-hedge")
        try:
            futures = [pool.submit(attempt, primary)]
            done, _ = wait(futures, timeout=delay)
            if not done:
                backup = plan.hedge_action(primary)
                if backup is not None:
                    futures.append(pool.submit(attempt, backup))
            pending = set(futures)
            while pending and not won:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    future.result()  # re-raise KeyboardInterrupt and the like
        finally:
            pool.shutdown(wait=False)
        return won[0] if won else None

    def _attempt(self, send: Send, request: ChatRequest) -> tuple[ParsedResponse, httpx.Headers]:
        endpoint = send.endpoint
        http_request = self._http_request(send, request, stream=False)
        try:
            http_response = send_http(self._http, http_request)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, endpoint) from exc
        adapter = self._adapters[endpoint.name]
        if http_response.status_code >= 400:
            raise adapter.map_error(http_response, endpoint)
        return adapter.parse_response(http_response, endpoint), http_response.headers


def _pool_transport() -> httpx.BaseTransport:
    from ._pool import PoolTransport  # loaded with the first client, not at import

    return PoolTransport(limits=HTTP_LIMITS, ssl_context=default_ssl_context())
