"""The incremental SSE decoder: framing, fields, chunk boundaries (WIRE.md §7.6)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from multimodel.providers.sse import ServerSentEvent, SSEDecoder


def decode(*chunks: bytes, close: bool = True) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    if close:
        events.extend(decoder.close())
    return events


def datas(events: list[ServerSentEvent]) -> list[str]:
    return [e.data for e in events]


def bytewise(raw: bytes) -> list[bytes]:
    return [raw[i : i + 1] for i in range(len(raw))]


# -- line endings ------------------------------------------------------------------------------


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
def test_line_endings(eol: str) -> None:
    raw = f"data: one{eol}{eol}data: two{eol}{eol}".encode()
    assert datas(decode(raw)) == ["one", "two"]
    assert datas(decode(*bytewise(raw))) == ["one", "two"]


def test_mixed_line_endings_in_one_stream() -> None:
    raw = b"data: a\r\n\r\ndata: b\n\ndata: c\r\rdata: d\r\n\n"
    assert datas(decode(raw)) == ["a", "b", "c", "d"]
    assert datas(decode(*bytewise(raw))) == ["a", "b", "c", "d"]


def test_crlf_split_between_chunks_is_one_line_ending() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    # The LF that completes the CRLF must not count as a second (blank) line.
    assert decoder.feed(b"\n") == []
    assert datas(decoder.feed(b"\r\n")) == ["a"]


def test_cr_at_chunk_end_followed_by_cr_is_a_blank_line() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert datas(decoder.feed(b"\rdata: b\r\n\r\n")) == ["a", "b"]


def test_cr_at_chunk_end_completes_the_line_immediately() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r\n\r") == [ServerSentEvent(data="a")]


def test_gemini_style_crlf_stream() -> None:
    raw = b'data: {"candidates": []}\r\n\r\ndata: {"usageMetadata": {}}\r\n\r\n'
    assert datas(decode(raw)) == ['{"candidates": []}', '{"usageMetadata": {}}']


# -- comments and blank lines -------------------------------------------------------------------


@pytest.mark.parametrize("comment", [b": keep-alive", b": OPENROUTER PROCESSING", b":", b":x"])
def test_comment_lines_are_skipped(comment: bytes) -> None:
    raw = comment + b"\n\n" + comment + b"\ndata: hi\n" + comment + b"\n\n"
    assert decode(raw) == [ServerSentEvent(data="hi")]


def test_blank_line_after_comment_dispatches_nothing() -> None:
    assert decode(b": keep-alive\n\n: keep-alive\n\n\n\n") == []


def test_blank_lines_alone_dispatch_nothing() -> None:
    assert decode(b"\n\n\r\n\r\r") == []


def test_event_name_without_data_is_dropped_and_reset() -> None:
    events = decode(b"event: ping\n\ndata: x\n\n")
    assert events == [ServerSentEvent(data="x", event="message")]


# -- fields -----------------------------------------------------------------------------------


def test_multiline_data_joined_with_lf() -> None:
    assert datas(decode(b"data: a\ndata: b\ndata:\ndata: c\n\n")) == ["a\nb\n\nc"]


def test_event_names() -> None:
    raw = (
        b"event: message_start\ndata: {}\n\n"
        b"data: unnamed\n\n"
        b"event: content_block_delta\ndata: {}\n\n"
    )
    assert [(e.event, e.data) for e in decode(raw)] == [
        ("message_start", "{}"),
        ("message", "unnamed"),
        ("content_block_delta", "{}"),
    ]


def test_id_persists_until_changed() -> None:
    events = decode(b"id: 1\ndata: a\n\ndata: b\n\nid: 7\ndata: c\n\nid\ndata: d\n\n")
    assert [e.id for e in events] == ["1", "1", "7", ""]


def test_id_with_nul_is_ignored() -> None:
    events = decode(b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n")
    assert [e.id for e in events] == ["1", "1"]


def test_id_without_data_applies_to_the_next_event() -> None:
    events = decode(b"id: 5\n\ndata: a\n\n")
    assert events == [ServerSentEvent(data="a", id="5")]


def test_retry_field() -> None:
    events = decode(b"retry: 3000\ndata: a\n\ndata: b\n\nretry: soon\ndata: c\n\n")
    assert [e.retry for e in events] == [3000, None, None]


def test_retry_without_data_rides_on_the_next_event() -> None:
    assert decode(b"retry: 10\n\ndata: a\n\ndata: b\n\n") == [
        ServerSentEvent(data="a", retry=10),
        ServerSentEvent(data="b"),
    ]


def test_data_without_space_after_colon() -> None:
    assert datas(decode(b"data:x\n\n")) == ["x"]


def test_only_one_leading_space_is_stripped() -> None:
    assert datas(decode(b"data:  two spaces\n\n")) == [" two spaces"]


def test_field_without_colon() -> None:
    # "data" alone is the field "data" with an empty value; other bare names are ignored.
    assert decode(b"data\n\n") == [ServerSentEvent(data="")]
    assert datas(decode(b"data\ndata: x\n\n")) == ["\nx"]
    assert decode(b"event\ndata: y\n\n") == [ServerSentEvent(data="y")]
    assert decode(b"bogus\n\n") == []


def test_unknown_fields_are_ignored() -> None:
    assert decode(b"foo: bar\ndata: x\nDATA: y\n\n") == [ServerSentEvent(data="x")]


def test_colon_in_value_is_kept() -> None:
    assert datas(decode(b'data: {"a": "b:c"}\n\n')) == ['{"a": "b:c"}']


def test_leading_byte_order_mark_is_ignored() -> None:
    raw = "\ufeffdata: a\n\n".encode()
    assert datas(decode(raw)) == ["a"]
    assert datas(decode(*bytewise(raw))) == ["a"]


# -- text decoding ------------------------------------------------------------------------------


def test_utf8_split_across_chunks() -> None:
    text = "data: héllo 世界 🎉\n\n"
    raw = text.encode()
    assert datas(decode(*bytewise(raw))) == ["héllo 世界 🎉"]
    emoji = "🎉".encode()
    assert datas(decode(b"data: " + emoji[:1], emoji[1:3], emoji[3:] + b"\n\n")) == ["🎉"]


@pytest.mark.parametrize("sep", ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c"])
def test_unicode_line_separators_are_not_line_breaks(sep: str) -> None:
    raw = f'data: {{"t": "a{sep}b"}}\n\n'.encode()
    assert datas(decode(raw)) == [f'{{"t": "a{sep}b"}}']


def test_invalid_utf8_is_replaced_not_raised() -> None:
    assert datas(decode(b"data: \xff\xfe\n\n")) == ["\ufffd\ufffd"]


# -- end of stream ------------------------------------------------------------------------------


def test_close_dispatches_complete_data_lines() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\ndata: b\n") == []
    assert decoder.close() == [ServerSentEvent(data="a\nb")]


def test_close_drops_unterminated_final_line() -> None:
    assert decode(b"data: a\n\ndata: cut in the mid") == [ServerSentEvent(data="a")]
    assert datas(decode(b"data: a\ndata: partial")) == ["a"]


def test_close_with_trailing_cr_counts_as_terminated() -> None:
    assert datas(decode(b"data: a\r")) == ["a"]


def test_close_on_empty_stream() -> None:
    assert SSEDecoder().close() == []


def test_feed_empty_bytes() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"") == []
    assert decoder.feed(b"data: a\n") == []
    assert decoder.feed(b"") == []
    assert datas(decoder.feed(b"\n")) == ["a"]


def test_incomplete_utf8_at_close_is_dropped_quietly() -> None:
    assert decode(b"data: a\n\ndata: \xe4\xb8") == [ServerSentEvent(data="a")]


# -- property: any chunking gives the same events -------------------------------------------------

_LINE_TEXT = st.text(
    alphabet=st.characters(exclude_characters="\r\n", codec="utf-8"),
    max_size=12,
)
_ID_TEXT = st.text(
    alphabet=st.characters(exclude_characters="\r\n\x00", codec="utf-8"),
    max_size=6,
)


@dataclass
class _Block:
    name: str | None
    id: str | None
    retry: int | None
    data: list[str]


_BLOCK = st.builds(
    _Block,
    name=st.none() | st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8),
    id=st.none() | _ID_TEXT,
    retry=st.none() | st.integers(0, 10**6),
    data=st.lists(_LINE_TEXT, max_size=4),
)


@st.composite
def _streams(draw: st.DrawFn) -> tuple[bytes, list[ServerSentEvent]]:
    blocks = draw(st.lists(_BLOCK, max_size=6))
    lines: list[str] = []
    expected: list[ServerSentEvent] = []
    last_id: str | None = None
    retry: int | None = None  # a retry field rides on the next event dispatched

    def maybe_comment() -> None:
        if draw(st.booleans()):
            lines.append(":" + draw(_LINE_TEXT))

    for block in blocks:
        if draw(st.booleans()):
            lines.append("")  # a stray blank line between events dispatches nothing
        maybe_comment()
        if block.name is not None:
            lines.append("event: " + block.name)
        if block.id is not None:
            lines.append("id: " + block.id)
            last_id = block.id
        if block.retry is not None:
            lines.append(f"retry: {block.retry}")
            retry = block.retry
        for value in block.data:
            maybe_comment()
            lines.append("data: " + value)
        maybe_comment()
        lines.append("")
        if block.data:
            expected.append(
                ServerSentEvent(
                    data="\n".join(block.data),
                    event=block.name or "message",
                    id=last_id,
                    retry=retry,
                )
            )
            retry = None
    text = []
    previous = ""
    for line in lines:
        choices = ["\n", "\r\n", "\r"]
        if previous == "\r" and line == "":
            choices = ["\r\n", "\r"]  # CR then a bare LF would read as one CRLF line ending
        eol = draw(st.sampled_from(choices))
        text.append(line + eol)
        previous = eol
    return "".join(text).encode(), expected


def _split(raw: bytes, points: list[int]) -> list[bytes]:
    cuts = sorted({p % (len(raw) + 1) for p in points})
    bounds = [0, *cuts, len(raw)]
    return [raw[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=150, deadline=None)
@given(stream=_streams(), points=st.lists(st.integers(0, 10_000), max_size=30))
def test_any_chunking_yields_the_same_events(
    stream: tuple[bytes, list[ServerSentEvent]], points: list[int]
) -> None:
    raw, expected = stream
    whole = decode(raw)
    assert whole == expected
    assert decode(*_split(raw, points)) == expected


@settings(max_examples=30, deadline=None)
@given(stream=_streams())
def test_byte_by_byte_yields_the_same_events(stream: tuple[bytes, list[ServerSentEvent]]) -> None:
    raw, expected = stream
    assert decode(*bytewise(raw)) == expected


@settings(max_examples=100, deadline=None)
@given(raw=st.binary(max_size=200), points=st.lists(st.integers(0, 1000), max_size=10))
def test_arbitrary_bytes_never_raise_and_chunking_is_irrelevant(
    raw: bytes, points: list[int]
) -> None:
    # Invalid UTF-8 becomes U+FFFD identically however the bytes are split.
    assert decode(*_split(raw, points)) == decode(raw)


def test_cr_cr_at_chunk_end_is_two_line_endings() -> None:
    # Regression: a chunk ending in CR CR once had its last CR turned into LF before the CRLF
    # replacement, which paired it with the first CR and lost the blank line.
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r\r") == [ServerSentEvent(data="a")]
    assert decoder.feed(b"\ndata: b\n\n") == [ServerSentEvent(data="b")]


def test_a_line_longer_than_many_reads_is_one_event_and_close_drops_an_unfinished_one() -> None:
    # A large tool call or an inline image arrives as one line over hundreds of reads: its
    # pieces are kept and joined once it ends (copying the line at every read was quadratic:
    # 20 MB in 64 KiB reads took seconds, past an attempt's limit).
    value = "x" * 3_000_000
    raw = f"event: big\ndata: {value}\r\n\r\ndata: next\n\n".encode()
    decoder = SSEDecoder()
    events = []
    for i in range(0, len(raw), 16_384):
        events += decoder.feed(raw[i : i + 16_384])
    assert [(e.event, len(e.data)) for e in events] == [("big", len(value)), ("message", 4)]
    assert events[0].data == value
    decoder.feed(b"data: " + b"y" * 50_000)
    decoder.feed(b"y" * 50_000)
    assert decoder.close() == []  # an unterminated final line is dropped, long or not
    assert decoder.feed(b"data: after\n\n") == [ServerSentEvent("after")]
