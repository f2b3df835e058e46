"""tenacity wait strategies plugged into real clients decide the back-offs in the routing trace.

The same cases run on ``query`` and ``stream`` of the sync client and of the async client
(asyncio and trio), all over one :class:`~multimodel.testing.fake.FakeProvider`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import tenacity

import multimodel as mm
from multimodel import errors
from multimodel.testing.fake import FakeProvider, FakeReply

KEY = "sk-test-retry-wait-0123456789"
MS = {"retry-after-ms": "7"}


@dataclass
class Case:
    name: str
    wait: Any
    script: list[FakeReply | int]
    sleeps: list[float] | Callable[[list[float]], bool]
    max_retries: int = 3
    raises: type[BaseException] | None = None
    seen: list[tenacity.RetryCallState] = field(default_factory=list)


def recording(case_seen: list[tenacity.RetryCallState]) -> Callable[..., float]:
    def wait(state: tenacity.RetryCallState) -> float:
        case_seen.append(state)
        return 0.001 * state.attempt_number

    return wait


def cases() -> list[Case]:
    recorded = Case(
        "a plain callable sees the retry number and the error",
        None,
        [503, 500, 200],
        [0.001, 0.002],
    )
    recorded.wait = recording(recorded.seen)
    return [
        Case("wait_fixed", tenacity.wait_fixed(0.004), [503, 503, 503, 200], [0.004] * 3),
        Case(
            "wait_chain",
            tenacity.wait_chain(*(tenacity.wait_fixed(s) for s in (0.001, 0.002, 0.003))),
            [503, 503, 503, 200],
            [0.001, 0.002, 0.003],
        ),
        Case(
            "wait_fixed + wait_incrementing",
            tenacity.wait_fixed(0.001) + tenacity.wait_incrementing(0, 0.002),
            [503, 503, 200],
            [0.001, 0.003],
        ),
        Case(
            "wait_random_exponential",
            tenacity.wait_random_exponential(multiplier=0.002, max=0.004),
            [503, 503, 503, 200],
            lambda s: len(s) == 3 and all(0 <= x <= 0.004 for x in s),
        ),
        Case(
            "wait_exponential_jitter",
            tenacity.wait_exponential_jitter(multiplier=0.001, jitter=0.001, max=0.01),
            [503, 503, 200],
            lambda s: 0.001 <= s[0] <= 0.002 and 0.002 <= s[1] <= 0.003,
        ),
        Case(
            "wait_exception reads the failed attempt",
            tenacity.wait_exception(lambda e: 0.005 if isinstance(e, errors.Overloaded) else 0.001),
            [503, 500, 200],
            [0.005, 0.001],
        ),
        Case(
            "Retry-After still wins",
            tenacity.wait_fixed(0.05),
            [FakeReply(429, headers=MS), 200],
            [0.007],
        ),
        recorded,
        Case(
            "a negative wait is a ConfigError",
            lambda state: -1.0,
            [503, 200],
            [],
            raises=errors.ConfigError,
        ),
        Case(
            "a NaN wait is a ConfigError",
            lambda state: float("nan"),
            [503, 200],
            [],
            raises=errors.ConfigError,
        ),
    ]


def make(cls: type, case: Case) -> Any:
    fake = FakeProvider()
    fake.script("a.test", case.script)
    deployment = mm.Deployment(
        model="m", provider="openai", name="a", base_url="https://a.test/v1", api_key=KEY
    )
    client = cls(
        deployments=[deployment],
        transport=fake,
        retry=mm.RetryPolicy(max_retries=case.max_retries, wait=case.wait),
    )
    return client, fake


def check(case: Case, fake: FakeProvider, result: object, trace: Any) -> None:
    if case.raises is not None:
        assert isinstance(result, case.raises), result
        assert "RetryPolicy.wait returned" in str(result)
        assert isinstance(result.__cause__, errors.Overloaded)  # the 503 that asked to wait
        assert trace is not None and trace.sleeps == []
        assert len(fake.requests) == 1
        return
    assert isinstance(result, mm.ChatResponse), result
    if callable(case.sleeps):
        assert case.sleeps(trace.sleeps), trace.sleeps
    else:
        assert trace.sleeps == pytest.approx(case.sleeps)
    assert len(fake.requests) == len(case.script)
    if case.seen:
        assert [s.attempt_number for s in case.seen] == [1, 2]
        kinds = [type(s.outcome.exception()) for s in case.seen if s.outcome is not None]
        assert kinds == [errors.Overloaded, errors.ServerError]
        assert all((s.seconds_since_start or -1) >= 0 for s in case.seen)


CASES = cases()
IDS = [c.name for c in CASES]


def fresh(case: Case) -> Case:
    return next(c for c in cases() if c.name == case.name)  # recorders start empty


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_sync_query(case: Case) -> None:
    case = fresh(case)
    client, fake = make(mm.Client, case)
    with client:
        try:
            result: Any = client.query("hi", model="m")
            trace = result.trace
        except mm.MultimodelError as exc:
            result, trace = exc, exc.trace
    check(case, fake, result, trace)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_sync_stream(case: Case) -> None:
    case = fresh(case)
    client, fake = make(mm.Client, case)
    with client:
        try:
            with client.stream("hi", model="m") as stream:
                assert "".join(c.text for c in stream) == "ok"
            result: Any = stream.response
            trace = stream.trace
        except mm.MultimodelError as exc:
            result, trace = exc, exc.trace
    check(case, fake, result, trace)


@pytest.mark.anyio
@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_async_query(case: Case) -> None:
    case = fresh(case)
    client, fake = make(mm.AsyncClient, case)
    async with client:
        try:
            result: Any = await client.query("hi", model="m")
            trace = result.trace
        except mm.MultimodelError as exc:
            result, trace = exc, exc.trace
    check(case, fake, result, trace)


@pytest.mark.anyio
@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_async_stream(case: Case) -> None:
    case = fresh(case)
    client, fake = make(mm.AsyncClient, case)
    async with client:
        try:
            async with client.stream("hi", model="m") as stream:
                assert "".join([c.text async for c in stream]) == "ok"
            result: Any = stream.response
            trace = stream.trace
        except mm.MultimodelError as exc:
            result, trace = exc, exc.trace
    check(case, fake, result, trace)
