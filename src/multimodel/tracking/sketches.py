"""Bounded-memory statistics primitives: a quantile sketch and moving averages.

:class:`QuantileSketch` follows DDSketch (Masson, Rim and Lee, "DDSketch: A Fast and
Fully-Mergeable Quantile Sketch with Relative-Error Guarantees", VLDB 2019). A positive value
``x`` falls in the bucket with key ``k = ceil(log(x) / log(gamma))``, where
``gamma = (1 + alpha) / (1 - alpha)``; that bucket covers ``(gamma**(k-1), gamma**k]`` and
reports ``2 * gamma**k / (gamma + 1)``, which is within relative error ``alpha`` of every value
in it. The sketch keeps a count per key, so:

* **Accuracy.** ``quantile(q)`` reports the value at zero-based rank ``floor(q * (n - 1))`` of
  the values added (in sorted order) within relative error ``alpha`` (1% by default), whatever
  the distribution, as long as no buckets were collapsed below that rank (see below). Ranks
  ``0`` and ``n - 1`` report the exact ``min`` and ``max``, and every result is clamped to them.
* **Zero bucket.** Values ``<= min_indexable`` (including ``0.0``) are counted in one zero
  bucket reported as ``0.0``; negative, NaN and infinite values raise :class:`ValueError`.
* **Bounded memory.** A latency stream spanning ``1 ms .. 1000 s`` needs about 700 buckets at
  1% accuracy. If a stream ever needs more than ``max_buckets``, the lowest buckets are
  collapsed into one, and later values below it are counted there too: the high quantiles
  (p50, p95, p99: what latency tracking watches) keep their guarantee, only the lowest ranks
  lose it. Memory never exceeds ``max_buckets`` dict entries however many values are added.
* **Mergeable.** Sketches with the same ``alpha`` and ``min_indexable`` merge exactly: the
  merge equals one sketch that saw both streams.

:class:`EWMA` is a plain exponentially weighted moving average. :class:`PeakEWMA` is the
"peak EWMA" latency estimator of Twitter's Finagle load balancer: a sample above the estimate
replaces it at once (react to slowness immediately), a sample below pulls the estimate toward
it with weight ``1 - exp(-elapsed / tau)`` (forgive slowly, in wall time rather than per
sample). Time is always passed in; nothing here reads a clock.

Nothing here is thread-safe: the caller serialises access (the tracker holds its lock).
"""

from __future__ import annotations

import heapq
import math
import sys
from collections.abc import Iterable, Sequence

__all__ = ["EWMA", "PeakEWMA", "QuantileSketch"]

_log = math.log
_exp = math.exp
_ceil = math.ceil
_NO_FLOOR = -(1 << 62)  # below any key a double can produce


