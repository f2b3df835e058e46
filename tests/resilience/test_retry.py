"""RetryPolicy (classification, back-off) and RetryBudget."""

from __future__ import annotations

import inspect
import random

import pytest

from multimodel import errors
from multimodel.resilience.retry import RetryBudget, RetryPolicy

KINDS: dict[type[BaseException], str] = {
    errors.BadRequestError: "request",
    errors.ContextLengthExceeded: "request",
    errors.ContentFiltered: "request",
    errors.AuthenticationError: "deployment",
    errors.PermissionDeniedError: "deployment",
    errors.NotFoundError: "deployment",
    errors.QuotaExhausted: "deployment",
    errors.ConflictError: "transient",
    errors.RateLimited: "transient",
    errors.Overloaded: "transient",
    errors.ServerError: "transient",
    errors.ProviderTimeout: "transient",
    errors.ProviderConnectionError: "transient",
    errors.MalformedResponse: "transient",
    # Content already reached the caller: never retried transparently; another deployment is
    # not ruled out for a *new* call.
    errors.StreamInterrupted: "deployment",
    errors.ProviderError: "deployment",
    # Not provider failures: nothing to retry.
    errors.ConfigError: "request",
    errors.MissingAPIKeyError: "request",
    errors.InvalidRequestError: "request",
    errors.UnknownModelError: "request",
    errors.NoDeploymentAvailable: "request",
    errors.AllAttemptsFailed: "request",
    errors.BudgetExceeded: "request",
    errors.PolicyViolation: "request",
    errors.DecryptionError: "request",
    errors.PoolExhausted: "request",
    errors.SharedStateUnavailable: "request",
    errors.ClientClosed: "request",
    errors.UnknownResponseError: "request",
    errors.StructuredOutputError: "request",
    errors.MultimodelError: "request",
}


def make(cls: type[BaseException]) -> BaseException:
    if cls is errors.MissingAPIKeyError:
        return cls("a", "openai", "OPENAI_API_KEY")
    if cls is errors.UnknownModelError:
        return cls("m", ["n"])
    if cls is errors.NoDeploymentAvailable:
        return cls("m", {"a": "cooldown"})
    if cls is errors.AllAttemptsFailed:
        return cls("m", [errors.ServerError("x")])
    return cls("x")


def test_every_error_class_is_covered() -> None:
    every = {
        obj
        for obj in vars(errors).values()
        if inspect.isclass(obj) and issubclass(obj, errors.MultimodelError)
    }
    assert every == set(KINDS)


@pytest.mark.parametrize(("cls", "kind"), KINDS.items(), ids=lambda x: getattr(x, "__name__", x))
def test_classify(cls: type[BaseException], kind: str) -> None:
    assert RetryPolicy.classify(make(cls)) == kind


def test_all_attempts_failed_alike_is_still_a_request_kind() -> None:
    # Three 429s: catchable as RateLimited, but the retries are spent.
    alike = errors.AllAttemptsFailed("m", [errors.RateLimited("x"), errors.RateLimited("y")])
    assert isinstance(alike, errors.RateLimited) and not alike.retryable
    assert RetryPolicy.classify(alike) == "request"
    mixed = errors.AllAttemptsFailed("m", [errors.RateLimited("x"), errors.ServerError("y")])
    assert not isinstance(mixed, errors.ProviderError)


def test_classify_other_exceptions() -> None:
    assert RetryPolicy.classify(ValueError("x")) == "request"
    assert RetryPolicy.classify(KeyboardInterrupt()) == "request"


def test_defaults_and_replace() -> None:
    p = RetryPolicy()
    assert p.max_attempts == 3
    q = p.replace(max_retries=0)
    assert q.max_attempts == 1
    assert p.max_retries == 2  # immutable


def test_backoff_honours_retry_after_within_cap() -> None:
    p = RetryPolicy(max_retry_after=60.0, backoff_initial=0.5, backoff_max=8.0, jitter=0.25)
    assert p.backoff(1, retry_after=3.0) == 3.0
    assert p.backoff(5, retry_after=0.01) == 0.01  # no exponential growth on top
    assert p.backoff(1, retry_after=0.0) == 0.0
    assert p.backoff(1, retry_after=60.0) == 60.0  # at the cap: honoured
    # Above the cap: "not soon"; the normal back-off applies instead.
    assert 0.375 <= p.backoff(1, retry_after=61.0) <= 0.5
    assert 0.375 <= p.backoff(1, retry_after=-1.0) <= 0.5


class FixedRandom(random.Random):
    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


@pytest.mark.parametrize(
    ("retry", "base"), [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (6, 8.0), (30, 8.0)]
)
def test_backoff_exponential_with_jitter_bounds(retry: int, base: float) -> None:
    p = RetryPolicy(backoff_initial=0.5, backoff_max=8.0, jitter=0.25)
    assert p.backoff(retry, rng=FixedRandom(0.0)) == pytest.approx(base * 0.75)
    assert p.backoff(retry, rng=FixedRandom(1.0 - 2**-53)) == pytest.approx(base)
    rng = random.Random(retry)
    samples = [p.backoff(retry, rng=rng) for _ in range(500)]
    assert all(base * 0.75 <= s <= base for s in samples)
    assert max(samples) - min(samples) > base * 0.2  # really spread


def test_backoff_without_jitter_is_exact() -> None:
    p = RetryPolicy(backoff_initial=0.1, backoff_max=1.0, jitter=0.0)
    assert [p.backoff(n) for n in (1, 2, 3, 4, 5)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0])


def test_backoff_retry_zero_is_the_first_backoff() -> None:
    p = RetryPolicy(backoff_initial=0.5, jitter=0.0)
    assert p.backoff(0) == 0.5


def test_budget_allows_ratio_times_calls_plus_reserve() -> None:
    budget = RetryBudget(ratio=0.2, min_per_second=1.0, ttl=10.0)  # reserve: 10
    for _ in range(100):
        budget.deposit(0.0)
    granted = sum(budget.withdraw(0.0) for _ in range(100))
    assert granted == 30  # 0.2 x 100 + 10
    assert not budget.withdraw(1.0)
    budget.deposit(1.0)
    budget.deposit(1.0)
    budget.deposit(1.0)
    budget.deposit(1.0)
    budget.deposit(1.0)  # five more calls: one more retry (0.2 x 5)
    assert budget.withdraw(1.0)
    assert not budget.withdraw(1.0)


def test_budget_reserve_for_low_traffic() -> None:
    budget = RetryBudget(ratio=0.0, min_per_second=0.5, ttl=10.0)
    assert sum(budget.withdraw(0.0) for _ in range(10)) == 5


def test_budget_refills_after_ttl() -> None:
    budget = RetryBudget(ratio=0.1, min_per_second=0.1, ttl=10.0)  # reserve: 1
    for _ in range(20):
        budget.deposit(0.0)
    assert sum(budget.withdraw(0.0) for _ in range(10)) == 3
    # After the window both the calls and the retries are forgotten: only the reserve is left.
    assert sum(budget.withdraw(30.0) for _ in range(10)) == 1
    for _ in range(10):
        budget.deposit(30.0)
    assert budget.withdraw(30.0)
    assert not budget.withdraw(30.0)


def test_zero_budget_refuses() -> None:
    budget = RetryBudget(ratio=0.0, min_per_second=0.0)
    budget.deposit(0.0)
    assert not budget.withdraw(0.0)
