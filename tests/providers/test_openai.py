"""The OpenAI Chat Completions adapter and the OpenAI-compatible presets, with no I/O.

WIRE.md §1 (OpenAI), §2 (compatible providers), §6 (normalisation), §7 (common mistakes).
"""

from __future__ import annotations

import email.utils
import json
import time
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from multimodel.config import Deployment, resolve_endpoints
from multimodel.errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ContentFiltered,
    ContextLengthExceeded,
    MalformedResponse,
    MissingAPIKeyError,
    NotFoundError,
    Overloaded,
    PermissionDeniedError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeout,
    QuotaExhausted,
    RateLimited,
    ServerError,
)
from multimodel.providers.base import NO_USAGE, Endpoint
from multimodel.providers.openai import OpenAIAdapter, normalize_finish_reason, parse_usage
from multimodel.providers.registry import get_adapter
from multimodel.types import ChatChunk, ChatRequest, Message, Usage

ADAPTER = OpenAIAdapter()

ENV = {
    "OPENAI_API_KEY": "sk-openai-test",
    "AZURE_OPENAI_API_KEY": "azure-test-key",
    "DEEPSEEK_API_KEY": "sk-deepseek-test",
    "XAI_API_KEY": "xai-test-key",
    "MISTRAL_API_KEY": "mistral-test-key",
    "GROQ_API_KEY": "gsk_groq_test_key",
    "TOGETHER_API_KEY": "together-test-key",
    "FIREWORKS_API_KEY": "fw-test-key",
    "OPENROUTER_API_KEY": "sk-or-test-key",
    "DASHSCOPE_API_KEY": "sk-dashscope-test",
    "LLAMA_API_KEY": "llama-test-key",
}

AZURE_BASE = "https://my-resource.openai.azure.com"


def endpoint_for(
    provider: str = "openai", *, env: dict[str, str] | None = None, **kw: Any
) -> Endpoint:
    if provider in ("azure", "azure_openai"):
        kw.setdefault("base_url", AZURE_BASE)
    deployment = Deployment(model="m", provider=provider, **kw)
    return resolve_endpoints([deployment], env=ENV if env is None else env)[0]


OPENAI = endpoint_for("openai", provider_model="gpt-4o-mini")
PLAIN = Endpoint(
    name="plain",
    model="m",
    wire_model="gpt-x",
    provider="openai",
    base_url="https://api.example.com/v1/",
    api_key=SecretStr("sk-plain-test"),
)


def chat(messages: list[Any] | None = None, **kw: Any) -> ChatRequest:
    return ChatRequest(model="m", messages=messages or [{"role": "user", "content": "hi"}], **kw)


def body_of(request: ChatRequest, endpoint: Endpoint = OPENAI, *, stream: bool = False) -> Any:
    return json.loads(ADAPTER.build_request(request, endpoint, stream=stream).content)


def response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.Response(status, content=content, headers=headers or {})


def sse(*events: Any, done: bool = True) -> bytes:
    out = []
    for event in events:
        out.append("data: " + (event if isinstance(event, str) else json.dumps(event)) + "\n\n")
    if done:
        out.append("data: [DONE]\n\n")
    return "".join(out).encode()


def decode(raw: bytes, endpoint: Endpoint = OPENAI, *, bytewise: bool = False) -> list[ChatChunk]:
    decoder = ADAPTER.stream_decoder(endpoint)
    chunks: list[ChatChunk] = []
    if bytewise:
        for i in range(len(raw)):
            chunks.extend(decoder.feed(raw[i : i + 1]))
    else:
        chunks.extend(decoder.feed(raw))
    chunks.extend(decoder.close())
    return chunks


def merged_calls(chunks: list[ChatChunk]) -> list[dict[str, Any]]:
    """Merge tool-call deltas by index, as the stream accumulator does."""
    calls: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for delta in chunk.tool_calls:
            call = calls.setdefault(delta.index, {"id": None, "name": None, "arguments": ""})
            if delta.id:
                call["id"] = delta.id
            if delta.name:
                call["name"] = delta.name
            call["arguments"] += delta.arguments
    return [calls[i] for i in sorted(calls)]


def chunk_obj(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> Any:
    choice: dict[str, Any] = {"index": 0, "delta": delta or {}, "finish_reason": finish}
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "model": "gpt-4o-mini",
        "choices": [choice],
        **extra,
    }


# == requests =====================================================================================


def test_registry_resolves_the_adapter() -> None:
    assert isinstance(get_adapter("openai"), OpenAIAdapter)


def test_url_and_headers() -> None:
    http = ADAPTER.build_request(chat(), OPENAI, stream=False)
    assert http.method == "POST"
    assert str(http.url) == "https://api.openai.com/v1/chat/completions"
    assert http.headers["authorization"] == "Bearer sk-openai-test"
    assert http.headers["content-type"] == "application/json"
    assert http.headers["accept"] == "application/json"
    assert "api-key" not in http.headers
    streamed = ADAPTER.build_request(chat(), OPENAI, stream=True)
    assert streamed.headers["accept"] == "text/event-stream"


def test_base_url_trailing_slash_and_extra_headers() -> None:
    endpoint = endpoint_for(
        "openai", base_url="https://proxy.example.com/v1/", headers={"OpenAI-Project": "p1"}
    )
    http = ADAPTER.build_request(chat(), endpoint, stream=False)
    assert str(http.url) == "https://proxy.example.com/v1/chat/completions"
    assert http.headers["openai-project"] == "p1"
    assert str(ADAPTER.build_request(chat(), PLAIN, stream=False).url) == (
        "https://api.example.com/v1/chat/completions"
    )


def test_minimal_body() -> None:
    assert body_of(chat()) == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "hi"}],
    }


def test_messages_of_every_role() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": "Use French."},
        {"role": "user", "content": "Hello", "name": "alice"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image", "url": "https://example.com/cat.png", "detail": "low"},
                {"type": "image", "data": "iVBORw0KGgo=", "media_type": "image/png"},
                {"type": "image", "url": "data:image/jpeg;base64,/9j/4AAQ"},
            ],
        },
        {"role": "assistant", "content": "A cat."},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
                {"id": "call_2", "name": "get_time", "arguments": "{}"},
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 21}'},
        {
            "role": "tool",
            "tool_call_id": "call_2",
            "content": [{"type": "text", "text": "12:00"}],
        },
    ]
    assert body_of(chat(messages))["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": "Use French."},
        {"role": "user", "content": "Hello", "name": "alice"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {
                    "type": "image_url",
                    "image_url": {"url": "https://example.com/cat.png", "detail": "low"},
                },
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
            ],
        },
        {"role": "assistant", "content": "A cat."},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": "{}"},
                },
            ],
        },
        {"role": "tool", "content": '{"temp": 21}', "tool_call_id": "call_1"},
        {
            "role": "tool",
            "content": [{"type": "text", "text": "12:00"}],
            "tool_call_id": "call_2",
        },
    ]


def test_assistant_text_and_tool_calls_together() -> None:
    message = {
        "role": "assistant",
        "content": "Let me check.",
        "tool_calls": [{"id": "c1", "name": "f", "arguments": "{}"}],
    }
    sent = body_of(chat([{"role": "user", "content": "q"}, message]))["messages"][1]
    assert sent["content"] == "Let me check."
    assert sent["tool_calls"][0]["id"] == "c1"


