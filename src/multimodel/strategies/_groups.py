"""``intelligent`` over a few models: candidates grouped by model, price and quality.

Deployments of one model share its price and quality, so on a ``model="auto"`` fleet of 50
deployments over 5 models the cost and quality terms of the score take 5 values, not 50, and
within a group the score only falls as the latency rises: only each group's fastest deployment
can win. :class:`PricedGroups` is that grouping, found once per candidate set;
:meth:`PricedGroups.rests` scores the groups for one request from their fastest members'
rank keys, kept between choices (:mod:`._speeds`), with the catalog's quality term, or
without it for :func:`lazy_thompson` to add a Thompson draw per model; and
:meth:`PricedGroups.member` picks the deployment of the winning group(s).

Only fleets whose every price is known and positive are grouped here (the usual case); the
others keep the one-candidate-at-a-time formula, which handles unknown and zero prices.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from math import exp
from operator import add
from typing import NamedTuple

from ..providers.base import Endpoint
from ._speeds import Speeds, filled
from ._util import SCORE_TIE, LockedRandom, pick_tied

__all__ = ["PRICED", "PricedGroups", "Weights", "lazy_thompson", "priced_groups"]

_Entry = tuple[float | None, float, float]  # input and output price per token, quality
PRICED = "priced"
"""The ``Fleet.extra`` key of a candidate set's groups (with their quality terms), or ``None``
when they cannot be grouped (``intelligent`` keeps them there: see its ``_grouped``)."""
Weights = tuple[float, float, float, float]
"""The factors of ``intelligent``'s score: cost, performance, quality, availability."""


class PricedGroups(NamedTuple):
    """The candidates grouped by (model, input price, output price, quality)."""

    models: list[str]  # per group
    prices: list[tuple[float, float]]  # per group: input and output USD per token (> 0)
    qualities: list[float]  # per group: the catalog's quality (0-100)
    members: list[list[int]]  # per group: positions in the candidate list
    unique: list[str]  # the distinct models, in order of first appearance
    slots: list[int]  # per group: its model's position in ``unique``
    group_of: list[int]  # per candidate: its group

    def rests(
        self,
        weights: Weights,
        speeds: Speeds,
        tin: int,
        tout: int,
        qterms: Sequence[float] | None = None,
    ) -> list[float]:
        """Per group: the cost, performance and availability terms of its fastest member's
        score for ``tin`` / ``tout`` tokens (``min cost / cost``, and ``min latency / latency
        == exp(best rank - rank)``: kept with the speeds), plus its quality term when
        ``qterms`` are given. The additions are made in C (``map``), in the formula's order."""
        costs = self.costs(weights, tin, tout)
        if qterms is not None:
            return list(map(add, map(add, costs, speeds[6]), qterms))
        return list(map(add, costs, speeds[6]))

    def costs(self, weights: Weights, tin: int, tout: int) -> list[float]:
        """Per group: ``f_cost * cheapest / cost + f_avail`` for ``tin`` / ``tout`` tokens.
        ``x + 0.0 == x`` for these positive terms, so adding a zero ``f_avail`` changes no
        score. Not kept per token counts: real prompts rarely repeat a count, so a cache of them
        would only serve a benchmark's prompts."""
        f_cost, _, _, f_avail = weights
        costs: list[float] = []
        for p_in, p_out in self.prices:
            costs.append(p_in * tin + p_out * tout)
        fc = f_cost * min(costs)
        return [fc / cost + f_avail for cost in costs]

    def per_candidate(
        self, weights: Weights, speeds: Speeds, tin: int, tout: int, qterms: Sequence[float]
    ) -> list[float]:
        """Every candidate's score (``qterms``: each group's quality term), for the routing
        trace: built only when it is read."""
        f_cost, f_perf, _, f_avail = weights
        costs = [p_in * tin + p_out * tout for p_in, p_out in self.prices]
        cheapest = min(costs)
        best_rank = speeds[5]
        out = [0.0] * len(self.group_of)
        for g, (members, cost, q) in enumerate(zip(self.members, costs, qterms, strict=True)):
            base = f_cost * cheapest / cost + f_avail + q
            for i, k in zip(members, filled(speeds, g), strict=True):
                out[i] = base + f_perf * exp(best_rank - k)
        return out

    def member(self, scores: list[float], speeds: Speeds, f_perf: float, rng: LockedRandom) -> int:
        """The position of the candidate to choose given each group's score: the fastest
        member of the best group; ties (within the tolerance) broken at random among every
        tied group's fastest members (any member when there is no performance factor)."""
        top = max(scores)
        floor = top - SCORE_TIE
        count = sum(map(floor.__le__, scores))
        if count == 1:  # the common case: one group wins; pick among its fastest, in C
            return self.fastest_member(scores.index(top), speeds, f_perf, rng)
        pool: list[int] = []
        for g, (members, k, score) in enumerate(zip(self.members, speeds[4], scores, strict=True)):
            if score >= floor:
                # Without a performance factor every member of the group scores the same.
                pool.extend(
                    members
                    if not f_perf
                    else [i for i, r in zip(members, filled(speeds, g), strict=True) if r == k]
                )
        return pool[0] if len(pool) == 1 else pool[rng.index(len(pool))]

    def fastest_member(self, g: int, speeds: Speeds, f_perf: float, rng: LockedRandom) -> int:
        """The position of group ``g``'s fastest member (a random one among exact ties; any
        member without a performance factor): :meth:`member` when ``g`` alone wins."""
        members = self.members[g]
        if not f_perf:
            return members[rng.index(len(members))]
        row = speeds[1][g] if not speeds[3][g] else filled(speeds, g)
        k = speeds[4][g]  # its lowest: pick_min_index without the scan for it
        count = row.count(k)
        return members[row.index(k) if count == 1 else pick_tied(row, k, count, rng)]

    def shown(self, candidates: Sequence[Endpoint], speeds: Speeds) -> list[str]:
        """The name of each group's fastest member (for the routing trace, when read)."""
        return [
            candidates[members[filled(speeds, g).index(k)]].name
            for g, (members, k) in enumerate(zip(self.members, speeds[4], strict=True))
        ]


