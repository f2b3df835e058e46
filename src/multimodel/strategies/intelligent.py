"""``intelligent``: a weighted score of cost, performance and quality, under hard constraints.

When to use it: several *different* models can serve a request and you want to trade price
against speed and answer quality, e.g. ``model="auto"``::

    Client(deployments=[...], strategy={
        "name": "intelligent",
        "factors": {"cost": 0.3, "performance": 0.4, "quality": 0.3},
        "require": ["tools"],              # capabilities every candidate must have
        "min_context": 32000,              # context window needed
        "max_cost_per_request": 0.01,      # USD, estimated before sending
        "min_quality": 70,
    })

Each factor is normalized across the candidates (the cheapest, the fastest and the best score
1), weighted, summed, and multiplied by recent availability. Prices, context windows,
capabilities and quality scores come from the model catalog (``Endpoint.spec``); latency from
the live tracker (unmeasured deployments are scored like the fastest, so they get tried).
Candidates that break a hard constraint are excluded before scoring, and the routing trace says
why; when none is left the call fails with :class:`~multimodel.errors.NoDeploymentAvailable`.
"""

from __future__ import annotations

import math
import random
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from math import exp
from operator import attrgetter, itemgetter
from typing import Any

from .._core.trace import LazyScores
from ..errors import ConfigError
from ..providers.base import Endpoint
from ..tracking.quality import QualityBook, beta_mean_sd, task_of_tags
from ..tracking.stats import StatsView, Tracker
from ._util import (
    Fleet,
    FleetCache,
    LockedRandom,
    Prober,
    ProbeScores,
    forgiven_error_rate,
    pick_max_index,
    pick_min_index,
    pick_tied,
    probe_scores,
)
from .base import RouteContext, register_strategy
from .response_time import LONG_GENERATION, expected_latency