def test_non_ascii_is_sent_as_utf8() -> None:
    http = ADAPTER.build_request(
        chat([{"role": "user", "content": "héllo 世界"}]), OPENAI, stream=False
    )
    assert "héllo 世界".encode() in http.content


def test_sampling_parameters() -> None:
    body = body_of(chat(temperature=0.2, top_p=0.9, stop="END", seed=7, user="u-1"))
    assert body["temperature"] == 0.2
    assert body["top_p"] == 0.9
    assert body["stop"] == ["END"]
    assert body["seed"] == 7
    assert body["user"] == "u-1"


def test_user_is_only_sent_to_openai_and_azure() -> None:
    assert body_of(chat(user="u"), endpoint_for("azure"))["user"] == "u"
    assert "user" not in body_of(chat(user="u"), endpoint_for("groq"))


@pytest.mark.parametrize(
    ("provider", "field"),
    [
        ("openai", "max_completion_tokens"),
        ("azure", "max_completion_tokens"),
        ("deepseek", "max_tokens"),
        ("xai", "max_tokens"),
        ("mistral", "max_tokens"),
        ("groq", "max_tokens"),
        ("together", "max_tokens"),
        ("fireworks", "max_tokens"),
        ("openrouter", "max_tokens"),
        ("qwen", "max_tokens"),
        ("meta", "max_tokens"),
        ("ollama", "max_tokens"),
        ("vllm", "max_tokens"),
    ],
)
def test_token_limit_field(provider: str, field: str) -> None:
    body = body_of(chat(max_tokens=64), endpoint_for(provider))
    assert body[field] == 64
    other = {"max_tokens", "max_completion_tokens"} - {field}
    assert not other & body.keys()


def test_no_token_limit_when_not_asked() -> None:
    body = body_of(chat())
    assert "max_tokens" not in body
    assert "max_completion_tokens" not in body


@pytest.mark.parametrize(
    "provider",
    [
        "openai",
        "azure",
        "deepseek",
        "xai",
        "groq",
        "together",
        "fireworks",
        "openrouter",
        "qwen",
        "meta",
        "ollama",
        "vllm",
    ],
)
def test_stream_options_include_usage_when_streaming(provider: str) -> None:
    endpoint = endpoint_for(provider)
    streamed = body_of(chat(), endpoint, stream=True)
    assert streamed["stream"] is True
    assert streamed["stream_options"] == {"include_usage": True}
    plain = body_of(chat(), endpoint, stream=False)
    assert "stream" not in plain
    assert "stream_options" not in plain


def test_mistral_gets_no_stream_options() -> None:
    body = body_of(chat(), endpoint_for("mistral"), stream=True)
    assert body["stream"] is True
    assert "stream_options" not in body


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ({"type": "text"}, {"type": "text"}),
        ({"type": "json_object"}, {"type": "json_object"}),
        (
            {"type": "json_schema", "name": "person", "schema": {"type": "object"}, "strict": True},
            {  # strict mode: the schema gets additionalProperties false and every property
                "type": "json_schema",
                "json_schema": {
                    "name": "person",
                    "schema": {
                        "type": "object",
                        "properties": {},
                        "required": [],
                        "additionalProperties": False,
                    },
                    "strict": True,
                },
            },
        ),
        (
            {"type": "json_schema", "schema": {"type": "object"}},
            {
                "type": "json_schema",
                "json_schema": {"name": "response", "schema": {"type": "object"}},
            },
        ),
        (
            # OpenAI's own shape is accepted and round-trips.
            {
                "type": "json_schema",
                "json_schema": {"name": "p", "schema": {"type": "object"}, "strict": False},
            },
            {
                "type": "json_schema",
                "json_schema": {"name": "p", "schema": {"type": "object"}, "strict": False},
            },
        ),
    ],
)
def test_response_format(fmt: dict[str, Any], expected: dict[str, Any]) -> None:
    assert body_of(chat(response_format=fmt))["response_format"] == expected


TOOLS = [
    {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        "strict": True,
    },
    {"type": "function", "function": {"name": "get_time"}},
]


def test_tools() -> None:
    assert body_of(chat(tools=TOOLS))["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                "strict": True,
            },
        },
        {
            "type": "function",
            "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
        },
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (None, {}),
        ("auto", {"tool_choice": "auto"}),
        ("none", {"tool_choice": "none"}),
        ("required", {"tool_choice": "required"}),
        (
            {"mode": "tool", "name": "get_time"},
            {"tool_choice": {"type": "function", "function": {"name": "get_time"}}},
        ),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
        ),
        (
            {"mode": "auto", "parallel": False},
            {"tool_choice": "auto", "parallel_tool_calls": False},
        ),
        (
            {"mode": "required", "parallel": True},
            {"tool_choice": "required", "parallel_tool_calls": True},
        ),
    ],
)
def test_tool_choice(choice: Any, expected: dict[str, Any]) -> None:
    body = body_of(chat(tools=TOOLS, tool_choice=choice))
    got = {k: body[k] for k in ("tool_choice", "parallel_tool_calls") if k in body}
    assert got == expected


def test_extra_body_merging_request_wins() -> None:
    endpoint = endpoint_for(
        "qwen", extra_body={"enable_thinking": False, "top_k": 20, "temperature": 0.1}
    )
    body = body_of(
        chat(temperature=0.5, extra_body={"enable_thinking": True, "repetition_penalty": 1.1}),
        endpoint,
    )
    assert body["enable_thinking"] is True  # request beats deployment
    assert body["top_k"] == 20  # deployment-only field kept
    assert body["repetition_penalty"] == 1.1
    assert body["temperature"] == 0.1  # deployment extra_body beats the typed field


def test_request_extra_body_beats_typed_fields() -> None:
    body = body_of(chat(max_tokens=5, extra_body={"max_completion_tokens": 9, "model": "other"}))
    assert body["max_completion_tokens"] == 9
    assert body["model"] == "other"


def test_azure_url_and_api_key_header() -> None:
    endpoint = endpoint_for("azure", provider_model="my-gpt4o-deployment")
    http = ADAPTER.build_request(chat(), endpoint, stream=False)
    assert str(http.url) == (
        "https://my-resource.openai.azure.com/openai/deployments/my-gpt4o-deployment"
        "/chat/completions?api-version=2024-10-21"
    )
    assert http.headers["api-key"] == "azure-test-key"
    assert "authorization" not in http.headers
    assert json.loads(http.content)["model"] == "my-gpt4o-deployment"


def test_azure_api_version_override_and_alias() -> None:
    endpoint = endpoint_for("azure_openai", provider_model="dep", api_version="2025-01-01-preview")
    http = ADAPTER.build_request(chat(), endpoint, stream=True)
    assert http.url.params["api-version"] == "2025-01-01-preview"
    assert http.url.path == "/openai/deployments/dep/chat/completions"
    assert http.headers["api-key"] == "azure-test-key"


def test_azure_needs_base_url() -> None:
    from multimodel.errors import ConfigError

    with pytest.raises(ConfigError, match="base_url"):
        resolve_endpoints([Deployment(model="m", provider="azure")], env=ENV)


def test_explicit_api_key_beats_environment() -> None:
    endpoint = endpoint_for("openai", api_key="sk-explicit")
    assert ADAPTER.build_request(chat(), endpoint, stream=False).headers["authorization"] == (
        "Bearer sk-explicit"
    )


