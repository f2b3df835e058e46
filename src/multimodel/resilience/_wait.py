"""tenacity glue for :class:`~multimodel.resilience.retry.RetryPolicy`: the call state a wait
strategy is given, and the default back-off as a tenacity wait strategy.

Imported on the first back-off (tenacity costs tens of milliseconds to import), never at
``import multimodel``.
"""

from __future__ import annotations

import random
from typing import Any

import tenacity

__all__ = ["CallState", "JitteredExponential"]


class CallState(tenacity.RetryCallState):
    """The :class:`tenacity.RetryCallState` of one back-off, built the way tenacity builds it.

    - ``attempt_number`` is the retry number (1 before the first retry), as in tenacity, where a
      wait strategy runs after attempt ``attempt_number`` failed;
    - ``outcome`` is a failed :class:`tenacity.Future` holding the attempt's error;
    - ``seconds_since_start`` is the time since the call started, on the client's clock;
    - ``retry_object`` is a :class:`tenacity.Retrying` carrying the policy's ``wait`` and a stop
      after ``max_attempts``, for strategies and loggers that read it;
    - ``rng`` is the router's random generator (the built-in jitter draws from it).
    """

    def __init__(
        self,
        retrying: tenacity.Retrying,
        *,
        retry: int,
        error: BaseException | None,
        elapsed: float | None,
        rng: random.Random | None,
    ) -> None:
        super().__init__(retrying, None, (), {})
        self.attempt_number = retry
        if error is not None:
            self.outcome = tenacity.Future.construct(retry, error, True)
        if elapsed is not None:
            # tenacity's seconds_since_start is outcome_timestamp - start_time.
            self.outcome_timestamp = self.start_time
            self.start_time -= elapsed
        self.rng = rng


class JitteredExponential(tenacity.wait_exponential):
    """tenacity's ``wait_exponential`` with a random share ``jitter`` of each wait.

    The wait before retry *n* is ``base × (1 - jitter) + base × jitter × U(0, 1)`` with
    ``base = min(initial × 2 ** (n - 1), maximum)``: the back-off described by
    ``RetryPolicy(backoff_initial=..., backoff_max=..., jitter=...)``. ``U`` is drawn from
    the state's ``rng`` when it has one (a multimodel :class:`CallState`; a seeded
    ``random.Random`` makes the back-offs reproducible), otherwise from the :mod:`random`
    module, as tenacity's own random waits do.

    Args:
        initial: the first wait, in seconds.
        maximum: the longest wait before jitter.
        jitter: the random share of each wait, 0..1.
    """

    def __init__(self, initial: float, maximum: float, jitter: float) -> None:
        super().__init__(multiplier=initial, max=maximum)
        self.jitter = jitter

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        base = super().__call__(retry_state)
        # Drawn even when jitter is 0, so a seeded client's random sequence does not depend on
        # the jitter setting.
        rng: Any = getattr(retry_state, "rng", None) or random
        return float(base * (1 - self.jitter) + base * self.jitter * rng.random())

    def __repr__(self) -> str:
        return (
            f"JitteredExponential(initial={self.multiplier}, maximum={self.max}, "
            f"jitter={self.jitter})"
        )
