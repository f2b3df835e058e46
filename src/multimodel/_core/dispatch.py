"""The retry / fallback decision loop, without I/O.

A :class:`DispatchPlan` decides, for one call, which deployment to try next and whether to wait
first. The sync and async clients drive it the same way::

    plan = router.plan(request, timeout=timeout)
    while True:
        action = plan.next_action()          # raises when nothing is left to try
        if isinstance(action, Sleep):
            sleep(action.seconds)            # time.sleep or anyio.sleep: the only difference
            continue
        try:
            parsed, headers = send(action)   # the I/O
        except ProviderError as exc:
            plan.failed(action, exc)
            continue
        except BaseException:
            plan.cancelled(action)
            raise
        outcome = plan.succeeded(action, usage=parsed.usage, headers=headers)
        return make_response(parsed, outcome)

Everything else happens here, once: candidates (with ``model="auto"`` and fallback chains),
exclusions (circuit breakers, Retry-After holds, rate limits, strategy constraints), the
strategy's choice, Retry-After and back-off, the retry budget, the deadline, the routing trace,
and the bookkeeping in the tracker, the breakers, the rate limiter and telemetry. Attempts that
end without an answer or a failure (refused, abandoned, stopped, cancelled), and the end of the
call, are in ``endings.py``; a provider's failure and what follows it in ``failures.py``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING

from ..errors import (
    MultimodelError,
    ProviderError,
    ProviderTimeout,
    redact,
)
from ..providers._errors import _SECRETS_MEMO, endpoint_secrets
from ..providers.base import Endpoint
from ..strategies.base import RouteContext
from ..tracking.outcome import Outcome
from ..types import ChatRequest, Usage
from .endings import NO_NAMES, NO_REASONS, NO_WAITS, _estimate
from .failures import PlanFailures
from .router import AUTO, AutoTemplate, Router
from .tokens import DEFAULT_OUTPUT_TOKENS, estimate_input_tokens
from .trace import AttemptRecord, LazyScores, RoutingTrace, Send, Sleep, new_trace

if TYPE_CHECKING:
    from ..security._rules import Policy

__all__ = ["AUTO", "AttemptRecord", "DispatchPlan", "Router", "RoutingTrace", "Send", "Sleep"]
MAX_WAIT = 60.0  # the longest single wait for a recovery when no deadline is set
_new_tuple = tuple.__new__


class DispatchPlan(PlanFailures):
    """The sans-I/O state machine for one call; see the module docstring for the driver loop."""

    # One plan per call: slots make its many attribute writes and reads cheaper (``_attempts``,
    # ``_budget_blocked``, ``_shared_wait`` and ``_span`` are declared by PlanEndings, and
    # ``_errors``, ``_excluded``, ``_fatal``, ``_pending_sleep``, ``_retries`` by PlanFailures,
    # which write them too).
    __slots__ = (
        "_chain",
        "_choose_scored",
        "_deadline_at",
        "_policy_blocked",
        "_position",
        "_prefer",
        "_router",
        "_started",
        "_tags",
        "_timeout",
        "_tried",
        "body_deadline",
        "candidates",
        "ctx",
        "model",
        "operation",
        "policy",
        "request",
        "strategy",
        "stream",
        "trace",
    )

    def __init__(
        self,
        router: Router,
        request: ChatRequest,
        *,
        timeout: float,
        deadline: float | None,
        stream: bool,
        policy: Policy | None = None,
        body_deadline: bool = True,
        prefer: str | None = None,
        operation: str = "chat",
    ) -> None:
        self._router = router
        # A deployment the first attempt goes to if it is available (a structured answer's
        # repair goes back to the deployment that gave it); then routing as usual.
        self._prefer = prefer
        self.operation = operation
        self.request = request
        self.policy = policy
        # Three sets of exclusions most calls never write: shared empties, replaced when one is
        # (three containers fewer per call).
        self._policy_blocked: Mapping[str, str] = NO_REASONS
        self.stream = stream
        # tuple.__new__ directly: a named tuple's generated __new__ is a Python function.
        # The output estimate is estimate_output_tokens's, without the call (and each pydantic
        # field of the request is read once: they cost several slot reads each).
        fields = request.__dict__  # as estimate_input_tokens reads them (see tokens.py)
        max_tokens = fields["max_tokens"]
        self.ctx = _new_tuple(
            RouteContext,
            (
                request,
                stream,
                estimate_input_tokens(request),
                max_tokens if max_tokens is not None else DEFAULT_OUTPUT_TOKENS,
            ),
        )
        self._timeout = timeout
        now = router.clock.monotonic()
        self._started = now
        self._deadline_at = None if deadline is None else now + deadline
        self.body_deadline = body_deadline  # whether the deadline also ends a delivering stream
        self._attempts = 0
        self._retries = 0
        self._tried: set[str] = set()
        # Written only when something fails or is excluded: shared empties until then, each
        # write a fresh copy (two containers fewer per call).
        self._excluded: Mapping[str, str] = NO_REASONS
        self._errors: Sequence[ProviderError] = ()
        self._fatal: Exception | None = None
        self._pending_sleep: float | None = None
        self._budget_blocked: AbstractSet[str] = NO_NAMES
        self._shared_wait: Mapping[str, float] = NO_WAITS  # deployment -> when the fleet admits it
        tags = fields["tags"]
        self._tags = tuple(tags) if tags else ()
        model = fields["model"]
        fallbacks = router.fallbacks.get(model)
        self._chain = [model] if fallbacks is None else [model, *fallbacks]
        self._position = 0
        template = router.templates.get(model) if policy is None else None
        if template is not None:
            # _enter's template path, with the trace built entered (one step, no call).
            self.model = model
            self.strategy, self.candidates, names, self._choose_scored, name = template
            self.trace = new_trace(model, name, list(names))
        else:
            self.trace = new_trace(model)
            self._enter(model)
        router.budget.deposit(now)
        telemetry = router.telemetry
        self._span = (
            telemetry.start_call(
                model=model,
                operation=operation,
                stream=stream,
                # An embeddings batch's request is a carrier for the token estimates: its
                # max_tokens is not the caller's.
                request_params=request if operation == "chat" else {},
            )
            # tracing()'s no-tracer case compared here, without the call (once per call)
            if telemetry is not None
            and (telemetry._tracer is not None or telemetry._trace_recheck <= time.monotonic())
            and telemetry.tracing()
            else None
        )

    # -- groups and fallbacks ------------------------------------------------------------------

    def _enter(self, model: str) -> None:
        router = self._router
        self.model = model
        template = router.templates.get(model) if self.policy is None else None
        if template is not None:
            # A group whose entry does not depend on the request (one model, no strategy
            # exclusions): what the general path below would compute, kept from the first call.
            self.strategy, self.candidates, names, self._choose_scored, name = template
            trace = self.trace
            trace.models.append(model)
            if not trace.strategy:
                trace.strategy = name
            trace.candidates.extend(names)
            if self._tried:
                self._tried = set()
            return
        auto_key = None
        if model == AUTO and self.policy is None:
            auto_key = router.auto_key(self.ctx)
            if auto_key is not None:
                auto = router.auto_templates.get(auto_key)
                if auto is not None:
                    self._enter_from(model, auto)
                    return
        strategy = router.strategy(model)
        candidates, excluded = router.candidates(model, self.ctx)
        exclude = getattr(strategy, "exclude", None)
        entry: AutoTemplate = (
            strategy,
            candidates,
            router.names_of(model, candidates),
            getattr(strategy, "choose_scored", None),
            type(strategy).__name__,
            exclude,
            bool(getattr(strategy, "exclude_reads_stats", False)),
            excluded,  # never written: each exclusion below makes a new mapping
        )
        if model != AUTO and exclude is None:
            router.templates[model] = entry[:5]
        elif auto_key is not None:
            # candidates() took its fast path (auto_key said the request fits): the same
            # candidates and static exclusions for every such request.
            router.auto_templates[auto_key] = entry
        self._enter_from(model, entry)

    def _enter_from(self, model: str, entry: AutoTemplate) -> None:
        """Enter ``model``'s group as ``entry`` says (the strategy, its candidates and the
        exclusions every request gets), adding the strategy's and the policy's exclusions
        for this request."""
        strategy, self.candidates, names, self._choose_scored, name, exclude, reads, excluded = (
            entry
        )
        self.strategy = strategy
        if exclude is not None:
            found = (
                exclude(self.candidates, self.ctx, self._router.tracker)
                if reads
                else exclude(self.candidates, self.ctx)
            )
            if found:
                excluded = {**excluded, **found}
        if self.policy is not None:
            from ..security.policy import filter_candidates

            _, denied = filter_candidates(
                self.policy,
                self.candidates,
                input_tokens=self.ctx.input_tokens,
                output_tokens=self.ctx.output_tokens,
            )
            self._policy_blocked = {**self._policy_blocked, **denied}
            excluded = {**excluded, **denied}
        trace = self.trace
        if excluded:
            self._excluded = {**self._excluded, **excluded}
            trace.excluded.update(excluded)
        trace.models.append(model)
        if not trace.strategy:
            trace.strategy = name
        trace.candidates.extend(names)
        if self._tried:
            self._tried = set()

    def _advance(self) -> bool:
        """Move to the next model of the fallback chain; ``False`` when there is none."""
        if self._position + 1 >= len(self._chain):
            return False
        self._position += 1
        self._enter(self._chain[self._position])
        return True

    # -- decisions -----------------------------------------------------------------------------

    def next_action(self) -> Send | Sleep:
        """The next thing to do.

        Raises:
            ProviderError: a request-level failure (bad request, content filter), re-raised.
            AllAttemptsFailed: attempts, deployments or time ran out after failures.
            NoDeploymentAvailable: nothing could be tried (every candidate excluded).
        """
        try:
            return self._next()
        except BaseException as exc:
            self._end_call(exc)
            raise

    def _next(self) -> Send | Sleep:
        if self._fatal is not None:
            raise self._fatal
        router = self._router
        now = router.clock.monotonic()
        remaining = None if self._deadline_at is None else self._deadline_at - now
        if self._pending_sleep is not None:
            seconds, self._pending_sleep = self._pending_sleep, None
            if remaining is not None and seconds >= remaining:
                self._errors = [
                    *self._errors,
                    ProviderTimeout(
                        f"the call's deadline leaves {max(remaining, 0):.2f}s, less than the "
                        f"{seconds:.2f}s back-off"
                    ),
                ]
                raise self._exhausted()
            self.trace.sleeps.append(seconds)
            return Sleep(seconds)
        if self._attempts > router.retry.max_retries:  # max_attempts, without the property
            raise self._exhausted()
        if remaining is not None and remaining <= 0:
            self._errors = [*self._errors, ProviderTimeout("the call's deadline passed")]
            raise self._exhausted()
        while True:
            available: Sequence[Endpoint]
            if (
                router.budgets is None
                and router.health.all_closed
                and not router.limiter.any_limits
                and not self._shared_wait
            ):
                # Nothing can turn a candidate away but this call's own exclusions: O(1) when
                # there are none (the common case, whatever the fleet size), without a call.
                excluded = self._excluded
                available = (
                    [c for c in self.candidates if c.name not in excluded]
                    if excluded
                    else self.candidates
                )
                earliest = None
            else:
                available, earliest = self._available(now)
            if available:
                break
            if self._advance():
                continue
            wait = None if earliest is None else earliest - now
            if (
                wait is not None
                and router.health.policy.when_all_unavailable == "wait"
                and wait <= MAX_WAIT
                and (remaining is None or wait < remaining)
            ):
                wait = max(wait, 0.001)
                self.trace.sleeps.append(wait)
                return Sleep(wait)
            raise self._exhausted(retry_at=earliest)
        tried = self._tried
        pool = ([c for c in available if c.name not in tried] or available) if tried else available
        pinned = None if self._prefer is None else self._pinned(available)
        if pinned:
            endpoint = pinned
        elif (scored := self._choose_scored) is not None:
            endpoint, scores = scored(pool, router.tracker, self.ctx)
            # ScoreTable.add, inlined (once per decision)
            table = self.trace.scores
            table._parts.append(scores)
            table._dict = None
            # A probe or a learned choice says why (their classes set ``explains``; a class
            # attribute, so that this module needs neither: the learned choice's module is
            # imported only with ``intelligent``). LazyScores, the common case, first.
            if type(scores) is not LazyScores and getattr(scores, "explains", False):
                self.trace.notes.defer(scores)  # formatted if the trace is read
        else:
            endpoint = self.strategy.choose(pool, router.tracker, self.ctx)
        reservation = None  # without limits or a fleet there is nothing to reserve or hand on
        if router.limiter.any_limits or router.shared is not None:
            tokens = self.ctx.input_tokens + self.ctx.output_tokens
            reservation = router.limiter.acquire(endpoint.name, tokens, now)
            if reservation is None:
                # Another thread took the last slot since _available: decide again (the limiter
                # now excludes this deployment), under the deadline and
                # ``when_all_unavailable``, rather than sleeping up to MAX_WAIT past both.
                return self._next()
        hold = None
        if router.budgets is not None:
            hold = router.budgets.reserve(
                endpoint, self.request.user, self._tags, _estimate(endpoint, self.ctx)
            )
            if hold is None:  # a concurrent call used the budget since _available
                router.limiter.reconcile(reservation, 0)
                self.trace.excluded[endpoint.name] = "budget exhausted"
                self._budget_blocked = self._budget_blocked | {endpoint.name}
                return self._next()
        self._attempts += 1
        self._tried.add(endpoint.name)
        health = router.health
        breaker = health._breakers.get(endpoint.name)
        if breaker is None or breaker.state != "closed" or breaker.status != "healthy":
            health.on_send(endpoint.name, now)  # its common case (nothing to do) tested here
        load = router.tracker.started(endpoint.name)
        timeout = endpoint.timeout or self._timeout
        if remaining is not None:
            timeout = min(timeout, remaining)
        span = None
        if router.telemetry is not None and self._span is not None:
            span = router.telemetry.start_attempt(self._span, endpoint, self._attempts)
        return _new_tuple(
            Send, (endpoint, self._attempts, timeout, now, reservation, span, hold, load)
        )

    def _pinned(self, available: Sequence[Endpoint]) -> Endpoint | None:
        """The preferred deployment if it is available, once: whether or not it is, the next
        decisions are the strategy's (a failure there falls back as usual)."""
        name, self._prefer = self._prefer, None
        endpoint = next((c for c in available if c.name == name), None)
        if endpoint is not None:
            self.trace.notes.append(f"pinned to {name}")
        return endpoint

    def _available(self, now: float) -> tuple[Sequence[Endpoint], float | None]:
        """The candidates that may be tried now, and the earliest time one that may not could
        be (``_next`` takes the case where only this call's own exclusions apply)."""
        router = self._router
        budgets = router.budgets
        tokens = self.ctx.input_tokens + self.ctx.output_tokens
        available: list[Endpoint] = []
        earliest: float | None = None
        for c in self.candidates:
            if c.name in self._excluded or c.name in self._budget_blocked:
                continue
            if budgets is not None:
                why = budgets.blocked(c, self.request.user, self._tags, _estimate(c, self.ctx))
                if why is not None:
                    self._budget_blocked = self._budget_blocked | {c.name}
                    self.trace.excluded[c.name] = why
                    continue
            fleet_wait = self._shared_wait.get(c.name) if self._shared_wait else None
            ok: bool
            reason: str | None
            retry_at: float | None
            if fleet_wait is not None and fleet_wait > now:  # refused by the shared state
                ok, reason, retry_at = False, self.trace.excluded.get(c.name), fleet_wait
            else:
                ok, reason, retry_at = router.health.check(c.name, now)
            if ok and router.limiter.limited(c.name):
                wait = router.limiter.wait_time(c.name, tokens, now)
                if wait > 0:
                    ok, reason, retry_at = False, f"rate limit ({wait:.2f}s to wait)", now + wait
            if ok:
                available.append(c)
                continue
            self.trace.excluded[c.name] = reason or "unavailable"
            if retry_at is not None and (earliest is None or retry_at < earliest):
                earliest = retry_at
        return available, earliest

    # -- outcomes ------------------------------------------------------------------------------

    def succeeded(
        self,
        send: Send,
        *,
        usage: Usage | None,
        ttft: float | None = None,
        status: int | None = 200,
        headers: Mapping[str, str] | None = None,
        response_model: str | None = None,
        finish_reason: str | None = None,
        request_id: str | None = None,
        response_id: str | None = None,
    ) -> Outcome:
        """Record a successful attempt; returns its outcome (latency measured now, cost set;
        ``response_id`` is the answer's own id, for feedback that names it later)."""
        router = self._router
        clock = router.clock
        now = clock.monotonic()
        latency = now - send.started
        endpoint = send.endpoint
        if request_id is not None:  # a response header: it goes to the ledger and the cache
            # endpoint_secrets' memo read here: the call only the first time
            secrets = endpoint.memo.get(_SECRETS_MEMO) or endpoint_secrets(endpoint)
            for secret in secrets:
                if secret in request_id:
                    request_id = redact(request_id, secrets)
                    break
        # tuple.__new__ directly, as for the context: once per answer.
        self.trace.attempts.append(
            _new_tuple(AttemptRecord, (endpoint.name, "ok", latency, status, None))
        )
        breakdown = router.cost(endpoint, usage) if router.cost is not None and usage else None
        # The Outcome's tuple built here, positionally (once per answer: a named tuple parses
        # its keywords slowly, and a helper would be a call with 20 arguments); the field order
        # is checked against the keyword construction by tests/tracking/test_outcome.py.
        outcome: Outcome = _new_tuple(
            Outcome,
            (
                endpoint.name,
                endpoint.model,
                endpoint.provider,
                True,  # ok
                latency,
                clock.time() - latency,  # started_at
                None,  # error
                status,
                ttft,
                usage,
                breakdown.total if breakdown is not None else None,  # cost
                self.stream,
                False,  # cached
                None,  # retry_after
                self.request.__dict__["user"],  # a dict read: no __getattr__ hook
                self._tags,
                response_model,
                finish_reason,
                request_id,
                send.attempt,
                breakdown,  # cost_breakdown
                response_id,
                self.ctx.output_tokens,  # requested_tokens
                self.operation,
                None,  # sent_load: read for refusals only
            ),
        )
        router.health.on_success(endpoint.name, now)
        if router.shared is not None:
            router.shared.finished(
                endpoint.name, send.reservation, ok=True, hold=None, cooldown=0.0
            )
        limiter = router.limiter
        if limiter.any_limits:
            limiter.reconcile(send.reservation, usage.total_tokens if usage else None)
            if headers is not None and limiter.limited(endpoint.name):
                limiter.observe(endpoint.name, headers, now)
        if router.budgets is not None:
            router.budgets.settle(send.hold, outcome.cost)
        router.tracker.record(outcome, headers)
        if router.telemetry is not None:
            if send.span is not None:
                router.telemetry.end_attempt(send.span, outcome)
            if self._span is not None:  # _end_call's own test, without the call
                self._end_call(None, outcome)
        return outcome

    def hedge_delay(self, send: Send) -> float | None:
        """Seconds after which to send a backup for ``send`` (``None``: do not hedge)."""
        hedge = self._router.hedge
        if hedge is None or self.stream or send.attempt != 1:
            return None
        if len([c for c in self.candidates if c.name not in self._excluded]) < 2:
            return None
        hedge.call(self._router.clock.monotonic())
        quantile = self._router.tracker.latency_quantile(send.endpoint.name, hedge.policy.quantile)
        return max(hedge.policy.min_delay, quantile or 0.0)

    def hedge_action(self, primary: Send) -> Send | None:
        """A backup attempt on another deployment, if the hedge budget and candidates allow."""
        router = self._router
        hedge = router.hedge
        if hedge is None or not hedge.allow(router.clock.monotonic()):
            return None
        name = primary.endpoint.name
        held = name in self._excluded
        self._excluded = {**self._excluded, name: "hedging: first attempt in flight"}
        sleeps = len(self.trace.sleeps)
        try:
            action = self._next()
        except (MultimodelError, ProviderError):  # nothing left to hedge with
            return None
        finally:
            if not held:
                excluded = dict(self._excluded)
                del excluded[name]
                self._excluded = excluded
                self.trace.excluded.pop(name, None)
        if isinstance(action, Sleep):
            del self.trace.sleeps[sleeps:]
            return None
        return action

    def time_left(self) -> float | None:
        """Seconds left before the call's deadline (negative once past); ``None`` without one."""
        if self._deadline_at is None:
            return None
        return self._deadline_at - self._router.clock.monotonic()