# -- presets -------------------------------------------------------------------------------------

PRESETS = [
    # provider, base URL, env var, auth header, header value prefix
    ("openai", "https://api.openai.com/v1", "OPENAI_API_KEY", "authorization", "Bearer "),
    ("deepseek", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY", "authorization", "Bearer "),
    ("xai", "https://api.x.ai/v1", "XAI_API_KEY", "authorization", "Bearer "),
    ("grok", "https://api.x.ai/v1", "XAI_API_KEY", "authorization", "Bearer "),
    ("mistral", "https://api.mistral.ai/v1", "MISTRAL_API_KEY", "authorization", "Bearer "),
    ("groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY", "authorization", "Bearer "),
    ("together", "https://api.together.xyz/v1", "TOGETHER_API_KEY", "authorization", "Bearer "),
    (
        "fireworks",
        "https://api.fireworks.ai/inference/v1",
        "FIREWORKS_API_KEY",
        "authorization",
        "Bearer ",
    ),
    (
        "openrouter",
        "https://openrouter.ai/api/v1",
        "OPENROUTER_API_KEY",
        "authorization",
        "Bearer ",
    ),
    (
        "qwen",
        "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
        "DASHSCOPE_API_KEY",
        "authorization",
        "Bearer ",
    ),
    (
        "dashscope",
        "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
        "DASHSCOPE_API_KEY",
        "authorization",
        "Bearer ",
    ),
    ("meta", "https://api.llama.com/compat/v1", "LLAMA_API_KEY", "authorization", "Bearer "),
    ("azure", AZURE_BASE + "/openai/deployments/m", "AZURE_OPENAI_API_KEY", "api-key", ""),
]


@pytest.mark.parametrize(("provider", "base", "env_var", "header", "prefix"), PRESETS)
def test_preset_resolves(provider: str, base: str, env_var: str, header: str, prefix: str) -> None:
    endpoint = endpoint_for(provider, env={env_var: "the-key-123"})
    assert endpoint.adapter == "openai"
    http = ADAPTER.build_request(chat(), endpoint, stream=False)
    assert str(http.url).startswith(base + "/chat/completions")
    assert http.headers[header] == prefix + "the-key-123"


@pytest.mark.parametrize(("provider", "env_var"), [(p[0], p[2]) for p in PRESETS])
def test_missing_key_names_the_env_var(provider: str, env_var: str) -> None:
    with pytest.raises(MissingAPIKeyError) as info:
        endpoint_for(provider, env={})
    assert info.value.env_var == env_var
    assert env_var in str(info.value)


@pytest.mark.parametrize("provider", ["openai", "groq"])
def test_empty_key_counts_as_missing(provider: str) -> None:
    env_var = {"openai": "OPENAI_API_KEY", "groq": "GROQ_API_KEY"}[provider]
    with pytest.raises(MissingAPIKeyError, match=env_var):
        endpoint_for(provider, env={env_var: ""})
    with pytest.raises(MissingAPIKeyError, match=env_var):
        endpoint_for(provider, env={}, api_key="")


@pytest.mark.parametrize(
    ("provider", "base", "env_var"),
    [
        ("ollama", "http://localhost:11434/v1", "OLLAMA_API_KEY"),
        ("vllm", "http://localhost:8000/v1", "VLLM_API_KEY"),
    ],
)
def test_local_presets_need_no_key(provider: str, base: str, env_var: str) -> None:
    endpoint = endpoint_for(provider, env={})
    assert endpoint.api_key is None
    http = ADAPTER.build_request(chat(), endpoint, stream=False)
    assert str(http.url) == base + "/chat/completions"
    assert "authorization" not in http.headers
    # A key in the environment (Ollama Cloud, a secured vLLM) is sent as a bearer token.
    keyed = endpoint_for(provider, env={env_var: "local-key"})
    assert ADAPTER.build_request(chat(), keyed, stream=False).headers["authorization"] == (
        "Bearer local-key"
    )


# == responses ====================================================================================


def completion(
    message: dict[str, Any], finish: str | None = "stop", usage: Any = None, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-abc",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", **message},
                "finish_reason": finish,
                "logprobs": None,
            }
        ],
        **extra,
    }
    if usage is not None:
        body["usage"] = usage
    return body


