"""What the sync and async clients share: configuration, validation, routing, parsing.

Nothing here does I/O. The drivers in ``_async/`` (and the sync ones generated from them)
add only the sending, reading and sleeping (httpx's ``BaseClient`` split, see ``STYLE.md``).
"""

from __future__ import annotations

import copy
import functools
import logging
import os
import sys
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import BaseModel, ValidationError

from .._core.clock import Clock, SystemClock
from .._core.dispatch import AUTO, DispatchPlan, Router, Send
from .._core.text import unencodable_field
from .._core.tokens import estimate_text_tokens
from .._core.trace import RoutingTrace
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
    UnknownModelError,
    UnknownResponseError,
)
from ..events import EventBus, ModelStatusEvent
from ..providers.base import NO_USAGE, Endpoint, ParsedResponse, ProviderAdapter
from ..providers.registry import get_adapter
from ..resilience.budget import BudgetBook
from ..resilience.circuit import CircuitPolicy, HealthBoard, Status
from ..resilience.retry import RetryPolicy
from ..strategies.base import make_strategy
from ..tracking.outcome import Outcome
from ..tracking.quality import DEFAULT_TASK, TASK_TAG, FeedbackPolicy, ServedResponse, task_of_tags
from ..tracking.snapshot import StatsSnapshot
from ..tracking.stats import Tracker
from ..types import _PLAIN_MESSAGE_KEYS, ChatRequest, ChatResponse, Message, Usage, coerce_message
from ._stream_core import StreamKit
from .openai_shapes import Model, ModelGroups
from .params import REQUEST_FIELDS, split_params

if TYPE_CHECKING:  # loaded when a client is built, not when multimodel is imported
    from ..cache import ResponseCache
    from ..catalog import Catalog, ModelSpec
    from ..config.litellm import LiteLLMImport
    from ..security._rules import Policy
    from ..tracking.cost import CostBreakdown
    from ..tracking.ledger import UsageLedger
    from ..tracking.telemetry import Telemetry

__all__ = ["DEFAULT_DEADLINE_FACTOR", "BaseClient", "RequestInput"]

logger = logging.getLogger(__name__)

DEFAULT_DEADLINE_FACTOR = 2.0
"""Without a ``deadline``, a call may take this many times its ``timeout``: one full attempt
and room for retries, back-offs and waits, never minutes more."""

MessageInput = Message | Mapping[str, Any] | BaseModel
"""One message: a ``Message``, a dict (OpenAI's shapes included), or a message object the
OpenAI-shaped surface or the OpenAI SDK returned."""

RequestInput = str | Sequence[MessageInput]
"""A prompt string, or a list of messages: ``Message`` objects, dicts (OpenAI's shapes
included), or message objects the OpenAI-shaped surface or the OpenAI SDK returned."""

_REQUEST_FIELDS = REQUEST_FIELDS

if sys.version_info >= (3, 11):
    from typing import Self
else:  # pragma: no cover
    from typing_extensions import Self


