"""Learned quality: the Beta posterior and its forgetting against the closed form."""

from __future__ import annotations

import math
import random
import sys
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from multimodel.errors import ConfigError
from multimodel.tracking.quality import (
    FeedbackPolicy,
    QualityBook,
    beta_draw,
    beta_mean_sd,
    heuristic_task,
    posterior,
    task_of_tags,
    thompson_draw,
)
from multimodel.types import ChatRequest

scores = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
times = st.floats(min_value=0.0, max_value=1e6, allow_nan=False)


def closed_form(
    events: list[tuple[float, float]], now: float, h: float, a0: float, b0: float
) -> tuple[float, float]:
    a = a0 + sum(s * 2 ** (-(now - t) / h) for s, t in events)
    b = b0 + sum((1 - s) * 2 ** (-(now - t) / h) for s, t in events)
    return a, b


@settings(max_examples=200, deadline=None)
@given(
    events=st.lists(st.tuples(scores, times), min_size=0, max_size=30),
    half_life=st.floats(min_value=1.0, max_value=1e6),
    quality=st.integers(min_value=1, max_value=99),
    strength=st.floats(min_value=0.1, max_value=50),
    extra=st.floats(min_value=0.0, max_value=1e6),
)
def test_posterior_matches_the_closed_form_in_any_order(
    events: list[tuple[float, float]],
    half_life: float,
    quality: int,
    strength: float,
    extra: float,
) -> None:
    book = QualityBook(
        FeedbackPolicy(half_life=half_life, prior_strength=strength), prior=lambda _: quality
    )
    for s, t in events:  # arrival order is not time order: late scores included
        book.add("m", "code", s, at=t)
    now = max((t for _, t in events), default=0.0) + extra
    a, b, n = book.params("m", "code", now)
    a0, b0 = strength * quality / 100, strength * (1 - quality / 100)
    ea, eb = closed_form(events, now, half_life, a0, b0)
    assert n == len(events)
    assert a == pytest.approx(ea, rel=1e-9, abs=1e-9)
    assert b == pytest.approx(eb, rel=1e-9, abs=1e-9)
    est = book.estimate("m", "code", now)
    mean, sd = beta_mean_sd(ea, eb)
    assert est.mean == pytest.approx(mean, rel=1e-9, abs=1e-12)
    assert est.sd == pytest.approx(sd, rel=1e-6, abs=1e-12)
    assert est.lower == pytest.approx(max(0.0, mean - 1.64 * sd), rel=1e-6, abs=1e-9)


@settings(max_examples=50, deadline=None)
@given(events=st.lists(st.tuples(scores, times), min_size=1, max_size=20))
def test_replay_equals_live_updates(events: list[tuple[float, float]]) -> None:
    live = QualityBook(FeedbackPolicy(half_life=1000.0))
    for s, t in events:
        live.add("m", "*", s, at=t)
    replayed = QualityBook(FeedbackPolicy(half_life=1000.0))
    assert replayed.replay(("m", "*", s, t) for s, t in reversed(events)) == len(events)
    now = max(t for _, t in events) + 5
    for got, want in zip(replayed.params("m", "*", now), live.params("m", "*", now), strict=True):
        assert got == pytest.approx(want, rel=1e-9, abs=1e-9)


def test_without_forgetting_it_is_the_plain_beta_update() -> None:
    book = QualityBook(FeedbackPolicy(half_life=math.inf, prior_strength=2), prior=lambda _: 50)
    for s in (1, 1, 0, 0.5):
        book.add("m", "*", s, at=0)
    assert book.params("m", "*", 1e9) == (1 + 2.5, 1 + 1.5, 4)


def test_old_evidence_fades_back_to_the_prior() -> None:
    book = QualityBook(FeedbackPolicy(half_life=10.0), prior=lambda _: 80)
    for _ in range(100):
        book.add("m", "*", 0.0, at=0.0)
    assert book.estimate("m", "*", 0.0).mean < 0.05
    assert book.estimate("m", "*", 1000.0).mean == pytest.approx(0.8, abs=1e-3)


def test_exploration_floor_caps_the_evidence_when_sampling() -> None:
    book = QualityBook(FeedbackPolicy(half_life=math.inf, max_evidence=20))
    for _ in range(10_000):
        book.add("m", "*", 1.0, at=0.0)
    rng = random.Random(1)
    draws = [book.sample("m", "*", rng, 0.0) for _ in range(5000)]
    # Capped at 20 observations, P(draw < 0.99) is about 0.24 % (about 12 of 5,000 draws);
    # with 10,000 unforgotten scores it would be 0.99 ** 10_000, about 2e-44.
    assert min(draws) < 0.99


