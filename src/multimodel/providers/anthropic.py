"""Anthropic Messages API.

Wire notes that this adapter handles (see ``WIRE.md`` §3):

* ``system``/``developer`` messages become the top-level ``system`` string (joined with a blank
  line, wherever they appear); ``max_tokens`` is required, so a default is always sent (preset
  option ``default_max_tokens``, 4096);
* tool results are ``tool_result`` blocks inside a *user* turn: consecutive tool messages and a
  following user message merge into one user turn, and consecutive same-role turns merge;
  assistant ``tool_calls`` become ``tool_use`` blocks whose ``input`` is the parsed object;
* ``temperature`` is 0-1 (refused above 1); ``stop`` is ``stop_sequences``; ``parallel=False`` is
  ``tool_choice.disable_parallel_tool_use``; ``user`` is ``metadata.user_id``; ``seed`` and
  ``metadata`` have no equivalent and are dropped with a ``DroppedParameterWarning``;
* ``response_format``: the documented 2023-06-01 API has no JSON mode. A ``json_schema`` format
  is a forced call of a tool named after the format whose ``input_schema`` is the schema (the
  answer comes back as that call; the structured-output layer turns it into the answer's text);
  with tools of the caller's own, or for ``json_object``, the request gets a system instruction
  asking for one JSON object instead (with the schema). Newer API versions' ``output_config``
  can be sent through ``extra_body``;
* usage: ``input_tokens`` excludes cached tokens, so billed input is ``input_tokens +
  cache_read_input_tokens + cache_creation_input_tokens``; in streams ``message_start`` carries
  input and cache counts and ``message_delta.usage`` is *cumulative* (recent traffic repeats the
  input and cache counts): present fields overwrite, never add;
* streams use named events (``ping`` included) and end with ``message_stop``; an ``error`` event
  can arrive inside an HTTP 200 stream and is classified by its error type
  (``overloaded_error`` is :class:`~multimodel.errors.Overloaded`);
* streamed tool calls get dense indexes (0, 1, 2 ...) in tool order, not the content block
  index; ``input_json_delta`` fragments (the first is often empty) are passed on as arguments;
* ``thinking`` blocks are not answer text (streams expose them as ``reasoning``). When tools were
  called they are kept, signature included, in the first call's ``metadata["anthropic_thinking"]``
  and replayed before the ``tool_use`` blocks, as extended thinking with tools requires;
* errors: ``{"type":"error","error":{"type","message","details"?}}``, ``request-id`` header; a
  429 with ``details.error_code`` ``enforced_spend_limit_reached`` or a ``billing_error`` is
  :class:`~multimodel.errors.QuotaExhausted`; 413 ``request_too_large`` (a body-size limit) stays
  a plain :class:`~multimodel.errors.BadRequestError`.

Messages become Anthropic turns in ``_anthropic_messages``; this module builds the request
around them and reads answers, streams and errors.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from ..errors import BadRequestError, InvalidRequestError, ProviderError
from ..types import (
    ChatChunk,
    ChatRequest,
    FinishReason,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from ..types._response import assistant_message
from ._anthropic_messages import THINKING_KEY, to_anthropic
from ._errors import error_from_status
from ._params import drop_params
from ._reasoning import anthropic_thinking
from ._request import json_bytes, post_request, request_headers
from ._shape import Shapes
from ._stream import SSEStreamDecoder
from ._usage import NO_USAGE, token_count, usage_of
from .base import Endpoint, ParsedResponse, ProviderAdapter
from .sse import ServerSentEvent

__all__ = ["AnthropicAdapter", "normalize_stop_reason", "parse_usage"]

DEFAULT_VERSION = "2023-06-01"

_STOP: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "refusal",
    "pause_turn": "other",
}

# Error types seen without a meaningful HTTP status (inside a 200 stream or body) get the status
# the API would have used for them, so that error_from_status classifies them correctly.
_ERROR_STATUS = {
    "invalid_request_error": 400, "authentication_error": 401, "billing_error": 402,
    "permission_error": 403, "not_found_error": 404, "request_too_large": 413,
    "rate_limit_error": 429, "api_error": 500, "timeout_error": 504, "overloaded_error": 529,
}  # fmt: skip

_USAGE_FIELDS = (
    "input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens",
    "output_tokens_details",
)  # fmt: skip


def refusal_note(stop_details: Any) -> str:
    """The refusal text of a ``stop_reason: "refusal"`` answer: ``stop_details.explanation``
    when the API gave one, else a fixed note (naming ``stop_details.category`` when given).

    Text generated before the refusal stays the answer's text: it is output the model produced
    (a stream has already delivered it), not the refusal.
    """
    details = stop_details if isinstance(stop_details, dict) else {}
    explanation = details.get("explanation")
    if isinstance(explanation, str) and explanation.strip():
        return explanation
    category = details.get("category")
    about = f" (category {category!r})" if isinstance(category, str) and category else ""
    return f"the model declined to continue{about}; Anthropic stop_reason 'refusal'"


def normalize_stop_reason(raw: str | None) -> FinishReason | None:
    """Map an Anthropic ``stop_reason`` to the normalized set."""
    if raw is None:
        return None
    return _STOP.get(raw, "other")


def parse_usage(data: Any) -> Usage | None:
    """Normalize an Anthropic ``usage`` object (``None`` when absent or not an object)."""
    if not isinstance(data, dict):
        return None
    cache_read = token_count(data.get("cache_read_input_tokens"))
    cache_write = token_count(data.get("cache_creation_input_tokens"))
    details = data.get("output_tokens_details")
    thinking = token_count(details.get("thinking_tokens")) if isinstance(details, dict) else 0
    return usage_of(  # input, output, cache read, cache write, reasoning
        token_count(data.get("input_tokens")) + cache_read + cache_write,
        token_count(data.get("output_tokens")),
        cache_read,
        cache_write,
        thinking,
    )


STRUCTURED_TOOL_DESCRIPTION = (
    "Give your answer by calling this tool: its input is the answer, following the schema."
)
"""The description of the tool forced for a ``json_schema`` response format."""


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _check_thinking(request: ChatRequest) -> None:
    """Refuse what Anthropic refuses with extended thinking on, naming it (before sending)."""
    conflict = None
    if request.temperature is not None and request.temperature != 1:
        conflict = "temperature"
    elif request.top_p is not None and request.top_p < 0.95:
        conflict = "top_p"
    elif request.tool_choice is not None and request.tool_choice.mode in ("required", "tool"):
        conflict = "tool_choice"
    if conflict is not None:
        raise InvalidRequestError(
            f"Anthropic's extended thinking (reasoning_effort) cannot be combined with "
            f"{conflict}={getattr(request, conflict)!r} (temperature must be unset or 1, top_p "
            "at least 0.95, and no tool call forced): drop one of them",
            field=conflict,
        )


class AnthropicAdapter(ProviderAdapter):
    """The Anthropic Messages wire format."""

    name = "anthropic"
    openai_equivalents = frozenset({"reasoning_effort"})  # as extended thinking

    def unsupported_fields(self, request: ChatRequest, endpoint: Endpoint) -> list[str]:
        """``seed`` (no sampling seed) and ``metadata`` (only ``user_id``, from ``user``)."""
        return [
            name
            for name, given in (
                ("seed", request.seed is not None),
                ("metadata", bool(request.metadata)),
            )
            if given
        ]

    # -- requests ------------------------------------------------------------------------------

    def build_request(
        self, request: ChatRequest, endpoint: Endpoint, *, stream: bool
    ) -> httpx.Request:
        system, messages = to_anthropic(request.messages)
        params = request.openai_params
        max_tokens = request.max_tokens or endpoint.option("default_max_tokens", 4096)
        thinking = None
        if params and "reasoning_effort" in params:
            thinking, max_tokens = anthropic_thinking(params["reasoning_effort"], max_tokens)
        fmt = request.response_format
        forced: dict[str, Any] | None = None
        if fmt is not None and fmt.type == "json_object":
            system.append("Respond with a single JSON object and nothing else.")
        elif fmt is not None and fmt.type == "json_schema" and not request.tools and not thinking:
            # (Anthropic refuses a forced tool call with thinking on: the instruction below.)
            # Structured output: a forced call of a tool whose input schema is the answer's.
            forced = {
                "name": fmt.name,
                "description": STRUCTURED_TOOL_DESCRIPTION,
                "input_schema": fmt.schema_,
            }
        elif fmt is not None and fmt.type == "json_schema":
            system.append(
                f"Respond with a single JSON object and nothing else. It must conform to this "
                f"JSON Schema (named {fmt.name!r}):\n{_dumps(fmt.schema_)}"
            )
        body: dict[str, Any] = {
            "model": endpoint.wire_model,
            "max_tokens": max_tokens,
            "messages": messages,
        }
        if thinking is not None:
            _check_thinking(request)
            body["thinking"] = thinking
        if system:
            body["system"] = "\n\n".join(system)
        if request.temperature is not None:
            if request.temperature > 1:
                raise InvalidRequestError(
                    f"Anthropic accepts temperature 0-1, got {request.temperature}",
                    field="temperature",
                )
            body["temperature"] = request.temperature
        if request.top_p is not None:
            body["top_p"] = request.top_p
        if request.stop:
            body["stop_sequences"] = request.stop
        if request.user is not None:
            body["metadata"] = {"user_id": request.user}
        if request.tools:
            body["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.parameters}
                if t.description is not None
                else {"name": t.name, "input_schema": t.parameters}
                for t in request.tools
            ]
        if forced is not None:
            body["tools"] = [forced]
            body["tool_choice"] = {"type": "tool", "name": forced["name"]}
        elif request.tool_choice is not None:
            choice = request.tool_choice
            tc: dict[str, Any] = {"type": "any" if choice.mode == "required" else choice.mode}
            if choice.mode == "tool":
                tc["name"] = choice.name
            if choice.parallel is False and choice.mode != "none":
                tc["disable_parallel_tool_use"] = True
            body["tool_choice"] = tc
        if stream:
            body["stream"] = True
        dropped = [name for name in params or () if name != "reasoning_effort"]
        dropped += self.unsupported_fields(request, endpoint)
        if dropped:
            drop_params("anthropic", dropped)
        body.update(endpoint.extra_body)
        if request.extra_body:
            body.update(request.extra_body)

        headers = request_headers(
            endpoint,
            stream=stream,
            extra=(("anthropic-version", endpoint.api_version or DEFAULT_VERSION),),
        )
        return post_request(endpoint, endpoint.url("messages"), headers, json_bytes(body))

    # -- responses -----------------------------------------------------------------------------

    def parse_response(self, response: httpx.Response, endpoint: Endpoint) -> ParsedResponse:
        body = self.json_body(response, endpoint)
        if not isinstance(body, dict):
            raise self._malformed("response body is not a JSON object", endpoint, response)
        if body.get("type") == "error":
            raise self._error_from_body(body, response.status_code, endpoint, response.headers)
        content = body.get("content")
        if not isinstance(content, list):
            raise self._malformed("response has no content list", endpoint, response)
        texts: list[str] = []
        calls: list[ToolCall] = []
        thinking: list[dict[str, Any]] = []
        for block in content:
            if not isinstance(block, dict):
                raise self._malformed("content block is not an object", endpoint, response)
            kind = block.get("type")
            if kind == "text":
                text = block.get("text")
                if not isinstance(text, str):
                    raise self._malformed("text block without text", endpoint, response)
                texts.append(text)
            elif kind == "tool_use":
                name = block.get("name")
                args = block.get("input", {})
                if not isinstance(name, str) or not isinstance(args, dict):
                    raise self._malformed("tool_use block needs name and input", endpoint, response)
                calls.append(
                    ToolCall(
                        id=str(block.get("id") or f"toolu_{len(calls)}"),
                        name=name,
                        arguments=_dumps(args),
                        # Thinking blocks come first; the first call keeps them for replay.
                        metadata={THINKING_KEY: list(thinking)} if thinking and not calls else None,
                    )
                )
            elif kind in ("thinking", "redacted_thinking"):
                thinking.append(block)
            # Other block types (server tools, citations, compaction ...) are not answer text.
        text = "".join(texts)
        message = assistant_message(text if text or not calls else None, calls or None)
        raw_stop = body.get("stop_reason")
        raw_stop = raw_stop if isinstance(raw_stop, str) else None
        if raw_stop == "refusal":
            message = message.model_copy(
                update={
                    "refusal": refusal_note(body.get("stop_details")),
                    "content": "" if message.content is None and not calls else message.content,
                }
            )
        return ParsedResponse(
            id=str(body.get("id") or ""),
            message=message,
            finish_reason=normalize_stop_reason(raw_stop),
            raw_finish_reason=raw_stop,
            usage=parse_usage(body.get("usage")) or NO_USAGE,
            model=str(body.get("model") or endpoint.wire_model),
            raw=body,
        )

    def stream_decoder(
        self, endpoint: Endpoint, *, content_type: str | None = None
    ) -> _AnthropicStreamDecoder:
        return _AnthropicStreamDecoder(endpoint, content_type, self)

    @staticmethod
    def _error_from_body(
        body: dict[str, Any],
        status: int,
        endpoint: Endpoint,
        headers: Mapping[str, str] | None = None,
    ) -> ProviderError:
        err = body.get("error")
        if not isinstance(err, dict):
            err = {"message": str(err or body)[:500]}
        message = str(err.get("message") or "")
        etype = err.get("type") if isinstance(err.get("type"), str) else None
        details = err.get("details")
        detail_code = details.get("error_code") if isinstance(details, dict) else None
        code = detail_code if isinstance(detail_code, str) and detail_code else etype
        if status < 400:  # an error inside a 200 body or stream: the type says what it is
            status = _ERROR_STATUS.get(etype or "", status)
        rid = body.get("request_id")
        request_id = (headers or {}).get("request-id") or (rid if isinstance(rid, str) else None)
        if etype == "request_too_large":
            # A body-size limit (often images), not a context window: a bigger model won't help.
            where: dict[str, Any] = {"provider": endpoint.provider, "deployment": endpoint.name}
            return BadRequestError(
                message or "request too large", **where, status=status, request_id=request_id,
                code=code, body=body,
            )  # fmt: skip
        return error_from_status(
            status, message, endpoint, code=code, headers=headers, body=body, request_id=request_id
        )


# A text delta's varying string, and the text just before it (see providers/_shape.py).
_TEXT: tuple[str | int, ...] = ("delta", "text")
_TEXT_MARKER = '"type":"text_delta","text":"'


class _AnthropicStreamDecoder(SSEStreamDecoder):
    def __init__(
        self,
        endpoint: Endpoint,
        content_type: str | None = None,
        adapter: AnthropicAdapter | None = None,
    ) -> None:
        super().__init__(endpoint, content_type, adapter)
        self._stopped = False  # a message_delta carried a stop_reason
        self._id: str | None = None
        self._model: str | None = None
        self._usage: dict[str, Any] = {}  # raw cumulative usage fields, overwritten, never added
        self._usage_sent = False
        self._tools: dict[int, int] = {}  # content block index -> dense tool call index
        # content block index -> (block type, thinking text parts, signature or redacted data)
        self._thinking: dict[int, tuple[str, list[str], list[str]]] = {}
        self._shapes = Shapes()  # the repeated text delta's shape, once learned

    def on_event(self, event: ServerSentEvent) -> ChatChunk | None:
        shape = self._shapes.shape
        if shape is not None and event.event == self._shapes.event:
            text = shape.text(event.data)  # a text delta like the last one: no JSON parse
            if text:
                return shape.chunk(text)
        if not event.data.strip():
            return None
        if event.event == "error" and not event.data.lstrip().startswith("{"):
            raise error_from_status(200, event.data[:500], self.endpoint)
        obj = self.load_json(event.data)
        if not isinstance(obj, dict):
            obj = {"error": {"message": event.data[:500]}} if event.event == "error" else None
            if obj is None:
                return None
        kind = obj.get("type")
        if not isinstance(kind, str):
            kind = event.event
        if kind == "error" or event.event == "error":
            raise AnthropicAdapter._error_from_body(obj, 200, self.endpoint)
        if kind == "message_start":
            self._shapes.forget()  # its chunks carry the message's id and model
            msg = obj.get("message")
            if isinstance(msg, dict):
                self._id = msg["id"] if isinstance(msg.get("id"), str) else self._id
                self._model = msg["model"] if isinstance(msg.get("model"), str) else self._model
                self._merge_usage(msg.get("usage"))
            return None
        index = obj.get("index")
        index = index if type(index) is int else -1
        if kind == "content_block_start":
            return self._block_start(index, obj.get("content_block"))
        if kind == "content_block_delta":
            chunk = self._block_delta(index, obj.get("delta"))
            if chunk is not None and chunk.text:  # a text delta: its shape may be learned
                self._shapes.offer(
                    event.data,
                    obj,
                    _TEXT,
                    _TEXT_MARKER,
                    chunk,
                    read=self._events,
                    event=event.event,
                )
            return chunk
        if kind == "message_delta":
            delta = obj.get("delta")
            raw_stop = delta.get("stop_reason") if isinstance(delta, dict) else None
            raw_stop = raw_stop if isinstance(raw_stop, str) else None
            self._merge_usage(obj.get("usage"))
            self._usage_sent = True
            if raw_stop is not None:
                self._stopped = True
            return self._chunk(
                refusal=refusal_note(delta.get("stop_details"))
                if raw_stop == "refusal" and isinstance(delta, dict)
                else "",
                finish_reason=normalize_stop_reason(raw_stop),
                raw_finish_reason=raw_stop,
                usage=parse_usage(self._usage),
            )
        if kind == "message_stop":
            # Complete only when a message_delta said why generation stopped.
            if self._stopped:
                self.complete = True
            else:
                self.incomplete_detail = "message_stop arrived without a stop_reason"
            if not self._usage_sent and self._usage:  # no message_delta: report start's usage
                self._usage_sent = True
                return self._chunk(usage=parse_usage(self._usage))
        # ping, content_block_stop, message_stop and unknown events carry nothing to show.
        return None

    def _block_start(self, index: int, block: Any) -> ChatChunk | None:
        if not isinstance(block, dict):
            return None
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str) and block["text"]:
            return self._chunk(text=block["text"])
        if kind == "thinking":
            start = block.get("thinking")
            self._thinking[index] = ("thinking", [start] if isinstance(start, str) else [], [])
        elif kind == "redacted_thinking" and isinstance(block.get("data"), str):
            self._thinking[index] = ("redacted_thinking", [], [block["data"]])
        elif kind == "tool_use" and index not in self._tools:
            self._tools[index] = position = len(self._tools)
            call_id = block.get("id")
            name = block.get("name")
            delta = ToolCallDelta(
                index=position,
                id=call_id if isinstance(call_id, str) else None,
                name=name if isinstance(name, str) else None,
                arguments="",
                metadata=self._kept_thinking() if position == 0 else None,
            )
            return self._chunk(tool_calls=[delta])
        return None

    def _block_delta(self, index: int, delta: Any) -> ChatChunk | None:
        if not isinstance(delta, dict):
            return None
        kind = delta.get("type")
        if kind == "text_delta" and isinstance(delta.get("text"), str):
            return self._chunk(text=delta["text"]) if delta["text"] else None
        if kind == "input_json_delta" and index in self._tools:
            fragment = delta.get("partial_json")
            if not isinstance(fragment, str) or not fragment:
                return None
            call = ToolCallDelta(
                index=self._tools[index], id=None, name=None, arguments=fragment, metadata=None
            )
            return self._chunk(tool_calls=[call])
        if kind == "thinking_delta" and isinstance(delta.get("thinking"), str):
            if index in self._thinking:
                self._thinking[index][1].append(delta["thinking"])
            return self._chunk(reasoning=delta["thinking"]) if delta["thinking"] else None
        if kind == "signature_delta" and index in self._thinking:
            signature = delta.get("signature")
            if isinstance(signature, str):
                self._thinking[index][2].append(signature)
        # citations_delta and newer delta types are ignored.
        return None

    def _kept_thinking(self) -> dict[str, Any] | None:
        blocks: list[dict[str, Any]] = []
        for kind, parts, extra in self._thinking.values():
            if kind == "thinking":
                blocks.append(
                    {"type": "thinking", "thinking": "".join(parts), "signature": "".join(extra)}
                )
            else:
                blocks.append({"type": "redacted_thinking", "data": "".join(extra)})
        return {THINKING_KEY: blocks} if blocks else None

    def _merge_usage(self, usage: Any) -> None:
        if isinstance(usage, dict):
            for key in _USAGE_FIELDS:
                if usage.get(key) is not None:
                    self._usage[key] = usage[key]

    def _chunk(
        self,
        *,
        text: str = "",
        reasoning: str = "",
        refusal: str = "",
        tool_calls: list[ToolCallDelta] | None = None,
        finish_reason: FinishReason | None = None,
        raw_finish_reason: str | None = None,
        usage: Usage | None = None,
    ) -> ChatChunk:
        # Validated as ChatChunk(...) is, without BaseModel.__init__'s frame (once per token).
        chunk: ChatChunk = ChatChunk.__pydantic_validator__.validate_python(
            {
                "text": text,
                "reasoning": reasoning,
                "refusal": refusal,
                "tool_calls": tool_calls or [],
                "finish_reason": finish_reason,
                "raw_finish_reason": raw_finish_reason,
                "usage": usage,
                "id": self._id,
                "model": self._model,
            }
        )
        return chunk
