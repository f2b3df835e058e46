"""Input limits: each limit, the field it names, and the message format."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from multimodel.errors import ConfigError, InvalidRequestError
from multimodel.providers.base import MAX_BODY_BYTES
from multimodel.security import DEFAULT_LIMITS, InputLimits, check_batch, check_request
from multimodel.security.limits import _upper_bound, request_size
from multimodel.types import ChatRequest, ImagePart, Message, TextPart, Tool, ToolCall


def req(*messages: Message, tools: list[Tool] | None = None) -> ChatRequest:
    return ChatRequest(
        model="gpt-4o",
        messages=list(messages) or [Message(role="user", content="hi")],
        tools=tools,
    )


def user(content: Any) -> Message:
    return Message(role="user", content=content)


def test_defaults() -> None:
    limits = InputLimits()
    assert limits == DEFAULT_LIMITS
    assert (
        limits.max_message_chars,
        limits.max_messages,
        limits.max_batch_size,
        limits.max_tool_argument_chars,
        limits.max_tools,
        limits.max_request_bytes,
    ) == (1_000_000, 1_000, 10_000, 100_000, 128, MAX_BODY_BYTES)
    with pytest.raises(dataclasses.FrozenInstanceError):
        limits.max_tools = 1  # type: ignore[misc]


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "10"])
def test_limits_must_be_positive_integers(bad: Any) -> None:
    with pytest.raises(ConfigError, match=r"InputLimits\.max_tools must be a positive integer"):
        InputLimits(max_tools=bad)


def test_a_normal_request_passes() -> None:
    check_request(req(Message(role="system", content="be brief"), user("hello")))


def test_message_chars_message_format() -> None:
    messages = [user("a"), Message(role="assistant", content="b"), user("c")]
    messages.append(user("x" * 1_200_000))
    with pytest.raises(InvalidRequestError) as info:
        check_request(req(*messages))
    assert str(info.value) == (
        "messages[3].content: 1,200,000 characters exceeds the 1,000,000 limit "
        "(InputLimits.max_message_chars)"
    )
    assert info.value.field == "messages[3].content"


def test_message_chars_boundary_and_parts_are_summed() -> None:
    limits = InputLimits(max_message_chars=10)
    check_request(req(user("x" * 10)), limits)
    check_request(req(user([TextPart(text="x" * 5), TextPart(text="y" * 5)])), limits)
    with pytest.raises(InvalidRequestError) as info:
        check_request(
            req(user("ok"), user([TextPart(text="x" * 6), TextPart(text="y" * 5)])), limits
        )
    assert info.value.field == "messages[1].content"
    assert "11 characters exceeds the 10 limit" in str(info.value)


def test_max_messages() -> None:
    limits = InputLimits(max_messages=3)
    check_request(req(*[user("m")] * 3), limits)
    with pytest.raises(InvalidRequestError) as info:
        check_request(req(*[user("m")] * 4), limits)
    assert info.value.field == "messages"
    assert str(info.value) == "messages: 4 messages exceeds the 3 limit (InputLimits.max_messages)"


def test_tool_call_arguments() -> None:
    call = ToolCall(id="c1", name="f", arguments='{"q": "' + "x" * 200 + '"}')
    small = ToolCall(id="c0", name="f", arguments="{}")
    request = req(
        user("go"),
        Message(role="assistant", tool_calls=[small, call]),
        Message(role="tool", tool_call_id="c1", content="done"),
    )
    check_request(request)
    with pytest.raises(InvalidRequestError) as info:
        check_request(request, InputLimits(max_tool_argument_chars=100))
    assert info.value.field == "messages[1].tool_calls[1].arguments"
    assert "(InputLimits.max_tool_argument_chars)" in str(info.value)
    assert str(info.value).startswith(
        "messages[1].tool_calls[1].arguments: 209 characters exceeds the 100 limit"
    )


def test_max_tools() -> None:
    tools = [Tool(name=f"t{i}") for i in range(5)]
    check_request(req(tools=tools), InputLimits(max_tools=5))
    with pytest.raises(InvalidRequestError) as info:
        check_request(req(tools=tools), InputLimits(max_tools=4))
    assert info.value.field == "tools"
    assert str(info.value) == "tools: 5 tools exceeds the 4 limit (InputLimits.max_tools)"


def test_max_request_bytes_counts_the_serialized_request() -> None:
    request = req(user("hello"), tools=[Tool(name="search", description="d" * 500)])
    size = request_size(request)
    assert size > 500
    check_request(request, InputLimits(max_request_bytes=size))
    with pytest.raises(InvalidRequestError) as info:
        check_request(request, InputLimits(max_request_bytes=size - 1))
    assert info.value.field == "request"
    assert f"request: {size:,} bytes exceeds the {size - 1:,} limit" in str(info.value)
    assert "(InputLimits.max_request_bytes)" in str(info.value)


def test_images_count_towards_bytes_not_message_chars() -> None:
    image = ImagePart(data="A" * 5_000, media_type="image/png")
    request = req(user([TextPart(text="what is this?"), image]))
    check_request(request, InputLimits(max_message_chars=20))
    with pytest.raises(InvalidRequestError, match="max_request_bytes") as info:
        check_request(request, InputLimits(max_request_bytes=4_000))
    assert info.value.field == "request"


def test_multibyte_text_is_measured_in_bytes() -> None:
    request = req(user("é" * 1_000))  # 2,000 bytes of UTF-8
    with pytest.raises(InvalidRequestError, match="max_request_bytes"):
        check_request(request, InputLimits(max_request_bytes=1_500))


def test_huge_text_is_refused_without_serializing(monkeypatch: pytest.MonkeyPatch) -> None:
    import multimodel.security.limits as limits_mod

    def boom(request: ChatRequest) -> int:
        raise AssertionError("serialized")

    monkeypatch.setattr(limits_mod, "request_size", boom)
    with pytest.raises(InvalidRequestError) as info:
        check_request(req(user("x" * 2_000)), InputLimits(max_request_bytes=1_000))
    assert info.value.field == "request"


def test_check_request_is_an_invalid_request_error_and_value_error() -> None:
    with pytest.raises(ValueError):
        check_request(req(user("xx")), InputLimits(max_message_chars=1))


def test_check_batch() -> None:
    check_batch(0)
    check_batch(10_000)
    with pytest.raises(InvalidRequestError) as info:
        check_batch(10_001)
    assert info.value.field == "batch"
    assert str(info.value) == (
        "batch: 10,001 requests exceeds the 10,000 limit (InputLimits.max_batch_size)"
    )
    check_batch(5, InputLimits(max_batch_size=5))
    with pytest.raises(InvalidRequestError, match="max_batch_size"):
        check_batch(6, InputLimits(max_batch_size=5))
    with pytest.raises(InvalidRequestError, match=">= 0") as info:
        check_batch(-1)
    assert info.value.field == "batch"


_text = st.text(max_size=40)


@given(
    contents=st.lists(_text, min_size=1, max_size=5),
    name=st.none() | _text.filter(bool),
    stop=st.none() | st.lists(_text, max_size=3),
    tags=st.none() | st.lists(_text, max_size=3),
    user_id=st.none() | _text,
    calls=st.lists(st.tuples(_text.filter(bool), _text), max_size=2),
)
def test_the_cheap_size_bound_is_never_below_the_real_size(
    contents: list[str],
    name: str | None,
    stop: list[str] | None,
    tags: list[str] | None,
    user_id: str | None,
    calls: list[tuple[str, str]],
) -> None:
    # check_request skips serializing when this bound fits; it must never under-estimate.
    messages = [Message(role="user", content=c, name=name) for c in contents]
    if calls:
        tool_calls = [ToolCall(id=f"c{i}", name="f", arguments=a) for i, (_, a) in enumerate(calls)]
        messages.append(Message(role="assistant", content=None, tool_calls=tool_calls))
    request = ChatRequest(
        model="gpt-4o", messages=messages, stop=stop, tags=tags, user=user_id, max_tokens=5
    )
    text = sum(len(c) for c in contents) + sum(len(a) for _, a in calls)
    assert _upper_bound(request, text) >= request_size(request)
    check_request(request, InputLimits(max_request_bytes=request_size(request)))
    with pytest.raises(InvalidRequestError, match="max_request_bytes"):
        check_request(request, InputLimits(max_request_bytes=request_size(request) - 1))