def test_invalid_scores_and_policies() -> None:
    book = QualityBook()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        book.add("m", "*", 1.5)
    with pytest.raises(ConfigError):
        FeedbackPolicy(half_life=0)
    with pytest.raises(ConfigError):
        FeedbackPolicy(prior_strength=-1)
    for reuse in (0, -3, 2.5, True):
        with pytest.raises(ConfigError, match="draw_reuse"):
            FeedbackPolicy(draw_reuse=reuse)  # type: ignore[arg-type]
    assert FeedbackPolicy(draw_reuse=1).draw_reuse == 1


def test_task_tags_and_the_heuristic_classifier() -> None:
    assert task_of_tags(["x", "task:code", "task:other"]) == "code"
    assert task_of_tags(None) == "*"

    def ask(text: str) -> ChatRequest:
        return ChatRequest(model="m", messages=[{"role": "user", "content": text}])

    assert heuristic_task(ask("fix this:\n```py\nx = 1\n```")) == "code"
    assert heuristic_task(ask("word " * 10_000)) == "long"
    assert heuristic_task(ask("Здравствуйте, как дела сегодня?")) == "multilingual"
    assert heuristic_task(ask("What is the capital of France?")) is None


def test_remembered_ids_are_bounded() -> None:
    from multimodel.tracking.quality import ServedResponse

    book = QualityBook(FeedbackPolicy(remember=3))
    for i in range(10):
        book.remember(f"r{i}", ServedResponse("m", "*", f"d{i}"))
    # The last 3 at least, never more than 6: r0-r2 are gone.
    assert [book.served(f"r{i}") for i in range(3)] == [None] * 3
    for i in range(7, 10):
        assert book.served(f"r{i}") == ServedResponse("m", "*", f"d{i}")
    assert sum(book.served(f"r{i}") is not None for i in range(10)) <= 6


def test_a_remembered_id_costs_less_than_the_id_string() -> None:
    # Feedback remembers up to 2 x 100,000 ids by default: the map must not keep each id's
    # string alive (~90 B for a 40-character id) once its response is gone.
    import tracemalloc

    from multimodel.tracking.quality import ServedResponse

    book = QualityBook(FeedbackPolicy(remember=50_000))
    served = ServedResponse("m", "*", "d")
    ids = 20_000
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(ids):
            book.remember(f"chatcmpl-{i:031d}", served)  # 40 characters, dropped at once
        per_id = (tracemalloc.get_traced_memory()[0] - before) / ids
    finally:
        tracemalloc.stop()
    assert per_id < 80, per_id  # the dict's slot and a 64-bit int
    assert book.served(f"chatcmpl-{ids - 1:031d}") == served
    assert book.served(f"chatcmpl-{ids:031d}") is None


def _ks_two_sample(xs: list[float], ys: list[float]) -> float:
    """The two-sample Kolmogorov-Smirnov statistic (largest gap between the empirical CDFs)."""
    xs, ys = sorted(xs), sorted(ys)
    i = j = 0
    gap = 0.0
    while i < len(xs) and j < len(ys):
        if xs[i] <= ys[j]:
            i += 1
        else:
            j += 1
        gap = max(gap, abs(i / len(xs) - j / len(ys)))
    return gap


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (2.4, 0.6),  # BC (the smaller parameter <= 1), either order
        (0.6, 1.4),
        (0.3, 0.2),
        (0.02, 1.98),  # the weakest prior the book makes (quality clipped at 1 %)
        (1.0, 1.0),
        (1.5, 1.5),  # BB (both > 1), either order
        (5.0, 3.0),
        (150.0, 50.0),
        (40.0, 160.0),
    ],
)
def test_beta_draw_has_the_beta_distribution(a: float, b: float) -> None:
    n = 20_000
    rng = random.Random(a * 1000 + b)
    draws = [beta_draw(a, b, rng.random) for _ in range(n)]
    reference = [rng.betavariate(a, b) for _ in range(n)]
    # KS at the 0.1 % level (c(0.001) = 1.95): same distribution as random.betavariate.
    assert _ks_two_sample(draws, reference) < 1.95 * math.sqrt(2 / n)
    mean = sum(draws) / n
    var = sum((x - mean) ** 2 for x in draws) / n
    want_mean = a / (a + b)
    want_var = a * b / ((a + b) ** 2 * (a + b + 1))
    assert abs(mean - want_mean) < 5 * math.sqrt(want_var / n)
    assert var == pytest.approx(want_var, rel=0.1)
    assert all(0.0 <= x <= 1.0 for x in draws)


