"""Structured outputs per provider over the mock server (real sockets, the real wire formats),
on ``Client`` and ``AsyncClient`` (asyncio and trio): where the schema goes in each request and
what strict mode changes, the parsed object, refusals, an invalid answer repaired with its
errors and then a typed error, a filtered answer, the call's deadline over the repairs, and a
structured stream whose text is the answer whichever provider serves it."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from pydantic import BaseModel, Field

import multimodel as mm
from multimodel import errors
from multimodel.testing import Behavior, MockDeployment, MockProviderServer

pytestmark = pytest.mark.filterwarnings("ignore::multimodel.errors.PricingWarning")

FORMATS = ("openai", "anthropic", "gemini")
KEYS = {"openai": "sk-test-wire-0123456789", "anthropic": "sk-ant-test-0123456789"}
KEYS["gemini"] = "AIza-test-0123456789"
REFUSAL = "I can't help with that."


class Address(BaseModel):
    city: str
    zip: str | None = None


class Person(BaseModel):
    name: str = Field(min_length=1)
    age: int
    address: Address
    tags: list[str] = []


GOOD = {"name": "Ada", "age": 36, "address": {"city": "London", "zip": None}, "tags": ["x"]}
BAD = {"name": "Ada", "age": "old", "address": {"city": "London"}}


def answering(fmt: str, answer: Any, **kw: Any) -> Behavior:
    """The answer as each provider gives it to a structured request: Anthropic as the forced
    tool's input, the others as JSON text."""
    if fmt == "anthropic":
        return Behavior(tool_calls=[("Person", answer)], **kw)
    return Behavior(text=json.dumps(answer), **kw)


def server(fmt: str, behavior: Behavior) -> MockProviderServer:
    return MockProviderServer({"d": MockDeployment(format=fmt, behavior=behavior)})  # type: ignore[arg-type]


def client(cls: Any, srv: MockProviderServer, fmt: str, **kw: Any) -> Any:
    deployment = mm.Deployment(
        model="m", provider=fmt, api_key=KEYS[fmt], base_url=srv.base_url("d"), name="d"
    )
    return cls(deployments=[deployment], **kw)


def body(srv: MockProviderServer, index: int = 0) -> dict[str, Any]:
    recorded = srv.requests("d")[index].body
    assert isinstance(recorded, dict)
    return recorded


def turns(fmt: str, sent: dict[str, Any]) -> list[tuple[str, str]]:
    """The conversation of a request body as (role, text) pairs, whatever the wire format."""
    out: list[tuple[str, str]] = []
    for turn in sent["contents" if fmt == "gemini" else "messages"]:
        content = turn.get("parts") if fmt == "gemini" else turn["content"]
        if isinstance(content, str):
            out.append((turn["role"], content))
        else:
            out.append((turn["role"], "".join(p.get("text", "") for p in content)))
    return out


def check_request(fmt: str, sent: dict[str, Any]) -> None:
    """Where the schema goes, and how it is adjusted, for each provider."""
    if fmt == "openai":
        spec = sent["response_format"]["json_schema"]
        assert (sent["response_format"]["type"], spec["name"], spec["strict"]) == (
            "json_schema",
            "Person",
            True,
        )
        schema = spec["schema"]
        # strict mode: every object closed, every property required, unsupported keywords gone
        assert schema["additionalProperties"] is False
        assert schema["required"] == ["name", "age", "address", "tags"]
        assert "minLength" not in schema["properties"]["name"]
        assert "default" not in schema["properties"]["tags"]
        address = schema["$defs"]["Address"]
        assert (address["additionalProperties"], address["required"]) == (False, ["city", "zip"])
    elif fmt == "anthropic":
        assert sent["tool_choice"] == {"type": "tool", "name": "Person"}
        (tool,) = sent["tools"]
        assert (tool["name"], tool["input_schema"]) == ("Person", Person.model_json_schema())
    else:
        config = sent["generationConfig"]
        assert config["responseMimeType"] == "application/json"
        schema = config["responseJsonSchema"]
        text = json.dumps(schema)
        assert "$ref" not in text and "$defs" not in text and '"default"' not in text
        assert schema["properties"]["address"]["properties"]["city"]["type"] == "string"
        assert schema["properties"]["name"]["minLength"] == 1  # in Gemini's subset: kept


# -- the parsed object and the request --------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_schema_goes_where_each_provider_enforces_it(fmt: str) -> None:
    with server(fmt, answering(fmt, GOOD)) as srv, client(mm.Client, srv, fmt) as c:
        r = c.query("who?", model="m", response_format=Person)
        check_request(fmt, body(srv))
    assert r.parsed == Person.model_validate(GOOD)
    assert json.loads(r.text) == GOOD and r.tool_calls == [] and r.finish_reason == "stop"