__all__ = ["Intelligent", "estimated_cost"]

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
class Intelligent:
    """Weighted cost / performance / quality score with hard constraints."""

    def __init__(
        self,
        factors: Mapping[str, float] | None = None,
        require: Iterable[str] = (),
        min_context: int | None = None,
        max_cost_per_request: float | None = None,
        min_quality: float | None = None,
        seed: int | None = None,
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
        self.require = frozenset(require)
        self.min_context = min_context
        self.max_cost = max_cost_per_request
        self.min_quality = min_quality
        self._rng = LockedRandom(seed)
        self._quality: QualityBook | None = None
        self._thompson = random.Random(seed)  # posterior draws (guarded: see _learned)
        self._thompson_lock = threading.Lock()
        self._prober = Prober()
        self._static: dict[str, tuple[float | None, float, float]] = {}
        self._fleets: FleetCache[Fleet] = FleetCache(Fleet)
        self._windows: FleetCache[float] = FleetCache(_smallest_window)

    def exclude(self, candidates: Sequence[Endpoint], ctx: RouteContext) -> dict[str, str]:
        """Hard constraints: ``{deployment: reason}`` for candidates that may not serve."""
        out: dict[str, str] = {}
        needed = ctx.input_tokens + ctx.output_tokens
        if not (
            self.require or self.min_context or self.min_quality is not None or self.max_cost
        ) and needed <= self._windows.get(candidates, _NO_STATS):
            return out  # no constraint configured and every window fits
        for c in candidates:
            spec = c.spec
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

    # -- learned quality -------------------------------------------------------------------

    def attach_quality(self, book: QualityBook) -> None:
        """Route on ``book``'s learned quality (the client calls this; one book per strategy)."""
        self._quality = book

    def _quality_bound(self, endpoint: Endpoint, ctx: RouteContext) -> float:
        """The quality ``min_quality`` is checked against (0-100): the catalog's, or once the
        model has feedback for this task, the lower bound of its learned estimate."""
        book = self._quality
        static = float(getattr(endpoint.spec, "quality", 50))
        if book is None or not book.version:
            return static
        task = task_of_tags(ctx.request.tags if ctx.request is not None else None)
        estimate = book.estimate(endpoint.model, task)
        return static if not estimate.samples else round(100.0 * estimate.lower, 1)

    def _learned(
        self, candidates: Sequence[Endpoint], stats: StatsView, ctx: RouteContext, book: QualityBook
    ) -> tuple[Endpoint, LearnedScores]:
        """Thompson sampling: each model's quality is drawn from its posterior for the request's
        task, then scored with cost and performance as usual. The choice is *exploration* when
        the posterior means would have chosen another model."""
        request = ctx.request
        task = task_of_tags(request.tags if request is not None else None)
        now = book.clock()
        draws: dict[str, float] = {}
        means: dict[str, float] = {}
        with self._thompson_lock:
            for c in candidates:
                model = c.model
                if model not in draws:
                    draws[model] = 100.0 * book.sample(model, task, self._thompson, now)
                    a, b, _ = book.params(model, task, now)
                    means[model] = 100.0 * a / (a + b)
        rest, avails = self._parts(candidates, stats, ctx)
        f_qual = self.factors.get("quality", 0.0)
        # Normalized by the best quality, as the catalog's scores are.
        q_draw = f_qual / (max(draws.values()) or 1.0)
        q_mean = f_qual / (max(means.values()) or 1.0)
        sampled = [
            (r + q_draw * draws[c.model]) * a
            for c, r, a in zip(candidates, rest, avails, strict=True)
        ]
        i = pick_max_index(sampled, self._rng, _TIE)
        chosen = candidates[i]
        by_mean = [
            (r + q_mean * means[c.model]) * a
            for c, r, a in zip(candidates, rest, avails, strict=True)
        ]
        best = candidates[by_mean.index(max(by_mean))]
        explored = best.model != chosen.model
        note = _note_text(
            book, task, {m: book.params(m, task, now) for m in draws}, chosen.model, best.model
        )
        return chosen, LearnedScores(
            {c.name: v for c, v in zip(candidates, sampled, strict=True)}, note, explored
        )

    def _learned_fast(
        self,
        fleet: Fleet,
        candidates: Sequence[Endpoint],
        stats: StatsView,
        ctx: RouteContext,
        book: QualityBook,
    ) -> tuple[Endpoint, LearnedScores] | None:
        """:meth:`_learned` on the tracker's rank keys: deployments of one model (and price)
        share the cost and quality terms, so only each group's fastest is scored (a handful of
        models, whatever the number of deployments). ``None`` when the keys cannot be used
        (unmeasured deployments, long generations, errors): then :meth:`_learned` decides."""
        if getattr(stats, "erring", 1):
            return None
        ranks = _speed_ranks(fleet, ctx, getattr(stats, "ranked", -1))
        if ranks is None:
            return None
        best_rank = min(ranks)
        if best_rank == -math.inf:
            return None
        groups = fleet.extra.get(_LEARNED)
        if groups is None:
            by: dict[tuple[str, _Entry], list[int]] = {}
            static, static_of = self._static, self._static_of
            for i, c in enumerate(candidates):
                by.setdefault((c.model, static.get(c.name) or static_of(c)), []).append(i)
            groups = fleet.extra[_LEARNED] = [
                (model, entry, members, _picker(members)) for (model, entry), members in by.items()
            ]
        request = ctx.request
        task = task_of_tags(request.tags if request is not None else None)
        now = book.clock()
        draws: dict[str, float] = {}
        means: dict[str, float] = {}
        seen: dict[str, tuple[float, float, int]] = {}
        with self._thompson_lock:
            for model, _, _, _ in groups:
                if model not in draws:
                    a, b, _n = seen[model] = book.params(model, task, now)
                    draws[model] = book.draw(a, b, self._thompson)
                    means[model] = a / (a + b)
        tin, tout = ctx.input_tokens, ctx.output_tokens
        costs = [
            None if p_in is None else p_in * tin + p_out * tout
            for _, (p_in, p_out, _), _, _ in groups
        ]
        known = [x for x in costs if x is not None and x > 0]
        min_cost = min(known) if known else None
        f = self.factors
        f_cost, f_perf = f.get("cost", 0.0), f.get("performance", 0.0)
        f_avail, f_qual = f.get("availability", 0.0), f.get("quality", 0.0)
        q_draw = f_qual / (max(draws.values()) or 1.0)
        q_mean = f_qual / (max(means.values()) or 1.0)
        fastest = [min(pick(ranks)) for _, _, _, pick in groups]
        sampled: list[float] = []
        by_mean: list[float] = []
        for (model, _, _, _), cost, k in zip(groups, costs, fastest, strict=True):
            cost_s = 1.0 if min_cost is None or not cost else min_cost / cost
            if cost is None and min_cost is not None:
                cost_s = 0.5
            rest = f_cost * cost_s + f_perf * exp(best_rank - k) + f_avail
            sampled.append(rest + q_draw * draws[model])
            by_mean.append(rest + q_mean * means[model])
        g = pick_max_index(sampled, self._rng, _TIE)
        _, _, members, pick = groups[g]
        member_ranks = list(pick(ranks))
        chosen = candidates[members[pick_min_index(member_ranks, self._rng)]]
        best_model = groups[by_mean.index(max(by_mean))][0]
        explored = best_model != chosen.model
        shown = {
            candidates[members[ranks_members.index(k)]].name: score
            for (_, _, members, pick), k, score in zip(groups, fastest, sampled, strict=True)
            for ranks_members in (list(pick(ranks)),)
        }
        return chosen, LearnedScores(
            shown, _note_text(book, task, seen, chosen.model, best_model), explored
        )

    def _parts(
        self, candidates: Sequence[Endpoint], stats: StatsView, ctx: RouteContext
    ) -> tuple[list[float], list[float]]:
        """Per candidate: the cost, performance and availability terms of the score (without
        quality), and the availability the whole score is multiplied by."""
        now = stats.now()
        tin, tout = ctx.input_tokens, ctx.output_tokens
        get, static, static_of = stats.get, self._static, self._static_of
        costs: list[float | None] = []
        lats: list[float | None] = []
        avails: list[float] = []
        erring = getattr(stats, "erring", True)
        for c in candidates:
            price_in, price_out, _ = static.get(c.name) or static_of(c)
            costs.append(None if price_in is None else price_in * tin + price_out * tout)
            lats.append(expected_latency(c, stats, ctx, now))
            avails.append(1.0 - forgiven_error_rate(get(c.name), now) if erring else 1.0)
        known_costs = [x for x in costs if x is not None and x > 0]
        known_lats = [x for x in lats if x is not None and x > 0]
        min_cost = min(known_costs) if known_costs else None
        min_lat = min(known_lats) if known_lats else None
        f = self.factors
        f_cost, f_perf, f_avail = (
            f.get("cost", 0.0),
            f.get("performance", 0.0),
            f.get("availability", 0.0),
        )
        rest = []
        for cost, lat, avail in zip(costs, lats, avails, strict=True):
            cost_s = 1.0 if min_cost is None or not cost else min_cost / cost
            if cost is None and min_cost is not None:
                cost_s = 0.5  # unknown price: neither rewarded nor ruled out
            perf_s = 1.0 if min_lat is None or not lat else min_lat / lat
            rest.append(f_cost * cost_s + f_perf * perf_s + f_avail * avail)
        return rest, avails

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
    ) -> tuple[Endpoint, LazyScores | ProbeScores]:
        """The choice and each candidate's score (higher is better)."""
        fleet = self._fleets.get(candidates, stats)
        if len(candidates) > 1:
            now = stats.now()
            probe = self._prober.due(candidates, stats, now)
            if probe is not None:
                return probe, probe_scores(probe, stats, now)  # -1: a probe
            book = self._quality
            if book is not None and book.version:  # feedback received: learned quality
                fast = self._learned_fast(fleet, candidates, stats, ctx, book)
                if fast is not None:
                    return fast
                return self._learned(candidates, stats, ctx, book)
        ranks = _speed_ranks(fleet, ctx, getattr(stats, "ranked", -1))
        best_rank = -math.inf if ranks is None else min(ranks)
        if ranks is None or best_rank == -math.inf:
            # Unmeasured candidates, long generations, another stats view, or a zero latency
            # (counted as unmeasured by the formula): one candidate at a time.
            scores = self.scores(candidates, stats, ctx)
            return candidates[pick_max_index(scores, self._rng, _TIE)], LazyScores(
                fleet.names, scores
            )
        # The same formula in list operations: min latency / latency == exp(best_rank - rank),
        # and the cost and quality terms depend only on the candidates and the token counts.
        assert isinstance(stats, Tracker)  # _speed_ranks needs the tracker's records
        assert fleet.cells is not None
        # Read every error rate only while some deployment has one.
        # Read every error rate only while some deployment has one; forgiven over time, so a
        # deployment that failed once competes again (see forgiven_error_rate).
        errors: list[float] = []
        if stats.erring:
            now = stats.now()
            errors = [forgiven_error_rate(cell, now) for cell in fleet.cells]
        terms, groups = self._terms_for(fleet, candidates, ctx)
        f = self.factors
        f_perf, f_avail = f.get("performance", 0.0), f.get("availability", 0.0)
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
            if groups is not None:
                i = self._best_of_groups(groups, ranks, best_rank, f_perf, f_avail)
                grouped = groups
                return candidates[i], LazyScores(
                    fleet.names,
                    lambda: [
                        a + f_perf * exp(best_rank - k) + f_avail
                        for a, k in zip(_expand(grouped, len(ranks)), ranks, strict=True)
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
        return candidates[pick_max_index(scores, self._rng, _TIE)], LazyScores(fleet.names, scores)

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
        floor = max(scores) - _TIE
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
    ) -> tuple[list[_Entry], list[tuple[_Entry, list[int], _Picker]], float]:
        """Per candidate set: each candidate's (input price, output price, quality), the
        candidates grouped by equal entries, and the best quality."""
        found = fleet.extra.get(_KINDS)
        if found is None:
            static, static_of = self._static, self._static_of
            entries = [static.get(c.name) or static_of(c) for c in candidates]
            by_entry: dict[_Entry, list[int]] = {}
            for i, entry in enumerate(entries):
                by_entry.setdefault(entry, []).append(i)
            kinds = [(entry, members, _picker(members)) for entry, members in by_entry.items()]
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


def _note_text(
    book: QualityBook,
    task: str,
    params: Mapping[str, tuple[float, float, int]],
    chosen: str,
    best: str,
) -> str:
    z = book.policy.z
    parts = []
    for model, (a, b, n) in params.items():
        mean, sd = beta_mean_sd(a, b)
        parts.append(f"{model} {mean:.3f}±{sd:.3f} (n={n}, lower {max(0.0, mean - z * sd):.3f})")
    how = (
        f"exploration: the sampled quality chose {chosen} over {best}, the best by the estimates"
        if chosen != best
        else f"exploitation: {chosen} is the best by the estimates"
    )
    return f"learned quality for task {task!r}: " + ", ".join(parts) + "; " + how


class LearnedScores(ProbeScores):
    """The scores of a choice made on learned quality, with ``note`` (each model's estimate,
    uncertainty and sample count, and whether the choice was exploration) for the routing
    trace's ``notes``; ``explored`` is that flag."""

    __slots__ = ("explored",)

    def __init__(self, scores: dict[str, float], note: str, explored: bool) -> None:
        dict.__init__(self, scores)
        self.note = note
        self.explored = explored


def _speed_ranks(fleet: Fleet, ctx: RouteContext, ranked: int) -> list[float] | None:
    """Rank keys standing for the latency estimates (see ``response_time.measured_ranks``),
    with an unmeasured candidate given the best rank: the formula scores it like the fastest
    (performance 1), so that it gets tried. ``None`` when the keys cannot be used.

    ``ranked`` is the tracker's count of rank keys set: while it is unchanged, so are the
    positions of the unmeasured candidates (a deployment under ``intelligent`` may stay
    unmeasured for good when another model always scores higher)."""
    cells = fleet.cells
    stream = ctx.stream
    if cells is None or (not stream and ctx.output_tokens >= LONG_GENERATION):
        return None
    rank_of = _STREAM_RANK if stream else _LATENCY_RANK
    if fleet.measured[stream]:
        return list(map(rank_of, cells))
    seen_at, _, present = fleet.unmeasured[stream]
    if seen_at != ranked:
        ranks: list[Any] = list(map(rank_of, cells))
        missing = [i for i, k in enumerate(ranks) if k is None]
        present = [i for i, k in enumerate(ranks) if k is not None]
        fleet.unmeasured[stream] = (ranked, missing, present)
        if not missing:
            fleet.measured[stream] = True  # estimates are never forgotten
            return ranks
    # Read only the measured records; the others get the best rank.
    known = list(map(rank_of, map(cells.__getitem__, present)))
    ranks = [min(known) if known else 0.0] * len(cells)
    deque(map(ranks.__setitem__, present, known), maxlen=0)  # in C
    return ranks


_Entry = tuple[float | None, float, float]  # input and output price per token, quality
_Picker = Callable[[list[float]], Sequence[float]]
_Group = tuple[float, list[int], _Picker]
"""Candidates with equal cost and quality terms: the terms, their positions, and a function
reading their values out of a list in one C call."""
_KINDS = "kinds"  # Fleet.extra key of the per-candidate-set entries and groups
_LEARNED = "learned"  # Fleet.extra key of the (model, entry) groups of learned choices
_TERMS = "terms"  # Fleet.extra key of the per-token-counts terms (many distinct entries)


def _expand(groups: list[_Group], size: int) -> list[float]:
    """The per-candidate list of the groups' terms."""
    out = [0.0] * size
    for value, members, _ in groups:
        for i in members:
            out[i] = value
    return out


def _picker(positions: list[int]) -> _Picker:
    """``lambda values: [values[i] for i in positions]``, as one ``itemgetter`` call."""
    if len(positions) == 1:
        (only,) = positions
        return lambda values: (values[only],)
    return itemgetter(*positions)


def _smallest_window(candidates: Sequence[Endpoint], _: object) -> float:
    """The smallest context window among candidates the catalog knows (inf: none)."""
    windows = [c.spec.context_window for c in candidates if c.spec is not None]
    return min(windows, default=math.inf)


_NO_STATS: StatsView = None  # type: ignore[assignment]  # window minima need no stats
_TIE = 1e-12  # scores this close count as a tie (float noise between equal candidates)
_STATIC_KEEP = 64  # cost / quality terms kept per candidate set (distinct token counts)
_LATENCY_RANK = attrgetter("latency_rank")
_STREAM_RANK = attrgetter("stream_rank")
