"""Streams that end without a finish reason, over real sockets, on both clients.

llama.cpp's server cuts a running stream with ``data: [DONE]`` and no finish reason when a second
request arrives; such a stream is incomplete, like one cut without ``[DONE]``: before any content
the request fails over to the next deployment, after content the caller gets
:class:`~multimodel.errors.StreamInterrupted` with the partial text. The same holds for an
Anthropic ``message_stop`` without a ``stop_reason`` and a Gemini stream without a
``finishReason``. Deployment ``a`` misbehaves (a :class:`FaultServer`), ``b`` answers.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

import pytest

import multimodel as mm
from multimodel import errors
from multimodel.testing.faults import FaultServer, Step, sse_events, sse_head

KEY = "sk-test-incomplete-0123456789"
RETRY = mm.RetryPolicy(backoff_initial=0.01, backoff_max=0.01, jitter=0.0)

pytestmark = [
    pytest.mark.filterwarnings("ignore::multimodel.errors.PricingWarning"),
    pytest.mark.filterwarnings("ignore:Async generator 'httpcore.:ResourceWarning"),
]


def openai_chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "c",
        "object": "chat.completion.chunk",
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def anthropic(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, **fields}


ANTHROPIC_START = anthropic(
    "message_start",
    message={"id": "msg", "model": "claude", "content": [], "usage": {"input_tokens": 3}},
)


def unfinished(fmt: str, text: str) -> list[Step]:
    """A 200 stream in ``fmt`` that ends cleanly but never says why generation ended."""
    if fmt == "openai":
        events: list[object] = [openai_chunk({"role": "assistant"})]
        if text:
            events.append(openai_chunk({"content": text}))
        events.append("[DONE]")
    elif fmt == "anthropic":
        events = [ANTHROPIC_START]
        if text:
            events += [
                anthropic("content_block_start", index=0, content_block={"type": "text", "text": ""}),
                anthropic("content_block_delta", index=0, delta={"type": "text_delta", "text": text}),
                anthropic("content_block_stop", index=0),
            ]  # fmt: skip
        events += [
            anthropic("message_delta", delta={"stop_reason": None}, usage={"output_tokens": 1}),
            anthropic("message_stop"),
        ]
    else:
        parts = [{"text": text}] if text else []
        events = [
            {"candidates": [{"content": {"role": "model", "parts": parts}}]},
            {"candidates": [], "usageMetadata": {"promptTokenCount": 3}},
        ]
    return [Step(0.0, sse_head() + sse_events(events))]


ANSWER = [
    Step(
        0.0,
        sse_head()
        + sse_events(
            [
                openai_chunk({"role": "assistant", "content": "fine"}),
                openai_chunk({}, "stop"),
                {"id": "c", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1}},
                "[DONE]",
            ]
        ),
    )
]


def deployments(fmt: str, bad: FaultServer, good: FaultServer) -> list[mm.Deployment]:
    return [
        mm.Deployment(model="m", provider=fmt, name="a", base_url=bad.base_url, api_key=KEY),
        mm.Deployment(model="m", provider="openai", name="b", base_url=good.base_url, api_key=KEY),
    ]


def servers(fmt: str, text: str, stack: ExitStack) -> tuple[FaultServer, FaultServer]:
    bad = stack.enter_context(FaultServer(unfinished(fmt, text)))
    good = stack.enter_context(FaultServer(ANSWER))
    return bad, good


FORMATS = ["openai", "anthropic", "gemini"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_sync_no_finish_reason_before_content_fails_over(fmt: str) -> None:
    with ExitStack() as stack:
        bad, good = servers(fmt, "", stack)
        client = stack.enter_context(
            mm.Client(deployments=deployments(fmt, bad, good), strategy="round_robin", retry=RETRY)
        )
        with client.stream("hi", model="m") as stream:
            text = "".join(c.text for c in stream)
        stats = client.stats().deployments
    assert text == "fine"
    assert stream.response is not None and stream.response.deployment == "b"
    assert stream.trace.deployments() == ["a", "b"]
    assert (bad.requests, good.requests) == (1, 1)
    assert (stats["a"].failures, stats["a"].successes, stats["a"].in_flight) == (1, 0, 0)
    assert stats["a"].errors == {"ProviderConnectionError": 1}


@pytest.mark.parametrize("fmt", FORMATS)
def test_sync_no_finish_reason_after_content_is_interrupted(fmt: str) -> None:
    received: list[str] = []
    with ExitStack() as stack:
        bad, good = servers(fmt, "partial", stack)
        client = stack.enter_context(
            mm.Client(deployments=deployments(fmt, bad, good), strategy="round_robin", retry=RETRY)
        )
        with pytest.raises(errors.StreamInterrupted) as info, client.stream("hi", model="m") as s:
            for chunk in s:
                received.append(chunk.text)
        stats = client.stats().deployments
    assert "".join(received) == "partial"
    assert info.value.partial_text == "partial"
    assert info.value.deployment == "a"
    assert "before the provider marked it complete" in str(info.value)
    assert (bad.requests, good.requests) == (1, 0)  # content reached the caller: no failover
    assert (stats["a"].failures, stats["a"].in_flight) == (1, 0)


@pytest.mark.anyio
@pytest.mark.parametrize("fmt", FORMATS)
async def test_async_no_finish_reason_before_content_fails_over(fmt: str) -> None:
    with ExitStack() as stack:
        bad, good = servers(fmt, "", stack)
        async with mm.AsyncClient(
            deployments=deployments(fmt, bad, good), strategy="round_robin", retry=RETRY
        ) as client:
            async with client.stream("hi", model="m") as stream:
                text = "".join([c.text async for c in stream])
            stats = client.stats().deployments
    assert text == "fine"
    assert stream.response is not None and stream.response.deployment == "b"
    assert (bad.requests, good.requests) == (1, 1)
    assert (stats["a"].failures, stats["a"].in_flight) == (1, 0)


@pytest.mark.anyio
@pytest.mark.parametrize("fmt", FORMATS)
async def test_async_no_finish_reason_after_content_is_interrupted(fmt: str) -> None:
    received: list[str] = []
    with ExitStack() as stack:
        bad, good = servers(fmt, "partial", stack)
        async with mm.AsyncClient(
            deployments=deployments(fmt, bad, good), strategy="round_robin", retry=RETRY
        ) as client:
            with pytest.raises(errors.StreamInterrupted) as info:
                async with client.stream("hi", model="m") as stream:
                    async for chunk in stream:
                        received.append(chunk.text)
            stats = client.stats().deployments
    assert "".join(received) == "partial"
    assert info.value.partial_text == "partial"
    assert (bad.requests, good.requests) == (1, 0)
    assert (stats["a"].failures, stats["a"].in_flight) == (1, 0)
