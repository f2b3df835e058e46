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
            response = send(action)          # the I/O
        except ProviderError as exc:
            plan.failed(action, exc)
            continue
        except BaseException:
            plan.cancelled(action)
            raise
        return response                      # the driver already called plan.succeeded

Everything else, which candidates remain, the strategy's choice, Retry-After, back-off,
the deadline, the routing trace and the bookkeeping in the tracker, happens here, once.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import AllAttemptsFailed, NoDeploymentAvailable, ProviderError, ProviderTimeout
from ..providers.base import Endpoint
from ..resilience.retry import RetryPolicy
from ..strategies.base import Strategy
from ..tracking.outcome import Outcome
from ..tracking.stats import Tracker
from ..types import ChatRequest, Usage
from .clock import Clock

__all__ = ["AttemptRecord", "DispatchPlan", "Router", "RoutingTrace", "Send", "Sleep"]


@dataclass(frozen=True, slots=True)
class Send:
    """Send one attempt to ``endpoint`` within ``timeout`` seconds."""

    endpoint: Endpoint
    attempt: int
    timeout: float
    started: float


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait ``seconds`` before the next action."""

    seconds: float


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One attempt in a routing trace."""

    deployment: str
    outcome: str
    duration: float
    status: int | None = None
    detail: str | None = None


@dataclass(slots=True)
class RoutingTrace:
    """What the router did for one call: candidates, exclusions and every attempt.

    Attributes:
        model: the model group asked for.
        strategy: the strategy's name.
        candidates: deployments serving the model.
        excluded: ``{deployment: reason}`` for deployments skipped during the call.
        attempts: each attempt in order.
        sleeps: each back-off waited, in seconds.
    """

    model: str
    strategy: str
    candidates: list[str]
    excluded: dict[str, str] = field(default_factory=dict)
    attempts: list[AttemptRecord] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)

    def deployments(self) -> list[str]:
        """The deployments attempted, in order."""
        return [a.deployment for a in self.attempts]


class Router:
    """A client's routing state: model groups, one strategy per group, tracker, policy, clock.

    It holds no per-call state; :meth:`plan` makes a fresh :class:`DispatchPlan` per call.
    """

    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        strategy_for: Any,
        tracker: Tracker,
        clock: Clock,
        retry: RetryPolicy,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.groups: dict[str, list[Endpoint]] = {}
        for ep in endpoints:
            self.groups.setdefault(ep.model, []).append(ep)
        self.by_name = {ep.name: ep for ep in endpoints}
        self.strategies: dict[str, Strategy] = {m: strategy_for(m) for m in self.groups}
        self.tracker = tracker
        self.clock = clock
        self.retry = retry
        self.rng = rng or random.Random()

    def plan(
        self,
        request: ChatRequest,
        *,
        timeout: float,
        deadline: float | None = None,
        stream: bool = False,
    ) -> DispatchPlan:
        """A plan for one call of ``request`` (its model must be a configured group)."""
        return DispatchPlan(self, request, timeout=timeout, deadline=deadline, stream=stream)