class QuantileSketch:
    """DDSketch-style quantile sketch with relative accuracy ``alpha`` and bounded memory.

    Args:
        alpha: relative accuracy of every reported quantile, in ``(0, 1)``; 0.01 means 1%.
        max_buckets: most log buckets kept; beyond it the lowest buckets are collapsed.
        min_indexable: values at or below it (and zeros) go to the zero bucket, reported as 0.
    """

    __slots__ = (
        "_bins",
        "_count",
        "_floor_key",
        "_inv_log_gamma",
        "_keys",
        "_log_gamma",
        "_max",
        "_min",
        "_min_indexable",
        "_rep_log_offset",
        "_sum",
        "_zero_count",
        "alpha",
        "max_buckets",
    )

    def __init__(
        self,
        alpha: float = 0.01,
        *,
        max_buckets: int = 2048,
        min_indexable: float = sys.float_info.min,
    ) -> None:
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
        if max_buckets < 1:
            raise ValueError(f"max_buckets must be at least 1, got {max_buckets!r}")
        if not 0.0 < min_indexable < math.inf:
            raise ValueError(f"min_indexable must be positive and finite, got {min_indexable!r}")
        self.alpha = alpha
        self.max_buckets = max_buckets
        gamma = (1.0 + alpha) / (1.0 - alpha)
        self._log_gamma = math.log(gamma)
        self._inv_log_gamma = 1.0 / self._log_gamma
        self._rep_log_offset = math.log(2.0 / (gamma + 1.0))  # log of the bucket's reported value
        self._min_indexable = min_indexable
        self._bins: dict[int, int] = {}  # key -> count
        self._keys: list[int] | None = None  # sorted keys, cached between new buckets
        self._floor_key = _NO_FLOOR
        self._zero_count = 0
        self._count = 0
        self._sum = 0.0
        self._min = math.inf
        self._max = -math.inf

    def add(self, value: float, count: int = 1) -> None:
        """Record ``value`` (``count`` times). Raises :class:`ValueError` if it is negative,
        NaN or infinite, or if ``count < 1``."""
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count!r}")
        if value > self._min_indexable:
            try:
                key = _ceil(_log(value) * self._inv_log_gamma)
            except OverflowError:  # +inf
                raise ValueError(f"cannot add a non-finite value: {value!r}") from None
            bins = self._bins
            current = bins.get(key)
            if current is None:
                self._new_bucket(key, count)
            else:
                bins[key] = current + count
        elif value >= 0.0:
            self._zero_count += count
        else:
            raise ValueError(f"cannot add a negative or NaN value: {value!r}")
        self._count += count
        self._sum += value * count
        if value < self._min:  # noqa: PLR1730 -- min() costs ~150 ns more on the hot path
            self._min = value
        if value > self._max:  # noqa: PLR1730
            self._max = value

    def add_all(self, values: Iterable[float]) -> None:
        """:meth:`add` each of ``values`` once, in order: the same sketch, faster (the state
        is kept in locals). A bad value raises as :meth:`add` does, the ones before it
        added."""
        bins = self._bins
        inv = self._inv_log_gamma
        floor = self._min_indexable
        count, total, low, high = self._count, self._sum, self._min, self._max
        try:
            for value in values:
                if value > floor:
                    try:
                        key = _ceil(_log(value) * inv)
                    except OverflowError:  # +inf
                        raise ValueError(f"cannot add a non-finite value: {value!r}") from None
                    current = bins.get(key)
                    if current is None:
                        self._new_bucket(key, 1)  # keeps the same bins dict
                    else:
                        bins[key] = current + 1
                elif value >= 0.0:
                    self._zero_count += 1
                else:
                    raise ValueError(f"cannot add a negative or NaN value: {value!r}")
                count += 1
                total += value
                if value < low:  # noqa: PLR1730 -- as in add
                    low = value
                if value > high:  # noqa: PLR1730
                    high = value
        finally:
            self._count, self._sum, self._min, self._max = count, total, low, high

    def _new_bucket(self, key: int, count: int) -> None:
        bins = self._bins
        if key < self._floor_key:  # below the collapsed bucket: counted there
            bins[self._floor_key] += count
            return
        bins[key] = count
        self._keys = None
        if len(bins) > self.max_buckets:
            self._collapse()

    def _collapse(self) -> None:
        bins = self._bins
        excess = len(bins) - self.max_buckets
        if excess <= 0:
            return
        lowest = heapq.nsmallest(excess + 1, bins)
        target = lowest[-1]
        bins[target] += sum(bins.pop(key) for key in lowest[:-1])
        self._floor_key = target
        self._keys = None

    def quantile(self, q: float) -> float | None:
        """The value at rank ``floor(q * (count - 1))``, within relative error ``alpha``.

        ``q`` must be in ``[0, 1]``; returns ``None`` when the sketch is empty."""
        return self.quantiles((q,))[0]

    def quantiles(self, qs: Sequence[float]) -> list[float | None]:
        """:meth:`quantile` for each of ``qs``, in one pass over the buckets."""
        for q in qs:
            if not 0.0 <= q <= 1.0:
                raise ValueError(f"quantile must be in [0, 1], got {q!r}")
        if self._count == 0:
            return [None] * len(qs)
        last = self._count - 1
        out: list[float | None] = [None] * len(qs)
        keys = self._keys
        if keys is None:
            keys = self._keys = sorted(self._bins)
        bins, low, high = self._bins, self._min, self._max
        seen, i = self._zero_count, 0
        for rank, position in sorted((math.floor(q * last), p) for p, q in enumerate(qs)):
            if rank == 0 or rank == last:  # the extremes are known exactly
                out[position] = low if rank == 0 else high
            elif rank < self._zero_count:  # in the zero bucket (reported as 0, clamped to min)
                out[position] = max(low, 0.0)
            else:
                while seen <= rank:  # the rank lies in a later bucket
                    seen += bins[keys[i]]
                    i += 1
                out[position] = min(max(self._representative(keys[i - 1]), low), high)
        return out

    def _representative(self, key: int) -> float:
        try:
            return math.exp(key * self._log_gamma + self._rep_log_offset)
        except OverflowError:  # only for values within alpha of the largest double
            return self._max

    @property
    def count(self) -> int:
        """How many values were added."""
        return self._count

    @property
    def sum(self) -> float:
        """Exact sum of the values added."""
        return self._sum

    @property
    def min(self) -> float | None:
        """Exact smallest value added (``None`` when empty)."""
        return self._min if self._count else None

    @property
    def max(self) -> float | None:
        """Exact largest value added (``None`` when empty)."""
        return self._max if self._count else None

    @property
    def mean(self) -> float | None:
        """Exact mean of the values added (``None`` when empty)."""
        return self._sum / self._count if self._count else None

    @property
    def zero_count(self) -> int:
        """Values counted in the zero bucket (``<= min_indexable``)."""
        return self._zero_count

    def merge(self, other: QuantileSketch) -> None:
        """Add everything ``other`` saw to this sketch (``other`` is left unchanged).

        Both must share ``alpha`` and ``min_indexable``; the result keeps this sketch's
        ``max_buckets`` bound."""
        if not isinstance(other, QuantileSketch):
            raise TypeError(f"can only merge a QuantileSketch, not {type(other).__name__}")
        if other.alpha != self.alpha or other._min_indexable != self._min_indexable:
            raise ValueError("can only merge sketches with the same alpha and min_indexable")
        if other._count == 0:
            return
        bins = self._bins
        for key, count in other._bins.items():
            bins[key] = bins.get(key, 0) + count
        floor = max(self._floor_key, other._floor_key)
        if floor != _NO_FLOOR:
            below = [key for key in bins if key < floor]
            bins[floor] = bins.get(floor, 0) + sum(bins.pop(key) for key in below)
            self._floor_key = floor
        self._keys = None
        self._collapse()
        self._zero_count += other._zero_count
        self._count += other._count
        self._sum += other._sum
        self._min = min(self._min, other._min)
        self._max = max(self._max, other._max)

    def clear(self) -> None:
        """Forget every value (the configuration stays)."""
        self._bins.clear()
        self._keys = None
        self._floor_key = _NO_FLOOR
        self._zero_count = 0
        self._count = 0
        self._sum = 0.0
        self._min = math.inf
        self._max = -math.inf

    def __len__(self) -> int:
        """Number of log buckets in use (at most ``max_buckets``; the zero bucket is apart)."""
        return len(self._bins)

    def __repr__(self) -> str:
        return f"QuantileSketch(alpha={self.alpha!r}, count={self._count}, buckets={len(self)})"