@pytest.mark.anyio
@pytest.mark.parametrize("fmt", FORMATS)
async def test_async_the_schema_goes_where_each_provider_enforces_it(fmt: str) -> None:
    with server(fmt, answering(fmt, GOOD)) as srv:
        async with client(mm.AsyncClient, srv, fmt) as c:
            r = await c.query("who?", model="m", response_format=Person)
            parsed = await c.chat.completions.parse(
                model="m", messages=[{"role": "user", "content": "who?"}], response_format=Person
            )
        check_request(fmt, body(srv))
        check_request(fmt, body(srv, 1))
    assert r.parsed == parsed.choices[0].message.parsed == Person.model_validate(GOOD)


# -- refusals ---------------------------------------------------------------------------------


def check_refusal(fmt: str, outcome: Any, srv: MockProviderServer) -> None:
    assert len(srv.requests("d")) == 1  # never asked again
    if fmt == "gemini":  # no refusal on Gemini's wire: a blocked answer
        assert isinstance(outcome, errors.ContentFiltered)
        return
    assert not isinstance(outcome, BaseException)
    assert (outcome.parsed, outcome.refusal, outcome.finish_reason) == (None, REFUSAL, "refusal")


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_refusal_is_not_a_validation_error(fmt: str) -> None:
    with server(fmt, Behavior(refusal=REFUSAL)) as srv, client(mm.Client, srv, fmt) as c:
        try:
            outcome: Any = c.query("who?", model="m", response_format=Person)
        except errors.MultimodelError as exc:
            outcome = exc
        check_refusal(fmt, outcome, srv)


@pytest.mark.anyio
@pytest.mark.parametrize("fmt", FORMATS)
async def test_async_a_refusal_is_not_a_validation_error(fmt: str) -> None:
    with server(fmt, Behavior(refusal=REFUSAL)) as srv:
        async with client(mm.AsyncClient, srv, fmt) as c:
            try:
                outcome: Any = await c.query("who?", model="m", response_format=Person)
            except errors.MultimodelError as exc:
                outcome = exc
        check_refusal(fmt, outcome, srv)


# -- invalid answers: repaired with the errors fed back, then a typed error --------------------


def check_repairs(fmt: str, error: errors.StructuredOutputError, srv: MockProviderServer) -> None:
    assert json.loads(error.raw_text) == BAD
    assert {tuple(e["loc"]) for e in error.errors} == {("age",)}
    assert error.response is not None and error.response.deployment == "d"
    assert len(srv.requests("d")) == 3  # the answer, then two repairs
    first, second, third = (turns(fmt, body(srv, i)) for i in range(3))
    # each repair is the conversation so far, the invalid answer, and its errors
    assert second[: len(first)] == first
    assert second[-2][0] in ("assistant", "model") and json.loads(second[-2][1]) == BAD
    assert second[-1][0] == "user" and "age" in second[-1][1]
    assert len(third) == len(second) + 2
    for i in range(3):
        check_request(fmt, body(srv, i))  # the schema goes with every repair


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_invalid_answer_is_repaired_then_a_typed_error(fmt: str) -> None:
    with server(fmt, answering(fmt, BAD)) as srv, client(mm.Client, srv, fmt) as c:
        with pytest.raises(errors.StructuredOutputError) as info:
            c.query("who?", model="m", response_format=Person, structured_retries=2)
        check_repairs(fmt, info.value, srv)


@pytest.mark.anyio
@pytest.mark.parametrize("fmt", FORMATS)
async def test_async_an_invalid_answer_is_repaired_then_a_typed_error(fmt: str) -> None:
    with server(fmt, answering(fmt, BAD)) as srv:
        async with client(mm.AsyncClient, srv, fmt) as c:
            with pytest.raises(errors.StructuredOutputError) as info:
                await c.query("who?", model="m", response_format=Person, structured_retries=2)
        check_repairs(fmt, info.value, srv)


@pytest.mark.parametrize("fmt", ["openai", "gemini"])
def test_a_filtered_answer_is_content_filtered_not_repaired(fmt: str) -> None:
    behavior = Behavior(text='{"name": "A', finish_reason="content_filter")
    with server(fmt, behavior) as srv, client(mm.Client, srv, fmt) as c:
        with pytest.raises(errors.ContentFiltered) as info:
            c.query("who?", model="m", response_format=Person, structured_retries=3)
        assert len(srv.requests("d")) == 1
    assert (info.value.deployment, info.value.code) == ("d", "content_filter")


@pytest.mark.anyio
async def test_async_a_filtered_stream_ends_content_filtered() -> None:
    behavior = Behavior(text='{"name": "A', finish_reason="content_filter", chunks=2)
    with server("openai", behavior) as srv:
        async with client(mm.AsyncClient, srv, "openai") as c:
            with pytest.raises(errors.ContentFiltered):
                async with c.stream("who?", model="m", response_format=Person) as stream:
                    async for _ in stream:
                        pass


# -- free-form objects: not strict ------------------------------------------------------------


