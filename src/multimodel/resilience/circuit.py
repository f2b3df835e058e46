"""Per-deployment circuit breakers and health status.

Each deployment has a breaker:

``closed``
    normal; failures are counted.
``open``
    after ``failure_threshold`` consecutive failures, or a failure ratio of ``failure_ratio``
    over at least ``min_requests`` attempts in the last ``window`` seconds. The deployment is
    skipped for a cooldown that doubles each time it re-opens (up to ``max_cooldown``) and is
    never shorter than a Retry-After the provider sent.
``half_open``
    the cooldown is over: one probe request is let through; success closes the breaker (and
    resets the cooldown), failure opens it again for longer.

What counts as a failure: server errors, timeouts, dropped connections and malformed bodies.
Authentication, permission, not-found and exhausted-quota errors open the breaker at once for
``max_cooldown`` (the deployment is misconfigured, not busy). Overload (503 / 529) and rate
limits (429) are *load signals*, not proof the deployment is dead: they never open the breaker;
their Retry-After makes the deployment wait (see :meth:`HealthBoard.hold`) and strategies
penalize it.

Health status, reported through :class:`~multimodel.events.ModelStatusEvent`: ``down`` while
open, ``degraded`` while half-open, held back by Retry-After, or when the recent error rate is
at least ``degraded_error_rate``; otherwise ``healthy``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from ..errors import (
    AuthenticationError,
    MalformedResponse,
    NotFoundError,
    Overloaded,
    PermissionDeniedError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeout,
    QuotaExhausted,
    RateLimited,
    ServerError,
)
from ..tracking.windows import SlidingWindow

__all__ = ["CircuitPolicy", "HealthBoard", "Status"]

Status = Literal["healthy", "degraded", "down"]


@dataclass(frozen=True, kw_only=True, slots=True)
class CircuitPolicy:
    """When a deployment's breaker opens and for how long (immutable; see module docstring).

    Args:
        failure_threshold: consecutive failures that open the breaker.
        failure_ratio: failure share over the window that opens it ...
        min_requests: ... once at least this many attempts were seen in the window.
        window: seconds of the failure-ratio window.
        cooldown: first open duration in seconds; doubles on each re-open.
        max_cooldown: the longest open duration.
        degraded_error_rate: recent error rate at which a closed deployment is ``degraded``.
        when_all_unavailable: ``"wait"`` for the earliest recovery within the call's deadline,
            or ``"fail"`` at once with :class:`~multimodel.errors.NoDeploymentAvailable`.
    """

    failure_threshold: int = 5
    failure_ratio: float = 0.5
    min_requests: int = 20
    window: float = 30.0
    cooldown: float = 5.0
    max_cooldown: float = 300.0
    degraded_error_rate: float = 0.25
    when_all_unavailable: Literal["wait", "fail"] = "wait"

    def replace(self, **changes: Any) -> CircuitPolicy:
        """A copy with ``changes`` applied."""
        return replace(self, **changes)


class _Breaker:
    __slots__ = (
        "consecutive",
        "error_rate",
        "fails",
        "held_until",
        "open_count",
        "opened_until",
        "probing",
        "state",
        "status",
        "total",
    )

    def __init__(self, window: float) -> None:
        self.state = "closed"
        self.status: Status = "healthy"
        self.consecutive = 0
        self.opened_until = 0.0
        self.held_until = 0.0
        self.open_count = 0
        self.probing = False
        self.error_rate = 0.0
        self.total = SlidingWindow(window, 30)
        self.fails = SlidingWindow(window, 30)


class HealthBoard:
    """The breakers of one client's deployments. Thread-safe; time is passed in.

    Args:
        policy: the breaker policy.
        emit: called with ``(deployment, previous, status, reason)`` on every status change.
    """

    def __init__(
        self,
        policy: CircuitPolicy,
        emit: Callable[[str, Status, Status, str], None] | None = None,
    ) -> None:
        self.policy = policy
        self._emit = emit
        self._lock = threading.Lock()
        self._emit_lock = threading.RLock()
        self._breakers: dict[str, _Breaker] = {}
        # Names whose breaker is not closed or carries a Retry-After hold: only these can fail
        # check(). Empty in the common case, which lets the router skip per-deployment checks.
        self._unsettled: set[str] = set()
        #: ``True`` when no breaker is open, half-open or holding: every :meth:`check` passes.
        #: A plain attribute kept by ``_settle`` (read on every decision), read without the
        #: lock; a concurrent failure may be seen one decision late, as with :meth:`check`.
        self.all_closed = True

    def _get(self, name: str) -> _Breaker:
        b = self._breakers.get(name)
        if b is None:
            b = self._breakers.setdefault(name, _Breaker(self.policy.window))
        return b

    def status(self, name: str) -> Status:
        """The deployment's current health status."""
        return self._get(name).status

    def check(self, name: str, now: float) -> tuple[bool, str | None, float | None]:
        """Whether ``name`` may be tried now: ``(ok, reason when not, time it may be retried)``."""
        b = self._breakers.get(name)
        if b is None or name not in self._unsettled:
            return True, None, None
        if b.held_until > now:
            return (
                False,
                f"rate limited (Retry-After, {b.held_until - now:.2f}s left)",
                (b.held_until),
            )
        if b.state == "closed":
            return True, None, None
        if b.state == "open":
            if now < b.opened_until:
                return False, f"cooldown ({b.opened_until - now:.2f}s left)", b.opened_until
            return (
                (True, None, None) if not b.probing else (False, "half-open: probe in flight", None)
            )
        # half_open
        return (True, None, None) if not b.probing else (False, "half-open: probe in flight", None)

    def on_send(self, name: str, now: float) -> None:
        """An attempt is being sent; an expired open breaker turns half-open with this probe."""
        b = self._breakers.get(name)
        if b is not None and b.state == "closed" and b.status == "healthy":
            return  # nothing to change or announce: the common case costs no lock
        with self._lock:
            b = self._get(name)
            reason = "Retry-After elapsed"
            if b.state == "open" and now >= b.opened_until:
                b.state = "half_open"
            if b.state == "half_open":
                b.probing = True
                reason = "probing after cooldown"
            self._settle(name, b, now)
        self._refresh(name, b, reason, now)

    def on_success(self, name: str, now: float) -> None:
        """An attempt succeeded."""
        lock = self._lock
        lock.acquire()  # rather than ``with``: half the instructions, on every answer
        try:
            b = self._breakers.get(name) or self._get(name)
            b.consecutive = 0
            window = b.total
            index = int(now // window.width)
            if index == window._head:  # SlidingWindow.add's hot path, inlined: once per answer
                window._counts[index % window.buckets] += 1
                window._total += 1
            else:
                window.add(now)
            b.error_rate *= 0.7
            reason = "recovered"
            # Only a half-open probe closes the breaker: a success while still open comes from
            # a request sent before it opened and proves little.
            if b.state == "half_open":
                b.state = "closed"
                b.open_count = 0
                b.probing = False
                reason = "probe succeeded"
            elif b.state == "closed" and b.status == "healthy":
                return  # a success only lowers the error rate: a healthy breaker stays healthy
            self._settle(name, b, now)
        finally:
            lock.release()
        self._refresh(name, b, reason, now)

    def on_cancel(self, name: str) -> None:
        """An attempt was abandoned: a half-open probe slot is freed."""
        with self._lock:
            b = self._get(name)
            b.probing = False

    def hold(self, name: str, until: float, now: float) -> None:
        """Keep ``name`` out of rotation until ``until`` (a provider's Retry-After)."""
        with self._lock:
            b = self._get(name)
            b.held_until = max(b.held_until, until)
            self._settle(name, b, now)
        self._refresh(name, b, "rate limited", now)

    def adopt_open(self, name: str, until: float, now: float, reason: str) -> bool:
        """Another process opened ``name``'s breaker until ``until`` (``shared_state=``): open
        it here too, without counting a failure or lengthening the next cooldown. Returns
        whether the status changed (and was announced to this client's listeners)."""
        with self._lock:
            b = self._get(name)
            if until <= now or (b.state == "open" and b.opened_until >= until):
                return False
            b.state = "open"
            b.opened_until = until
            b.probing = False
            self._settle(name, b, now)
        return self._refresh(name, b, reason, now)

    def adopt_closed(self, name: str, now: float, reason: str) -> bool:
        """Another process's probe closed ``name``'s breaker: close it here too. Returns
        whether the status changed."""
        with self._lock:
            b = self._breakers.get(name)
            if b is None or b.state == "closed":
                return False
            b.state = "closed"
            b.open_count = 0
            b.consecutive = 0
            b.probing = False
            self._settle(name, b, now)
        return self._refresh(name, b, reason, now)

    def on_failure(self, name: str, error: ProviderError, now: float) -> None:
        """An attempt failed with ``error``; may open the breaker or hold the deployment."""
        p = self.policy
        retry_after = getattr(error, "retry_after", None)
        if isinstance(error, RateLimited | Overloaded):
            # Load signals: wait out a Retry-After, never open the breaker.
            with self._lock:
                b = self._get(name)
                b.total.add(now)
                b.error_rate += 0.3 * (1 - b.error_rate)
                if retry_after:
                    b.held_until = max(b.held_until, now + retry_after)
                if b.state == "half_open":
                    b.probing = False
                self._settle(name, b, now)
            self._refresh(name, b, type(error).__name__, now)
            return
        fatal = isinstance(
            error, AuthenticationError | PermissionDeniedError | NotFoundError | QuotaExhausted
        )
        counted = fatal or isinstance(
            error, ServerError | ProviderTimeout | ProviderConnectionError | MalformedResponse
        )
        with self._lock:
            b = self._get(name)
            if not counted:
                # The request's fault (400, 409 ...): says nothing about the deployment, but a
                # half-open probe that ended this way is over and must free its slot.
                b.probing = False
                return
            if b.state == "open":
                # A late failure of a request sent before the breaker opened: not a re-open
                # (which would double the cooldown once per request that was in flight).
                if retry_after:
                    b.opened_until = max(b.opened_until, now + retry_after)
                return
            b.consecutive += 1
            b.total.add(now)
            b.fails.add(now)
            b.error_rate += 0.3 * (1 - b.error_rate)
            total = b.total.total(now)
            ratio_tripped = total >= p.min_requests and b.fails.total(now) / total >= (
                p.failure_ratio
            )
            if (
                fatal
                or b.state == "half_open"
                or b.consecutive >= p.failure_threshold
                or (ratio_tripped)
            ):
                cooldown = (
                    p.max_cooldown if fatal else min(p.max_cooldown, p.cooldown * 2.0**b.open_count)
                )
                if retry_after:
                    cooldown = max(cooldown, retry_after)
                b.state = "open"
                b.opened_until = now + cooldown
                b.open_count += 1
                b.probing = False
                self._settle(name, b, now)
        self._refresh(name, b, type(error).__name__, now)

    def _settle(self, name: str, b: _Breaker, now: float) -> None:
        """Keep ``_unsettled`` exact for ``name`` (call with the lock held, after a change)."""
        if b.state != "closed" or b.held_until > now:
            self._unsettled.add(name)
        else:
            self._unsettled.discard(name)
        self.all_closed = not self._unsettled

    def _refresh(self, name: str, b: _Breaker, reason: str, now: float) -> bool:
        # Decide and announce a transition as one step (the emit lock is re-entrant, so a
        # callback may use the board), so that two threads cannot both announce the same
        # transition, or announce two transitions in the wrong order.
        with self._emit_lock:
            with self._lock:
                if b.state == "open":
                    status: Status = "down"
                elif (
                    b.state == "half_open"
                    or b.error_rate >= self.policy.degraded_error_rate
                    or b.held_until > now
                ):
                    status = "degraded"
                else:
                    status = "healthy"
                previous = b.status
                if status == previous:
                    return False
                b.status = status
            if self._emit is not None:
                self._emit(name, previous, status, reason)
            return True

    def open_until(self, name: str) -> float:
        """When ``name``'s open breaker turns half-open (0 when it is not open)."""
        b = self._breakers.get(name)
        return b.opened_until if b is not None and b.state == "open" else 0.0

    def earliest_recovery(self, names: list[str], now: float) -> float | None:
        """The soonest time any of ``names`` leaves cooldown or Retry-After."""
        times = []
        for name in names:
            b = self._breakers.get(name)
            if b is None:
                return now
            t = max(b.held_until, b.opened_until if b.state == "open" else 0.0)
            times.append(max(t, now))
        return min(times) if times else None
