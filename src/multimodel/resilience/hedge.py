"""Hedged requests (opt-in): a backup attempt when the first one is slower than usual.

With ``Client(..., hedge=HedgePolicy())``, a call whose first attempt has not answered after
the deployment's usual latency (its ``quantile`` latency, at least ``min_delay``) sends a backup
to another deployment; the first answer wins and the other attempt is cancelled (the async
client cancels it; the sync client cannot interrupt a blocking read, so the loser finishes in a
worker thread and its outcome is recorded when it does). Hedges are capped to ``max_extra`` of
calls over the last ``window`` seconds, so hedging never more than ``1 + max_extra`` times the
traffic. A cancelled backup has still used prompt tokens at the provider: its estimated prompt
cost is recorded (tracker, budgets, ledger), so both costs are counted.

Hedging applies to non-streamed calls, before any retry.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from ..tracking.windows import SlidingWindow

__all__ = ["HedgePolicy", "HedgeState"]


@dataclass(frozen=True, kw_only=True, slots=True)
class HedgePolicy:
    """When to send a backup attempt.

    Args:
        quantile: the latency quantile of the first deployment after which to hedge.
        min_delay: never hedge sooner than this (seconds); also the delay before any latency
            was measured.
        max_extra: at most this share of calls get a backup (0.1 = 10 %).
        window: seconds the share is measured over.
    """

    quantile: float = 0.95
    min_delay: float = 0.05
    max_extra: float = 0.1
    window: float = 60.0


class HedgeState:
    """Counts calls and hedges to enforce ``max_extra``. Thread-safe; time is passed in."""

    def __init__(self, policy: HedgePolicy) -> None:
        self.policy = policy
        self._calls = SlidingWindow(policy.window, 30)
        self._hedges = SlidingWindow(policy.window, 30)
        self._lock = threading.Lock()

    def call(self, now: float) -> None:
        """A hedgeable call started."""
        with self._lock:
            self._calls.add(now)

    def allow(self, now: float) -> bool:
        """Whether a backup may be sent now (and count it if so)."""
        with self._lock:
            calls = self._calls.total(now)
            if self._hedges.total(now) + 1 > self.policy.max_extra * calls:
                return False
            self._hedges.add(now)
            return True
