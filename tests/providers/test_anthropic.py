"""The Anthropic Messages adapter: request bodies, responses, streams and errors, with no I/O."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from multimodel.errors import (
    AuthenticationError,
    BadRequestError,
    ContextLengthExceeded,
    DroppedParameterWarning,
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
from multimodel.providers.anthropic import STRUCTURED_TOOL_DESCRIPTION, AnthropicAdapter
from multimodel.providers.base import Endpoint
from multimodel.providers.registry import get_adapter
from multimodel.types import ChatChunk, ChatRequest, Message, Usage

ENDPOINT = Endpoint(
    name="ant",
    model="claude",
    wire_model="claude-3-5-sonnet",
    provider="anthropic",
    base_url="https://api.anthropic.com/v1",
    api_key=SecretStr("sk-ant-test"),
    auth="x-api-key",
    api_version="2023-06-01",
)
ADAPTER = AnthropicAdapter()


def chat(messages: list[Any] | None = None, **kw: Any) -> ChatRequest:
    return ChatRequest(
        model="claude", messages=messages or [{"role": "user", "content": "hi"}], **kw
    )


def body_of(request: ChatRequest, *, stream: bool = False, endpoint: Endpoint = ENDPOINT) -> Any:
    return json.loads(ADAPTER.build_request(request, endpoint, stream=stream).content)


def response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.Response(status, content=content, headers=headers or {})


# -- requests ----------------------------------------------------------------------------------


def test_registry_resolves_the_adapter() -> None:
    assert isinstance(get_adapter("anthropic"), AnthropicAdapter)


def test_request_url_and_headers() -> None:
    endpoint = dataclasses.replace(ENDPOINT, headers=(("anthropic-beta", "x,y"),))
    http = ADAPTER.build_request(chat(), endpoint, stream=False)
    assert http.method == "POST"
    assert str(http.url) == "https://api.anthropic.com/v1/messages"
    assert http.headers["x-api-key"] == "sk-ant-test"
    assert http.headers["anthropic-version"] == "2023-06-01"
    assert http.headers["content-type"] == "application/json"
    assert http.headers["anthropic-beta"] == "x,y"
    assert "authorization" not in http.headers
    assert ADAPTER.build_request(chat(), ENDPOINT, stream=True).headers["accept"] == (
        "text/event-stream"
    )


def test_version_defaults_when_the_endpoint_has_none() -> None:
    endpoint = dataclasses.replace(ENDPOINT, api_version=None)
    assert ADAPTER.build_request(chat(), endpoint, stream=False).headers["anthropic-version"] == (
        "2023-06-01"
    )


def test_minimal_body() -> None:
    assert body_of(chat()) == {
        "model": "claude-3-5-sonnet",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": "hi"}],
    }


def test_max_tokens_from_request_or_option() -> None:
    assert body_of(chat(max_tokens=10))["max_tokens"] == 10
    endpoint = dataclasses.replace(ENDPOINT, options=(("default_max_tokens", 777),))
    assert body_of(chat(), endpoint=endpoint)["max_tokens"] == 777


def test_system_and_developer_messages_become_top_level_system() -> None:
    body = body_of(
        chat(
            [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
                {"role": "user", "content": "hi"},
            ]
        )
    )
    assert body["system"] == "Be brief.\n\nUse French."
    assert body["messages"] == [{"role": "user", "content": "hi"}]


def test_system_with_an_image_is_refused() -> None:
    messages = [
        {"role": "system", "content": [{"type": "image", "url": "https://x/y.png"}]},
        {"role": "user", "content": "hi"},
    ]
    with pytest.raises(InvalidRequestError) as info:
        body_of(chat(messages))
    assert info.value.field == "messages[0].content"


def test_only_system_messages_is_refused() -> None:
    with pytest.raises(InvalidRequestError) as info:
        body_of(chat([{"role": "system", "content": "x"}]))
    assert info.value.field == "messages"


def test_images_inline_data_url_and_url() -> None:
    body = body_of(
        chat(
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what is this?"},
                        {"type": "image", "data": "QUJD", "media_type": "image/png"},
                        {"type": "image", "url": "data:image/jpeg;base64,REVG"},
                        {"type": "image", "url": "https://example.com/cat.png"},
                    ],
                }
            ]
        )
    )
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "what is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "QUJD"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "REVG"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
    ]


TOOL_CONVERSATION = [
    {"role": "user", "content": "Weather in Paris and Rome?"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"id": "toolu_1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
            {"id": "toolu_2", "name": "get_weather", "arguments": '{"city":"Rome"}'},
        ],
    },
    {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
    {"role": "tool", "tool_call_id": "toolu_2", "content": [{"type": "text", "text": "25C"}]},
    {"role": "user", "content": "Which is warmer?"},
]


def test_tool_calls_and_results() -> None:
    assert body_of(chat(TOOL_CONVERSATION))["messages"] == [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {
                    "type": "tool_use",
                    "id": "toolu_2",
                    "name": "get_weather",
                    "input": {"city": "Rome"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": [{"type": "text", "text": "25C"}],
                },
                {"type": "text", "text": "Which is warmer?"},
            ],
        },
    ]


def test_consecutive_same_role_turns_merge() -> None:
    body = body_of(
        chat(
            [
                {"role": "user", "content": "a"},
                {"role": "user", "content": "b"},
                {"role": "assistant", "content": "c"},
                {"role": "assistant", "content": "d"},
            ]
        )
    )
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "c"}, {"type": "text", "text": "d"}],
        },
    ]


def test_assistant_text_is_kept_before_tool_use_and_empty_arguments_are_an_object() -> None:
    messages = [
        {"role": "user", "content": "go"},
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [{"id": "t", "name": "now", "arguments": ""}],
        },
    ]
    assert body_of(chat(messages))["messages"][1]["content"] == [
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "t", "name": "now", "input": {}},
    ]


@pytest.mark.parametrize("arguments", ['{"city":', "[1, 2]"])
def test_bad_tool_arguments_are_refused(arguments: str) -> None:
    messages = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "tool_calls": [{"id": "t", "name": "f", "arguments": arguments}]},
    ]
    with pytest.raises(InvalidRequestError) as info:
        body_of(chat(messages))
    assert info.value.field == "messages[1].tool_calls[0].arguments"


def test_sampling_stop_user_and_stream() -> None:
    from multimodel.providers import _params

    _params._DROPPED.clear()  # the warning is once per process and provider
    with pytest.warns(DroppedParameterWarning, match="'seed' has no equivalent on anthropic"):
        body = body_of(
            chat(temperature=0.3, top_p=0.9, stop="END", user="u-42", seed=7), stream=True
        )
    assert body["temperature"] == 0.3
    assert body["top_p"] == 0.9
    assert body["stop_sequences"] == ["END"]
    assert body["metadata"] == {"user_id": "u-42"}
    assert body["stream"] is True
    assert "seed" not in body
    assert "stream" not in body_of(chat())


def test_temperature_above_one_is_refused() -> None:
    with pytest.raises(InvalidRequestError) as info:
        body_of(chat(temperature=1.5))
    assert info.value.field == "temperature"
    assert body_of(chat(temperature=1.0))["temperature"] == 1.0


WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def test_tools() -> None:
    body = body_of(chat(tools=[WEATHER_TOOL, {"name": "now"}]))
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
        {"name": "now", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert "tool_choice" not in body


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("none", {"type": "none"}),
        ("required", {"type": "any"}),
        ({"mode": "tool", "name": "get_weather"}, {"type": "tool", "name": "get_weather"}),
        ({"mode": "auto", "parallel": False}, {"type": "auto", "disable_parallel_tool_use": True}),
        (
            {"mode": "tool", "name": "get_weather", "parallel": False},
            {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
        ),
        ({"mode": "required", "parallel": True}, {"type": "any"}),
        ({"mode": "none", "parallel": False}, {"type": "none"}),
    ],
)
def test_tool_choice(choice: Any, expected: dict[str, Any]) -> None:
    assert body_of(chat(tools=[WEATHER_TOOL], tool_choice=choice))["tool_choice"] == expected


def test_response_format_json_object_adds_a_system_instruction() -> None:
    body = body_of(
        chat(
            [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
            response_format={"type": "json_object"},
        )
    )
    assert body["system"] == "Be brief.\n\nRespond with a single JSON object and nothing else."
    assert "response_format" not in body


def test_response_format_json_schema_includes_the_schema() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    body = body_of(
        chat(
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "count", "schema": schema, "strict": True},
            }
        )
    )
    # Structured output is a forced call of a tool whose input schema is the answer's.
    assert body["tools"] == [
        {"name": "count", "description": STRUCTURED_TOOL_DESCRIPTION, "input_schema": schema}
    ]
    assert body["tool_choice"] == {"type": "tool", "name": "count"}
    assert "system" not in body
    assert "response_format" not in body
    assert "output_config" not in body


def test_response_format_json_schema_with_tools_goes_in_the_system_prompt() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    body = body_of(
        chat(
            tools=[{"name": "lookup"}],
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "count", "schema": schema, "strict": True},
            },
        )
    )
    system = body["system"]
    assert system.startswith("Respond with a single JSON object and nothing else.")
    assert "'count'" in system
    assert json.loads(system.split("\n", 1)[1]) == schema
    assert [t["name"] for t in body["tools"]] == ["lookup"]


def test_extra_body_merges_last_request_wins() -> None:
    endpoint = dataclasses.replace(ENDPOINT, extra_body=(("top_k", 5), ("service_tier", "auto")))
    body = body_of(
        chat(
            max_tokens=5,
            extra_body={"top_k": 9, "thinking": {"type": "enabled", "budget_tokens": 1024}},
        ),
        endpoint=endpoint,
    )
    assert body["top_k"] == 9
    assert body["service_tier"] == "auto"
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 1024}


def test_body_is_compact_utf8() -> None:
    content = ADAPTER.build_request(
        chat([{"role": "user", "content": "héllo ✓"}]), ENDPOINT, stream=False
    ).content
    assert "héllo ✓".encode() in content
    assert b", " not in content
    assert b": " not in content


# -- responses ---------------------------------------------------------------------------------


def message_body(content: list[Any], stop: str | None = "end_turn", **usage: Any) -> dict[str, Any]:
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-3-5-sonnet-20241022",
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5, **usage},
    }


def parse(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Any:
    return ADAPTER.parse_response(response(body, status, headers), ENDPOINT)


def test_parse_text_blocks_concatenated() -> None:
    parsed = parse(
        message_body([{"type": "text", "text": "Hello, "}, {"type": "text", "text": "world"}])
    )
    assert parsed.id == "msg_01"
    assert parsed.model == "claude-3-5-sonnet-20241022"
    assert parsed.message.role == "assistant"
    assert parsed.message.content == "Hello, world"
    assert parsed.message.tool_calls is None
    assert parsed.finish_reason == "stop"
    assert parsed.raw_finish_reason == "end_turn"
    assert parsed.raw["id"] == "msg_01"


def test_parse_one_tool_call() -> None:
    parsed = parse(
        message_body(
            [
                {
                    "type": "tool_use",
                    "id": "toolu_A",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                }
            ],
            stop="tool_use",
        )
    )
    assert parsed.message.content is None
    assert parsed.finish_reason == "tool_calls"
    [call] = parsed.message.tool_calls
    assert (call.id, call.name) == ("toolu_A", "get_weather")
    assert json.loads(call.arguments) == {"city": "Paris"}
    assert call.metadata is None


def test_parse_several_tool_calls_with_text() -> None:
    parsed = parse(
        message_body(
            [
                {"type": "text", "text": "Checking both."},
                {"type": "tool_use", "id": "toolu_A", "name": "w", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_B", "name": "w", "input": {"city": "Rome"}},
            ],
            stop="tool_use",
        )
    )
    assert parsed.message.content == "Checking both."
    assert [c.id for c in parsed.message.tool_calls] == ["toolu_A", "toolu_B"]
    assert [c.parsed_arguments() for c in parsed.message.tool_calls] == [
        {"city": "Paris"},
        {"city": "Rome"},
    ]


def test_parse_thinking_is_not_text() -> None:
    parsed = parse(
        message_body(
            [
                {"type": "thinking", "thinking": "Let me think...", "signature": "sig=="},
                {"type": "redacted_thinking", "data": "opaque"},
                {"type": "text", "text": "42"},
            ],
            output_tokens_details={"thinking_tokens": 3},
        )
    )
    assert parsed.message.content == "42"
    assert parsed.usage.reasoning_tokens == 3


def test_thinking_with_tools_is_kept_and_replayed() -> None:
    thinking = {"type": "thinking", "thinking": "Need weather.", "signature": "sig=="}
    parsed = parse(
        message_body(
            [thinking, {"type": "tool_use", "id": "toolu_A", "name": "w", "input": {}}],
            stop="tool_use",
        )
    )
    call = parsed.message.tool_calls[0]
    assert call.metadata == {"anthropic_thinking": [thinking]}
    replay = [
        Message(role="user", content="weather?"),
        Message(role="assistant", tool_calls=parsed.message.tool_calls),
        Message(role="tool", tool_call_id="toolu_A", content="sunny"),
    ]
    body = body_of(ChatRequest(model="claude", messages=replay))
    assert body["messages"][1]["content"] == [
        thinking,
        {"type": "tool_use", "id": "toolu_A", "name": "w", "input": {}},
    ]


def test_parse_unknown_blocks_are_tolerated() -> None:
    parsed = parse(
        message_body(
            [
                {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}},
                {"type": "web_search_tool_result", "content": []},
                {"type": "compaction", "whatever": 1},
                {"type": "text", "text": "done"},
            ]
        )
    )
    assert parsed.message.content == "done"
    assert parsed.message.tool_calls is None


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "refusal"),
        ("pause_turn", "other"),
        ("something_new", "other"),
        (None, None),
    ],
)
def test_parse_stop_reasons(raw: str | None, normalized: str | None) -> None:
    parsed = parse(message_body([{"type": "text", "text": "x"}], stop=raw))
    assert parsed.finish_reason == normalized
    assert parsed.raw_finish_reason == raw


def test_parse_refusal_without_text_gets_a_note() -> None:
    parsed = parse(message_body([], stop="refusal"))
    assert (parsed.finish_reason, parsed.raw_finish_reason) == ("refusal", "refusal")
    assert parsed.message.text == ""
    assert parsed.message.refusal is not None
    assert "declined" in parsed.message.refusal


def test_parse_refusal_uses_the_explanation_and_keeps_text_already_generated() -> None:
    body = message_body([{"type": "text", "text": "Step 1: "}], stop="refusal")
    body["stop_details"] = {"type": "refusal", "category": "cyber", "explanation": "Not this."}
    parsed = parse(body)
    assert parsed.finish_reason == "refusal"
    assert parsed.message.refusal == "Not this."
    assert parsed.message.text == "Step 1: "  # output the model produced, as a stream shows it


def test_parse_refusal_note_names_the_category() -> None:
    body = message_body([], stop="refusal")
    body["stop_details"] = {"type": "refusal", "category": "cyber", "explanation": None}
    refusal = parse(body).message.refusal
    assert refusal is not None and "'cyber'" in refusal


def test_parse_usage_with_cache_and_thinking() -> None:
    parsed = parse(
        message_body(
            [{"type": "text", "text": "x"}],
            cache_read_input_tokens=1000,
            cache_creation_input_tokens=200,
            output_tokens=50,
            output_tokens_details={"thinking_tokens": 30},
            service_tier="standard",
        )
    )
    usage = parsed.usage
    assert usage.input_tokens == 1210
    assert usage.cache_read_tokens == 1000
    assert usage.cache_write_tokens == 200
    assert usage.uncached_input_tokens == 10
    assert usage.output_tokens == 50
    assert usage.reasoning_tokens == 30


def test_parse_usage_with_null_cache_fields() -> None:
    parsed = parse(message_body([], cache_read_input_tokens=None, cache_creation_input_tokens=None))
    assert parsed.usage.input_tokens == 10
    assert parsed.message.content == ""


def test_parse_error_body_in_a_200() -> None:
    body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    with pytest.raises(Overloaded) as info:
        parse(body, headers={"request-id": "req_9"})
    assert info.value.request_id == "req_9"
    assert info.value.code == "overloaded_error"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"",
        [1, 2],
        "a string",
        {"id": "msg"},
        {"content": "text instead of blocks"},
        {"content": ["not a block"]},
        {"content": [{"type": "text"}]},
        {"content": [{"type": "text", "text": 5}]},
        {"content": [{"type": "tool_use", "id": "t", "input": {}}]},
        {"content": [{"type": "tool_use", "id": "t", "name": "f", "input": "[1]"}]},
    ],
)
def test_parse_malformed(body: Any) -> None:
    with pytest.raises(MalformedResponse):
        parse(body)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "type",
                    "content",
                    "text",
                    "id",
                    "name",
                    "input",
                    "usage",
                    "stop_reason",
                    "error",
                    "message",
                    "input_tokens",
                    "cache_read_input_tokens",
                    "index",
                    "delta",
                    "content_block",
                    "partial_json",
                    "thinking",
                    "signature",
                    "details",
                    "x",
                ]
            ),
            inner,
            max_size=6,
        )
    ),
    max_leaves=20,
)
BLOCK_TYPES = st.sampled_from(
    ["text", "tool_use", "thinking", "redacted_thinking", "image", "error"]
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=200),
        JSON.map(lambda v: json.dumps(v).encode()),
        st.lists(
            st.fixed_dictionaries(
                {"type": BLOCK_TYPES},
                optional={"text": JSON, "name": JSON, "input": JSON, "id": JSON},
            ),
            max_size=4,
        ).map(
            lambda blocks: json.dumps({"content": blocks, "usage": {"input_tokens": -1}}).encode()
        ),
    )
)
def test_parse_garbage_raises_only_provider_errors(raw: bytes) -> None:
    try:
        parsed = ADAPTER.parse_response(response(raw), ENDPOINT)
    except ProviderError:
        return
    Message.model_validate(parsed.message.model_dump())  # model_construct built a valid one
    assert parsed.usage.input_tokens >= 0


# -- streams -----------------------------------------------------------------------------------


def sse(*events: tuple[str, Any]) -> bytes:
    out = []
    for name, data in events:
        payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
        out.append(f"event: {name}\ndata: {payload}\n\n")
    return "".join(out).encode()


def ev(kind: str, **fields: Any) -> tuple[str, dict[str, Any]]:
    return (kind, {"type": kind, **fields})


MESSAGE_START = ev(
    "message_start",
    message={
        "id": "msg_01XYZ",
        "type": "message",
        "role": "assistant",
        "model": "claude-3-5-sonnet-20241022",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 377,
            "cache_creation_input_tokens": 100,
            "cache_read_input_tokens": 2000,
            "output_tokens": 1,
            "service_tier": "standard",
        },
    },
)


def realistic_stream() -> bytes:
    """WIRE.md §3.4's sequence: thinking, text, then two tool calls streamed in fragments."""
    head = sse(
        MESSAGE_START,
        ev("content_block_start", index=0, content_block={"type": "thinking", "thinking": ""}),
        ("ping", '{"type": "ping"}'),
        ev("content_block_delta", index=0, delta={"type": "thinking_delta", "thinking": "Paris "}),
        ev("content_block_delta", index=0, delta={"type": "thinking_delta", "thinking": "weather"}),
        ev("content_block_delta", index=0, delta={"type": "signature_delta", "signature": "EqQ=="}),
        ev("content_block_stop", index=0),
        ev("content_block_start", index=1, content_block={"type": "text", "text": ""}),
        ev("content_block_delta", index=1, delta={"type": "text_delta", "text": "Let me "}),
        ev("content_block_delta", index=1, delta={"type": "text_delta", "text": "check ✓."}),
        ev("content_block_delta", index=1, delta={"type": "citations_delta", "citation": {}}),
        ev("content_block_stop", index=1),
        ev(
            "content_block_start",
            index=2,
            content_block={
                "type": "tool_use",
                "id": "toolu_01",
                "name": "get_weather",
                "input": {},
            },
        ),
        ev("content_block_delta", index=2, delta={"type": "input_json_delta", "partial_json": ""}),
    )
    # Recorded traffic sometimes pads the JSON with trailing spaces.
    padded = (
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":2,'
        b'"delta":{"type":"input_json_delta","partial_json":"{\\"locati"}}   \n\n'
    )
    tail = sse(
        ev(
            "content_block_delta",
            index=2,
            delta={"type": "input_json_delta", "partial_json": 'on": "Paris"}'},
        ),
        ev("content_block_stop", index=2),
        ("ping", '{"type": "ping"}'),
        ev(
            "content_block_start",
            index=3,
            content_block={"type": "tool_use", "id": "toolu_02", "name": "get_time", "input": {}},
        ),
        ev(
            "content_block_delta", index=3, delta={"type": "input_json_delta", "partial_json": "{}"}
        ),
        ev("content_block_stop", index=3),
        ev(
            "message_delta",
            delta={"stop_reason": "tool_use", "stop_sequence": None},
            usage={"output_tokens": 65},
        ),
        ev("message_stop"),
    )
    return head + padded + tail


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


