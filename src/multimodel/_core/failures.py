"""What a plan does when a provider fails an attempt, without I/O.

:class:`PlanFailures`, the base of :class:`~multimodel._core.dispatch.DispatchPlan`: the failure
is recorded once everywhere it counts (the trace, the breaker, the shared state, the rate
limiter, the budgets, the tracker, telemetry), its secrets redacted first; then the plan
decides what comes next from the error's kind: a request-level error ends the call (a context
overflow moves to the group's larger-context fallback first), a deployment-level one excludes
the deployment, a transient one tries another deployment, the fallback chain, then a back-off
(Retry-After honoured) within the retry budget.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ..errors import AllAttemptsFailed, ContextLengthExceeded, MultimodelError, ProviderError
from ..providers._errors import endpoint_secrets
from ..providers.base import Endpoint
from ..tracking.outcome import Outcome
from ..types import ChatRequest, Usage
from .endings import PlanEndings
from .trace import AttemptRecord, RoutingTrace, Send

__all__ = ["PlanFailures"]


class PlanFailures(PlanEndings):
    """A provider's failure of an attempt (the base of ``DispatchPlan``, which sets these)."""

    # The slots this class writes live here (one chain of bases: one slot layout);
    # DispatchPlan declares the ones it only reads.
    __slots__ = ("_errors", "_excluded", "_fatal", "_pending_sleep", "_retries")
    _errors: Sequence[ProviderError]
    _excluded: Mapping[str, str]
    _fatal: Exception | None
    _pending_sleep: float | None
    _retries: int

    _chain: list[str]
    _position: int
    _tried: set[str]
    _started: float
    candidates: Sequence[Endpoint]
    model: str
    request: ChatRequest
    stream: bool
    operation: str
    trace: RoutingTrace

    if TYPE_CHECKING:

        def _advance(self) -> bool: ...

    def failed(
        self,
        send: Send,
        error: ProviderError,
        *,
        retry: bool = True,
        usage: Usage | None = None,
        ttft: float | None = None,
    ) -> None:
        """Record a failed attempt and decide what comes next (``retry=False``: nothing).

        ``usage``: what the provider billed for it anyway (a stream cut after content).
        """
        router = self._router
        clock = router.clock
        now = clock.monotonic()
        latency = now - send.started
        endpoint = send.endpoint
        name = endpoint.name
        breakdown = router.cost(endpoint, usage) if router.cost is not None and usage else None
        # Before the error is recorded anywhere (trace, events, spans, ledger): whatever built
        # it, it carries none of this deployment's secrets, however the provider echoed them.
        error.redact_secrets(endpoint_secrets(endpoint))
        if error.deployment is None:
            error.deployment = name
            error.provider = endpoint.provider
        self.trace.attempts.append(
            AttemptRecord(name, type(error).__name__, latency, error.status, error.message[:200])
        )
        retry_after = getattr(error, "retry_after", None)
        outcome = Outcome(
            deployment=name,
            model=endpoint.model,
            provider=endpoint.provider,
            ok=False,
            latency=latency,
            started_at=clock.time() - latency,
            error=type(error).__name__,
            status=error.status,
            stream=self.stream,
            retry_after=retry_after,
            sent_load=send.load,
            user=self.request.user,
            tags=tuple(self.request.tags or ()),
            request_id=error.request_id,
            attempt=send.attempt,
            ttft=ttft,
            usage=usage,
            cost=breakdown.total if breakdown is not None else None,
            cost_breakdown=breakdown,
            operation=self.operation,
        )
        router.health.on_failure(name, error, now)
        if router.shared is not None:
            router.shared.finished(
                name,
                send.reservation,
                ok=False,
                hold=retry_after,
                cooldown=router.health.policy.cooldown,
            )
        if usage is not None:
            router.limiter.reconcile(send.reservation, usage.total_tokens)
        else:
            router.limiter.reconcile(send.reservation, 0 if error.status is None else None)
        if router.budgets is not None:
            router.budgets.settle(send.hold, outcome.cost)
        router.tracker.record(outcome)
        if router.telemetry is not None and send.span is not None:
            router.telemetry.end_attempt(send.span, outcome)
        self._errors = [*self._errors, error]
        error.trace = self.trace
        if not retry:
            self._fatal = error
            return
        kind = router.retry.classify(error)
        if kind == "request":
            fallback = router.context_fallbacks.get(self.model)
            if (
                isinstance(error, ContextLengthExceeded)
                and fallback
                and fallback not in self._chain
            ):
                self._chain.insert(self._position + 1, fallback)
                self._advance()
                return
            self._fatal = error
            return
        if kind == "deployment":
            reason = f"{type(error).__name__} (HTTP {error.status})"
            self._excluded = {**self._excluded, name: reason}
            self.trace.excluded[name] = reason
            return
        # Transient: another untried deployment of this group first, then the fallback chain,
        # then a back-off (Retry-After honoured) within the retry budget.
        if any(c.name not in self._tried and c.name not in self._excluded for c in self.candidates):
            return
        if self._attempts < router.retry.max_attempts and self._advance():
            return
        if self._attempts >= router.retry.max_attempts:
            return
        if not router.budget.withdraw(now):
            fatal = AllAttemptsFailed(self.request.model, self._errors, trace=self.trace)
            fatal.__cause__ = error
            self._fatal = fatal
            self.trace.excluded.setdefault("*", "retry budget exhausted")
            return
        self._retries += 1
        # A user's wait strategy may fail (or return a bad wait): the call then ends through
        # next_action like any other failure, so its trace and telemetry are closed.
        try:
            self._pending_sleep = router.retry.backoff(
                self._retries, retry_after, router.rng, error=error, elapsed=now - self._started
            )
        except Exception as exc:  # noqa: BLE001 - re-raised by next_action
            if exc.__cause__ is None:
                exc.__cause__ = error  # the failure that asked for the back-off
            if isinstance(exc, MultimodelError):
                exc.trace = self.trace
            self._fatal = exc
