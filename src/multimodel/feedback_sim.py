"""Simulate learning quality from feedback: a hidden (model, task) quality matrix, real prices.

The *real* ``intelligent`` strategy, with a :class:`~multimodel.tracking.quality.QualityBook`
attached, routes a stream of requests of several tasks over a strong expensive model, a mid one
and a cheap one (prices from the bundled catalog). Every answer gets a pass/fail score drawn
from the hidden quality of the model for the task, fed back as ``client.feedback`` would. An
**oracle** that knows the matrix chooses with the same factor weights (cost and quality, the
formula of ``intelligent``). Nothing here does I/O; time is virtual (one second per request,
or ``spacing``).

Example::

    from multimodel.feedback_sim import FeedbackScenario, simulate_feedback

    result = simulate_feedback(FeedbackScenario(seed=1, requests=5000))
    print(result.quality_ratio, result.cost_ratio)   # vs the oracle
    print(result.share)                               # {task: {model: share after warm-up}}

``FeedbackScenario(drift_at=2500, drift={("gpt-4.1-nano", "chat"): 0.5})`` changes the hidden
quality half-way; ``result.recovery`` then says how many requests of the affected task it took
until the model that got worse was down to at most 20 % of that task's traffic.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from .catalog import default_catalog
from .providers.base import Endpoint
from .strategies._learned import LearnedScores
from .strategies.base import RouteContext
from .strategies.intelligent import Intelligent
from .tracking.quality import FeedbackPolicy, QualityBook
from .tracking.stats import Tracker
from .types import ChatRequest

__all__ = ["DEFAULT_MATRIX", "FeedbackResult", "FeedbackScenario", "simulate_feedback"]

DEFAULT_MATRIX: dict[tuple[str, str], float] = {
    # chat: the cheap model is as good; summary: the mid one is enough; code and math: only the
    # strong one (with cost 0.2 / quality 0.8, the oracle's margins are 0.03 to 0.2).
    ("gpt-4.1", "chat"): 0.92,
    ("gpt-4.1-mini", "chat"): 0.90,
    ("gpt-4.1-nano", "chat"): 0.89,
    ("gpt-4.1", "summary"): 0.92,
    ("gpt-4.1-mini", "summary"): 0.91,
    ("gpt-4.1-nano", "summary"): 0.70,
    ("gpt-4.1", "code"): 0.90,
    ("gpt-4.1-mini", "code"): 0.78,
    ("gpt-4.1-nano", "code"): 0.55,
    ("gpt-4.1", "math"): 0.88,
    ("gpt-4.1-mini", "math"): 0.60,
    ("gpt-4.1-nano", "math"): 0.40,
}
"""The hidden probability that an answer of a model for a task is scored 1."""


@dataclass(frozen=True)
class FeedbackScenario:
    """A feedback workload.

    Args:
        seed: the seed of the task draws, the scores and the strategy's sampling.
        requests: how many requests (tasks drawn uniformly).
        matrix: hidden quality per (model, task) in [0, 1].
        factors: the factor weights of ``intelligent`` and the oracle.
        half_life: seconds (= requests) for a score's weight to halve.
        drift_at: the request at which ``drift`` replaces entries of the matrix (or ``None``).
        drift: the new hidden quality of some (model, task) entries.
        input_tokens, output_tokens: the size of every request (for the cost).
        warmup: requests left out of ``share`` (the learning phase).
        spacing: seconds between requests (1: the default's virtual second per request;
            a busy router is milliseconds apart, where ``draw_reuse`` batches draws).
        scored: the share of answers that get a score (1: every answer).
        draw_reuse: ``FeedbackPolicy.draw_reuse`` of the book.
    """

    seed: int = 0
    requests: int = 5000
    matrix: Mapping[tuple[str, str], float] = field(default_factory=lambda: dict(DEFAULT_MATRIX))
    factors: Mapping[str, float] = field(default_factory=lambda: {"cost": 0.2, "quality": 0.8})
    half_life: float = 2000.0
    drift_at: int | None = None
    drift: Mapping[tuple[str, str], float] = field(default_factory=dict)
    input_tokens: int = 500
    output_tokens: int = 300
    warmup: int = 500
    spacing: float = 1.0
    scored: float = 1.0
    draw_reuse: int = 16


@dataclass
class FeedbackResult:
    """What :func:`simulate_feedback` measured (quality is the hidden expected score of each
    chosen model; cost in USD)."""

    quality: float
    oracle_quality: float
    cost: float
    oracle_cost: float
    regret: list[float]
    """Cumulative regret (oracle utility minus the router's, same formula) every 100 requests."""
    share: dict[str, dict[str, float]]
    """Per task, the share of each model after the warm-up (and before any drift)."""
    oracle_choice: dict[str, str]
    explored: int
    """Choices the trace marked as exploration."""
    recovery: dict[str, int | None] = field(default_factory=dict)
    """Per task whose best model the drift made worse: requests of that task after the drift
    until that model got at most 20 % of the task's last 50 (``None``: never)."""

    @property
    def quality_ratio(self) -> float:
        """Average quality as a share of the oracle's."""
        return self.quality / self.oracle_quality

    @property
    def cost_ratio(self) -> float:
        """Cost as a share of the oracle's."""
        return self.cost / self.oracle_cost


def simulate_feedback(scenario: FeedbackScenario) -> FeedbackResult:
    """Run ``scenario``; deterministic for its seed."""
    catalog = default_catalog()
    models = sorted({m for m, _ in scenario.matrix})
    tasks = sorted({t for _, t in scenario.matrix})
    endpoints = [
        Endpoint(
            name=f"openai/{m}",
            model=m,
            provider="openai",
            adapter="openai",
            wire_model=m,
            base_url="http://sim.invalid/v1",
            spec=catalog.find(m, provider="openai"),
        )
        for m in models
    ]
    t = [0.0]
    tracker = Tracker(lambda: t[0])
    for ep in endpoints:
        tracker.register(ep.name, ep.model, ep.provider)
    strategy = Intelligent(factors={"performance": 0.0, **scenario.factors}, seed=scenario.seed)
    book = QualityBook(
        FeedbackPolicy(half_life=scenario.half_life, draw_reuse=scenario.draw_reuse),
        prior=lambda m: float(getattr(catalog.find(m, provider="openai"), "quality", 50)),
        clock=lambda: t[0],
    )
    strategy.attach_quality(book)
    ctxs = {
        task: RouteContext(
            request=ChatRequest(
                model="auto", messages=[{"role": "user", "content": "x"}], tags=[f"task:{task}"]
            ),
            input_tokens=scenario.input_tokens,
            output_tokens=scenario.output_tokens,
        )
        for task in tasks
    }
    price = {
        ep.model: float(ep.spec.pricing.input) * scenario.input_tokens / 1e6
        + float(ep.spec.pricing.output) * scenario.output_tokens / 1e6
        for ep in endpoints
        if ep.spec is not None and ep.spec.pricing is not None
    }
    rng = random.Random(f"{scenario.seed}:workload")
    # Which answers get a score: a stream of its own, so the workload is the same whatever
    # the share (and untouched when every answer is scored).
    scoring = random.Random(f"{scenario.seed}:scored")
    matrix = dict(scenario.matrix)
    f_cost = scenario.factors.get("cost", 0.0)
    f_qual = scenario.factors.get("quality", 0.0)
    min_price = min(price.values())

    def utility(model: str, task: str) -> float:
        best_q = max(matrix[(m, task)] for m in models) or 1.0
        return f_cost * min_price / price[model] + f_qual * matrix[(model, task)] / best_q

    def oracle(task: str) -> str:
        return max(models, key=lambda m: utility(m, task))

    quality = oracle_quality = cost = oracle_cost = regret = 0.0
    curve: list[float] = []
    counts: dict[str, dict[str, int]] = {task: dict.fromkeys(models, 0) for task in tasks}
    explored = 0
    drifted: dict[str, str] = {}
    recent: dict[str, list[bool]] = {}
    recovery: dict[str, int | None] = {}
    seen_after: dict[str, int] = {}
    before = {task: oracle(task) for task in tasks}
    for i in range(scenario.requests):
        t[0] = i * scenario.spacing
        if scenario.drift_at is not None and i == scenario.drift_at:
            for (m, task), value in scenario.drift.items():
                if value < matrix[(m, task)] and m == oracle(task):
                    drifted[task] = m  # the task's best model got worse
                    recent[task] = []
                    recovery[task] = None
                    seen_after[task] = 0
            matrix.update(scenario.drift)
        task = tasks[rng.randrange(len(tasks))]
        chosen, scores = strategy.choose_scored(endpoints, tracker, ctxs[task])
        if isinstance(scores, LearnedScores) and scores.explored:
            explored += 1
        model = chosen.model
        best = oracle(task)
        quality += matrix[(model, task)]
        oracle_quality += matrix[(best, task)]
        cost += price[model]
        oracle_cost += price[best]
        regret += utility(best, task) - utility(model, task)
        if i % 100 == 99:
            curve.append(regret)
        if i >= scenario.warmup and (scenario.drift_at is None or i < scenario.drift_at):
            counts[task][model] += 1
        if task in drifted and recovery[task] is None:
            seen_after[task] += 1
            window = recent[task]
            window.append(model == drifted[task])
            del window[:-50]
            if len(window) == 50 and sum(window) <= 10:
                recovery[task] = seen_after[task]
        score = 1.0 if rng.random() < matrix[(model, task)] else 0.0
        if scenario.scored >= 1.0 or scoring.random() < scenario.scored:
            book.add(model, task, score, at=t[0])
    share = {
        task: {m: n / (sum(c.values()) or 1) for m, n in c.items()} for task, c in counts.items()
    }
    return FeedbackResult(
        quality=quality / scenario.requests,
        oracle_quality=oracle_quality / scenario.requests,
        cost=cost,
        oracle_cost=oracle_cost,
        regret=curve,
        share=share,
        oracle_choice=before,
        explored=explored,
        recovery=recovery,
    )