def assemble(chunks: list[ChatChunk]) -> dict[str, Any]:
    calls: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for d in chunk.tool_calls:
            call = calls.setdefault(d.index, {"id": None, "name": None, "arguments": ""})
            call["id"] = d.id or call["id"]
            call["name"] = d.name or call["name"]
            call["arguments"] += d.arguments
            if d.metadata:
                call["metadata"] = d.metadata
    finishes = [c for c in chunks if c.finish_reason is not None]
    usages = [c.usage for c in chunks if c.usage is not None]
    return {
        "text": "".join(c.text for c in chunks),
        "reasoning": "".join(c.reasoning for c in chunks),
        "calls": calls,
        "finish": [(c.finish_reason, c.raw_finish_reason) for c in finishes],
        "usage": usages[-1] if usages else None,
        "usage_chunks": len(usages),
    }


def test_realistic_stream() -> None:
    chunks = decode(realistic_stream())
    result = assemble(chunks)
    assert result["text"] == "Let me check ✓."
    assert result["reasoning"] == "Paris weather"
    assert sorted(result["calls"]) == [0, 1]  # dense: content blocks 2 and 3 are tools 0 and 1
    first, second = result["calls"][0], result["calls"][1]
    assert (first["id"], first["name"]) == ("toolu_01", "get_weather")
    assert json.loads(first["arguments"]) == {"location": "Paris"}
    assert first["metadata"] == {
        "anthropic_thinking": [
            {"type": "thinking", "thinking": "Paris weather", "signature": "EqQ=="}
        ]
    }
    assert (second["id"], second["name"], second["arguments"]) == ("toolu_02", "get_time", "{}")
    assert "metadata" not in second
    assert result["finish"] == [("tool_calls", "tool_use")]
    assert result["usage_chunks"] == 1
    usage = result["usage"]
    assert usage.input_tokens == 377 + 100 + 2000
    assert usage.cache_read_tokens == 2000
    assert usage.cache_write_tokens == 100
    assert usage.output_tokens == 65
    assert all(c.id == "msg_01XYZ" and c.model == "claude-3-5-sonnet-20241022" for c in chunks)
    assert all(c.has_content or c.finish_reason or c.usage for c in chunks)


