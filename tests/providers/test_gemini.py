"""Gemini adapter: request building, response and stream parsing, error mapping (no I/O)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from multimodel.errors import (
    AuthenticationError,
    BadRequestError,
    ContentFiltered,
    ContextLengthExceeded,
    InvalidRequestError,
    MalformedResponse,
    NotFoundError,
    Overloaded,
    PermissionDeniedError,
    ProviderConnectionError,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    ServerError,
)
from multimodel.providers.base import Endpoint
from multimodel.providers.gemini import GeminiAdapter, normalize_finish_reason
from multimodel.types import (
    ChatChunk,
    ChatRequest,
    ImagePart,
    Message,
    TextPart,
    Tool,
    ToolCall,
    Usage,
)

KEY = "AIzaTestKey1234567890"
BASE = "https://generativelanguage.googleapis.com/v1beta"
ENDPOINT = Endpoint(
    name="gem",
    model="gemini-2.0-flash",
    wire_model="gemini-2.0-flash",
    provider="gemini",
    base_url=BASE,
    api_key=SecretStr(KEY),
    auth="x-goog-api-key",
)
ADAPTER = GeminiAdapter()
SIG = "CiIBVKhc7oXfSignatureBytesBase64=="


def endpoint(**changes: Any) -> Endpoint:
    return dataclasses.replace(ENDPOINT, **changes)


def chat(*messages: Message, **kw: Any) -> ChatRequest:
    return ChatRequest(
        model="gemini-2.0-flash",
        messages=list(messages) or [Message(role="user", content="hi")],
        **kw,
    )


def built(request: ChatRequest, *, stream: bool = False, ep: Endpoint = ENDPOINT) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(ADAPTER.build_request(request, ep, stream=stream).content)
    return body


def respond(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.Response(status, content=content, headers=headers)


def parse(body: Any) -> Any:
    return ADAPTER.parse_response(respond(body), ENDPOINT)


def answer(
    parts: list[dict[str, Any]], finish: str | None = "STOP", **extra: Any
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish is not None:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "modelVersion": "gemini-2.0-flash-001", **extra}


# -- build_request -----------------------------------------------------------------------------


def test_non_stream_url_and_headers() -> None:
    ep = endpoint(headers=(("x-extra", "1"),))
    req = ADAPTER.build_request(chat(), ep, stream=False)
    assert req.method == "POST"
    assert str(req.url) == f"{BASE}/models/gemini-2.0-flash:generateContent"
    assert req.headers["x-goog-api-key"] == KEY
    assert req.headers["content-type"] == "application/json"
    assert req.headers["x-extra"] == "1"
    assert "authorization" not in req.headers
    assert "key" not in req.url.params


def test_stream_url_uses_alt_sse() -> None:
    req = ADAPTER.build_request(chat(), ENDPOINT, stream=True)
    assert str(req.url) == f"{BASE}/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
    assert req.headers["accept"] == "text/event-stream"
    assert "stream" not in json.loads(req.content)


@pytest.mark.parametrize(
    ("wire_model", "path"),
    [
        ("models/gemini-2.5-pro", "models/gemini-2.5-pro"),
        ("tunedModels/my-tune-123", "tunedModels/my-tune-123"),
        ("dynamic/some-model", "dynamic/some-model"),
        ("gemini-2.5-flash", "models/gemini-2.5-flash"),
    ],
)
def test_model_prefix_not_doubled(wire_model: str, path: str) -> None:
    req = ADAPTER.build_request(chat(), endpoint(wire_model=wire_model), stream=False)
    assert str(req.url) == f"{BASE}/{path}:generateContent"


def test_body_is_compact_camel_case_utf8() -> None:
    req = ADAPTER.build_request(
        chat(Message(role="user", content="héllo ☃")), ENDPOINT, stream=False
    )
    assert b", " not in req.content
    assert b": " not in req.content
    assert "héllo ☃".encode() in req.content
    body = json.loads(req.content)
    assert body == {"contents": [{"role": "user", "parts": [{"text": "héllo ☃"}]}]}
    assert "model" not in body


def test_system_and_developer_become_system_instruction() -> None:
    body = built(
        chat(
            Message(role="system", content="Be brief."),
            Message(role="developer", content=[TextPart(text="Answer in French.")]),
            Message(role="user", content="Hi"),
            Message(role="assistant", content="Salut"),
            Message(role="user", content="Again"),
        )
    )
    assert body["systemInstruction"] == {
        "parts": [{"text": "Be brief."}, {"text": "Answer in French."}]
    }
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Hi"}]},
        {"role": "model", "parts": [{"text": "Salut"}]},
        {"role": "user", "parts": [{"text": "Again"}]},
    ]


def test_consecutive_same_role_turns_are_merged() -> None:
    body = built(
        chat(
            Message(role="user", content="one"),
            Message(role="user", content=[TextPart(text="two"), TextPart(text="three")]),
            Message(role="assistant", content="a"),
            Message(role="assistant", content="b"),
        )
    )
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "one"}, {"text": "two"}, {"text": "three"}]},
        {"role": "model", "parts": [{"text": "a"}, {"text": "b"}]},
    ]


def test_generation_config() -> None:
    body = built(chat(max_tokens=256, temperature=0.3, top_p=0.9, stop="END", seed=42))
    assert body["generationConfig"] == {
        "maxOutputTokens": 256,
        "temperature": 0.3,
        "topP": 0.9,
        "stopSequences": ["END"],
        "seed": 42,
    }
    assert "generationConfig" not in built(chat())


def test_response_format() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    body = built(chat(response_format={"type": "json_schema", "schema": schema}))
    assert body["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseJsonSchema": schema,
    }
    body = built(chat(response_format={"type": "json_object"}))
    assert body["generationConfig"] == {"responseMimeType": "application/json"}
    assert "generationConfig" not in built(chat(response_format={"type": "text"}))


WEATHER = Tool(
    name="get_weather",
    description="Weather for a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)


def test_tools_become_function_declarations() -> None:
    body = built(chat(tools=[WEATHER, Tool(name="now")]))
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Weather for a city",
                    "parametersJsonSchema": WEATHER.parameters,
                },
                {"name": "now", "parametersJsonSchema": {"type": "object", "properties": {}}},
            ]
        }
    ]
    assert "toolConfig" not in body


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"mode": "ANY", "allowedFunctionNames": ["get_weather"]},
        ),
    ],
)
def test_tool_choice(choice: Any, config: dict[str, Any]) -> None:
    body = built(chat(tools=[WEATHER], tool_choice=choice))
    assert body["toolConfig"] == {"functionCallingConfig": config}


def test_images_inline_and_by_uri() -> None:
    body = built(
        chat(
            Message(
                role="user",
                content=[
                    TextPart(text="What is this?"),
                    ImagePart(data="iVBORw0KGgo=", media_type="image/png"),
                    ImagePart(url="data:image/jpeg;base64,/9j/4AAQ"),
                    ImagePart(url="gs://bucket/cat.webp", media_type="image/webp"),
                    ImagePart(url="https://example.com/dog.jpg"),
                ],
            )
        )
    )
    assert body["contents"][0]["parts"] == [
        {"text": "What is this?"},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQ"}},
        {"fileData": {"mimeType": "image/webp", "fileUri": "gs://bucket/cat.webp"}},
        # the type from the extension: Gemini needs it for a URL it fetches
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/dog.jpg"}},
    ]


def tool_conversation() -> list[Message]:
    return [
        Message(role="user", content="Weather in Paris and Rome, and the time?"),
        Message(
            role="assistant",
            content="Let me check.",
            tool_calls=[
                ToolCall(
                    id="call_a",
                    name="get_weather",
                    arguments='{"city":"Paris"}',
                    metadata={"thoughtSignature": SIG},
                ),
                ToolCall(id="call_b", name="get_weather", arguments='{"city":"Rome"}'),
                ToolCall(id="call_c", name="now", arguments=""),
            ],
        ),
        Message(role="tool", tool_call_id="call_a", content='{"temp_c": 21, "sky": "clear"}'),
        Message(role="tool", tool_call_id="call_b", content="[1, 2]"),
        Message(role="tool", tool_call_id="call_c", content="12:00"),
    ]


def test_tool_turns_replay_thought_signature_and_look_up_names() -> None:
    body = built(chat(*tool_conversation(), tools=[WEATHER, Tool(name="now")]))
    contents = body["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert contents[1]["parts"] == [
        {"text": "Let me check."},
        {
            "functionCall": {"name": "get_weather", "args": {"city": "Paris"}, "id": "call_a"},
            "thoughtSignature": SIG,
        },
        {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}, "id": "call_b"}},
        {"functionCall": {"name": "now", "args": {}, "id": "call_c"}},
    ]
    # Three tool messages merge into one user turn; names come from the assistant's calls.
    assert contents[2]["parts"] == [
        {
            "functionResponse": {
                "name": "get_weather",
                "response": {"temp_c": 21, "sky": "clear"},
                "id": "call_a",
            }
        },
        {
            "functionResponse": {
                "name": "get_weather",
                "response": {"result": "[1, 2]"},
                "id": "call_b",
            }
        },
        {"functionResponse": {"name": "now", "response": {"result": "12:00"}, "id": "call_c"}},
    ]


def test_tool_result_for_unknown_call_is_refused() -> None:
    messages = [
        Message(role="user", content="hi"),
        Message(role="tool", tool_call_id="call_missing", content="42"),
    ]
    with pytest.raises(InvalidRequestError) as info:
        ADAPTER.build_request(chat(*messages), ENDPOINT, stream=False)
    assert info.value.field == "messages"
    assert "call_missing" in str(info.value)


def test_tool_result_before_its_call_is_refused() -> None:
    messages = [
        Message(role="user", content="hi"),
        Message(role="tool", tool_call_id="call_a", content="42"),
        Message(role="assistant", tool_calls=[ToolCall(id="call_a", name="f", arguments="{}")]),
    ]
    with pytest.raises(InvalidRequestError):
        ADAPTER.build_request(chat(*messages), ENDPOINT, stream=False)


@pytest.mark.parametrize("arguments", ['{"city": "Par', "[1, 2]"])
def test_unreplayable_arguments_are_refused(arguments: str) -> None:
    messages = [
        Message(role="user", content="hi"),
        Message(role="assistant", tool_calls=[ToolCall(id="c", name="f", arguments=arguments)]),
    ]
    with pytest.raises(InvalidRequestError) as info:
        ADAPTER.build_request(chat(*messages), ENDPOINT, stream=False)
    assert info.value.field == "messages[1].tool_calls[0]"


def test_extra_body_merges_last_and_nested() -> None:
    ep = endpoint(
        extra_body=(
            ("safetySettings", [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "OFF"}]),
            ("generationConfig", {"topK": 5, "temperature": 0.1}),
        )
    )
    request = chat(
        max_tokens=10,
        temperature=0.5,
        extra_body={"generationConfig": {"thinkingConfig": {"thinkingBudget": 0}, "topK": 7}},
    )
    body = built(request, ep=ep)
    assert body["generationConfig"] == {
        "maxOutputTokens": 10,
        "temperature": 0.1,  # the endpoint's extra_body is merged after the request's fields
        "topK": 7,  # the request's extra_body wins over the endpoint's
        "thinkingConfig": {"thinkingBudget": 0},
    }
    assert body["safetySettings"][0]["threshold"] == "OFF"
    assert dict(ep.extra_body)["generationConfig"] == {"topK": 5, "temperature": 0.1}


# -- parse_response ----------------------------------------------------------------------------


def test_parse_text_answer() -> None:
    parsed = parse(
        answer(
            [{"text": "The capital of Wyoming"}, {"text": " is **Cheyenne**.\n"}],
            responseId="resp-1",
            usageMetadata={
                "promptTokenCount": 7,
                "candidatesTokenCount": 10,
                "totalTokenCount": 17,
            },
        )
    )
    assert parsed.message.role == "assistant"
    assert parsed.message.content == "The capital of Wyoming is **Cheyenne**.\n"
    assert parsed.message.tool_calls is None
    assert (parsed.finish_reason, parsed.raw_finish_reason) == ("stop", "STOP")
    assert parsed.id == "resp-1"
    assert parsed.model == "gemini-2.0-flash-001"
    assert parsed.usage == Usage(input_tokens=7, output_tokens=10)
    assert parsed.raw["responseId"] == "resp-1"


def test_parse_skips_thought_parts() -> None:
    parsed = parse(
        answer(
            [
                {"text": "**Thinking about capitals**\n", "thought": True},
                {"text": "Cheyenne.", "thoughtSignature": SIG},
            ]
        )
    )
    assert parsed.message.content == "Cheyenne."


def test_parse_one_function_call() -> None:
    parsed = parse(
        answer(
            [{"functionCall": {"name": "now", "args": {}}, "thoughtSignature": SIG}],
            usageMetadata={"promptTokenCount": 30, "candidatesTokenCount": 5},
        )
    )
    assert (parsed.finish_reason, parsed.raw_finish_reason) == ("tool_calls", "STOP")
    assert parsed.message.content is None
    assert parsed.message.tool_calls == [
        ToolCall(id="call_0", name="now", arguments="{}", metadata={"thoughtSignature": SIG})
    ]


def test_parse_several_function_calls_with_text() -> None:
    parsed = parse(
        answer(
            [
                {"text": "Checking both."},
                {
                    "functionCall": {
                        "id": "fc-1",
                        "name": "get_weather",
                        "args": {"city": "Paris"},
                    },
                    "thoughtSignature": SIG,
                },
                {"functionCall": {"name": "get_weather", "args": {"city": "Zürich", "n": [1]}}},
            ]
        )
    )
    assert parsed.finish_reason == "tool_calls"
    assert parsed.message.content == "Checking both."
    calls = parsed.message.tool_calls
    assert [c.id for c in calls] == ["fc-1", "call_1"]
    assert calls[0].metadata == {"thoughtSignature": SIG}
    assert calls[1].metadata is None
    assert calls[1].parsed_arguments() == {"city": "Zürich", "n": [1]}
    assert calls[0].parsed_arguments() == {"city": "Paris"}


def test_parsed_call_replays_with_its_signature() -> None:
    parsed = parse(answer([{"functionCall": {"name": "now", "args": {}}, "thoughtSignature": SIG}]))
    messages = [
        Message(role="user", content="time?"),
        parsed.message,
        Message(role="tool", tool_call_id=parsed.message.tool_calls[0].id, content="noon"),
    ]
    contents = built(chat(*messages))["contents"]
    assert contents[1]["parts"][0]["thoughtSignature"] == SIG
    assert contents[2]["parts"][0]["functionResponse"]["name"] == "now"


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("IMAGE_SAFETY", "content_filter"),
        ("IMAGE_PROHIBITED_CONTENT", "content_filter"),
        ("IMAGE_RECITATION", "content_filter"),
        ("IMAGE_OTHER", "content_filter"),
        ("MALFORMED_FUNCTION_CALL", "error"),
        ("UNEXPECTED_TOOL_CALL", "error"),
        ("TOO_MANY_TOOL_CALLS", "error"),
        ("OTHER", "other"),
        ("LANGUAGE", "other"),
        ("NO_IMAGE", "other"),
        ("FINISH_REASON_UNSPECIFIED", "other"),
        ("SOMETHING_NEW", "other"),
    ],
)
def test_finish_reasons(raw: str, normalized: str) -> None:
    parsed = parse(answer([{"text": "x"}], finish=raw))
    assert (parsed.finish_reason, parsed.raw_finish_reason) == (normalized, raw)


def test_finish_reason_helper() -> None:
    assert normalize_finish_reason(None) is None
    assert normalize_finish_reason("STOP", has_tool_calls=True) == "tool_calls"
    assert normalize_finish_reason("MAX_TOKENS", has_tool_calls=True) == "length"


@pytest.mark.parametrize("candidates", [None, []], ids=["absent", "empty"])
def test_blocked_prompt_is_content_filtered(candidates: Any) -> None:
    """A 200 without candidates and with promptFeedback.blockReason: typed, not retryable."""
    body: dict[str, Any] = {
        "promptFeedback": {
            "blockReason": "SAFETY",
            "safetyRatings": [
                {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}
            ],
        },
        "usageMetadata": {"promptTokenCount": 12, "totalTokenCount": 12},
        "modelVersion": "gemini-2.0-flash",
    }
    if candidates is not None:
        body["candidates"] = candidates
    with pytest.raises(ContentFiltered) as info:
        parse(body)
    assert info.value.code == "SAFETY"
    assert "blockReason SAFETY" in str(info.value)
    assert info.value.status == 200
    assert not info.value.retryable
    assert info.value.body["promptFeedback"]["blockReason"] == "SAFETY"


def test_prompt_feedback_without_block_reason_and_no_candidates_is_content_filtered() -> None:
    body = {"candidates": [], "promptFeedback": {"safetyRatings": []}, "usageMetadata": {}}
    with pytest.raises(ContentFiltered, match="promptFeedback without a blockReason") as info:
        parse(body)
    assert info.value.code is None
    assert not info.value.retryable


def test_no_candidates_and_no_prompt_feedback_is_malformed() -> None:
    with pytest.raises(MalformedResponse, match="no candidates"):
        parse({"candidates": [], "usageMetadata": {}})


@pytest.mark.parametrize(
    "candidate",
    [
        {"finishReason": "OTHER", "index": 0},
        {"content": {"role": "model"}, "finishReason": "OTHER"},
        {"content": {"role": "model", "parts": []}, "finishReason": "OTHER"},
    ],
)
def test_candidate_without_content_is_valid(candidate: dict[str, Any]) -> None:
    parsed = parse({"candidates": [candidate]})
    assert parsed.message.content == ""
    assert (parsed.finish_reason, parsed.raw_finish_reason) == ("other", "OTHER")
    assert parsed.model == "gemini-2.0-flash"  # no modelVersion: the wire model
    assert parsed.id == ""


def test_usage_with_cache_thoughts_and_tool_prompt() -> None:
    parsed = parse(
        answer(
            [{"text": "ok"}],
            usageMetadata={
                "promptTokenCount": 1000,
                "cachedContentTokenCount": 800,
                "toolUsePromptTokenCount": 50,
                "candidatesTokenCount": 20,
                "thoughtsTokenCount": 300,
                "totalTokenCount": 1370,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 1000}],
            },
        )
    )
    assert parsed.usage == Usage(
        input_tokens=1050, output_tokens=320, cache_read_tokens=800, reasoning_tokens=300
    )
    assert parsed.usage.total_tokens == 1370


@pytest.mark.parametrize(
    "body",
    [
        [],
        "text",
        {},
        {"candidates": []},
        {"candidates": "nope"},
        {"candidates": [1]},
        {"candidates": [{"content": "text"}]},
        {"candidates": [{"content": {"parts": {"text": "x"}}}]},
        {"candidates": [{"content": {"parts": ["x"]}}]},
        {"candidates": [{"content": {"parts": [{"text": 5}]}}]},
        {"candidates": [{"content": {"parts": [{"functionCall": {"args": {}}}]}}]},
        {"candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "args": [1]}}]}}]},
    ],
)
def test_bad_shapes_are_malformed(body: Any) -> None:
    with pytest.raises(MalformedResponse):
        parse(body)


def test_not_json_is_malformed() -> None:
    with pytest.raises(MalformedResponse):
        ADAPTER.parse_response(respond(b"<html>oops</html>"), ENDPOINT)


def test_error_inside_a_200_body_is_raised() -> None:
    with pytest.raises(Overloaded):
        parse({"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}})


# -- streaming ---------------------------------------------------------------------------------


def sse(*events: dict[str, Any]) -> bytes:
    return b"".join(b"data: " + json.dumps(e).encode() + b"\r\n\r\n" for e in events)


# WIRE.md §4.4, with the usage fields elided there filled in.
CHEYENNE = (
    b'data: {"candidates": [{"content": {"parts": [{"text": "The"}],"role": "model"}}],'
    b'"usageMetadata": {"promptTokenCount": 7,"totalTokenCount": 7,"promptTokensDetails": '
    b'[{"modality": "TEXT","tokenCount": 7}]},"modelVersion": "gemini-2.0-flash",'
    b'"responseId": "r-9"}\r\n'
    b"\r\n"
    b'data: {"candidates": [{"content": {"parts": [{"text": " capital of Wyoming"}],'
    b'"role": "model"}}],"usageMetadata": {"promptTokenCount": 7,"candidatesTokenCount": 4,'
    b'"totalTokenCount": 11},"modelVersion": "gemini-2.0-flash","responseId": "r-9"}\r\n'
    b"\r\n"
    b'data: {"candidates": [{"content": {"parts": [{"text": " is **Cheyenne**.\\n"}],'
    b'"role": "model"},"finishReason": "STOP"}],"usageMetadata": {"promptTokenCount": 7,'
    b'"candidatesTokenCount": 10,"totalTokenCount": 17,"promptTokensDetails": [{"modality": '
    b'"TEXT","tokenCount": 7}],"candidatesTokensDetails": [{"modality": "TEXT","tokenCount": 10}]},'
    b'"modelVersion": "gemini-2.0-flash","responseId": "r-9"}\r\n'
    b"\r\n"
)


def decode(data: bytes, *, step: int | None = None) -> list[ChatChunk]:
    decoder = ADAPTER.stream_decoder(ENDPOINT)
    chunks: list[ChatChunk] = []
    if step is None:
        chunks += decoder.feed(data)
    else:
        for i in range(0, len(data), step):
            chunks += decoder.feed(data[i : i + step])
    chunks += decoder.close()
    assert decoder.complete
    return chunks


def test_stream_text_whole_and_byte_by_byte() -> None:
    whole = decode(CHEYENNE)
    assert [c.model_dump() for c in decode(CHEYENNE, step=1)] == [c.model_dump() for c in whole]
    assert "".join(c.text for c in whole) == "The capital of Wyoming is **Cheyenne**.\n"
    assert [c.finish_reason for c in whole] == [None, None, "stop"]
    assert whole[-1].raw_finish_reason == "STOP"
    assert [c.usage for c in whole] == [None, None, Usage(input_tokens=7, output_tokens=10)]
    assert {c.id for c in whole} == {"r-9"}
    assert {c.model for c in whole} == {"gemini-2.0-flash"}


def test_stream_usage_is_cumulative_not_summed() -> None:
    events = [
        {"candidates": [{"content": {"parts": [{"text": "a"}]}}], "usageMetadata": u}
        for u in (
            {"promptTokenCount": 7, "totalTokenCount": 7},
            {"promptTokenCount": 7, "candidatesTokenCount": 5, "totalTokenCount": 12},
        )
    ]
    events.append(
        {
            "candidates": [{"content": {"parts": [{"text": "b"}]}, "finishReason": "STOP"}],
            "usageMetadata": {
                "promptTokenCount": 7,
                "candidatesTokenCount": 10,
                "thoughtsTokenCount": 3,
                "totalTokenCount": 20,
            },
        }
    )
    chunks = decode(sse(*events))
    usages = [c.usage for c in chunks if c.usage is not None]
    assert usages == [Usage(input_tokens=7, output_tokens=13, reasoning_tokens=3)]


def test_stream_usage_after_the_final_chunk_is_emitted_at_close() -> None:
    chunks = decode(
        sse(
            {"candidates": [{"content": {"parts": [{"text": "hi"}]}, "finishReason": "STOP"}]},
            {"usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 1}},
        )
    )
    assert chunks[-1].usage == Usage(input_tokens=4, output_tokens=1)
    assert not chunks[-1].has_content


def test_stream_thoughts_and_function_calls() -> None:
    data = sse(
        {"candidates": [{"content": {"parts": [{"text": "Need the time.", "thought": True}]}}]},
        {
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": [
                            {"functionCall": {"name": "now", "args": {}}, "thoughtSignature": SIG},
                            {"functionCall": {"id": "fc-9", "name": "tz", "args": {"c": "FR"}}},
                        ],
                    }
                }
            ]
        },
        {"candidates": [{"content": {"parts": [{"functionCall": {"name": "now"}}]}}]},
        {
            "candidates": [{"content": {"parts": [{"text": ""}]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 20, "candidatesTokenCount": 9},
        },
    )
    chunks = decode(data)
    assert chunks == decode(data, step=1)
    assert chunks[0].reasoning == "Need the time."
    assert chunks[0].text == ""
    deltas = [d for c in chunks for d in c.tool_calls]
    assert [(d.index, d.id, d.name, d.arguments) for d in deltas] == [
        (0, "call_0", "now", "{}"),
        (1, "fc-9", "tz", '{"c":"FR"}'),
        (2, "call_2", "now", "{}"),
    ]
    assert deltas[0].metadata == {"thoughtSignature": SIG}
    assert deltas[1].metadata is None
    # The finishing chunk has no calls itself; earlier calls still make STOP mean tool_calls.
    assert (chunks[-1].finish_reason, chunks[-1].raw_finish_reason) == ("tool_calls", "STOP")


def test_stream_blocked_prompt_is_content_filtered() -> None:
    decoder = ADAPTER.stream_decoder(ENDPOINT)
    with pytest.raises(ContentFiltered) as info:
        decoder.feed(
            sse({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": {}})
        )
    assert info.value.code == "PROHIBITED_CONTENT"
    assert not info.value.retryable


def test_stream_without_a_finish_reason_is_incomplete() -> None:
    decoder = ADAPTER.stream_decoder(ENDPOINT)
    chunks = decoder.feed(
        sse(
            {"candidates": [{"content": {"parts": [{"text": "Hi"}]}}]},
            {"candidates": [], "promptFeedback": {}, "usageMetadata": {"promptTokenCount": 3}},
        )
    )
    assert [c.text for c in chunks] == ["Hi"]
    with pytest.raises(ProviderConnectionError, match="before the provider marked it complete"):
        decoder.close()


def test_stream_tolerates_empty_parts_and_no_content() -> None:
    chunks = decode(
        sse(
            {"candidates": [{"content": {"role": "model", "parts": []}}]},
            {"candidates": [{"index": 0}]},
            {"candidates": [{"content": {"parts": [{"inlineData": {"mimeType": "image/png"}}]}}]},
            {"candidates": [{"finishReason": "SAFETY"}]},
        )
    )
    assert [(c.finish_reason, c.raw_finish_reason) for c in chunks] == [
        ("content_filter", "SAFETY")
    ]


def test_stream_ending_without_finish_reason_is_an_error() -> None:
    decoder = ADAPTER.stream_decoder(ENDPOINT)
    chunks = decoder.feed(CHEYENNE.split(b"\r\n\r\n")[0] + b"\r\n\r\n")
    assert chunks[0].text == "The"
    assert not decoder.complete
    with pytest.raises(ProviderConnectionError):
        decoder.close()


def test_stream_error_event_is_raised() -> None:
    decoder = ADAPTER.stream_decoder(ENDPOINT)
    decoder.feed(sse({"candidates": [{"content": {"parts": [{"text": "partial"}]}}]}))
    error = {
        "error": {
            "code": 429,
            "message": "Resource has been exhausted (e.g. check quota).",
            "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}],
        }
    }
    with pytest.raises(RateLimited) as info:
        decoder.feed(sse(error))
    assert info.value.retry_after == 7.0
    assert info.value.status == 429


def test_stream_bad_json_is_malformed() -> None:
    with pytest.raises(MalformedResponse):
        ADAPTER.stream_decoder(ENDPOINT).feed(b"data: {not json\r\n\r\n")


# -- map_error ---------------------------------------------------------------------------------


def google_error(
    code: int, status: str, message: str, details: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details is not None:
        err["details"] = details
    return {"error": err}


def mapped(body: Any, status: int, headers: dict[str, str] | None = None) -> ProviderError:
    error = ADAPTER.map_error(respond(body, status, headers), ENDPOINT)
    assert KEY not in str(error)
    assert KEY not in repr(error.args)
    return error


API_KEY_INVALID = google_error(
    400,
    "INVALID_ARGUMENT",
    f"API key not valid. Please pass a valid API key. (key={KEY})",
    [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"},
        },
        {
            "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
            "locale": "en-US",
            "message": "API key not valid. Please pass a valid API key.",
        },
    ],
)


def test_invalid_api_key_is_authentication_error() -> None:
    error = mapped(API_KEY_INVALID, 400)
    assert type(error) is AuthenticationError
    assert (error.provider, error.deployment, error.status) == ("gemini", "gem", 400)
    assert not error.retryable
    assert "API key not valid" in str(error)


def test_array_wrapped_error_body() -> None:
    error = mapped([API_KEY_INVALID], 400)
    assert type(error) is AuthenticationError


def rate_limit(
    delay: str | None, quota_id: str = "GenerateRequestsPerMinutePerProjectPerModel"
) -> dict[str, Any]:
    details: list[dict[str, Any]] = [
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [
                {
                    "quotaMetric": "generativelanguage.googleapis.com/generate_content_requests",
                    "quotaId": quota_id,
                    "quotaDimensions": {"location": "global", "model": "gemini-2.0-flash"},
                    "quotaValue": "15",
                }
            ],
        },
        {"@type": "type.googleapis.com/google.rpc.Help", "links": [{"url": "https://ai.dev"}]},
    ]
    if delay is not None:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay})
    return google_error(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota.", details)


@pytest.mark.parametrize(
    ("delay", "seconds"),
    [("13s", 13.0), ("1.5s", 1.5), ("13.123456789s", 13.123456789), ("0s", 0.0), (None, None)],
)
def test_rate_limit_uses_retry_delay(delay: str | None, seconds: float | None) -> None:
    error = mapped(rate_limit(delay), 429)
    assert type(error) is RateLimited
    assert error.retryable
    if seconds is None:
        assert error.retry_after is None
    else:
        assert error.retry_after == pytest.approx(seconds)
    assert error.code == "RESOURCE_EXHAUSTED"


def test_retry_after_header_wins_over_retry_delay() -> None:
    error = mapped(rate_limit("13s"), 429, {"retry-after": "2"})
    assert isinstance(error, RateLimited)
    assert error.retry_after == 2.0


def test_huge_retry_delay_is_clamped() -> None:
    error = mapped(rate_limit("86400s"), 429)
    assert isinstance(error, RateLimited)
    assert error.retry_after == 3600.0


def test_per_day_quota_is_quota_exhausted() -> None:
    error = mapped(rate_limit("40s", "GenerateRequestsPerDayPerProjectPerModel-FreeTier"), 429)
    assert type(error) is QuotaExhausted
    assert not error.retryable
    assert error.status == 429


@pytest.mark.parametrize(
    ("status", "gstatus", "message", "cls"),
    [
        (503, "UNAVAILABLE", "The model is overloaded. Please try again later.", Overloaded),
        (
            504,
            "DEADLINE_EXCEEDED",
            "Deadline expired before operation could complete.",
            ServerError,
        ),
        (500, "INTERNAL", "An internal error has occurred.", ServerError),
        (404, "NOT_FOUND", "models/gemini-9 is not found for API version v1beta", NotFoundError),
        (
            403,
            "PERMISSION_DENIED",
            "Generative Language API has not been used",
            PermissionDeniedError,
        ),
        (400, "INVALID_ARGUMENT", "Function call is missing a thought_signature", BadRequestError),
        (400, "FAILED_PRECONDITION", "User location is not supported", BadRequestError),
        (
            400,
            "INVALID_ARGUMENT",
            (
                "The input token count (1200000) exceeds the maximum number of tokens allowed "
                "(1048576)."
            ),
            ContextLengthExceeded,
        ),
    ],
)
def test_status_mapping(status: int, gstatus: str, message: str, cls: type[ProviderError]) -> None:
    error = mapped(google_error(status, gstatus, message), status)
    assert type(error) is cls
    assert error.status == status
    assert error.code == gstatus
    assert message in str(error)


def test_non_json_error_body() -> None:
    body = f"<html><body>502 Bad Gateway (x-goog-api-key: {KEY})</body></html>".encode()
    error = mapped(body, 502)
    assert type(error) is ServerError
    assert "502 Bad Gateway" in str(error)
    assert KEY not in str(error.body)


def test_odd_error_bodies_still_map() -> None:
    assert type(mapped({"error": "quota"}, 429)) is RateLimited
    assert type(mapped({"unexpected": True}, 500)) is ServerError
    assert type(mapped([], 404)) is NotFoundError
    assert type(mapped(b"", 403)) is PermissionDeniedError


def test_key_that_does_not_look_like_a_google_key_is_still_redacted() -> None:
    secret = "plainsecretvalue42"
    ep = endpoint(api_key=SecretStr(secret))
    body = google_error(400, "INVALID_ARGUMENT", f"bad key {secret}")
    error = ADAPTER.map_error(respond(body, 400), ep)
    assert secret not in str(error)


# -- robustness (hypothesis) -------------------------------------------------------------------

GEMINI_KEYS = st.sampled_from(
    [
        "candidates",
        "content",
        "parts",
        "text",
        "thought",
        "thoughtSignature",
        "functionCall",
        "name",
        "args",
        "id",
        "finishReason",
        "usageMetadata",
        "promptTokenCount",
        "candidatesTokenCount",
        "thoughtsTokenCount",
        "cachedContentTokenCount",
        "promptFeedback",
        "blockReason",
        "error",
        "code",
        "message",
        "status",
        "details",
        "@type",
        "retryDelay",
        "responseId",
        "modelVersion",
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(["STOP", "SAFETY", "MAX_TOKENS", "type.googleapis.com/google.rpc.RetryInfo"])
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(GEMINI_KEYS | st.text(max_size=4), inner, max_size=5)
    ),
    max_leaves=40,
)


def garbled(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The well-formed value nine times in ten, any JSON value otherwise."""
    return st.integers(0, 9).flatmap(lambda n: JSON if n == 0 else strategy)


