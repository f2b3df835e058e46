"""A stream body that arrives in one large read (a burst the provider sent faster than the
caller read it) gives the same chunks, answer and accounting as one read per event, on both
clients: it is decoded a slice at a time, so the first chunk is not held back behind the rest,
and what was read but not yet decoded still counts when the caller stops early."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

import multimodel as mm

KEY = "sk-test-bursts-0123456789"
# Multi-byte characters and CRLF line ends, so that slice edges fall inside a UTF-8 sequence
# and between a CR and its LF.
WORDS = [f"wörd{i}→ 𝄞 " for i in range(400)]


def body(words: list[str], *, usage: bool = True) -> list[bytes]:
    """The SSE events of an OpenAI stream answering ``words``, one bytes object per event."""
    base: dict[str, object] = {
        "id": "chatcmpl-burst",
        "object": "chat.completion.chunk",
        "model": "m",
    }
    events = []
    for word in words:
        delta = {"choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}
        events.append({**base, **delta})
    events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    if usage:
        counts = {"prompt_tokens": 7, "completion_tokens": len(words), "total_tokens": 0}
        events.append({**base, "choices": [], "usage": counts})
    raw = [f"data: {json.dumps(e, ensure_ascii=False)}\r\n\r\n".encode() for e in events]
    return [*raw, b"data: [DONE]\r\n\r\n"]


class Pieces(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body delivered in the given pieces."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces
        self.left: Iterator[bytes] = iter(pieces)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.pieces)

    # An iterator object, not an async generator: one left unfinished by a caller that stops
    # early would be finalized outside the event loop.
    def __aiter__(self) -> Pieces:
        return self

    async def __anext__(self) -> bytes:
        try:
            return next(self.left)
        except StopIteration:
            raise StopAsyncIteration from None


def transport(pieces: list[bytes]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        headers = {"content-type": "text/event-stream"}
        return httpx.Response(200, headers=headers, stream=Pieces(pieces))

    return httpx.MockTransport(handle)


def options(pieces: list[bytes]) -> dict[str, object]:
    return {
        "deployments": [
            mm.Deployment(
                model="m", provider="openai", name="a", base_url="https://a.test/v1", api_key=KEY
            )
        ],
        "transport": transport(pieces),
        "max_retries": 0,
    }


def test_one_large_read_gives_the_same_chunks_as_one_read_per_event() -> None:
    events = body(WORDS)
    results = []
    for pieces in (events, [b"".join(events)]):
        with mm.Client(**options(pieces)) as client, client.stream("hi", model="m") as s:  # type: ignore[arg-type]
            texts = [chunk.text for chunk in s]
        assert s.response is not None
        results.append((texts, s.response.text, s.response.usage.output_tokens))
    assert results[0] == results[1]
    assert "".join(results[0][0]) == "".join(WORDS)
    assert results[0][2] == len(WORDS)


@pytest.mark.anyio
async def test_async_one_large_read_gives_the_same_chunks() -> None:
    events = body(WORDS)
    async with mm.AsyncClient(**options([b"".join(events)])) as client:  # type: ignore[arg-type]
        async with client.stream("hi", model="m") as s:
            texts = [chunk.text async for chunk in s]
    assert "".join(texts) == "".join(WORDS)
    assert s.response is not None and s.response.usage.output_tokens == len(WORDS)


@pytest.mark.anyio
async def test_stopping_early_in_a_burst_bills_everything_read() -> None:
    """The caller takes one chunk of a 400-word burst without usage: the estimate covers the
    whole burst the provider sent, not only the part decoded before the caller stopped."""
    whole = b"".join(body(WORDS, usage=False))
    expected = len("".join(WORDS)) // 4  # ~4 characters a token
    sync_client = mm.Client(**options([whole]))  # type: ignore[arg-type]
    with sync_client, sync_client.stream("hi", model="m") as s:
        assert next(iter(s)).text == WORDS[0]
    async with mm.AsyncClient(**options([whole])) as client:  # type: ignore[arg-type]
        async with client.stream("hi", model="m") as stream:
            assert (await stream.__anext__()).text == WORDS[0]
    for c in (sync_client, client):
        usage = c.stats().deployments["a"]
        assert usage.output_tokens >= expected * 0.9, usage
        assert c.tracker.get("a").in_flight == 0
