"""Response rendering for the mock provider server: bodies, SSE events and error bodies.

One renderer per wire format (see ``WIRE.md`` §1.3-1.6, §3.3-3.5, §4.3-4.5). Renderers are
pure: a :class:`Reply` in, bytes out. A stream is rendered as a :class:`StreamPlan` of already
framed SSE events split into ``head`` (opening events), ``body`` (one unit per content chunk,
which is what ``drop_after`` and friends count) and ``tail`` (finish, usage, terminator).

Example::

    from multimodel.testing.behavior import ResolvedUsage
    from multimodel.testing.wire import RENDERERS, Reply

    reply = Reply(model="gpt-x", text="Hi there", pieces=("Hi", " there"), tool_calls=(),
                  usage=ResolvedUsage(10, 2), finish_reason=None, seq=1)
    body = RENDERERS["openai"].body(reply)
    plan = RENDERERS["openai"].stream(reply)
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._errors import anthropic_error, gemini_error, openai_error
from .behavior import ResolvedUsage

__all__ = ["RENDERERS", "Reply", "StreamPlan", "WireRenderer", "split_text"]

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

# Normalised finish reason -> (openai, anthropic, gemini).
_FINISH: dict[str, tuple[str, str, str]] = {
    "stop": ("stop", "end_turn", "STOP"),
    "length": ("length", "max_tokens", "MAX_TOKENS"),
    "tool_calls": ("tool_calls", "tool_use", "STOP"),
    "content_filter": ("content_filter", "refusal", "SAFETY"),
}


def split_text(text: str, chunks: int | None) -> tuple[str, ...]:
    """Split ``text`` into stream pieces: one per word, or ``chunks`` near-equal slices."""
    if not text:
        return ()
    if chunks is None:
        pieces = re.findall(r"\s*\S+", text)
        tail = text[sum(map(len, pieces)) :]
        if not pieces:
            return (text,)
        if tail:
            pieces[-1] += tail
        return tuple(pieces)
    n = min(chunks, len(text))
    bounds = [round(i * len(text) / n) for i in range(n + 1)]
    return tuple(text[bounds[i] : bounds[i + 1]] for i in range(n))


def _thirds(s: str) -> list[str]:
    """Split a tool-argument string into up to three fragments."""
    if len(s) < 3:
        return [s]
    a, b = len(s) // 3, 2 * len(s) // 3
    return [s[:a], s[a:b], s[b:]]


def _strings_len(value: Any) -> int:
    """Total length of the strings inside a JSON value."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, Mapping):
        return sum(_strings_len(v) for v in value.values())
    if isinstance(value, list):
        return sum(_strings_len(v) for v in value)
    return 0


def _text_of(content: Any, text_key: str = "text") -> str:
    """Text of a message content: a string, or the text parts of a list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p[text_key] for p in content if isinstance(p, Mapping) and isinstance(p.get(text_key), str)
        )
    return ""


@dataclass(frozen=True, slots=True)
class Reply:
    """Everything a renderer needs to answer one successful request."""

    model: str
    text: str | None
    pieces: tuple[str, ...]
    tool_calls: tuple[tuple[str, Mapping[str, Any]], ...]
    usage: ResolvedUsage
    finish_reason: str | None
    seq: int
    include_usage: bool = False
    omit_done: bool = False


@dataclass(frozen=True, slots=True)
class StreamPlan:
    """A rendered stream: framed SSE events, each unit sent as one write."""

    head: tuple[bytes, ...]
    body: tuple[bytes, ...]
    tail: tuple[bytes, ...]


class WireRenderer:
    """Base renderer; subclasses implement one provider's wire format."""

    format = ""
    #: Name of the response header carrying a request id ("" for none).
    request_id_header = ""

    def route(self, rest: str) -> tuple[str | None, str] | None:
        """Match the path after ``/{name}/``: ``(model, mode)`` or ``None`` if no route.

        ``mode`` is ``"body"`` (the body's ``stream`` flag decides), ``"json"`` (never a
        stream) or ``"stream"`` (Gemini: SSE with ``alt=sse``, else a JSON array).
        """
        raise NotImplementedError

    def prompt_chars(self, body: Mapping[str, Any]) -> int:
        """Characters of prompt text, for derived input-token counts."""
        raise NotImplementedError

    def last_user_text(self, body: Mapping[str, Any]) -> str:
        """The text of the last user message (for ``echo``)."""
        raise NotImplementedError

    def body(self, reply: Reply) -> bytes:
        """The JSON body of a non-streaming success."""
        raise NotImplementedError

    def stream(self, reply: Reply) -> StreamPlan:
        """The SSE events of a streaming success."""
        raise NotImplementedError

    def error(
        self, status: int, code: str | None, message: str | None, retry_after: float | None,
        request_id: str, model: str | None = None,
    ) -> bytes:
        """The JSON body of an error response."""
        raise NotImplementedError

    def stream_error(self, code: str | None, message: str | None, request_id: str) -> bytes:
        """One framed SSE event reporting an error inside a 200 stream."""
        raise NotImplementedError

    def finish(self, reply: Reply, index: int) -> str:
        """The provider's finish reason for ``reply`` (``index`` selects the format)."""
        raw = reply.finish_reason
        if raw is None:
            raw = "tool_calls" if reply.tool_calls else "stop"
        mapped = _FINISH.get(raw)
        return mapped[index] if mapped else raw