def test_parse_text() -> None:
    body = completion(
        {"content": "Hello!", "refusal": None},
        usage={"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
    )
    parsed = ADAPTER.parse_response(response(body), OPENAI)
    assert parsed.id == "chatcmpl-abc"
    assert parsed.model == "gpt-4o-mini-2024-07-18"
    assert parsed.message.role == "assistant"
    assert parsed.message.content == "Hello!"
    assert parsed.message.tool_calls is None
    assert parsed.finish_reason == "stop"
    assert parsed.raw_finish_reason == "stop"
    assert parsed.usage == Usage(input_tokens=9, output_tokens=3)
    assert parsed.raw == body


def test_parse_defaults_when_id_model_usage_missing() -> None:
    parsed = ADAPTER.parse_response(response({"choices": [{"message": {"content": "x"}}]}), OPENAI)
    assert parsed.id == ""
    assert parsed.model == "gpt-4o-mini"
    assert parsed.usage is NO_USAGE  # the client replaces it with an estimate
    assert parsed.finish_reason is None


def test_parse_refusal() -> None:
    """A refusal is never the answer's text; the finish reason marks it, the raw one stays."""
    body = completion({"content": None, "refusal": "I'm sorry, I can't help with that."})
    parsed = ADAPTER.parse_response(response(body), OPENAI)
    assert parsed.message.content == ""
    assert parsed.message.text == ""
    assert parsed.message.refusal == "I'm sorry, I can't help with that."
    assert (parsed.finish_reason, parsed.raw_finish_reason) == ("refusal", "stop")


def test_refusal_cut_by_length_keeps_length() -> None:
    body = completion({"content": None, "refusal": "I'm sorry, I"}, finish="length")
    parsed = ADAPTER.parse_response(response(body), OPENAI)
    assert parsed.message.refusal == "I'm sorry, I"
    assert parsed.finish_reason == "length"


def test_null_or_empty_refusal_is_no_refusal() -> None:
    for value in (None, "", 5):
        body = completion({"content": "hi", "refusal": value})
        parsed = ADAPTER.parse_response(response(body), OPENAI)
        assert (parsed.message.content, parsed.message.refusal) == ("hi", None)
        assert parsed.finish_reason == "stop"


def test_a_replayed_refusal_is_sent_back_as_refusal() -> None:
    request = ChatRequest(
        model="m",
        messages=[
            Message(role="user", content="x"),
            Message(role="assistant", content=None, refusal="I can't."),
            Message(role="user", content="why?"),
        ],
    )
    body = json.loads(ADAPTER.build_request(request, OPENAI, stream=False).content)
    assert body["messages"][1] == {"role": "assistant", "content": None, "refusal": "I can't."}


def test_parse_one_tool_call() -> None:
    body = completion(
        {
            "content": None,
            "tool_calls": [
                {
                    "id": "call_abc",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        finish="tool_calls",
    )
    parsed = ADAPTER.parse_response(response(body), OPENAI)
    assert parsed.finish_reason == "tool_calls"
    assert parsed.message.content is None
    assert parsed.message.tool_calls is not None
    [call] = parsed.message.tool_calls
    assert (call.id, call.name, call.arguments) == ("call_abc", "get_weather", '{"city":"Paris"}')
    assert call.parsed_arguments() == {"city": "Paris"}


def test_parse_several_tool_calls_and_odd_shapes() -> None:
    body = completion(
        {
            "content": "",
            "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                # Ollama-style object arguments, no id, empty arguments.
                {"type": "function", "function": {"name": "g", "arguments": {"x": [1, 2]}}},
                {"id": "c", "type": "function", "function": {"name": "h", "arguments": ""}},
            ],
        },
        finish="tool_calls",
    )
    parsed = ADAPTER.parse_response(response(body), OPENAI)
    calls = parsed.message.tool_calls or []
    assert [(c.id, c.name, c.arguments) for c in calls] == [
        ("a", "f", "{}"),
        ("call_1", "g", '{"x":[1,2]}'),
        ("c", "h", "{}"),
    ]
    assert parsed.message.content == ""


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("stop", "stop"),
        ("length", "length"),
        ("model_length", "length"),
        ("tool_calls", "tool_calls"),
        ("function_call", "tool_calls"),
        ("content_filter", "content_filter"),
        ("error", "error"),
        ("eos", "other"),
        ("something_new", "other"),
        (None, None),
    ],
)
def test_finish_reasons(raw: str | None, normalized: str | None) -> None:
    assert normalize_finish_reason(raw) == normalized
    parsed = ADAPTER.parse_response(response(completion({"content": "x"}, finish=raw)), OPENAI)
    assert parsed.finish_reason == normalized
    assert parsed.raw_finish_reason == raw


def test_non_string_finish_reason_is_ignored() -> None:
    parsed = ADAPTER.parse_response(response(completion({"content": "x"}, finish=3)), OPENAI)  # type: ignore[arg-type]
    assert parsed.finish_reason is None
    assert parsed.raw_finish_reason is None


def test_usage_with_cached_and_reasoning_tokens() -> None:
    usage = {
        "prompt_tokens": 2000,
        "completion_tokens": 500,
        "total_tokens": 2500,
        "prompt_tokens_details": {"cached_tokens": 1536, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 320, "audio_tokens": 0},
    }
    parsed = ADAPTER.parse_response(response(completion({"content": "x"}, usage=usage)), OPENAI)
    assert parsed.usage == Usage(
        input_tokens=2000, output_tokens=500, cache_read_tokens=1536, reasoning_tokens=320
    )
    assert parsed.usage.uncached_input_tokens == 464


def test_usage_deepseek_cache_hit_tokens() -> None:
    usage = {
        "prompt_tokens": 100,
        "completion_tokens": 10,
        "total_tokens": 110,
        "prompt_cache_hit_tokens": 64,
        "prompt_cache_miss_tokens": 36,
    }
    assert parse_usage(usage) == Usage(input_tokens=100, output_tokens=10, cache_read_tokens=64)


@pytest.mark.parametrize(
    "usage",
    [
        None,
        [],
        "x",
        {"prompt_tokens": None, "completion_tokens": "3"},
        {"prompt_tokens": -5, "completion_tokens": 1.5, "prompt_tokens_details": None},
        {"prompt_tokens": True, "completion_tokens_details": [1]},
    ],
)
def test_odd_usage_values_do_not_raise(usage: Any) -> None:
    result = parse_usage(usage)
    if isinstance(usage, dict):
        assert result is not None
        assert result.input_tokens == 0
        assert result.output_tokens == 0
    else:
        assert result is None


def test_deepseek_blank_line_padded_body() -> None:
    body = json.dumps(completion({"content": "late"})).encode()
    padded = b"\n\n\n\n" + body + b"\n"
    parsed = ADAPTER.parse_response(response(padded), endpoint_for("deepseek"))
    assert parsed.message.content == "late"


def test_error_inside_200_body_raises() -> None:
    body = {
        "error": {"message": "Rate limit reached", "type": "tokens", "code": "rate_limit_exceeded"}
    }
    with pytest.raises(RateLimited) as info:
        ADAPTER.parse_response(response(body, headers={"x-request-id": "req_1"}), OPENAI)
    assert info.value.request_id == "req_1"


def test_error_null_in_a_normal_body_is_not_an_error() -> None:
    body = completion({"content": "fine"}, error=None)
    assert ADAPTER.parse_response(response(body), OPENAI).message.content == "fine"


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"",
        b"[]",
        b"null",
        b'{"choices": []}',
        b'{"choices": [null]}',
        b'{"choices": [{"message": "x"}]}',
        b'{"choices": [{"message": {"content": 5}}]}',
        b'{"choices": [{"message": {"content": null, "tool_calls": {"a": 1}}}]}',
        b'{"choices": [{"message": {"tool_calls": [{"function": {}}]}}]}',
        b'{"choices": [{"message": {"tool_calls": ["x"]}}]}',
    ],
)
def test_malformed_bodies(content: bytes) -> None:
    with pytest.raises(MalformedResponse):
        ADAPTER.parse_response(response(content, headers={"x-request-id": "r"}), OPENAI)


# == streams ======================================================================================

