"""What the sync and async clients share: configuration, validation, routing, parsing.

Nothing here does I/O. The drivers in ``_async/`` (and the sync ones generated from them)
add only the sending, reading and sleeping (httpx's ``BaseClient`` split, see ``STYLE.md``).

This module holds :class:`BaseClient` itself: building the client's parts from its
configuration, the options and views that need no call (``models``, ``with_options``,
``deployments``), an attempt's HTTP request and transport errors, and closing. Its other
concepts are mixins, one a module: request building (``_requests.py``), accounting for an
answer (``_accounting.py``), feedback, stats and status (``_feedback.py``).
"""

from __future__ import annotations

import copy
import functools
import math
import os
import sys
import uuid
import weakref
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import httpx

from .._core.clock import Clock, SystemClock
from .._core.dispatch import AUTO, DispatchPlan, Router, Send
from .._transports.pool import pool_wait_ended
from ..config import ClientConfig, resolve_endpoints
from ..errors import (
    ClientClosed,
    ConfigError,
    InvalidRequestError,
    MultimodelError,
    PoolExhausted,
    ProviderConnectionError,
    ProviderTimeout,
)
from ..events import EventBus
from ..providers.base import Endpoint, ParsedResponse, ProviderAdapter
from ..providers.registry import get_adapter
from ..resilience.circuit import CircuitPolicy, HealthBoard
from ..resilience.retry import RetryPolicy
from ..strategies.base import make_strategy
from ..tracking._recent import Recent
from ..tracking.quality import DEFAULT_TASK, FeedbackPolicy, ServedResponse
from ..tracking.stats import Tracker
from ..types import ChatRequest
from ._accounting import Accounting, _find_spec
from ._feedback import SHARED_SCORES_KEPT, FeedbackAndStatus
from ._requests import DEFAULT_DEADLINE_FACTOR, RequestBuilding, RequestInput

if TYPE_CHECKING:  # loaded when a client is built, not when multimodel is imported
    from ..cache import ResponseCache
    from ..config.litellm import LiteLLMImport
    from ..tracking.ledger import UsageLedger
    from ..tracking.telemetry import Telemetry
    from ._stream_core import StreamKit
    from .openai_shapes import Model, ModelGroups

__all__ = ["DEFAULT_DEADLINE_FACTOR", "BaseClient", "RequestInput"]

if sys.version_info >= (3, 11):
    from typing import Self
else:  # pragma: no cover
    from typing_extensions import Self


