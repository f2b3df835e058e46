"""The record of one attempt, handed to the tracker, strategies, telemetry and the ledger."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, NamedTuple

from ..types import Usage

__all__ = ["ABANDONED", "CANCELLED", "Outcome", "unpriced"]

ABANDONED = "Abandoned"  # Outcome.error of an attempt cancelled because another one won
CANCELLED = "Cancelled"  # Outcome.error of a stream the caller stopped: billed, not a failure


class Outcome(NamedTuple):
    """What one attempt on one deployment came to (immutable; a named tuple because it is made
    on every attempt and a frozen dataclass costs five times as much to build).

    Fields (named tuple, so autodoc lists them below):
        deployment, model, provider: where it went.
        ok: whether it produced an answer.
        error: the error class name (``RateLimited``...) when it did not.
        status: the HTTP status, when a response arrived.
        latency: seconds from sending to the complete answer (or the failure).
        ttft: seconds to the first content chunk (streams).
        usage: tokens, when known.
        cost: USD, when prices are known.
        started_at: wall-clock start (epoch seconds).
        stream: whether it was a stream.
        cached: served from the response cache.
        retry_after: the provider's wait hint, for failures that carried one.
        user, tags: who asked and the request's labels.
        response_model: the model id the provider said answered (``None`` on failure).
        finish_reason: the normalized finish reason of a successful answer.
        request_id: the provider's request id, when known.
        attempt: 1 for the first attempt of a call, 2 for the first retry...
        cost_breakdown: the :class:`~multimodel.tracking.cost.CostBreakdown` behind ``cost``.
        response_id: the answer's own id (``ChatResponse.id``), for feedback that names it.
        requested_tokens: the output tokens the request was routed with (its ``max_tokens``,
        or the default estimate): with ``usage``, how long this deployment's answers are for
        what was asked (:mod:`multimodel.tracking.lengths`).
        operation: the GenAI operation, ``"chat"`` or ``"embeddings"`` (telemetry's
        ``gen_ai.operation.name``).
        sent_load: the attempts in flight on the deployment when this one was sent (what
        :meth:`Tracker.started <multimodel.tracking.stats.Tracker.started>` returned): for a
        429 with ``Retry-After``, the load the provider refused.
    """

    deployment: str
    model: str
    provider: str
    ok: bool
    latency: float
    started_at: float
    error: str | None = None
    status: int | None = None
    ttft: float | None = None
    usage: Usage | None = None
    cost: Decimal | None = None
    stream: bool = False
    cached: bool = False
    retry_after: float | None = None
    user: str | None = None
    tags: tuple[str, ...] = ()
    response_model: str | None = None
    finish_reason: str | None = None
    request_id: str | None = None
    attempt: int = 1
    cost_breakdown: Any = None
    response_id: str | None = None
    requested_tokens: int | None = None
    operation: str = "chat"
    sent_load: int | None = None


def unpriced(outcome: Outcome) -> bool:
    """Whether ``outcome`` was billed at a price nobody knows: it reports tokens (or is an
    abandoned hedge, whose prompt the provider processed) but no cost.

    Aggregates count such attempts (``unpriced_requests``) and report their total cost as
    unknown (``None``) instead of adding a silent zero. A failure without tokens cost nothing;
    a cache hit costs ``0``.
    """
    if outcome.cost is not None:
        return False
    usage = outcome.usage
    if usage is not None and (usage.input_tokens or usage.output_tokens):
        return True
    return outcome.error == ABANDONED
