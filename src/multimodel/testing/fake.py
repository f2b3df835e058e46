"""An in-memory fake provider: an ``httpx.MockTransport`` that answers in the OpenAI format.

It needs no sockets, serves both clients (the handler is plain, so the same transport works for
``httpx.Client`` and ``httpx.AsyncClient``), and can be scripted per deployment host::

    fake = FakeProvider()
    fake.script("a.test", [429, 500, 200])       # statuses for the next requests to a.test
    client = multimodel.Client(
        deployments=[
            multimodel.Deployment(model="m", provider="openai", name="a",
                                  base_url="https://a.test/v1", api_key="sk-test"),
            multimodel.Deployment(model="m", provider="openai", name="b",
                                  base_url="https://b.test/v1", api_key="sk-test"),
        ],
        transport=fake,
    )
    client.query("hi")
    assert fake.hosts() == ["a.test", "a.test", "a.test"] or ...

For the Anthropic and Gemini wire formats, and for real sockets, use
:class:`multimodel.testing.MockProviderServer`.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

__all__ = ["FakeProvider", "FakeReply"]


@dataclass(frozen=True)
class FakeReply:
    """One scripted answer.

    Attributes:
        status: HTTP status; errors get an OpenAI error body.
        text: the answer text for a 200.
        headers: extra response headers (e.g. ``{"retry-after": "1"}``).
        error_code: the OpenAI ``error.code`` for an error status.
        chunks: for streams, how many pieces the text is split into.
        stream_error_after: for streams, send an error event after this many chunks.
        usage: ``(prompt_tokens, completion_tokens)``.
        echo: answer with the last message's text instead of ``text``.
    """

    status: int = 200
    text: str = "ok"
    headers: dict[str, str] = field(default_factory=dict)
    error_code: str | None = None
    chunks: int = 3
    stream_error_after: int | None = None
    usage: tuple[int, int] = (10, 5)
    echo: bool = False


_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    503: "service_unavailable_error",
}


class FakeProvider(httpx.MockTransport):
    """A scripted OpenAI-format provider for ``httpx.MockTransport``-based tests."""

    def __init__(self, default: FakeReply | None = None) -> None:
        super().__init__(self._handle)
        self._default = default or FakeReply()
        self._scripts: dict[str, deque[FakeReply]] = {}
        self._lock = threading.Lock()
        self.requests: list[httpx.Request] = []

    def script(self, host: str, replies: Iterable[FakeReply | int]) -> None:
        """Queue replies (or bare statuses) for the next requests to ``host``."""
        items = [r if isinstance(r, FakeReply) else FakeReply(status=r) for r in replies]
        with self._lock:
            self._scripts.setdefault(host, deque()).extend(items)

    def hosts(self) -> list[str]:
        """The host of every request received, in order."""
        return [r.url.host for r in self.requests]

    def bodies(self) -> list[Any]:
        """The decoded JSON body of every request received, in order."""
        return [json.loads(r.content) for r in self.requests]

    def _handle(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append(request)
            queue = self._scripts.get(request.url.host)
            reply = queue.popleft() if queue else self._default
        body = json.loads(request.content) if request.content else {}
        headers = {"x-request-id": f"req_{len(self.requests)}", **reply.headers}
        if reply.status >= 400:
            code = reply.error_code or _ERROR_TYPES.get(reply.status, "server_error")
            return httpx.Response(
                reply.status,
                json={
                    "error": {
                        "message": f"scripted {reply.status}",
                        "type": _ERROR_TYPES.get(reply.status, "server_error"),
                        "param": None,
                        "code": code,
                    }
                },
                headers=headers,
            )
        model = body.get("model", "fake")
        if reply.echo and body.get("messages"):
            content = body["messages"][-1].get("content")
            reply = replace(reply, text=content if isinstance(content, str) else str(content))
        prompt, completion = reply.usage
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        if not body.get("stream"):
            return httpx.Response(
                200,
                json={
                    "id": "chatcmpl-fake",
                    "object": "chat.completion",
                    "created": 0,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": reply.text},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": usage,
                },
                headers=headers,
            )
        events: list[dict[str, Any]] = [
            {
                "id": "chatcmpl-fake",
                "model": model,
                "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}],
            }
        ]
        for i, piece in enumerate(_split(reply.text, reply.chunks)):
            if reply.stream_error_after is not None and i == reply.stream_error_after:
                events.append(
                    {
                        "error": {
                            "message": "scripted stream error",
                            "type": "server_error",
                            "code": None,
                        }
                    }
                )
                break
            events.append(
                {
                    "id": "chatcmpl-fake",
                    "model": model,
                    "choices": [{"index": 0, "delta": {"content": piece}}],
                }
            )
        else:
            events.append(
                {
                    "id": "chatcmpl-fake",
                    "model": model,
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                }
            )
            if (body.get("stream_options") or {}).get("include_usage"):
                events.append(
                    {"id": "chatcmpl-fake", "model": model, "choices": [], "usage": usage}
                )
        pieces = [f"data: {json.dumps(e)}\n\n".encode() for e in events]
        if reply.stream_error_after is None:
            pieces.append(b"data: [DONE]\n\n")
        return httpx.Response(
            200,
            stream=_Pieces(pieces),
            headers={**headers, "content-type": "text/event-stream"},
        )


class _Pieces(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body delivered one SSE event per read, as a network would, for both clients."""

    def __init__(self, pieces: list[bytes]) -> None:
        self._pieces = pieces

    def __iter__(self) -> Iterator[bytes]:
        yield from self._pieces

    # An iterator object, not an async generator: a body dropped mid-way must not leave a
    # generator for the garbage collector to finalize outside the event loop.
    def __aiter__(self) -> AsyncIterator[bytes]:
        return _AsyncPieces(iter(self._pieces))


class _AsyncPieces:
    """Async iteration over prepared pieces."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self._pieces = pieces

    def __aiter__(self) -> _AsyncPieces:
        return self

    async def __anext__(self) -> bytes:
        try:
            return next(self._pieces)
        except StopIteration:
            raise StopAsyncIteration from None


def _split(text: str, n: int) -> Sequence[str]:
    n = max(1, min(n, len(text) or 1))
    size = -(-len(text) // n) or 1
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]
