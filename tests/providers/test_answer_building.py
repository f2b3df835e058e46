"""Answers built without validation (``assistant_message``, ``chat_response``) and the common
request (``prompt_request``) are the objects the validating constructors build: same fields,
fields set, dump, equality and repr; values of another type go through validation (and its
errors) as before."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from decimal import Decimal
from typing import Any

import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from multimodel.types import ChatRequest, ChatResponse, Message, ToolCall, Usage
from multimodel.types._request import _prompt_request_works, prompt_request
from multimodel.types._response import (
    _same,
    _trusted,
    _trusted_works,
    assistant_message,
    chat_response,
)

CALL = ToolCall(id="c1", name="f", arguments='{"a":1}')


def same(expected: pydantic.BaseModel, got: pydantic.BaseModel) -> None:
    assert type(got) is type(expected)
    assert list(got.__dict__.items()) == list(expected.__dict__.items())
    assert [type(v) for v in got.__dict__.values()] == [type(v) for v in expected.__dict__.values()]
    assert got.__pydantic_fields_set__ == expected.__pydantic_fields_set__
    assert got.__pydantic_extra__ == expected.__pydantic_extra__
    assert got.__pydantic_private__ == expected.__pydantic_private__
    assert got.model_dump() == expected.model_dump()
    assert got.model_dump_json() == expected.model_dump_json()
    assert got.model_dump(exclude_unset=True) == expected.model_dump(exclude_unset=True)
    assert got == expected and repr(got) == repr(expected)


def validated_message(content: Any, calls: Any, refusal: Any = ...) -> Message:
    extra = {} if refusal is ... else {"refusal": refusal}
    return Message(
        role="assistant", content=content, name=None, tool_calls=calls, tool_call_id=None, **extra
    )


def test_the_layout_check_passes_on_this_pydantic() -> None:
    assert _trusted_works()


@pytest.mark.parametrize(
    ("content", "calls", "refusal"),
    [
        ("hello", None, None),
        ("", None, None),
        (None, [CALL], None),
        ("text and a call", [CALL, CALL], None),
        ("", None, "I cannot help with that"),
        ("hello", None, ...),  # Anthropic and Gemini leave refusal out of the call
        (None, [CALL], ...),
    ],
)
def test_assistant_message_is_the_validated_message(content: Any, calls: Any, refusal: Any) -> None:
    expected = validated_message(content, calls, refusal)
    got = assistant_message(content, calls, refusal)
    same(expected, got)
    # A model_copy with an update marks the field set, as on a validated message.
    same(expected.model_copy(update={"content": "x"}), got.model_copy(update={"content": "x"}))


def test_a_message_of_no_valid_shape_raises_as_validation_does() -> None:
    with pytest.raises(pydantic.ValidationError) as expected:
        validated_message(None, None, None)
    with pytest.raises(pydantic.ValidationError) as got:
        assistant_message(None, None, None)
    assert got.value.errors(include_context=False) == expected.value.errors(include_context=False)


@pytest.mark.parametrize(
    ("content", "calls", "refusal"),
    [
        (1, None, None),  # not a string: validation's error
        ("hi", [{"id": "c", "name": "f"}], None),  # a dict for a call: validated into one
        ("hi", None, 5),
    ],
)
def test_other_types_go_through_validation(content: Any, calls: Any, refusal: Any) -> None:
    try:
        expected: Message | pydantic.ValidationError = validated_message(content, calls, refusal)
    except pydantic.ValidationError as exc:
        expected = exc
    if isinstance(expected, pydantic.ValidationError):
        with pytest.raises(pydantic.ValidationError):
            assistant_message(content, calls, refusal)
    else:
        same(expected, assistant_message(content, calls, refusal))


def response_values(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "id": "chatcmpl-1",
        "message": validated_message("hello", None, None),
        "finish_reason": "stop",
        "raw_finish_reason": "stop",
        "usage": Usage(input_tokens=10, output_tokens=3),
        "model": "gpt-4o-mini",
        "provider": "openai",
        "deployment": "oai",
        "request_id": "req-1",
        "latency": 0.25,
        "ttft": None,
        "cost": Decimal("0.0000123"),
        "cost_breakdown": {"input": Decimal("0.00001")},
        "trace": None,
        "raw": {"id": "chatcmpl-1", "choices": []},
    }
    values.update(changes)
    return values


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"finish_reason": None, "raw_finish_reason": None, "request_id": None, "cost": None},
        {"ttft": 0.01, "finish_reason": "tool_calls", "raw_finish_reason": "tool_calls"},
        {"latency": 1, "ttft": 0},  # ints: validation makes them floats
        {"finish_reason": "bogus"},  # not a finish reason: validation's error
        {"id": 5},
        {"cost": 0.5},  # a float cost: validation makes it a Decimal
        {"message": {"role": "assistant", "content": "from a dict"}},
    ],
)
def test_chat_response_is_the_validated_response(changes: dict[str, Any]) -> None:
    values = response_values(**changes)
    try:
        expected: ChatResponse | pydantic.ValidationError = ChatResponse(**values)
    except pydantic.ValidationError as exc:
        expected = exc
    if isinstance(expected, pydantic.ValidationError):
        with pytest.raises(pydantic.ValidationError) as got:
            chat_response(**values)
        assert got.value.errors(include_context=False) == expected.errors(include_context=False)
        return
    got_response = chat_response(**values)
    same(expected, got_response)
    assert got_response.raw_body() is values["raw"]
    same(
        expected.model_copy(update={"cached": True}),
        got_response.model_copy(update={"cached": True}),
    )


@settings(max_examples=200, deadline=None)
@given(
    text=st.one_of(st.none(), st.text(max_size=20)),
    calls=st.one_of(st.none(), st.lists(st.just(CALL), min_size=1, max_size=2)),
    refusal=st.one_of(st.just(...), st.none(), st.text(max_size=10)),
    latency=st.one_of(st.floats(min_value=0, max_value=100), st.integers(0, 5)),
    ttft=st.one_of(st.none(), st.floats(min_value=0, max_value=1)),
    finish=st.sampled_from([None, "stop", "length", "tool_calls", "refusal", "other"]),
)
def test_any_answer_equals_its_validated_form(
    text: str | None,
    calls: list[ToolCall] | None,
    refusal: Any,
    latency: float,
    ttft: float | None,
    finish: Any,
) -> None:
    try:
        expected_message: Message | None = validated_message(text, calls, refusal)
    except pydantic.ValidationError:
        expected_message = None
    if expected_message is None:
        with pytest.raises(pydantic.ValidationError):
            assistant_message(text, calls, refusal)
        return
    message = assistant_message(text, calls, refusal)
    same(expected_message, message)
    values = response_values(message=message, latency=latency, ttft=ttft, finish_reason=finish)
    same(ChatResponse(**values), chat_response(**values))


# -- the common request ----------------------------------------------------------------------------

PROMPT_PARAMS = st.fixed_dictionaries(
    {},
    optional={
        "max_tokens": st.one_of(st.none(), st.integers(-2, 10**6), st.booleans()),
        "temperature": st.one_of(
            st.none(), st.floats(-1, 3), st.integers(0, 2), st.just(float("nan"))
        ),
        "top_p": st.one_of(st.none(), st.floats(-0.5, 1.5), st.just(1)),
        "seed": st.one_of(st.none(), st.integers(), st.just(1.5)),
        "user": st.one_of(st.none(), st.text(max_size=5), st.just(3)),
    },
)


@settings(max_examples=300, deadline=None)
@given(prompt=st.text(max_size=10), model=st.sampled_from(["m", ""]), params=PROMPT_PARAMS)
def test_a_prompt_request_is_the_validated_request_or_none(
    prompt: str, model: str, params: dict[str, Any]
) -> None:
    got = prompt_request(prompt, model, params)
    try:
        expected: ChatRequest | None = ChatRequest(
            messages=[{"role": "user", "content": prompt}], model=model, **params
        )
    except pydantic.ValidationError:
        expected = None
    if got is None:
        return  # the caller validates: whatever validation says stands
    assert expected is not None  # never a request that validation refuses
    same(expected, got)
    same(expected.messages[0], got.messages[0])


@pytest.mark.parametrize(
    ("prompt", "params"),
    [
        ("hi", {"max_tokens": True}),  # a bool is not an int here
        ("hi", {"max_tokens": 0}),
        ("hi", {"temperature": 1}),  # an int: validation makes it a float
        ("hi", {"temperature": float("nan")}),
        ("hi", {"top_p": 1.5}),
        ("hi", {"stop": "\n"}),  # a field with a validator of its own
        ("hi", {"tags": ["a"]}),
        ("", {}),
    ],
)
def test_other_requests_are_left_to_validation(prompt: str, params: dict[str, Any]) -> None:
    assert prompt_request(prompt, "m", params) is None


def test_the_common_request_is_built_without_validation() -> None:
    assert _prompt_request_works()
    request = prompt_request("hi", "m", {"max_tokens": 20, "temperature": 0.5})
    assert request is not None
    same(
        ChatRequest(
            messages=[{"role": "user", "content": "hi"}], model="m", max_tokens=20, temperature=0.5
        ),
        request,
    )


def test_the_layout_check_tells_a_different_layout() -> None:
    values: dict[str, Any] = {
        "role": "assistant",
        "content": "hi",
        "name": None,
        "tool_calls": None,
        "tool_call_id": None,
        "refusal": None,
    }
    fields = {"role", "content", "name", "tool_calls", "tool_call_id"}
    reference = Message.model_construct(set(fields), **values)
    assert _same(reference, Message.model_construct(set(fields), **values))
    assert not _same(reference, Message.model_construct(fields | {"refusal"}, **values))
    reordered = dict(reversed(list(values.items())))
    assert not _same(reference, _trusted(Message, reordered, fields))
    other = Message.model_construct(set(fields), **values)
    object.__setattr__(other, "__pydantic_private__", {})
    assert not _same(reference, other)


def test_a_plain_answer_builds_no_schema_of_the_answer_types() -> None:
    # A schema costs memory (~0.5 MiB for these four) and milliseconds at a client's first
    # request; a query with a prompt string and an ordinary answer needs none of them.
    code = textwrap.dedent("""
        import json, httpx
        import multimodel as mm
        from multimodel.types import ChatRequest, ChatResponse, Message, ToolCall, Usage
        from pydantic._internal._mock_val_ser import MockValSer

        def answer(request):
            return httpx.Response(200, json={
                "id": "r1", "object": "chat.completion", "model": "gpt-4o-mini",
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": "Hello."}}],
                "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}})

        http = httpx.Client(transport=httpx.MockTransport(answer))
        client = mm.Client(deployments=[mm.Deployment(model="gpt-4o-mini", provider="openai",
            api_key="sk-test", base_url="http://127.0.0.1:9/v1")], http_client=http)
        r = client.query("Say hello.", max_tokens=20)
        assert r.text == "Hello." and r.usage.input_tokens == 9, r
        built = [c.__name__ for c in (ChatRequest, ChatResponse, Message, ToolCall, Usage)
                 if not isinstance(c.__pydantic_validator__, MockValSer)]
        assert not built, built
        assert json.loads(r.model_dump_json())["usage"]["output_tokens"] == 2  # built on use
    """)
    subprocess.run([sys.executable, "-c", code], check=True)
