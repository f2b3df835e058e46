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

import math
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from ..errors import (
    AllAttemptsFailed,
    AuthenticationError,
    BadRequestError,
    ConfigError,
    NotFoundError,
    PermissionDeniedError,
    ProviderError,
    QuotaExhausted,
)

if TYPE_CHECKING:
    import tenacity

__all__ = ["FailureKind", "RetryBudget", "RetryPolicy", "Wait"]

FailureKind = Literal["request", "deployment", "transient"]
Wait = Callable[["tenacity.RetryCallState"], float]
"""A tenacity wait strategy, or any callable ``(RetryCallState) -> seconds``."""


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    """How one call retries: how many times, and how long to wait before each retry.

    The dispatch loop decides *where* each attempt goes (another deployment first, then the
    fallback chain); this policy decides how many back-offs there are and how long each is.
    The wait is a tenacity wait strategy: by default an exponential back-off with jitter built
    from ``backoff_initial``, ``backoff_max`` and ``jitter``; pass ``wait=`` to use any of
    tenacity's (``wait_random_exponential``, ``wait_exponential_jitter``, ``wait_fixed``,
    ``wait_chain``, sums of them with ``+``) or your own callable. A provider's Retry-After
    within ``max_retry_after`` wins over either.

    Example::

        import tenacity
        policy = RetryPolicy(max_retries=4,
                             wait=tenacity.wait_random_exponential(multiplier=0.5, max=20))

    Args:
        max_retries: attempts after the first (so at most ``max_retries + 1`` attempts).
        backoff_initial: first back-off in seconds (doubles each retry); ignored with ``wait``.
        backoff_max: the longest computed back-off; ignored with ``wait``.
        jitter: the random share of each back-off (0..1), to spread synchronized retries.
            Drawn from the ``rng`` given to :meth:`backoff` (the router's generator), which a
            seeded ``random.Random`` makes reproducible. Ignored with ``wait``.
        max_retry_after: the longest provider Retry-After honoured; a longer hint means "not
            soon", so the deployment is treated as unavailable rather than waited for.
        wait: a tenacity wait strategy, or any callable taking a
            :class:`tenacity.RetryCallState` and returning seconds. It is called before retry
            number *n* with ``attempt_number = n``, ``outcome`` the failed attempt's error and
            ``seconds_since_start`` the time since the call started. tenacity's random waits
            draw from the :mod:`random` module: a seeded ``rng`` applies only to the built-in
            jitter.

    Raises:
        ConfigError: a negative count or duration, a ``jitter`` outside 0..1, or a ``wait``
            that is not callable.
    """

    max_retries: int = 2
    backoff_initial: float = 0.5
    backoff_max: float = 8.0
    jitter: float = 0.25
    max_retry_after: float = 60.0
    wait: Wait | None = None

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ConfigError(f"RetryPolicy.max_retries must be >= 0, got {self.max_retries!r}")
        for name in ("backoff_initial", "backoff_max", "max_retry_after"):
            value = getattr(self, name)
            if not value >= 0:  # also rejects NaN
                raise ConfigError(f"RetryPolicy.{name} must be >= 0 seconds, got {value!r}")
        if not 0 <= self.jitter <= 1:
            raise ConfigError(f"RetryPolicy.jitter must be between 0 and 1, got {self.jitter!r}")
        if self.wait is not None and not callable(self.wait):
            raise ConfigError(
                "RetryPolicy.wait must be a tenacity wait strategy (e.g. "
                "tenacity.wait_random_exponential()) or a callable (RetryCallState) -> "
                f"seconds, not {self.wait!r}"
            )

    def replace(self, **changes: Any) -> RetryPolicy:
        """A copy with ``changes`` applied."""
        return replace(self, **changes)

    @property
    def max_attempts(self) -> int:
        """Total attempts allowed for one call."""
        return self.max_retries + 1

    @property
    def wait_strategy(self) -> Wait:
        """The wait in effect: ``wait``, or the default back-off built from the fields.

        The default is a tenacity wait strategy (``wait_exponential`` plus ``jitter``), so it
        combines with tenacity's others, e.g. ``policy.wait_strategy + wait_fixed(1)``.
        """
        if self.wait is not None:
            return self.wait
        from ._wait import JitteredExponential

        return JitteredExponential(self.backoff_initial, self.backoff_max, self.jitter)

    @staticmethod
    def classify(error: BaseException) -> FailureKind:
        """Sort an error into ``request``, ``deployment`` or ``transient`` (module docstring)."""
        if isinstance(error, AllAttemptsFailed):
            return "request"  # the retries are spent, even when it is also a RateLimited
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
        self,
        retry: int,
        retry_after: float | None = None,
        rng: random.Random | None = None,
        *,
        error: BaseException | None = None,
        elapsed: float | None = None,
    ) -> float:
        """Seconds to wait before retry number ``retry`` (1-based).

        A provider's Retry-After wins when it is within ``max_retry_after``; otherwise the wait
        strategy decides (:attr:`wait_strategy`).

        Args:
            retry: the retry about to happen (1 = the first retry).
            retry_after: the provider's hint, in seconds.
            rng: the random generator of the built-in jitter (``None``: the :mod:`random`
                module); tenacity's random waits ignore it.
            error: the failed attempt's error (the wait's ``retry_state.outcome``).
            elapsed: seconds since the call started (``retry_state.seconds_since_start``).

        Raises:
            ConfigError: the wait returned something other than a finite number >= 0.
        """
        if retry_after is not None and 0 <= retry_after <= self.max_retry_after:
            return retry_after
        import tenacity

        from ._wait import CallState  # tenacity loads on the first back-off, not at import

        wait = self.wait_strategy
        retrying = tenacity.Retrying(
            wait=wait, stop=tenacity.stop_after_attempt(self.max_attempts), reraise=True
        )
        state = CallState(retrying, retry=max(1, retry), error=error, elapsed=elapsed, rng=rng)
        return _seconds(wait(state), retry)


def _seconds(value: object, retry: int) -> float:
    """``value`` as a wait in seconds, or a :class:`ConfigError` naming ``RetryPolicy.wait``."""
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        seconds = math.nan
    if not (seconds >= 0 and math.isfinite(seconds)):
        raise ConfigError(
            f"RetryPolicy.wait returned {value!r} for retry {retry}; a wait must be a finite "
            "number of seconds >= 0"
        )
    return seconds


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

    def __init__(
        self, *, ratio: float = 0.2, min_per_second: float = 5.0, ttl: float = 10.0
    ) -> None:
        from ..tracking.windows import SlidingWindow

        self.ratio = ratio
        self.reserve = min_per_second * ttl
        self._calls = SlidingWindow(ttl, 20)
        self._retries = SlidingWindow(ttl, 20)
        self._lock = threading.Lock()

    def deposit(self, now: float) -> None:
        """A call started."""
        calls = self._calls
        index = int(now // calls.width)
        lock = self._lock
        lock.acquire()  # rather than ``with``: half the instructions, on every call
        try:
            if index == calls._head:  # SlidingWindow.add's hot path, inlined: once per call
                calls._counts[index % calls.buckets] += 1
                calls._total += 1
            else:
                calls.add(now)
        finally:
            lock.release()

    def withdraw(self, now: float) -> bool:
        """Ask to retry; ``False`` means the budget is spent (do not retry)."""
        with self._lock:
            allowed = self.ratio * self._calls.total(now) + self.reserve
            if self._retries.total(now) + 1 > allowed:
                return False
            self._retries.add(now)
            return True
