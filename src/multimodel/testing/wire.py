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
import time
from collections.abc import Mapping
from typing import Any

from ._errors import anthropic_error, gemini_error, openai_error
from ._render import (
    ErrorSpec,
    Reply,
    StreamPlan,
    WireRenderer,
    dumps,
    mock_embedding,
    split_text,
    strings_len,
    text_of,
    thirds,
)
from .behavior import ResolvedUsage

__all__ = ["RENDERERS", "ErrorSpec", "Reply", "StreamPlan", "WireRenderer", "split_text"]


def _base64(vector: list[float]) -> str:
    """OpenAI's ``encoding_format="base64"``: little-endian float32s, base64-encoded."""
    import struct

    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


class OpenAIRenderer(WireRenderer):
    """OpenAI Chat Completions (``WIRE.md`` §1.3-1.6)."""

    format = "openai"
    request_id_header = "x-request-id"

    def route(self, rest: str) -> tuple[str | None, str] | None:
        if rest == "v1/chat/completions":
            return (None, "body")
        # Azure OpenAI: /openai/deployments/{deployment}/chat/completions (api-version query)
        head, _, deployment = rest.partition("openai/deployments/")
        if not head and deployment.endswith("/chat/completions"):
            return (deployment.removesuffix("/chat/completions") or None, "body")
        return (None, "embed") if rest == "v1/embeddings" else None

    def embeddings(self, body: Mapping[str, Any], model: str) -> bytes | None:
        value = body.get("input")
        texts = [value] if isinstance(value, str) else [str(t) for t in value or ()]
        dims = body.get("dimensions")
        dims = dims if isinstance(dims, int) and dims > 0 else 8
        tokens = sum(len(t) // 4 + 1 for t in texts)
        encode: Any = _base64 if body.get("encoding_format") == "base64" else list
        data = [
            {"object": "embedding", "index": i, "embedding": encode(mock_embedding(t, dims))}
            for i, t in enumerate(texts)
        ]
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return dumps({"object": "list", "data": data, "model": model, "usage": usage}).encode()

    def prompt_chars(self, body: Mapping[str, Any]) -> int:
        return strings_len(body.get("messages"))

    def last_user_text(self, body: Mapping[str, Any]) -> str:
        for message in reversed(body.get("messages") or ()):
            if isinstance(message, Mapping) and message.get("role") == "user":
                return text_of(message.get("content"))
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
            "refusal": reply.refusal,
            "annotations": [],
        }
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": self._call_id(reply, i),
                    "type": "function",
                    "function": {"name": name, "arguments": dumps(args)},
                }
                for i, (name, args) in enumerate(reply.tool_calls)
            ]
        return dumps(
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
            return b"data: " + dumps(chunk).encode() + b"\n\n"

        head = (event({"role": "assistant", "content": "", "refusal": None}),)
        body = [event({"content": piece}) for piece in reply.pieces]
        if reply.refusal:
            body.extend(event({"refusal": piece}) for piece in split_text(reply.refusal, None))
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
                for part in thirds(dumps(args))
            )
        tail = [event({}, self.finish(reply, 0))]
        if reply.include_usage:
            usage_chunk = {**base, "choices": [], "usage": self._usage(reply.usage)}
            tail.append(b"data: " + dumps(usage_chunk).encode() + b"\n\n")
        if not reply.omit_done:
            tail.append(b"data: [DONE]\n\n")
        return StreamPlan(head, tuple(body), tuple(tail))

    def error(self, e: ErrorSpec) -> bytes:
        return dumps({"error": openai_error(e.status, e.code, e.message)}).encode()

    def stream_error(self, e: ErrorSpec) -> bytes:
        return b"data: " + dumps({"error": openai_error(500, e.code, e.message)}).encode() + b"\n\n"


