"""``intelligent`` keeps each group's fastest rank key between choices (``_speeds``), updated from
the tracker's ring of re-ranked records: whatever was recorded (first measurements, streams,
deployments of other candidate sets, more records than the ring holds), the kept snapshot is
what reading every rank key afresh gives; and seeded runs choose what the straightforward
formula, on every rank key read afresh, says is best."""

from __future__ import annotations

import math
import random
import threading
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from multimodel._core.clock import ManualClock
from multimodel.catalog.models import ModelSpec, Pricing
from multimodel.providers.base import Endpoint
from multimodel.strategies import RouteContext
from multimodel.strategies._speeds import Speeds, filled, group_speeds
from multimodel.strategies._util import Fleet
from multimodel.strategies.intelligent import Intelligent, LearnedScores
from multimodel.tracking.outcome import Outcome
from multimodel.tracking.quality import QualityBook
from multimodel.tracking.stats import RERANK_RING, Tracker

F_PERF = 0.4


def spec(id_: str, price_in: str, price_out: str, quality: float) -> ModelSpec:
    return ModelSpec(
        id=id_,
        provider="openai",
        context_window=128_000,
        max_output_tokens=4096,
        pricing=Pricing(input=Decimal(price_in), output=Decimal(price_out)),
        capabilities=frozenset(),
        quality=quality,
    )


MODELS = {
    "strong": spec("strong", "2", "8", 90),
    "mid": spec("mid", "0.4", "1.6", 85),
    "cheap": spec("cheap", "0.1", "0.4", 80),
}


def ep(name: str, model: str) -> Endpoint:
    return Endpoint(
        name=name,
        model=model,
        wire_model=model,
        provider="openai",
        base_url="https://x.test/v1",
        spec=MODELS[model],
    )


def record(tracker: Tracker, name: str, latency: float, stream: bool = False) -> None:
    tracker.started(name)
    tracker.record(
        Outcome(
            deployment=name,
            model="m",
            provider="openai",
            ok=True,
            latency=latency,
            started_at=0.0,
            stream=stream,
            ttft=latency / 3 if stream else None,
        )
    )


def fresh(fleet: Fleet, stream: bool) -> tuple[list[float], float]:
    """Every candidate's rank key read now (the unmeasured given the lowest measured, 0 when
    none is), and the lowest: what the snapshot must say."""
    assert fleet.cells is not None
    attr = "stream_rank" if stream else "latency_rank"
    keys: list[float | None] = [getattr(cell, attr) for cell in fleet.cells]
    measured = [k for k in keys if k is not None]
    best = min(measured) if measured else 0.0
    return [best if k is None else k for k in keys], best


def check(speeds: Speeds | None, fleet: Fleet, members: list[list[int]], stream: bool) -> None:
    assert speeds is not None
    ranks, best = fresh(fleet, stream)
    assert speeds[5] == best
    for g, group in enumerate(members):
        assert filled(speeds, g) == [ranks[i] for i in group]
        assert speeds[4][g] == min(ranks[i] for i in group)
        assert speeds[6][g] == F_PERF * math.exp(best - speeds[4][g])