REALISTIC = [
    chunk_obj({"role": "assistant", "content": "", "refusal": None}, usage=None),
    chunk_obj({"content": "Hel"}, usage=None),
    chunk_obj({"content": "lo ✓ 世界"}, usage=None),
    chunk_obj({}, "stop", usage=None),
    {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "model": "gpt-4o-mini",
        "choices": [],
        "usage": {
            "prompt_tokens": 14,
            "completion_tokens": 30,
            "total_tokens": 44,
            "prompt_tokens_details": {"cached_tokens": 4},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    },
]


def test_realistic_stream() -> None:
    chunks = decode(sse(*REALISTIC))
    assert "".join(c.text for c in chunks) == "Hello ✓ 世界"
    finishes = [c for c in chunks if c.finish_reason]
    assert [(c.finish_reason, c.raw_finish_reason) for c in finishes] == [("stop", "stop")]
    usages = [c.usage for c in chunks if c.usage is not None]
    assert usages == [
        Usage(input_tokens=14, output_tokens=30, cache_read_tokens=4, reasoning_tokens=0)
    ]
    assert all(c.id == "chatcmpl-1" and c.model == "gpt-4o-mini" for c in chunks)
    # The role-only first chunk carries nothing the caller needs.
    assert chunks[0].text == "Hel"


def test_stream_whole_equals_bytewise() -> None:
    raw = sse(*REALISTIC)
    assert decode(raw) == decode(raw, bytewise=True)
    crlf = raw.replace(b"\n", b"\r\n")
    assert decode(crlf, bytewise=True) == decode(raw)


def test_stream_with_keepalive_comments() -> None:
    raw = b": keep-alive\n\n: OPENROUTER PROCESSING\n\n" + sse(*REALISTIC)
    assert decode(raw) == decode(sse(*REALISTIC))


def test_azure_prompt_filter_chunk_and_choice_without_delta() -> None:
    endpoint = endpoint_for("azure")
    first = {
        "choices": [],
        "created": 0,
        "id": "",
        "model": "",
        "object": "",
        "prompt_filter_results": [
            {"prompt_index": 0, "content_filter_results": {"hate": {"filtered": False}}}
        ],
    }
    late_filter = {
        "choices": [
            {
                "index": 0,
                "finish_reason": None,
                "content_filter_offsets": {"check_offset": 0, "start_offset": 0, "end_offset": 10},
                "content_filter_results": {"hate": {"filtered": False}},
            }
        ],
        "id": "",
        "model": "",
    }
    raw = sse(
        first,
        chunk_obj({"role": "assistant", "content": ""}),
        chunk_obj({"content": "Hi"}),
        late_filter,
        chunk_obj({}, "content_filter"),
    )
    chunks = decode(raw, endpoint)
    assert "".join(c.text for c in chunks) == "Hi"
    assert chunks[-1].finish_reason == "content_filter"
    assert all(c.id != "" for c in chunks)


def test_stream_one_tool_call_in_fragments() -> None:
    raw = sse(
        chunk_obj(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ],
            }
        ),
        chunk_obj({"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]}),
        chunk_obj({"tool_calls": [{"index": 0, "function": {"arguments": 'ty": "Pa'}}]}),
        chunk_obj({"tool_calls": [{"index": 0, "function": {"arguments": 'ris"}'}}]}),
        chunk_obj({}, "tool_calls"),
    )
    chunks = decode(raw)
    assert merged_calls(chunks) == [
        {"id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'}
    ]
    assert chunks[-1].finish_reason == "tool_calls"
    assert decode(raw, bytewise=True) == chunks


def test_stream_two_parallel_tool_calls() -> None:
    raw = sse(
        chunk_obj(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "a",
                        "type": "function",
                        "function": {"name": "f", "arguments": ""},
                    }
                ]
            }
        ),
        chunk_obj({"tool_calls": [{"index": 0, "function": {"arguments": '{"x":'}}]}),
        chunk_obj({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
        chunk_obj(
            {
                "tool_calls": [
                    {
                        "index": 1,
                        "id": "b",
                        "type": "function",
                        "function": {"name": "g", "arguments": ""},
                    }
                ]
            }
        ),
        chunk_obj({"tool_calls": [{"index": 1, "function": {"arguments": '{"y":2}'}}]}),
        chunk_obj({}, "tool_calls"),
    )
    assert merged_calls(decode(raw)) == [
        {"id": "a", "name": "f", "arguments": '{"x":1}'},
        {"id": "b", "name": "g", "arguments": '{"y":2}'},
    ]


def test_stream_same_index_twice_in_one_chunk_vllm() -> None:
    raw = sse(
        chunk_obj(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_v",
                        "type": "function",
                        "function": {"name": "f", "arguments": ""},
                    },
                    {"index": 0, "function": {"arguments": '{"a":'}},
                ]
            }
        ),
        chunk_obj({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
        chunk_obj({}, "tool_calls"),
    )
    assert merged_calls(decode(raw)) == [{"id": "call_v", "name": "f", "arguments": '{"a":1}'}]


def test_stream_reused_index_with_new_id_starts_a_new_call() -> None:
    raw = sse(
        chunk_obj(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "f", "arguments": '{"n":1}'},
                    }
                ]
            }
        ),
        chunk_obj(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "c2",
                        "type": "function",
                        "function": {"name": "g", "arguments": '{"n":'},
                    }
                ]
            }
        ),
        chunk_obj({"tool_calls": [{"index": 0, "function": {"arguments": "2}"}}]}),
        # The same id again continues the current call, not a third one.
        chunk_obj({"tool_calls": [{"index": 0, "id": "c2", "function": {"arguments": ""}}]}),
        chunk_obj({}, "tool_calls"),
    )
    assert merged_calls(decode(raw)) == [
        {"id": "c1", "name": "f", "arguments": '{"n":1}'},
        {"id": "c2", "name": "g", "arguments": '{"n":2}'},
    ]


def test_stream_id_arriving_after_the_first_fragment() -> None:
    raw = sse(
        chunk_obj({"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": "{"}}]}),
        chunk_obj({"tool_calls": [{"index": 0, "id": "late", "function": {"arguments": "}"}}]}),
        chunk_obj({}, "tool_calls"),
    )
    assert merged_calls(decode(raw)) == [{"id": "late", "name": "f", "arguments": "{}"}]


def test_stream_whole_calls_in_one_chunk_object_arguments() -> None:
    # Ollama's and Gemini's OpenAI layers: complete calls, arguments possibly an object.
    raw = sse(
        chunk_obj(
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": "call_a",
                        "index": 0,
                        "type": "function",
                        "function": {"name": "f", "arguments": {"city": "Paris"}},
                    },
                    {
                        "id": "call_b",
                        "index": 1,
                        "type": "function",
                        "function": {"name": "g", "arguments": '{"n":1}'},
                    },
                ],
            },
            "tool_calls",
        ),
    )
    assert merged_calls(decode(raw)) == [
        {"id": "call_a", "name": "f", "arguments": '{"city":"Paris"}'},
        {"id": "call_b", "name": "g", "arguments": '{"n":1}'},
    ]


def test_stream_tool_calls_without_index() -> None:
    raw = sse(
        chunk_obj({"tool_calls": [{"id": "x", "function": {"name": "f", "arguments": "{}"}}]}),
        chunk_obj({"tool_calls": [{"id": "y", "function": {"name": "g", "arguments": "{}"}}]}),
        chunk_obj({}, "tool_calls"),
    )
    assert [c["id"] for c in merged_calls(decode(raw))] == ["x", "y"]


def test_groq_x_groq_usage() -> None:
    endpoint = endpoint_for("groq")
    raw = sse(
        chunk_obj({"content": "hi"}),
        chunk_obj(
            {},
            "stop",
            x_groq={
                "id": "req_01",
                "usage": {"prompt_tokens": 20, "completion_tokens": 2, "total_tokens": 22},
            },
        ),
    )
    chunks = decode(raw, endpoint)
    assert chunks[-1].usage == Usage(input_tokens=20, output_tokens=2)


def test_top_level_usage_preferred_over_x_groq() -> None:
    raw = sse(
        chunk_obj(
            {},
            "stop",
            usage={"prompt_tokens": 1, "completion_tokens": 1},
            x_groq={"usage": {"prompt_tokens": 9, "completion_tokens": 9}},
        )
    )
    assert decode(raw)[-1].usage == Usage(input_tokens=1, output_tokens=1)


def test_gemini_layer_usage_on_the_content_chunk() -> None:
    raw = sse(
        chunk_obj({"content": "x"}, "stop", usage={"prompt_tokens": 3, "completion_tokens": 1})
    )
    [chunk] = decode(raw)
    assert chunk.text == "x"
    assert chunk.usage == Usage(input_tokens=3, output_tokens=1)


def test_deepseek_reasoning_content() -> None:
    endpoint = endpoint_for("deepseek")
    raw = b": keep-alive\n\n" + sse(
        chunk_obj({"role": "assistant", "content": None, "reasoning_content": ""}),
        chunk_obj({"content": None, "reasoning_content": "Let me think"}),
        chunk_obj({"content": None, "reasoning_content": "..."}),
        chunk_obj({"content": "42", "reasoning_content": None}),
        chunk_obj(
            {"content": ""},
            "stop",
            usage={
                "prompt_tokens": 10,
                "completion_tokens": 50,
                "prompt_cache_hit_tokens": 8,
                "completion_tokens_details": {"reasoning_tokens": 40},
            },
        ),
    )
    chunks = decode(raw, endpoint)
    assert "".join(c.reasoning for c in chunks) == "Let me think..."
    assert "".join(c.text for c in chunks) == "42"
    assert chunks[-1].usage == Usage(
        input_tokens=10, output_tokens=50, cache_read_tokens=8, reasoning_tokens=40
    )