@pytest.mark.parametrize("step", [1, 2, 7, 64])
def test_stream_split_anywhere_gives_the_same_chunks(step: int) -> None:
    data = realistic_stream()
    whole = [c.model_dump() for c in decode(data)]
    assert [c.model_dump() for c in decode(data, step=step)] == whole


def test_stream_with_crlf_framing() -> None:
    data = realistic_stream()
    crlf = data.replace(b"\n", b"\r\n")
    assert [c.model_dump() for c in decode(crlf, step=3)] == [c.model_dump() for c in decode(data)]


def test_stream_usage_counted_once_when_message_delta_repeats_input() -> None:
    data = sse(
        MESSAGE_START,
        ev("content_block_start", index=0, content_block={"type": "text", "text": ""}),
        ev("content_block_delta", index=0, delta={"type": "text_delta", "text": "Hi"}),
        ev("content_block_stop", index=0),
        ev(
            "message_delta",
            delta={"stop_reason": None},
            usage={
                "input_tokens": 377,
                "cache_creation_input_tokens": 100,
                "cache_read_input_tokens": 2000,
                "output_tokens": 5,
            },
        ),
        ev(
            "message_delta",
            delta={"stop_reason": "end_turn", "stop_sequence": None},
            usage={
                "input_tokens": 377,
                "cache_creation_input_tokens": 100,
                "cache_read_input_tokens": 2000,
                "output_tokens": 10,
                "output_tokens_details": {"thinking_tokens": 4},
            },
        ),
        ev("message_stop"),
    )
    result = assemble(decode(data))
    assert result["text"] == "Hi"
    assert result["finish"] == [("stop", "end_turn")]
    assert result["usage"].model_dump() == {
        "input_tokens": 2477,
        "output_tokens": 10,
        "cache_read_tokens": 2000,
        "cache_write_tokens": 100,
        "reasoning_tokens": 4,
        "estimated": False,
    }