class BaseClient(RequestBuilding, Accounting, FeedbackAndStatus):
    """Shared, I/O-free part of :class:`~multimodel.Client` and :class:`~multimodel.AsyncClient`."""

    _owns_http: bool = True  # whether closing the client closes its httpx client (drivers)
    _pool_limit = "its max_connections"  # what bounds its connections (set by the drivers)
    _extra_headers: tuple[tuple[str, str], ...] = ()  # with_options(default_headers=...)
    _extra_query: tuple[tuple[str, str], ...] = ()  # with_options(default_query=...)
    litellm_import: LiteLLMImport | None = None
    """For a client made by ``from_litellm``: what was imported, and what was not."""

    def __init__(self, config: ClientConfig) -> None:
        """Build the client's parts from ``config`` (merged by the driver's constructor)."""
        self._closed = False
        self.config = config
        """The configuration in effect: the ``config=`` given, overridden by the keywords."""
        self._clock: Clock = config.clock or SystemClock()
        self._timeout = config.timeout
        self._deadline = config.deadline
        self._refuse_params = config.unsupported_params == "error"
        self._structured_retries = config.structured_retries
        policy = config.retry or RetryPolicy(max_retries=config.max_retries)
        # Heavier parts load here, when a client is built, so `import multimodel` stays cheap.
        from ..catalog import default_catalog
        from ..security.limits import DEFAULT_LIMITS, check_request
        from ..tracking.cost import WarnOnce, compute_cost

        # Per-call helpers of modules loaded here, kept as attributes: an import statement
        # inside a method costs about a microsecond on every call.
        self._check_request = check_request
        self._compute_cost = compute_cost

        catalog = config.catalog
        if catalog is None or isinstance(catalog, str | os.PathLike):
            path, catalog = catalog, default_catalog()
            if path is not None:
                catalog.load(path)
        self.catalog = catalog
        self.limits = config.limits if config.limits is not None else DEFAULT_LIMITS
        policies = config.policies
        if policies is not None:  # the policy modules load only for a client that has some
            from ..security._rules import Policy
            from ..security.policy import PolicySet

            if isinstance(policies, Policy):
                policies = PolicySet([policies], default=policies.name)
        self.policies = policies
        cache = config.cache
        if cache is not None and cache is not False:  # cachetools too, only for a cache
            from ..cache import CachePolicy, MemoryCache, ResponseCache

            if cache is True:
                cache = CachePolicy()
            if isinstance(cache, CachePolicy):
                cache = ResponseCache(
                    cache, backend=MemoryCache(max_entries=cache.max_entries, clock=self._clock)
                )
        self.cache: ResponseCache | None = cache or None
        self._endpoints = [
            replace(ep, spec=_find_spec(self.catalog, ep))
            for ep in resolve_endpoints(config.deployments, config.env)
        ]
        self._warn_once = WarnOnce()
        self.tracker = Tracker(self._clock.monotonic)
        for ep in self._endpoints:
            self.tracker.register(ep.name, ep.model, ep.provider)
        from ..tracking.quality import QualityBook, heuristic_task

        classifier = config.task_classifier
        self._classify: Callable[[ChatRequest], str | None] | None = (
            heuristic_task if classifier == "heuristic" else classifier  # type: ignore[assignment]
        )
        self.quality = QualityBook(
            config.feedback or FeedbackPolicy(),
            prior=self._catalog_quality,
            clock=self._clock.time,
        )
        """Learned quality per (model, task), fed by :meth:`feedback`."""
        self._model_of = {ep.name: ep.model for ep in self._endpoints}
        self._served_by = {
            ep.name: ServedResponse(ep.model, DEFAULT_TASK, ep.name) for ep in self._endpoints
        }
        strategy_spec = config.strategy
        per_group = config.strategies
        quality = self.quality

        def strategy_for(model: str) -> Any:
            if model in per_group:
                strategy = make_strategy(per_group[model])
            elif model == AUTO and strategy_spec is None:
                strategy = make_strategy("intelligent")
            else:
                strategy = make_strategy(strategy_spec)
            attach = getattr(strategy, "attach_quality", None)
            if attach is not None:  # strategies that route on learned quality
                attach(quality)
            return strategy

        from ..tracking.telemetry import Telemetry

        telemetry = config.telemetry
        if telemetry is True:
            self.telemetry: Telemetry | None = Telemetry()
        elif telemetry is False:
            self.telemetry = None
        else:
            self.telemetry = telemetry
        ledger = config.ledger
        self.ledger: UsageLedger | None = None
        self._owns_ledger = False
        if ledger is not None:  # sqlite3 is loaded only for a client that keeps a ledger
            from ..tracking.ledger import UsageLedger

            self._owns_ledger = not isinstance(ledger, UsageLedger)
            self.ledger = ledger if isinstance(ledger, UsageLedger) else UsageLedger(ledger)
        self.events = EventBus()
        self.health = HealthBoard(config.circuit or CircuitPolicy(), self._status_changed)
        budgets = None
        if config.budgets:  # the budget module loads only for a client that has some
            from ..resilience.budget import BudgetBook

            budgets = BudgetBook(
                config.budgets,
                wall=self._clock.time,
                alert=lambda alert: self.events.emit("budget_alert", alert),
            )
        self._router = Router(
            self._endpoints,
            strategy_for,
            self.tracker,
            self._clock,
            policy,
            self.health,
            fallbacks=config.fallbacks,
            context_fallbacks=config.context_fallbacks,
            budget=config.retry_budget,
            cost=self._cost,
            telemetry=self.telemetry,
            budgets=budgets,
            hedge=config.hedge,
        )
        self._origin = uuid.uuid4().hex  # names this client's scores (ledger, shared state)
        self._self_ref = weakref.ref(self)  # what a response's feedback() scores through
        self._shared_scores: Recent[tuple[str, str, float, float], None] = Recent(
            SHARED_SCORES_KEPT
        )
        self._shared = config.shared_state
        if self._shared is not None:
            self._router.shared = self._shared
            self._router.limiter.on_reconcile = self._shared.reconciled
            self._shared.subscribe(self._fleet_status_changed)
            share = getattr(self._shared, "share_feedback", None)
            if share is not None:  # scores reach the other processes' estimates
                source = self._origin
                self.quality.subscribe(
                    lambda model, task, score, at: share(model, task, score, at, source=source)
                )
            if self._router.budgets is not None:
                self._router.budgets.on_settle = functools.partial(
                    self._shared.spent,
                    emit=lambda alert: self.events.emit("budget_alert", alert),
                    wall=self._clock.time,
                )
        self.tracker.subscribe(self._outcome_event)
        if self.telemetry is not None:
            self.tracker.subscribe(self.telemetry.record)
            self.telemetry.set_availability_source(
                lambda: {ep.name: self.tracker.availability(ep.name) for ep in self._endpoints}
            )
        # With content storage on, successful calls are written by _response (with their prompt
        # and answer); every other outcome goes straight from the tracker to the ledger.
        self._ledger_content = self.ledger is not None and self.ledger.stores_content
        if self.ledger is not None:
            ledger = self.ledger
            if self._ledger_content:
                self.tracker.subscribe(
                    lambda o: None if o.ok and not o.cached else ledger.record(o)
                )
            else:
                self.tracker.subscribe(ledger.record)
        self._adapters: dict[str, ProviderAdapter] = {
            ep.name: get_adapter(ep.adapter) for ep in self._endpoints
        }
        if self.ledger is not None:
            self._feedback_seen = 0  # the last ledger feedback row replayed
            ledger_ = self.ledger
            origin = self._origin
            self.quality.subscribe(
                lambda model, task, score, at: ledger_.record_feedback(
                    model, task, score, at, origin=origin
                )
            )
            self.sync_feedback()
        self._idle_timeout = config.stream_idle_timeout or self._timeout

    @functools.cached_property
    def _kit(self) -> StreamKit:
        """What this client's streams need from it: built by the first stream, which loads the
        streaming modules (a client that only queries never does)."""
        from ._stream_core import StreamKit

        return StreamKit(
            adapters=self._adapters,
            clock=self._clock,
            cache=self.cache,
            idle_timeout=self._idle_timeout,
            http_request=self._http_request,
            transport_error=self._transport_error,
            respond=self._response,
            from_cache=self._from_cache,
            request_id=self._request_id,
        )

    # -- public, I/O-free ----------------------------------------------------------------------

    @property
    def models(self) -> ModelGroups:
        """The configured model groups: a list of names, which also has the OpenAI SDK's
        ``client.models.list()`` (the groups with catalog data) and ``retrieve(name)``."""
        from .openai_shapes import ModelGroups  # the OpenAI SDK's shapes load when asked for

        return ModelGroups(list(self._router.groups), self._model_list)

    def _model_list(self) -> list[Model]:
        from .openai_shapes import Model

        out = []
        for name, endpoints in self._router.groups.items():
            specs = [ep.spec for ep in endpoints if ep.spec is not None]
            caps = set.intersection(*(set(s.capabilities) for s in specs)) if specs else set()
            out.append(
                Model(
                    id=name,
                    owned_by=",".join(dict.fromkeys(ep.provider for ep in endpoints)),
                    deployments=[ep.name for ep in endpoints],
                    context_window=min((s.context_window for s in specs), default=None),
                    max_output_tokens=min((s.max_output_tokens for s in specs), default=None),
                    capabilities=sorted(caps),
                )
            )
        return out

    def with_options(
        self,
        *,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int | None = None,
        default_headers: Mapping[str, str] | None = None,
        default_query: Mapping[str, str | int | float | bool] | None = None,
    ) -> Self:
        """A client with another ``timeout``, ``max_retries`` and/or more headers or URL query
        parameters, as the OpenAI SDK's ``client.with_options(...)``.

        Args:
            timeout: seconds one attempt may take in all; or an ``httpx.Timeout`` (what code
                written for the SDK passes): the attempt may take the largest of its limits,
                and its ``read`` limit becomes the stream idle limit (see
                ``docs/migration/openai-sdk.md``).
            max_retries: retries after the first attempt.
            default_headers: headers added to every request (over the deployment's own),
                merged with those of an earlier ``with_options``.
            default_query: query parameters added to every request's URL (over the
                deployment's own, such as Azure's ``api-version``), merged likewise.

        It shares everything else with this one: connections, deployments, strategies, the
        tracker and health, rate limits, budgets, cache and ledger; closing it closes nothing
        this client uses. ``client.with_options(max_retries=0).chat.completions.create(...)``.

        Raises:
            ConfigError: ``timeout`` not > 0 (or an ``httpx.Timeout`` without any limit),
                ``max_retries`` < 0, a header that is not a string, or a query value that is
                not a string, number or bool.
        """
        clone = self._derive()  # its streams' kit is its own, built by its first stream
        if timeout is not None:
            if isinstance(timeout, httpx.Timeout):
                timeout, idle = _from_httpx_timeout(timeout)
                if idle is not None:
                    clone._idle_timeout = idle
            if not _finite_seconds(timeout):
                raise ConfigError(
                    f"timeout must be a finite number of seconds > 0, got {timeout!r}"
                )
            clone._timeout = float(timeout)
        if max_retries is not None:
            if max_retries < 0:
                raise ConfigError(f"max_retries must be >= 0, got {max_retries!r}")
            router = copy.copy(self._router)
            router.retry = replace(router.retry, max_retries=max_retries)
            clone._router = router
        if default_headers:
            if not all(isinstance(v, str) for v in (*default_headers, *default_headers.values())):
                raise ConfigError("default_headers: names and values must be strings")
            clone._extra_headers = (*self._extra_headers, *default_headers.items())
        if default_query:
            clone._extra_query = (*self._extra_query, *_query_items(default_query))
        return clone

    def _derive(self) -> Self:
        """A shallow copy sharing this client's state, owning none of its resources."""
        clone = copy.copy(self)
        for name in ("chat", "embeddings", "_kit"):  # cached parts bound to this client
            clone.__dict__.pop(name, None)
        clone._owns_http = False
        clone._owns_ledger = False
        return clone

    def _capturing(self, sink: list[Any]) -> Self:
        """A derived client that appends the headers of each successful attempt to ``sink``
        (``with_raw_response``); the ordinary client pays nothing for it."""
        clone = self._derive()
        succeed = clone._succeed

        def capture(plan: DispatchPlan, send: Send, parsed: ParsedResponse, headers: Any) -> Any:
            sink.append(headers)
            return succeed(plan, send, parsed, headers)

        clone._succeed = capture  # type: ignore[method-assign]
        return clone

    @property
    def deployments(self) -> list[Endpoint]:
        """The resolved deployments (keys are ``SecretStr`` and never shown)."""
        return list(self._endpoints)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} deployments={[e.name for e in self._endpoints]}>"

    # -- attempts ------------------------------------------------------------------------------

    def _http_request(self, send: Send, request: ChatRequest, *, stream: bool) -> httpx.Request:
        endpoint = send.endpoint
        http_request = self._adapters[endpoint.name].build_request(request, endpoint, stream=stream)
        http_request.extensions["timeout"] = _timeout_extension(send.timeout)
        if self._extra_headers:  # with_options(default_headers=...), extra_headers=
            http_request.headers.update(self._extra_headers)
        if self._extra_query:  # with_options(default_query=...), extra_query=
            http_request.url = http_request.url.copy_merge_params(dict(self._extra_query))
        return http_request

    def _per_call(self, extra_headers: object, extra_query: object) -> Self:
        """The client one call with the OpenAI SDK's ``extra_headers`` / ``extra_query`` is
        sent through (a ``with_options`` clone; the common call never gets here).

        Raises:
            InvalidRequestError: a header or query value of the wrong type (named).
        """
        if extra_headers is not None and not (
            isinstance(extra_headers, Mapping)
            and all(isinstance(v, str) for v in (*extra_headers, *extra_headers.values()))
        ):
            raise InvalidRequestError(
                "extra_headers must be a dict of header names and values, all strings",
                field="extra_headers",
            )
        if extra_query is not None:
            try:
                if not isinstance(extra_query, Mapping):
                    raise ConfigError(f"a dict is needed, got {type(extra_query).__name__}")
                _query_items(extra_query)
            except ConfigError as exc:
                raise InvalidRequestError(f"extra_query: {exc}", field="extra_query") from None
        return self.with_options(default_headers=extra_headers, default_query=extra_query)

    def _transport_error(
        self, exc: Exception, endpoint: Endpoint, request: httpx.Request | None = None
    ) -> MultimodelError:
        """The error for a failure below HTTP: the provider's (a timeout, a refused or dropped
        connection), or the client's own when its pool had no free connection in time
        (``request``: the attempt's, to tell a time limit that ended its wait for the pool)."""
        if (
            isinstance(exc, TimeoutError)
            and request is not None
            and pool_wait_ended.get() is request
        ):
            exc = httpx.PoolTimeout("no connection came free before the attempt's time limit")
        if isinstance(exc, httpx.PoolTimeout):
            return PoolExhausted(
                f"no free connection in the client's pool in time for {endpoint.name!r}: {exc}. "
                f"More requests in flight than {self._pool_limit}, or streams left open (use "
                "`with client.stream(...)`); the pool is the client's own, so no deployment is "
                "blamed"
            )
        kind = (
            ProviderTimeout
            if isinstance(exc, httpx.TimeoutException | TimeoutError)
            else (ProviderConnectionError)
        )
        detail = str(exc) or type(exc).__name__
        return kind(
            f"{type(exc).__name__}: {detail}", provider=endpoint.provider, deployment=endpoint.name
        )

    def _close_owned(self) -> None:
        self._closed = True
        if self.ledger is not None and self._owns_ledger:
            self.ledger.close()

    def is_closed(self) -> bool:
        """Whether the client was closed (the OpenAI SDK's ``is_closed()``)."""
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosed(
                f"this {type(self).__name__} was closed; build a new client for more calls"
            )


