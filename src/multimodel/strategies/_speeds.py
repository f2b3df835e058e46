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
from math import inf
from operator import attrgetter
from typing import cast

from ..tracking.stats import RERANK_RING, DeploymentStats, StatsView, Tracker
from ._util import Fleet

__all__ = ["Speeds", "filled", "group_speeds"]

Speeds = tuple[int, list[list[float]], list[float], list[int], list[float], float]
"""A snapshot: ``(Tracker.reranked when read, per group its members' rank keys (inf: not
measured), per group its lowest measured key (inf: none), per group how many are not measured,
per group its fastest's key, the lowest measured key)``."""

_RANK_OF = (attrgetter("latency_rank"), attrgetter("stream_rank"))
_KEPT = ("speeds", "speeds/stream")  # Fleet.extra keys of the snapshots, per request kind
_WHERE = "speeds/where"  # Fleet.extra key of {record: (group, position in the group)}


def group_speeds(
    fleet: Fleet, members: Sequence[list[int]], stats: StatsView, stream: bool
) -> Speeds | None:
    """The snapshot of the groups ``members`` (positions in the candidate list) for streamed or
    other requests, up to date; ``None`` when the stats are not the tracker's."""
    cells = fleet.cells
    if cells is None:
        return None
    tracker = cast(Tracker, stats)  # the fleet has the records of the tracker's only
    kept: Speeds | None = fleet.extra.get(_KEPT[stream])
    count = tracker.reranked
    if kept is not None:
        seen = kept[0]
        if seen == count:
            return kept  # nothing re-ranked since
        if count - seen <= RERANK_RING:
            where: dict[DeploymentStats, tuple[int, int]] | None = fleet.extra.get(_WHERE)
            if where is not None:
                found = _update(kept, count, tracker, where, _RANK_OF[stream])
                # Unless the ring moved on past ``seen`` while it was read.
                if found is not None and tracker.reranked - seen <= RERANK_RING:
                    fleet.extra[_KEPT[stream]] = found
                    return found
    found = _read(count, cells, members, _RANK_OF[stream])
    if _WHERE not in fleet.extra:
        places = {cells[i]: (g, j) for g, group in enumerate(members) for j, i in enumerate(group)}
        # A deployment listed twice (one record, two places) is re-read in full each time.
        fleet.extra[_WHERE] = places if len(places) == len(cells) else None
    fleet.extra[_KEPT[stream]] = found
    return found


def _read(
    count: int,
    cells: list[DeploymentStats],
    members: Sequence[list[int]],
    rank_of: attrgetter[float | None],
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
    return _snapshot(count, rows, lows, missing)


def _update(
    kept: Speeds,
    count: int,
    tracker: Tracker,
    where: dict[DeploymentStats, tuple[int, int]],
    rank_of: attrgetter[float | None],
) -> Speeds | None:
    """The next snapshot: ``kept`` with the records re-ranked since re-read (``None``: one of
    them is no longer in the ring)."""
    seen, rows, lows, missing, _, _ = kept
    ring = tracker.reranks
    copied: list[bool] | None = None
    for n in range(seen, count):
        cell = ring[n % RERANK_RING]
        place = where.get(cell) if cell is not None else None
        if place is None:
            continue  # another candidate set's deployment
        key = rank_of(cell)
        g, j = place
        old = rows[g][j]
        if key is None or key == old:
            continue
        if copied is None:  # copy on write: the published snapshot is never modified
            rows, lows, missing = rows.copy(), lows.copy(), missing.copy()
            copied = [False] * len(rows)
        if not copied[g]:
            rows[g] = rows[g].copy()
            copied[g] = True
        row = rows[g]
        row[j] = key
        if old == inf:
            missing[g] -= 1
        low = lows[g]
        if key < low:
            lows[g] = key
        elif old == low:  # the group's fastest got slower: which is fastest now?
            lows[g] = min(row)
    if copied is None:
        return (count, rows, lows, missing, kept[4], kept[5])
    return _snapshot(count, rows, lows, missing)


def _snapshot(count: int, rows: list[list[float]], lows: list[float], missing: list[int]) -> Speeds:
    best = min(lows)
    if best == inf:
        best = 0.0  # nothing measured: every key is 0, as in speed_ranks
    fastest: list[float] = []
    for low, absent in zip(lows, missing, strict=True):
        fastest.append(best if absent else low)
    return (count, rows, lows, missing, fastest, best)


def filled(speeds: Speeds, g: int) -> list[float]:
    """Group ``g``'s rank keys, the unmeasured given the lowest measured one."""
    row = speeds[1][g]
    if not speeds[3][g]:
        return row
    best = speeds[5]
    return [best if key == inf else key for key in row]
