"""RetryPolicy(wait=...): tenacity wait strategies compute the back-off; bad ones are ConfigErrors."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
import tenacity

from multimodel import errors
from multimodel.resilience.retry import RetryPolicy


def test_wait_fixed_and_chain_give_the_seconds() -> None:
    fixed = RetryPolicy(wait=tenacity.wait_fixed(0.3))
    assert [fixed.backoff(n) for n in (1, 2, 3)] == [0.3, 0.3, 0.3]
    chain = RetryPolicy(
        wait=tenacity.wait_chain(tenacity.wait_fixed(0.1), tenacity.wait_fixed(0.2))
    )
    assert [chain.backoff(n) for n in (1, 2, 3)] == [0.1, 0.2, 0.2]


def test_waits_combine_with_plus() -> None:
    policy = RetryPolicy(wait=tenacity.wait_fixed(0.1) + tenacity.wait_incrementing(0, 0.5))
    assert [policy.backoff(n) for n in (1, 2, 3)] == pytest.approx([0.1, 0.6, 1.1])


def test_tenacity_exponential_waits_follow_the_retry_number() -> None:
    exact = RetryPolicy(wait=tenacity.wait_exponential(multiplier=0.5, max=3))
    assert [exact.backoff(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 3.0]
    random.seed(7)  # tenacity's random waits use the random module
    full_jitter = RetryPolicy(wait=tenacity.wait_random_exponential(multiplier=0.5, max=3))
    for n, high in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 3.0)]:
        samples = [full_jitter.backoff(n) for _ in range(200)]
        assert all(0 <= s <= high for s in samples)
        assert max(samples) > high * 0.8
    gcs = RetryPolicy(wait=tenacity.wait_exponential_jitter(multiplier=1, jitter=0.5, max=10))
    assert all(4 <= gcs.backoff(3) <= 4.5 for _ in range(50))


def test_the_wait_sees_a_real_call_state() -> None:
    seen: list[tenacity.RetryCallState] = []

    def wait(state: tenacity.RetryCallState) -> float:
        seen.append(state)
        return 0.25

    policy = RetryPolicy(max_retries=4, wait=wait)
    error = errors.ServerError("boom", status=500)
    assert policy.backoff(2, error=error, elapsed=1.5) == 0.25
    (state,) = seen
    assert isinstance(state, tenacity.RetryCallState)
    assert state.attempt_number == 2
    assert state.outcome is not None and state.outcome.failed
    assert state.outcome.exception() is error and state.outcome.attempt_number == 2
    assert state.seconds_since_start == pytest.approx(1.5)
    assert isinstance(state.retry_object, tenacity.Retrying)
    assert state.retry_object.wait is wait
    stop = state.retry_object.stop
    assert isinstance(stop, tenacity.stop_after_attempt) and stop.max_attempt_number == 5
    assert "failed (ServerError" in repr(state)


def test_wait_exception_reads_the_failed_attempt() -> None:
    def by_error(exc: BaseException) -> float:
        return 2.0 if isinstance(exc, errors.Overloaded) else 0.1

    policy = RetryPolicy(wait=tenacity.wait_exception(by_error))
    assert policy.backoff(1, error=errors.Overloaded("busy")) == 2.0
    assert policy.backoff(1, error=errors.ServerError("x")) == 0.1


def test_retry_after_wins_over_the_wait_within_its_cap() -> None:
    policy = RetryPolicy(wait=tenacity.wait_fixed(5), max_retry_after=10)
    assert policy.backoff(1, retry_after=0.2) == 0.2
    assert policy.backoff(1, retry_after=10) == 10
    assert policy.backoff(1, retry_after=11) == 5  # "not soon": the wait decides


def test_fields_build_the_default_tenacity_wait() -> None:
    policy = RetryPolicy(backoff_initial=0.1, backoff_max=0.4, jitter=0.0)
    wait = policy.wait_strategy
    assert isinstance(wait, tenacity.wait_exponential)
    assert [policy.backoff(n) for n in (1, 2, 3, 4)] == pytest.approx([0.1, 0.2, 0.4, 0.4])
    # A tenacity wait like any other: it combines with tenacity's own.
    combined = RetryPolicy(wait=wait + tenacity.wait_fixed(1))
    assert combined.backoff(2) == pytest.approx(1.2)
    mine = tenacity.wait_fixed(2)
    assert RetryPolicy(wait=mine).wait_strategy is mine


def test_a_seeded_rng_makes_the_builtin_jitter_reproducible() -> None:
    policy = RetryPolicy(backoff_initial=1.0, jitter=0.5)
    first = [policy.backoff(n, rng=random.Random(42)) for n in (1, 2, 3)]
    again = [policy.backoff(n, rng=random.Random(42)) for n in (1, 2, 3)]
    assert first == again
    assert all(
        0.5 * 2 ** (n - 1) <= s <= 2 ** (n - 1) for n, s in zip((1, 2, 3), first, strict=True)
    )


def test_a_wait_that_is_not_callable_is_refused_at_construction() -> None:
    with pytest.raises(errors.ConfigError, match=r"RetryPolicy\.wait must be a tenacity wait"):
        RetryPolicy(wait=0.5)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [-0.1, math.nan, math.inf, "soon", None])
def test_a_bad_wait_result_is_a_config_error_at_use(bad: Any) -> None:
    policy = RetryPolicy(wait=lambda state: bad)
    with pytest.raises(errors.ConfigError, match=r"RetryPolicy\.wait returned .* for retry 3"):
        policy.backoff(3)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"max_retries": -1}, "max_retries"),
        ({"backoff_initial": -1.0}, "backoff_initial"),
        ({"backoff_max": math.nan}, "backoff_max"),
        ({"max_retry_after": -5}, "max_retry_after"),
        ({"jitter": 1.5}, "jitter"),
    ],
)
def test_bad_fields_name_themselves(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(errors.ConfigError, match=rf"RetryPolicy\.{field} must be"):
        RetryPolicy(**changes)
