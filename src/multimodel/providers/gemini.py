"""Gemini API (``generativelanguage`` v1beta): ``generateContent`` and ``streamGenerateContent``.

Wire notes that this adapter handles (see ``WIRE.md`` §4, §6-7):

* path ``models/{model}:generateContent`` (a ``wire_model`` already starting with ``models/``,
  ``tunedModels/`` or ``dynamic/`` is kept); streams add ``?alt=sse``, without which Gemini
  streams one JSON array; the key travels in ``x-goog-api-key``;
* lowerCamelCase body; system/developer messages become ``systemInstruction``; roles are
  ``user``/``model``, tool results are ``user`` turns, consecutive same-role turns are merged;
* ``functionResponse`` needs the function *name*, looked up from the earlier assistant call with
  the same id; its ``response`` must be an object (else ``{"result": ...}``). A replayed
  ``functionCall`` gets its ``thoughtSignature`` back from ``ToolCall.metadata``: Gemini 3 and
  thinking models reject a tool turn without it;
* no "tool calls" finish reason: ``STOP`` with ``functionCall`` parts means tool calls; a
  candidate may lack ``content`` or ``parts``; ``"thought": true`` parts are reasoning, not text;
* a blocked prompt is a 200 without candidates and with ``promptFeedback`` (usually with a
  ``blockReason``): :class:`~multimodel.errors.ContentFiltered`, which is not retried (the same
  prompt would be blocked again), with the block reason as its ``code``; a candidate that ends
  with ``SAFETY``, ``PROHIBITED_CONTENT``... is an answer with finish reason ``content_filter``;
* ``candidatesTokenCount`` excludes thinking: output = candidates + thoughts; input =
  ``promptTokenCount`` (cached included) + ``toolUsePromptTokenCount``;
* streams: CRLF-framed SSE, each event a whole response, no ``[DONE]`` (complete after a
  ``finishReason``; a stream that ends without one is incomplete); ``usageMetadata`` is
  cumulative, so the latest is kept and never summed; each ``functionCall`` arrives whole.
  Without ``alt=sse`` (a proxy that drops it) the answer is one JSON array of those responses,
  which is read the same way;
* errors: ``{"error": {code, message, status, details}}``, sometimes inside a JSON array. A bad
  key is a 400 with ``ErrorInfo.reason`` ``API_KEY_INVALID``; a 429 carries its wait in
  ``RetryInfo.retryDelay`` (``"13s"``), not a header; a 429 on a per-day quota (``quotaId``
  containing ``PerDay``) is :class:`QuotaExhausted` since retrying cannot help. 504
  ``DEADLINE_EXCEEDED`` is a :class:`ServerError`: the server answered, and
  :class:`ProviderTimeout` is kept for our own timeouts (and 408).

Messages become Gemini contents in ``_gemini_contents``, embeddings are ``_gemini_embeddings``
(which :class:`GeminiAdapter` inherits) and structured outputs' schemas are converted by
``_schema.gemini_schema``; this module builds chat requests and reads answers, streams and
errors.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import httpx

from ..errors import (
    AuthenticationError,
    ContentFiltered,
    MalformedResponse,
    ProviderError,
    QuotaExhausted,
    redact,
)
from ..types import (
    ChatChunk,
    ChatRequest,
    FinishReason,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from ..types._response import assistant_message
from ._errors import MAX_RETRY_AFTER, error_from_status, parse_retry_after
from ._gemini_contents import model_path, to_gemini
from ._gemini_embeddings import GeminiEmbeddings
from ._params import drop_params
from ._reasoning import gemini_thinking
from ._request import json_bytes, post_request, request_headers
from ._schema import gemini_schema
from ._stream import SSEStreamDecoder
from ._usage import NO_USAGE, token_count, usage_of
from .base import Endpoint, ParsedResponse
from .sse import ServerSentEvent

__all__ = ["GeminiAdapter", "normalize_finish_reason", "parse_usage"]

_TOOL_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY", "tool": "ANY"}
_FILTERED = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII"}
_TOOL_ERRORS = {"MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS"}
_DELAY_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)s\s*$")


def normalize_finish_reason(
    raw: str | None, *, has_tool_calls: bool = False
) -> FinishReason | None:
    """Map a Gemini ``finishReason`` to the normalized set.

    ``STOP`` means ``tool_calls`` when the candidate holds ``functionCall`` parts, since Gemini
    has no finish reason of its own for them.
    """
    if raw is None:
        return None
    if raw == "STOP":
        return "tool_calls" if has_tool_calls else "stop"
    if raw == "MAX_TOKENS":
        return "length"
    if raw in _FILTERED or raw.startswith("IMAGE_"):
        return "content_filter"
    if raw in _TOOL_ERRORS:
        return "error"
    return "other"


def parse_usage(data: Any) -> Usage | None:
    """Normalize a ``usageMetadata`` object (``None`` when absent or not an object).

    Thinking is billed as output but not counted in ``candidatesTokenCount``, so it is added.
    """
    if not isinstance(data, dict):
        return None
    thoughts = token_count(data.get("thoughtsTokenCount"))
    return usage_of(  # input, output, cache read, cache write, reasoning
        token_count(data.get("promptTokenCount"))
        + token_count(data.get("toolUsePromptTokenCount")),
        token_count(data.get("candidatesTokenCount")) + thoughts,
        token_count(data.get("cachedContentTokenCount")),
        0,
        thoughts,
    )


def _merge(into: dict[str, Any], extra: Mapping[str, Any]) -> None:
    # Nested merge: Gemini keeps most knobs inside generationConfig, and an extra_body of
    # {"generationConfig": {"thinkingConfig": ...}} must not drop maxOutputTokens.
    for key, value in extra.items():
        current = into.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            merged = dict(current)
            _merge(merged, value)
            into[key] = merged
        else:
            into[key] = value


class _Parts:
    """What one candidate's ``parts`` hold: visible text, thought text and function calls."""

    __slots__ = ("calls", "reasoning", "text")

    def __init__(self) -> None:
        self.text = ""
        self.reasoning = ""
        # (id or None, name, arguments JSON, thoughtSignature or None)
        self.calls: list[tuple[str | None, str, str, str | None]] = []


