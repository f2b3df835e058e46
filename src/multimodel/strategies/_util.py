"""Small helpers shared by the strategies: a thread-safe random source, tie-breaking picks over
score lists, and a cache of what a strategy derives from a candidate list.

Strategies that look at every candidate (``least_connections``, ``response_time``,
``intelligent``) keep their per-call work in C-level list operations (``map`` over the
tracker's records, ``min``, ``list.count``, ``list.index``): on a 50-deployment fleet a Python
loop that reads each record costs tens of microseconds, a C-level scan a few.
"""

from __future__ import annotations

import contextlib
import math
import random
import threading
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any, Generic, TypeVar

from ..providers.base import Endpoint
from ..tracking.stats import DeploymentStats, StatsView, Tracker

__all__ = [
    "ERROR_FLOOR",
    "ERROR_TAU",
    "PROBE_EVERY",
    "SCORE_TIE",
    "Fleet",
    "FleetCache",
    "LockedRandom",
    "Picker",
    "ProbeScores",
    "Prober",
    "forgiven_error_rate",
    "pick_max_index",
    "pick_min",
    "pick_min_index",
    "pick_tied",
    "picker",
]

_T = TypeVar("_T")

ERROR_TAU = 2.0
"""Seconds for the error rate of a deployment that gets no traffic to be forgiven by 1/e, per
consecutive failure (up to 10), half of it once an attempt succeeded again: one failure is
forgiven in seconds, a run of them slowly."""
ERROR_FLOOR = 0.02
"""A forgiven error rate below this is exactly zero (one failure: ~5 s without another)."""
PROBE_EVERY = 8
"""Requests of a group between two looks for a deployment due a probe."""
SCORE_TIE = 1e-12
"""Scores this close count as a tie (float noise between equal candidates)."""
_PROBE_MAX_SHIFT = 6  # the wait between probes doubles per consecutive failure, up to 64x


def forgiven_error_rate(cell: DeploymentStats, now: float) -> float:
    """The recent error rate of ``cell``, forgiven over the time since its last failure.

    A deployment that gets no traffic has no new samples to lower its error rate; forgiving it
    with time (and to exactly zero below :data:`ERROR_FLOOR`) lets it compete again."""
    err = cell.ewma_error_rate
    if err:
        last = cell.last_failure_at
        if last is not None:
            failures = cell.consecutive_failures
            # Per failure in a row; halved once an attempt succeeded again (a probe, say).
            tau = ERROR_TAU * min(failures, 10) if failures else ERROR_TAU / 2
            err *= math.exp(-max(0.0, now - last) / tau)
        if err < ERROR_FLOOR:
            return 0.0
    return err


class ProbeScores(dict[str, float]):
    """The scores of a probe (``{name: -1.0}``) and ``note``, the reason the routing trace
    shows (``RoutingTrace.notes``)."""

    __slots__ = ("note",)
    explains = True
    """The routing trace defers its ``note`` (see the dispatch)."""

    def __init__(self, name: str, note: str) -> None:
        super().__init__({name: -1.0})
        self.note = note


def probe_scores(endpoint: Endpoint, stats: StatsView, now: float) -> ProbeScores:
    """What a strategy reports for a probe of ``endpoint`` chosen by :class:`Prober`."""
    cell = stats.get(endpoint.name)
    failed = cell.last_failure_at
    ago = "" if failed is None else f", {max(0.0, now - failed):.1f} s ago"
    return ProbeScores(
        endpoint.name,
        f"probing {endpoint.name}: its last attempt failed "
        f"({cell.consecutive_failures} in a row{ago})",
    )