class OpenAIRenderer(WireRenderer):
    """OpenAI Chat Completions (``WIRE.md`` §1.3-1.6)."""

    format = "openai"
    request_id_header = "x-request-id"

    def route(self, rest: str) -> tuple[str | None, str] | None:
        return (None, "body") if rest == "v1/chat/completions" else None

    def prompt_chars(self, body: Mapping[str, Any]) -> int:
        return _strings_len(body.get("messages"))

    def last_user_text(self, body: Mapping[str, Any]) -> str:
        for message in reversed(body.get("messages") or ()):
            if isinstance(message, Mapping) and message.get("role") == "user":
                return _text_of(message.get("content"))
        return ""

    @staticmethod
    def _usage(u: ResolvedUsage) -> dict[str, Any]:
        return {
            "prompt_tokens": u.input_tokens,
            "completion_tokens": u.output_tokens,
            "total_tokens": u.input_tokens + u.output_tokens,
            "prompt_tokens_details": {"cached_tokens": u.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": u.reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    @staticmethod
    def _call_id(reply: Reply, i: int) -> str:
        return f"call_mock{reply.seq:012x}{i:03d}"

    def body(self, reply: Reply) -> bytes:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": reply.text,
            "refusal": None,
            "annotations": [],
        }
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": self._call_id(reply, i),
                    "type": "function",
                    "function": {"name": name, "arguments": _dumps(args)},
                }
                for i, (name, args) in enumerate(reply.tool_calls)
            ]
        return _dumps(
            {
                "id": f"chatcmpl-mock{reply.seq:016x}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": reply.model,
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "logprobs": None,
                        "finish_reason": self.finish(reply, 0),
                    }
                ],
                "usage": self._usage(reply.usage),
                "service_tier": "default",
                "system_fingerprint": "fp_mock",
            }
        ).encode()

    def stream(self, reply: Reply) -> StreamPlan:
        base: dict[str, Any] = {
            "id": f"chatcmpl-mock{reply.seq:016x}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": reply.model,
            "system_fingerprint": "fp_mock",
        }

        def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            chunk = {**base, "choices": [choice]}
            if reply.include_usage:
                chunk["usage"] = None
            return b"data: " + _dumps(chunk).encode() + b"\n\n"

        head = (event({"role": "assistant", "content": "", "refusal": None}),)
        body = [event({"content": piece}) for piece in reply.pieces]
        for i, (name, args) in enumerate(reply.tool_calls):
            first = {
                "index": i,
                "id": self._call_id(reply, i),
                "type": "function",
                "function": {"name": name, "arguments": ""},
            }
            body.append(event({"tool_calls": [first]}))
            body.extend(
                event({"tool_calls": [{"index": i, "function": {"arguments": part}}]})
                for part in _thirds(_dumps(args))
            )
        tail = [event({}, self.finish(reply, 0))]
        if reply.include_usage:
            usage_chunk = {**base, "choices": [], "usage": self._usage(reply.usage)}
            tail.append(b"data: " + _dumps(usage_chunk).encode() + b"\n\n")
        if not reply.omit_done:
            tail.append(b"data: [DONE]\n\n")
        return StreamPlan(head, tuple(body), tuple(tail))

    def error(
        self, status: int, code: str | None, message: str | None, retry_after: float | None,
        request_id: str, model: str | None = None,
    ) -> bytes:
        return _dumps({"error": openai_error(status, code, message)}).encode()

    def stream_error(self, code: str | None, message: str | None, request_id: str) -> bytes:
        return b"data: " + _dumps({"error": openai_error(500, code, message)}).encode() + b"\n\n"


