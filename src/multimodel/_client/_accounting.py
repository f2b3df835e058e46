"""Accounting for an answer: its response, cost, ledger row and request id.

The :class:`Accounting` mixin of :class:`~multimodel._client._base.BaseClient`: a successful
attempt is recorded on its plan and becomes a ``ChatResponse`` (usage estimated when the
provider sent none, cost from the catalog's prices, the ledger row with its content when
stored, the answer remembered for feedback); a cache hit is recorded as a free success. No I/O.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from .._core.clock import Clock
from .._core.dispatch import DispatchPlan, Send
from .._core.tokens import estimate_text_tokens
from .._core.trace import RoutingTrace
from ..providers.base import NO_USAGE, Endpoint, ParsedResponse
from ..tracking.outcome import Outcome
from ..tracking.quality import DEFAULT_TASK, ServedResponse, task_of_tags
from ..tracking.stats import Tracker
from ..types import ChatRequest, ChatResponse, Usage
from ..types._response import chat_response

if TYPE_CHECKING:
    from ..catalog import Catalog, ModelSpec
    from ..catalog.models import Pricing
    from ..tracking.cost import CostBreakdown, WarnOnce
    from ..tracking.ledger import UsageLedger
    from ..tracking.quality import QualityBook

    class _ComputeCost(Protocol):
        def __call__(
            self, usage: Usage, pricing: Pricing, *, price_version: str
        ) -> CostBreakdown: ...


__all__ = ["Accounting", "estimated_usage"]
_new_tuple = tuple.__new__


class Accounting:
    """What a call's answer records and returns (a mixin of ``BaseClient``, which sets these)."""

    _clock: Clock
    _self_ref: Callable[[], Any]  # a weak reference to the client (response.feedback)
    _model_of: dict[str, str]
    _served_by: dict[str, ServedResponse]  # per deployment, for an answer without a task
    _ledger_content: bool
    _compute_cost: _ComputeCost
    _warn_once: WarnOnce
    catalog: Catalog
    tracker: Tracker
    quality: QualityBook
    ledger: UsageLedger | None

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
            response_id=parsed.id or None,
        )
        return self._response(send, parsed, outcome, plan)

    def _response(
        self, send: Send, parsed: ParsedResponse, outcome: Outcome, plan: DispatchPlan
    ) -> ChatResponse:
        endpoint = send.endpoint
        trace = plan.trace
        trace.feedback_to = self._self_ref  # for response.feedback(score)
        response = chat_response(
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
        # Most requests have no tags: the default task, and the deployment's one shared record
        # (what feedback remembers of ~100,000 answers: one tuple each was ~70 B). Otherwise
        # tuple.__new__ directly: a named tuple's generated __new__ is a Python function.
        tags = plan.request.__dict__["tags"]
        served = None if tags else self._served_by.get(endpoint.name)
        if served is None:
            served = _new_tuple(
                ServedResponse,
                (endpoint.model, task_of_tags(tags) if tags else DEFAULT_TASK, endpoint.name),
            )
        remember = self.quality.remember
        fields = response.__dict__  # dict reads: a model's attribute read passes a hook
        remember(fields["id"], served)
        if fields["request_id"]:
            remember(fields["request_id"], served)
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
            # Catalog.version's read without its two calls once the table is loaded (each
            # change to the catalog replaces _state, so this is the version it reports).
            state = self.catalog._state
            version = state.version if state is not None else self.catalog.version
            return self._compute_cost(usage, pricing, price_version=version)
        from ..tracking.cost import cost_for

        return cost_for(
            usage,
            endpoint.spec,
            version=self.catalog.version,
            model=f"{endpoint.provider}/{endpoint.wire_model}",
            warn_once=self._warn_once,
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
                response_id=hit.id or None,
            )
        )
        trace = RoutingTrace(model=request.model, strategy="cache", candidates=[])
        trace.feedback_to = self._self_ref
        response = hit.model_copy(update={"latency": latency, "trace": trace})
        producer = self._model_of.get(hit.deployment)
        if producer is not None:  # feedback on a cached answer goes to the model that wrote it
            self.quality.remember(
                response.id, ServedResponse(producer, task_of_tags(request.tags), hit.deployment)
            )
        return response

    @staticmethod
    def _request_id(headers: Mapping[str, str] | None) -> str | None:
        if headers is None:
            return None
        if isinstance(headers, httpx.Headers):
            if _triples():
                # httpx keeps each name lowered beside the raw one: one pass over its triples,
                # without ``raw`` (a comprehension over every header) and a lower() a name.
                items: list[tuple[bytes, bytes, bytes]] = headers._list
                first: bytes | None = None
                for _, name, raw_value in items:
                    if name == b"x-request-id":
                        return raw_value.decode("latin-1")
                    if name == b"request-id" and first is None:
                        first = raw_value
                return None if first is None else first.decode("latin-1")
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


@functools.cache
def _triples() -> bool:
    """Whether ``httpx.Headers`` keeps its headers as (raw name, lowered name, value) byte
    triples in ``_list`` (checked once; else :meth:`Accounting._request_id` reads ``raw``)."""
    try:
        probe = httpx.Headers([(b"X-Request-ID", b"r-1"), (b"A", b"b")])
        return list(probe._list) == [
            (b"X-Request-ID", b"x-request-id", b"r-1"),
            (b"A", b"a", b"b"),
        ]
    except (AttributeError, TypeError):  # pragma: no cover - a different private layout
        return False


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