class Prober:
    """Bounded probes, so that a deployment that failed is never starved.

    A deployment whose last attempt failed may lose every comparison (its error penalty, or no
    latency measured yet), and so never get the request that would show it recovered. Every
    :data:`PROBE_EVERY` requests, and only while some deployment is erring, :meth:`due` looks
    for a candidate whose last attempt failed, that has nothing in flight and no
    ``Retry-After`` hold, and that has waited ``PROBE_EVERY`` requests times 2 per further
    consecutive failure (at most 64x) since the failure: that candidate gets the request. So a
    deployment that stops failing is chosen again within ``PROBE_EVERY * (2 + 64)`` requests,
    one probe at a time, and one that keeps failing gets an ever smaller share.
    """

    __slots__ = ("_seen", "count", "every")

    def __init__(self, every: int = PROBE_EVERY) -> None:
        self.every = every
        #: Requests seen. A strategy may count one itself instead of calling :meth:`due`
        #: while nothing is erring (``Tracker.erring == 0``): then no probe can be due.
        self.count = 0
        self._seen: dict[str, tuple[float | None, int]] = {}

    def due(self, candidates: Sequence[Endpoint], stats: StatsView, now: float) -> Endpoint | None:
        """The candidate to probe with this request, if one is due (approximate under threads:
        a lost update delays a probe by a few requests)."""
        self.count = count = self.count + 1
        if count % self.every or (isinstance(stats, Tracker) and not stats.erring):
            return None
        seen = self._seen
        every = self.every
        for c in candidates:
            cell = stats.get(c.name)
            failures = cell.consecutive_failures
            if not failures:
                continue
            failed_at = cell.last_failure_at
            entry = seen.get(c.name)
            if entry is None or entry[0] != failed_at:
                seen[c.name] = (failed_at, count)
                continue
            if cell.in_flight or cell.penalty_until > now:
                continue
            if count - entry[1] >= every << min(failures - 1, _PROBE_MAX_SHIFT):
                seen[c.name] = (failed_at, count)
                return c
        return None


class LockedRandom:
    """A seeded ``random.Random`` safe to share between threads (its state is guarded)."""

    __slots__ = ("_lock", "_rng", "draw")

    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        #: ``Random.random`` itself, lock-free (see :meth:`sample2`): ``int(draw() * n)`` is
        #: :meth:`index` without a Python call, for a strategy's per-choice path.
        self.draw = self._rng.random

    def random(self) -> float:
        """A float in [0, 1)."""
        with self._lock:
            return self._rng.random()

    def randrange(self, n: int) -> int:
        """An int in [0, n)."""
        with self._lock:
            return self._rng.randrange(n)

    def index(self, n: int) -> int:
        """An int in [0, n), lock-free (see :meth:`sample2`)."""
        return int(self._rng.random() * n)

    def sample2(self, n: int) -> tuple[int, int]:
        """Two distinct indexes in [0, n) (n >= 2).

        Lock-free: ``Random.random`` is one C call, atomic under the GIL (and locked inside on
        free-threaded builds), and is far cheaper than two locked ``randrange`` calls; the
        bias of ``int(random() * n)`` is below ``n / 2**53``."""
        random_ = self._rng.random
        a = int(random_() * n)
        b = int(random_() * (n - 1))
        return a, b + (b >= a)


def pick_min(
    candidates: Sequence[Endpoint], scores: Sequence[float], rng: LockedRandom
) -> Endpoint:
    """The candidate with the lowest score; ties broken at random (no herding on list order)."""
    best = min(scores)
    ties = [c for c, s in zip(candidates, scores, strict=True) if s <= best]
    return ties[0] if len(ties) == 1 else ties[rng.randrange(len(ties))]


def pick_tied(values: list[float], best: float, count: int, rng: LockedRandom) -> int:
    """A uniformly random index among the ``count`` (>= 2) entries equal to ``best``."""
    n = len(values)
    if count * 4 >= n:
        # Many ties (e.g. an idle fleet, all at 0 in flight): rejection sampling, fewer than
        # four draws on average, instead of listing every tie.
        while True:
            i = rng.index(n)
            if values[i] == best:
                return i
    # Few ties: jump to the k-th one with list.index (count < n / 4 C-level searches).
    i = -1
    for _ in range(rng.index(count) + 1):
        i = values.index(best, i + 1)
    return i