def test_streamed_refusal() -> None:
    raw = sse(
        chunk_obj({"content": None, "refusal": "I can't"}),
        chunk_obj({"refusal": " help."}),
        chunk_obj({}, "stop"),
    )
    chunks = decode(raw)
    assert "".join(c.text for c in chunks) == ""
    assert "".join(c.refusal for c in chunks) == "I can't help."
    assert all(c.has_content for c in chunks[:2])
    assert (chunks[-1].finish_reason, chunks[-1].raw_finish_reason) == ("refusal", "stop")


def test_other_choices_are_ignored() -> None:
    second = chunk_obj({"content": "B"})
    second["choices"][0]["index"] = 1
    raw = sse(chunk_obj({"content": "A"}), second, chunk_obj({}, "stop"))
    assert "".join(c.text for c in decode(raw)) == "A"


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ({"message": "The server had an error", "type": "server_error"}, ServerError),
        ({"message": "Rate limit", "type": "tokens", "code": "rate_limit_exceeded"}, RateLimited),
        ({"message": "overloaded", "type": "overloaded_error"}, Overloaded),
        ({"message": "quota", "type": "insufficient_quota"}, QuotaExhausted),
        ({"message": "too long", "code": "context_length_exceeded"}, ContextLengthExceeded),
        # vLLM's streamed error carries the HTTP-like status as an integer code.
        (
            {"object": "error", "message": "bad", "type": "BadRequestError", "code": 400},
            BadRequestError,
        ),
        ({"message": "slow down", "code": 429}, RateLimited),
        ("a plain string error", ServerError),
    ],
)
def test_error_event_mid_stream(error: Any, expected: type[ProviderError]) -> None:
    decoder = ADAPTER.stream_decoder(OPENAI)
    assert decoder.feed(sse(chunk_obj({"content": "partial"}), done=False))
    with pytest.raises(expected) as info:
        decoder.feed(sse({"error": error}, done=False))
    assert type(info.value) is expected
    assert info.value.provider == "openai"
    assert info.value.deployment == OPENAI.name


def test_error_event_split_across_feeds() -> None:
    raw = sse({"error": {"message": "boom", "type": "server_error"}}, done=False)
    decoder = ADAPTER.stream_decoder(OPENAI)
    with pytest.raises(ServerError, match="boom"):
        for i in range(len(raw)):
            decoder.feed(raw[i : i + 1])


def test_stream_with_finish_but_no_done_closes_fine() -> None:
    chunks = decode(sse(chunk_obj({"content": "x"}), chunk_obj({}, "length"), done=False))
    assert chunks[-1].finish_reason == "length"


def test_stream_with_done_but_no_finish_is_incomplete() -> None:
    """llama.cpp cuts a running stream with [DONE] and no finish reason: not a success."""
    decoder = ADAPTER.stream_decoder(OPENAI)
    assert [c.text for c in decoder.feed(sse(chunk_obj({"content": "x"})))] == ["x"]
    with pytest.raises(ProviderConnectionError) as info:
        decoder.close()
    assert "[DONE] arrived without a finish reason" in str(info.value)
    assert info.value.retryable


def test_stream_with_only_done_is_incomplete() -> None:
    with pytest.raises(ProviderConnectionError, match="without a finish reason"):
        decode(sse())


def test_usage_chunk_after_the_finish_chunk_is_complete() -> None:
    raw = sse(
        chunk_obj({"content": "x"}),
        chunk_obj({}, "stop"),
        {"id": "c", "choices": [], "usage": {"prompt_tokens": 2, "completion_tokens": 1}},
    )
    chunks = decode(raw)
    assert chunks[-1].usage == Usage(input_tokens=2, output_tokens=1)


def test_finish_reason_in_the_content_chunk_is_complete() -> None:
    # Gemini's OpenAI layer puts finish reason and usage into the last content chunk.
    raw = sse(chunk_obj({"content": "x"}, "stop", usage={"prompt_tokens": 1}))
    assert [c.finish_reason for c in decode(raw)] == ["stop"]


def test_stream_with_neither_finish_nor_done_raises_at_close() -> None:
    decoder = ADAPTER.stream_decoder(OPENAI)
    assert [c.text for c in decoder.feed(sse(chunk_obj({"content": "x"}), done=False))] == ["x"]
    with pytest.raises(ProviderConnectionError) as info:
        decoder.close()
    assert info.value.retryable
    assert info.value.deployment == OPENAI.name


def test_stream_cut_mid_event_raises_at_close() -> None:
    raw = sse(chunk_obj({"content": "x"}), done=False) + b'data: {"choices": [{"ind'
    decoder = ADAPTER.stream_decoder(OPENAI)
    decoder.feed(raw)
    with pytest.raises(ProviderConnectionError):
        decoder.close()


def test_empty_stream_raises_at_close() -> None:
    with pytest.raises(ProviderConnectionError):
        decode(b"")


def test_final_done_without_blank_line_counts() -> None:
    raw = sse(chunk_obj({"content": "x"}, "stop"), done=False) + b"data: [DONE]\n"
    assert [c.text for c in decode(raw)] == ["x"]


def test_invalid_json_event_is_malformed() -> None:
    with pytest.raises(MalformedResponse):
        decode(b"data: {not json\n\n")


def test_non_object_json_events_are_skipped() -> None:
    raw = sse("[1, 2]", "42", '"text"', "null", chunk_obj({"content": "ok"}, "stop"))
    assert [c.text for c in decode(raw)] == ["ok"]


# == errors =======================================================================================