def test_stream_usage_keeps_message_start_counts_when_message_delta_omits_them() -> None:
    data = sse(
        MESSAGE_START,
        ev(
            "message_delta",
            delta={"stop_reason": "max_tokens"},
            usage={"output_tokens": 3, "cache_read_input_tokens": None},
        ),
        ev("message_stop"),
    )
    result = assemble(decode(data))
    assert result["usage"].input_tokens == 2477
    assert result["usage"].cache_read_tokens == 2000
    assert result["finish"] == [("length", "max_tokens")]


def test_stream_refusal() -> None:
    data = sse(
        MESSAGE_START,
        ev("message_delta", delta={"stop_reason": "refusal", "stop_details": {"category": "bio"}},
           usage={"output_tokens": 0}),
        ev("message_stop"),
    )  # fmt: skip
    chunks = decode(data)
    [last] = [c for c in chunks if c.finish_reason]
    assert (last.finish_reason, last.raw_finish_reason) == ("refusal", "refusal")
    assert "'bio'" in last.refusal and last.has_content
    assert "".join(c.text for c in chunks) == ""


def test_stream_without_message_delta_reports_usage_and_is_incomplete() -> None:
    """message_stop without a stop_reason: the usage is reported, the stream is incomplete."""
    decoder = ADAPTER.stream_decoder(ENDPOINT)
    chunks = decoder.feed(sse(MESSAGE_START, ev("message_stop")))
    assert [c.usage.input_tokens for c in chunks if c.usage] == [2477]
    with pytest.raises(ProviderConnectionError, match="message_stop arrived without a stop_reason"):
        decoder.close()