_ops = st.lists(
    st.one_of(
        # (deployment, latency, stream): in the fleet (0-8) or another candidate set's (9-10)
        st.tuples(st.integers(0, 10), st.floats(0.01, 5.0), st.booleans()),
        st.just("check"),
        st.just("burst"),  # more records than the ring holds between two checks
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(ops=_ops, size=st.integers(1, 9), groups=st.integers(1, 4), seed=st.integers(0, 99))
def test_the_kept_snapshot_is_what_a_fresh_read_gives(
    ops: list[object], size: int, groups: int, seed: int
) -> None:
    clock = ManualClock()
    tracker = Tracker(clock.monotonic)
    rng = random.Random(seed)
    names = [f"d{i}" for i in range(11)]
    candidates = [ep(names[i], "cheap") for i in range(size)]
    fleet = Fleet(candidates, tracker)
    # Each group keeps at least one member; the rest are spread at random.
    group_of = [i % groups if i < groups else rng.randrange(groups) for i in range(size)]
    members = [[i for i in range(size) if group_of[i] == g] for g in range(groups)]
    members = [m for m in members if m]
    for op in [*ops, "check"]:
        if op == "check":
            for stream in (False, True):
                check(group_speeds(fleet, members, tracker, stream, F_PERF), fleet, members, stream)
        elif op == "burst":
            for _ in range(RERANK_RING + 3):
                record(tracker, rng.choice(names), rng.uniform(0.1, 2.0), rng.random() < 0.3)
        else:
            assert isinstance(op, tuple)
            index, latency, stream = op
            clock.advance(rng.uniform(0.0, 3.0))
            record(tracker, names[index], latency, stream)


def test_concurrent_choices_read_consistent_snapshots() -> None:
    # Snapshots are never modified once published: readers racing with each other and with
    # records each see one that a fresh read gave at some point, and the last is up to date.
    clock = ManualClock()
    tracker = Tracker(clock.monotonic)
    candidates = [ep(f"d{i}", "cheap") for i in range(12)]
    fleet = Fleet(candidates, tracker)
    members = [list(range(0, 12, 3)), list(range(1, 12, 3)), list(range(2, 12, 3))]
    for c in candidates:
        record(tracker, c.name, 0.5)
    failures: list[str] = []

    def reader() -> None:
        for _ in range(300):
            speeds = group_speeds(fleet, members, tracker, False, F_PERF)
            assert speeds is not None
            for g in range(3):
                if speeds[4][g] != min(filled(speeds, g)):
                    failures.append(f"group {g}: {speeds[4][g]} is not its lowest")

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(300):
            record(tracker, f"d{rng.randrange(12)}", rng.uniform(0.1, 2.0))

    threads = [threading.Thread(target=reader) for _ in range(3)]
    threads += [threading.Thread(target=writer, args=(s,)) for s in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    check(group_speeds(fleet, members, tracker, False, F_PERF), fleet, members, False)


def reference_scores(
    strategy: Intelligent,
    candidates: tuple[Endpoint, ...],
    fleet: Fleet,
    ctx: RouteContext,
    quality: dict[str, float],
) -> list[float]:
    """The formula, straightforwardly: every rank key read now, each candidate scored."""
    ranks, best = fresh(fleet, ctx.stream)
    f = strategy.factors
    costs = []
    for c in candidates:
        pricing = MODELS[c.model].pricing
        assert pricing is not None
        costs.append(
            float(pricing.input) / 1e6 * ctx.input_tokens
            + float(pricing.output) / 1e6 * ctx.output_tokens
        )
    top = max(quality.values()) or 1.0
    return [
        f.get("cost", 0.0) * min(costs) / cost
        + f.get("performance", 0.0) * math.exp(best - k)
        + f.get("quality", 0.0) * quality[c.model] / top
        for c, cost, k in zip(candidates, costs, ranks, strict=True)
    ]


def seeded_run(learned: bool, seed: int) -> None:
    clock = ManualClock()
    tracker = Tracker(clock.monotonic)
    rng = random.Random(seed)
    models = ["strong", "mid", "cheap"]
    candidates = tuple(ep(f"d{i}", models[i % 3]) for i in range(12))
    strategy = Intelligent(seed=seed)
    if learned:
        book = QualityBook(prior=lambda m: MODELS[m].quality, clock=clock.monotonic)
        for model, score in (("strong", 0.9), ("mid", 0.75), ("cheap", 0.6)):
            for _ in range(3):
                book.add(model, "*", score)
        strategy.attach_quality(book)
    for c in candidates[:9]:  # three left unmeasured for a while: scored like the fastest
        record(tracker, c.name, rng.uniform(0.2, 1.0))
    names = [c.name for c in candidates]
    for step in range(250):
        ctx = RouteContext(
            input_tokens=rng.randrange(10, 4000), output_tokens=rng.randrange(10, 400)
        )
        chosen, scores = strategy.choose_scored(candidates, tracker, ctx)
        fleet = strategy._fleets.get(candidates, tracker)
        if learned:
            assert isinstance(scores, LearnedScores)
            quality = scores.samples  # drawn or, if not needed, drawn for the trace
        else:
            quality = {m: MODELS[m].quality for m in models}
        want = reference_scores(strategy, candidates, fleet, ctx, quality)
        # The choice is the best by the formula (exact ties may go either way).
        assert want[candidates.index(chosen)] >= max(want) - 1e-9, step
        for name, score in scores.items():  # and the trace shows the formula's scores
            assert math.isclose(score, want[names.index(name)], rel_tol=1e-9), (step, name)
        clock.advance(rng.uniform(0.0, 2.0))
        record(tracker, chosen.name, rng.uniform(0.2, 1.5))
        if rng.random() < 0.3:  # another deployment answers (a retry, another router)
            record(tracker, rng.choice(names), rng.uniform(0.2, 1.5))
        if step % 60 == 59:  # more answers than the ring holds since the last choice
            for _ in range(RERANK_RING + 1):
                record(tracker, rng.choice(names), rng.uniform(0.2, 1.5))


def test_seeded_learned_choices_are_the_formulas_best() -> None:
    for seed in range(4):
        seeded_run(learned=True, seed=seed)


def test_seeded_catalog_choices_are_the_formulas_best() -> None:
    for seed in range(4):
        seeded_run(learned=False, seed=seed)