def err_body(message: str, type_: str | None = None, code: Any = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


ERROR_CASES = [
    pytest.param(
        400,
        err_body("Unrecognized request argument", "invalid_request_error"),
        {},
        BadRequestError,
        id="400-invalid-request",
    ),
    pytest.param(
        400,
        err_body(
            "Unsupported parameter: 'max_tokens'", "invalid_request_error", "unsupported_parameter"
        ),
        {},
        BadRequestError,
        id="400-unsupported-parameter",
    ),
    pytest.param(
        400,
        err_body(
            "This model's maximum context length is 8192 tokens.",
            "invalid_request_error",
            "context_length_exceeded",
        ),
        {},
        ContextLengthExceeded,
        id="400-context-length",
    ),
    pytest.param(
        400,
        err_body("Please reduce the length of the messages.", "invalid_request_error"),
        {},
        ContextLengthExceeded,
        id="400-context-length-by-message",
    ),
    pytest.param(
        400,
        err_body("The response was filtered", None, "content_filter"),
        {},
        ContentFiltered,
        id="400-content-filter",
    ),
    pytest.param(
        401,
        err_body("Invalid authentication", "invalid_request_error", "invalid_api_key"),
        {},
        AuthenticationError,
        id="401",
    ),
    pytest.param(
        403,
        err_body(
            "Country, region, or territory not supported",
            "request_forbidden",
            "unsupported_country_region_territory",
        ),
        {},
        PermissionDeniedError,
        id="403",
    ),
    pytest.param(
        404,
        err_body("The model `gpt-9` does not exist", "invalid_request_error", "model_not_found"),
        {},
        NotFoundError,
        id="404",
    ),
    pytest.param(408, err_body("Request timed out"), {}, ProviderTimeout, id="408"),
    pytest.param(409, err_body("Conflict"), {}, ConflictError, id="409"),
    pytest.param(422, err_body("Unprocessable"), {}, BadRequestError, id="422"),
    pytest.param(
        429,
        err_body("Rate limit reached for requests", "requests", "rate_limit_exceeded"),
        {"retry-after": "2"},
        RateLimited,
        id="429-rate-limit",
    ),
    pytest.param(
        429,
        err_body("You exceeded your current quota", "insufficient_quota", "insufficient_quota"),
        {"retry-after": "2"},
        QuotaExhausted,
        id="429-insufficient-quota",
    ),
    pytest.param(
        429,
        err_body("Rate limit reached for model", "tokens", "rate_limit_exceeded"),
        {},
        RateLimited,
        id="429-groq",
    ),
    pytest.param(
        500, err_body("The server had an error", "server_error"), {}, ServerError, id="500"
    ),
    pytest.param(
        502,
        b"<html><body>Bad gateway</body></html>",
        {"content-type": "text/html"},
        ServerError,
        id="502-html",
    ),
    pytest.param(503, err_body("The engine is currently overloaded"), {}, Overloaded, id="503"),
    pytest.param(
        503,
        err_body("Slow down", "service_unavailable_error", "slow_down"),
        {},
        Overloaded,
        id="503-slow-down",
    ),
    pytest.param(529, err_body("Overloaded"), {}, Overloaded, id="529"),
    pytest.param(402, err_body("Insufficient credits"), {}, QuotaExhausted, id="402"),
    pytest.param(
        400,
        {
            "object": "error",
            "message": "max_tokens must be at least 1",
            "type": "BadRequestError",
            "param": None,
            "code": 400,
        },
        {},
        BadRequestError,
        id="vllm-top-level",
    ),
    pytest.param(
        400,
        {
            "object": "error",
            "message": "This model's maximum context length is 4096 tokens",
            "type": "BadRequestError",
            "code": 400,
        },
        {},
        ContextLengthExceeded,
        id="vllm-context-length",
    ),
    pytest.param(404, b"404 page not found", {}, NotFoundError, id="404-text"),
    pytest.param(500, b"", {}, ServerError, id="500-empty"),
    pytest.param(400, b"[1, 2]", {}, BadRequestError, id="400-json-list"),
]


@pytest.mark.parametrize(("status", "body", "headers", "expected"), ERROR_CASES)
def test_map_error(
    status: int, body: Any, headers: dict[str, str], expected: type[ProviderError]
) -> None:
    err = ADAPTER.map_error(response(body, status, {**headers, "x-request-id": "req_42"}), OPENAI)
    assert type(err) is expected
    assert err.status == status
    assert err.provider == "openai"
    assert err.deployment == OPENAI.name
    assert err.request_id == "req_42"
    assert "req_42" in str(err)
    assert f"HTTP {status}" in str(err)
    if isinstance(body, dict):
        assert err.body == body


def test_map_error_keeps_code_and_message() -> None:
    err = ADAPTER.map_error(
        response(
            err_body(
                "Unsupported parameter: 'max_tokens'",
                "invalid_request_error",
                "unsupported_parameter",
            ),
            400,
        ),
        OPENAI,
    )
    assert err.code == "unsupported_parameter"
    assert "Unsupported parameter" in str(err)
    assert not err.retryable
    typed_only = ADAPTER.map_error(response(err_body("x", "invalid_request_error"), 400), OPENAI)
    assert typed_only.code == "invalid_request_error"


def test_rate_limit_retry_after_seconds() -> None:
    err = ADAPTER.map_error(
        response(
            err_body("Rate limit", "requests", "rate_limit_exceeded"), 429, {"retry-after": "2"}
        ),
        OPENAI,
    )
    assert isinstance(err, RateLimited)
    assert err.retry_after == 2
    assert err.retryable


def test_rate_limit_retry_after_ms_wins() -> None:
    err = ADAPTER.map_error(
        response(err_body("Rate limit"), 429, {"retry-after-ms": "1500", "retry-after": "9"}),
        OPENAI,
    )
    assert isinstance(err, RateLimited)
    assert err.retry_after == 1.5


def test_rate_limit_retry_after_http_date() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    err = ADAPTER.map_error(response(err_body("Rate limit"), 429, {"retry-after": when}), OPENAI)
    assert isinstance(err, RateLimited)
    assert err.retry_after is not None
    assert 25 <= err.retry_after <= 31


def test_rate_limit_without_hint() -> None:
    err = ADAPTER.map_error(response(err_body("Rate limit"), 429), OPENAI)
    assert isinstance(err, RateLimited)
    assert err.retry_after is None


def test_quota_is_not_retryable() -> None:
    err = ADAPTER.map_error(
        response(
            err_body("You exceeded your current quota", "insufficient_quota", "insufficient_quota"),
            429,
            {"retry-after": "2"},
        ),
        OPENAI,
    )
    assert isinstance(err, QuotaExhausted)
    assert not err.retryable


def test_overloaded_and_server_errors_carry_retry_after() -> None:
    err = ADAPTER.map_error(response(err_body("busy"), 503, {"retry-after": "7"}), OPENAI)
    assert isinstance(err, Overloaded)
    assert err.retry_after == 7
    server = ADAPTER.map_error(response(err_body("oops"), 500, {"retry-after": "3"}), OPENAI)
    assert isinstance(server, ServerError)
    assert server.retry_after == 3


def test_html_body_becomes_the_message() -> None:
    html = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    err = ADAPTER.map_error(response(html, 502), OPENAI)
    assert "502 Bad Gateway" in str(err)
    long = ADAPTER.map_error(response(b"x" * 5000, 500), OPENAI)
    assert len(long.message) <= 500


def test_request_id_header() -> None:
    err = ADAPTER.map_error(response(err_body("x"), 500, {"X-Request-Id": "req_abc"}), OPENAI)
    assert err.request_id == "req_abc"
    assert "(request id req_abc)" in str(err)
    assert ADAPTER.map_error(response(err_body("x"), 500), OPENAI).request_id is None


def test_echoed_api_key_is_redacted() -> None:
    body = err_body(
        "Incorrect API key provided: sk-abc123456789. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        "invalid_request_error",
        "invalid_api_key",
    )
    err = ADAPTER.map_error(response(body, 401), OPENAI)
    assert isinstance(err, AuthenticationError)
    assert "sk-abc123456789" not in str(err)
    assert "sk-abc123456789" not in repr(err)
    assert "[REDACTED]" in str(err)
    assert "Incorrect API key provided" in str(err)


def test_echoed_key_in_html_body_is_redacted() -> None:
    err = ADAPTER.map_error(response(b"<p>bad key sk-proj-abcdef123456</p>", 401), OPENAI)
    assert "sk-proj-abcdef123456" not in str(err)


def test_endpoint_own_key_is_redacted_whatever_its_shape() -> None:
    # Groq keys (gsk_...) match no generic pattern; the endpoint's own key is still removed.
    endpoint = endpoint_for("groq", env={"GROQ_API_KEY": "gsk_Zz9Yy8Xx7Ww6"})
    err = ADAPTER.map_error(response(err_body("Invalid API Key: gsk_Zz9Yy8Xx7Ww6"), 401), endpoint)
    assert "gsk_Zz9Yy8Xx7Ww6" not in str(err)
    decoder = ADAPTER.stream_decoder(endpoint)
    with pytest.raises(ProviderError) as info:
        decoder.feed(sse({"error": {"message": "key gsk_Zz9Yy8Xx7Ww6 revoked"}}, done=False))
    assert "gsk_Zz9Yy8Xx7Ww6" not in str(info.value)


# == robustness (hypothesis) ======================================================================

_KEYS = st.sampled_from(
    [
        "id",
        "model",
        "choices",
        "index",
        "message",
        "delta",
        "content",
        "refusal",
        "role",
        "tool_calls",
        "function",
        "name",
        "arguments",
        "type",
        "finish_reason",
        "usage",
        "prompt_tokens",
        "completion_tokens",
        "prompt_tokens_details",
        "cached_tokens",
        "completion_tokens_details",
        "reasoning_tokens",
        "prompt_cache_hit_tokens",
        "error",
        "code",
        "object",
        "x_groq",
        "reasoning_content",
        "reasoning",
    ]
) | st.text(max_size=5)

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_KEYS, children, max_size=5),
    max_leaves=25,
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=JSON, status=st.sampled_from([200, 400, 401, 404, 429, 500, 503]))
def test_arbitrary_json_bodies_raise_only_provider_errors(body: Any, status: int) -> None:
    raw = response(body, status, {"retry-after": "1"})
    if status == 200:
        try:
            ADAPTER.parse_response(raw, OPENAI)
        except ProviderError:
            pass
    else:
        assert isinstance(ADAPTER.map_error(raw, OPENAI), ProviderError)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=st.lists(JSON | st.sampled_from(["[DONE]", "", "{", "null"]), max_size=6),
    done=st.booleans(),
)
def test_arbitrary_json_events_raise_only_provider_errors(events: list[Any], done: bool) -> None:
    payloads = [e if isinstance(e, str) else json.dumps(e) for e in events]
    raw = "".join(f"data: {p}\n\n" for p in payloads).encode()
    if done:
        raw += b"data: [DONE]\n\n"
    try:
        chunks = decode(raw)
    except ProviderError:
        return
    assert all(isinstance(c, ChatChunk) for c in chunks)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.binary(max_size=300), cut=st.integers(0, 300))
