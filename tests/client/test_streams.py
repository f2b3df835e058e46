"""Stream failover before the first chunk, StreamInterrupted after it, early close."""

from __future__ import annotations

from typing import Any

import pytest

import multimodel as mm
from multimodel import errors
from multimodel.testing.fake import FakeProvider, FakeReply

KEY = "sk-test-streams-0123456789"


def client_kwargs(fake: FakeProvider) -> dict[str, Any]:
    return {
        "deployments": [
            mm.Deployment(
                model="m", provider="openai", name="a", base_url="https://a.test/v1", api_key=KEY
            ),
            mm.Deployment(
                model="m", provider="openai", name="b", base_url="https://b.test/v1", api_key=KEY
            ),
        ],
        "transport": fake,
        "strategy": "round_robin",
        "retry": mm.RetryPolicy(backoff_initial=0.001, backoff_max=0.002),
    }


def test_error_event_before_first_chunk_fails_over() -> None:
    fake = FakeProvider(FakeReply(text="hello world", chunks=2))
    fake.script("a.test", [FakeReply(text="hello world", stream_error_after=0)])
    with mm.Client(**client_kwargs(fake)) as client, client.stream("hi", model="m") as s:
        chunks = list(s)
    assert "".join(c.text for c in chunks) == "hello world"
    assert s.response is not None and s.response.deployment == "b"
    assert s.trace.deployments() == ["a", "b"]
    assert s.response.usage.output_tokens == 5


def test_error_after_first_chunk_raises_stream_interrupted_with_partial_text() -> None:
    fake = FakeProvider()
    fake.script("a.test", [FakeReply(text="hello world", chunks=2, stream_error_after=1)])
    received = []
    with mm.Client(**client_kwargs(fake)) as client:
        with pytest.raises(errors.StreamInterrupted) as info, client.stream("hi", model="m") as s:
            for chunk in s:
                received.append(chunk.text)
    assert received == ["hello "]
    assert info.value.partial_text == "hello "
    assert info.value.deployment == "a"
    assert fake.hosts() == ["a.test"]  # never retried: content had reached the caller
    assert client.tracker.get("a").failures == 1
    assert client.tracker.get("a").in_flight == 0


@pytest.mark.anyio
async def test_async_error_after_first_chunk() -> None:
    fake = FakeProvider()
    fake.script("a.test", [FakeReply(text="hello world", chunks=2, stream_error_after=1)])
    received = []
    async with mm.AsyncClient(**client_kwargs(fake)) as client:
        with pytest.raises(errors.StreamInterrupted) as info:
            async with client.stream("hi", model="m") as s:
                async for chunk in s:
                    received.append(chunk.text)
    assert received == ["hello "]
    assert info.value.partial_text == "hello "


def test_stopping_early_releases_the_slot_and_is_not_a_success() -> None:
    fake = FakeProvider(FakeReply(text="a b c d e f", chunks=6))
    with mm.Client(**client_kwargs(fake)) as client:
        with client.stream("hi", model="m") as s:
            first = next(iter(s))
        assert first.text
        assert s.response is None
        stats = client.stats().deployments["a"]
        assert stats.in_flight == 0
        # Stopped by the caller: billed (estimated), counted, but neither a success nor a failure.
        assert stats.requests == 1
        assert stats.successes == 0
        assert stats.failures == 0
        assert stats.output_tokens >= 1


def test_get_final_response_and_iteration_without_context_manager() -> None:
    fake = FakeProvider(FakeReply(text="one two three", chunks=3))
    with mm.Client(**client_kwargs(fake)) as client:
        s = client.stream("hi", model="m")
        response = s.get_final_response()
    assert response.text == "one two three"
    assert response.ttft is not None and response.ttft <= response.latency
    assert response.finish_reason == "stop"
    assert fake.bodies()[0]["stream_options"] == {"include_usage": True}


@pytest.mark.anyio
async def test_async_iteration_without_context_manager() -> None:
    fake = FakeProvider(FakeReply(text="one two three", chunks=3))
    async with mm.AsyncClient(**client_kwargs(fake)) as client:
        texts = [c.text async for c in client.stream("hi", model="m")]
    assert "".join(texts) == "one two three"
