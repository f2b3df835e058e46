"""A 200 ``application/json`` answer to a stream request, over real sockets, on both clients.

It used to be an incomplete stream (a retryable connection error, sent three times); it is now
read as the complete answer when it is one. A JSON error object is mapped like an error body
(so a 503-shaped one fails over); anything else is a ``MalformedResponse``.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from typing import Any

import pytest

import multimodel as mm
from multimodel import errors
from multimodel.testing.faults import FaultServer, Step, json_response, openai_completion

KEY = "sk-test-json-answers-0123456789"
RETRY = mm.RetryPolicy(backoff_initial=0.01, backoff_max=0.01, jitter=0.0)

pytestmark = [
    pytest.mark.filterwarnings("ignore::multimodel.errors.PricingWarning"),
    pytest.mark.filterwarnings("ignore:Async generator 'httpcore.:ResourceWarning"),
]

ANSWERS: dict[str, dict[str, Any]] = {
    "openai": json.loads(openai_completion("Paris.")),
    "anthropic": {
        "id": "msg_j", "type": "message", "role": "assistant", "model": "claude",
        "content": [{"type": "text", "text": "Paris."}], "stop_reason": "end_turn",
        "usage": {"input_tokens": 3, "output_tokens": 1},
    },
    "gemini": {
        "candidates": [{"content": {"role": "model", "parts": [{"text": "Paris."}]},
                        "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 1},
    },
}  # fmt: skip


def script(body: Any) -> list[Step]:
    head, content = json_response(json.dumps(body).encode())
    return [Step(0.0, head + content)]


def deployment(fmt: str, name: str, server: FaultServer) -> mm.Deployment:
    return mm.Deployment(model="m", provider=fmt, name=name, base_url=server.base_url, api_key=KEY)


@pytest.mark.parametrize("fmt", list(ANSWERS))
def test_sync_json_answer_to_a_stream(fmt: str) -> None:
    with FaultServer(script(ANSWERS[fmt])) as server:
        with mm.Client(deployments=[deployment(fmt, "a", server)], retry=RETRY) as client:
            with client.stream("capital of France?", model="m") as stream:
                chunks = list(stream)
            stats = client.stats().deployments["a"]
    assert "".join(c.text for c in chunks) == "Paris."
    assert stream.response is not None
    assert (stream.response.text, stream.response.finish_reason) == ("Paris.", "stop")
    assert stream.response.usage.input_tokens == 3
    assert server.requests == 1  # an answer: not retried
    assert (stats.successes, stats.failures, stats.in_flight) == (1, 0, 0)


@pytest.mark.anyio
@pytest.mark.parametrize("fmt", list(ANSWERS))
async def test_async_json_answer_to_a_stream(fmt: str) -> None:
    with FaultServer(script(ANSWERS[fmt])) as server:
        async with mm.AsyncClient(deployments=[deployment(fmt, "a", server)], retry=RETRY) as c:
            async with c.stream("capital of France?", model="m") as stream:
                text = "".join([chunk.text async for chunk in stream])
    assert text == "Paris."
    assert stream.response is not None and stream.response.finish_reason == "stop"
    assert server.requests == 1


def test_openai_shaped_stream_of_a_json_answer() -> None:
    with FaultServer(script(ANSWERS["openai"])) as server:
        with mm.Client(deployments=[deployment("openai", "a", server)], retry=RETRY) as client:
            chunks = list(
                client.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": "x"}], stream=True
                )
            )
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == "Paris."
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == "stop"


def test_json_error_body_at_200_is_mapped_and_fails_over() -> None:
    busy = {"error": {"message": "The server is busy", "type": "server_error", "code": None}}
    with ExitStack() as stack:
        bad = stack.enter_context(FaultServer(script(busy)))
        good = stack.enter_context(FaultServer(script(ANSWERS["openai"])))
        client = stack.enter_context(
            mm.Client(
                deployments=[deployment("openai", "a", bad), deployment("openai", "b", good)],
                strategy="round_robin",
                retry=RETRY,
            )
        )
        with client.stream("x", model="m") as stream:
            text = "".join(c.text for c in stream)
        errors_a = client.stats().deployments["a"].errors
    assert text == "Paris."
    assert stream.trace.deployments() == ["a", "b"]
    assert errors_a == {"ServerError": 1}


@pytest.mark.anyio
async def test_async_json_that_is_no_answer_is_malformed() -> None:
    with FaultServer(script({"status": "queued"})) as server:
        async with mm.AsyncClient(
            deployments=[deployment("openai", "a", server)], max_retries=0
        ) as client:
            with pytest.raises(errors.MalformedResponse) as info:
                async with client.stream("x", model="m") as stream:
                    async for _ in stream:
                        pass
    assert "a stream request was answered with a JSON body" in str(info.value)
    assert "not a complete answer" in str(info.value)


def test_json_that_is_no_answer_is_malformed() -> None:
    with FaultServer(script({"status": "queued"})) as server:
        with mm.Client(deployments=[deployment("openai", "a", server)], max_retries=0) as client:
            with (
                pytest.raises(errors.MalformedResponse) as info,
                client.stream("x", model="m") as s,
            ):
                list(s)
    assert "a stream request was answered with a JSON body" in str(info.value)


def test_the_error_names_the_content_type() -> None:
    with FaultServer(script({"status": "queued"})) as server:
        with mm.Client(deployments=[deployment("openai", "a", server)], max_retries=0) as client:
            with (
                pytest.raises(errors.MalformedResponse) as info,
                client.stream("x", model="m") as s,
            ):
                list(s)
    assert "content type 'application/json'" in str(info.value)
