"""``intelligent``: a weighted score of cost, performance and quality, under hard constraints.

When to use it: several *different* models can serve a request and you want to trade price
against speed and answer quality, e.g. ``model="auto"``::

    Client(deployments=[...], strategy={
        "name": "intelligent",
        "factors": {"cost": 0.3, "performance": 0.4, "quality": 0.3},
        "require": ["tools"],              # capabilities every candidate must have
        "min_context": 32000,              # context window needed
        "max_cost_per_request": 0.01,      # USD, estimated before sending (or max_cost_per_call)
        "min_quality": 70,                 # 0-100; once learned: the estimate's lower bound
        "max_p95": 2.0,                    # seconds; the measured p95's lower bound
    })

Each factor is normalized across the candidates (the cheapest, the fastest and the best score
1), weighted, summed, and multiplied by recent availability. Prices, context windows,
capabilities and quality scores come from the model catalog (``Endpoint.spec``); latency from
the live tracker (unmeasured deployments are scored like the fastest, so they get tried).
Candidates that break a hard constraint are excluded before scoring, and the routing trace says
why; when none is left the call fails with :class:`~multimodel.errors.NoDeploymentAvailable`.
Quality learned from feedback (Thompson sampling per model and task) lives in ``_learned``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from functools import partial
from math import exp
from typing import Any

from .._core.trace import LazyScores
from ..errors import ConfigError
from ..providers.base import Endpoint
from ..tracking.stats import StatsView, Tracker
from ._groups import PRICED, PricedGroups, Weights, priced_groups
from ._latency_cap import slow_deployments
from ._learned import LearnedQuality, LearnedScores
from ._speeds import group_speeds
from ._util import (
    SCORE_TIE,
    Fleet,
    FleetCache,
    LockedRandom,
    Picker,
    Prober,
    ProbeScores,
    forgiven_error_rate,
    pick_max_index,
    pick_min_index,
    pick_tied,
    picker,
    probe_scores,
)
from .base import RouteContext, register_strategy
from .response_time import LONG_GENERATION, expected_latency, speed_ranks

__all__ = ["Intelligent", "LearnedScores", "estimated_cost"]  # LearnedScores: re-exported

_MILLION = Decimal(1_000_000)


def estimated_cost(endpoint: Endpoint, ctx: RouteContext) -> float | None:
    """USD this request is expected to cost on ``endpoint`` (``None``: price unknown)."""
    spec = endpoint.spec
    pricing = getattr(spec, "pricing", None)
    if pricing is None:
        return None
    cost = (pricing.input * ctx.input_tokens + pricing.output * ctx.output_tokens) / _MILLION
    return float(cost)


@register_strategy("intelligent")
class Intelligent(LearnedQuality):
    """Weighted cost / performance / quality score with hard constraints (quality learned from
    feedback, once there is some: see :class:`~multimodel.strategies._learned.LearnedQuality`)."""

    def __init__(
        self,
        factors: Mapping[str, float] | None = None,
        require: Iterable[str] = (),
        min_context: int | None = None,
        max_cost_per_request: float | None = None,
        min_quality: float | None = None,
        seed: int | None = None,
        *,
        max_cost_per_call: float | None = None,
        max_p95: float | None = None,
    ) -> None:
        factors = dict(factors or {"cost": 0.3, "performance": 0.4, "quality": 0.3})
        unknown = set(factors) - {"cost", "performance", "quality", "availability"}
        if unknown:
            raise ConfigError(
                f"unknown intelligent factor(s) {sorted(unknown)}; use cost, performance, "
                "quality, availability"
            )
        if any(v < 0 for v in factors.values()) or not any(factors.values()):
            raise ConfigError("intelligent factors must be >= 0 and not all zero")
        self.factors = {k: float(v) for k, v in factors.items()}
        self._weights: Weights = (
            self.factors.get("cost", 0.0),
            self.factors.get("performance", 0.0),
            self.factors.get("quality", 0.0),
            self.factors.get("availability", 0.0),
        )
        self.require = frozenset(require)
        self.min_context = min_context
        if max_cost_per_call is not None:  # the name for the same cap
            if max_cost_per_request not in (None, max_cost_per_call):
                raise ConfigError(
                    "intelligent: max_cost_per_call and max_cost_per_request are one setting; "
                    "give one"
                )
            max_cost_per_request = max_cost_per_call
        if max_p95 is not None and not max_p95 > 0:
            raise ConfigError("intelligent: max_p95 must be > 0 seconds")
        self.max_cost = max_cost_per_request
        self.min_quality = min_quality
        self.max_p95 = max_p95
        self._rng = LockedRandom(seed)
        self._init_learned(seed)
        self._prober = Prober()
        self._static: dict[str, tuple[float | None, float, float]] = {}
        self._fleets: FleetCache[Fleet] = FleetCache(Fleet)
        self._windows: FleetCache[float] = FleetCache(_smallest_window)

    exclude_reads_stats = True
    """:meth:`exclude` takes the live statistics too (``max_p95``): the router passes them."""

    def exclude(
        self, candidates: Sequence[Endpoint], ctx: RouteContext, stats: StatsView | None = None
    ) -> dict[str, str]:
        """Hard constraints: ``{deployment: reason}`` for candidates that may not serve."""
        out: dict[str, str] = {}
        needed = ctx.input_tokens + ctx.output_tokens
        if self.max_p95 is not None and stats is not None:
            out.update(slow_deployments(candidates, stats, self.max_p95))
        if not (
            self.require or self.min_context or self.min_quality is not None or self.max_cost
        ) and needed <= self._windows.get(candidates, _NO_STATS):
            return out  # no other constraint configured and every window fits
        for c in candidates:
            spec = c.spec
            if c.name in out:
                continue
            if spec is None:
                if self.require or self.min_context or self.min_quality is not None:
                    out[c.name] = "not in the model catalog (capabilities unknown)"
                continue
            missing = self.require - spec.capabilities
            if missing:
                out[c.name] = f"capability: lacks {', '.join(sorted(missing))}"
            elif self.min_context and spec.context_window < self.min_context:
                out[c.name] = f"context window {spec.context_window} < {self.min_context}"
            elif spec.context_window < needed:
                out[c.name] = f"context window {spec.context_window} < ~{needed} tokens needed"
            elif self.min_quality is not None and self._quality_bound(c, ctx) < self.min_quality:
                out[c.name] = f"quality {self._quality_bound(c, ctx):g} < {self.min_quality}"
            elif self.max_cost is not None:
                cost = estimated_cost(c, ctx)
                if cost is not None and cost > self.max_cost:
                    out[c.name] = f"estimated cost ${cost:.5f} > ${self.max_cost}"
        return out

    def scores(
        self,
        candidates: Sequence[Endpoint],
        stats: StatsView,
        ctx: RouteContext,
        learned: Sequence[float] | None = None,
    ) -> list[float]:
        """The score of each candidate (higher is better); ``learned`` (0-100, one per
        candidate) replaces the catalog's quality scores."""
        now = stats.now()
        tin, tout = ctx.input_tokens, ctx.output_tokens
        costs: list[float | None] = []
        lats: list[float | None] = []
        quals: list[float] = []
        avails: list[float] = []
        get, static, static_of = stats.get, self._static, self._static_of
        for c in candidates:  # one pass gathers every input
            name = c.name
            price_in, price_out, quality = static.get(name) or static_of(c)
            costs.append(None if price_in is None else price_in * tin + price_out * tout)
            lats.append(expected_latency(c, stats, ctx, now))
            quals.append(quality)
            avails.append(1.0 - forgiven_error_rate(get(name), now))
        if learned is not None:
            quals = list(learned)
        known_costs = [x for x in costs if x is not None and x > 0]
        known_lats = [x for x in lats if x is not None and x > 0]
        min_cost = min(known_costs) if known_costs else None
        min_lat = min(known_lats) if known_lats else None
        max_q = max(quals) or 1.0
        f = self.factors
        f_cost, f_perf = f.get("cost", 0.0), f.get("performance", 0.0)
        f_qual, f_avail = f.get("quality", 0.0) / max_q, f.get("availability", 0.0)
        out = []
        for cost, lat, qual, avail in zip(costs, lats, quals, avails, strict=True):
            cost_s = 1.0 if min_cost is None or not cost else min_cost / cost
            if cost is None and min_cost is not None:
                cost_s = 0.5  # unknown price: neither rewarded nor ruled out
            perf_s = 1.0 if min_lat is None or not lat else min_lat / lat
            score = f_cost * cost_s + f_perf * perf_s + f_qual * qual + f_avail * avail
            out.append(score * avail)
        return out

    def _static_of(self, endpoint: Endpoint) -> tuple[float | None, float, float]:
        """Per-token input and output prices (``None``, 0 when unknown) and quality, cached per
        deployment: scoring is a ranking, so float maths is exact enough and far cheaper than
        Decimal for large fleets."""
        pricing = getattr(endpoint.spec, "pricing", None)
        quality = float(getattr(endpoint.spec, "quality", 50))
        entry = (
            (None, 0.0, quality)
            if pricing is None
            else (float(pricing.input) / 1e6, float(pricing.output) / 1e6, quality)
        )
        self._static[endpoint.name] = entry
        return entry

    def choose(
        self, candidates: Sequence[Endpoint], stats: StatsView, ctx: RouteContext
    ) -> Endpoint:
        """See :meth:`multimodel.strategies.Strategy.choose`."""
        return self.choose_scored(candidates, stats, ctx)[0]

    def choose_scored(
        self, candidates: Sequence[Endpoint], stats: StatsView, ctx: RouteContext
    ) -> tuple[Endpoint, LazyScores | ProbeScores | LearnedScores]:
        """The choice and each candidate's score (higher is better)."""
        last = self._fleets._last  # FleetCache.get's first test, inline (every choice)
        if last is not None and last[0] is candidates and last[1] is stats:
            fleet = last[2]
        else:
            fleet = self._fleets.get(candidates, stats)
        if len(candidates) > 1:
            now = stats.now()
            prober = self._prober
            if stats.__class__ is Tracker and not stats.erring:
                prober.count += 1  # nothing erring: no probe due (Prober.count says so)
            else:
                probe = prober.due(candidates, stats, now)
                if probe is not None:
                    return probe, probe_scores(probe, stats, now)  # -1: a probe
            book = self._quality
            if book is not None and book.version:  # feedback received: learned quality
                fast = self._learned_fast(fleet, candidates, stats, ctx, book)
                if fast is not None:
                    return fast
                return self._learned(candidates, stats, ctx, book)
        erring = getattr(stats, "erring", 1)
        if not erring:
            by_group = self._by_group(fleet, candidates, stats, ctx)
            if by_group is not None:
                return by_group
        ranks = speed_ranks(fleet, ctx, getattr(stats, "ranked", -1))
        best_rank = -math.inf if ranks is None else min(ranks)
        if ranks is None or best_rank == -math.inf:
            # Unmeasured candidates, long generations, another stats view, or a zero latency
            # (counted as unmeasured by the formula): one candidate at a time.
            scores = self.scores(candidates, stats, ctx)
            return candidates[pick_max_index(scores, self._rng, SCORE_TIE)], LazyScores(
                fleet.names, scores
            )
        # The same formula in list operations: min latency / latency == exp(best_rank - rank),
        # and the cost and quality terms depend only on the candidates and the token counts.
        assert isinstance(stats, Tracker)  # speed_ranks needs the tracker's records
        assert fleet.cells is not None
        # Read every error rate only while some deployment has one.
        # Read every error rate only while some deployment has one; forgiven over time, so a
        # deployment that failed once competes again (see forgiven_error_rate).
        errors: list[float] = []
        if erring:
            now = stats.now()
            errors = [forgiven_error_rate(cell, now) for cell in fleet.cells]
            if not any(errors):  # every error forgiven
                by_group = self._by_group(fleet, candidates, stats, ctx)
                if by_group is not None:
                    return by_group
        _, f_perf, _, f_avail = self._weights
        terms, groups = self._terms_for(fleet, candidates, ctx)
        if not any(errors):
            if groups is not None and len(groups) == 1:
                # Equal cost and quality terms (one model on every deployment): the score only
                # falls as the rank rises, so the fastest wins; scores are built if read.
                base = groups[0][0] + f_avail
                if f_perf:  # the fastest (best_rank is already the minimum: no second scan)
                    count = ranks.count(best_rank)
                    i = (
                        ranks.index(best_rank)
                        if count == 1
                        else pick_tied(ranks, best_rank, count, self._rng)
                    )
                else:
                    i = self._rng.index(len(ranks))
                return candidates[i], LazyScores(
                    fleet.names, ranks, lambda k: base + f_perf * exp(best_rank - k)
                )
            if groups is not None:  # unknown or zero prices (else _grouped above)
                i = self._best_of_groups(groups, ranks, best_rank, f_perf, f_avail)
                kept = groups
                return candidates[i], LazyScores(
                    fleet.names,
                    lambda: [
                        a + f_perf * exp(best_rank - k) + f_avail
                        for a, k in zip(_expand(kept, len(ranks)), ranks, strict=True)
                    ],
                )
        static = terms if terms is not None else _expand(groups or [], len(ranks))
        if not any(errors):
            scores = [
                a + f_perf * exp(best_rank - k) + f_avail
                for a, k in zip(static, ranks, strict=True)
            ]
        else:
            scores = [
                (a + f_perf * exp(best_rank - k) + f_avail * (1.0 - e)) * (1.0 - e)
                for a, k, e in zip(static, ranks, errors, strict=True)
            ]
        return candidates[pick_max_index(scores, self._rng, SCORE_TIE)], LazyScores(
            fleet.names, scores
        )

    def _by_group(
        self, fleet: Fleet, candidates: Sequence[Endpoint], stats: StatsView, ctx: RouteContext
    ) -> tuple[Endpoint, LazyScores] | None:
        """The choice among a few models (a score per group, each group's fastest kept between
        choices: see :mod:`._groups` and :mod:`._speeds`), when there are several and every
        candidate's error rate is zero (``None`` otherwise, or for long generations)."""
        stream = ctx.stream
        if not stream and ctx.output_tokens >= LONG_GENERATION:
            return None
        grouped = fleet.extra.get(PRICED) or self._grouped(fleet, candidates)
        if grouped is None or len(grouped[1]) < 2:
            return None
        priced, qterms = grouped
        speeds = group_speeds(fleet, priced.members, stats, stream, self._weights[1])
        if speeds is None or speeds[5] == -math.inf:
            return None  # a zero latency: the formula counts it as unmeasured
        weights = self._weights
        tin, tout = ctx.input_tokens, ctx.output_tokens
        scores = priced.rests(weights, speeds, tin, tout, qterms)
        i = priced.member(scores, speeds, weights[1], self._rng)
        return candidates[i], LazyScores(
            fleet.names, partial(priced.per_candidate, weights, speeds, tin, tout, qterms)
        )

    def _grouped(
        self, fleet: Fleet, candidates: Sequence[Endpoint]
    ) -> tuple[PricedGroups, list[float]] | None:
        """The candidates grouped by model, price and quality, with each group's quality term
        (``None``: a price unknown or zero); kept per candidate set."""
        found = fleet.extra.get(PRICED, _UNSET)
        if found is _UNSET:
            priced = priced_groups(candidates, self._entry)
            found = None
            if priced is not None:
                max_q = max(priced.qualities) or 1.0
                f_qual = self.factors.get("quality", 0.0) / max_q
                found = (priced, [f_qual * q for q in priced.qualities])
            fleet.extra[PRICED] = found
        result: tuple[PricedGroups, list[float]] | None = found
        return result

    def _entry(self, endpoint: Endpoint) -> _Entry:
        """A candidate's per-token prices and quality (cached per deployment)."""
        return self._static.get(endpoint.name) or self._static_of(endpoint)

    def _best_of_groups(
        self,
        groups: list[_Group],
        ranks: list[float],
        best_rank: float,
        f_perf: float,
        f_avail: float,
    ) -> int:
        """The best candidate when candidates share cost and quality terms in a few groups
        (one per model): within a group the score only falls as the rank rises, so only each
        group's fastest is scored; ties (within the tolerance) are broken at random."""
        fastest = [min(pick(ranks)) for _, _, pick in groups]
        scores = [
            a + f_perf * exp(best_rank - k) + f_avail
            for (a, _, _), k in zip(groups, fastest, strict=True)
        ]
        floor = max(scores) - SCORE_TIE
        tied = [g for g, score in enumerate(scores) if score >= floor]
        if len(tied) == 1:  # the common case: one group wins; pick among its fastest, in C
            _, members, pick = groups[tied[0]]
            if not f_perf:
                return members[self._rng.index(len(members))]
            member_ranks = list(pick(ranks))
            return members[pick_min_index(member_ranks, self._rng)]
        pool: list[int] = []
        for (_, members, _), k, score in zip(groups, fastest, scores, strict=True):
            if score >= floor:
                # Without a performance factor every member of the group scores the same.
                pool.extend(members if not f_perf else [i for i in members if ranks[i] == k])
        return pool[0] if len(pool) == 1 else pool[self._rng.index(len(pool))]

    def _terms_for(
        self, fleet: Fleet, candidates: Sequence[Endpoint], ctx: RouteContext
    ) -> tuple[list[float] | None, list[_Group] | None]:
        """The cost and quality terms of this request per candidate (``None`` when grouped:
        see :func:`_expand`), and the candidates grouped by equal terms when there are few
        groups; kept per token counts (a bounded number of them).

        Deployments of one model share price and quality, hence these terms, whatever the
        token counts: the groups are found once per candidate set, and new token counts cost
        one term per group (per candidate only when nearly every entry differs)."""
        entries, kinds, max_q = self._kinds_of(fleet, candidates)
        # One kind (one model on every deployment): every cost is the cheapest, so the terms do
        # not depend on the token counts at all.
        key = (0, 0) if len(kinds) == 1 else (ctx.input_tokens, ctx.output_tokens)
        cache: dict[tuple[int, int], Any] | None = fleet.extra.get(_TERMS)
        if cache is None:
            cache = fleet.extra[_TERMS] = {}
        found = cache.get(key)
        if found is None:
            if len(kinds) == 1 or len(kinds) * 4 <= len(entries):
                values = self._terms([kind for kind, _, _ in kinds], *key, max_q)
                groups: list[_Group] | None = [
                    (value, members, pick)
                    for value, (_, members, pick) in zip(values, kinds, strict=True)
                ]
                terms = None  # per candidate only if needed: see _expand
            else:
                groups, terms = None, self._terms(entries, *key, max_q)
            if len(cache) >= _STATIC_KEEP:
                cache.clear()  # bounded; with varied token counts, recomputing is cheap
            found = cache[key] = (terms, groups)
        result: tuple[list[float] | None, list[_Group] | None] = found
        return result

    def _kinds_of(
        self, fleet: Fleet, candidates: Sequence[Endpoint]
    ) -> tuple[list[_Entry], list[tuple[_Entry, list[int], Picker]], float]:
        """Per candidate set: each candidate's (input price, output price, quality), the
        candidates grouped by equal entries, and the best quality."""
        found = fleet.extra.get(_KINDS)
        if found is None:
            static, static_of = self._static, self._static_of
            entries = [static.get(c.name) or static_of(c) for c in candidates]
            by_entry: dict[_Entry, list[int]] = {}
            for i, entry in enumerate(entries):
                by_entry.setdefault(entry, []).append(i)
            kinds = [(entry, members, picker(members)) for entry, members in by_entry.items()]
            max_q = max(q for _, _, q in entries) or 1.0
            found = fleet.extra[_KINDS] = (entries, kinds, max_q)
        return found

    def _terms(self, entries: Sequence[_Entry], tin: int, tout: int, max_q: float) -> list[float]:
        """The cost and quality terms of each entry for a request of ``tin`` / ``tout`` tokens
        (costs normalized by the cheapest known one, quality by ``max_q``)."""
        costs = [None if p_in is None else p_in * tin + p_out * tout for p_in, p_out, _ in entries]
        known = [x for x in costs if x is not None and x > 0]
        min_cost = min(known) if known else None
        f = self.factors
        f_cost, f_qual = f.get("cost", 0.0), f.get("quality", 0.0) / max_q
        out = []
        for cost, (_, _, quality) in zip(costs, entries, strict=True):
            cost_s = 1.0 if min_cost is None or not cost else min_cost / cost
            if cost is None and min_cost is not None:
                cost_s = 0.5  # unknown price: neither rewarded nor ruled out
            out.append(f_cost * cost_s + f_qual * quality)
        return out


_Entry = tuple[float | None, float, float]  # input and output price per token, quality
_Group = tuple[float, list[int], Picker]
"""Candidates with equal cost and quality terms: the terms, their positions, and a function
reading their values out of a list in one C call."""
_UNSET = object()
_KINDS = "kinds"  # Fleet.extra key of the per-candidate-set entries and groups
_TERMS = "terms"  # Fleet.extra key of the per-token-counts terms (many distinct entries)


def _expand(groups: list[_Group], size: int) -> list[float]:
    """The per-candidate list of the groups' terms."""
    out = [0.0] * size
    for value, members, _ in groups:
        for i in members:
            out[i] = value
    return out


def _smallest_window(candidates: Sequence[Endpoint], _: object) -> float:
    """The smallest context window among candidates the catalog knows (inf: none)."""
    windows = [c.spec.context_window for c in candidates if c.spec is not None]
    return min(windows, default=math.inf)


_NO_STATS: StatsView = None  # type: ignore[assignment]  # window minima need no stats
_STATIC_KEEP = 64  # cost / quality terms kept per candidate set (distinct token counts)