def _finite_seconds(value: object) -> bool:
    """Whether ``value`` is a number of seconds a time limit can be: finite and > 0."""
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < math.inf


def call_timeout(timeout: object) -> float:
    """A call's ``timeout=`` as seconds.

    Raises:
        InvalidRequestError: not a finite number > 0 (``0``, a negative number, ``nan`` or
            ``inf`` would end the call at once or never: named here, not blamed on a provider),
            or an ``httpx.Timeout``, which ``with_options`` takes.
    """
    if isinstance(timeout, httpx.Timeout):
        raise InvalidRequestError(
            "a call's timeout is seconds; an httpx.Timeout (whose read limit also becomes the "
            "stream idle limit) goes to client.with_options(timeout=...)",
            field="timeout",
        )
    if not _finite_seconds(timeout):
        raise InvalidRequestError(
            f"timeout must be a finite number of seconds > 0, got {timeout!r}", field="timeout"
        )
    return float(timeout)  # type: ignore[arg-type]


def _from_httpx_timeout(timeout: httpx.Timeout) -> tuple[float, float | None]:
    """An attempt's time limit and the stream idle limit for an ``httpx.Timeout``.

    httpx limits each phase (connect, each read and write, the wait for a pooled connection);
    multimodel bounds an attempt in all. The attempt may take the largest phase limit, and the
    per-read limit is what a started stream may wait for its next piece.
    """
    limits = [t for t in (timeout.connect, timeout.read, timeout.write, timeout.pool) if t]
    if not limits:
        raise ConfigError(
            "timeout: this httpx.Timeout sets no limit; multimodel always bounds an attempt, "
            "give a number of seconds"
        )
    return max(limits), timeout.read or None


