"""Client-side rate limits: sliding logs over 60 s, reservations, provider headers."""

from __future__ import annotations

import random
import threading
import time
from bisect import bisect_left
from datetime import datetime, timedelta, timezone

import pytest

from multimodel.resilience.rate_limit import RateLimiter, Reservation, parse_reset


def limiter(rpm: int | None = None, tpm: int | None = None, name: str = "a") -> RateLimiter:
    rl = RateLimiter()
    rl.configure(name, rpm=rpm, tpm=tpm)
    return rl


def max_in_any_window(times: list[float], width: float = 60.0) -> int:
    """The most admitted times in any half-open window ``[s, s + width)``."""
    times = sorted(times)
    # The busiest window can always be slid right until it starts at an admitted time.
    return max((bisect_left(times, s + width) - i for i, s in enumerate(times)), default=0)


def test_unlimited_deployment_always_admits() -> None:
    rl = RateLimiter()
    assert not rl.limited("a")
    for _ in range(1_000):
        assert rl.acquire("a", 10_000, 0.0) is not None
    assert rl.wait_time("a", 10**9, 0.0) == 0.0
    rl.configure("b", rpm=None, tpm=None)
    assert not rl.limited("b")


@pytest.mark.parametrize("seed", range(5))
def test_sliding_log_never_exceeds_rpm_in_any_window(seed: int) -> None:
    rng = random.Random(seed)
    rpm = rng.choice([1, 3, 10, 60])
    rl = limiter(rpm=rpm)
    now = 0.0
    admitted: list[float] = []
    refused = 0
    for _ in range(3_000):
        # Bursts and lulls: mostly close arrivals, sometimes a long gap.
        now += rng.expovariate(2.0) if rng.random() < 0.9 else rng.uniform(0, 90)
        if rl.acquire("a", 1, now) is not None:
            admitted.append(now)
            continue
        refused += 1
        # Refused only when the last 60 s really hold rpm admissions, and the wait says when
        # the oldest of them leaves the window.
        recent = [t for t in admitted if t > now - 60.0]
        assert len(recent) == rpm
        assert rl.wait_time("a", 1, now) == pytest.approx(recent[0] + 60.0 - now)
    assert refused > 0
    assert max_in_any_window(admitted) == rpm  # never more, and the limit was reached


def test_window_edges() -> None:
    rl = limiter(rpm=2)
    assert rl.acquire("a", 1, 0.0)
    assert rl.acquire("a", 1, 30.0)
    assert rl.acquire("a", 1, 59.999) is None
    assert rl.wait_time("a", 1, 59.999) == pytest.approx(0.001)
    assert rl.acquire("a", 1, 60.0) is not None  # the entry at 0 leaves at exactly 60
    assert rl.acquire("a", 1, 60.0) is None
    assert rl.wait_time("a", 1, 60.0) == pytest.approx(30.0)


def test_wait_time() -> None:
    rl = limiter(rpm=3)
    for t in (0.0, 10.0, 20.0):
        assert rl.wait_time("a", 1, t) == 0.0
        assert rl.acquire("a", 1, t) is not None
    assert rl.wait_time("a", 1, 30.0) == pytest.approx(30.0)
    assert rl.wait_time("a", 1, 59.0) == pytest.approx(1.0)
    assert rl.wait_time("a", 1, 60.0) == 0.0
    assert rl.wait_time("other", 1, 60.0) == 0.0


def test_tpm_reservations_and_reconcile() -> None:
    rl = limiter(tpm=1_000)
    first = rl.acquire("a", 600, 0.0)
    assert isinstance(first, Reservation)
    assert first.tokens == 600
    assert rl.acquire("a", 600, 1.0) is None  # 1,200 > 1,000
    assert rl.wait_time("a", 600, 1.0) == pytest.approx(59.0)
    assert rl.wait_time("a", 400, 1.0) == 0.0
    rl.reconcile(first, 100)  # the answer used 100 tokens, not 600: room is freed
    assert rl.wait_time("a", 600, 1.0) == 0.0
    second = rl.acquire("a", 600, 1.0)
    assert second is not None
    assert rl.acquire("a", 301, 2.0) is None  # 100 + 600 + 301 > 1,000
    assert rl.acquire("a", 300, 2.0) is not None
    rl.reconcile(second, 900)  # more than estimated: the window tightens
    # 100 + 900 + 300 > 1,000: room comes back when the entry of t=1 leaves, at 61
    assert rl.wait_time("a", 1, 3.0) == pytest.approx(58.0)
    rl.reconcile(second, None)  # unknown usage keeps the estimate
    rl.reconcile(None, 10)  # nothing reserved: nothing to do


