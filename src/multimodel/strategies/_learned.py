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
from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from operator import add
from typing import TYPE_CHECKING, NamedTuple

from .._core.trace import _BuiltOnRead
from ..providers.base import Endpoint
from ..tracking.quality import (
    DEFAULT_TASK,
    DRAW_WINDOW,
    Evidence,
    QualityBook,
    beta_mean_sd,
    posterior,
    task_of_tags,
    thompson_draw,
)
from ..tracking.stats import StatsView
from ._groups import PRICED, PricedGroups, Weights, lazy_thompson
from ._speeds import Speeds, group_speeds
from ._util import SCORE_TIE, Fleet, LockedRandom, forgiven_error_rate, pick_max_index
from .base import RouteContext
from .response_time import LONG_GENERATION, expected_latency

__all__ = ["LearnedQuality", "LearnedScores"]


class LearnedQuality:
    """The learned-quality state and choice of ``intelligent``: the feedback book, the random
    source of the posterior draws, and the Thompson-sampling choice."""

    # Set by the strategy: its factor weights (also as a tuple), tie-breaking random source and
    # price cache.
    factors: dict[str, float]
    _weights: Weights
    _rng: LockedRandom
    _static: dict[str, tuple[float | None, float, float]]

    if TYPE_CHECKING:

        def _static_of(self, endpoint: Endpoint) -> tuple[float | None, float, float]: ...

        def _grouped(
            self, fleet: Fleet, candidates: Sequence[Endpoint]
        ) -> tuple[PricedGroups, list[float]] | None: ...

    def _init_learned(self, seed: int | None) -> None:
        """No book yet (routing uses the catalog's quality until :meth:`attach_quality`)."""
        self._quality: QualityBook | None = None
        self._thompson = random.Random(seed)  # posterior draws
        # Draws made only to show the scores of models a choice did not need (see
        # _learned_fast), from their own stream: reading a trace changes no later choice.
        self._spare = random.Random(None if seed is None else f"{seed}/trace")

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
        why = _Why(
            book.policy.z, task, lambda: seen, chosen.model, models, rest, avails, self.factors
        )
        names = [c.name for c in candidates]
        return chosen, _OneByOne(
            len(names), lambda: dict(zip(names, sampled, strict=True)), why, lambda: draws
        )

    def _draws(
        self, models: Sequence[str], task: str, book: QualityBook
    ) -> tuple[dict[str, tuple[float, float, int]], dict[str, float]]:
        """Each model's posterior ``(alpha, beta, samples)`` for ``task`` now, and one Thompson
        draw of its quality (0-1). No lock: a draw only calls ``Random.random``, one C call
        that is atomic (as :meth:`LockedRandom.index` relies on)."""
        unique = list(dict.fromkeys(models))
        posts = book.posteriors(unique, task, book.clock())
        draw, rng = book.draw, self._thompson
        return dict(zip(unique, posts, strict=True)), {
            model: draw(a, b, rng) for model, (a, b, _) in zip(unique, posts, strict=True)
        }

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
        models, whatever the number of deployments; see :mod:`._groups`), and each group's
        fastest is kept between choices (see :mod:`._speeds`). ``None`` when the keys cannot be
        used (long generations, errors, unknown prices, a zero latency, stats other than the
        tracker's): then :meth:`_learned` decides. Nothing is built for the routing trace: it
        keeps the values the choice was made on and explains it when read."""
        if getattr(stats, "erring", 1):
            return None
        stream = ctx.stream
        if not stream and ctx.output_tokens >= LONG_GENERATION:
            return None  # scored with the time per output token: one candidate at a time
        grouped = fleet.extra.get(PRICED) or self._grouped(fleet, candidates)
        if grouped is None:
            return None
        priced = grouped[0]
        speeds = group_speeds(fleet, priced.members, stats, stream, self._weights[1])
        if speeds is None or speeds[5] == -math.inf:
            return None
        request = ctx.request
        tags = None if request is None else request.tags
        task = task_of_tags(tags) if tags else DEFAULT_TASK
        unique = priced.unique
        kept = fleet.extra.get(_EVIDENCE)  # _snapshot's first test, inline (every choice)
        snap = None if kept is None else kept.get(task)
        if snap is None or snap.version != book.version:
            snap = _snapshot(fleet, unique, task, book)
        evidence = snap.evidence
        now = book.clock()
        policy = book.policy
        # The batch's draws (FeedbackPolicy.draw_reuse): drawn as choices need them, shared by
        # up to draw_reuse choices within DRAW_WINDOW seconds while the evidence is unchanged.
        if snap.uses < policy.draw_reuse and now <= snap.until:
            snap.uses += 1
            draws = snap.draws
            qterms = snap.qterms
        else:
            draws = snap.draws = [None] * len(unique)
            qterms = snap.qterms = None
            snap.uses = 1
            snap.until = now + DRAW_WINDOW
        weights = self._weights
        rests = priced.rests(weights, speeds, ctx.input_tokens, ctx.output_tokens)
        if qterms is not None:  # every model of the batch drawn: each group's score, in C
            i = priced.member(list(map(add, rests, qterms)), speeds, weights[1], self._rng)
        else:
            # Only the models that can change the choice are drawn (see lazy_thompson).
            draw = partial(
                thompson_draw,
                evidence,
                now,
                policy.half_life,
                policy.max_evidence,
                self._thompson.random,
            )
            slots = priced.slots
            g = lazy_thompson(rests, slots, weights[2], draws, draw)
            if g is not None:
                i = priced.fastest_member(g, speeds, weights[1], self._rng)
                if None not in draws and snap.draws is draws:  # the batch is complete
                    snap.qterms = _quality_terms(slots, weights[2], draws)
            else:  # every model drawn, and no group won alone: score them all (ties at random)
                qterms = _quality_terms(slots, weights[2], draws)
                i = priced.member(list(map(add, rests, qterms)), speeds, weights[1], self._rng)
                if snap.draws is draws:  # the batch's terms (unless another thread began one)
                    snap.qterms = qterms
        # The trace keeps its own copy: reading it draws the models this choice did not need
        # (into the copy, so a trace read changes no later choice's draws).
        return candidates[i], _ByGroup(
            (self, book, task, evidence, now, candidates, priced, speeds, rests, draws[:], i)
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


class _Snapshot:
    """A task's evidence for a candidate set, as of one version of the book (an immutable
    snapshot: see :meth:`QualityBook.evidence`), and the batch of Thompson draws its choices
    share (``None``: not drawn yet; see ``FeedbackPolicy.draw_reuse``)."""

    __slots__ = ("draws", "evidence", "qterms", "until", "uses", "version")

    def __init__(self, version: int, evidence: list[Evidence]) -> None:
        self.version = version
        self.evidence = evidence
        self.draws: list[float | None] = []
        self.qterms: list[float] | None = None  # per group, once every model is drawn
        self.uses = 1 << 62  # no batch yet: the first choice starts one
        self.until = -math.inf


def _snapshot(fleet: Fleet, models: list[str], task: str, book: QualityBook) -> _Snapshot:
    """The book's evidence of ``models`` for ``task``, kept per candidate set and task while the
    book's version is unchanged. A new version whose evidence for this task is the same (a
    score for another task or model) keeps the batch of draws: they are draws of the same
    posteriors."""
    kept: dict[str, _Snapshot] | None = fleet.extra.get(_EVIDENCE)
    if kept is None:
        kept = fleet.extra[_EVIDENCE] = {}
    version = book.version
    found = kept.get(task)
    if found is not None and found.version == version:
        return found
    evidence = book.evidence(models, task)
    snap = _Snapshot(version, evidence)
    if found is not None and found.evidence == evidence:
        snap.draws, snap.qterms = found.draws, found.qterms
        snap.uses, snap.until = found.uses, found.until
    elif len(kept) >= _TASKS_KEPT:
        kept.clear()  # bounded: tasks are the application's own names
    kept[task] = snap
    return snap


_EVIDENCE = "evidence"  # Fleet.extra key of the per-task evidence snapshots
_TASKS_KEPT = 64


def _quality_terms(slots: list[int], f_qual: float, draws: list[float | None]) -> list[float]:
    """Each group's quality term given every model's draw (normalized by the highest)."""
    q_draw = f_qual / (max(draws) or 1.0)  # type: ignore[type-var]  # all drawn here
    return [q_draw * draws[s] for s in slots]  # type: ignore[operator]


def _sampled(
    rests: list[float], slots: list[int], f_qual: float, draws: list[float | None]
) -> list[float]:
    """Each group's score given every model's draw: ``rest + quality term``."""
    return list(map(add, rests, _quality_terms(slots, f_qual, draws)))


class _Why(NamedTuple):
    """What a learned choice was made on, kept to explain it when the trace is read: each
    model's posterior, the chosen model, and the scores without quality (with the factors)
    that tell which model the posterior means would have chosen."""

    z: float
    task: str
    params: Callable[[], Mapping[str, tuple[float, float, int]]]  # each model's, when read
    chosen: str
    models: Sequence[str]  # one per scored row (candidate or group)
    rests: Sequence[float]  # the cost / performance / availability terms of each row
    avails: Sequence[float] | None  # the availability each row's score is multiplied by
    factors: Mapping[str, float]

    def best(self) -> str:
        """The model the posterior means (no sampling) would have chosen."""
        means = {m: a / (a + b) for m, (a, b, _) in self.params().items()}
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
        for model, (a, b, n) in self.params().items():
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

    __slots__ = ("_dict",)
    _dict: dict[str, float] | None
    explains = True
    """The routing trace defers its ``note`` (see the dispatch)."""

    def _table(self) -> dict[str, float]:
        table: dict[str, float] | None = self._dict
        if table is None:
            table = self._dict = self._build()
        return table

    @abstractmethod
    def _build(self) -> dict[str, float]:
        """The scores, built on the first read."""

    @abstractmethod
    def _why(self) -> _Why:
        """What the choice was made on, to explain it."""

    @abstractmethod
    def _samples(self) -> dict[str, float]:
        """Each model's sampled quality."""

    @property
    def note(self) -> str:
        """Why this model was chosen (see the class docstring)."""
        return self._why().text()

    @property
    def samples(self) -> dict[str, float]:
        """Each model's sampled quality (0-1) the scores were computed with."""
        return dict(self._samples())

    @property
    def explored(self) -> bool:
        """Whether the sampled quality chose another model than the posterior means would."""
        why = self._why()
        return why.best() != why.chosen