def _query_items(query: Mapping[Any, object]) -> list[tuple[str, str]]:
    """``default_query`` / ``extra_query`` as URL parameters (bools as ``true``/``false``, as
    httpx writes them)."""
    items = []
    for name, value in query.items():
        if not isinstance(name, str) or not isinstance(value, str | int | float | bool):
            raise ConfigError(
                f"query parameter {name!r}: names must be strings and values strings, numbers "
                f"or bools, got {type(value).__name__}"
            )
        items.append((name, str(value).lower() if isinstance(value, bool) else str(value)))
    return items


def _timeout_extension(seconds: float) -> dict[str, float | None]:
    """httpx's per-request timeout extension for ``seconds`` (a copy: a transport may keep it)."""
    return dict(_timeouts(seconds))


_POOL_MARGIN = 0.05  # seconds: larger than the work between the attempt's start and its wait


@functools.lru_cache(maxsize=64)
def _timeouts(seconds: float) -> dict[str, float | None]:
    # httpx.Timeout(...).as_dict() costs ~2 µs; a deadline makes per-attempt timeouts vary,
    # hence a bounded cache rather than one dict.
    # The wait for a pooled connection ends a little before the attempt's own time limit: a
    # pool that is not multimodel's (httpx's, behind transport="httpx" or an http_client)
    # then raises its PoolTimeout (the client's PoolExhausted) before the awaited client's
    # cancel scope ends the attempt as a timeout of the provider's. multimodel's pools end
    # their wait before an enclosing limit by themselves.
    return httpx.Timeout(seconds, pool=seconds - min(_POOL_MARGIN, seconds / 10)).as_dict()