class AnthropicRenderer(WireRenderer):
    """Anthropic Messages (``WIRE.md`` §3.3-3.5)."""

    format = "anthropic"
    request_id_header = "request-id"

    def route(self, rest: str) -> tuple[str | None, str] | None:
        return (None, "body") if rest == "v1/messages" else None

    def prompt_chars(self, body: Mapping[str, Any]) -> int:
        return _strings_len(body.get("messages")) + _strings_len(body.get("system"))

    def last_user_text(self, body: Mapping[str, Any]) -> str:
        for message in reversed(body.get("messages") or ()):
            if isinstance(message, Mapping) and message.get("role") == "user":
                return _text_of(message.get("content"))
        return ""

    @staticmethod
    def _usage(u: ResolvedUsage, output_tokens: int) -> dict[str, Any]:
        return {
            "input_tokens": max(0, u.input_tokens - u.cached_tokens - u.cache_creation_tokens),
            "cache_creation_input_tokens": u.cache_creation_tokens,
            "cache_read_input_tokens": u.cached_tokens,
            "output_tokens": output_tokens,
            "service_tier": "standard",
        }

    @staticmethod
    def _tool_id(reply: Reply, i: int) -> str:
        return f"toolu_mock{reply.seq:012x}{i:03d}"

    def _message(self, reply: Reply, content: list[Any], stop: str | None, out: int) -> Any:
        return {
            "id": f"msg_mock{reply.seq:016x}",
            "type": "message",
            "role": "assistant",
            "model": reply.model,
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": self._usage(reply.usage, out),
        }

    def body(self, reply: Reply) -> bytes:
        content: list[Any] = []
        if reply.text:
            content.append({"type": "text", "text": reply.text})
        content.extend(
            {"type": "tool_use", "id": self._tool_id(reply, i), "name": name, "input": args}
            for i, (name, args) in enumerate(reply.tool_calls)
        )
        stop = self.finish(reply, 1)
        return _dumps(self._message(reply, content, stop, reply.usage.output_tokens)).encode()

    @staticmethod
    def _event(name: str, data: Any) -> bytes:
        return b"event: " + name.encode() + b"\ndata: " + _dumps(data).encode() + b"\n\n"

    def stream(self, reply: Reply) -> StreamPlan:
        ev = self._event
        # Blocks as (start event, [delta payloads]).
        blocks: list[tuple[dict[str, Any], list[Any]]] = []
        if reply.text:
            deltas: list[Any] = [{"type": "text_delta", "text": p} for p in reply.pieces]
            blocks.append(({"type": "text", "text": ""}, deltas))
        for i, (name, args) in enumerate(reply.tool_calls):
            start = {"type": "tool_use", "id": self._tool_id(reply, i), "name": name, "input": {}}
            parts = ["", *_thirds(_dumps(args))]
            blocks.append((start, [{"type": "input_json_delta", "partial_json": p} for p in parts]))
        message_start = {
            "type": "message_start",
            "message": self._message(reply, [], None, 1),
        }
        head = [ev("message_start", message_start)]
        body: list[bytes] = []
        for index, (start, deltas) in enumerate(blocks):
            opening = ev(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": start},
            )
            if index == 0:
                head += [opening, ev("ping", {"type": "ping"})]
                opening = b""
            else:
                opening = self._stop(index - 1) + opening
            for delta in deltas:
                body.append(
                    opening
                    + ev(
                        "content_block_delta",
                        {"type": "content_block_delta", "index": index, "delta": delta},
                    )
                )
                opening = b""
        if not blocks:
            head.append(ev("ping", {"type": "ping"}))
        tail = [self._stop(len(blocks) - 1)] if blocks else []
        usage = self._usage(reply.usage, reply.usage.output_tokens)
        del usage["service_tier"]
        tail.append(
            ev(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": self.finish(reply, 1), "stop_sequence": None},
                    "usage": usage,
                },
            )
        )
        tail.append(ev("message_stop", {"type": "message_stop"}))
        return StreamPlan(tuple(head), tuple(body), tuple(tail))

    def _stop(self, index: int) -> bytes:
        return self._event("content_block_stop", {"type": "content_block_stop", "index": index})

    def error(
        self, status: int, code: str | None, message: str | None, retry_after: float | None,
        request_id: str, model: str | None = None,
    ) -> bytes:
        return _dumps(
            {"type": "error", "error": anthropic_error(status, code, message),
             "request_id": request_id}
        ).encode()

    def stream_error(self, code: str | None, message: str | None, request_id: str) -> bytes:
        data = {"type": "error", "error": anthropic_error(529, code, message)}
        return self._event("error", data)