class DispatchPlan:
    """The sans-I/O state machine for one call; see the module docstring for the driver loop."""

    __slots__ = (
        "_attempts",
        "_deadline_at",
        "_errors",
        "_excluded",
        "_fatal",
        "_pending_sleep",
        "_retries",
        "_router",
        "_timeout",
        "_tried",
        "candidates",
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
    ) -> None:
        self._router = router
        self.request = request
        self.stream = stream
        self.candidates = router.groups[request.model]
        self.strategy = router.strategies[request.model]
        self._timeout = timeout
        now = router.clock.monotonic()
        self._deadline_at = None if deadline is None else now + deadline
        self._attempts = 0
        self._retries = 0
        self._tried: set[str] = set()
        self._excluded: dict[str, str] = {}
        self._errors: list[ProviderError] = []
        self._fatal: ProviderError | None = None
        self._pending_sleep: float | None = None
        self.trace = RoutingTrace(
            model=request.model,
            strategy=type(self.strategy).__name__,
            candidates=[c.name for c in self.candidates],
        )

    # -- decisions -----------------------------------------------------------------------------

    def next_action(self) -> Send | Sleep:
        """The next thing to do.

        Raises:
            ProviderError: a request-level failure (bad request, content filter), re-raised.
            AllAttemptsFailed: attempts, deployments or time ran out after failures.
            NoDeploymentAvailable: nothing could even be tried.
        """
        if self._fatal is not None:
            raise self._fatal
        clock = self._router.clock
        now = clock.monotonic()
        remaining = None if self._deadline_at is None else self._deadline_at - now
        if self._pending_sleep is not None:
            seconds = self._pending_sleep
            self._pending_sleep = None
            if remaining is not None and seconds >= remaining:
                self._errors.append(
                    ProviderTimeout(
                        f"the call's deadline leaves {max(remaining, 0):.2f}s, less than the "
                        f"{seconds:.2f}s back-off"
                    )
                )
                raise self._exhausted()
            self.trace.sleeps.append(seconds)
            return Sleep(seconds)
        if self._attempts >= self._router.retry.max_attempts:
            raise self._exhausted()
        if remaining is not None and remaining <= 0:
            self._errors.append(ProviderTimeout("the call's deadline passed"))
            raise self._exhausted()
        available = [c for c in self.candidates if c.name not in self._excluded]
        if not available:
            raise self._exhausted()
        fresh = [c for c in available if c.name not in self._tried]
        endpoint = self.strategy.choose(fresh or available, self._router.tracker, self.request)
        self._attempts += 1
        self._tried.add(endpoint.name)
        self._router.tracker.started(endpoint.name)
        timeout = endpoint.timeout or self._timeout
        if remaining is not None:
            timeout = min(timeout, remaining)
        return Send(endpoint, self._attempts, timeout, now)

    def succeeded(
        self,
        send: Send,
        *,
        usage: Usage | None,
        ttft: float | None = None,
        status: int | None = 200,
    ) -> Outcome:
        """Record a successful attempt; returns the outcome (latency measured now)."""
        clock = self._router.clock
        latency = clock.monotonic() - send.started
        self.trace.attempts.append(AttemptRecord(send.endpoint.name, "ok", latency, status))
        outcome = Outcome(
            deployment=send.endpoint.name,
            model=send.endpoint.model,
            provider=send.endpoint.provider,
            ok=True,
            latency=latency,
            started_at=clock.time() - latency,
            status=status,
            ttft=ttft,
            usage=usage,
            stream=self.stream,
            user=self.request.user,
            tags=tuple(self.request.tags or ()),
        )
        self._router.tracker.record(outcome)
        return outcome

    def failed(self, send: Send, error: ProviderError, *, retry: bool = True) -> None:
        """Record a failed attempt and decide what comes next (``retry=False``: nothing)."""
        clock = self._router.clock
        latency = clock.monotonic() - send.started
        name = send.endpoint.name
        if error.deployment is None:
            error.deployment = name
            error.provider = send.endpoint.provider
        self.trace.attempts.append(
            AttemptRecord(name, type(error).__name__, latency, error.status, error.message[:200])
        )
        retry_after = getattr(error, "retry_after", None)
        self._router.tracker.record(
            Outcome(
                deployment=name,
                model=send.endpoint.model,
                provider=send.endpoint.provider,
                ok=False,
                latency=latency,
                started_at=clock.time() - latency,
                error=type(error).__name__,
                status=error.status,
                stream=self.stream,
                retry_after=retry_after,
                user=self.request.user,
                tags=tuple(self.request.tags or ()),
            )
        )
        self._errors.append(error)
        error.trace = self.trace
        if not retry:
            self._fatal = error
            return
        kind = self._router.retry.classify(error)
        if kind == "request":
            self._fatal = error
        elif kind == "deployment":
            self._excluded[name] = f"{type(error).__name__} (HTTP {error.status})"
            self.trace.excluded[name] = self._excluded[name]
        else:
            untried = any(
                c.name not in self._tried and c.name not in self._excluded for c in self.candidates
            )
            if not untried and self._attempts < self._router.retry.max_attempts:
                self._retries += 1
                self._pending_sleep = self._router.retry.backoff(
                    self._retries, retry_after, self._router.rng
                )

    def cancelled(self, send: Send) -> None:
        """The caller abandoned the attempt (cancellation, KeyboardInterrupt): free its slot."""
        self._router.tracker.cancelled(send.endpoint.name)
        self.trace.attempts.append(
            AttemptRecord(
                send.endpoint.name, "cancelled", self._router.clock.monotonic() - send.started
            )
        )

    def _exhausted(self) -> Exception:
        if not self._errors:
            return NoDeploymentAvailable(self.request.model, self._excluded, trace=self.trace)
        if len(self._errors) == 1 and not self._excluded and self._attempts == 1:
            return self._errors[0]
        err = AllAttemptsFailed(self.request.model, self._errors, trace=self.trace)
        err.__cause__ = self._errors[-1]
        return err