def test_stream_with_a_null_stop_reason_is_incomplete() -> None:
    decoder = ADAPTER.stream_decoder(ENDPOINT)
    decoder.feed(
        sse(
            MESSAGE_START,
            ev("content_block_start", index=0, content_block={"type": "text", "text": ""}),
            ev("content_block_delta", index=0, delta={"type": "text_delta", "text": "Hi"}),
            ev("message_delta", delta={"stop_reason": None}, usage={"output_tokens": 2}),
            ev("message_stop"),
        )
    )
    with pytest.raises(ProviderConnectionError, match="without a stop_reason"):
        decoder.close()


ERROR_EVENT = (
    b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error",'
    b'"message":"Overloaded"}}\n\n'
)


@pytest.mark.parametrize("step", [None, 1])
def test_error_event_in_a_200_stream_is_overloaded(step: int | None) -> None:
    decoder = ADAPTER.stream_decoder(ENDPOINT)
    data = sse(MESSAGE_START) + ERROR_EVENT
    pieces = [data] if step is None else [data[i : i + step] for i in range(0, len(data), step)]
    for piece in pieces[:-1]:
        assert decoder.feed(piece) == []
    with pytest.raises(Overloaded) as info:
        decoder.feed(pieces[-1])
    assert info.value.code == "overloaded_error"
    assert info.value.status == 529
    assert info.value.retryable
    assert "Overloaded" in str(info.value)


