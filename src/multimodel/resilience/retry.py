"""Which failures are worth another attempt, where, and after how long.

A :class:`RetryPolicy` is an immutable value (change it with :meth:`RetryPolicy.replace`); the
running state of one call (attempts so far, deployments tried) lives in its dispatch plan.

Failures fall into three kinds:

``request``
    the request itself is at fault (400, content filter, context length): no other attempt will
    do better, so the error is raised at once.
``deployment``
    this deployment cannot serve it (401, 403, 404, exhausted quota): never retried on the same
    deployment, but another deployment may serve it.
``transient``
    connection errors, timeouts, 408, 409, 429, 5xx, 529, malformed bodies: retried, on another
    deployment first, then after a back-off that honours the provider's Retry-After.
"""

from __future__ import annotations

import functools
import random
import threading
from dataclasses import dataclass, replace
from typing import Any, Literal

from ..errors import (
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PermissionDeniedError,
    ProviderError,
    QuotaExhausted,
)

__all__ = ["FailureKind", "RetryBudget", "RetryPolicy"]

FailureKind = Literal["request", "deployment", "transient"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How one call retries (the exponential schedule is tenacity's ``wait_exponential``).

    Args:
        max_retries: attempts after the first (so at most ``max_retries + 1`` attempts).
        backoff_initial: first back-off in seconds (doubles each retry).
        backoff_max: the longest computed back-off.
        jitter: the random share of each back-off (0..1), to spread synchronized retries.
        max_retry_after: the longest provider Retry-After honoured; a longer hint means "not
            soon", so the deployment is treated as unavailable rather than waited for.
    """

    max_retries: int = 2
    backoff_initial: float = 0.5
    backoff_max: float = 8.0
    jitter: float = 0.25
    max_retry_after: float = 60.0

    def replace(self, **changes: Any) -> RetryPolicy:
        """A copy with ``changes`` applied."""
        return replace(self, **changes)

    @property
    def max_attempts(self) -> int:
        """Total attempts allowed for one call."""
        return self.max_retries + 1

    @staticmethod
    def classify(error: BaseException) -> FailureKind:
        """Sort an error into ``request``, ``deployment`` or ``transient`` (module docstring)."""
        if isinstance(
            error, (AuthenticationError, PermissionDeniedError, NotFoundError, QuotaExhausted)
        ):
            return "deployment"
        if isinstance(error, BadRequestError):
            return "request"
        if isinstance(error, ProviderError) and error.retryable:
            return "transient"
        if isinstance(error, ProviderError):
            return "deployment"
        return "request"

    def backoff(
        self, retry: int, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait before retry number ``retry`` (1-based).

        A provider's Retry-After wins when it is within ``max_retry_after``; otherwise the
        exponential back-off applies, with ``jitter`` of it randomized.
        """
        if retry_after is not None and 0 <= retry_after <= self.max_retry_after:
            return retry_after
        base = _exponential(self.backoff_initial, self.backoff_max, max(1, retry))
        r: float = (rng or random).random()
        return base * (1 - self.jitter) + base * self.jitter * r


@functools.lru_cache(maxsize=256)
def _exponential(initial: float, maximum: float, attempt: int) -> float:
    """tenacity's exponential schedule (``initial * 2 ** (attempt - 1)``, capped).

    The jitter is applied by :meth:`RetryPolicy.backoff` with the caller's seedable RNG, so
    simulations and tests stay deterministic; tenacity's own jittered waits use the global one.
    """
    import tenacity  # on first back-off, not at import

    state = tenacity.RetryCallState(None, None, (), {})  # type: ignore[arg-type]
    state.attempt_number = attempt
    return float(tenacity.wait_exponential(multiplier=initial, max=maximum)(state))


class RetryBudget:
    """Caps retries to a share of calls, so that retries cannot amplify an outage (Finagle-style).

    Over the last ``ttl`` seconds, retries may number at most ``ratio`` × calls plus
    ``min_per_second`` × ``ttl``. When every provider is failing, calls stop being retried
    instead of multiplying the load by ``max_retries + 1``. Thread-safe; time is passed in.

    Args:
        ratio: retries allowed per call, on average (0.2 = 20 %).
        min_per_second: retries always allowed per second, for low traffic.
        ttl: seconds the accounting looks back.
    """

    def __init__(self, ratio: float = 0.2, min_per_second: float = 5.0, ttl: float = 10.0):
        from ..tracking.windows import SlidingWindow

        self.ratio = ratio
        self.reserve = min_per_second * ttl
        self._calls = SlidingWindow(ttl, 20)
        self._retries = SlidingWindow(ttl, 20)
        self._lock = threading.Lock()

    def deposit(self, now: float) -> None:
        """A call started."""
        with self._lock:
            self._calls.add(now)

    def withdraw(self, now: float) -> bool:
        """Ask to retry; ``False`` means the budget is spent (do not retry)."""
        with self._lock:
            allowed = self.ratio * self._calls.total(now) + self.reserve
            if self._retries.total(now) + 1 > allowed:
                return False
            self._retries.add(now)
            return True
