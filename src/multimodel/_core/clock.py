"""Time, injected: the core reads it through a :class:`Clock` so tests never sleep."""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "ManualClock", "SystemClock"]


class Clock(Protocol):
    """Where the core reads time from."""

    def monotonic(self) -> float:
        """Seconds on a monotonic clock (durations, deadlines, cooldowns)."""
        ...

    def time(self) -> float:
        """Seconds since the epoch (timestamps in records and ledgers)."""
        ...


class SystemClock:
    """The real clocks: :func:`time.monotonic` and :func:`time.time`."""

    __slots__ = ()

    # The C functions themselves, not wrappers: the core reads the clock several times per call.
    monotonic = staticmethod(time.monotonic)
    """See :meth:`Clock.monotonic`."""
    time = staticmethod(time.time)
    """See :meth:`Clock.time`."""


class ManualClock:
    """A clock that only moves when told to; for tests and simulations.

    Example::

        clock = ManualClock()
        clock.advance(2.5)
        assert clock.monotonic() == 2.5
    """

    __slots__ = ("_epoch", "_now")

    def __init__(self, start: float = 0.0, *, epoch: float = 1_700_000_000.0) -> None:
        self._now = start
        self._epoch = epoch

    def monotonic(self) -> float:
        """See :meth:`Clock.monotonic`."""
        return self._now

    def time(self) -> float:
        """See :meth:`Clock.time`."""
        return self._epoch + self._now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._now += seconds
