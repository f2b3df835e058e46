"""Each group's fastest rank key, kept between choices (``intelligent`` over a few models).

:class:`~._groups.PricedGroups` scores only each group's fastest deployment, normalized by the
fastest of all. Finding them from scratch reads every candidate's rank key, takes a ``min``
over all and one per group: per request, on a fleet of 50. But between two choices only the
deployments that answered were re-ranked, which the tracker names (its ring of re-ranked
records, :attr:`~multimodel.tracking.stats.Tracker.reranks`). :func:`group_speeds` keeps, per
candidate set and request kind (streamed or not), a snapshot of each group's rank keys and
minimum, and makes the next one from the last by re-reading only the records re-ranked since
(everything, once the ring has moved on too far). A snapshot is never modified once published,
so concurrent choices each read a consistent one; two of them racing to publish only means
one re-reads a record the other read.

As in :func:`~.response_time.speed_ranks`, a deployment not measured yet is given the lowest
measured rank key (the formula scores it like the fastest, so that it gets tried); with none
measured, every key is 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import exp, inf
from operator import attrgetter

from ..tracking.stats import RERANK_RING, DeploymentStats, StatsView, Tracker
from ._util import Fleet

__all__ = ["Speeds", "filled", "group_speeds"]

Speeds = tuple[int, list[list[float]], list[float], list[int], list[float], float, list[float]]
"""A snapshot: ``(Tracker.reranked when read, per group its members' rank keys (inf: not
measured), per group its lowest measured key (inf: none), per group how many are not measured,
per group its fastest's key, the lowest measured key, per group its performance term
f_perf * exp(lowest - fastest))``."""

_RANK_OF = (attrgetter("latency_rank"), attrgetter("stream_rank"))
_KEPT = ("speeds", "speeds/stream")  # Fleet.extra keys of the snapshots, per request kind
_WHERE = "speeds/where"  # Fleet.extra key of {record: (group, position in the group)}


def group_speeds(
    fleet: Fleet, members: Sequence[list[int]], stats: StatsView, stream: bool, f_perf: float
) -> Speeds | None:
    """The snapshot of the groups ``members`` (positions in the candidate list) for streamed or
    other requests, up to date, with the performance terms for weight ``f_perf`` (one per
    fleet: a fleet belongs to one strategy); ``None`` when the stats are not the tracker's.

    One function, inline: it runs on every choice, and a call costs as much as the loop."""
    cells = fleet.cells
    if cells is None:
        return None
    tracker: Tracker = stats  # type: ignore[assignment]  # cells: the tracker's records
    extra = fleet.extra
    kept: Speeds | None = extra.get(_KEPT[stream])
    count = tracker.reranked
    if kept is not None:
        seen = kept[0]
        if seen == count:
            return kept  # nothing re-ranked since
        where: dict[object, tuple[int, int]] | None = extra.get(_WHERE)
        if where is not None and count == seen + 1:
            # The common case: one record re-ranked since. The loop below, for that one
            # record (a first measurement goes through the loop: everything is redone).
            cell = tracker.reranks[seen % RERANK_RING]
            place = where.get(cell)
            found: Speeds | None = kept
            if place is not None:
                key = _RANK_OF[stream](cell)
                g, j = place
                _, rows, lows, missing, fastest, best, terms = kept
                row = rows[g]
                old = row[j]
                if key is None or key == old:
                    pass
                elif old == inf:
                    found = None
                else:
                    row = row.copy()
                    row[j] = key
                    rows = rows.copy()
                    rows[g] = row
                    low = lows[g]
                    if key < low or old == low:  # the group's lowest key changed
                        # best is the lowest of lows: it moves if this key goes below it, or
                        # if this group held it and no longer does (then min() tells).
                        if key < low:
                            low = key
                            lowered = lows.copy()
                            lowered[g] = low
                            redo = key < best
                        else:
                            low = min(row)
                            lowered = lows.copy()
                            lowered[g] = low
                            redo = old == best and best != min(lowered)
                        if redo:  # the lowest of all moved: every term changes
                            found = _snapshot(count, rows, lowered, missing, f_perf)
                        elif not missing[g]:  # else its fastest is the lowest of all: unchanged
                            if fastest is lows:  # every group measured: fastest is lowest
                                fastest = lowered
                            else:
                                fastest = fastest.copy()
                                fastest[g] = low
                            terms = terms.copy()
                            terms[g] = f_perf * exp(best - low)
                        lows = lowered
                    if found is kept:
                        found = (count, rows, lows, missing, fastest, best, terms)
            if found is kept:  # another candidate set's record, or its key unchanged
                found = (count, *kept[1:])
            # Unless the ring moved on past ``seen`` while it was read.
            if found is not None and tracker.reranked - seen <= RERANK_RING:
                extra[_KEPT[stream]] = found
                return found
        if where is not None and count - seen <= RERANK_RING:  # several: one at a time
            rank_of = _RANK_OF[stream]
            ring = tracker.reranks
            _, rows, lows, missing, fastest, best, terms = kept
            moved: list[int] = []  # the groups whose lowest key changed
            redo = False  # whether every fastest and term must be worked out again
            for n in range(seen, count):
                cell = ring[n % RERANK_RING]
                place = where.get(cell)
                if place is None:
                    continue  # another candidate set's deployment
                key = rank_of(cell)
                g, j = place
                row = rows[g]
                old = row[j]
                if key is None or key == old:
                    continue
                # Copy on write: a published snapshot is never modified.
                if rows is kept[1]:
                    rows, lows = rows.copy(), lows.copy()
                if row is kept[1][g]:
                    row = rows[g] = row.copy()
                row[j] = key
                if old == inf:  # a first measurement (rare): everything is worked out again
                    if missing is kept[3]:
                        missing = missing.copy()
                    missing[g] -= 1
                    redo = True
                low = lows[g]
                if key < low:
                    lows[g] = key
                    moved.append(g)
                elif old == low:  # the group's fastest got slower: which is fastest now?
                    lows[g] = min(row)
                    moved.append(g)
            if moved and not redo:
                low = min(lows)
                if best != (0.0 if low == inf else low):
                    redo = True  # the lowest of all moved: every term changes
                elif fastest is kept[2]:  # every group measured: each fastest is its lowest
                    terms = terms.copy()
                    for g in moved:
                        terms[g] = f_perf * exp(best - lows[g])
                else:  # only the moved groups' fastest and terms change
                    fastest, terms = fastest.copy(), terms.copy()
                    for g in moved:
                        if not missing[g]:  # else its fastest is the lowest of all: unchanged
                            low = fastest[g] = lows[g]
                            terms[g] = f_perf * exp(best - low)
            # Unless the ring moved on past ``seen`` while it was read.
            if tracker.reranked - seen <= RERANK_RING:
                if fastest is kept[2]:  # every group measured (the fast path above's test)
                    fastest = lows
                found = (
                    _snapshot(count, rows, lows, missing, f_perf)
                    if redo
                    else (count, rows, lows, missing, fastest, best, terms)
                )
                extra[_KEPT[stream]] = found
                return found
    found = _read(count, cells, members, _RANK_OF[stream], f_perf)
    if _WHERE not in extra:
        places = {cells[i]: (g, j) for g, group in enumerate(members) for j, i in enumerate(group)}
        # A deployment listed twice (one record, two places) is re-read in full each time.
        extra[_WHERE] = places if len(places) == len(cells) else None
    extra[_KEPT[stream]] = found
    return found


def _read(
    count: int,
    cells: list[DeploymentStats],
    members: Sequence[list[int]],
    rank_of: attrgetter[float | None],
    f_perf: float,
) -> Speeds:
    """Every group's rank keys read afresh (``count``: the tracker's ``reranked`` before)."""
    rows: list[list[float]] = []
    lows: list[float] = []
    missing: list[int] = []
    for group in members:
        row: list[float] = []
        for i in group:
            key = rank_of(cells[i])
            row.append(inf if key is None else key)
        rows.append(row)
        lows.append(min(row))
        missing.append(row.count(inf))
    return _snapshot(count, rows, lows, missing, f_perf)


def _snapshot(
    count: int, rows: list[list[float]], lows: list[float], missing: list[int], f_perf: float
) -> Speeds:
    best = min(lows)
    if best == inf:
        best = 0.0  # nothing measured: every key is 0, as in speed_ranks
    fastest = lows
    terms: list[float] = []
    for g, low in enumerate(lows):
        if missing[g]:
            if fastest is lows:
                fastest = lows.copy()
            fastest[g] = low = best
        terms.append(f_perf * exp(best - low))
    return (count, rows, lows, missing, fastest, best, terms)


def filled(speeds: Speeds, g: int) -> list[float]:
    """Group ``g``'s rank keys, the unmeasured given the lowest measured one."""
    row = speeds[1][g]
    if not speeds[3][g]:
        return row
    best = speeds[5]
    return [best if key == inf else key for key in row]