class AnthropicRenderer(WireRenderer):
    """Anthropic Messages (``WIRE.md`` §3.3-3.5)."""

    format = "anthropic"
    request_id_header = "request-id"

    def route(self, rest: str) -> tuple[str | None, str] | None:
        return (None, "body") if rest == "v1/messages" else None

    def prompt_chars(self, body: Mapping[str, Any]) -> int:
        return strings_len(body.get("messages")) + strings_len(body.get("system"))

    def last_user_text(self, body: Mapping[str, Any]) -> str:
        for message in reversed(body.get("messages") or ()):
            if isinstance(message, Mapping) and message.get("role") == "user":
                return text_of(message.get("content"))
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
        message = {
            "id": f"msg_mock{reply.seq:016x}",
            "type": "message",
            "role": "assistant",
            "model": reply.model,
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": self._usage(reply.usage, out),
        }
        if stop == "refusal" and reply.refusal:
            message["stop_details"] = self._refusal(reply.refusal)
        return message

    @staticmethod
    def _refusal(explanation: str) -> dict[str, Any]:
        return {"type": "refusal", "category": None, "explanation": explanation}

    def body(self, reply: Reply) -> bytes:
        content: list[Any] = []
        if reply.text:
            content.append({"type": "text", "text": reply.text})
        content.extend(
            {"type": "tool_use", "id": self._tool_id(reply, i), "name": name, "input": args}
            for i, (name, args) in enumerate(reply.tool_calls)
        )
        stop = self.finish(reply, 1)
        return dumps(self._message(reply, content, stop, reply.usage.output_tokens)).encode()

    @staticmethod
    def _event(name: str, data: Any) -> bytes:
        return b"event: " + name.encode() + b"\ndata: " + dumps(data).encode() + b"\n\n"

    def stream(self, reply: Reply) -> StreamPlan:
        ev = self._event
        # Blocks as (start event, [delta payloads]).
        blocks: list[tuple[dict[str, Any], list[Any]]] = []
        if reply.text:
            deltas: list[Any] = [{"type": "text_delta", "text": p} for p in reply.pieces]
            blocks.append(({"type": "text", "text": ""}, deltas))
        for i, (name, args) in enumerate(reply.tool_calls):
            start = {"type": "tool_use", "id": self._tool_id(reply, i), "name": name, "input": {}}
            parts = ["", *thirds(dumps(args))]
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
        stop = self.finish(reply, 1)
        ending: dict[str, Any] = {"stop_reason": stop, "stop_sequence": None}
        if stop == "refusal" and reply.refusal:
            ending["stop_details"] = self._refusal(reply.refusal)
        tail.append(ev("message_delta", {"type": "message_delta", "delta": ending, "usage": usage}))
        tail.append(ev("message_stop", {"type": "message_stop"}))
        return StreamPlan(tuple(head), tuple(body), tuple(tail))

    def _stop(self, index: int) -> bytes:
        return self._event("content_block_stop", {"type": "content_block_stop", "index": index})

    def error(self, e: ErrorSpec) -> bytes:
        return dumps(
            {
                "type": "error",
                "error": anthropic_error(e.status, e.code, e.message),
                "request_id": e.request_id,
            }
        ).encode()

    def stream_error(self, e: ErrorSpec) -> bytes:
        data = {"type": "error", "error": anthropic_error(529, e.code, e.message)}
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
        if method == "batchEmbedContents":
            return model, "embed"
        return None

    def embeddings(self, body: Mapping[str, Any], model: str) -> bytes | None:
        out = []
        for item in body.get("requests") or ():
            item = item if isinstance(item, Mapping) else {}
            dims = item.get("outputDimensionality")
            dims = dims if isinstance(dims, int) and dims > 0 else 8
            content = item.get("content")
            parts = content.get("parts") if isinstance(content, Mapping) else None
            out.append({"values": mock_embedding(text_of(parts), dims)})
        return dumps({"embeddings": out}).encode()

    def prompt_chars(self, body: Mapping[str, Any]) -> int:
        return strings_len(body.get("contents")) + strings_len(body.get("systemInstruction"))

    def last_user_text(self, body: Mapping[str, Any]) -> str:
        for content in reversed(body.get("contents") or ()):
            if isinstance(content, Mapping) and content.get("role", "user") == "user":
                return text_of(content.get("parts"))
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
        return dumps(self._response(reply, parts, True, final)).encode()

    def array(self, reply: Reply) -> bytes:
        """A ``streamGenerateContent`` answer without ``alt=sse``: one JSON array."""
        return dumps(self._chunks(reply)).encode()

    def stream(self, reply: Reply) -> StreamPlan:
        events = [b"data: " + dumps(c).encode() + b"\r\n\r\n" for c in self._chunks(reply)]
        return StreamPlan((), tuple(events[:-1]), (events[-1],))

    def error(self, e: ErrorSpec) -> bytes:
        error = gemini_error(e.status, e.code, e.message, e.retry_after, e.model)
        return dumps({"error": error}).encode()

    def stream_error(self, e: ErrorSpec) -> bytes:
        data = {"error": gemini_error(503, e.code, e.message, None, e.model)}
        return b"data: " + dumps(data).encode() + b"\r\n\r\n"


RENDERERS: dict[str, WireRenderer] = {
    "openai": OpenAIRenderer(),
    "anthropic": AnthropicRenderer(),
    "gemini": GeminiRenderer(),
}