def test_posteriors_are_params_in_one_call() -> None:
    clock = [0.0]
    book = QualityBook(
        FeedbackPolicy(half_life=50.0), prior={"a": 70.0}.get, clock=lambda: clock[0]
    )
    book.add("a", "*", 1.0, at=0.0)
    book.add("b", "code", 0.25, at=10.0)
    for now in (0.0, 5.0, 100.0):
        models = ["a", "b", "c"]
        for task in ("*", "code"):
            want = [book.params(m, task, now) for m in models]
            assert book.posteriors(models, task, now) == want


def _cheng(a: float, b: float, random_: Callable[[], float]) -> float:
    """Cheng's BB / BC written plainly, every constant worked out before the loop: what
    :func:`beta_draw` (whose rejection constants are worked out on first use) must equal."""
    lo, hi = (a, b) if a <= b else (b, a)
    alpha = lo + hi
    if lo > 1.0:
        beta = math.sqrt((alpha - 2.0) / (2.0 * lo * hi - alpha))
        gamma = lo + 1.0 / beta
        while True:
            u1 = random_()
            if not u1:
                continue
            u2 = random_()
            v = beta * math.log(u1 / (1.0 - u1))
            w = lo * math.exp(v)
            z = u1 * u1 * u2
            r = gamma * v - math.log(4.0)
            s = lo + r - w
            if s + 1.0 + math.log(5.0) >= 5.0 * z:
                break
            t = math.log(z)
            if s > t or r + alpha * math.log(alpha / (hi + w)) >= t:
                break
        return w / (hi + w) if a == lo else hi / (hi + w)
    beta = 1.0 / lo
    delta = 1.0 + hi - lo
    k1 = delta * (0.0138889 + 0.0416667 * lo) / (hi * beta - 0.777778)
    k2 = 0.25 + (0.5 + 0.25 / delta) * lo
    while True:
        u1 = random_()
        if not u1:
            continue
        u2 = random_()
        if u1 < 0.5:
            y = u1 * u2
            z = u1 * y
            if 0.25 * u2 + z - y >= k1:
                continue
        else:
            z = u1 * u1 * u2
            if z <= 0.25:
                v = beta * math.log(u1 / (1.0 - u1))
                w = min(hi * math.exp(v) if v <= 709.0 else sys.float_info.max, sys.float_info.max)
                break
            if z >= k2:
                continue
        v = beta * math.log(u1 / (1.0 - u1))
        w = min(hi * math.exp(v) if v <= 709.0 else sys.float_info.max, sys.float_info.max)
        if alpha * (math.log(alpha / (lo + w)) + v) - math.log(4.0) >= math.log(z):
            break
    return lo / (lo + w) if a == lo else w / (lo + w)


_shape = st.floats(min_value=0.01, max_value=300.0, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(a=_shape, b=_shape, seed=st.integers(0, 2**32 - 1))
def test_beta_draw_is_chengs_draw_bit_for_bit(a: float, b: float, seed: int) -> None:
    # The same uniforms give the same variates, and as many of them are read.
    mine, plain = random.Random(seed), random.Random(seed)
    for _ in range(20):
        assert beta_draw(a, b, mine.random) == _cheng(a, b, plain.random)
        assert mine.getstate() == plain.getstate()


@settings(max_examples=200, deadline=None)
@given(
    scores=st.lists(st.floats(0.0, 1.0), max_size=6),
    elapsed=st.floats(0.0, 1e6),
    cap=st.sampled_from([1.0, 3.0, 200.0]),
    seed=st.integers(0, 2**32 - 1),
)
def test_thompson_draw_is_the_capped_posteriors_draw(
    scores: list[float], elapsed: float, cap: float, seed: int
) -> None:
    book = QualityBook(FeedbackPolicy(half_life=3600.0, max_evidence=cap), clock=lambda: 0.0)
    for k, score in enumerate(scores):
        book.add("m", "*", score, at=float(k))
    now = float(len(scores)) + elapsed
    a, b, _ = posterior(book.evidence(["m"], "*")[0], now, 3600.0)
    if a + b > cap:
        a, b = a * cap / (a + b), b * cap / (a + b)
    mine, plain = random.Random(seed), random.Random(seed)
    evidence = book.evidence(["m"], "*")
    assert thompson_draw(evidence, now, 3600.0, cap, mine.random, 0) == _cheng(a, b, plain.random)