class Inventory(BaseModel):
    owner: str
    counts: dict[str, int]


def test_a_dict_field_is_sent_without_strict_mode() -> None:
    """Strict mode closes every object: a ``dict`` field would only ever be ``{}``. Such a
    schema goes as given with ``strict: false``, and the answer keeps its entries."""
    answer = {"owner": "Ada", "counts": {"apples": 3, "pears": 1}}
    with (
        server("openai", answering("openai", answer)) as srv,
        client(mm.Client, srv, "openai") as c,
    ):
        r = c.query("stock?", model="m", response_format=Inventory)
        spec = body(srv)["response_format"]["json_schema"]
    assert r.parsed == Inventory.model_validate(answer)
    assert spec["strict"] is False
    assert spec["schema"] == Inventory.model_json_schema()
    assert spec["schema"]["properties"]["counts"]["additionalProperties"] == {"type": "integer"}


# -- the call's deadline bounds the repairs ---------------------------------------------------

SLOW = 0.45  # each answer; the third starts 0.9 s in, with 0.1 s of the deadline left
DEADLINE = 1.0


def check_on_time(info: pytest.ExceptionInfo[Any], elapsed: float, srv: MockProviderServer) -> None:
    # A fresh deadline per repair ran the third answer to 1.35 s and raised the invalid answer.
    assert elapsed < DEADLINE + 0.3
    assert isinstance(info.value, errors.AllAttemptsFailed)
    assert isinstance(info.value.__context__, errors.StructuredOutputError)
    # The first answer and at least one repair were asked for (a third, when the machine is
    # quick enough to start it before the deadline: how many fit is timing, not the rule).
    assert len(srv.requests("d")) in (2, 3)


def test_repairs_end_within_the_calls_deadline() -> None:
    behavior = answering("openai", BAD, latency=SLOW)
    with (
        server("openai", behavior) as srv,
        client(mm.Client, srv, "openai", deadline=DEADLINE) as c,
    ):
        started = time.monotonic()
        with pytest.raises(errors.MultimodelError) as info:
            c.query("who?", model="m", response_format=Person, structured_retries=5)
        check_on_time(info, time.monotonic() - started, srv)


@pytest.mark.anyio
async def test_async_repairs_end_within_the_calls_deadline() -> None:
    behavior = answering("openai", BAD, latency=SLOW)
    with server("openai", behavior) as srv:
        async with client(mm.AsyncClient, srv, "openai", deadline=DEADLINE) as c:
            started = time.monotonic()
            with pytest.raises(errors.MultimodelError) as info:
                await c.query("who?", model="m", response_format=Person, structured_retries=5)
            check_on_time(info, time.monotonic() - started, srv)


# -- streams: the answer's text streams on every provider -------------------------------------


def check_stream(fmt: str, chunks: list[mm.ChatChunk], final: mm.ChatResponse) -> None:
    assert final.parsed == Person.model_validate(GOOD)
    streamed = "".join(c.text for c in chunks)
    assert json.loads(streamed) == GOOD and streamed == final.text
    assert len([c for c in chunks if c.text]) > 1  # as it came, not at the end
    # Anthropic's forced answer tool is not a tool call of the caller's
    assert not any(c.tool_calls for c in chunks) and final.tool_calls == []
    assert final.finish_reason == "stop"


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_structured_stream_streams_the_answer_as_text(fmt: str) -> None:
    with server(fmt, answering(fmt, GOOD, chunks=4)) as srv, client(mm.Client, srv, fmt) as c:
        with c.stream("who?", model="m", response_format=Person) as stream:
            chunks = list(stream)
        assert stream.response is not None
        check_stream(fmt, chunks, stream.response)


@pytest.mark.anyio
@pytest.mark.parametrize("fmt", FORMATS)
async def test_async_a_structured_stream_streams_the_answer_as_text(fmt: str) -> None:
    with server(fmt, answering(fmt, GOOD, chunks=4)) as srv:
        async with client(mm.AsyncClient, srv, fmt) as c:
            async with c.stream("who?", model="m", response_format=Person) as stream:
                chunks = [chunk async for chunk in stream]
            final = await stream.get_final_response()
        check_stream(fmt, chunks, final)


def test_a_cached_structured_answer_replays_as_text() -> None:
    """An Anthropic answer cached by ``query`` (the forced tool call as it came) replays to a
    stream as the same text a live stream gives."""
    with server("anthropic", answering("anthropic", GOOD)) as srv:
        with client(mm.Client, srv, "anthropic", cache=True) as c:
            first = c.query("who?", model="m", response_format=Person, temperature=0)
            with c.stream("who?", model="m", response_format=Person, temperature=0) as stream:
                chunks = list(stream)
        assert len(srv.requests("d")) == 1
    assert stream.response is not None and stream.response.parsed == first.parsed
    assert "".join(c.text for c in chunks) == first.text
    assert not any(c.tool_calls for c in chunks)