def some_of(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional={k: garbled(v) for k, v in fields.items()})


# Gemini-shaped bodies with random holes and wrong types, to reach past the first check.
CALL = st.fixed_dictionaries(
    {"name": garbled(st.text(max_size=6))},
    optional={
        "args": garbled(st.dictionaries(st.text(max_size=3), JSON, max_size=3)),
        "id": garbled(st.text(max_size=4)),
    },
)
PART = st.one_of(
    st.fixed_dictionaries({"text": garbled(st.text(max_size=6))}, optional={"thought": JSON}),
    st.fixed_dictionaries(
        {"functionCall": garbled(CALL)}, optional={"thoughtSignature": garbled(st.text())}
    ),
    some_of(inlineData=JSON),
)
CANDIDATE = some_of(
    content=st.fixed_dictionaries({"parts": garbled(st.lists(garbled(PART), max_size=4))}),
    finishReason=st.sampled_from(["STOP", "MAX_TOKENS", "SAFETY", "OTHER", "IMAGE_SAFETY"]),
)
USAGE = st.dictionaries(
    st.sampled_from(
        [
            "promptTokenCount",
            "candidatesTokenCount",
            "thoughtsTokenCount",
            "cachedContentTokenCount",
            "toolUsePromptTokenCount",
        ]
    ),
    garbled(st.integers(min_value=0, max_value=10**7)),
)
BODY = some_of(
    candidates=st.lists(garbled(CANDIDATE), max_size=2),
    usageMetadata=USAGE,
    promptFeedback=some_of(blockReason=st.sampled_from(["SAFETY", "OTHER", ""])),
    responseId=st.text(max_size=4),
    modelVersion=st.text(max_size=4),
)
ERROR = some_of(
    error=some_of(
        code=st.sampled_from([200, 400, 403, 429, 500, 503, 504]),
        message=st.text(max_size=10),
        status=st.sampled_from(["RESOURCE_EXHAUSTED", "UNAVAILABLE", "INVALID_ARGUMENT"]),
        details=st.lists(
            some_of(
                **{"@type": st.sampled_from(["type.googleapis.com/google.rpc.RetryInfo"])},
                retryDelay=st.sampled_from(["1s", "2.5s", "x", ""]),
                reason=st.just("API_KEY_INVALID"),
                violations=st.lists(some_of(quotaId=st.sampled_from(["PerDay", "PerMinute"]))),
            ),
            max_size=3,
        ),
    )
)
ANY_BODY = st.one_of(JSON, BODY, ERROR)
FINISH_REASONS = {None, "stop", "length", "tool_calls", "content_filter", "error", "other"}
PROBE = settings(max_examples=400, deadline=None, database=None)