def test_arbitrary_bytes_into_the_stream_decoder(raw: bytes, cut: int) -> None:
    decoder = ADAPTER.stream_decoder(OPENAI)
    try:
        decoder.feed(raw[:cut])
        decoder.feed(raw[cut:])
        decoder.close()
    except ProviderError:
        pass


@settings(max_examples=100, deadline=None)
@given(raw=st.binary(max_size=300), status=st.integers(400, 599))
def test_arbitrary_error_bytes_map_to_provider_errors(raw: bytes, status: int) -> None:
    assert isinstance(ADAPTER.map_error(response(raw, status), OPENAI), ProviderError)


_ANY = (
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=3)
    | st.lists(st.integers(0, 2), max_size=2)
    | st.dictionaries(st.text(max_size=2), st.integers(), max_size=2)
)


def _maybe(mapping: dict[str, Any]) -> Any:
    """A dict with every key optional, each value drawn from its strategy."""
    return st.fixed_dictionaries({}, optional=mapping)


_TOOL_CALL = _maybe(
    {
        "index": st.integers(-1, 3) | _ANY,
        "id": st.sampled_from(["c1", "c2", ""]) | _ANY,
        "type": _ANY,
        "function": _maybe({"name": st.text(max_size=3) | _ANY, "arguments": _ANY}) | _ANY,
    }
)
_USAGE = (
    _maybe(
        {
            "prompt_tokens": st.integers(-5, 100) | _ANY,
            "completion_tokens": st.integers(-5, 100) | _ANY,
            "prompt_tokens_details": _maybe({"cached_tokens": _ANY}) | _ANY,
            "completion_tokens_details": _maybe({"reasoning_tokens": _ANY}) | _ANY,
            "prompt_cache_hit_tokens": _ANY,
        }
    )
    | _ANY
)
_CHUNK = _maybe(
    {
        "id": _ANY,
        "model": _ANY,
        "choices": st.lists(
            _maybe(
                {
                    "index": st.just(0) | _ANY,
                    "delta": _maybe(
                        {
                            "content": st.text(max_size=3) | _ANY,
                            "refusal": _ANY,
                            "reasoning_content": _ANY,
                            "tool_calls": st.lists(_TOOL_CALL | _ANY, max_size=3) | _ANY,
                        }
                    )
                    | _ANY,
                    "finish_reason": st.sampled_from(["stop", "tool_calls"]) | _ANY,
                }
            )
            | _ANY,
            max_size=2,
        )
        | _ANY,
        "usage": _USAGE,
        "x_groq": _maybe({"usage": _USAGE}) | _ANY,
        "error": _ANY,
    }
)
_BODY = _maybe(
    {
        "id": _ANY,
        "model": _ANY,
        "choices": st.lists(
            _maybe(
                {
                    "message": _maybe(
                        {
                            "content": st.text(max_size=3) | _ANY,
                            "refusal": _ANY,
                            "tool_calls": st.lists(_TOOL_CALL | _ANY, max_size=3) | _ANY,
                        }
                    )
                    | _ANY,
                    "finish_reason": _ANY,
                }
            )
            | _ANY,
            max_size=2,
        )
        | _ANY,
        "usage": _USAGE,
        "error": _ANY,
        "message": _ANY,
        "code": _ANY,
    }
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.lists(_CHUNK, max_size=5))
def test_chunk_shaped_json_raises_only_provider_errors(events: list[Any]) -> None:
    try:
        decode(sse(*events))
    except ProviderError:
        pass


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=_BODY, status=st.sampled_from([200, 400, 429, 500]))
def test_response_shaped_json_raises_only_provider_errors(body: Any, status: int) -> None:
    raw = response(body, status)
    if status == 200:
        try:
            ADAPTER.parse_response(raw, OPENAI)
        except ProviderError:
            pass
    else:
        assert isinstance(ADAPTER.map_error(raw, OPENAI), ProviderError)


@pytest.mark.parametrize(
    "event",
    [
        # Regressions: non-string ids, models and names once escaped as pydantic ValidationError.
        {"id": 5, "model": ["x"], "choices": [{"index": 0, "delta": {"content": "x"}}]},
        {"choices": [{"delta": {"tool_calls": [{"id": 7, "function": {"name": [1]}}]}}]},
        {
            "choices": [
                {"delta": {"tool_calls": [{"index": 0, "function": {"name": 3, "arguments": 1}}]}}
            ]
        },
    ],
)
def test_wrongly_typed_stream_fields_are_tolerated(event: Any) -> None:
    chunks = decode(sse(event, chunk_obj({}, "stop")))[:-1]
    assert all(c.id is None and c.model is None for c in chunks)
    assert all(d.id is None and d.name is None for c in chunks for d in c.tool_calls)


def test_error_null_in_a_usage_chunk_is_not_an_error() -> None:
    raw = sse(
        chunk_obj({"content": "x"}, "stop"),
        {"choices": [], "error": None, "usage": {"prompt_tokens": 1}},
    )
    assert decode(raw)[-1].usage == Usage(input_tokens=1)