def test_reconcile_after_expiry_is_ignored() -> None:
    rl = limiter(tpm=1_000)
    old = rl.acquire("a", 900, 0.0)
    assert old is not None
    new = rl.acquire("a", 900, 61.0)  # the old entry has left the window
    assert new is not None
    rl.reconcile(old, 0)  # must not free room that the new reservation holds
    assert rl.acquire("a", 900, 62.0) is None
    assert rl.wait_time("a", 100, 62.0) == 0.0


def test_request_larger_than_the_limit_waits_for_an_empty_window() -> None:
    rl = limiter(tpm=1_000)
    assert rl.acquire("a", 100, 0.0) is not None
    assert rl.acquire("a", 5_000, 1.0) is None
    assert rl.wait_time("a", 5_000, 1.0) == pytest.approx(59.0)
    assert rl.acquire("a", 5_000, 60.0) is not None  # alone in its window: admitted
    assert rl.acquire("a", 1, 61.0) is None


def test_rpm_and_tpm_together() -> None:
    rl = limiter(rpm=2, tpm=100)
    assert rl.acquire("a", 90, 0.0) is not None
    assert rl.acquire("a", 20, 1.0) is None  # tokens
    assert rl.acquire("a", 10, 1.0) is not None
    assert rl.acquire("a", 0, 2.0) is None  # requests
    assert rl.wait_time("a", 0, 2.0) == pytest.approx(58.0)


def test_limits_are_per_deployment() -> None:
    rl = RateLimiter()
    rl.configure("a", rpm=1, tpm=None)
    rl.configure("b", rpm=1, tpm=None)
    assert rl.acquire("a", 1, 0.0) is not None
    assert rl.acquire("a", 1, 0.0) is None
    assert rl.acquire("b", 1, 0.0) is not None


def test_openai_headers_tighten_the_limit() -> None:
    rl = limiter(rpm=100)
    assert rl.acquire("a", 1, 0.0) is not None
    rl.observe(
        "a", {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "6s"}, 0.0
    )
    assert rl.wait_time("a", 1, 0.0) == pytest.approx(6.0)
    assert rl.acquire("a", 1, 5.9) is None
    assert rl.acquire("a", 1, 6.0) is not None


def test_openai_token_headers() -> None:
    rl = limiter(tpm=10_000)
    rl.observe(
        "a", {"x-ratelimit-remaining-tokens": "500", "x-ratelimit-reset-tokens": "1m30s"}, 0.0
    )
    assert rl.acquire("a", 500, 0.0) is not None
    assert rl.acquire("a", 1, 0.0) is None
    # A reset beyond our 60 s window is capped at the window.
    assert rl.wait_time("a", 1, 0.0) == pytest.approx(60.0)


def test_headers_with_more_room_change_nothing() -> None:
    rl = limiter(rpm=10)
    rl.acquire("a", 1, 0.0)
    rl.observe(
        "a", {"x-ratelimit-remaining-requests": "50", "x-ratelimit-reset-requests": "1s"}, 0.0
    )
    for _ in range(9):
        assert rl.acquire("a", 1, 0.0) is not None
    assert rl.acquire("a", 1, 0.0) is None


def test_bad_or_missing_headers_are_ignored() -> None:
    rl = limiter(rpm=2)
    rl.observe("a", {"x-ratelimit-remaining-requests": "lots"}, 0.0)
    rl.observe("a", {}, 0.0)
    rl.observe("unlimited", {"x-ratelimit-remaining-requests": "0"}, 0.0)
    assert rl.acquire("a", 1, 0.0) is not None
    assert rl.acquire("unlimited", 1, 0.0) is not None


def test_header_without_reset_holds_for_the_window() -> None:
    rl = limiter(rpm=5)
    rl.observe("a", {"x-ratelimit-remaining-requests": "0"}, 10.0)
    assert rl.wait_time("a", 1, 10.0) == pytest.approx(60.0)