# OpenAI parameters with a Gemini equivalent (generationConfig fields); the rest are dropped.
_GEMINI_PARAMS = {"frequency_penalty": "frequencyPenalty", "presence_penalty": "presencePenalty"}


class GeminiAdapter(GeminiEmbeddings):
    """The Gemini API ``generateContent`` wire format."""

    name = "gemini"
    openai_equivalents = frozenset({*_GEMINI_PARAMS, "reasoning_effort"})

    def unsupported_fields(self, request: ChatRequest, endpoint: Endpoint) -> list[str]:
        """``metadata``, and ``parallel_tool_calls=False`` (Gemini may always call several
        functions at once)."""
        choice = request.tool_choice
        return [
            name
            for name, given in (
                ("metadata", bool(request.metadata)),
                ("parallel_tool_calls", choice is not None and choice.parallel is False),
            )
            if given
        ]

    # -- requests ------------------------------------------------------------------------------

    def build_request(
        self, request: ChatRequest, endpoint: Endpoint, *, stream: bool
    ) -> httpx.Request:
        system, contents = to_gemini(request.messages)
        body: dict[str, Any] = {"contents": contents}
        if system:
            body["systemInstruction"] = {"parts": system}
        config: dict[str, Any] = {
            key: value
            for key, value in (
                ("maxOutputTokens", request.max_tokens),
                ("temperature", request.temperature),
                ("topP", request.top_p),
                ("stopSequences", request.stop or None),
                ("seed", request.seed),
            )
            if value is not None
        }
        dropped = self.unsupported_fields(request, endpoint)
        if request.openai_params:
            for name, value in request.openai_params.items():
                if name in _GEMINI_PARAMS:
                    config[_GEMINI_PARAMS[name]] = value
                elif name == "reasoning_effort":
                    config["thinkingConfig"] = gemini_thinking(value, endpoint.wire_model)
                else:
                    dropped.append(name)
        if dropped:
            drop_params("gemini", dropped)
        fmt = request.response_format
        if fmt is not None and fmt.type != "text":
            config["responseMimeType"] = "application/json"
            if fmt.type == "json_schema":
                assert fmt.schema_ is not None
                config["responseJsonSchema"] = gemini_schema(fmt.schema_)
        if config:
            body["generationConfig"] = config
        if request.tools:
            declarations: list[dict[str, Any]] = []
            for t in request.tools:
                declarations.append({"name": t.name, "parametersJsonSchema": t.parameters})
                if t.description is not None:
                    declarations[-1]["description"] = t.description
            body["tools"] = [{"functionDeclarations": declarations}]
        if request.tool_choice is not None:
            calling: dict[str, Any] = {"mode": _TOOL_MODES[request.tool_choice.mode]}
            if request.tool_choice.mode == "tool":
                calling["allowedFunctionNames"] = [request.tool_choice.name]
            body["toolConfig"] = {"functionCallingConfig": calling}
        _merge(body, dict(endpoint.extra_body))
        if request.extra_body:
            _merge(body, request.extra_body)

        headers = request_headers(endpoint, stream=stream)
        model = model_path(endpoint.wire_model)
        # The query is part of the cached URL: merging params costs more than building the rest.
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return post_request(
            endpoint,
            endpoint.url(f"{model}:{method}"),
            headers,
            json_bytes(body),
        )

    # -- responses -----------------------------------------------------------------------------

    def parse_response(self, response: httpx.Response, endpoint: Endpoint) -> ParsedResponse:
        body = self.json_body(response, endpoint)
        if isinstance(body, list) and len(body) == 1:
            body = body[0]  # a stray array-framed answer ("[{...}]")
        if not isinstance(body, dict):
            raise self._malformed("response body is not a JSON object", endpoint, response)
        candidates = body.get("candidates")
        if "error" in body and not candidates:
            raise self._error_from_body(body, response.status_code, endpoint, response.headers)
        if not candidates and isinstance(body.get("promptFeedback"), dict):
            raise _blocked(body, endpoint, response.headers)
        usage = parse_usage(body.get("usageMetadata")) or NO_USAGE
        model = str(body.get("modelVersion") or endpoint.wire_model)
        if not candidates:
            raise self._malformed("response has no candidates", endpoint, response)
        try:
            candidate, parts = self._read_candidate(candidates)
        except TypeError as exc:
            raise self._malformed(str(exc), endpoint, response) from exc
        fr = candidate.get("finishReason")
        raw_finish = fr if isinstance(fr, str) and fr else None
        calls = [
            ToolCall(
                id=call_id or f"call_{n}",
                name=name,
                arguments=args,
                metadata={"thoughtSignature": sig} if sig else None,
            )
            for n, (call_id, name, args, sig) in enumerate(parts.calls)
        ]
        return ParsedResponse(
            id=str(body.get("responseId") or ""),
            message=assistant_message(
                parts.text if parts.text or not calls else None, calls or None
            ),
            finish_reason=normalize_finish_reason(raw_finish, has_tool_calls=bool(calls)),
            raw_finish_reason=raw_finish,
            usage=usage,
            model=model,
            raw=body,
        )

    @staticmethod
    def _block_reason(body: dict[str, Any]) -> str | None:
        feedback = body.get("promptFeedback")
        reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
        return reason if isinstance(reason, str) and reason else None

    @staticmethod
    def _read_candidate(candidates: Any) -> tuple[dict[str, Any], _Parts]:
        """The first candidate and its parts; ``TypeError`` on a shape the API never sends."""
        if not isinstance(candidates, list) or not isinstance(candidates[0], dict):
            raise TypeError("candidates is not a list of objects")
        candidate, out = candidates[0], _Parts()
        content = candidate.get("content")
        if content is not None and not isinstance(content, dict):
            raise TypeError("candidate content is not an object")
        parts = (content or {}).get("parts") or []
        if not isinstance(parts, list):
            raise TypeError("content parts is not a list")
        for part in parts:
            if not isinstance(part, dict):
                raise TypeError("a content part is not an object")
            text = part.get("text")
            if text is not None:
                if not isinstance(text, str):
                    raise TypeError("a text part is not a string")
                if part.get("thought") is True:
                    out.reasoning += text
                else:
                    out.text += text
            call = part.get("functionCall")
            if call is not None:
                if not isinstance(call, dict) or not isinstance(call.get("name"), str):
                    raise TypeError("a functionCall part has no name")
                args = {} if call.get("args") is None else call["args"]
                if not isinstance(args, dict):
                    raise TypeError("functionCall args is not an object")
                call_id = call.get("id")
                sig = part.get("thoughtSignature")
                out.calls.append(
                    (
                        call_id if isinstance(call_id, str) and call_id else None,
                        call["name"],
                        json.dumps(args, separators=(",", ":"), ensure_ascii=False),
                        sig if isinstance(sig, str) and sig else None,
                    )
                )
        return candidate, out

    def stream_decoder(
        self, endpoint: Endpoint, *, content_type: str | None = None
    ) -> _GeminiStreamDecoder:
        return _GeminiStreamDecoder(endpoint, content_type, self)

    def map_error(self, response: httpx.Response, endpoint: Endpoint) -> ProviderError:
        try:
            body: Any = json.loads(response.content)
        except (ValueError, RecursionError):
            body = None
        if isinstance(body, list):  # array-framed stream errors: [{"error": {...}}]
            body = next((b for b in body if isinstance(b, dict) and "error" in b), None)
        if isinstance(body, dict):
            return self._error_from_body(body, response.status_code, endpoint, response.headers)
        text = _redact(response.content[:500].decode("utf-8", "replace").strip(), endpoint)
        return error_from_status(
            response.status_code, text, endpoint, headers=response.headers, body=text
        )

    @staticmethod
    def _error_from_body(
        body: dict[str, Any], status: int, endpoint: Endpoint, headers: Any = None
    ) -> ProviderError:
        err = body.get("error")
        if not isinstance(err, dict):
            err = {"message": str(err or body)[:500]}
        embedded = err.get("code")
        if status < 400 and type(embedded) is int and 400 <= embedded <= 599:
            # An error inside a 200 answer or stream: its own code says what really happened.
            status = embedded
        message = _redact(str(err.get("message") or ""), endpoint)
        gstatus = err.get("status")
        code = gstatus if isinstance(gstatus, str) and gstatus else None
        details = err.get("details")
        details = [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []
        reasons = {d.get("reason") for d in details if _is_detail(d, "ErrorInfo")}
        headers = headers or {}
        kw: dict[str, Any] = {
            "provider": endpoint.provider,
            "deployment": endpoint.name,
            "status": status,
            "request_id": headers.get("x-request-id"),
            "body": body,
        }
        if "API_KEY_INVALID" in reasons:  # a 400, not a 401
            return AuthenticationError(message or "API key not valid", code="API_KEY_INVALID", **kw)
        retry_after: float | None = None
        if status == 429 or code == "RESOURCE_EXHAUSTED":
            if _per_day_quota(details):
                return QuotaExhausted(message or "daily quota exhausted", code=code, **kw)
            retry_after = parse_retry_after(headers)
            if retry_after is None:
                retry_after = _retry_delay(details)
        return error_from_status(
            status,
            message,
            endpoint,
            code=code,
            headers=headers,
            body=body,
            retry_after=retry_after,
        )


def _blocked(
    body: dict[str, Any], endpoint: Endpoint, headers: Mapping[str, str] | None = None
) -> ContentFiltered:
    """The error for a prompt Gemini blocked: no candidates, a ``promptFeedback``."""
    reason = GeminiAdapter._block_reason(body)
    what = f"blockReason {reason}" if reason else "promptFeedback without a blockReason"
    return ContentFiltered(
        f"Gemini blocked the prompt ({what})",
        provider=endpoint.provider,
        deployment=endpoint.name,
        status=200,
        request_id=(headers or {}).get("x-request-id"),
        code=reason,
        body=body,
    )


def _redact(text: str, endpoint: Endpoint) -> str:
    key = endpoint.api_key.get_secret_value() if endpoint.api_key is not None else ""
    return redact(text, (key,))


def _is_detail(detail: dict[str, Any], kind: str) -> bool:
    return str(detail.get("@type", "")).endswith(f"google.rpc.{kind}")


def _per_day_quota(details: list[dict[str, Any]]) -> bool:
    for detail in details:
        if not _is_detail(detail, "QuotaFailure"):
            continue
        violations = detail.get("violations")
        for violation in violations if isinstance(violations, list) else ():
            if isinstance(violation, dict) and "PerDay" in str(violation.get("quotaId", "")):
                return True
    return False


def _retry_delay(details: list[dict[str, Any]]) -> float | None:
    """Seconds from a ``google.rpc.RetryInfo`` detail (``"13s"``, ``"1.5s"``), clamped."""
    for detail in details:
        delay = detail.get("retryDelay") if _is_detail(detail, "RetryInfo") else None
        match = _DELAY_RE.match(delay) if isinstance(delay, str) else None
        if match:
            return min(float(match.group(1)), MAX_RETRY_AFTER)
    return None


class _GeminiStreamDecoder(SSEStreamDecoder):
    def __init__(
        self,
        endpoint: Endpoint,
        content_type: str | None = None,
        adapter: GeminiAdapter | None = None,
    ) -> None:
        super().__init__(endpoint, content_type, adapter)
        self._next_call = 0
        self._usage: Usage | None = None  # the latest cumulative usage seen
        self._sent_usage: Usage | None = None  # the last usage handed to the caller

    def on_event(self, event: ServerSentEvent) -> ChatChunk | None:
        data = event.data
        if not data.strip():
            return None
        obj = self.load_json(data)
        return self._on_object(obj) if isinstance(obj, dict) else None

    def on_json(self, obj: Any, body: bytes) -> list[ChatChunk]:
        if not isinstance(obj, list):
            return super().on_json(obj, body)
        # streamGenerateContent without alt=sse: a JSON array of whole responses.
        out = [c for c in map(self._on_object, (o for o in obj if isinstance(o, dict))) if c]
        out.extend(self.on_end())
        if not self.complete:
            raise MalformedResponse(
                "a JSON array of responses without a finishReason",
                provider=self.endpoint.provider,
                deployment=self.endpoint.name,
                status=200,
            )
        return out

    def _on_object(self, obj: dict[str, Any]) -> ChatChunk | None:
        candidates = obj.get("candidates")
        if "error" in obj and not candidates:
            raise GeminiAdapter._error_from_body(obj, 200, self.endpoint)
        if not candidates and GeminiAdapter._block_reason(obj) is not None:
            raise _blocked(obj, self.endpoint)
        usage = parse_usage(obj.get("usageMetadata"))
        if usage is not None:
            self._usage = usage
        raw_finish: str | None = None
        parts = _Parts()
        if candidates:
            try:
                candidate, parts = GeminiAdapter._read_candidate(candidates)
            except TypeError as exc:
                raise MalformedResponse(
                    f"stream event: {exc}",
                    provider=self.endpoint.provider,
                    deployment=self.endpoint.name,
                ) from exc
            fr = candidate.get("finishReason")
            raw_finish = fr if isinstance(fr, str) and fr else None
        finish: FinishReason | None = None
        if raw_finish is not None:
            # Calls arrive whole, so any call already emitted makes a STOP mean tool calls.
            finish = normalize_finish_reason(
                raw_finish, has_tool_calls=bool(parts.calls) or self._next_call > 0
            )
        deltas = [
            ToolCallDelta(
                index=index,
                id=call_id or f"call_{index}",
                name=name,
                arguments=args,
                metadata={"thoughtSignature": sig} if sig else None,
            )
            for index, (call_id, name, args, sig) in enumerate(parts.calls, self._next_call)
        ]
        self._next_call += len(deltas)
        chunk_usage: Usage | None = None
        if finish is not None:
            # Usage rides on the first finish only: a (malformed) stream that finishes again
            # has what changed since handed out once, at its end (on_end).
            if not self.complete:
                chunk_usage = self._take_usage()
            self.complete = True
        if not (parts.text or parts.reasoning or deltas or finish or chunk_usage):
            return None
        # Validated as ChatChunk(...) is, without BaseModel.__init__'s frame (once per token).
        chunk: ChatChunk = ChatChunk.__pydantic_validator__.validate_python(
            {
                "text": parts.text,
                "reasoning": parts.reasoning,
                "tool_calls": deltas,
                "finish_reason": finish,
                "raw_finish_reason": raw_finish,
                "usage": chunk_usage,
                "id": str(obj.get("responseId") or "") or None,
                "model": str(obj.get("modelVersion") or "") or None,
            }
        )
        return chunk

    def on_end(self) -> list[ChatChunk]:
        # Usage that changed after the final chunk (or a stream that never finished) is owed.
        usage = self._take_usage()
        return [] if usage is None else [ChatChunk(usage=usage)]

    def _take_usage(self) -> Usage | None:
        if self._usage is None or self._usage == self._sent_usage:
            return None
        self._sent_usage = self._usage
        return self._usage
