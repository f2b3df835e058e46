"""``intelligent``'s learned choice and hard constraints, sans I/O: lazily explained choices
(trace notes built when read), ``max_p95`` on the measured p95's lower bound, and
``max_cost_per_call``."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest

from multimodel._core.clock import ManualClock
from multimodel._core.trace import Notes, new_trace
from multimodel.catalog.models import ModelSpec, Pricing
from multimodel.errors import ConfigError
from multimodel.providers.base import Endpoint
from multimodel.strategies import RouteContext, make_strategy
from multimodel.strategies.intelligent import Intelligent, LearnedScores
from multimodel.tracking.outcome import Outcome
from multimodel.tracking.quality import DRAW_WINDOW, FeedbackPolicy, QualityBook
from multimodel.tracking.stats import Tracker
from multimodel.types import ChatRequest, Message

CTX = RouteContext(input_tokens=1000, output_tokens=500)


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


def ep(name: str, model: str, s: ModelSpec) -> Endpoint:
    return Endpoint(
        name=name,
        model=model,
        wire_model=model,
        provider="openai",
        base_url="https://x.test/v1",
        spec=s,
    )


STRONG = spec("strong", "2", "8", 90)
CHEAP = spec("cheap", "0.1", "0.4", 80)


def record(tracker: Tracker, name: str, latency: float, model: str = "m") -> None:
    tracker.started(name)
    tracker.record(
        Outcome(
            deployment=name,
            model=model,
            provider="openai",
            ok=True,
            latency=latency,
            started_at=0.0,
        )
    )


# -- notes built when read ---------------------------------------------------------------------


class Counted:
    """A deferred note that counts how often it was formatted."""

    def __init__(self) -> None:
        self.formatted = 0

    @property
    def note(self) -> str:
        self.formatted += 1
        return "why"


def test_a_deferred_note_is_formatted_once_and_only_when_read() -> None:
    notes = Notes(["first"])
    source = Counted()
    notes.defer(source)
    notes.append("last")
    assert len(notes) == 3 and source.formatted == 0  # counting does not format
    assert notes == ["first", "why", "last"] and source.formatted == 1
    assert list(notes) == ["first", "why", "last"] and notes[1] == "why"
    assert source.formatted == 1  # kept once formatted
    assert repr(notes) == "['first', 'why', 'last']" and notes != ["first"]
    assert notes == Notes(["first", "why", "last"]) and notes != "first"
    notes[0] = "one"
    del notes[2]
    notes.insert(0, "zero")
    assert notes[:2] == ["zero", "one"]
    trace = new_trace("m")
    trace.notes.defer(Counted())
    assert trace.to_dict()["notes"] == ["why"]


def book_with_feedback(clock: ManualClock, scores: dict[str, float]) -> QualityBook:
    priors = {"strong": 90.0, "cheap": 80.0}
    book = QualityBook(prior=priors.get, clock=clock.monotonic)
    for model, score in scores.items():
        for _ in range(50):
            book.add(model, "*", score)
    return book


def test_the_learned_choice_is_explained_when_read() -> None:
    clock = ManualClock()
    tracker = Tracker(clock.monotonic)
    candidates = [ep("s", "strong", STRONG), ep("c", "cheap", CHEAP)]
    strategy = Intelligent(factors={"cost": 0.5, "quality": 0.5}, seed=1)
    strategy.attach_quality(book_with_feedback(clock, {"cheap": 0.0, "strong": 1.0}))
    # Unmeasured deployments: the per-candidate path.
    chosen, scores = strategy.choose_scored(candidates, tracker, CTX)
    assert isinstance(scores, LearnedScores)
    assert chosen.name == "s" and len(scores) == 2 and not scores.explored
    assert "exploitation: strong is the best by the estimates" in scores.note
    assert "cheap 0.031±0.024" in scores.note and "(n=50" in scores.note
    assert set(scores) == {"s", "c"} and scores["s"] > scores["c"]
    # Measured deployments: the grouped path (one group per model), same explanation.
    for name, model in (("s", "strong"), ("c", "cheap")):
        record(tracker, name, 0.5, model)
    picks = [strategy.choose_scored(candidates, tracker, CTX) for _ in range(40)]
    for chosen, scores in picks:
        assert isinstance(scores, LearnedScores) and dict(scores).keys() == {"s", "c"}
        assert ("exploitation: strong" in scores.note) == (chosen.name == "s")
    # cheap is sampled above 1/20 of strong's quality (what offsets its price) now and then
    assert 20 < sum(chosen.name == "s" for chosen, _ in picks) < 40


def test_exploration_is_flagged_when_the_draw_beats_the_means() -> None:
    clock = ManualClock()
    tracker = Tracker(clock.monotonic)
    candidates = [ep("s", "strong", STRONG), ep("c", "cheap", CHEAP)]
    strategy = Intelligent(factors={"cost": 0.5, "quality": 0.5}, seed=7)
    # One score each: wide posteriors, so the draws often disagree with the means.
    book = QualityBook(prior={"strong": 90.0, "cheap": 80.0}.get, clock=clock.monotonic)
    book.add("strong", "*", 1.0)
    book.add("cheap", "*", 0.0)
    strategy.attach_quality(book)
    flags = []
    # The means pick cheap; the draws pick strong when cheap's is under 1/20 of strong's
    # (about 1.2 % of the time): about 23 explorations in 2,000 choices.
    for _ in range(2000):
        _, scores = strategy.choose_scored(candidates, tracker, CTX)
        assert isinstance(scores, LearnedScores)
        flags.append(scores.explored)
        assert ("exploration" in scores.note) == scores.explored
    assert 5 < sum(flags) < 60


# -- max_p95 -----------------------------------------------------------------------------------


def test_max_p95_excludes_a_deployment_measured_slow_while_others_qualify() -> None:
    clock = ManualClock()
    tracker = Tracker(clock.monotonic)
    candidates = [ep("fast", "m", CHEAP), ep("slow", "m", CHEAP), ep("new", "m", CHEAP)]
    strategy = Intelligent(max_p95=2.0)
    for _ in range(20):
        record(tracker, "fast", 0.5)
        record(tracker, "slow", 5.0)
    reasons = strategy.exclude(candidates, CTX, tracker)
    assert list(reasons) == ["slow"]  # unmeasured "new" qualifies: nothing says it is slow
    assert "max_p95 2 s" in reasons["slow"] and "lower bound" in reasons["slow"]
    assert strategy.exclude(candidates, CTX) == {}  # without statistics: nothing measured


def test_max_p95_reads_the_lower_bound_so_one_slow_answer_is_not_enough() -> None:
    clock = ManualClock()
    tracker = Tracker(clock.monotonic)
    candidates = [ep("a", "m", CHEAP)]
    strategy = Intelligent(max_p95=2.0)
    for _ in range(18):
        record(tracker, "a", 0.5)
    for _ in range(2):
        record(tracker, "a", 9.0)
    # The p95 of these 20 answers is 9 s, but its lower bound (the 87th percentile) is 0.5 s.
    assert tracker.latency_quantile("a", 0.95) == pytest.approx(9.0, rel=0.02)
    assert strategy.exclude(candidates, CTX, tracker) == {}
    for _ in range(40):
        record(tracker, "a", 9.0)
    assert "a" in strategy.exclude(candidates, CTX, tracker)


def test_an_excluded_deployment_is_retried_once_its_estimate_has_decayed() -> None:
    clock = ManualClock()
    tracker = Tracker(clock.monotonic)
    candidates = [ep("a", "m", CHEAP), ep("b", "m", CHEAP)]
    strategy = Intelligent(max_p95=2.0)
    for _ in range(20):
        record(tracker, "a", 5.0)
    assert "a" in strategy.exclude(candidates, CTX, tracker)
    clock.advance(600.0)  # no traffic: the latency estimate decays, so "a" is tried again
    assert strategy.exclude(candidates, CTX, tracker) == {}
    record(tracker, "a", 5.0)  # still slow: one answer puts it back out
    assert "a" in strategy.exclude(candidates, CTX, tracker)


# -- max_cost_per_call and validation ----------------------------------------------------------


def test_max_cost_per_call_is_the_same_cap_as_max_cost_per_request() -> None:
    candidates = [ep("s", "strong", STRONG), ep("c", "cheap", CHEAP)]
    # strong: 1000 * 2e-6 + 500 * 8e-6 = $0.006; cheap: $0.0003.
    by_call = Intelligent(max_cost_per_call=0.001).exclude(candidates, CTX)
    by_request = Intelligent(max_cost_per_request=0.001).exclude(candidates, CTX)
    assert by_call == by_request == {"s": "estimated cost $0.00600 > $0.001"}
    made = make_strategy({"name": "intelligent", "max_cost_per_call": 0.001, "max_p95": 3})
    assert isinstance(made, Intelligent) and made.max_cost == 0.001 and made.max_p95 == 3
    with pytest.raises(ConfigError, match="one setting"):
        Intelligent(max_cost_per_request=0.01, max_cost_per_call=0.001)
    with pytest.raises(ConfigError, match="max_p95"):
        Intelligent(max_p95=0)


def test_min_quality_reads_the_learned_lower_bound() -> None:
    clock = ManualClock()
    candidates = [ep("s", "strong", STRONG), ep("c", "cheap", CHEAP)]
    strategy = Intelligent(min_quality=70)
    assert strategy.exclude(candidates, CTX) == {}  # catalog: 90 and 80
    strategy.attach_quality(book_with_feedback(clock, {"cheap": 0.5}))
    request = ChatRequest(model="auto", messages=[Message(role="user", content="hi")])
    ctx: Any = CTX._replace(request=request)
    reasons = strategy.exclude(candidates, ctx)
    assert list(reasons) == ["c"] and reasons["c"].startswith("quality ")


def test_the_grouped_learned_choice_matches_the_one_by_one_formula() -> None:
    # Six deployments of three models, all measured: the grouped path, which draws only the
    # models that can change the choice. Given the same sampled qualities (the models it did
    # not draw are drawn when the scores are read), the one-candidate-at-a-time formula makes
    # the same choice with the same scores.
    clock = ManualClock()
    mid = spec("mid", "0.4", "1.6", 85)
    models = [("strong", STRONG), ("cheap", CHEAP), ("mid", mid)]
    candidates = tuple(ep(f"d{i}", *models[i % 3]) for i in range(6))
    partial = 0
    for seed in range(60):
        tracker = Tracker(clock.monotonic)
        for i, c in enumerate(candidates):
            record(tracker, c.name, 0.2 + 0.1 * i, c.model)
        book = book_with_feedback(clock, {"strong": 0.9, "cheap": 0.6, "mid": 0.8})
        grouped = Intelligent(seed=seed)
        grouped.attach_quality(book)
        before = grouped._thompson.getstate()
        chosen, scores = grouped.choose_scored(candidates, tracker, CTX)
        assert isinstance(scores, LearnedScores) and len(scores) == 3  # each group's fastest
        after = grouped._thompson.getstate()
        samples = scores.samples
        assert grouped._thompson.getstate() == after  # reading drew from another source
        drawn = _draws_between(before, after)
        partial += drawn < 3
        want = Intelligent(seed=seed).scores(
            candidates, tracker, CTX, learned=[samples[c.model] for c in candidates]
        )
        assert chosen is candidates[want.index(max(want))]
        assert sorted(want, reverse=True)[1] < max(want)  # no tie: one choice
        for name, score in scores.items():
            assert score == pytest.approx(want[[c.name for c in candidates].index(name)])
        one_by_one = Intelligent(seed=seed)
        one_by_one.attach_quality(book)
        _, table = one_by_one._learned(candidates, tracker, CTX, book)
        assert scores.note.split("; ")[:-1] == table.note.split("; ")[:-1]  # the estimates
    assert partial > 10  # most choices needed fewer draws than models


def _draws_between(before: object, after: object) -> int:
    """How many Beta draws were made between two states of a ``random.Random`` (each draw
    takes at least two uniforms; counted by replaying: a lower bound is enough here)."""
    replay = random.Random()
    replay.setstate(before)  # type: ignore[arg-type]
    count = 0
    while replay.getstate() != after and count < 1000:
        replay.random()
        count += 1
    return count // 2


# -- batched draws (FeedbackPolicy.draw_reuse) -------------------------------------------------

TWIN_A = spec("a", "1", "4", 80)
TWIN_B = spec("b", "1", "4", 80)


def twins(reuse: int, clock: ManualClock, seed: int) -> tuple[Intelligent, list[Endpoint], Tracker]:
    """Two models alike in every term but their (equal, wide) learned quality, measured: the
    grouped path, where each choice is decided by the two draws alone."""
    tracker = Tracker(clock.monotonic)
    candidates = [ep("da", "a", TWIN_A), ep("db", "b", TWIN_B)]
    for c in candidates:
        record(tracker, c.name, 0.3, c.model)
    book = QualityBook(FeedbackPolicy(draw_reuse=reuse), prior=lambda _: 50.0, clock=clock.time)
    for model in ("a", "b"):
        for score in (1.0, 0.0, 1.0):
            book.add(model, "*", score)
    strategy = Intelligent(factors={"quality": 1.0}, seed=seed)
    strategy.attach_quality(book)
    return strategy, candidates, tracker


def test_a_batch_of_choices_shares_one_draw_per_model() -> None:
    clock = ManualClock()
    strategy, candidates, tracker = twins(16, clock, seed=3)
    picks = [strategy.choose_scored(candidates, tracker, CTX)[0].name for _ in range(64)]
    # Four batches of 16: the same draws, the same choice within each.
    batches = [set(picks[k : k + 16]) for k in range(0, 64, 16)]
    assert all(len(b) == 1 for b in batches)
    assert set(picks) == {"da", "db"}  # both won a batch (seed 3): the draws differ per batch
    # One draw per choice: equal posteriors, so 64 choices in a row go to both models.
    strategy, candidates, tracker = twins(1, clock, seed=3)
    picks = [strategy.choose_scored(candidates, tracker, CTX)[0].name for _ in range(64)]
    assert 10 < picks.count("da") < 54
    assert any(len(set(picks[k : k + 16])) == 2 for k in range(0, 64, 16))


def test_a_batch_ends_with_its_window_or_a_score_for_its_task() -> None:
    clock = ManualClock()
    strategy, candidates, tracker = twins(1000, clock, seed=5)
    rng = strategy._thompson  # the routing's draws come from it: a new batch moves its state

    def draws_made() -> bool:
        before = rng.getstate()
        strategy.choose_scored(candidates, tracker, CTX)
        return rng.getstate() != before

    assert draws_made()  # the first batch
    assert not draws_made()
    book = strategy._quality
    assert book is not None
    book.add("a", "code", 1.0)  # another task: this task's posteriors are unchanged
    assert not draws_made()
    book.add("a", "*", 1.0)  # this task: a new batch on the new posterior
    assert draws_made()
    assert not draws_made()
    clock.advance(DRAW_WINDOW / 2)
    assert not draws_made()
    clock.advance(DRAW_WINDOW)  # the window is over, however few choices it served
    assert draws_made()


def test_batched_draws_give_each_model_the_same_share() -> None:
    # Each choice still decides on draws from the posteriors: a model's share of many choices
    # is the same whether a draw serves one choice or several (only consecutive choices are
    # correlated). a's posterior is Beta(4, 2), b's Beta(3, 2): a draws higher with
    # probability 0.595 (400,000 draws of random.betavariate).
    clock = ManualClock()
    shares = []
    for reuse in (1, 4):
        strategy, candidates, tracker = twins(reuse, clock, seed=11)
        book = strategy._quality
        assert book is not None
        book.add("a", "*", 1.0)
        picks = [strategy.choose_scored(candidates, tracker, CTX)[0].name for _ in range(4000)]
        shares.append(picks.count("da") / len(picks))
    # Four standard deviations: 0.0078 per choice, 0.0155 in 1,000 batches of 4.
    assert abs(shares[0] - 0.595) < 4 * 0.0078
    assert abs(shares[1] - 0.595) < 4 * 0.0155
