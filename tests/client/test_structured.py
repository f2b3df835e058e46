"""Structured outputs at the HTTP boundary: request bodies per provider (schema placement and
strict-mode adjustments) and answers (parsed object, refusal, invalid output -> retry with the
errors fed back -> typed error), on both clients and ``chat.completions.parse``."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

import multimodel as mm
from multimodel import errors
from multimodel.testing import Behavior, MockDeployment, MockProviderServer

KEY = "sk-test-structured-0123456789"
REFUSAL = "I'm sorry, I can't help with that."

pytestmark = pytest.mark.filterwarnings("ignore::multimodel.errors.PricingWarning")


class Address(BaseModel):
    city: str
    zip: str | None = None


class Person(BaseModel):
    name: str
    age: int
    address: Address
    tags: list[str] = []


GOOD = {"name": "Ada", "age": 36, "address": {"city": "London", "zip": None}, "tags": []}
BAD = {"name": "Ada", "age": "old", "address": {"city": "London"}}


def openai_body(content: str | None, refusal: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-s",
        "object": "chat.completion",
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14},
    }


def anthropic_body(answer: Any, name: str = "Person") -> dict[str, Any]:
    return {
        "id": "msg_s",
        "type": "message",
        "role": "assistant",
        "model": "claude",
        "content": [{"type": "tool_use", "id": "toolu_1", "name": name, "input": answer}],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 9},
    }


def gemini_body(text: str) -> dict[str, Any]:
    return {
        "candidates": [
            {"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}
        ],
        "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 9},
        "modelVersion": "gemini-2.0-flash",
    }


class Provider:
    """A MockTransport handler: replies in order (the last one repeats); bodies recorded."""

    def __init__(self, *replies: dict[str, Any]) -> None:
        self.replies = list(replies)
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(json.loads(request.content))
        reply = self.replies[min(len(self.bodies), len(self.replies)) - 1]
        return httpx.Response(200, json=reply)


def make(cls: Any, provider: Provider, name: str = "openai", **kw: Any) -> Any:
    return cls(
        deployments=[
            mm.Deployment(
                model="m", provider=name, api_key=KEY, base_url="https://p.test/v1",
                provider_model="w",
            )
        ],
        transport=httpx.MockTransport(provider),
        **kw,
    )  # fmt: skip


# -- request bodies ---------------------------------------------------------------------------


def test_openai_sends_a_strict_json_schema() -> None:
    provider = Provider(openai_body(json.dumps(GOOD)))
    with make(mm.Client, provider) as c:
        r = c.query("who?", model="m", response_format=Person)
    assert r.parsed == Person.model_validate(GOOD)
    fmt = provider.bodies[0]["response_format"]
    assert fmt["type"] == "json_schema"
    spec = fmt["json_schema"]
    assert (spec["name"], spec["strict"]) == ("Person", True)
    schema = spec["schema"]
    # strict mode: no extra properties, every property required, no defaults, on every object
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["name", "age", "address", "tags"]
    assert "default" not in schema["properties"]["tags"]
    address = schema["$defs"]["Address"]
    assert address["additionalProperties"] is False
    assert address["required"] == ["city", "zip"]


def test_a_schema_dict_is_validated_and_parsed_as_json() -> None:
    schema = {
        "title": "Point",
        "type": "object",
        "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}},
        "required": ["x", "y"],
    }
    provider = Provider(openai_body('{"x": 1, "y": "2"}'), openai_body('{"x": 1, "y": 2}'))
    with make(mm.Client, provider) as c:
        r = c.query("where?", model="m", response_format=schema)
    assert r.parsed == {"x": 1, "y": 2}
    assert provider.bodies[0]["response_format"]["json_schema"]["name"] == "Point"
    assert len(provider.bodies) == 2  # the first answer did not fit: asked again


def test_deepseek_gets_json_mode_and_the_schema_in_the_prompt() -> None:
    provider = Provider(openai_body("```json\n" + json.dumps(GOOD) + "\n```"))
    with make(mm.Client, provider, name="deepseek") as c:
        r = c.query("who?", model="m", response_format=Person)
    assert r.parsed is not None and r.parsed.name == "Ada"  # a fenced answer is accepted
    body = provider.bodies[0]
    assert body["response_format"] == {"type": "json_object"}
    assert body["messages"][0]["role"] == "system"
    assert (
        '"Person"' in body["messages"][0]["content"] or "'Person'" in body["messages"][0]["content"]
    )


def test_anthropic_forces_a_tool_whose_input_is_the_answer() -> None:
    provider = Provider(anthropic_body(GOOD))
    with make(mm.Client, provider, name="anthropic") as c:
        r = c.query("who?", model="m", response_format=Person)
    assert r.parsed == Person.model_validate(GOOD)
    assert r.text == json.dumps(GOOD, separators=(",", ":"))
    assert (r.finish_reason, r.tool_calls) == ("stop", [])
    body = provider.bodies[0]
    assert body["tool_choice"] == {"type": "tool", "name": "Person"}
    (tool,) = body["tools"]
    assert tool["name"] == "Person"
    assert tool["input_schema"] == Person.model_json_schema()
    assert "system" not in body


def test_anthropic_with_caller_tools_falls_back_to_the_prompt() -> None:
    answer = {
        "id": "msg_s", "type": "message", "role": "assistant", "model": "claude",
        "content": [{"type": "text", "text": json.dumps(GOOD)}],
        "stop_reason": "end_turn", "usage": {"input_tokens": 5, "output_tokens": 9},
    }  # fmt: skip
    provider = Provider(answer)
    tool = {"name": "lookup", "parameters": {"type": "object", "properties": {}}}
    with make(mm.Client, provider, name="anthropic") as c:
        r = c.query("who?", model="m", response_format=Person, tools=[tool])
    assert r.parsed.age == 36
    body = provider.bodies[0]
    assert [t["name"] for t in body["tools"]] == ["lookup"]
    assert "JSON Schema" in body["system"]


def test_gemini_gets_json_mime_type_and_the_schema_subset() -> None:
    provider = Provider(gemini_body(json.dumps(GOOD)))
    with make(mm.Client, provider, name="gemini") as c:
        r = c.query("who?", model="m", response_format=Person)
    assert r.parsed == Person.model_validate(GOOD)
    config = provider.bodies[0]["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    schema = config["responseJsonSchema"]
    text = json.dumps(schema)
    assert "$ref" not in text and "$defs" not in text and '"default"' not in text
    assert schema["properties"]["address"]["properties"]["city"] == {
        "type": "string", "title": "City"
    }  # fmt: skip


def test_gemini_refuses_a_recursive_schema_before_sending() -> None:
    class Node(BaseModel):
        value: int
        children: list[Node] = []

    provider = Provider(gemini_body("{}"))
    with make(mm.Client, provider, name="gemini") as c:
        with pytest.raises((errors.AllAttemptsFailed, errors.InvalidRequestError)):
            c.query("tree", model="m", response_format=Node)
    assert provider.bodies == []


# -- answers ----------------------------------------------------------------------------------


def test_a_refusal_is_not_a_validation_error() -> None:
    provider = Provider(openai_body(None, REFUSAL))
    with make(mm.Client, provider) as c:
        r = c.query("who?", model="m", response_format=Person)
    assert (r.parsed, r.refusal, r.finish_reason) == (None, REFUSAL, "refusal")
    assert len(provider.bodies) == 1


def test_invalid_output_is_retried_with_the_errors_then_raised() -> None:
    provider = Provider(openai_body(json.dumps(BAD)))
    with make(mm.Client, provider) as c:
        with pytest.raises(errors.StructuredOutputError) as info:
            c.query("who?", model="m", response_format=Person, structured_retries=2)
    exc = info.value
    assert exc.raw_text == json.dumps(BAD)
    assert {tuple(e["loc"]) for e in exc.errors} == {("age",)}
    assert exc.response is not None and exc.response.usage.output_tokens == 9
    assert len(provider.bodies) == 3
    fed_back = provider.bodies[1]["messages"]
    assert fed_back[-2] == {"role": "assistant", "content": json.dumps(BAD)}
    assert fed_back[-1]["role"] == "user" and "age" in fed_back[-1]["content"]


def test_structured_retries_zero_raises_at_once() -> None:
    provider = Provider(openai_body("not json"))
    with make(mm.Client, provider) as c:
        with pytest.raises(errors.StructuredOutputError, match="Person"):
            c.query("who?", model="m", response_format=Person, structured_retries=0)
    assert len(provider.bodies) == 1


def test_a_truncated_answer_is_a_structured_output_error() -> None:
    body = openai_body('{"name": "Ada", "ag')
    body["choices"][0]["finish_reason"] = "length"
    provider = Provider(body)
    with make(mm.Client, provider) as c:
        with pytest.raises(errors.StructuredOutputError, match="token limit"):
            c.query("who?", model="m", response_format=Person, structured_retries=0)


def test_chat_completions_parse() -> None:
    provider = Provider(openai_body(json.dumps(GOOD)))
    with make(mm.Client, provider) as c:
        completion = c.chat.completions.parse(
            model="m",
            messages=[{"role": "user", "content": "who?"}],
            response_format=Person,
            max_completion_tokens=100,
        )
        plain = c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    message = completion.choices[0].message
    assert message.parsed == Person.model_validate(GOOD)
    assert message.content == json.dumps(GOOD)
    assert plain.choices[0].message.parsed is None
    assert provider.bodies[0]["max_completion_tokens"] == 100


def test_plain_queries_have_no_parsed_value() -> None:
    provider = Provider(openai_body("hello"))
    with make(mm.Client, provider) as c:
        r = c.query("hi", model="m")
    assert r.parsed is None
    assert "response_format" not in provider.bodies[0]


def test_a_chat_request_with_a_response_format_is_parsed() -> None:
    provider = Provider(openai_body('{"x": 1}'))
    request = mm.ChatRequest(
        model="m",
        messages=[{"role": "user", "content": "x"}],
        response_format={"type": "json_object"},
    )
    with make(mm.Client, provider) as c:
        assert c.query(request).parsed == {"x": 1}


def test_a_bad_response_format_is_refused() -> None:
    provider = Provider(openai_body("{}"))
    with make(mm.Client, provider) as c:
        with pytest.raises(errors.InvalidRequestError, match="response_format"):
            c.query("x", model="m", response_format=42)
        with pytest.raises(errors.InvalidRequestError, match="structured_retries"):
            c.query("x", model="m", response_format=Person, structured_retries=-1)
    assert provider.bodies == []


# -- the awaited client (asyncio and trio) ----------------------------------------------------

CASES: list[tuple[str, Callable[[], dict[str, Any]]]] = [
    ("openai", lambda: openai_body(json.dumps(GOOD))),
    ("anthropic", lambda: anthropic_body(GOOD)),
    ("gemini", lambda: gemini_body(json.dumps(GOOD))),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("name", "reply"), CASES, ids=[c[0] for c in CASES])
async def test_async_structured_on_every_provider(
    name: str, reply: Callable[[], dict[str, Any]]
) -> None:
    provider = Provider(reply())
    async with make(mm.AsyncClient, provider, name=name) as c:
        r = await c.query("who?", model="m", response_format=Person)
        completion = await c.chat.completions.parse(
            model="m", messages=[{"role": "user", "content": "who?"}], response_format=Person
        )
    assert r.parsed == Person.model_validate(GOOD)
    assert completion.choices[0].message.parsed == r.parsed


@pytest.mark.anyio
async def test_async_invalid_output_is_retried_then_raised() -> None:
    provider = Provider(anthropic_body(BAD), anthropic_body(GOOD))
    async with make(mm.AsyncClient, provider, name="anthropic") as c:
        r = await c.query("who?", model="m", response_format=Person)
        assert r.parsed is not None and r.parsed.age == 36
        assert len(provider.bodies) == 2
        provider.replies = [anthropic_body(BAD)]
        with pytest.raises(errors.StructuredOutputError):
            await c.query("who?", model="m", response_format=Person, structured_retries=0)


@pytest.mark.anyio
async def test_async_refusal() -> None:
    provider = Provider(openai_body(None, REFUSAL))
    async with make(mm.AsyncClient, provider) as c:
        completion = await c.chat.completions.parse(
            model="m", messages=[{"role": "user", "content": "who?"}], response_format=Person
        )
    message = completion.choices[0].message
    assert (message.parsed, message.refusal, message.content) == (None, REFUSAL, None)


def test_auto_considers_only_models_with_structured_output() -> None:
    provider = Provider(openai_body(json.dumps(GOOD)))
    deployments = [
        mm.Deployment(model="gpt-4o-mini", provider="openai", api_key=KEY),
        mm.Deployment(model="deepseek-chat", provider="deepseek", api_key=KEY),
    ]
    with mm.Client(deployments=deployments, transport=httpx.MockTransport(provider)) as c:
        for _ in range(4):
            r = c.query("who?", model="auto", response_format=Person)
            assert r.deployment == "openai/gpt-4o-mini"
            assert "structured_output" in r.trace.excluded["deepseek/deepseek-chat"]
        # JSON mode alone: DeepSeek may serve
        r = c.query("who?", model="auto", response_format={"type": "json_object"})
        assert "deepseek/deepseek-chat" not in r.trace.excluded


# -- streams (the mock server, every wire format) ---------------------------------------------


def mock_server(fmt: str, behavior: Behavior) -> MockProviderServer:
    return MockProviderServer({"d": MockDeployment(format=fmt, behavior=behavior)})  # type: ignore[arg-type]


def mock_client(cls: Any, server: MockProviderServer, fmt: str) -> Any:
    keys = {"openai": KEY, "anthropic": "sk-ant-test-0123456789", "gemini": "AIza-test-0123456789"}
    return cls(
        deployments=[
            mm.Deployment(model="m", provider=fmt, api_key=keys[fmt], base_url=server.base_url("d"))
        ]
    )


STREAM_CASES = [
    ("openai", Behavior(text=json.dumps(GOOD), chunks=5)),
    ("anthropic", Behavior(tool_calls=[("Person", GOOD)])),
    ("gemini", Behavior(text=json.dumps(GOOD), chunks=5)),
]


@pytest.mark.parametrize(("fmt", "behavior"), STREAM_CASES, ids=[c[0] for c in STREAM_CASES])
def test_a_stream_ends_with_the_validated_object(fmt: str, behavior: Behavior) -> None:
    with mock_server(fmt, behavior) as server, mock_client(mm.Client, server, fmt) as c:
        with c.stream("who?", model="m", response_format=Person) as stream:
            pieces = [chunk.text for chunk in stream]
        assert stream.response is not None
        assert stream.response.parsed == Person.model_validate(GOOD)
        body = server.requests("d")[0].body
        assert body is not None
    if fmt == "openai":
        assert len([p for p in pieces if p]) > 1  # the text streamed as it came
        assert body["response_format"]["json_schema"]["strict"] is True
    elif fmt == "anthropic":
        assert body["tool_choice"] == {"type": "tool", "name": "Person"}
    else:
        assert body["generationConfig"]["responseMimeType"] == "application/json"


def test_a_stream_that_does_not_validate_raises_at_its_end() -> None:
    behavior = Behavior(text=json.dumps(BAD), chunks=3)
    with mock_server("openai", behavior) as server, mock_client(mm.Client, server, "openai") as c:
        pieces: list[str] = []
        with pytest.raises(errors.StructuredOutputError) as info:
            with c.stream("who?", model="m", response_format=Person) as stream:
                pieces.extend(chunk.text for chunk in stream)
        assert "".join(pieces) == json.dumps(BAD) == info.value.raw_text


@pytest.mark.anyio
@pytest.mark.parametrize(("fmt", "behavior"), STREAM_CASES, ids=[c[0] for c in STREAM_CASES])
async def test_async_stream_ends_with_the_validated_object(fmt: str, behavior: Behavior) -> None:
    with mock_server(fmt, behavior) as server:
        async with mock_client(mm.AsyncClient, server, fmt) as c:
            async with c.stream("who?", model="m", response_format=Person) as stream:
                final = await stream.get_final_response()
    assert final.parsed == Person.model_validate(GOOD)


def test_invalid_output_falls_back_to_the_next_model_group() -> None:
    def reply(request: httpx.Request) -> httpx.Response:
        good = request.url.host == "good.test"
        return httpx.Response(200, json=openai_body(json.dumps(GOOD if good else BAD)))

    hosts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        hosts.append(request.url.host)
        return reply(request)

    deployments = [
        mm.Deployment(model="a", provider="openai", api_key=KEY, base_url="https://bad.test/v1"),
        mm.Deployment(model="b", provider="openai", api_key=KEY, base_url="https://good.test/v1"),
    ]
    with mm.Client(
        deployments=deployments, transport=httpx.MockTransport(handler), fallbacks={"a": ["b"]}
    ) as c:
        r = c.query("who?", model="a", response_format=Person, structured_retries=1)
    assert r.parsed == Person.model_validate(GOOD)
    assert hosts == ["bad.test", "bad.test", "good.test"]


# -- the repair goes back to the deployment that answered -------------------------------------


class Hosts:
    """Two deployments of one group, ``one.test`` and ``two.test``, each answering its
    replies in order (the last repeats; an int is an error status); hosts asked recorded."""

    def __init__(self, **replies: Sequence[dict[str, Any] | int]) -> None:
        self.replies = replies
        self.hosts: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        replies = self.replies[host.split(".")[0]]
        reply = replies[min(self.hosts.count(host), len(replies) - 1)]
        self.hosts.append(host)
        if isinstance(reply, int):
            return httpx.Response(reply, json={"error": {"message": "down", "type": "server"}})
        return httpx.Response(200, json=reply)

    def client(self, cls: Any) -> Any:
        deployments = [
            mm.Deployment(
                model="m", provider="openai", api_key=KEY, base_url=f"https://{h}/v1", name=h
            )
            for h in ("one.test", "two.test")
        ]
        # Round robin: a repair routed afresh would go to the other deployment.
        return cls(
            deployments=deployments, transport=httpx.MockTransport(self), strategy="round_robin"
        )


BAD_THEN_GOOD = [openai_body(json.dumps(BAD)), openai_body(json.dumps(GOOD))]


def test_the_repair_goes_to_the_deployment_that_gave_the_invalid_answer() -> None:
    hosts = Hosts(one=BAD_THEN_GOOD, two=BAD_THEN_GOOD)
    with hosts.client(mm.Client) as c:
        for _ in range(2):
            r = c.query("who?", model="m", response_format=Person)
            assert r.parsed == Person.model_validate(GOOD)
            assert f"pinned to {r.deployment}" in r.trace.notes
    # each call: an invalid first answer, repaired by the same deployment
    assert hosts.hosts == ["one.test", "one.test", "two.test", "two.test"]


def test_a_pinned_repair_that_fails_falls_back_as_usual() -> None:
    hosts = Hosts(one=[openai_body(json.dumps(BAD)), 503], two=[openai_body(json.dumps(GOOD))])
    with hosts.client(mm.Client) as c:
        r = c.query("who?", model="m", response_format=Person)
    assert r.parsed == Person.model_validate(GOOD)
    assert hosts.hosts == ["one.test", "one.test", "two.test"]
    assert [a.deployment for a in r.trace.attempts] == ["one.test", "two.test"]


@pytest.mark.anyio
async def test_async_the_repair_goes_to_the_deployment_that_gave_the_invalid_answer() -> None:
    hosts = Hosts(one=BAD_THEN_GOOD, two=BAD_THEN_GOOD)
    async with hosts.client(mm.AsyncClient) as c:
        for _ in range(2):
            r = await c.query("who?", model="m", response_format=Person)
            assert r.parsed == Person.model_validate(GOOD)
    assert hosts.hosts == ["one.test", "one.test", "two.test", "two.test"]


@pytest.mark.anyio
async def test_async_a_pinned_repair_that_fails_falls_back_as_usual() -> None:
    hosts = Hosts(one=[openai_body(json.dumps(BAD)), 503], two=[openai_body(json.dumps(GOOD))])
    async with hosts.client(mm.AsyncClient) as c:
        r = await c.query("who?", model="m", response_format=Person)
    assert r.parsed == Person.model_validate(GOOD)
    assert hosts.hosts == ["one.test", "one.test", "two.test"]


# -- batch ------------------------------------------------------------------------------------


def by_prompt(request: httpx.Request) -> httpx.Response:
    """An invalid answer to any conversation whose first message says "bad", else GOOD."""
    messages = json.loads(request.content)["messages"]
    bad = "bad" in messages[0]["content"]
    return httpx.Response(200, json=openai_body(json.dumps(BAD if bad else GOOD)))


def batch_client(cls: Any) -> Any:
    deployment = mm.Deployment(model="m", provider="openai", api_key=KEY)
    return cls(deployments=[deployment], transport=httpx.MockTransport(by_prompt))


BATCH = [
    "good",
    "bad",
    {"prompt": "good too", "max_tokens": 50},
    {"prompt": "schema dict", "response_format": {"type": "json_object"}},
]


def check_batch(results: list[Any]) -> None:
    first, failed, third, fourth = results
    assert first.parsed == third.parsed == Person.model_validate(GOOD)
    assert isinstance(failed, errors.StructuredOutputError)
    assert failed.raw_text == json.dumps(BAD)
    assert fourth.parsed == GOOD  # the item's own format wins: plain JSON


def test_batch_with_a_pydantic_response_format() -> None:
    with batch_client(mm.Client) as c:
        check_batch(c.batch(BATCH, response_format=Person))


@pytest.mark.anyio
async def test_async_batch_with_a_pydantic_response_format() -> None:
    async with batch_client(mm.AsyncClient) as c:
        check_batch(await c.batch(BATCH, response_format=Person, concurrency=2))


# -- the client's default number of repairs ---------------------------------------------------


def check_client_default(provider: Provider, retries: int) -> None:
    assert len(provider.bodies) == retries + 1 + 2  # the client's default, then the call's 1


@pytest.mark.parametrize("retries", [0, 2])
def test_the_clients_structured_retries_is_the_default(retries: int) -> None:
    provider = Provider(openai_body(json.dumps(BAD)))
    with make(mm.Client, provider, structured_retries=retries) as c:
        assert c.config.structured_retries == retries
        with pytest.raises(errors.StructuredOutputError):
            c.query("who?", model="m", response_format=Person)
        with pytest.raises(errors.StructuredOutputError):
            c.query("who?", model="m", response_format=Person, structured_retries=1)
    check_client_default(provider, retries)


@pytest.mark.anyio
@pytest.mark.parametrize("retries", [0, 2])
async def test_async_the_clients_structured_retries_is_the_default(retries: int) -> None:
    provider = Provider(openai_body(json.dumps(BAD)))
    async with make(mm.AsyncClient, provider, structured_retries=retries) as c:
        with pytest.raises(errors.StructuredOutputError):
            await c.query("who?", model="m", response_format=Person)
        with pytest.raises(errors.StructuredOutputError):
            await c.query("who?", model="m", response_format=Person, structured_retries=1)
    check_client_default(provider, retries)


def test_a_negative_structured_retries_option_is_a_config_error() -> None:
    with pytest.raises(errors.ConfigError, match="structured_retries"):
        make(mm.Client, Provider(openai_body("{}")), structured_retries=-1)


@pytest.mark.anyio
async def test_async_auto_considers_only_models_with_structured_output() -> None:
    provider = Provider(openai_body(json.dumps(GOOD)))
    deployments = [
        mm.Deployment(model="gpt-4o-mini", provider="openai", api_key=KEY),
        mm.Deployment(model="deepseek-chat", provider="deepseek", api_key=KEY),
    ]
    async with mm.AsyncClient(
        deployments=deployments, transport=httpx.MockTransport(provider)
    ) as c:
        for _ in range(4):
            r = await c.query("who?", model="auto", response_format=Person)
            assert r.deployment == "openai/gpt-4o-mini" and r.parsed is not None
            assert "structured_output" in r.trace.excluded["deepseek/deepseek-chat"]