def pick_min_index(values: list[float], rng: LockedRandom) -> int:
    """The index of the lowest value (a random one among exact ties), in C-level scans."""
    best = min(values)
    count = values.count(best)
    return values.index(best) if count == 1 else pick_tied(values, best, count, rng)


def pick_max_index(values: list[float], rng: LockedRandom, tolerance: float = 0.0) -> int:
    """The index of the highest value; values within ``tolerance`` of it count as ties, one of
    which is picked at random."""
    best = max(values)
    if not tolerance:
        count = values.count(best)
        return values.index(best) if count == 1 else pick_tied(values, best, count, rng)
    floor = best - tolerance
    count = sum(map(floor.__le__, values))
    if count == 1:
        return values.index(best)
    ties = [i for i, v in enumerate(values) if v >= floor]
    return ties[rng.index(len(ties))]


Picker = Callable[[list[float]], Sequence[float]]
"""Reads the values at some positions out of a list in one C call (see :func:`picker`)."""


def picker(positions: list[int]) -> Picker:
    """``lambda values: [values[i] for i in positions]``, as one ``itemgetter`` call."""
    if len(positions) == 1:
        (only,) = positions
        return lambda values: (values[only],)
    return itemgetter(*positions)


class Fleet:
    """What every scanning strategy derives from a candidate list: the names (for the trace)
    and, when ``stats`` is the :class:`Tracker`, its live record per candidate (the tracker
    returns the same record for a name forever, so they are read in place)."""

    __slots__ = ("cells", "extra", "measured", "names", "unmeasured")

    def __init__(self, candidates: Sequence[Endpoint], stats: StatsView) -> None:
        self.names = tuple([c.name for c in candidates])
        # Any other StatsView (a user's own, in a simulation) is read through ``get``.
        self.cells = [stats.get(n) for n in self.names] if isinstance(stats, Tracker) else None
        # Whether every candidate has a latency estimate, for non-streamed and for streamed
        # requests: once true it stays true (see ``response_time.measured_ranks``).
        self.measured = [False, False]
        # Per kind: (Tracker.ranked when last looked, positions without a rank key, a picker of
        # those with one, or None).
        self.unmeasured: list[tuple[int, list[int], Picker | None]] = [
            (-1, [], None),
            (-1, [], None),
        ]
        self.extra: dict[object, Any] = {}  # strategy-specific derived data


class FleetCache(Generic[_T]):
    """Data derived from a candidate list, kept between calls.

    The router passes the same candidate tuple while nothing is excluded, so the common case is
    one identity check. Other lists (some candidates excluded for this call) are keyed by their
    names; at most ``size`` of those are kept (the oldest is dropped), so memory stays bounded
    however exclusions come and go. Safe under threads: a lost race builds the data twice.
    """

    __slots__ = ("_build", "_by_names", "_last", "_size")

    def __init__(self, build: Callable[[Sequence[Endpoint], StatsView], _T], size: int = 32):
        self._build = build
        self._size = size
        self._last: tuple[object, object, _T] | None = None
        self._by_names: dict[tuple[str, ...], tuple[object, _T]] = {}

    def get(self, candidates: Sequence[Endpoint], stats: StatsView) -> _T:
        """The data for ``candidates`` (built on first sight)."""
        last = self._last
        if last is not None and last[0] is candidates and last[1] is stats:
            return last[2]
        key = tuple([c.name for c in candidates])
        entry = self._by_names.get(key)
        if entry is None or entry[0] is not stats:
            entry = (stats, self._build(candidates, stats))
            by_names = self._by_names
            if len(by_names) >= self._size:
                # Drop the oldest; another thread may be changing the dict at the same moment.
                with contextlib.suppress(RuntimeError, StopIteration, KeyError):
                    del by_names[next(iter(by_names))]
            by_names[key] = entry
        if type(candidates) is tuple:  # immutable: safe to recognise by identity next time
            self._last = (candidates, stats, entry[1])
        return entry[1]