@PROBE
@given(ANY_BODY)
def test_parse_response_raises_only_provider_errors(body: Any) -> None:
    try:
        parsed = ADAPTER.parse_response(respond(body), ENDPOINT)
    except ProviderError:
        return
    # What the adapter built without validation must still be valid.
    Message.model_validate(parsed.message.model_dump())
    Usage.model_validate(parsed.usage.model_dump())
    assert parsed.finish_reason in FINISH_REASONS


@PROBE
@given(ANY_BODY, st.sampled_from([400, 403, 404, 429, 500, 503, 504]))
def test_map_error_always_returns_a_provider_error(body: Any, status: int) -> None:
    assert isinstance(ADAPTER.map_error(respond(body, status), ENDPOINT), ProviderError)


@PROBE
@given(st.lists(ANY_BODY, max_size=5), st.integers(min_value=1, max_value=64))
def test_stream_of_random_events_raises_only_provider_errors(events: list[Any], step: int) -> None:
    data = b"".join(b"data: " + json.dumps(e).encode() + b"\r\n\r\n" for e in events)
    decoder = ADAPTER.stream_decoder(ENDPOINT)
    chunks: list[ChatChunk] = []
    try:
        for i in range(0, len(data), step):
            chunks += decoder.feed(data[i : i + step])
        chunks += decoder.close()
    except ProviderError:
        pass
    for chunk in chunks:
        ChatChunk.model_validate(chunk.model_dump())
    assert [d.index for c in chunks for d in c.tool_calls] == list(
        range(sum(len(c.tool_calls) for c in chunks))
    )
    assert sum(1 for c in chunks if c.usage is not None) <= 2


@PROBE
@given(st.binary(max_size=300))
def test_stream_of_random_bytes_raises_only_provider_errors(data: bytes) -> None:
    decoder = ADAPTER.stream_decoder(ENDPOINT)
    try:
        decoder.feed(data)
        decoder.close()
    except ProviderError:
        pass
