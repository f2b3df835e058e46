"""The per-deployment latency-versus-output-length fit (``multimodel.tracking.lengths``), and
what the tracker and ``adaptive`` make of it (sans-I/O, on an injected clock)."""

from __future__ import annotations

import random

import pytest

from multimodel._core.clock import ManualClock
from multimodel.providers.base import Endpoint
from multimodel.strategies import RouteContext
from multimodel.strategies.adaptive import Adaptive
from multimodel.tracking.lengths import BATCH, LengthFit
from multimodel.tracking.outcome import Outcome
from multimodel.tracking.stats import Tracker
from multimodel.types import Usage


def test_recovers_overhead_and_slope_from_noisy_answers() -> None:
    rng = random.Random(3)
    fit = LengthFit()
    for _ in range(2000):
        tokens = rng.choice((50, 200, 1500))
        fit.add(tokens, (0.6 + 0.0015 * tokens) * rng.lognormvariate(0, 0.1), tokens)
    assert fit.overhead == pytest.approx(0.6, rel=0.1)
    assert fit.slope == pytest.approx(0.0015, rel=0.1)
    assert fit.expected(1000) == pytest.approx(2.1, rel=0.05)


def test_one_length_learns_no_slope() -> None:
    fit = LengthFit()
    for i in range(100):
        fit.add(200, 0.5 + 0.01 * (i % 3), 200)
    assert fit.slope == 0.0
    assert (fit.share, fit.per_token) == (1.0, 0.0)  # no factor: scored as measured


def test_lengths_within_the_spread_are_noise() -> None:
    fit = LengthFit()
    for i in range(64):
        tokens = 200 + (i % 2) * 10  # 5 % apart
        fit.add(tokens, 0.2 + 0.004 * tokens, tokens)
    assert fit.slope == 0.0


def test_solved_once_per_batch() -> None:
    fit = LengthFit()
    for i in range(BATCH - 1):
        fit.add(50 if i % 2 else 1500, 0.15 + 0.004 * (50 if i % 2 else 1500), None)
    assert fit.slope == 0.0  # not solved yet
    fit.add(1500, 0.15 + 0.004 * 1500, None)
    assert fit.slope == pytest.approx(0.004)
    assert fit.overhead == pytest.approx(0.15)


def test_factor_takes_the_recent_latency_to_a_requests_length() -> None:
    fit = LengthFit()
    lengths = [50, 1500, 50, 50, 1500, 50, 1500, 50] * 4
    recent: float | None = None
    for tokens in lengths:
        latency = 0.15 + 0.004 * tokens
        # the tracker's latency EWMA (same weight): linear, so it is the line at t-bar
        recent = latency if recent is None else recent + 0.3 * (latency - recent)
        if not fit.slope and fit.add(tokens, latency, tokens):
            fit.start(recent)  # as the tracker does when a slope is first found
        elif fit.slope:
            fit.add(tokens, latency, tokens)
    assert recent is not None
    for tokens in (50, 400, 1500):
        factor = fit.share + fit.per_token * tokens
        assert recent * factor == pytest.approx(0.15 + 0.004 * tokens)


def test_a_deployment_that_writes_more_than_asked_is_scored_at_its_own_length() -> None:
    fit = LengthFit()
    for i in range(64):
        asked = 100 if i % 2 else 300
        written = 3 * asked  # a verbose model: three times what it is asked for
        fit.add(written, 0.2 + 0.002 * written, asked)
    base = fit.expected(fit.tokens)
    # Asked for 200, it writes ~600: the factor gives the line at 600 tokens.
    assert base * (fit.share + fit.per_token * 200) == pytest.approx(fit.expected(600), rel=0.02)


def test_an_overhead_below_zero_is_a_line_through_the_origin() -> None:
    fit = LengthFit()
    for i in range(16):
        tokens = 100 if i % 2 else 1000
        fit.add(tokens, 0.001 * tokens - (0.05 if tokens == 100 else 0.0), tokens)
    assert fit.overhead == 0.0
    assert fit.slope > 0.0
    assert fit.share == 0.0


def eps(*names: str) -> list[Endpoint]:
    return [
        Endpoint(name=n, model="m", wire_model="m", provider="openai", base_url="http://x")
        for n in names
    ]


def test_adaptive_scores_each_request_at_its_length() -> None:
    clock = ManualClock()
    tracker = Tracker(clock.monotonic)
    timing = {"snappy": (0.15, 0.004), "steady": (0.6, 0.0015)}
    # Each deployment served a mix of short and long answers (the long ones made "snappy"
    # look slow on average: 2.5 s against 1.4 s).
    for tokens in [50, 1500, 50, 50, 1500, 50, 50, 1500] * 3:
        for name, (overhead, per_token) in timing.items():
            latency = overhead + per_token * tokens
            clock.advance(0.5)
            tracker.started(name)
            tracker.record(
                Outcome(
                    deployment=name,
                    model="m",
                    provider="openai",
                    ok=True,
                    latency=latency,
                    started_at=0.0,
                    usage=Usage(input_tokens=3, output_tokens=tokens),
                    requested_tokens=tokens,
                )
            )
    cands = eps(*timing)
    s = Adaptive(seed=1)
    short, long = RouteContext(output_tokens=50), RouteContext(output_tokens=1500)
    assert s.cost(cands[0], tracker, short, clock.monotonic(), 1.0) == pytest.approx(0.35, rel=0.05)
    assert s.cost(cands[1], tracker, long, clock.monotonic(), 1.0) == pytest.approx(2.85, rel=0.05)
    assert {s.choose(cands, tracker, short).name for _ in range(20)} == {"snappy"}
    assert {s.choose(cands, tracker, long).name for _ in range(20)} == {"steady"}
