"""A stream's repeated text chunk read by its shape (``providers/_shape.py``).

Every stream test decodes through the shape once it is learned; these check that what it
gives is exactly what the full parse gives, for any text, with and without OpenAI's
``obfuscation`` padding, and for every way an event can differ from the learned one. The
reference decodes each event with a decoder of its own, which parses it in full (a decoder
reads by shape only the events after the one it learned the shape from).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from multimodel.config import Deployment, resolve_endpoints
from multimodel.errors import MalformedResponse, ProviderError
from multimodel.providers._openai_stream import OpenAIStreamDecoder
from multimodel.providers.anthropic import AnthropicAdapter
from multimodel.providers.openai import OpenAIAdapter
from multimodel.providers.sse import ServerSentEvent
from multimodel.types import ChatChunk

ADAPTER = OpenAIAdapter()
ENDPOINT = resolve_endpoints(
    [Deployment(model="m", provider="openai", provider_model="gpt-4o-mini")],
    env={"OPENAI_API_KEY": "sk-test-shape"},
)[0]
COMPACT = (",", ":")


def openai_decoder() -> OpenAIStreamDecoder:
    decoder = ADAPTER.stream_decoder(ENDPOINT)
    assert isinstance(decoder, OpenAIStreamDecoder)
    return decoder


def event(
    content: str | None = None,
    *,
    created: int = 1700000000,
    finish: str | None = None,
    pad: str | None = None,
    separators: tuple[str, str] = COMPACT,
    ascii_only: bool = True,
    **delta: Any,
) -> str:
    """An OpenAI chat.completion.chunk as the API writes it (keys in its order)."""
    if content is not None:
        delta = {"content": content, **delta}
    obj: dict[str, Any] = {
        "id": "chatcmpl-abc",
        "object": "chat.completion.chunk",
        "created": created,
        "model": "gpt-4o-mini",
        "system_fingerprint": "fp_1",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        "usage": None,
    }
    if pad is not None:
        obj["obfuscation"] = pad
    return json.dumps(obj, separators=separators, ensure_ascii=ascii_only)


def read(decoder: Any, data: str, name: str | None = None) -> list[ChatChunk]:
    """One network read holding one event."""
    head = f"event: {name}\n" if name else ""
    return list(decoder.feed(f"{head}data: {data}\n\n".encode()))


def decoded(events: list[str]) -> list[ChatChunk]:
    """One decoder over the whole stream, an event per read (the shape is learned and used)."""
    decoder = openai_decoder()
    return [chunk for data in events for chunk in read(decoder, data)]


def reference(events: list[str]) -> list[ChatChunk]:
    """Each event parsed in full by a decoder of its own."""
    out = []
    for data in events:
        chunk = openai_decoder().on_event(ServerSentEvent(data))
        if chunk is not None:
            out.append(chunk)
    return out


def assert_same(got: list[ChatChunk], expected: list[ChatChunk]) -> None:
    assert got == expected
    for a, b in zip(got, expected, strict=True):
        assert a.model_fields_set == b.model_fields_set
        assert repr(a) == repr(b)
        assert list(a.__dict__) == list(b.__dict__)


def test_a_plain_stream_is_read_by_shape_and_gives_what_the_full_parse_gives() -> None:
    events = [
        event("", role="assistant"),
        *(event(f"w{i} ") for i in range(20)),
        event(finish="stop"),
    ]
    decoder = openai_decoder()
    got = [c for e in events for c in read(decoder, e)]
    assert decoder._shapes.shape is not None  # the fast path ran (else this test proves nothing)
    assert_same(got, reference(events))
    assert "".join(c.text for c in got) == "".join(f"w{i} " for i in range(20))
    assert got[-1].finish_reason == "stop"


def test_nothing_is_learned_in_the_read_that_brings_the_first_text() -> None:
    # Learning takes tens of microseconds: not before the first token reaches the caller.
    decoder = openai_decoder()
    burst = "".join(f"data: {event(t)}\n\n" for t in ("a", "b", "c", "d")).encode()
    first = list(decoder.feed(burst))
    assert [c.text for c in first] == ["a", "b", "c", "d"]
    assert decoder._shapes.shape is None
    assert [c.text for c in read(decoder, event("e"))] == ["e"]
    assert decoder._shapes.shape is not None  # learned from the next read
    assert [c.text for c in read(decoder, event("f"))] == ["f"]


def test_chunks_read_by_shape_hold_lists_of_their_own() -> None:
    got = decoded([event("a"), event("b"), event("c")])
    assert len({id(c.tool_calls) for c in got}) == 3


def test_openai_obfuscation_padding_of_any_length_is_read_by_shape() -> None:
    events = [event(f"t{i}", pad="x" * (i % 7 + 1)) for i in range(10)]
    decoder = openai_decoder()
    got = [c for e in events for c in read(decoder, e)]
    assert decoder._shapes.shape is not None
    assert_same(got, reference(events))


@pytest.mark.parametrize(
    "later",
    [
        event("q", created=1700000001),  # the head changed
        event("q", finish="length"),  # the tail changed
        event("q", refusal=None),  # another member after the content
        event("q", pad="zz"),  # padding the learned events did not have
        event("q", separators=(", ", ": ")),  # spaces: the marker is not there
        event(None, role="assistant"),  # no content at all
        '{"id":"chatcmpl-abc","choices":[{"index":0,"delta":{"content":"q","content":"r"}}]}',
        event('"delta":{"content":"'),  # the marker inside the text
        event("é ü \n \t \\ \u2028 \U0001f600"),  # escapes
        event("é ü \U0001f600", ascii_only=False),
        event(""),  # empty text: no chunk
    ],
)
def test_an_event_unlike_the_learned_one_is_read_as_the_full_parse_reads_it(later: str) -> None:
    events = [event("a"), event("b"), later, event("c")]
    assert_same(decoded(events), reference(events))


def test_a_duplicate_content_key_is_never_learned_as_the_hole() -> None:
    # JSON's last duplicate wins: "a" then "a" would make a shape whose hole is the first.
    dup = '{"id":"x","model":"m","choices":[{"index":0,"delta":{"content":"%s","content":"a"}}]}'
    events = [dup % "a", dup % "b", dup % "c"]
    got = decoded(events)
    assert [c.text for c in got] == ["a", "a", "a"]
    assert_same(got, reference(events))


def test_bad_json_in_the_hole_is_malformed_as_before() -> None:
    decoder = openai_decoder()
    for data in (event("a"), event("b")):
        read(decoder, data)
    assert decoder._shapes.shape is not None
    bad = event("c").replace('"content":"c"', '"content":"c\x01"')  # a raw control character
    with pytest.raises(MalformedResponse, match="not valid JSON"):
        read(decoder, bad)


_texts = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=12)


@st.composite
def _streams(draw: st.DrawFn) -> list[str]:
    ascii_only = draw(st.booleans())
    padded = draw(st.booleans())
    spaced = draw(st.integers(0, 9)) == 0
    out = [event("", role="assistant", ascii_only=ascii_only)]
    created = 1700000000
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["text"] * 6 + ["created", "finish", "other"]))
        if kind == "created":
            created += 1
        pad = draw(st.text("abcXYZ019", min_size=1, max_size=9)) if padded else None
        out.append(
            event(
                draw(_texts),
                created=created,
                finish="stop" if kind == "finish" else None,
                pad=pad,
                separators=(", ", ": ") if spaced else COMPACT,
                ascii_only=ascii_only,
                **({"refusal": None} if kind == "other" else {}),
            )
        )
    return out


@given(events=_streams())
def test_any_stream_read_by_shape_equals_the_full_parse(events: list[str]) -> None:
    assert_same(decoded(events), reference(events))


# == Anthropic: text deltas ======================================================================

ANTHROPIC = AnthropicAdapter()
CLAUDE = resolve_endpoints(
    [Deployment(model="c", provider="anthropic", provider_model="claude-sonnet-4-5")],
    env={"ANTHROPIC_API_KEY": "sk-ant-test-shape"},
)[0]


def message_start(ident: str = "msg_1") -> tuple[str, str]:
    message = {"id": ident, "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
               "content": [], "usage": {"input_tokens": 9, "output_tokens": 1}}  # fmt: skip
    return "message_start", json.dumps({"type": "message_start", "message": message})


def text_delta(text: str, index: int = 0) -> tuple[str, str]:
    body = {"type": "content_block_delta", "index": index,
            "delta": {"type": "text_delta", "text": text}}  # fmt: skip
    return "content_block_delta", json.dumps(body, separators=COMPACT, ensure_ascii=False)


def claude_stream(texts: list[str]) -> list[tuple[str, str]]:
    start = {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    end = {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
           "usage": {"output_tokens": 5}}  # fmt: skip
    return [
        message_start(),
        ("content_block_start", json.dumps(start)),
        *(text_delta(t) for t in texts),
        ("content_block_stop", '{"type":"content_block_stop","index":0}'),
        ("message_delta", json.dumps(end)),
        ("message_stop", '{"type":"message_stop"}'),
    ]


def claude_decoded(events: list[tuple[str, str]], *, spaced: bool = False) -> list[ChatChunk]:
    """One decoder over the stream; ``spaced``: each event re-written with spaces after the
    colons, which no shape matches (every event parsed in full: the reference)."""
    decoder = ANTHROPIC.stream_decoder(CLAUDE)
    out = []
    for name, data in events:
        if spaced:
            data = json.dumps(json.loads(data), separators=(", ", ": "))
        out += read(decoder, data, name)
    return out


def test_anthropic_text_deltas_are_read_by_shape_as_the_full_parse_reads_them() -> None:
    events = claude_stream([f"t{i} " for i in range(12)])
    decoder = ANTHROPIC.stream_decoder(CLAUDE)
    for name, data in events:
        read(decoder, data, name)
    assert decoder._shapes.shape is not None  # the fast path ran
    got = claude_decoded(events)
    assert_same(got, claude_decoded(events, spaced=True))
    assert [c.id for c in got if c.text] == ["msg_1"] * 12


def test_anthropic_a_new_message_start_drops_the_shape() -> None:
    events = [*claude_stream(["a", "b", "c"])[:-2], message_start("msg_2"), text_delta("d")]
    got = claude_decoded(events)
    assert got[-1].text == "d" and got[-1].id == "msg_2"
    assert_same(got, claude_decoded(events, spaced=True))


def test_anthropic_an_error_event_with_a_learned_body_is_still_an_error() -> None:
    decoder = ANTHROPIC.stream_decoder(CLAUDE)
    for name, data in claude_stream(["a", "b", "c"])[:5]:
        read(decoder, data, name)
    assert decoder._shapes.shape is not None
    with pytest.raises(ProviderError):
        read(decoder, text_delta("d")[1], "error")


@given(texts=st.lists(_texts, min_size=1, max_size=12))
def test_any_anthropic_stream_read_by_shape_equals_the_full_parse(texts: list[str]) -> None:
    events = claude_stream(texts)
    assert_same(claude_decoded(events), claude_decoded(events, spaced=True))
