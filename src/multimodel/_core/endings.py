"""How a plan's attempts and its call end, other than by an answer or a provider's failure.

The :class:`PlanEndings` base of :class:`~multimodel._core.dispatch.DispatchPlan`. An
attempt may be refused by the fleet's shared state before it is sent, abandoned (the hedge
that lost), stopped (a stream the caller ended) or cancelled; each is undone or recorded here
without counting a failure against its deployment. The call ends with its telemetry span
closed and, when nothing is left to try, the error to raise (:meth:`PlanEndings._exhausted`).
Also the estimated cost that budgets reserve for a request. No I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ..errors import AllAttemptsFailed, BudgetExceeded, NoDeploymentAvailable, ProviderError
from ..providers.base import Endpoint
from ..strategies.base import RouteContext
from ..tracking.outcome import ABANDONED, CANCELLED, Outcome
from ..types import ChatRequest, Usage
from .router import Router
from .trace import AttemptRecord, RoutingTrace, Send

if TYPE_CHECKING:
    from ..security._rules import Policy

__all__ = ["NO_NAMES", "NO_REASONS", "NO_WAITS", "PlanEndings"]

# What a plan's rarely written exclusions start as (read-only, shared by every plan; a plan
# that excludes something gets its own copy).
NO_NAMES: AbstractSet[str] = frozenset()
NO_REASONS: Mapping[str, str] = MappingProxyType({})
NO_WAITS: Mapping[str, float] = MappingProxyType({})


class PlanEndings:
    """Refused, abandoned, stopped and cancelled attempts, and the end of the call (a base of
    ``DispatchPlan``, which sets these)."""

    # The slots this mixin writes live here; DispatchPlan declares the ones it only reads.
    __slots__ = ("_attempts", "_budget_blocked", "_shared_wait", "_span")
    _attempts: int
    _span: Any

    _router: Router
    _budget_blocked: AbstractSet[str]
    _shared_wait: Mapping[str, float]
    _policy_blocked: Mapping[str, str]
    _errors: Sequence[ProviderError]
    _tags: tuple[str, ...]
    candidates: Sequence[Endpoint]
    ctx: RouteContext
    policy: Policy | None
    request: ChatRequest
    stream: bool
    operation: str
    trace: RoutingTrace

    @property
    def shared(self) -> Any:
        """The client's shared state (a ``RedisState``), or ``None``: the driver asks it to
        admit each :class:`Send` before sending, and reports a refusal to :meth:`refused`."""
        return self._router.shared

    def refused(self, send: Send, refusal: Any) -> None:
        """The shared state refused ``send`` (nothing was sent): undo its bookkeeping and keep
        its deployment aside for ``refusal.wait`` seconds."""
        router = self._router
        name = send.endpoint.name
        now = router.clock.monotonic()
        self._attempts -= 1
        router.tracker.cancelled(name)
        router.health.on_cancel(name)
        router.limiter.release(send.reservation)
        if router.budgets is not None:
            router.budgets.settle(send.hold, None)
        if router.telemetry is not None and send.span is not None:
            router.telemetry.end_attempt(send.span, None)
        self.trace.excluded[name] = refusal.reason
        if refusal.kind == "budget":  # the fleet spent the budget: like a local one
            self._budget_blocked = self._budget_blocked | {name}
            return
        until = now + refusal.wait
        self._shared_wait = {**self._shared_wait, name: until}
        # Every call of this process waits it out too. An open breaker is adopted as open
        # (the deployment is down here as it is in the fleet), a hold as a hold.
        if refusal.kind == "open":
            router.health.adopt_open(name, until, now, "circuit open (in another process)")
        elif refusal.kind == "hold":
            router.health.hold(name, until, now)

    def abandoned(self, send: Send) -> None:
        """An attempt was cancelled because another one answered first (hedging).

        Its estimated prompt cost is recorded: the provider processed the prompt.
        """
        pricing = getattr(send.endpoint.spec, "pricing", None)
        tokens = self.ctx.input_tokens
        cost = pricing.input * tokens / _MILLION if pricing is not None else None
        self._released(send, ABANDONED, "abandoned", tokens, cost=cost)
        if self._router.telemetry is not None and send.span is not None:
            self._router.telemetry.end_attempt(send.span, None)

    def stopped(self, send: Send, *, usage: Usage, ttft: float | None = None) -> Outcome:
        """A stream stopped before its end by the caller (or its deadline), after the provider
        started answering: record what was billed, without counting a failure."""
        router = self._router
        breakdown = router.cost(send.endpoint, usage) if router.cost is not None else None
        outcome = self._released(
            send, CANCELLED, "cancelled", usage.total_tokens, usage=usage, ttft=ttft,
            cost=breakdown.total if breakdown is not None else None, breakdown=breakdown,
        )  # fmt: skip
        if router.telemetry is not None and send.span is not None:
            router.telemetry.end_attempt(send.span, outcome)
        self._end_call(None, outcome)
        return outcome

    def _released(
        self,
        send: Send,
        error: str,
        record: str,
        tokens: int,
        *,
        cost: Decimal | None,
        usage: Usage | None = None,
        ttft: float | None = None,
        breakdown: Any = None,
    ) -> Outcome:
        """Record an attempt that ended without an answer and without the deployment failing
        (an abandoned hedge, a stopped stream): what it cost, and its slot released."""
        router = self._router
        clock = router.clock
        latency = clock.monotonic() - send.started
        endpoint = send.endpoint
        outcome = Outcome(
            deployment=endpoint.name,
            model=endpoint.model,
            provider=endpoint.provider,
            ok=False,
            latency=latency,
            started_at=clock.time() - latency,
            error=error,
            ttft=ttft,
            usage=usage,
            cost=cost,
            stream=self.stream,
            user=self.request.user,
            tags=self._tags,
            attempt=send.attempt,
            cost_breakdown=breakdown,
            operation=self.operation,
        )
        self.trace.attempts.append(AttemptRecord(endpoint.name, record, latency))
        router.health.on_cancel(endpoint.name)
        router.limiter.reconcile(send.reservation, tokens)
        if router.budgets is not None:
            router.budgets.settle(send.hold, cost)
        router.tracker.record(outcome)
        return outcome

    def close(self) -> None:
        """The call was answered without routing (a cache hit): end its telemetry span."""
        self._end_call(None)

    def cancelled(self, send: Send) -> None:
        """The caller abandoned the attempt (cancellation, KeyboardInterrupt): free its slot."""
        router = self._router
        router.tracker.cancelled(send.endpoint.name)
        router.health.on_cancel(send.endpoint.name)
        if router.budgets is not None:
            router.budgets.settle(send.hold, None)
        self.trace.attempts.append(
            AttemptRecord(send.endpoint.name, "cancelled", router.clock.monotonic() - send.started)
        )
        if router.telemetry is not None and send.span is not None:
            router.telemetry.end_attempt(send.span, None)
        self._end_call(None)

    def _end_call(self, error: BaseException | None, outcome: Outcome | None = None) -> None:
        span, self._span = self._span, None
        if span is not None:
            self._router.telemetry.end_call(span, outcome=outcome, error=error)

    def _exhausted(self, retry_at: float | None = None) -> Exception:
        if (
            not self._errors
            and not self._attempts
            and self.policy is not None
            and self._policy_blocked
            and set(self._policy_blocked) >= {c.name for c in self.candidates}
        ):
            from ..security.policy import violation

            denied = violation(self.policy, self.request.model, self.trace.excluded)
            denied.trace = self.trace
            return denied
        if not self._errors and self._budget_blocked and not self._attempts:
            reasons = "; ".join(self.trace.excluded[n] for n in sorted(self._budget_blocked))
            budget_error = BudgetExceeded(f"no budget left for {self.request.model!r}: {reasons}")
            budget_error.trace = self.trace
            return budget_error
        if not self._errors:
            return NoDeploymentAvailable(
                self.request.model, self.trace.excluded, retry_at=retry_at, trace=self.trace
            )
        if len(self._errors) == 1:
            return self._errors[0]  # one failure: raise it as itself, not wrapped
        err = AllAttemptsFailed(self.request.model, self._errors, trace=self.trace)
        err.__cause__ = self._errors[-1]
        return err


_MILLION = Decimal(1_000_000)


def _estimate(endpoint: Endpoint, ctx: RouteContext) -> Decimal:
    """The estimated USD cost of the request on ``endpoint`` (0 when its price is unknown)."""
    pricing = getattr(endpoint.spec, "pricing", None)
    if pricing is None:
        return Decimal(0)
    cost: Decimal = pricing.input * ctx.input_tokens + pricing.output * ctx.output_tokens
    return cost / _MILLION
