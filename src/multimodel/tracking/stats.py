"""The live cost / latency tracker and the read-only view strategies route on.

The :class:`Tracker` keeps one cell per deployment and one per user and per tag. Recording an
outcome is O(1) under one lock: counters, EWMAs, a peak-EWMA, a bounded quantile sketch and
fixed-size sliding windows. Memory does not grow with the number of requests: sketches have a
bucket cap, windows a fixed ring, and the user / tag cells are capped (least recently used
ones are folded into ``"(other)"``). Model and provider figures are merged from the deployment
cells when a snapshot is taken, so the hot path pays for one cell, not four.

Strategies receive the tracker as a :class:`StatsView` and read cells without taking the lock:
each field is one float or int, so a reader sees a value that was true a moment ago, which is
all routing needs, and routing stays lock-free.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from ._cells import _Cell, _GroupCell
from ._snapshots import deployment_snapshot, group_snapshot, merged_snapshot
from .headroom import parse_headroom
from .outcome import ABANDONED, CANCELLED, Outcome, unpriced
from .view import RANK_TAU, DeploymentStats, RankedStats, StatsView

if TYPE_CHECKING:  # the snapshot's pydantic models load with the first snapshot
    from .snapshot import StatsSnapshot

__all__ = [
    "ABANDONED",
    "CANCELLED",
    "RANK_TAU",
    "RERANK_RING",
    "STEADY_ALPHA",
    "DeploymentStats",
    "RankedStats",
    "StatsView",
    "Tracker",
]

_ALPHA = 0.3  # EWMA weight of the newest sample: reacts within a few requests, smooths jitter
STEADY_ALPHA = 0.05
"""EWMA weight of the newest attempt in :attr:`DeploymentStats.steady_error_rate` (~20
attempts): the recent error rate (weight 0.3) of a deployment failing 30 % of the time swings
by ±0.19 around it (see ``adaptive``'s failure cost)."""
_ERROR_FLOOR = 1e-6  # an error rate decayed below this is 0: ~36 successes after one failure
_MIN_TPOT_TOKENS = 16  # below this, per-token time is mostly fixed overhead: do not sample it
MAX_GROUPS = 10_000  # user / tag cells kept; older ones fold into "(other)"
OTHER = "(other)"
_PENDING = 64  # latencies kept per deployment before they are folded into its sketch
_INF = math.inf
RERANK_RING = 64
"""How many of the records last re-ranked :attr:`Tracker.reranks` names."""


class Tracker:
    """Thread-safe live statistics; one per client.

    Args:
        monotonic: the clock (seconds) used for windows, decay and penalties.
    """

    def __init__(self, monotonic: Callable[[], float]) -> None:
        self._lock = threading.Lock()
        self._cells: dict[str, _Cell] = {}
        self._meta: dict[str, tuple[str, str]] = {}  # deployment -> (model, provider)
        self._users: OrderedDict[str, _GroupCell] = OrderedDict()
        self._tags: OrderedDict[str, _GroupCell] = OrderedDict()
        self._monotonic = monotonic
        self._listeners: list[Callable[[Outcome], None]] = []
        # Quantile bounds per (deployment, q, z), with the answer count they were read at.
        self._bounds: dict[tuple[str, float, float], tuple[int, float | None]] = {}
        #: Deployments whose recent error rate is not zero (strategies skip reading every
        #: deployment's error rate while this is 0).
        self.erring = 0
        #: Rank keys set so far (``latency_rank`` and ``stream_rank`` of every record); it only
        #: grows, so a strategy knows its candidates' unmeasured ones are unchanged while it
        #: stays the same.
        self.ranked = 0
        #: Rank keys re-set, counted, and the last :data:`RERANK_RING` records they were set on:
        #: ``reranks[n % RERANK_RING]`` is the record of the ``n``-th (``n < reranked``), so a
        #: strategy that keeps rank keys between choices re-reads only the records changed since.
        self.reranked = 0
        self.reranks: list[DeploymentStats | None] = [None] * RERANK_RING

    # -- the view strategies read --------------------------------------------------------------

    def now(self) -> float:
        """See :meth:`StatsView.now`."""
        return self._monotonic()

    def get(self, deployment: str) -> DeploymentStats:
        """See :meth:`StatsView.get`."""
        cell = self._cells.get(deployment)
        return cell if cell is not None else self._cell(deployment)

    # -- recording -----------------------------------------------------------------------------

    def register(self, deployment: str, model: str, provider: str) -> None:
        """Declare a deployment so snapshots list it (and group it) before its first request."""
        self._meta[deployment] = (model, provider)
        self._cell(deployment)

    def started(self, deployment: str) -> int:
        """An attempt on ``deployment`` was sent; returns the attempts that were in flight on
        it before this one (its load, :attr:`Outcome.sent_load
        <multimodel.tracking.outcome.Outcome.sent_load>`)."""
        cell = self._cells.get(deployment) or self._cell(deployment)
        lock = self._lock
        lock.acquire()  # rather than ``with``: half the instructions, on every attempt
        try:
            load = cell.in_flight
            cell.sent_loads.append(load)
            cell.in_flight = load + 1
        finally:
            lock.release()
        return load

    def latency_quantile(self, deployment: str, q: float) -> float | None:
        """The ``q`` quantile of a deployment's successful latencies (``None`` before any)."""
        cell = self._cells.get(deployment)
        if cell is None:
            return None
        with self._lock:
            return cell.latency_sketch.quantile(q)

    def latency_quantile_lower(self, deployment: str, q: float, z: float) -> float | None:
        """A lower confidence bound of a deployment's ``q`` latency quantile (``None`` before
        any answer): the sketch read at ``q - z * sqrt(q (1 - q) / n)`` for ``n`` answers (the
        normal approximation of the order statistic's binomial rank), so a few slow answers
        are not yet proof that the quantile is high."""
        cell = self._cells.get(deployment)
        if cell is None:
            return None
        key = (deployment, q, z)
        with self._lock:
            sketch = cell.latency_sketch
            n = sketch.count
            if not n:
                return None
            found = self._bounds.get(key)
            if found is not None and found[0] == n:  # no answer since: read per call, kept
                return found[1]
            value = sketch.quantile(max(0.0, q - z * math.sqrt(q * (1.0 - q) / n)))
            self._bounds[key] = (n, value)
            return value

    def observe_headers(self, deployment: str, headers: Mapping[str, str]) -> None:
        """Read a response's rate-limit headers (see :mod:`multimodel.tracking.headroom`):
        the deployment's headroom, until its budget resets."""
        cell = self._cells.get(deployment) or self._cell(deployment)
        skip = cell.headroom_skip
        if skip:
            # Reading costs a few header lookups (~1.6 us each on httpx.Headers): a deployment
            # that sends no budget is looked at again every 64 answers, one with half its budget
            # left every 4th; one near its limit at every answer.
            cell.headroom_skip = skip - 1
            return
        reading = parse_headroom(headers)
        if reading is None:
            cell.headroom_skip = 63
            return
        # Plain stores, read lock-free by strategies (a torn pair is one stale reading).
        cell.headroom = reading[0]
        cell.headroom_until = self._monotonic() + reading[1]
        cell.headroom_skip = 3 if reading[0] > 0.5 else 0

    def cancelled(self, deployment: str) -> None:
        """An attempt was abandoned by the caller (cancelled); only release its in-flight slot."""
        cell = self._cells.get(deployment) or self._cell(deployment)
        with self._lock:
            _release(cell)

    def record(self, outcome: Outcome, headers: Mapping[str, str] | None = None) -> None:
        """An attempt finished (successfully or not): update stats, then notify listeners.

        ``headers``: the answer's response headers, read as :meth:`observe_headers` does
        first (one call per answer instead of two)."""
        name = outcome.deployment
        cell = self._cells.get(name) or self._cell(name)
        if headers is not None:
            skip = cell.headroom_skip
            if skip:  # observe_headers' common case, inlined
                cell.headroom_skip = skip - 1
            else:
                self.observe_headers(name, headers)
        now = self._monotonic()
        usage = outcome.usage
        if outcome.error == ABANDONED:
            # A cancelled hedge: not a failure of the deployment, but it cost its prompt.
            with self._lock:
                _release(cell)
                if outcome.cost is not None:
                    cell.cost += outcome.cost
                else:  # the provider processed (and bills) the prompt at an unknown price
                    cell.unpriced += 1
            for listener in self._listeners:
                listener(outcome)
            return
        # A stream the caller stopped early (or whose deadline passed) is a request the
        # provider billed, but neither a success nor a failure, and no latency sample.
        stopped = outcome.error == CANCELLED
        load = None
        lock = self._lock
        lock.acquire()  # rather than ``with``: half the instructions, on every answer
        try:
            if not outcome.cached:  # _release, inlined: once per answer (max() is a call)
                in_flight = cell.in_flight
                cell.in_flight = in_flight - 1 if in_flight > 0 else 0
                loads = cell.sent_loads
                load = loads.popleft() if loads else None
            cell.requests += 1
            if not stopped:
                window = cell.win_requests
                # MultiWindow.add's hot path, inlined (once per answer): the same narrowest slot
                # as the pending events.
                if window._nested and int(now // window._width) == window._index:
                    window._count += 1
                    window._value += outcome.latency
                else:
                    window.add(now, 1, outcome.latency)
            output = None
            if usage is not None:
                # Each field read once, from the model's __dict__: a pydantic attribute read
                # passes through BaseModel's __getattr__ hook (see tracking.cost).
                counts = usage.__dict__
                output = counts["output_tokens"]
                cell.input_tokens += counts["input_tokens"]
                cell.output_tokens += output
                cell.cache_read_tokens += counts["cache_read_tokens"]
            if outcome.cost is not None:
                cell.cost += outcome.cost
            elif unpriced(outcome):
                cell.unpriced += 1
            if outcome.ok:
                cell.successes += 1
                cell.consecutive_failures = 0
                steady = cell.steady_error_rate
                if steady:
                    steady *= 1 - STEADY_ALPHA
                    cell.steady_error_rate = steady if steady > _ERROR_FLOOR else 0.0
                rate = cell.ewma_error_rate
                if rate:
                    rate *= 1 - _ALPHA
                    if rate < _ERROR_FLOOR:
                        rate = 0.0
                        self.erring -= 1
                    cell.ewma_error_rate = rate
                if outcome.cached:
                    cell.cached += 1
                else:
                    self._timing(cell, outcome, now, load, output)
            elif not stopped:
                cell.failures += 1
                cell.consecutive_failures += 1
                if not cell.ewma_error_rate:
                    self.erring += 1
                cell.ewma_error_rate += _ALPHA * (1 - cell.ewma_error_rate)
                cell.steady_error_rate += STEADY_ALPHA * (1 - cell.steady_error_rate)
                cell.last_failure_at = now
                # What a failure costs before the retry can start (adaptive weighs failures by
                # it): a 429 or 503 with Retry-After costs the wait it asked for too, or a
                # rate-limited deployment that refuses in milliseconds would look cheap to
                # fail on once its hold is over (40 seeds, paired, with it against without:
                # cheap_rate_limited p95 -0.37 +/- 0.11 %; bursty_90 -0.10 +/- 0.11 %,
                # success -0.03 +/- 0.06 points).
                lost = cell.ewma_failure_latency
                took = outcome.latency + (outcome.retry_after or 0.0)
                cell.ewma_failure_latency = took if lost is None else lost + _ALPHA * (took - lost)
                err = outcome.error or "Error"
                cell.errors[err] = cell.errors.get(err, 0) + 1
                cell.win_errors.add(now)
                if outcome.retry_after:
                    cell.penalty_until = max(cell.penalty_until, now + outcome.retry_after)
                    cell.refused_load = outcome.sent_load
            if outcome.user is not None:
                self._group(self._users, outcome.user, outcome, now)
            for tag in outcome.tags:
                self._group(self._tags, tag, outcome, now)
        finally:
            lock.release()
        if outcome.model and name not in self._meta:
            self._meta[name] = (outcome.model, outcome.provider)
        for listener in self._listeners:
            listener(outcome)

    def _timing(
        self, cell: _Cell, outcome: Outcome, now: float, load: int | None, output: int | None
    ) -> None:
        """Fold a success's latency into the cell (``output``: its output tokens, if known)."""
        latency = outcome.latency
        if outcome.stream:
            ttft = outcome.ttft
            if ttft is not None:
                cell.ewma_ttft = _ewma(cell.ewma_ttft, ttft)
                cell.peak_ttft.update(ttft, now)
                if cell.stream_rank is None:
                    self.ranked += 1
                cell.stream_rank = cell.peak_ttft.rank()
                cell.ttft_sketch.add(ttft)
            generation = latency - (ttft or 0.0)
        else:
            ewma = cell.ewma_latency  # _ewma, inlined: once per answer
            cell.ewma_latency = latency if ewma is None else ewma + _ALPHA * (latency - ewma)
            sample = latency
            if output is not None:
                # Latency against output length: the peak estimate is fed the answer taken to
                # the recent length (one long answer is not a slow deployment), the plain EWMA
                # stays linear in the lengths (see tracking.lengths).
                lengths = cell.length_fit
                if lengths.add(output, latency, outcome.requested_tokens):
                    if not cell.length_per_token:  # a slope found: t-bar from the EWMA
                        lengths.start(cell.ewma_latency)
                    cell.length_share, cell.length_per_token = lengths.share, lengths.per_token
                    sample = lengths.normalized(output, latency)
                elif cell.length_per_token:  # the lengths stopped varying
                    cell.length_share, cell.length_per_token = 1.0, 0.0
            cell.latency_peak, cell.latency_at, rank = cell.peak_latency.fold(sample, now)
            if cell.latency_rank is None:
                self.ranked += 1
            cell.latency_rank = rank
            if load is not None:
                fit = cell.congestion_fit
                if fit.add(load, latency):  # a batch completed: the line and level solved
                    cell.congestion, cell.latency_level, cell.latency_level_error = (
                        fit.congestion,
                        fit.level,
                        fit.level_error,
                    )
                cell.load_scale = fit.scale
            if cell.ewma_ttft is None:  # streams are scored by latency until a TTFT is known
                if cell.stream_rank is None:
                    self.ranked += 1
                cell.stream_rank = rank
            generation = latency
        if 0.0 <= latency < _INF:  # a valid sample: added with the next read or batch
            pending = cell.latency_pending
            pending.append(latency)
            if len(pending) >= _PENDING:
                cell.latency_sketch  # noqa: B018 -- the property folds the batch
        else:
            cell.latency_sketch.add(latency)  # raises now, as an eager add does
        if output is not None and output >= _MIN_TPOT_TOKENS and generation > 0:
            cell.ewma_tpot = _ewma(cell.ewma_tpot, generation / output)
        # Published once the rank keys are set: a reader of ``reranked`` finds them set.
        n = self.reranked
        self.reranks[n % RERANK_RING] = cell
        self.reranked = n + 1

    @staticmethod
    def _group(
        groups: OrderedDict[str, _GroupCell], key: str, outcome: Outcome, now: float
    ) -> None:
        cell = groups.get(key)
        if cell is None:
            if len(groups) >= MAX_GROUPS - 1:  # one slot stays free for "(other)"
                # Fold the least recently used group into "(other)" to keep memory bounded;
                # "(other)" itself is re-inserted as most recent so it is never evicted.
                other = groups.pop(OTHER, None) or _GroupCell()
                _, old = groups.popitem(last=False)
                other.requests += old.requests
                other.failures += old.failures
                other.input_tokens += old.input_tokens
                other.output_tokens += old.output_tokens
                other.cost += old.cost
                other.unpriced += old.unpriced
                other.latency.merge(old.latency)
                groups[OTHER] = other
            cell = groups[key] = _GroupCell()
        else:
            groups.move_to_end(key)
        cell.requests += 1
        cell.window.add(now)
        if not outcome.ok and outcome.error != CANCELLED:
            cell.failures += 1
        if outcome.usage is not None:
            cell.input_tokens += outcome.usage.input_tokens
            cell.output_tokens += outcome.usage.output_tokens
        if outcome.cost is not None:
            cell.cost += outcome.cost
        elif unpriced(outcome):
            cell.unpriced += 1
        if outcome.ok and not outcome.cached:
            cell.latency.add(outcome.latency)

    def subscribe(self, listener: Callable[[Outcome], None]) -> None:
        """Call ``listener(outcome)`` after every recorded outcome."""
        self._listeners.append(listener)

    def names(self) -> Iterable[str]:
        """Deployments seen so far."""
        return list(self._cells)

    def _cell(self, deployment: str) -> _Cell:
        with self._lock:
            return self._cells.setdefault(deployment, _Cell())

    # -- snapshots -----------------------------------------------------------------------------

    def availability(self, deployment: str) -> float:
        """Share of the last 5 minutes' attempts that succeeded (1.0 with no traffic)."""
        cell = self._cells.get(deployment)
        if cell is None:
            return 1.0
        now = self.now()
        with self._lock:
            total = cell.win_requests.windows["5m"].total(now)
            errors = cell.win_errors.windows["5m"].total(now)
        return 1.0 if total == 0 else max(0.0, 1.0 - errors / total)

    def snapshot(self) -> StatsSnapshot:
        """A consistent, typed copy of every figure (see :class:`StatsSnapshot`)."""
        from .snapshot import StatsSnapshot

        now = self.now()
        with self._lock:
            deployments = {
                name: deployment_snapshot(name, cell, self._meta.get(name, ("", "")), now)
                for name, cell in self._cells.items()
            }
            models: dict[str, list[_Cell]] = {}
            providers: dict[str, list[_Cell]] = {}
            for name, cell in self._cells.items():
                model, provider = self._meta.get(name, ("", ""))
                models.setdefault(model, []).append(cell)
                providers.setdefault(provider, []).append(cell)
            return StatsSnapshot(
                taken_at=now,
                deployments=deployments,
                models={k: merged_snapshot(k, v, now) for k, v in models.items() if k},
                providers={k: merged_snapshot(k, v, now) for k, v in providers.items() if k},
                users={k: group_snapshot(k, c, now) for k, c in self._users.items()},
                tags={k: group_snapshot(k, c, now) for k, c in self._tags.items()},
            )


def _release(cell: _Cell) -> int | None:
    """An attempt on ``cell`` ended: free its slot; the load it was sent at (if known)."""
    cell.in_flight = max(0, cell.in_flight - 1)
    loads = cell.sent_loads
    return loads.popleft() if loads else None


def _ewma(previous: float | None, sample: float) -> float:
    return sample if previous is None else previous + _ALPHA * (sample - previous)
