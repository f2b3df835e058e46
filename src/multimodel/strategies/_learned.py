"""Learned quality for ``intelligent``: each model's quality per task, learned from feedback.

Once the client's :class:`~multimodel.tracking.quality.QualityBook` has received feedback,
``intelligent`` scores quality by Thompson sampling: each model's quality is drawn from its
posterior for the request's task and weighed with cost and performance as usual; the routing
trace notes every estimate and whether the choice was exploration (:class:`LearnedScores`).
Until the first feedback nothing here runs. ``min_quality`` is then checked against the lower
bound of the learned estimate.

:class:`LearnedQuality` is a base class of
:class:`~multimodel.strategies.intelligent.Intelligent` (not an object it calls), so a choice
costs no extra indirection.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from math import exp
from typing import TYPE_CHECKING, NamedTuple

from .._core.trace import _BuiltOnRead
from ..providers.base import Endpoint
from ..tracking.quality import QualityBook, beta_mean_sd, task_of_tags
from ..tracking.stats import StatsView
from ._util import (
    SCORE_TIE,
    Fleet,
    LockedRandom,
    forgiven_error_rate,
    pick_max_index,
    pick_min_index,
    picker,
)
from .base import RouteContext
from .response_time import expected_latency, speed_ranks

__all__ = ["LearnedQuality", "LearnedScores"]

_LEARNED = "learned"  # Fleet.extra key of the (model, entry) groups of learned choices


class LearnedQuality:
    """The learned-quality state and choice of ``intelligent``: the feedback book, the random
    source of the posterior draws, and the Thompson-sampling choice."""

    # Set by the strategy: its factor weights, tie-breaking random source and price cache.
    factors: dict[str, float]
    _rng: LockedRandom
    _static: dict[str, tuple[float | None, float, float]]

    if TYPE_CHECKING:

        def _static_of(self, endpoint: Endpoint) -> tuple[float | None, float, float]: ...

    def _init_learned(self, seed: int | None) -> None:
        """No book yet (routing uses the catalog's quality until :meth:`attach_quality`)."""
        self._quality: QualityBook | None = None
        self._thompson = random.Random(seed)  # posterior draws (guarded: see _learned)
        self._thompson_lock = threading.Lock()

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
        the posterior means would have chosen another model (worked out when the trace is read)."""
        request = ctx.request
        task = task_of_tags(request.tags if request is not None else None)
        seen, draws = self._draws([c.model for c in candidates], task, book)
        rest, avails = self._parts(candidates, stats, ctx)
        q_draw = self.factors.get("quality", 0.0) / (max(draws.values()) or 1.0)
        sampled = [
            (r + q_draw * draws[c.model]) * a
            for c, r, a in zip(candidates, rest, avails, strict=True)
        ]
        chosen = candidates[pick_max_index(sampled, self._rng, SCORE_TIE)]
        models = [c.model for c in candidates]
        why = _Why(book.policy.z, task, seen, chosen.model, models, rest, avails, self.factors)
        names = [c.name for c in candidates]
        return chosen, LearnedScores(
            len(names), lambda: dict(zip(names, sampled, strict=True)), why
        )

    def _draws(
        self, models: Iterable[str], task: str, book: QualityBook
    ) -> tuple[dict[str, tuple[float, float, int]], dict[str, float]]:
        """Each model's posterior ``(alpha, beta, samples)`` for ``task`` now, and one Thompson
        draw of its quality (0-1), in one pass under the draw lock."""
        now = book.clock()
        seen: dict[str, tuple[float, float, int]] = {}
        draws: dict[str, float] = {}
        params, draw, rng = book.params, book.draw, self._thompson
        with self._thompson_lock:  # random.Random's state is not safe to share unguarded
            for model in models:
                if model not in seen:
                    a, b, _ = seen[model] = params(model, task, now)
                    draws[model] = draw(a, b, rng)
        return seen, draws

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
        ranks = speed_ranks(fleet, ctx, getattr(stats, "ranked", -1))
        if ranks is None:
            return None
        best_rank = min(ranks)
        if best_rank == -math.inf:
            return None
        groups = fleet.extra.get(_LEARNED)
        if groups is None:
            by: dict[tuple[str, tuple[float | None, float, float]], list[int]] = {}
            static, static_of = self._static, self._static_of
            for i, c in enumerate(candidates):
                by.setdefault((c.model, static.get(c.name) or static_of(c)), []).append(i)
            groups = fleet.extra[_LEARNED] = [
                (model, entry, members, picker(members)) for (model, entry), members in by.items()
            ]
        request = ctx.request
        task = task_of_tags(request.tags if request is not None else None)
        models = [model for model, _, _, _ in groups]
        seen, draws = self._draws(models, task, book)
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
        fastest = [min(pick(ranks)) for _, _, _, pick in groups]
        rests: list[float] = []
        sampled: list[float] = []
        for model, cost, k in zip(models, costs, fastest, strict=True):
            cost_s = 1.0 if min_cost is None or not cost else min_cost / cost
            if cost is None and min_cost is not None:
                cost_s = 0.5
            rest = f_cost * cost_s + f_perf * exp(best_rank - k) + f_avail
            rests.append(rest)
            sampled.append(rest + q_draw * draws[model])
        g = pick_max_index(sampled, self._rng, SCORE_TIE)
        _, _, members, pick = groups[g]
        chosen = candidates[members[pick_min_index(list(pick(ranks)), self._rng)]]
        why = _Why(book.policy.z, task, seen, chosen.model, models, rests, None, f)

        def shown() -> dict[str, float]:
            """Each group's fastest deployment and its score (built when the trace is read)."""
            out = {}
            for (_, _, members, pick), k, score in zip(groups, fastest, sampled, strict=True):
                out[candidates[members[list(pick(ranks)).index(k)]].name] = score
            return out

        return chosen, LearnedScores(len(groups), shown, why)

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


class _Why(NamedTuple):
    """What a learned choice was made on, kept to explain it when the trace is read: each
    model's posterior, the chosen model, and the scores without quality (with the factors)
    that tell which model the posterior means would have chosen."""

    z: float
    task: str
    params: Mapping[str, tuple[float, float, int]]
    chosen: str
    models: Sequence[str]  # one per scored row (candidate or group)
    rests: Sequence[float]  # the cost / performance / availability terms of each row
    avails: Sequence[float] | None  # the availability each row's score is multiplied by
    factors: Mapping[str, float]

    def best(self) -> str:
        """The model the posterior means (no sampling) would have chosen."""
        means = {m: a / (a + b) for m, (a, b, _) in self.params.items()}
        q_mean = self.factors.get("quality", 0.0) / (max(means.values()) or 1.0)
        avails = self.avails or [1.0] * len(self.rests)
        by_mean = [
            (r + q_mean * means[m]) * a
            for m, r, a in zip(self.models, self.rests, avails, strict=True)
        ]
        return self.models[by_mean.index(max(by_mean))]

    def text(self) -> str:
        """The note: each model's estimate, uncertainty and samples; exploration or not."""
        parts = []
        for model, (a, b, n) in self.params.items():
            mean, sd = beta_mean_sd(a, b)
            lower = max(0.0, mean - self.z * sd)
            parts.append(f"{model} {mean:.3f}±{sd:.3f} (n={n}, lower {lower:.3f})")
        chosen, best = self.chosen, self.best()
        how = (
            f"exploration: the sampled quality chose {chosen} over {best}, the best by the "
            "estimates"
            if chosen != best
            else f"exploitation: {chosen} is the best by the estimates"
        )
        return f"learned quality for task {self.task!r}: " + ", ".join(parts) + "; " + how


class LearnedScores(_BuiltOnRead):
    """The scores of a choice made on learned quality (a read-only mapping built when read),
    with ``note`` (each model's estimate, uncertainty and sample count, and whether the choice
    was exploration) for the routing trace's ``notes``; ``explored`` is that flag. Both are
    worked out only when read: a choice costs the draws and the scores, nothing more."""

    __slots__ = ("_build", "_dict", "_len", "_why")

    def __init__(self, size: int, build: Callable[[], dict[str, float]], why: _Why) -> None:
        self._len = size
        self._build = build
        self._dict: dict[str, float] | None = None
        self._why = why

    def _table(self) -> dict[str, float]:
        table = self._dict
        if table is None:
            table = self._dict = self._build()
        return table

    def __len__(self) -> int:
        return self._len  # without building: the trace asks on every decision

    @property
    def note(self) -> str:
        """Why this model was chosen (see the class docstring)."""
        return self._why.text()

    @property
    def explored(self) -> bool:
        """Whether the sampled quality chose another model than the posterior means would."""
        return self._why.best() != self._why.chosen