class EWMA:
    """Exponentially weighted moving average: ``value += alpha * (x - value)``.

    The first sample sets the value; ``alpha`` in ``(0, 1]`` is the newest sample's weight."""

    __slots__ = ("_value", "alpha")

    def __init__(self, alpha: float = 0.3) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha!r}")
        self.alpha = alpha
        self._value: float | None = None

    def update(self, x: float) -> float:
        """Fold in sample ``x`` (finite) and return the new average."""
        if not math.isfinite(x):
            raise ValueError(f"sample must be finite, got {x!r}")
        previous = self._value
        value = x if previous is None else previous + self.alpha * (x - previous)
        self._value = value
        return value

    @property
    def value(self) -> float | None:
        """The current average (``None`` before the first sample)."""
        return self._value

    def reset(self) -> None:
        """Forget every sample."""
        self._value = None


class PeakEWMA:
    """Finagle-style peak EWMA of a latency, decaying in (injected) time with constant ``tau``.

    A sample above the estimate replaces it immediately. A sample below it moves the estimate
    to ``sample + (estimate - sample) * exp(-elapsed / tau)``, ``elapsed`` being the seconds
    since the previous update, so after a spike the excess halves every ``tau * ln 2`` seconds
    of lower samples and never drops below them. Samples at the same instant do not decay it.
    """

    __slots__ = ("_stamp", "_value", "tau")

    def __init__(self, tau: float = 10.0) -> None:
        if not 0.0 < tau < math.inf:
            raise ValueError(f"tau must be positive and finite, got {tau!r}")
        self.tau = tau
        self._value: float | None = None
        self._stamp = 0.0

    def update(self, x: float, now: float) -> float:
        """Fold in sample ``x`` (finite, ``>= 0``) observed at time ``now``; return the estimate.

        A ``now`` earlier than the previous update counts as no time elapsed."""
        return self.fold(x, now)[0]

    def fold(self, x: float, now: float) -> tuple[float, float, float]:
        """:meth:`update`, returning ``(estimate, stamp, rank())`` in one call (the tracker
        keeps all three per answer: one call instead of three)."""
        if not 0.0 <= x < math.inf:
            raise ValueError(f"sample must be finite and not negative, got {x!r}")
        current = self._value
        if current is None or x >= current:
            value = x
        else:
            elapsed = now - self._stamp
            value = x + (current - x) * (_exp(-elapsed / self.tau) if elapsed > 0.0 else 1.0)
        self._value = value
        stamp = self._stamp
        if now > stamp or current is None:
            self._stamp = stamp = now
        return value, stamp, (_log(value) + stamp / self.tau if value > 0.0 else -math.inf)

    def value(self, now: float | None = None) -> float | None:
        """The estimate (``None`` before the first sample).

        Without ``now``: the estimate as of the last update. With ``now``: as Finagle does, an
        idle estimate also decays toward zero, ``estimate * exp(-idle / tau)``, so a backend
        that was slow and then left alone is eventually tried again. Read-only."""
        current = self._value
        if current is None or now is None:
            return current
        idle = now - self._stamp
        return current * math.exp(-idle / self.tau) if idle > 0.0 else current

    @property
    def stamp(self) -> float:
        """The time of the last update (0.0 before the first)."""
        return self._stamp

    def rank(self) -> float | None:
        """A time-invariant sort key: ``log(value(now)) + now / tau`` for any ``now`` at or
        after the last update (``-inf`` for an estimate of 0, ``None`` before the first sample).

        Idle decay multiplies every estimate by the same ``exp(-elapsed / tau)``, so ordering
        estimators by ``rank()`` orders them by ``value(now)`` at every later ``now``: a
        strategy can rank a large fleet without reading the clock or calling ``exp`` per
        deployment, and ``exp(rank - now / tau)`` recovers the estimate."""
        current = self._value
        if current is None:
            return None
        return _log(current) + self._stamp / self.tau if current > 0.0 else -math.inf

    def reset(self) -> None:
        """Forget every sample."""
        self._value = None
        self._stamp = 0.0