_TIE = 2.0 * SCORE_TIE  # lazy_thompson's margin for the float rounding between the two ends


def lazy_thompson(
    rests: list[float],
    slots: list[int],
    f_qual: float,
    draws: list[float | None],
    draw: Callable[[int], float],
) -> int | None:
    """The group that wins a Thompson-sampled choice, drawing only the models that can matter.

    Group ``g`` scores ``rests[g] + f_qual * d[slots[g]] / M``: its terms without quality plus
    its model's sampled quality ``d`` (``draw(slot)``, stored into ``draws``) normalized by the
    highest draw ``M`` of every model. Models are drawn in order of their groups' best possible
    score (``rest + f_qual``); the winner is known, exactly, before every model is drawn once

    * one drawn group beats every other drawn group by more than :data:`SCORE_TIE` both at
      ``M = 1`` and at ``M =`` the highest draw so far (the final ``M`` lies between, and each
      score is linear in ``1 / M``, so the order at both ends holds in between), and
    * no group left can reach it: ``rest + f_qual`` (a sampled term is at most ``f_qual``) is
      below the winner's lowest possible score (at ``M = 1``) by more than the tie tolerance.

    The choice is then the one drawing every model would make, whatever the undrawn models
    would draw (they are independent of it): the same distribution, fewer draws. Returns
    ``None`` when every model had to be drawn and no group wins alone (the caller then scores
    the groups as usual, ties included); ``draws`` holds what was drawn (``None``: not drawn).
    """
    tie = _TIE
    order = sorted(range(len(rests)), key=rests.__getitem__, reverse=True)
    last = len(order)
    # The first group, apart: its draw alone decides most choices (the loop below is the
    # general case, from the second group on, with the same tests).
    g = order[0]
    s = slots[g]
    q = draws[s]
    top = 0.0  # the highest draw so far: M is at least this
    if q is None:
        q = draws[s] = draw(s)
        if q > 0.0:
            top = q
    if last == 1:
        return None
    if top > 0.0 and rests[g] + f_qual * q > rests[order[1]] + f_qual + tie:
        return g  # alone, at M = 1, it beats the best any other group could score
    k = 1  # groups looked at so far
    for g in order[1:]:
        k += 1
        s = slots[g]
        q = draws[s]
        if q is None:
            q = draws[s] = draw(s)
            if q > top:  # noqa: PLR1730  (max() is a call: this runs per draw)
                top = q
        if k == last or top <= 0.0:
            continue  # no bound yet when every draw so far is 0 (M unknown): draw on
        reach = rests[order[k]] + f_qual + tie  # the best a group left could score
        best = -1
        low = high = 0.0  # the leader's score at M = 1 and at M = top
        for h in order[:k]:
            q = draws[slots[h]]
            assert q is not None
            # f_qual * q / top, not (f_qual / top) * q: a subnormal top overflows the quotient
            # to inf (inf * 0 is nan), the order of the definition's own expression.
            lo, hi = rests[h] + f_qual * q, rests[h] + f_qual * q / top
            if best < 0:
                best, low, high = h, lo, hi
            elif lo > low and hi > high:
                if lo - low <= tie or hi - high <= tie:
                    best = -2  # a near tie between drawn groups: not decided yet
                    break
                best, low, high = h, lo, hi
            elif lo >= low - tie or hi >= high - tie:
                best = -2  # the order flips within [top, 1], or a near tie
                break
        if best >= 0 and low > reach:
            return best
    return None


def priced_groups(
    candidates: Sequence[Endpoint], entry_of: Callable[[Endpoint], _Entry]
) -> PricedGroups | None:
    """The grouping of ``candidates`` (``entry_of``: a candidate's prices and quality), or
    ``None`` when some price is unknown or zero (those need the general formula)."""
    by: dict[tuple[str, _Entry], list[int]] = {}
    for i, c in enumerate(candidates):
        by.setdefault((c.model, entry_of(c)), []).append(i)
    prices: list[tuple[float, float]] = []
    for _, (p_in, p_out, _) in by:
        if p_in is None or not (p_in > 0 and p_out > 0):
            return None
        prices.append((p_in, p_out))
    models = [model for model, _ in by]
    unique = list(dict.fromkeys(models))
    group_of = [0] * len(candidates)
    for g, members in enumerate(by.values()):
        for i in members:
            group_of[i] = g
    return PricedGroups(
        models=models,
        prices=prices,
        qualities=[q for _, (_, _, q) in by],
        members=list(by.values()),
        unique=unique,
        slots=[unique.index(m) for m in models],
        group_of=group_of,
    )