class _OneByOne(LearnedScores):
    """The scores of :meth:`LearnedQuality._learned` (one per candidate)."""

    __slots__ = ("_drawn", "_len", "_made_why", "_make")

    def __init__(
        self,
        size: int,
        build: Callable[[], dict[str, float]],
        why: _Why,
        samples: Callable[[], dict[str, float]],
    ) -> None:
        self._len = size
        self._make = build
        self._dict = None
        self._made_why = why
        self._drawn = samples

    def __len__(self) -> int:
        return self._len  # without building: the trace asks on every decision

    def _build(self) -> dict[str, float]:
        return self._make()

    def _why(self) -> _Why:
        return self._made_why

    def _samples(self) -> dict[str, float]:
        return self._drawn()


_Raw = tuple[
    LearnedQuality,
    QualityBook,
    str,
    list[Evidence],
    float,
    Sequence[Endpoint],
    PricedGroups,
    Speeds,
    list[float],
    list[float | None],
    int,
]
"""What :meth:`LearnedQuality._learned_fast` chose on: the strategy, the book, the task, the
evidence and the time of the posteriors, the candidates, their groups and speeds, the groups'
scores without quality, the draws (``None``: not needed), the position chosen."""


class _ByGroup(LearnedScores):
    """The scores of :meth:`LearnedQuality._learned_fast` (one per group's fastest), kept as
    the values the choice was made on (one tuple: a choice stores one attribute); the table,
    the samples and the note are all built from them when read."""

    __slots__ = ("_raw",)

    def __init__(self, raw: _Raw) -> None:
        self._raw = raw
        self._dict = None

    def __len__(self) -> int:
        return len(self._raw[8])  # one per group, without building

    def _samples(self) -> dict[str, float]:
        owner, book, _, evidence, now, _, priced, _, _, draws, _ = self._raw
        policy = book.policy
        spare = owner._spare.random
        # The models not drawn could not change the choice: drawn now, for the trace, from
        # another source (reading a trace does not move the routing's random stream).
        for s, d in enumerate(draws):
            if d is None:
                draws[s] = thompson_draw(
                    evidence, now, policy.half_life, policy.max_evidence, spare, s
                )
        return dict(zip(priced.unique, draws, strict=True))  # type: ignore[arg-type]

    def _build(self) -> dict[str, float]:
        owner, _, _, _, _, candidates, priced, speeds, rests, draws, _ = self._raw
        self._samples()
        scores = _sampled(rests, priced.slots, owner._weights[2], draws)
        return dict(zip(priced.shown(candidates, speeds), scores, strict=True))

    def _why(self) -> _Why:
        owner, book, task, evidence, now, candidates, priced, _, rests, _, i = self._raw
        h = book.policy.half_life
        # The posteriors at the time of the choice, from the evidence snapshot.
        params = {m: posterior(e, now, h) for m, e in zip(priced.unique, evidence, strict=True)}
        return _Why(
            book.policy.z,
            task,
            lambda: params,
            candidates[i].model,
            priced.models,
            rests,
            None,
            owner.factors,
        )