class BaseClient:
    """Shared, I/O-free part of :class:`~multimodel.Client` and :class:`~multimodel.AsyncClient`."""

    _owns_http: bool = True  # whether closing the client closes its httpx client (drivers)
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
        policy = config.retry or RetryPolicy(max_retries=config.max_retries)
        # Heavier parts load here, when a client is built, so `import multimodel` stays cheap.
        from ..cache import CachePolicy, MemoryCache, ResponseCache
        from ..catalog import default_catalog
        from ..security._rules import Policy
        from ..security.limits import DEFAULT_LIMITS, check_request
        from ..security.policy import PolicySet
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
        if isinstance(policies, Policy):
            policies = PolicySet([policies], default=policies.name)
        self.policies = policies
        cache = config.cache
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

        from ..tracking.ledger import UsageLedger
        from ..tracking.telemetry import Telemetry

        telemetry = config.telemetry
        if telemetry is True:
            self.telemetry: Telemetry | None = Telemetry()
        elif telemetry is False:
            self.telemetry = None
        else:
            self.telemetry = telemetry
        ledger = config.ledger
        self._owns_ledger = ledger is not None and not isinstance(ledger, UsageLedger)
        self.ledger: UsageLedger | None = (
            ledger if isinstance(ledger, UsageLedger) or ledger is None else UsageLedger(ledger)
        )
        self.events = EventBus()
        self.health = HealthBoard(config.circuit or CircuitPolicy(), self._status_changed)
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
            budgets=BudgetBook(
                config.budgets,
                wall=self._clock.time,
                alert=lambda alert: self.events.emit("budget_alert", alert),
            ),
            hedge=config.hedge,
        )
        self._shared = config.shared_state
        if self._shared is not None:
            self._router.shared = self._shared
            self._router.limiter.on_reconcile = self._shared.reconciled
            self._shared.subscribe(self._fleet_status_changed)
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
            self._origin = uuid.uuid4().hex
            self._feedback_seen = 0  # the last ledger feedback row replayed
            ledger_ = self.ledger
            origin = self._origin
            self.quality.subscribe(
                lambda model, task, score, at: ledger_.record_feedback(
                    model, task, score, at, origin=origin
                )
            )
            self.sync_feedback()
        self._kit = StreamKit(
            adapters=self._adapters,
            clock=self._clock,
            cache=self.cache,
            idle_timeout=config.stream_idle_timeout or self._timeout,
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
        return ModelGroups(list(self._router.groups), self._model_list)

    def _model_list(self) -> list[Model]:
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

    def with_options(self, *, timeout: float | None = None, max_retries: int | None = None) -> Self:
        """A client with another per-attempt ``timeout`` and/or ``max_retries``, as the OpenAI
        SDK's ``client.with_options(...)``.

        It shares everything else with this one: connections, deployments, strategies, the
        tracker and health, rate limits, budgets, cache and ledger; closing it closes nothing
        this client uses. ``client.with_options(max_retries=0).chat.completions.create(...)``.

        Raises:
            ConfigError: ``timeout`` not > 0, or ``max_retries`` < 0.
        """
        clone = self._derive()
        if timeout is not None:
            if not timeout > 0:
                raise ConfigError(f"timeout must be > 0 seconds, got {timeout!r}")
            clone._timeout = float(timeout)
        if max_retries is not None:
            if max_retries < 0:
                raise ConfigError(f"max_retries must be >= 0, got {max_retries!r}")
            router = copy.copy(self._router)
            router.retry = replace(router.retry, max_retries=max_retries)
            clone._router = router
        return clone

    def _derive(self) -> Self:
        """A shallow copy sharing this client's state, owning none of its resources."""
        clone = copy.copy(self)
        for name in ("chat", "embeddings"):  # cached surfaces bound to this client
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

    # -- request building ----------------------------------------------------------------------

    def _build_request(
        self, prompt: RequestInput | ChatRequest, model: str | None, params: Mapping[str, Any]
    ) -> ChatRequest:
        task = None
        if "task" in params:
            params = dict(params)
            task = params.pop("task")
        request = self._build_plain(prompt, model, params)
        if task is not None or self._classify is not None:
            request = self._with_task(request, task)
        return request

    def _with_task(self, request: ChatRequest, task: object) -> ChatRequest:
        """The request with its task as a ``task:<name>`` tag: ``task=``, else (when the request
        has no task tag) the classifier's answer."""
        if task is None:
            if request.tags and any(t.startswith(TASK_TAG) for t in request.tags):
                return request
            assert self._classify is not None
            task = self._classify(request)
            if task is None:
                return request
        if not isinstance(task, str) or not task or len(task) > 100:
            raise InvalidRequestError(
                f"task must be a non-empty string of at most 100 characters, got {task!r}",
                field="task",
            )
        tags = [t for t in request.tags or () if not t.startswith(TASK_TAG)]
        return request.model_copy(update={"tags": [*tags, TASK_TAG + task]})

    def _build_plain(
        self, prompt: RequestInput | ChatRequest, model: str | None, params: Mapping[str, Any]
    ) -> ChatRequest:
        if isinstance(prompt, ChatRequest):
            request = prompt
            if model is not None or params:
                request = request.model_copy(update={"model": model or request.model, **params})
        else:
            params = dict(params)
            system = params.pop("system", None)
            if not _REQUEST_FIELDS.issuperset(params):
                params = split_params(params)  # OpenAI's parameters; a typo is an error
            messages: list[Any]
            if isinstance(prompt, str):
                if not prompt:
                    raise InvalidRequestError("the prompt is empty", field="messages")
                messages = [{"role": "user", "content": prompt}]
            elif isinstance(prompt, Sequence):
                messages = list(prompt)
                if not messages:
                    raise InvalidRequestError(
                        "messages is empty: pass a prompt string or at least one message",
                        field="messages",
                    )
                for message in messages:  # OpenAI's shapes: converted (plain dicts cost a check)
                    if (
                        type(message) is not dict
                        or not _PLAIN_MESSAGE_KEYS.issuperset(message)
                        or type(message.get("content")) is list
                    ):
                        try:
                            messages = [coerce_message(m) for m in messages]
                        except ValueError as exc:
                            raise InvalidRequestError(
                                f"invalid request: messages: {exc}", field="messages"
                            ) from None
                        break
            else:
                raise InvalidRequestError(
                    f"expected a prompt string or a list of messages, got {type(prompt).__name__}",
                    field="messages",
                )
            if system is not None:
                messages.insert(0, {"role": "system", "content": system})
            try:
                request = ChatRequest(messages=messages, model=self._resolve_model(model), **params)
            except ValidationError as exc:
                raise _invalid(exc) from None
        if request.model not in self._router.groups and request.model != AUTO:
            raise UnknownModelError(request.model, [*self._router.groups, AUTO])
        bad = unencodable_field(request)
        if bad is not None:
            bad = bad.encode("utf-8", "backslashreplace").decode()  # a key may be the culprit
            raise InvalidRequestError(
                f"{bad} is not valid Unicode text (it holds a lone surrogate such as '\\ud800', "
                "which cannot be encoded as UTF-8 and sent); fix or re-decode the text",
                field=bad,
            )
        return request

    def _resolve_model(self, model: str | None) -> str:
        if model is not None:
            return model
        if len(self._router.groups) == 1:
            return next(iter(self._router.groups))
        raise InvalidRequestError(
            f"model is required when several are configured: {', '.join(self._router.groups)}",
            field="model",
        )

    def _batch_item(self, item: Any, model: str | None, params: Mapping[str, Any]) -> ChatRequest:
        if isinstance(item, ChatRequest | str):
            return self._build_request(item, model, params)
        if isinstance(item, Mapping):
            item = dict(item)
            prompt = item.pop("prompt", None)
            messages = item.pop("messages", None)
            item_model = item.pop("model", model)
            merged = {**params, **item}
            return self._build_request(
                messages if messages is not None else prompt, item_model, merged
            )
        return self._build_request(item, model, params)

    def _prepare(
        self,
        prompt: RequestInput | ChatRequest,
        model: str | None,
        params: Mapping[str, Any],
        policy: str | None = None,
    ) -> tuple[ChatRequest, Policy | None]:
        """Validate, check input limits, resolve the caller's policy and apply its hard rules."""
        if self._closed:
            self._check_open()
        request = self._build_request(prompt, model, params)
        self._check_request(request, self.limits)
        resolved: Policy | None = None
        if self.policies is not None:
            from ..security.policy import enforce_request

            resolved = self.policies.resolve(request.user, policy=policy)
            request = enforce_request(resolved, request)
        elif policy is not None:
            raise InvalidRequestError(
                f"policy={policy!r} given, but the client has no policies", field="policy"
            )
        return request, resolved

    def _plan(
        self,
        request: ChatRequest,
        timeout: float | None,
        policy: Policy | None,
        *,
        stream: bool = False,
    ) -> DispatchPlan:
        timeout = timeout or self._timeout
        deadline = self._deadline
        return DispatchPlan(
            self._router,
            request,
            timeout=timeout,
            # No deadline given: the default bounds retries, back-offs and waits for a
            # recovery, but not a stream that is delivering (its idle limit guards that).
            deadline=deadline if deadline is not None else DEFAULT_DEADLINE_FACTOR * timeout,
            stream=stream,
            policy=policy,
            body_deadline=deadline is not None,
        )

    def _from_cache(self, request: ChatRequest, hit: ChatResponse, started: float) -> ChatResponse:
        """Account for a cache hit (it costs nothing) and stamp its latency and trace."""
        clock = self._clock
        latency = clock.monotonic() - started
        self.tracker.record(
            Outcome(
                deployment=hit.deployment,
                model=request.model,
                provider=hit.provider,
                ok=True,
                latency=latency,
                started_at=clock.time() - latency,
                usage=hit.usage,
                cost=Decimal(0),
                cached=True,
                user=request.user,
                tags=tuple(request.tags or ()),
                response_model=hit.model,
                finish_reason=hit.finish_reason,
            )
        )
        trace = RoutingTrace(model=request.model, strategy="cache", candidates=[])
        response = hit.model_copy(update={"latency": latency, "trace": trace})
        producer = self._model_of.get(hit.deployment)
        if producer is not None:  # feedback on a cached answer goes to the model that wrote it
            self.quality.remember(
                response.id, ServedResponse(producer, task_of_tags(request.tags), hit.deployment)
            )
        return response

    # -- attempts ------------------------------------------------------------------------------

    def _http_request(self, send: Send, request: ChatRequest, *, stream: bool) -> httpx.Request:
        endpoint = send.endpoint
        http_request = self._adapters[endpoint.name].build_request(request, endpoint, stream=stream)
        http_request.extensions["timeout"] = _timeout_extension(send.timeout)
        return http_request

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
                "Too many requests in flight, or streams left open (use `with "
                "client.stream(...)`); the pool is the client's own, so no deployment is blamed"
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

    def _succeed(
        self, plan: DispatchPlan, send: Send, parsed: ParsedResponse, headers: Mapping[str, str]
    ) -> ChatResponse:
        """Record a successful non-streamed attempt and build its response."""
        if parsed.usage is NO_USAGE:  # the provider sent none: estimate, and say so
            parsed.usage = estimated_usage(plan, parsed)
        outcome = plan.succeeded(
            send,
            usage=parsed.usage,
            headers=headers,
            response_model=parsed.model,
            finish_reason=parsed.finish_reason,
            request_id=self._request_id(headers),
        )
        return self._response(send, parsed, outcome, plan)

    def _response(
        self, send: Send, parsed: ParsedResponse, outcome: Outcome, plan: DispatchPlan
    ) -> ChatResponse:
        endpoint = send.endpoint
        trace = plan.trace
        response = ChatResponse(
            id=parsed.id,
            message=parsed.message,
            finish_reason=parsed.finish_reason,
            raw_finish_reason=parsed.raw_finish_reason,
            usage=parsed.usage,
            model=parsed.model,
            provider=endpoint.provider,
            deployment=endpoint.name,
            request_id=outcome.request_id,
            latency=outcome.latency,
            ttft=outcome.ttft,
            cost=outcome.cost,
            cost_breakdown=outcome.cost_breakdown,
            trace=trace,
            raw=parsed.raw,
        )
        if self._ledger_content:
            self._record_content(outcome, plan, response)
        served = ServedResponse(endpoint.model, task_of_tags(plan.request.tags), endpoint.name)
        remember = self.quality.remember
        remember(response.id, served)
        if response.request_id:
            remember(response.request_id, served)
        return response

    def _record_content(self, outcome: Outcome, plan: DispatchPlan, response: ChatResponse) -> None:
        """Write a successful call's row with its prompt and answer (the ledger opted in, and the
        caller's policy, if any, allows logging prompts)."""
        assert self.ledger is not None
        if plan.policy is not None and not plan.policy.log_prompts:
            self.ledger.record(outcome)
            return
        prompt = [m.model_dump(exclude_none=True) for m in plan.request.messages]
        self.ledger.record(
            outcome, prompt=prompt, response=response.message.model_dump(exclude_none=True)
        )

    def _cost(self, endpoint: Endpoint, usage: Usage) -> CostBreakdown | None:
        pricing = getattr(endpoint.spec, "pricing", None)
        if pricing is not None:  # the common case, without the warning machinery
            return self._compute_cost(usage, pricing, price_version=self.catalog.version)
        from ..tracking.cost import cost_for

        return cost_for(
            usage,
            endpoint.spec,
            version=self.catalog.version,
            model=f"{endpoint.provider}/{endpoint.wire_model}",
            warn_once=self._warn_once,
        )

    def _close_owned(self) -> None:
        self._closed = True
        if self.ledger is not None and self._owns_ledger:
            self.ledger.close()

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosed(
                f"this {type(self).__name__} was closed; build a new client for more calls"
            )

    @staticmethod
    def _request_id(headers: Mapping[str, str] | None) -> str | None:
        if headers is None:
            return None
        if isinstance(headers, httpx.Headers):
            # One pass over the raw pairs: Headers.get normalizes and scans once per name.
            found: str | None = None
            for key, value in headers.raw:
                lowered = key.lower()
                if lowered == b"x-request-id":
                    return value.decode("latin-1")
                if lowered == b"request-id" and found is None:
                    found = value.decode("latin-1")
            return found
        return headers.get("x-request-id") or headers.get("request-id")

    # -- feedback ------------------------------------------------------------------------------

    def feedback(
        self, response_or_id: ChatResponse | str, score: float, *, tag: str | None = None
    ) -> None:
        """Score an answer: ``score`` in [0, 1] (thumbs up/down = 1/0, an eval score, a
        validator's pass/fail). The score updates the learned quality of the model that produced
        the answer (for a cached answer: the model that wrote it), for the request's task, or
        for ``tag`` when given; ``intelligent`` routes on these estimates.

        ``response_or_id`` is a :class:`ChatResponse`, its ``id`` or its ``request_id``. An id
        this client no longer remembers (another process served it, or it is old) is looked up
        in the ledger by request id (one SQLite read), when a ledger is configured.

        Raises:
            InvalidRequestError: ``score`` is not a number in [0, 1], or ``tag`` is empty.
            UnknownResponseError: nobody remembers the id.
        """
        value: Any = score  # checked at run time: callers are not always typed
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise InvalidRequestError(
                f"score must be a number in [0, 1], got {score!r}", field="score"
            )
        given: Any = tag
        if given is not None and (not isinstance(given, str) or not given):
            raise InvalidRequestError("tag must be a non-empty string", field="tag")
        served = self._served(response_or_id)
        task = tag.removeprefix(TASK_TAG) if tag is not None else served.task
        self.quality.add(served.model, task or DEFAULT_TASK, float(score))

    def _served(self, response_or_id: ChatResponse | str) -> ServedResponse:
        """Who served an answer: remembered here, else the ledger's row for its request id."""
        if isinstance(response_or_id, ChatResponse):
            # The request id first: unique per call, where some providers reuse answer ids.
            keys = [response_or_id.request_id, response_or_id.id]
        elif isinstance(response_or_id, str) and response_or_id:  # type: ignore[redundant-expr]
            keys = [response_or_id]
        else:
            raise InvalidRequestError(
                "feedback needs a ChatResponse, or its id or request_id as a string",
                field="response_or_id",
            )
        deployment = response_or_id.deployment if isinstance(response_or_id, ChatResponse) else None
        for key in keys:
            if key:
                found = self.quality.served(key)
                if found is not None and deployment in (None, found.deployment):
                    return found
        if self.ledger is not None:
            for key in keys:
                if key:
                    row = self.ledger.served_by(key)
                    if row is not None:
                        model, tags = row
                        return ServedResponse(model, task_of_tags(tags), "")
        if isinstance(response_or_id, ChatResponse):
            producer = self._model_of.get(response_or_id.deployment)
            if producer is not None:  # a response object carries who produced it
                return ServedResponse(producer, DEFAULT_TASK, response_or_id.deployment)
        shown = keys[0]
        raise UnknownResponseError(
            f"no response with id {shown!r} is known to this client"
            + (
                ""
                if self.ledger is not None
                else " (configure a ledger to give feedback later, "
                "or from another process, by request id)"
            ),
            key=shown,
        )

    def _catalog_quality(self, model: str) -> float | None:
        for ep in self._endpoints:
            if ep.model == model and ep.spec is not None:
                return float(ep.spec.quality)
        return None

    def sync_feedback(self) -> int:
        """Replay into the estimates the scores other clients (other processes) stored in the
        ledger since the last call; returns how many. A client calls it when it starts (then
        with every stored score of the last 20 half-lives); call it to pick up others' scores
        while running. Without a ledger: 0. One SQLite read.
        """
        if self.ledger is None:
            return 0
        horizon = 20 * self.quality.policy.half_life
        since = self._clock.time() - horizon if horizon < 1e15 else 0.0
        try:
            rows = self.ledger.feedback_rows(
                since, after_id=self._feedback_seen, exclude_origin=self._origin
            )
        except Exception:  # a ledger that cannot be read must not stop the client
            logger.warning("could not read feedback from the ledger", exc_info=True)
            return 0
        if rows:
            self._feedback_seen = rows[-1][0]
        return self.quality.replay(row[1:] for row in rows)

    def stats(self) -> StatsSnapshot:
        """A typed snapshot of live stats per deployment, model, provider, user and tag, and
        the learned quality per model and task (``quality``)."""
        snapshot = self.tracker.snapshot()
        estimates = self.quality.estimates()
        if not estimates:
            return snapshot
        from ..tracking.snapshot import QualitySnapshot

        quality: dict[str, dict[str, QualitySnapshot]] = {}
        for e in estimates:
            quality.setdefault(e.model, {})[e.task] = QualitySnapshot(
                mean=e.mean, sd=e.sd, lower=e.lower, samples=e.samples, weight=e.weight
            )
        return snapshot.model_copy(update={"quality": quality})

    def on(self, event: str, callback: Callable[[Any], None]) -> Callable[[], None]:
        """Call ``callback(event)`` on ``"model_status_change"`` (a :class:`ModelStatusEvent`),
        ``"outcome"`` (every finished attempt) or ``"budget_alert"``; returns an unsubscribe
        function."""
        return self.events.on(event, callback)

    def status(self) -> dict[str, Status]:
        """The health status of every deployment: ``healthy``, ``degraded`` or ``down``."""
        return {ep.name: self.health.status(ep.name) for ep in self._endpoints}

    def _fleet_status_changed(self, fields: dict[str, str]) -> None:
        """Another process announced a status change (``shared_state=``)."""
        ep = self._router.by_name.get(fields.get("deployment", ""))
        if ep is None:
            return
        try:
            at = float(fields.get("at", ""))
        except ValueError:
            at = self._clock.time()
        self.events.emit(
            "model_status_change",
            ModelStatusEvent(
                deployment=ep.name,
                model=ep.model,
                provider=ep.provider,
                previous=fields.get("previous", ""),
                status=fields.get("status", ""),
                reason=f"{fields.get('reason', '')} (in another process)",
                at=at,
            ),
        )

    def _status_changed(self, name: str, previous: Status, status: Status, reason: str) -> None:
        shared = self._router.shared
        if shared is not None:  # tell the fleet; an opened or closed breaker applies to it
            shared.announce(name, previous, status, reason, self._clock.time())
            if status == "down":
                left = self.health.open_until(name) - self._clock.monotonic()
                shared.opened(name, max(left, 0.001))
            elif previous != "healthy" and reason == "probe succeeded":
                shared.closed(name)
        ep = self._router.by_name.get(name)
        self.events.emit(
            "model_status_change",
            ModelStatusEvent(
                deployment=name,
                model=ep.model if ep else "",
                provider=ep.provider if ep else "",
                previous=previous,
                status=status,
                reason=reason,
                at=self._clock.time(),
            ),
        )

    def _outcome_event(self, outcome: Outcome) -> None:
        if self.events.wants("outcome"):
            self.events.emit("outcome", outcome)


def estimated_usage(plan: DispatchPlan, parsed: ParsedResponse) -> Usage:
    """Usage for an answer that came without any: the request's estimated prompt tokens and
    the answer's text and tool calls at about four characters a token, marked ``estimated``."""
    message = parsed.message
    text = message.content if isinstance(message.content, str) else ""
    text += "".join(call.name + call.arguments for call in message.tool_calls or ())
    return Usage(
        input_tokens=plan.ctx.input_tokens,
        output_tokens=estimate_text_tokens(text),
        estimated=True,
    )


def _timeout_extension(seconds: float) -> dict[str, float | None]:
    """httpx's per-request timeout extension for ``seconds`` (a copy: a transport may keep it)."""
    return dict(_timeouts(seconds))


@functools.lru_cache(maxsize=64)
def _timeouts(seconds: float) -> dict[str, float | None]:
    # httpx.Timeout(...).as_dict() costs ~2 µs; a deadline makes per-attempt timeouts vary,
    # hence a bounded cache rather than one dict.
    return httpx.Timeout(seconds).as_dict()


def _invalid(exc: ValidationError) -> InvalidRequestError:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith(("function-", "tagged-")))
    msg = err["msg"]
    extra = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
    return InvalidRequestError(
        f"invalid request: {loc or 'request'}: {msg}{extra}", field=loc or None
    )


def _find_spec(catalog: Catalog, endpoint: Endpoint) -> ModelSpec | None:
    """The catalog entry for a deployment: its wire model on its provider, else its model name."""
    for name, provider in (
        (endpoint.wire_model, endpoint.provider),
        (endpoint.model, endpoint.provider),
        (endpoint.wire_model, None),
        (endpoint.model, None),
    ):
        try:
            spec = catalog.find(name, provider=provider)
        except LookupError:  # ambiguous without a provider
            spec = None
        if spec is not None:
            return spec
    return None
