"""The per-deployment latency-versus-load fit (``multimodel.tracking.congestion``)."""

from __future__ import annotations

import random

import pytest

from multimodel.tracking.congestion import PRIOR, CongestionFit


def test_recovers_the_congestion_from_noisy_answers() -> None:
    rng = random.Random(7)
    fit = CongestionFit()
    for _ in range(2000):
        load = rng.randrange(25)
        fit.add(load, 0.4 * (1 + 0.02 * load) * rng.lognormvariate(0, 0.3))
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
