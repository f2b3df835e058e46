"""A JSON document in answer to a stream request, for the three wire formats (decoder level).

Servers that ignore ``stream: true`` (and proxies, and Gemini without ``alt=sse``) answer a
stream request with one JSON body. The decoder recognizes it by its first non-blank byte, reads
it whole and yields the chunks the complete answer implies; a JSON error object is mapped like
an error body; anything else is a :class:`MalformedResponse` that names the content type.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import SecretStr

from multimodel.errors import (
    ContentFiltered,
    ContextLengthExceeded,
    MalformedResponse,
    Overloaded,
    ProviderConnectionError,
    RateLimited,
    ServerError,
)
from multimodel.providers import base
from multimodel.providers.anthropic import AnthropicAdapter
from multimodel.providers.base import Endpoint, ProviderAdapter
from multimodel.providers.gemini import GeminiAdapter
from multimodel.providers.openai import OpenAIAdapter
from multimodel.types import ChatChunk, Usage

KEY = "sk-test-json-stream-0123456789"
JSON = "application/json; charset=utf-8"


def endpoint(adapter: str) -> Endpoint:
    return Endpoint(
        name=f"{adapter}-dep", model="m", wire_model="m", provider=adapter, adapter=adapter,
        base_url="https://x.test/v1", api_key=SecretStr(KEY),
    )  # fmt: skip


ADAPTERS: dict[str, ProviderAdapter] = {
    "openai": OpenAIAdapter(),
    "anthropic": AnthropicAdapter(),
    "gemini": GeminiAdapter(),
}


def decode(
    fmt: str, body: bytes | Any, content_type: str | None = JSON, *, step: int | None = None
) -> list[ChatChunk]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    decoder = ADAPTERS[fmt].stream_decoder(endpoint(fmt), content_type=content_type)
    chunks: list[ChatChunk] = []
    size = step or len(raw) or 1
    for i in range(0, len(raw), size):
        chunks += decoder.feed(raw[i : i + size])
    chunks += decoder.close()
    assert decoder.complete
    return chunks


OPENAI_ANSWER = {
    "id": "chatcmpl-j",
    "object": "chat.completion",
    "model": "gpt-x",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Paris.",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "lookup", "arguments": '{"q":"x"}'},
                    }
                ],
            },
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
}
ANTHROPIC_ANSWER = {
    "id": "msg_j",
    "type": "message",
    "role": "assistant",
    "model": "claude-x",
    "content": [
        {"type": "text", "text": "Paris."},
        {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "x"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {"input_tokens": 7, "output_tokens": 3},
}
GEMINI_ANSWER = {
    "candidates": [
        {
            "content": {
                "role": "model",
                "parts": [
                    {"text": "Paris."},
                    {"functionCall": {"name": "lookup", "args": {"q": "x"}}},
                ],
            },
            "finishReason": "STOP",
        }
    ],
    "usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": 3, "totalTokenCount": 10},
    "modelVersion": "gemini-x",
}
ANSWERS = {"openai": OPENAI_ANSWER, "anthropic": ANTHROPIC_ANSWER, "gemini": GEMINI_ANSWER}


@pytest.mark.parametrize("fmt", list(ADAPTERS))
@pytest.mark.parametrize("step", [None, 1, 7])
def test_a_json_answer_is_the_complete_answer(fmt: str, step: int | None) -> None:
    chunks = decode(fmt, ANSWERS[fmt], step=step)
    assert "".join(c.text for c in chunks) == "Paris."
    calls = [d for c in chunks for d in c.tool_calls]
    assert [(d.index, d.name, json.loads(d.arguments)) for d in calls] == [
        (0, "lookup", {"q": "x"})
    ]
    finishes = [c.finish_reason for c in chunks if c.finish_reason]
    assert finishes == ["tool_calls"]
    assert [c.usage for c in chunks if c.usage][-1] == Usage(input_tokens=7, output_tokens=3)
    assert any(c.has_content for c in chunks)


def test_blank_lines_before_the_json_body_are_skipped() -> None:
    # DeepSeek pads queued answers with blank lines; a BOM is tolerated too.
    body = b"\n\r\n  \xef\xbb\xbf" + json.dumps(OPENAI_ANSWER).encode()
    assert "".join(c.text for c in decode("openai", body, step=2)) == "Paris."


def test_a_json_refusal_keeps_its_shape() -> None:
    answer = json.loads(json.dumps(OPENAI_ANSWER))
    answer["choices"][0]["message"] = {"role": "assistant", "content": None, "refusal": "No."}
    answer["choices"][0]["finish_reason"] = "stop"
    [chunk] = decode("openai", answer)
    assert (chunk.text, chunk.refusal, chunk.finish_reason) == ("", "No.", "refusal")


def test_the_content_type_is_not_needed_to_recognize_json() -> None:
    assert "".join(c.text for c in decode("openai", OPENAI_ANSWER, None)) == "Paris."
    # ... nor trusted: an event stream labelled JSON is still an event stream.
    sse = b'data: {"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":"stop"}]}\n\n'
    assert [c.text for c in decode("openai", sse + b"data: [DONE]\n\n")] == ["hi"]


@pytest.mark.parametrize(
    ("fmt", "body", "error"),
    [
        ("openai", {"error": {"message": "boom", "type": "server_error"}}, ServerError),
        ("openai", {"error": {"message": "slow", "code": "rate_limit_exceeded"}}, RateLimited),
        ("openai", {"error": {"message": "x", "code": "context_length_exceeded"}}, ContextLengthExceeded),
        ("openai", {"object": "error", "message": "busy", "code": 503}, Overloaded),
        ("anthropic", {"type": "error", "error": {"type": "overloaded_error", "message": "o"}}, Overloaded),
        ("gemini", {"error": {"code": 429, "message": "q", "status": "RESOURCE_EXHAUSTED"}}, RateLimited),
        ("gemini", [{"error": {"code": 503, "message": "u", "status": "UNAVAILABLE"}}], Overloaded),
    ],
)  # fmt: skip
def test_a_json_error_body_is_mapped_like_an_error_body(fmt: str, body: Any, error: type) -> None:
    with pytest.raises(error) as info:
        decode(fmt, body)
    assert KEY not in str(info.value)


@pytest.mark.parametrize("fmt", list(ADAPTERS))
def test_json_that_is_no_answer_is_malformed_and_names_the_content_type(fmt: str) -> None:
    with pytest.raises(MalformedResponse) as info:
        decode(fmt, {"hello": "world"})
    message = str(info.value)
    assert "a stream request was answered with a JSON body" in message
    assert JSON in message
    assert "not a complete answer" in message
    assert info.value.status == 200
    assert info.value.retryable  # MalformedResponse: another deployment may answer properly


def test_cut_json_is_malformed_and_names_the_content_type() -> None:
    with pytest.raises(MalformedResponse, match="not valid JSON") as info:
        decode("openai", json.dumps(OPENAI_ANSWER).encode()[:40])
    assert JSON in str(info.value)


def test_without_a_content_type_the_message_says_json_body() -> None:
    with pytest.raises(
        MalformedResponse, match=r"answered with a JSON body that is not a complete"
    ):
        decode("openai", {"hello": "world"}, None)


def test_an_echoed_key_is_redacted_from_the_message() -> None:
    with pytest.raises(MalformedResponse) as info:
        decode("openai", b'{"echo": "' + KEY.encode() + b'"')
    assert KEY not in str(info.value)


def test_a_json_body_past_the_size_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "MAX_BODY_BYTES", 64)
    decoder = ADAPTERS["openai"].stream_decoder(endpoint("openai"), content_type=JSON)
    with pytest.raises(MalformedResponse, match="exceeds the 64 byte limit"):
        decoder.feed(json.dumps(OPENAI_ANSWER).encode())


def test_gemini_json_array_stream_is_read_like_sse() -> None:
    # streamGenerateContent without ?alt=sse: one JSON array of whole responses.
    body = [
        {"candidates": [{"content": {"role": "model", "parts": [{"text": "Par"}]}}],
         "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7}},
        {"candidates": [{"content": {"role": "model", "parts": [{"text": "is."}]},
                         "finishReason": "STOP"}],
         "usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": 2, "totalTokenCount": 9}},
    ]  # fmt: skip
    chunks = decode("gemini", body, step=5)
    assert "".join(c.text for c in chunks) == "Paris."
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    assert [c.usage for c in chunks if c.usage][-1] == Usage(input_tokens=7, output_tokens=2)


def test_gemini_json_array_without_a_finish_reason_is_malformed() -> None:
    body = [{"candidates": [{"content": {"parts": [{"text": "Par"}]}}]}]
    with pytest.raises(MalformedResponse, match="without a finishReason"):
        decode("gemini", body)


@pytest.mark.parametrize(
    "body",
    [
        {"promptFeedback": {"blockReason": "SAFETY"}},
        [{"promptFeedback": {"blockReason": "SAFETY"}}],
    ],
)
def test_gemini_json_blocked_prompt_is_content_filtered(body: Any) -> None:
    with pytest.raises(ContentFiltered):
        decode("gemini", body)


def test_a_body_that_is_no_event_stream_names_its_content_type() -> None:
    page = b"<html><body>Please log in</body></html>\n"
    with pytest.raises(MalformedResponse, match="content type 'text/html'.*no events"):
        decode("openai", page, "text/html")
    # Without the header, or labelled as an event stream, it is an incomplete stream as before.
    for content_type in (None, "text/event-stream"):
        with pytest.raises(ProviderConnectionError, match="before the provider marked it complete"):
            decode("openai", page, content_type)


def test_an_empty_or_blank_body_is_an_incomplete_stream() -> None:
    for body in (b"", b"\n\n  \n"):
        with pytest.raises(ProviderConnectionError):
            decode("openai", body, JSON)


@pytest.mark.parametrize("fmt", ["openai", "anthropic", "gemini"])
def test_event_json_with_blanks_is_read_and_trailing_bytes_are_malformed(fmt: str) -> None:
    """An event's JSON is decoded exactly as ``json.loads`` would: blanks around it are fine,
    anything after the value is not (the fast path must not accept a prefix)."""
    event = {
        "openai": {"choices": [{"index": 0, "delta": {"content": "hi"}}]},
        "anthropic": {"type": "content_block_delta", "index": 0,
                      "delta": {"type": "text_delta", "text": "hi"}},
        "gemini": {"candidates": [{"content": {"parts": [{"text": "hi"}]}}]},
    }[fmt]  # fmt: skip
    prelude = b""
    if fmt == "anthropic":
        start = {"type": "message_start", "message": {"id": "m1", "model": "m", "usage": {}}}
        prelude = b"event: message_start\ndata: " + json.dumps(start).encode() + b"\n\n"
    padded = prelude + b"data:   " + json.dumps(event).encode() + b"  \n\n"
    decoder = ADAPTERS[fmt].stream_decoder(endpoint(fmt), content_type="text/event-stream")
    assert [c.text for c in decoder.feed(padded) if c.text] == ["hi"]
    trailing = prelude + b"data: " + json.dumps(event).encode() + b" }\n\n"
    decoder = ADAPTERS[fmt].stream_decoder(endpoint(fmt), content_type="text/event-stream")
    with pytest.raises(MalformedResponse, match="not valid JSON"):
        decoder.feed(trailing)
