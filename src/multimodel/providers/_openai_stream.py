"""The OpenAI Chat Completions stream decoder: loaded with the first stream (a plain query never
needs it, nor the SSE modules it stands on). The wire notes are in :mod:`.openai`."""

from __future__ import annotations

import json
from typing import Any

from ..types import ChatChunk, ToolCallDelta
from ._shape import Shapes
from ._stream import SSEStreamDecoder
from .base import Endpoint
from .openai import OpenAIAdapter, _str, normalize_finish_reason, parse_usage
from .sse import ServerSentEvent

__all__ = ["OpenAIStreamDecoder"]

# A text chunk's varying string, and the text just before it (see providers/_shape.py).
_CONTENT: tuple[str | int, ...] = ("choices", 0, "delta", "content")
_CONTENT_MARKER = '"delta":{"content":"'
_PAD = "obfuscation"  # OpenAI's random padding, which may end a chunk


class OpenAIStreamDecoder(SSEStreamDecoder):
    """Decodes an OpenAI Chat Completions event stream (see :mod:`multimodel.providers.openai`)."""

    def __init__(
        self,
        endpoint: Endpoint,
        content_type: str | None = None,
        adapter: OpenAIAdapter | None = None,
    ) -> None:
        super().__init__(endpoint, content_type, adapter)
        self._finished = False
        self._done = False  # [DONE] arrived
        self._refused = False  # a delta carried `refusal`
        # provider index -> (our index, id); see the module docstring on reused indexes.
        self._calls: dict[int, tuple[int, str | None]] = {}
        self._next_call = 0
        self._shapes = Shapes()  # the repeated text chunk's shape, once learned

    def on_event(self, event: ServerSentEvent) -> ChatChunk | None:
        # Runs once per streamed token: the common shape (one choice whose delta holds only
        # `content`) takes the fewest steps; anything else goes through `_choice`.
        data = event.data
        shape = self._shapes.shape
        if shape is not None:  # a text chunk like the last one: no JSON parse
            text = shape.text(data)
            if text:
                return shape.chunk(text)
        if data == "[DONE]":
            # Complete only with a finish reason: llama.cpp cuts a running stream with [DONE].
            self._done = True
            return None
        if not data:
            return None
        obj = self.load_json(data)
        if type(obj) is not dict:
            return None
        if obj.get("error") is not None and not obj.get("choices"):
            raise OpenAIAdapter._error_from_body(obj, 200, self.endpoint)
        raw_usage = obj.get("usage")
        usage = None if raw_usage is None else parse_usage(raw_usage)
        if usage is None and "x_groq" in obj:
            x_groq = obj["x_groq"]
            if isinstance(x_groq, dict):
                usage = parse_usage(x_groq.get("usage"))
        text = ""
        raw_finish: str | None = None
        rest: tuple[str, str, list[ToolCallDelta]] | None = None
        logprobs: dict[str, Any] | None = None
        choices = obj.get("choices")
        if type(choices) is list:
            for choice in choices:
                # n > 1 is not part of the normalized surface: follow the first choice only.
                if type(choice) is not dict or choice.get("index", 0) != 0:
                    continue
                delta = choice.get("delta")
                if type(delta) is dict:
                    piece = delta.get("content")
                    if type(piece) is str:
                        text += piece
                    if len(delta) > (piece is not None) + ("role" in delta):
                        rest = self._delta_rest(delta, rest)
                fr = choice.get("finish_reason")
                if type(fr) is str:
                    raw_finish = fr
                sent = choice.get("logprobs")  # logprobs=True; null otherwise
                if type(sent) is dict:
                    logprobs = sent
        if rest is not None and rest[1]:
            self._refused = True
        if raw_finish is not None:
            self._finished = True
        elif not (text or rest or usage or logprobs):
            return None
        ident, model = obj.get("id"), obj.get("model")
        kwargs: dict[str, Any] = {
            "id": ident if type(ident) is str and ident else None,  # _str, inline
            "model": model if type(model) is str and model else None,
        }
        if text:
            kwargs["text"] = text
        if rest is not None:
            kwargs["reasoning"], kwargs["refusal"], kwargs["tool_calls"] = rest
        if raw_finish is not None:
            kwargs["raw_finish_reason"] = raw_finish
            kwargs["finish_reason"] = normalize_finish_reason(raw_finish, refused=self._refused)
        if usage is not None:
            kwargs["usage"] = usage
        if logprobs is not None:
            kwargs["logprobs"] = logprobs
        # Validated as ChatChunk(**kwargs) is, without BaseModel.__init__'s Python frame
        # (~4 % of a streamed token's cost).
        chunk: ChatChunk = ChatChunk.__pydantic_validator__.validate_python(kwargs)
        if text and rest is None and raw_finish is None and usage is None and logprobs is None:
            self._shapes.offer(
                data, obj, _CONTENT, _CONTENT_MARKER, chunk, read=self._events, pad_key=_PAD
            )
        return chunk

    def _delta_rest(
        self, delta: dict[str, Any], rest: tuple[str, str, list[ToolCallDelta]] | None
    ) -> tuple[str, str, list[ToolCallDelta]] | None:
        """A delta's refusal, reasoning and tool calls (added to ``rest``), or ``rest`` unchanged
        when it holds none of them (e.g. ``"refusal": null``)."""
        reasoning, refusal, deltas = rest if rest is not None else ("", "", [])
        found = rest is not None
        piece = delta.get("refusal")
        if isinstance(piece, str):
            refusal += piece
            found = True
        thought = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(thought, str):
            reasoning += thought
            found = True
        raw_calls = delta.get("tool_calls")
        if isinstance(raw_calls, list):
            for raw in raw_calls:
                d = self._tool_delta(raw)
                if d is not None:
                    deltas.append(d)
                    found = True
        return (reasoning, refusal, deltas) if found else None

    def _tool_delta(self, raw: Any) -> ToolCallDelta | None:
        if not isinstance(raw, dict):
            return None
        pindex = raw.get("index", 0)
        if not isinstance(pindex, int):
            pindex = 0
        call_id = _str(raw.get("id"))
        fn_raw = raw.get("function")
        fn: dict[str, Any] = fn_raw if isinstance(fn_raw, dict) else {}
        current = self._calls.get(pindex)
        if current is None or (call_id is not None and current[1] not in (None, call_id)):
            current = (self._next_call, call_id)
            self._next_call += 1
            self._calls[pindex] = current
        elif call_id is not None and current[1] is None:
            current = (current[0], call_id)
            self._calls[pindex] = current
        args = fn.get("arguments")
        if args is not None and not isinstance(args, str):
            args = json.dumps(args, separators=(",", ":"))
        return ToolCallDelta(
            index=current[0],
            id=call_id,
            name=_str(fn.get("name")),
            arguments=args or "",
            metadata=None,
        )

    def on_end(self) -> list[ChatChunk]:
        # A finish reason in any chunk makes the stream complete (some compatible servers end
        # without [DONE], and the usage chunk follows the finish chunk); [DONE] alone does not.
        if self._finished:
            self.complete = True
        elif self._done:
            self.incomplete_detail = "[DONE] arrived without a finish reason"
        return []
