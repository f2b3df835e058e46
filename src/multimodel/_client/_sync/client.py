"""Generated from ``_async/client.py`` by ``.ci/unasync.py``: do not edit.

Edit ``_async/client.py``, then run ``nox -s generate`` (or ``python .ci/unasync.py``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cached_property
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import httpx

from ..._transports.select import (
    TransportName,
    pool_transport,
    transport_names,
    client_verify,
    connection_limit,
    http_limits,
    pick_transport,
)
from ...config._load import client_config
from ...errors import InvalidRequestError, MultimodelError
from ...types import ChatRequest, ChatResponse
from .._base import RequestInput, call_timeout
from .._primitives import SdkClose, gather
from ..params import RequestParams
from .driver import Driver

if sys.version_info >= (3, 11):
    from typing import Never, Self, Unpack
else:  # pragma: no cover
    from typing_extensions import Never, Self, Unpack

if TYPE_CHECKING:
    from ..._core.clock import Clock
    from ...cache import CachePolicy, ResponseCache
    from ...catalog import Catalog
    from ...config import ClientConfig, Deployment
    from ...embeddings import EmbeddingResponse
    from ...resilience.budget import Budget
    from ...resilience.circuit import CircuitPolicy
    from ...resilience.hedge import HedgePolicy
    from ...resilience.retry import RetryBudget, RetryPolicy
    from ...resilience.shared import RedisState
    from ...security._rules import Policy
    from ...security.limits import InputLimits
    from ...security.policy import PolicySet
    from ...strategies.base import Strategy
    from ...tracking.ledger import UsageLedger
    from ...tracking.quality import FeedbackPolicy
    from ...tracking.telemetry import Telemetry
    from .chat import Chat
    from .embeddings import Embeddings
    from .stream import Stream

__all__ = ["Client"]


class Client(Driver, SdkClose):
    """Send chat requests to the configured deployments.

    The blocking client and the awaited one (asyncio or trio, through anyio) have the same
    methods, options and time limits.

    Args:
        deployments: the deployments to route over (``Deployment`` objects or dicts); they
            replace those of ``config``, if it has any.
        config: a ``ClientConfig``, a dict, or the path of a TOML (``.toml``) or JSON
            (``.json``) file with the same option names as the keywords here. Keywords given
            here override it; ``client.config`` shows the merged configuration in effect.
        strategy: how to choose among the deployments of a model group: a registered name
            (default ``"adaptive"``), a ``{"name": ..., **params}`` dict, or a strategy object.
        strategies: a strategy per model group (``"auto"`` included), as for ``strategy``.
        timeout: seconds one attempt may take in all: connecting, headers and body, and for a
            stream the wait for its first content (default 60).
        max_retries: retries after the first attempt (default 2; wins over ``retry``'s).
        deadline: seconds one whole call may take: attempts, back-offs and a stream's body
            (default: twice ``timeout``, without the body of a stream that is delivering).
        stream_idle_timeout: seconds a stream may go without content once it has started
            (keep-alive comments and pings do not count; default: ``timeout``).
        max_connections: connections the client keeps open at most, in use or idle, all
            deployments together (default 100); a request beyond them waits for one within its
            time limit, then fails with ``PoolExhausted``. Not with ``http_client`` or a
            transport object, which keep their own limits.
        retry: the back-off between attempts (a ``RetryPolicy``).
        circuit: when a failing deployment is set aside, and for how long (a ``CircuitPolicy``).
        fallbacks: model groups to try, in order, when one fails: ``{"a": ["b", "c"]}``.
        context_fallbacks: the model group that takes a prompt too long for another.
        retry_budget: the share of calls that may be retried (a ``RetryBudget``).
        budgets: spend limits (``Budget`` objects).
        hedge: backup attempts for slow calls (a ``HedgePolicy``; default: none).
        cache: the response cache: ``True`` (in memory), a ``CachePolicy``, a ``ResponseCache``.
        policies: access policies (a ``Policy`` or a ``PolicySet``).
        limits: input size limits (an ``InputLimits``).
        catalog: model prices and limits: a ``Catalog``, or a JSON or TOML model file merged
            over the bundled models (default: the bundled models).
        telemetry: OpenTelemetry metrics and spans: ``True`` (default), ``False``, a ``Telemetry``.
        ledger: a usage ledger: a SQLite file path or a ``UsageLedger``.
        shared_state: routing state shared with other processes through Redis: a URL
            (``"redis://host:6379/0"``) or a ``RedisState`` (the ``multimodel[redis]`` extra);
            rate limits, Retry-After holds and open breakers then hold for the whole fleet.
        clock: the time source (tests pass a ``ManualClock``).
        feedback: how :meth:`feedback` scores become learned quality estimates (a
            ``FeedbackPolicy``: half-life, prior strength, exploration floor).
        task_classifier: gives a request without ``task=`` its task: ``"heuristic"`` (built in:
            code, long, multilingual) or a callable ``(request) -> str | None``.
        unsupported_params: a known OpenAI parameter a deployment's provider has no equivalent
            for is ``"drop"``-ped with one ``DroppedParameterWarning`` (default) or, with
            ``"error"``, refused before anything is sent (``InvalidRequestError``).
        structured_retries: with a ``response_format``, how many times an answer that does
            not validate is sent back with its errors before the fallbacks are asked
            (default 1); a call's own ``structured_retries=`` wins.
        env: where API keys are read from (default ``os.environ``, when the client is built).
        http_client: an httpx client to use (you keep ownership; it is not closed).
        transport: an httpx transport for the client's own httpx client, or a name:
            ``"httpx"`` for httpx's own pool; on the awaited client also ``"aiohttp"`` for
            multimodel's transport over ``aiohttp`` (the ``multimodel[aiohttp]`` extra;
            asyncio only). The default is multimodel's pool over httpcore connections, which
            reuses a connection in O(1) and bounds every socket call by the attempt's time left.

    An option left at ``None`` is not given: it keeps the value of ``config``, else its default
    (see ``ClientConfig``). Objects such as ``retry`` may also be given as dicts of their fields.

    Raises:
        ConfigError: an invalid option, or an unknown one (the message names the closest valid
            name); MissingAPIKeyError names the variable to set.

    .. versionadded:: 0.1
    """

    # The blocking client writes a feedback score to ``shared_state`` at once; the awaited one
    # must not block its event loop: the score goes with its next Redis round trip.
    _feedback_flushes = __name__.endswith("._sync.client")

    def __init__(
        self,
        deployments: Sequence[Deployment | Mapping[str, Any]] | None = None,
        *,
        config: ClientConfig | Mapping[str, Any] | str | os.PathLike[str] | None = None,
        strategy: str | Mapping[str, Any] | Strategy | None = None,
        strategies: Mapping[str, str | Mapping[str, Any] | Strategy] | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        deadline: float | None = None,
        stream_idle_timeout: float | None = None,
        max_connections: int | None = None,
        retry: RetryPolicy | None = None,
        circuit: CircuitPolicy | None = None,
        fallbacks: Mapping[str, Sequence[str]] | None = None,
        context_fallbacks: Mapping[str, str] | None = None,
        retry_budget: RetryBudget | None = None,
        budgets: Sequence[Budget] | None = None,
        hedge: HedgePolicy | None = None,
        cache: bool | CachePolicy | ResponseCache | None = None,
        policies: Policy | PolicySet | None = None,
        limits: InputLimits | None = None,
        catalog: Catalog | str | os.PathLike[str] | None = None,
        telemetry: bool | Telemetry | None = None,
        ledger: UsageLedger | str | os.PathLike[str] | None = None,
        shared_state: str | RedisState | None = None,
        clock: Clock | None = None,
        feedback: FeedbackPolicy | None = None,
        task_classifier: Callable[[ChatRequest], str | None] | str | None = None,
        unsupported_params: Literal["drop", "error"] | None = None,
        structured_retries: int | None = None,
        env: Mapping[str, str] | None = None,
        http_client: httpx.Client | None = None,
        transport: httpx.BaseTransport | TransportName | None = None,
        **unknown: Never,  # a misspelt option: a ConfigError naming the closest valid one
    ) -> None:
        options = {
            "strategy": strategy,
            "strategies": strategies,
            "timeout": timeout,
            "max_retries": max_retries,
            "deadline": deadline,
            "stream_idle_timeout": stream_idle_timeout,
            "max_connections": max_connections,
            "retry": retry,
            "circuit": circuit,
            "fallbacks": fallbacks,
            "context_fallbacks": context_fallbacks,
            "retry_budget": retry_budget,
            "budgets": budgets,
            "hedge": hedge,
            "cache": cache,
            "policies": policies,
            "limits": limits,
            "catalog": catalog,
            "telemetry": telemetry,
            "ledger": ledger,
            "shared_state": shared_state,
            "clock": clock,
            "feedback": feedback,
            "task_classifier": task_classifier,
            "unsupported_params": unsupported_params,
            "structured_retries": structured_retries,
            "env": env,
        }
        merged = client_config(
            deployments, config, options, unknown, extra=("http_client", "transport")
        )
        connection_limits = http_limits(merged.max_connections)
        pool_limit = connection_limit(merged, http_client, transport)  # or ConfigError
        super().__init__(merged)
        chosen = pick_transport(
            transport,
            http_client,
            named=transport_names,
            pool=pool_transport,
            limits=connection_limits,
        )
        self._owns_http = http_client is None
        self._pool_limit = pool_limit
        self._http = http_client or httpx.Client(
            transport=chosen,
            timeout=self._timeout,
            limits=connection_limits,
            verify=client_verify(chosen),
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

    @classmethod
    def from_litellm(
        cls,
        model_list: Sequence[Mapping[str, Any]] | None = None,
        router_settings: Mapping[str, Any] | None = None,
        *,
        config_file: str | os.PathLike[str] | None = None,
        **options: Any,
    ) -> Self:
        """A client from a LiteLLM ``Router`` configuration: its ``model_list`` and router
        settings (``routing_strategy``, ``num_retries``, ``timeout``, ``fallbacks``,
        ``context_window_fallbacks``, ``allowed_fails``, ``cooldown_time``), or a LiteLLM proxy
        ``config_file`` (YAML; needs PyYAML). ``options`` are client keywords, which win.

        ``client.litellm_import`` says what was mapped where the behaviour differs (``notes``)
        and what was not imported (``unmapped``, also warned as a ``LiteLLMImportWarning``);
        see :mod:`multimodel.config.litellm`.

        Raises:
            ConfigError: an entry that cannot be imported (named), or an invalid option.
        """
        from ...config.litellm import convert_litellm

        imported = convert_litellm(
            model_list, router_settings, config_file=config_file, env=options.get("env")
        )
        client = cls(deployments=imported.deployments, **{**imported.options, **options})
        client.litellm_import = imported
        return client

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
        structured_retries: int | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str | int | float | bool] | None = None,
        **params: Unpack[RequestParams],
    ) -> ChatResponse:
        """Send one request and return the complete answer.

        Args:
            prompt: a prompt string, a list of messages, or a ``ChatRequest``.
            model: the model group (optional when only one is configured).
            timeout: the per-attempt time limit for this call.
            cache: ``False`` skips the response cache for this call; ``True`` uses it even for
                a sampled request (temperature > 0).
            cache_ttl: seconds to keep this answer in the cache.
            policy: the access policy to apply (default: the caller's, from ``user``).
            structured_retries: with a ``response_format``, how many times an answer that does
                not validate is sent back with its errors (default: the client's
                ``structured_retries``, 1), within the deadline.
            extra_headers: headers added to this call's requests (over the deployment's own),
                as the OpenAI SDK's per-call ``extra_headers``.
            extra_query: query parameters added to this call's request URLs (the SDK's
                ``extra_query``).
            **params: ``max_tokens``, ``temperature``, ``tools`` ... (``RequestParams``);
                ``response_format`` may be a pydantic model class or a JSON-schema dict, and
                the answer's ``parsed`` then holds the validated object.

        Raises:
            InvalidRequestError, UnknownModelError: bad input; nothing was sent.
            ProviderError: a non-retryable provider error (bad request, content filter ...).
            AllAttemptsFailed, NoDeploymentAvailable: retries and fallbacks ran out.
            StructuredOutputError: the answer does not fit the ``response_format``.
        """
        if timeout is not None:
            timeout = call_timeout(timeout)
        if extra_headers or extra_query:
            return self._per_call(extra_headers, extra_query).query(
                prompt,
                model=model,
                timeout=timeout,
                cache=cache,
                cache_ttl=cache_ttl,
                policy=policy,
                structured_retries=structured_retries,
                **params,
            )
        if (
            "response_format" in params
            or structured_retries is not None
            or (isinstance(prompt, ChatRequest) and prompt.response_format is not None)
        ):
            from .structured import query_structured

            return query_structured(
                self, prompt, model, timeout, cache, cache_ttl, policy, structured_retries, params
            )
        started = self._clock.monotonic()
        request, resolved = self._prepare(prompt, model, params, policy)
        if self.cache is None:  # one call fewer on the common path
            return self._run(request, timeout, resolved)
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
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str | int | float | bool] | None = None,
        **params: Unpack[RequestParams],
    ) -> Stream:
        """Stream the answer: a context manager and iterator of ``ChatChunk``.

        The request is validated now and sent when the stream is entered or first iterated.
        A cached answer is replayed as chunks. Options are as for :meth:`query`. With a
        ``response_format``, the text streams as usual and, at the end, ``stream.response``
        has ``parsed`` (the end of the iteration raises ``StructuredOutputError`` when the
        answer does not fit; streams are not retried).
        """
        if timeout is not None:
            timeout = call_timeout(timeout)
        if extra_headers or extra_query:
            return self._per_call(extra_headers, extra_query).stream(
                prompt,
                model=model,
                timeout=timeout,
                cache=cache,
                cache_ttl=cache_ttl,
                policy=policy,
                **params,
            )
        structured = None
        if "response_format" in params or (
            isinstance(prompt, ChatRequest) and prompt.response_format is not None
        ):
            from ..structured import for_call

            params, fmt, target = for_call(prompt, params)  # type: ignore[assignment]
            structured = (fmt, target)
        request, resolved = self._prepare(prompt, model, params, policy)
        plan = self._plan(request, timeout, resolved, stream=True)
        return self._stream_class(
            self._http,
            self._kit,
            request,
            plan,
            cache=(cache, cache_ttl),
            structured=structured,
        )

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
        its exception instead of failing the batch. With a ``response_format`` (for the batch
        or an item) each answer is validated as by :meth:`query` (``parsed`` set, repaired
        once); an item that still does not fit is its ``StructuredOutputError``.
        """
        self._check_open()
        if concurrency < 1:
            raise InvalidRequestError("concurrency must be at least 1", field="concurrency")
        from ...security.limits import check_batch

        items = list(requests)
        check_batch(len(items), self.limits)

        def one(item: Any) -> ChatResponse | MultimodelError:
            try:
                prompt, item_model, item_params = self._batch_parts(item, model, params)
                if "response_format" in item_params or (
                    isinstance(prompt, ChatRequest) and prompt.response_format is not None
                ):  # validated (and repaired) like query's
                    from .structured import query_structured

                    return query_structured(
                        self, prompt, item_model, None, None, None, None, None, item_params
                    )
                started = self._clock.monotonic()
                request, resolved = self._prepare(prompt, item_model, item_params)
                return self._call(request, resolved, None, None, None, started)
            except MultimodelError as exc:
                return exc

        return gather(one, items, concurrency)

    def embed(
        self,
        inputs: str | Sequence[str],
        *,
        model: str | None = None,
        dimensions: int | None = None,
        timeout: float | None = None,
        cache: bool | None = None,
        user: str | None = None,
        policy: str | None = None,
        task_type: str | None = None,
        title: str | Sequence[str] | None = None,
    ) -> EmbeddingResponse:
        """Embed ``inputs`` (a string or a list of strings): one vector per input, in order.

        Large inputs are split into batches every deployment of the model group accepts (the
        providers' per-request limits, or a deployment's ``embedding_batch_size`` option), and
        each batch is routed like a chat call (strategies, retries, fallbacks, rate limits,
        budgets, tracker, ledger); the cost comes from the catalog's input price. With a
        response cache, each input's vector is cached (``cache=False`` skips it): only the
        misses are sent, and ``cached`` on the answer counts the hits. The client's
        ``limits`` (``InputLimits``) and the caller's policy (``policy``, else ``user``'s)
        apply as for chat, before anything is sent. ``task_type`` (Gemini's ``taskType``:
        ``"RETRIEVAL_QUERY"``, ``"RETRIEVAL_DOCUMENT"`` ...) and, with ``RETRIEVAL_DOCUMENT``,
        ``title`` (one string, or one per input) go to Gemini deployments; other providers have
        no equivalent (the client's ``unsupported_params`` says: dropped with a warning, or
        refused).

        Raises:
            InvalidRequestError: no inputs, an input over the client's ``limits``, a bad
                ``task_type``/``title`` (or one a reachable deployment cannot carry, with
                ``unsupported_params="error"``), or a deployment of the group offers no
                embeddings; nothing was sent.
            PolicyViolation: the policy forbids an input or every deployment.
            AllAttemptsFailed, NoDeploymentAvailable: a batch ran out of retries and fallbacks.
        """
        from .embeddings import embed

        return embed(
            self, inputs, model, dimensions, timeout, cache, user, policy, task_type, title
        )

    @cached_property
    def embeddings(self) -> Embeddings:
        """The OpenAI-shaped surface: ``client.embeddings.create(input=..., model=...)``."""
        from .embeddings import Embeddings

        return Embeddings(self)

    @cached_property
    def _stream_class(self) -> type[Stream]:
        """The stream class, imported by the first stream: a client that only queries never
        loads the streaming modules (a per-call import would cost ~0.8 µs a stream)."""
        from .stream import Stream

        return Stream

    @cached_property
    def chat(self) -> Chat:
        """The OpenAI-shaped surface: ``client.chat.completions.create(...)``."""
        from .chat import Chat

        return Chat(self)

    def close(self) -> None:
        """Close the connections (not those of an ``http_client`` you passed in)."""
        if self._owns_http:
            self._http.close()
        if self._shared is not None:
            self._shared.close()
        self._close_owned()

    def __enter__(self) -> Self:
        self._listen_to_fleet()
        return self

    def _listen_to_fleet(self) -> None:
        """Start the shared state's listener for the fleet's status changes (the sync client's
        is a thread, the asyncio client's a task of the running loop); stopped on ``close()``."""
        if self._shared is not None:
            self._shared.listen()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
