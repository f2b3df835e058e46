"""The read-only view of live stats that strategies route on (:class:`StatsView`), and the
record of one deployment they read (:class:`DeploymentStats`, :class:`RankedStats`).

The :class:`~multimodel.tracking.stats.Tracker` implements them; a strategy may be given any
object with this shape (the simulator and the benchmarks pass their own).
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["RANK_TAU", "DeploymentStats", "RankedStats", "StatsView"]


class DeploymentStats(Protocol):
    """What a strategy may read about one deployment (read-only)."""

    @property
    def in_flight(self) -> int:
        """Requests sent and not yet finished."""
        ...

    @property
    def requests(self) -> int:
        """Finished attempts."""
        ...

    @property
    def failures(self) -> int:
        """Finished attempts that failed."""
        ...

    @property
    def consecutive_failures(self) -> int:
        """Failures since the last success."""
        ...

    @property
    def ewma_latency(self) -> float | None:
        """Smoothed seconds per successful non-streamed answer (``None`` before the first)."""
        ...

    @property
    def ewma_ttft(self) -> float | None:
        """Smoothed seconds to the first streamed chunk."""
        ...

    @property
    def ewma_tpot(self) -> float | None:
        """Smoothed seconds per output token of long generations."""
        ...

    @property
    def ewma_error_rate(self) -> float:
        """Smoothed share of recent attempts that failed (0..1)."""
        ...

    @property
    def steady_error_rate(self) -> float:
        """:attr:`ewma_error_rate` over a longer memory (~20 attempts,
        :data:`~multimodel.tracking.stats.STEADY_ALPHA`): the rate a deployment that fails
        now and then fails at, without the swings of the recent one."""
        ...

    @property
    def ewma_failure_latency(self) -> float | None:
        """Smoothed seconds a failed attempt took, a Retry-After it asked for included
        (``None`` before the first failure): what a failure costs before the retry starts."""
        ...

    @property
    def last_failure_at(self) -> float | None:
        """Monotonic time of the last failure."""
        ...

    @property
    def penalty_until(self) -> float:
        """Monotonic time until which the provider asked us to back off (Retry-After)."""
        ...

    @property
    def refused_load(self) -> int | None:
        """The attempts in flight on the deployment when the last request it refused with a
        Retry-After was sent (``None``: not known, e.g. an outcome recorded without
        ``sent_load``)."""
        ...

    def latency_estimate(self, now: float) -> float | None:
        """Peak-EWMA seconds per non-streamed answer: spikes count at once, then decay."""
        ...

    def ttft_estimate(self, now: float) -> float | None:
        """Peak-EWMA seconds to the first streamed chunk."""
        ...

    @property
    def headroom(self) -> float:
        """The share of its rate-limit budget the deployment said it had left (the smallest
        over requests and tokens, from its last response's headers; 1.0 when unknown)."""
        ...

    @property
    def headroom_until(self) -> float:
        """Monotonic time until which :attr:`headroom` holds (the budget's reset)."""
        ...

    @property
    def congestion(self) -> float:
        """The fraction of the idle latency each request in flight adds, learned from the
        answers (see :mod:`multimodel.tracking.congestion`)."""
        ...

    @property
    def load_scale(self) -> float:
        """``1 / (1 + congestion × load)``, the load the latency estimate was measured at:
        times the estimate, the latency of a request sent to an idle deployment."""
        ...

    @property
    def latency_level(self) -> float:
        """The idle latency averaged over the last ~250 answers (see
        :attr:`~multimodel.tracking.congestion.CongestionFit.level`; 0.0 before any)."""
        ...

    @property
    def latency_level_error(self) -> float:
        """The standard error of :attr:`latency_level` (``inf`` while it is unknown)."""
        ...

    @property
    def length_share(self) -> float:
        """The fixed overhead's share of the recent latency (see
        :mod:`multimodel.tracking.lengths`; 1.0 while the latency does not depend on length)."""
        ...

    @property
    def length_per_token(self) -> float:
        """The share of the recent latency each requested output token adds (0.0 while the
        latency does not depend on length): ``length_share + length_per_token × max_tokens``
        takes the recent latency to a request of ``max_tokens``."""
        ...

    def latency_recent(self, stream: bool = False) -> float | None:
        """The peak-EWMA estimate as of its last sample, without the idle decay (time to
        first chunk when ``stream``): weighs samples by their age, not their count, so one
        answer after a long pause moves it most of the way."""
        ...

    @property
    def latency_peak(self) -> float | None:
        """:meth:`latency_recent` (non-streamed) as a plain value: a strategy scoring every
        candidate reads it, and :attr:`latency_at`, without two method calls per candidate."""
        ...

    @property
    def latency_at(self) -> float:
        """The time of :attr:`latency_peak`'s last update: ``latency_estimate(now) ==
        latency_peak * exp((latency_at - now) / RANK_TAU)`` for ``now > latency_at``."""
        ...


RANK_TAU = 10.0
"""The ``tau`` of the rank keys below: ``estimate(now) == exp(rank - now / RANK_TAU)``."""


class RankedStats(DeploymentStats, Protocol):
    """Time-invariant sort keys over the peak-EWMA estimates (see :meth:`PeakEWMA.rank`).

    Ordering deployments by a rank orders them by the estimate at any later instant, so a
    strategy can scan a large fleet with C-level list operations (``min`` over the ranks)
    instead of evaluating every estimate. Each is ``None`` before the first measurement.
    """

    @property
    def latency_rank(self) -> float | None:
        """Rank of :meth:`latency_estimate`."""
        ...

    @property
    def stream_rank(self) -> float | None:
        """Rank of the estimate a stream is scored by: time to first token once measured,
        else the non-streamed latency (as :func:`~multimodel.strategies.response_time.
        expected_latency` does)."""
        ...


class StatsView(Protocol):
    """Read-only access to live stats, by deployment name."""

    def get(self, deployment: str) -> DeploymentStats:
        """Stats of one deployment (a zeroed record for one never seen).

        The :class:`Tracker` returns the same live record for a name every time, so a strategy
        may keep the records of its candidates (see :class:`RankedStats`)."""
        ...

    def now(self) -> float:
        """The tracker's monotonic clock."""
        ...