@pytest.mark.parametrize(
    ("etype", "expected", "status"),
    [
        ("rate_limit_error", RateLimited, 429),
        ("api_error", ServerError, 500),
        ("invalid_request_error", BadRequestError, 400),
        ("something_new", ServerError, 200),
    ],
)
def test_other_stream_error_events(etype: str, expected: type[Exception], status: int) -> None:
    decoder = ADAPTER.stream_decoder(ENDPOINT)
    data = sse(("error", {"type": "error", "error": {"type": etype, "message": "boom"}}))
    with pytest.raises(expected) as info:
        decoder.feed(data)
    assert type(info.value) is expected
    assert info.value.status == status  # type: ignore[attr-defined]


@pytest.mark.parametrize("data", ["Overloaded", '"Overloaded"', "[1]"])
def test_error_event_with_an_odd_payload_still_raises(data: str) -> None:
    with pytest.raises(ServerError):
        ADAPTER.stream_decoder(ENDPOINT).feed(sse(("error", data)))


def test_stream_without_message_stop_fails_on_close() -> None:
    decoder = ADAPTER.stream_decoder(ENDPOINT)
    data = sse(
        MESSAGE_START,
        ev("content_block_start", index=0, content_block={"type": "text", "text": ""}),
        ev("content_block_delta", index=0, delta={"type": "text_delta", "text": "Hel"}),
    )
    assert [c.text for c in decoder.feed(data)] == ["Hel"]
    with pytest.raises(ProviderConnectionError):
        decoder.close()