class GeminiRenderer(WireRenderer):
    """Gemini generateContent / streamGenerateContent (``WIRE.md`` §4.3-4.5)."""

    format = "gemini"

    def route(self, rest: str) -> tuple[str | None, str] | None:
        version, _, rest = rest.partition("/")
        if version not in ("v1beta", "v1") or not rest.startswith("models/"):
            return None
        model, _, method = rest[len("models/") :].rpartition(":")
        if not model:
            return None
        if method == "generateContent":
            return model, "json"
        if method == "streamGenerateContent":
            return model, "stream"
        return None

    def prompt_chars(self, body: Mapping[str, Any]) -> int:
        return _strings_len(body.get("contents")) + _strings_len(body.get("systemInstruction"))

    def last_user_text(self, body: Mapping[str, Any]) -> str:
        for content in reversed(body.get("contents") or ()):
            if isinstance(content, Mapping) and content.get("role", "user") == "user":
                return _text_of(content.get("parts"))
        return ""

    @staticmethod
    def _usage(u: ResolvedUsage, candidates: int | None) -> dict[str, Any]:
        usage: dict[str, Any] = {"promptTokenCount": u.input_tokens}
        total = u.input_tokens + u.reasoning_tokens
        if candidates is not None:
            usage["candidatesTokenCount"] = candidates
            total += candidates
        usage["totalTokenCount"] = total
        if u.cached_tokens:
            usage["cachedContentTokenCount"] = u.cached_tokens
        if u.reasoning_tokens:
            usage["thoughtsTokenCount"] = u.reasoning_tokens
        usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": u.input_tokens}]
        return usage

    @staticmethod
    def _call_part(name: str, args: Mapping[str, Any]) -> dict[str, Any]:
        signature = base64.b64encode(f"mock-thought-signature:{name}".encode()).decode()
        return {"functionCall": {"name": name, "args": args}, "thoughtSignature": signature}

    def _response(
        self, reply: Reply, parts: list[Any], finish: bool, candidates: int | None
    ) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
        if finish:
            candidate["finishReason"] = self.finish(reply, 2)
        candidate["index"] = 0
        return {
            "candidates": [candidate],
            "usageMetadata": self._usage(reply.usage, candidates),
            "modelVersion": reply.model,
            "responseId": f"mock{reply.seq:016x}",
        }

    def _chunks(self, reply: Reply) -> list[dict[str, Any]]:
        parts: list[list[Any]] = [[{"text": p}] for p in reply.pieces]
        parts += [[self._call_part(name, args)] for name, args in reply.tool_calls]
        final = reply.usage.output_tokens - reply.usage.reasoning_tokens
        chunks = []
        for i, p in enumerate(parts):
            # Cumulative usage; the first chunk has no candidatesTokenCount yet.
            so_far = (final * i) // len(parts) if i else None
            chunks.append(self._response(reply, p, False, so_far))
        chunks.append(self._response(reply, [{"text": ""}], True, final))
        return chunks

    def body(self, reply: Reply) -> bytes:
        parts: list[Any] = [{"text": reply.text}] if reply.text else []
        parts += [self._call_part(name, args) for name, args in reply.tool_calls]
        final = reply.usage.output_tokens - reply.usage.reasoning_tokens
        return _dumps(self._response(reply, parts, True, final)).encode()

    def array(self, reply: Reply) -> bytes:
        """A ``streamGenerateContent`` answer without ``alt=sse``: one JSON array."""
        return _dumps(self._chunks(reply)).encode()

    def stream(self, reply: Reply) -> StreamPlan:
        events = [b"data: " + _dumps(c).encode() + b"\r\n\r\n" for c in self._chunks(reply)]
        return StreamPlan((), tuple(events[:-1]), (events[-1],))

    def error(
        self, status: int, code: str | None, message: str | None, retry_after: float | None,
        request_id: str, model: str | None = None,
    ) -> bytes:
        return _dumps({"error": gemini_error(status, code, message, retry_after, model)}).encode()

    def stream_error(self, code: str | None, message: str | None, request_id: str) -> bytes:
        data = {"error": gemini_error(503, code, message, None, None)}
        return b"data: " + _dumps(data).encode() + b"\r\n\r\n"


RENDERERS: dict[str, WireRenderer] = {
    "openai": OpenAIRenderer(),
    "anthropic": AnthropicRenderer(),
    "gemini": GeminiRenderer(),
}
