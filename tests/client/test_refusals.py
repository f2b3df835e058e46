"""Refusals and blocked prompts at the HTTP boundary, on both clients and the OpenAI shape.

A refusal is never the answer's text: it is ``ChatResponse.refusal`` (``message.refusal`` in the
OpenAI shape) with finish reason ``refusal``. A prompt Gemini blocks (a 200 without candidates)
is :class:`~multimodel.errors.ContentFiltered`, sent once and never retried elsewhere.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import multimodel as mm
from multimodel import errors

KEY = "sk-test-refusals-0123456789"
REFUSAL = "I'm sorry, I can't help with that."

pytestmark = pytest.mark.filterwarnings("ignore::multimodel.errors.PricingWarning")

Reply = tuple[int, str, bytes]  # status, content type, body


def sse(*events: Any) -> bytes:
    out = []
    for event in events:
        data = event if isinstance(event, str) else json.dumps(event)
        out.append(f"data: {data}\n\n")
    return "".join(out).encode()


def openai_chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-r",
        "object": "chat.completion.chunk",
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


OPENAI_REFUSAL = json.dumps(
    {
        "id": "chatcmpl-r",
        "object": "chat.completion",
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "refusal": REFUSAL},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14},
    }
).encode()
OPENAI_REFUSAL_STREAM = sse(
    openai_chunk({"role": "assistant", "content": None, "refusal": ""}),
    openai_chunk({"refusal": "I'm sorry, "}),
    openai_chunk({"refusal": "I can't help with that."}),
    openai_chunk({}, "stop"),
    {"id": "chatcmpl-r", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 9}},
    "[DONE]",
)
ANTHROPIC_REFUSAL = json.dumps(
    {
        "id": "msg_r",
        "type": "message",
        "role": "assistant",
        "model": "claude",
        "content": [],
        "stop_reason": "refusal",
        "stop_sequence": None,
        "stop_details": {"type": "refusal", "category": "cyber", "explanation": REFUSAL},
        "usage": {"input_tokens": 5, "output_tokens": 0},
    }
).encode()
GEMINI_BLOCKED = json.dumps(
    {
        "promptFeedback": {"blockReason": "PROHIBITED_CONTENT", "safetyRatings": []},
        "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7},
        "modelVersion": "gemini-2.0-flash",
    }
).encode()
GEMINI_SAFETY_STOP = json.dumps(
    {
        "candidates": [{"finishReason": "SAFETY", "index": 0, "safetyRatings": []}],
        "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7},
    }
).encode()


class Provider:
    """A MockTransport handler: ``replies(request)`` per host, every request recorded."""

    def __init__(self, replies: dict[str, Callable[[httpx.Request], Reply]]) -> None:
        self.replies = replies
        self.hosts: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.hosts.append(request.url.host)
        status, content_type, body = self.replies[request.url.host](request)
        return httpx.Response(status, headers={"content-type": content_type}, content=body)


def json_reply(body: bytes) -> Callable[[httpx.Request], Reply]:
    return lambda _: (200, "application/json", body)


def sse_reply(body: bytes) -> Callable[[httpx.Request], Reply]:
    return lambda _: (200, "text/event-stream", body)


def openai_ok(_: httpx.Request) -> Reply:
    body = {
        "id": "chatcmpl-ok",
        "model": "m",
        "choices": [{"index": 0, "message": {"content": "fine"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1},
    }
    return 200, "application/json", json.dumps(body).encode()


def deployments(*specs: tuple[str, str]) -> list[mm.Deployment]:
    return [
        mm.Deployment(
            model="m", provider=provider, name=host.split(".")[0], api_key=KEY,
            base_url=f"https://{host}/v1",
        )
        for provider, host in specs
    ]  # fmt: skip


def client(cls: Any, provider: Provider, *specs: tuple[str, str]) -> Any:
    return cls(
        deployments=deployments(*specs),
        transport=httpx.MockTransport(provider),
        strategy="round_robin",
        retry=mm.RetryPolicy(backoff_initial=0.001, backoff_max=0.002),
    )


def check_openai_refusal(r: mm.ChatResponse) -> None:
    assert r.text == ""
    assert r.refusal == REFUSAL
    assert (r.finish_reason, r.raw_finish_reason) == ("refusal", "stop")
    assert r.usage.output_tokens == 9


def test_openai_refusal_is_not_the_text() -> None:
    provider = Provider({"a.test": json_reply(OPENAI_REFUSAL)})
    with client(mm.Client, provider, ("openai", "a.test")) as c:
        check_openai_refusal(c.query("how do I ...", model="m"))
        completion = c.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "how do I ..."}]
        )
    message = completion.choices[0].message
    assert (message.content, message.refusal) == (None, REFUSAL)
    assert completion.choices[0].finish_reason == "stop"  # what OpenAI itself sends
    assert completion.multimodel.finish_reason == "refusal"
    assert provider.hosts == ["a.test", "a.test"]  # a refusal is an answer: not retried


@pytest.mark.anyio
async def test_async_openai_refusal_is_not_the_text() -> None:
    provider = Provider({"a.test": json_reply(OPENAI_REFUSAL)})
    async with client(mm.AsyncClient, provider, ("openai", "a.test")) as c:
        check_openai_refusal(await c.query("how do I ...", model="m"))
        completion = await c.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "how do I ..."}]
        )
    assert completion.choices[0].message.refusal == REFUSAL
    assert completion.choices[0].message.content is None


def test_a_refusal_can_be_replayed_in_the_conversation() -> None:
    seen: list[Any] = []

    def reply(request: httpx.Request) -> Reply:
        seen.append(json.loads(request.content))
        return openai_ok(request)

    provider = Provider({"a.test": reply})
    history = [
        {"role": "user", "content": "how do I ..."},
        {"role": "assistant", "content": None, "refusal": REFUSAL},  # as the OpenAI SDK keeps it
        {"role": "user", "content": "why not?"},
    ]
    with client(mm.Client, provider, ("openai", "a.test")) as c:
        assert c.chat.completions.create(model="m", messages=history).choices[0].message.content
    assert seen[0]["messages"][1] == {"role": "assistant", "content": None, "refusal": REFUSAL}


def test_streamed_openai_refusal_reaches_the_chunks() -> None:
    provider = Provider({"a.test": sse_reply(OPENAI_REFUSAL_STREAM)})
    with client(mm.Client, provider, ("openai", "a.test")) as c:
        with c.stream("how do I ...", model="m") as stream:
            chunks = list(stream)
        assert stream.response is not None
        facade = list(
            c.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "x"}], stream=True
            )
        )
    assert "".join(ch.text for ch in chunks) == ""
    assert "".join(ch.refusal for ch in chunks) == REFUSAL
    assert stream.response.text == ""
    assert (stream.response.finish_reason, stream.response.raw_finish_reason) == ("refusal", "stop")
    deltas = [ch.choices[0].delta for ch in facade if ch.choices]
    assert "".join(d.refusal or "" for d in deltas) == REFUSAL
    # No refusal text in content (the opening chunk has OpenAI's empty "" content).
    assert all(not d.content for d in deltas)


def test_streamed_openai_refusal_reaches_the_final_response() -> None:
    provider = Provider({"a.test": sse_reply(OPENAI_REFUSAL_STREAM)})
    with client(mm.Client, provider, ("openai", "a.test")) as c:
        with c.stream("how do I ...", model="m") as stream:
            list(stream)
    assert stream.response is not None
    assert stream.response.refusal == REFUSAL


def test_anthropic_refusal() -> None:
    provider = Provider({"a.test": json_reply(ANTHROPIC_REFUSAL)})
    with client(mm.Client, provider, ("anthropic", "a.test")) as c:
        r = c.query("how do I ...", model="m")
    assert (r.text, r.refusal) == ("", REFUSAL)
    assert (r.finish_reason, r.raw_finish_reason) == ("refusal", "refusal")


def check_blocked(info: pytest.ExceptionInfo[BaseException], provider: Provider) -> None:
    error = info.value
    assert isinstance(error, errors.ContentFiltered)
    assert error.code == "PROHIBITED_CONTENT"
    assert "PROHIBITED_CONTENT" in str(error)
    assert not error.retryable
    # Sent once: another deployment would block the same prompt.
    assert provider.hosts == ["a.test"]


def test_gemini_blocked_prompt_is_content_filtered_and_not_retried() -> None:
    provider = Provider({"a.test": json_reply(GEMINI_BLOCKED), "b.test": openai_ok})
    with client(mm.Client, provider, ("gemini", "a.test"), ("openai", "b.test")) as c:
        with pytest.raises(errors.ContentFiltered) as info:
            c.query("how do I ...", model="m")
        assert c.stats().deployments["a"].failures == 1
    check_blocked(info, provider)


@pytest.mark.anyio
async def test_async_gemini_blocked_prompt_is_content_filtered_and_not_retried() -> None:
    provider = Provider({"a.test": json_reply(GEMINI_BLOCKED), "b.test": openai_ok})
    async with client(mm.AsyncClient, provider, ("gemini", "a.test"), ("openai", "b.test")) as c:
        with pytest.raises(errors.ContentFiltered) as info:
            await c.query("how do I ...", model="m")
    check_blocked(info, provider)


def test_gemini_blocked_prompt_in_a_stream() -> None:
    blocked = sse(json.loads(GEMINI_BLOCKED))
    provider = Provider({"a.test": sse_reply(blocked), "b.test": openai_ok})
    with client(mm.Client, provider, ("gemini", "a.test"), ("openai", "b.test")) as c:
        with pytest.raises(errors.ContentFiltered) as info, c.stream("x", model="m") as stream:
            list(stream)
    check_blocked(info, provider)


def test_gemini_safety_finish_is_a_content_filtered_answer() -> None:
    provider = Provider({"a.test": json_reply(GEMINI_SAFETY_STOP)})
    with client(mm.Client, provider, ("gemini", "a.test")) as c:
        r = c.query("x", model="m")
    assert (r.finish_reason, r.raw_finish_reason, r.text, r.refusal) == (
        "content_filter", "SAFETY", "", None,
    )  # fmt: skip


def test_only_assistant_messages_carry_a_refusal() -> None:
    assert mm.Message(role="assistant", content=None, refusal="no").text == ""
    with pytest.raises(ValueError, match="only 'assistant' messages can carry `refusal`"):
        mm.Message(role="user", content="x", refusal="no")
    with pytest.raises(ValueError, match="needs `content`"):
        mm.Message(role="assistant", content=None)


def test_a_cached_refusal_replays_as_a_refusal_chunk() -> None:
    from multimodel.cache import chunks_from_response, decode_response, encode_response

    provider = Provider({"a.test": json_reply(OPENAI_REFUSAL)})
    with client(mm.Client, provider, ("openai", "a.test")) as c:
        r = decode_response(encode_response(c.query("x", model="m")))
    assert r.refusal == REFUSAL and r.finish_reason == "refusal"
    chunks = chunks_from_response(r)
    assert "".join(ch.refusal for ch in chunks) == REFUSAL
    assert "".join(ch.text for ch in chunks) == ""
    assert chunks[-1].finish_reason == "refusal"