def test_stream_bad_json_is_malformed() -> None:
    decoder = ADAPTER.stream_decoder(ENDPOINT)
    with pytest.raises(MalformedResponse):
        decoder.feed(b"event: content_block_delta\ndata: {not json\n\n")


def test_stream_odd_field_types_are_ignored() -> None:
    data = sse(
        ev("message_start", message=[1]),
        ev("message_start", message={"id": 5, "model": None, "usage": {"input_tokens": "7"}}),
        ev("content_block_start", index=0, content_block={"type": "tool_use", "id": 1, "name": 2}),
        ev("content_block_delta", index=0, delta={"type": "input_json_delta", "partial_json": 5}),
        ev(
            "content_block_delta",
            index="0",
            delta={"type": "input_json_delta", "partial_json": "{"},
        ),
        ev("content_block_delta", index=0, delta={"type": "text_delta", "text": None}),
        ev("content_block_delta", index=0, delta={"type": "thinking_delta", "thinking": ["x"]}),
        ev("content_block_delta", index=0, delta="text"),
        ev("content_block_start", index=1, content_block=None),
        ("message", "[1, 2]"),
        ("weird", {"type": "weird"}),
        ev("message_delta", delta={"stop_reason": 3}, usage={"output_tokens": -4}),
        ev("message_stop"),
    )
    decoder = ADAPTER.stream_decoder(ENDPOINT)
    chunks = decoder.feed(data)
    with pytest.raises(ProviderConnectionError):  # a stop_reason that is not one: incomplete
        decoder.close()
    _check_chunks(chunks)
    [start] = [c for c in chunks if c.tool_calls]
    assert start.tool_calls[0].model_dump() == {
        "index": 0,
        "id": None,
        "name": None,
        "arguments": "",
        "metadata": None,
    }
    assert chunks[-1].finish_reason is None
    assert chunks[-1].usage == Usage()


def _maybe(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    kinds = fields.pop("type")
    return st.fixed_dictionaries({"type": kinds}, optional=fields)


INDEX = st.integers(-1, 3) | JSON
BLOCK = _maybe(
    type=st.sampled_from(["text", "tool_use", "thinking", "redacted_thinking", "server_tool_use"]),
    text=JSON,
    id=JSON,
    name=JSON,
    thinking=JSON,
    data=JSON,
    input=JSON,
)
DELTA = _maybe(
    type=st.sampled_from(
        ["text_delta", "input_json_delta", "thinking_delta", "signature_delta", "citations_delta"]
    ),
    text=JSON,
    partial_json=JSON,
    thinking=JSON,
    signature=JSON,
)
USAGE = st.dictionaries(
    st.sampled_from(
        [
            "input_tokens",
            "output_tokens",
            "cache_read_input_tokens",
            "cache_creation_input_tokens",
            "output_tokens_details",
        ]
    ),
    st.integers(-5, 10**6) | JSON,
)
SSE_EVENT = st.one_of(
    st.builds(
        lambda m: ev("message_start", message=m),
        _maybe(type=st.just("message"), id=JSON, model=JSON, usage=USAGE | JSON),
    ),
    st.builds(
        lambda i, b: ev("content_block_start", index=i, content_block=b), INDEX, BLOCK | JSON
    ),
    st.builds(lambda i, d: ev("content_block_delta", index=i, delta=d), INDEX, DELTA | JSON),
    st.builds(lambda i: ev("content_block_stop", index=i), INDEX),
    st.builds(
        lambda d, u: ev("message_delta", delta=d, usage=u),
        _maybe(type=st.just("x"), stop_reason=JSON) | JSON,
        USAGE | JSON,
    ),
    st.just(ev("message_stop")),
    st.just(("ping", '{"type": "ping"}')),
    st.builds(lambda e: ("error", {"type": "error", "error": e}), JSON),
    st.builds(lambda k, v: (k, v), st.sampled_from(["message", "weird", "error"]), JSON),
)


def _check_chunks(chunks: list[ChatChunk]) -> None:
    for chunk in chunks:
        ChatChunk.model_validate(chunk.model_dump())  # model_construct built a valid chunk
        assert all(d.index >= 0 for d in chunk.tool_calls)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300) | st.lists(SSE_EVENT, max_size=10).map(lambda evs: sse(*evs)))
