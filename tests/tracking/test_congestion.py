"""The per-deployment latency-versus-load fit (``multimodel.tracking.congestion``)."""

from __future__ import annotations

import math
import random

import pytest

from multimodel.tracking.congestion import BATCH, LEVEL_MIN, PRIOR, CongestionFit


def noisy(seed: int, answers: int, loads: int) -> CongestionFit:
    """A fit of lognormal answers (σ = 0.3, idle median 0.4, +2 % per request in flight) at
    random loads below ``loads``."""
    rng = random.Random(seed)
    fit = CongestionFit()
    for _ in range(answers):
        load = rng.randrange(loads)
        fit.add(load, 0.4 * (1 + 0.02 * load) * rng.lognormvariate(0, 0.3))
    return fit


def test_recovers_the_congestion_from_noisy_answers() -> None:
    fit = noisy(7, 2000, 25)
    assert fit.congestion == pytest.approx(0.02, abs=0.008)


def test_one_load_keeps_the_prior() -> None:
    fit = CongestionFit()
    for _ in range(50):
        fit.add(12, 0.5)
    assert fit.congestion == pytest.approx(PRIOR)
    assert fit.load == 12
    assert fit.scale == pytest.approx(1 / (1 + PRIOR * 12))


def test_a_queue_is_capped_and_a_speedup_is_no_congestion() -> None:
    queue, faster = CongestionFit(), CongestionFit()
    for load in range(20):
        queue.add(load, 0.01 + 5.0 * load)
        faster.add(load, 1.0 / (1 + load))
    assert 0.5 < queue.congestion <= 1.0
    assert faster.congestion == 0.0


def test_the_level_and_its_error_from_noisy_answers() -> None:
    # Lognormal answers (σ = 0.3, idle median 0.4) at loads 0-4: the level is the idle mean,
    # and its standard error is the spread over the square root of ~250 effective answers.
    fit = noisy(0, 4000, 5)
    mean = 0.4 * math.exp(0.3**2 / 2)
    assert fit.level == pytest.approx(mean, rel=0.06)
    spread = mean * math.sqrt(math.exp(0.3**2) - 1)  # the lognormal's standard deviation
    assert fit.level_error == pytest.approx(spread / math.sqrt(255), rel=0.25)


def test_no_level_before_enough_answers() -> None:
    fit = CongestionFit()
    answers = 0
    while fit.level_error == math.inf:  # not claimed on a few answers
        fit.add(0, 0.5)
        answers += 1
        assert fit.level in (0.0, pytest.approx(0.5))
    # LEVEL_MIN effective answers: a few more than LEVEL_MIN (older batches weigh less).
    assert LEVEL_MIN <= answers <= LEVEL_MIN + 2 * BATCH
    assert fit.level_error == 0.0


def test_the_level_restarts_when_the_latency_changes() -> None:
    # 0.5 s for a long while, then 0.8 s: within four batches the level is the new latency
    # (mean ~0.84), where a plain decayed mean would still be ~0.6 (~250 answers of memory),
    # and it has no error (ties nothing) until LEVEL_MIN answers of the new latency are in.
    rng = random.Random(5)
    fit = CongestionFit()
    for _ in range(800):
        fit.add(0, 0.5 * rng.lognormvariate(0, 0.3))
    assert fit.level < 0.55
    assert fit.level_error < 0.02
    for _ in range(4 * BATCH):
        fit.add(0, 0.8 * rng.lognormvariate(0, 0.3))
    assert fit.level > 0.7
    assert fit.level_error == math.inf
    for _ in range(int(LEVEL_MIN) + 2 * BATCH):
        fit.add(0, 0.8 * rng.lognormvariate(0, 0.3))
    assert fit.level > 0.7
    assert fit.level_error < math.inf
