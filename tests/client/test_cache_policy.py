"""The response cache, access policies and input limits, through both clients."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, TypeVar

import pytest

import multimodel as mm
from multimodel.cache import CachePolicy
from multimodel.security import InputLimits, Policy, PolicySet
from multimodel.testing.fake import FakeProvider, FakeReply

KEY = "sk-test-cache-0123456789"
C = TypeVar("C", mm.Client, mm.AsyncClient)


def make(cls: type[C], fake: FakeProvider, **kw: Any) -> C:
    return cls(
        deployments=[
            mm.Deployment(
                model="gpt-4o-mini", provider="openai", api_key=KEY, base_url="https://a.test/v1"
            ),
            mm.Deployment(
                model="gpt-4o", provider="openai", api_key=KEY, base_url="https://b.test/v1"
            ),
        ],
        transport=fake,
        **kw,
    )


def test_cache_hit_costs_nothing_and_is_tenant_scoped() -> None:
    fake = FakeProvider(FakeReply(echo=True, usage=(100, 50)))
    client = make(mm.Client, fake, cache=True)
    first = client.query("hello", model="gpt-4o-mini", temperature=0, user="alice")
    second = client.query("hello", model="gpt-4o-mini", temperature=0, user="alice")
    assert len(fake.requests) == 1
    assert not first.cached
    assert first.cost is not None and first.cost > 0
    assert second.cached and second.cost == Decimal(0)
    assert second.text == first.text == "hello"
    assert second.trace.strategy == "cache"
    # another user never sees alice's entry
    client.query("hello", model="gpt-4o-mini", temperature=0, user="bob")
    assert len(fake.requests) == 2
    # per-call opt out
    client.query("hello", model="gpt-4o-mini", temperature=0, user="alice", cache=False)
    assert len(fake.requests) == 3
    stats = client.stats().deployments["openai/gpt-4o-mini"]
    assert stats.cached == 1
    assert client.cache is not None and client.cache.hits == 1


def test_sampled_requests_are_not_cached_unless_asked() -> None:
    fake = FakeProvider()
    client = make(mm.Client, fake, cache=CachePolicy(ttl=60))
    for _ in range(2):
        client.query("hi", model="gpt-4o-mini", temperature=0.7)
    assert len(fake.requests) == 2
    for _ in range(2):
        client.query("hi", model="gpt-4o-mini", temperature=0.7, cache=True)
    assert len(fake.requests) == 3


def test_stream_served_from_cache() -> None:
    fake = FakeProvider(FakeReply(text="cached words", chunks=2))
    client = make(mm.Client, fake, cache=True)
    with client.stream("hi", model="gpt-4o-mini", temperature=0) as s:
        first = "".join(c.text for c in s)
    with client.stream("hi", model="gpt-4o-mini", temperature=0) as s:
        second = "".join(c.text for c in s)
    assert first == second == "cached words"
    assert len(fake.requests) == 1
    assert s.response is not None and s.response.cached


@pytest.mark.anyio
async def test_async_cache_query_and_stream() -> None:
    fake = FakeProvider(FakeReply(text="same answer"))
    async with make(mm.AsyncClient, fake, cache=True) as client:
        a = await client.query("q", model="gpt-4o-mini", temperature=0)
        b = await client.query("q", model="gpt-4o-mini", temperature=0)
        async with client.stream("q", model="gpt-4o-mini", temperature=0) as s:
            text = "".join([c.text async for c in s])
    assert a.text == b.text == text == "same answer"
    assert b.cached
    assert len(fake.requests) == 1


def test_policy_restricts_models_before_sending() -> None:
    fake = FakeProvider()
    policies = PolicySet(
        [
            Policy(
                name="free",
                allowed_models=frozenset({"gpt-4o-mini"}),
                max_tokens=100,
                on_max_tokens="clamp",
            ),
            Policy(name="pro"),
        ],
        default="free",
        roles={"vip": "pro"},
    )
    client = make(mm.Client, fake, policies=policies)
    with pytest.raises(mm.errors.PolicyViolation, match="free"):
        client.query("hi", model="gpt-4o", user="someone")
    assert fake.requests == []
    client.query("hi", model="gpt-4o-mini", user="someone", max_tokens=5000)
    assert fake.bodies()[-1]["max_completion_tokens"] == 100  # clamped by the policy
    client.query("hi", model="gpt-4o", user="vip")
    assert fake.hosts()[-1] == "b.test"


@pytest.mark.anyio
async def test_async_policy_violation() -> None:
    fake = FakeProvider()
    policy = Policy(name="strict", denied_providers=frozenset({"openai"}))
    async with make(mm.AsyncClient, fake, policies=policy) as client:
        with pytest.raises(mm.errors.PolicyViolation, match="strict"):
            await client.query("hi", model="gpt-4o-mini")
    assert fake.requests == []


def test_input_limits() -> None:
    fake = FakeProvider()
    client = make(mm.Client, fake, limits=InputLimits(max_message_chars=10, max_batch_size=2))
    with pytest.raises(mm.InvalidRequestError, match="max_message_chars") as info:
        client.query("x" * 11, model="gpt-4o-mini")
    assert info.value.field == "messages[0].content"
    with pytest.raises(mm.InvalidRequestError, match="batch"):
        client.batch(["a", "b", "c"], model="gpt-4o-mini")
    assert fake.requests == []