def test_stream_garbage_raises_only_provider_errors(data: bytes) -> None:
    decoder = ADAPTER.stream_decoder(ENDPOINT)
    try:
        chunks = decoder.feed(data)
    except ProviderError:
        return
    _check_chunks(chunks)
    try:
        _check_chunks(decoder.close())
    except ProviderError:
        pass


# -- errors ------------------------------------------------------------------------------------


def api_error(etype: str, message: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": etype, "message": message, **extra},
        "request_id": "req_body",
    }


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, api_error("invalid_request_error", "messages: field required"), BadRequestError),
        (
            400,
            api_error(
                "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"
            ),
            ContextLengthExceeded,
        ),
        (401, api_error("authentication_error", "invalid x-api-key"), AuthenticationError),
        (402, api_error("billing_error", "Your credit balance is too low"), QuotaExhausted),
        (403, api_error("permission_error", "no access to model"), PermissionDeniedError),
        (404, api_error("not_found_error", "model: claude-9"), NotFoundError),
        (
            413,
            api_error("request_too_large", "Request exceeds the maximum allowed number of bytes."),
            BadRequestError,
        ),
        (413, b"<html><body>413 Request Entity Too Large</body></html>", BadRequestError),
        (
            429,
            api_error(
                "rate_limit_error",
                "Number of request tokens has exceeded your per-minute rate limit",
            ),
            RateLimited,
        ),
        (
            429,
            api_error(
                "rate_limit_error",
                "You have reached your specified API usage limits.",
                details={"error_code": "enforced_spend_limit_reached"},
            ),
            QuotaExhausted,
        ),
        (500, api_error("api_error", "Internal server error"), ServerError),
        (502, b"<html>Bad Gateway</html>", ServerError),
        (529, api_error("overloaded_error", "Overloaded"), Overloaded),
    ],
)
def test_error_statuses(status: int, body: Any, expected: type[ProviderError]) -> None:
    err = ADAPTER.map_error(response(body, status, {"request-id": "req_hdr"}), ENDPOINT)
    assert type(err) is expected
    assert err.status == status
    assert err.provider == "anthropic"
    assert err.deployment == "ant"
    assert err.request_id == "req_hdr"
    if isinstance(body, dict):
        assert err.message == body["error"]["message"]


def test_rate_limit_retry_after_and_codes() -> None:
    body = api_error("rate_limit_error", "slow down")
    err = ADAPTER.map_error(response(body, 429, {"retry-after": "12"}), ENDPOINT)
    assert isinstance(err, RateLimited)
    assert err.retry_after == 12.0
    assert err.code == "rate_limit_error"
    assert err.request_id == "req_body"  # no request-id header: the body's id is used
    assert err.retryable


def test_spend_limit_is_not_retryable() -> None:
    body = api_error(
        "rate_limit_error", "limit", details={"error_code": "enforced_spend_limit_reached"}
    )
    err = ADAPTER.map_error(response(body, 429, {"retry-after": "60"}), ENDPOINT)
    assert isinstance(err, QuotaExhausted)
    assert err.code == "enforced_spend_limit_reached"
    assert not err.retryable


def test_overloaded_529_keeps_retry_after() -> None:
    err = ADAPTER.map_error(
        response(api_error("overloaded_error", "Overloaded"), 529, {"retry-after": "3"}), ENDPOINT
    )
    assert isinstance(err, Overloaded)
    assert err.retry_after == 3.0


@pytest.mark.parametrize("body", [b"", b"null", b"[]", b'{"error": "plain string"}', b"\xff\xfe"])
def test_odd_error_bodies(body: bytes) -> None:
    err = ADAPTER.map_error(response(body, 500), ENDPOINT)
    assert isinstance(err, ServerError)


@pytest.mark.parametrize(
    "body",
    [
        api_error("authentication_error", "invalid x-api-key: sk-ant-test"),
        b"Unauthorized: x-api-key=sk-ant-test",
        {
            "type": "error",
            "error": {
                "type": "authentication_error",
                "message": "bad header 'x-api-key': 'sk-ant-test'",
            },
        },
    ],
)
def test_no_api_key_in_error_text(body: Any) -> None:
    err = ADAPTER.map_error(response(body, 401), ENDPOINT)
    assert isinstance(err, AuthenticationError)
    assert "sk-ant-test" not in str(err)
    assert "sk-ant-test" not in repr(err)
    assert "sk-ant-test" not in err.message


def test_no_api_key_in_stream_or_parse_errors() -> None:
    data = sse(
        (
            "error",
            {"type": "error", "error": {"type": "api_error", "message": "key sk-ant-test failed"}},
        )
    )
    with pytest.raises(ServerError) as info:
        ADAPTER.stream_decoder(ENDPOINT).feed(data)
    assert "sk-ant-test" not in str(info.value)
    with pytest.raises(MalformedResponse) as parse_info:
        parse(b"sk-ant-test is not JSON")
    assert "sk-ant-test" not in str(parse_info.value)