def test_phantom_is_inserted_in_time_order() -> None:
    rl = limiter(rpm=3)
    assert rl.acquire("a", 1, 0.0) is not None
    assert rl.acquire("a", 1, 50.0) is not None
    # The provider says 0 left, resetting in 2 s: a phantom of 1 that leaves at 52.
    rl.observe(
        "a", {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "2s"}, 50.0
    )
    assert rl.wait_time("a", 1, 50.0) == pytest.approx(2.0)
    assert rl.acquire("a", 1, 52.0) is not None
    assert rl.wait_time("a", 1, 52.0) == pytest.approx(8.0)  # the entry at 0 leaves at 60


def test_anthropic_rfc3339_reset() -> None:
    rl = limiter(rpm=50, tpm=40_000)
    reset = (datetime.now(timezone.utc) + timedelta(seconds=6)).isoformat().replace("+00:00", "Z")
    rl.observe(
        "a",
        {
            "anthropic-ratelimit-requests-remaining": "0",
            "anthropic-ratelimit-requests-reset": reset,
            "anthropic-ratelimit-tokens-remaining": "39000",
            "anthropic-ratelimit-tokens-reset": reset,
        },
        100.0,
    )
    assert rl.wait_time("a", 1, 100.0) == pytest.approx(6.0, abs=0.5)
    assert rl.acquire("a", 1, 105.0) is None
    assert rl.acquire("a", 1, 106.5) is not None


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("6s", 6.0),
        ("1m30s", 90.0),
        ("12ms", 0.012),
        ("2.5", 2.5),
        ("0.5s", 0.5),
        ("1h", 3600.0),
        ("2m", 120.0),
        ("1h2m3.5s", 3723.5),
        (" 7s ", 7.0),
        ("0", 0.0),
        ("-3", 0.0),
    ],
)
def test_parse_reset_durations(value: str, seconds: float) -> None:
    assert parse_reset(value, now_wall=0.0) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "value",
    ["2024-05-01T12:00:06Z", "2024-05-01T12:00:06+00:00", "2024-05-01T14:00:06+02:00"],
)
def test_parse_reset_rfc3339(value: str) -> None:
    now_wall = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc).timestamp()
    assert parse_reset(value, now_wall=now_wall) == pytest.approx(6.0)
    assert parse_reset("2024-05-01T12:00:06.5Z", now_wall=now_wall) == pytest.approx(6.5)
    # Already past: no wait.
    assert parse_reset(value, now_wall=now_wall + 100) == 0.0


def test_parse_reset_rfc3339_uses_the_wall_clock_by_default() -> None:
    soon = datetime.fromtimestamp(time.time() + 30, tz=timezone.utc).isoformat()
    assert parse_reset(soon, now_wall=None) == pytest.approx(30.0, abs=1.0)


@pytest.mark.parametrize("value", [None, "", "soon", "6 seconds", "1x"])
def test_parse_reset_garbage(value: str | None) -> None:
    assert parse_reset(value, now_wall=0.0) is None


def test_acquire_is_exact_under_threads() -> None:
    rl = limiter(rpm=100)
    admitted = []
    lock = threading.Lock()
    barrier = threading.Barrier(64)

    def work() -> None:
        barrier.wait()
        got = sum(1 for _ in range(50) if rl.acquire("a", 1, 1_000.0) is not None)
        with lock:
            admitted.append(got)

    pool = [threading.Thread(target=work) for _ in range(64)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=30)
    assert sum(admitted) == 100


def test_tokens_exact_under_threads_with_reconcile() -> None:
    rl = limiter(tpm=10_000)
    admitted = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(100):
            r = rl.acquire("a", 100, 0.0)
            if r is not None:
                rl.reconcile(r, 50)  # each answer used half its estimate
                with lock:
                    admitted.append(r)

    pool = [threading.Thread(target=work) for _ in range(16)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=30)
    # Never more than the limit: 199 x 50 + a reservation of 100 is the most that fits.
    n = len(admitted)
    assert 100 <= n <= 199
    # The books balance: exactly n x 50 tokens are counted in the window.
    room = 10_000 - n * 50
    assert rl.wait_time("a", room, 0.0) == 0.0
    assert rl.wait_time("a", room + 1, 0.0) > 0
