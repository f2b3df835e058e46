"""OpenAI Chat Completions, and every OpenAI-compatible provider through its preset.

Wire notes that this adapter handles (see ``WIRE.md`` §1-2):

* ``max_completion_tokens`` for OpenAI and Azure (reasoning models reject ``max_tokens``);
  compatible providers get ``max_tokens`` (the preset's ``max_tokens_field``);
* ``stream_options.include_usage`` so streams report usage, in a final chunk whose ``choices``
  is empty; chunks without ``choices`` or without ``delta`` (Azure) are normal;
* streamed tool calls merge by ``index``; a fragment whose non-empty ``id`` differs from the
  call at that index starts a new call (gateways that reuse an index);
* usage: ``prompt_tokens`` already includes cached tokens; DeepSeek reports cache hits as
  ``prompt_cache_hit_tokens``; Groq may put stream usage under ``x_groq.usage``;
* errors inside a 200 stream arrive as ``data: {"error": {...}}``;
* Azure: ``/openai/deployments/{deployment}/chat/completions?api-version=...`` and ``api-key``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from ..errors import InvalidRequestError, ProviderError
from ..types import (
    AudioPart,
    ChatRequest,
    FilePart,
    FinishReason,
    ImagePart,
    Message,
    TextPart,
    ToolCall,
    Usage,
)
from ..types._response import assistant_message
from ._embeddings import embedding_vector
from ._errors import error_from_status
from ._params import drop_params
from ._request import json_bytes, post_request, request_headers
from ._usage import NO_USAGE, token_count, usage_of
from .base import MAX_EMBEDDINGS_BODY_BYTES, Endpoint, ParsedResponse, ProviderAdapter

if TYPE_CHECKING:
    from ..embeddings import EmbedTask, ParsedEmbeddings
    from ._stream import StreamDecoder

__all__ = ["OpenAIAdapter", "normalize_finish_reason", "parse_usage"]

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "model_length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
    "error": "error",
}


def normalize_finish_reason(raw: str | None, *, refused: bool = False) -> FinishReason | None:
    """Map an OpenAI-family ``finish_reason`` to the normalized set.

    OpenAI ends a refusal with ``stop``; ``refused=True`` (the message carried ``refusal``)
    makes that ``refusal``. A refusal cut by ``length`` or a filter keeps that reason.
    """
    if raw is None:
        return None
    if refused and raw == "stop":
        return "refusal"
    return _FINISH.get(raw, "other")


def parse_usage(data: Any) -> Usage | None:
    """Normalize an OpenAI-family ``usage`` object (``None`` when absent or not an object)."""
    if not isinstance(data, dict):
        return None
    # token_count inline for the two counts every answer has (once per answer and per chunk).
    prompt = data.get("prompt_tokens")
    if type(prompt) is not int or prompt < 0:
        prompt = 0
    completion = data.get("completion_tokens")
    if type(completion) is not int or completion < 0:
        completion = 0
    pdetails = data.get("prompt_tokens_details")
    cdetails = data.get("completion_tokens_details")
    cached = 0
    cache_write = 0
    if isinstance(pdetails, dict):
        read = pdetails.get("cached_tokens")  # token_count inline, as above
        cached = read if type(read) is int and read >= 0 else 0
        if "cache_write_tokens" in pdetails:
            cache_write = token_count(pdetails["cache_write_tokens"])
    if not cached and "prompt_cache_hit_tokens" in data:
        cached = token_count(data["prompt_cache_hit_tokens"])  # DeepSeek
    reasoning = 0
    if isinstance(cdetails, dict):
        thought = cdetails.get("reasoning_tokens")  # token_count inline, as above
        if type(thought) is int and thought >= 0:
            reasoning = thought
    return usage_of(  # input, output, cache read, cache write, reasoning
        prompt,
        completion,
        cached,
        cache_write,
        reasoning,
    )


def _str(value: Any) -> str | None:
    """A non-empty string field, or ``None`` (servers send ``null``, ``""`` or worse)."""
    return value if isinstance(value, str) and value else None


class OpenAIAdapter(ProviderAdapter):
    """The OpenAI Chat Completions wire format."""

    name = "openai"

    # -- requests ------------------------------------------------------------------------------

    def unsupported_fields(self, request: ChatRequest, endpoint: Endpoint) -> list[str]:
        """``metadata`` on a server other than OpenAI's own API (the ``openai`` and ``azure``
        presets send it, for stored completions)."""
        if request.metadata and not endpoint.option("send_metadata", False):
            return ["metadata"]
        return []

    def build_request(
        self, request: ChatRequest, endpoint: Endpoint, *, stream: bool
    ) -> httpx.Request:
        # The fields read from the model's __dict__: a pydantic attribute read passes through
        # BaseModel's __getattr__ hook (~200 instructions more each, a dozen per request).
        fields = request.__dict__
        body: dict[str, Any] = {
            "model": endpoint.wire_model,
            "messages": [self._message(m) for m in fields["messages"]],
        }
        if fields["max_tokens"] is not None:
            body[endpoint.option("max_tokens_field", "max_tokens")] = fields["max_tokens"]
        if fields["temperature"] is not None:
            body["temperature"] = fields["temperature"]
        if fields["top_p"] is not None:
            body["top_p"] = fields["top_p"]
        if fields["stop"]:
            body["stop"] = fields["stop"]
        if fields["seed"] is not None:
            body["seed"] = fields["seed"]
        if fields["user"] is not None and endpoint.option("send_user", False):
            body["user"] = fields["user"]
        if fields["metadata"]:
            if endpoint.option("send_metadata", False):
                body["metadata"] = fields["metadata"]
            else:
                drop_params(endpoint.provider, ["metadata"])
        if fields["tools"]:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        k: v
                        for k, v in (
                            ("name", t.name),
                            ("description", t.description),
                            ("parameters", t.parameters),
                            ("strict", t.strict),
                        )
                        if v is not None
                    },
                }
                for t in fields["tools"]
            ]
        if fields["tool_choice"] is not None:
            choice = fields["tool_choice"]
            if choice.mode == "tool":
                body["tool_choice"] = {"type": "function", "function": {"name": choice.name}}
            else:
                body["tool_choice"] = choice.mode
            if choice.parallel is not None:
                body["parallel_tool_calls"] = choice.parallel
        if fields["response_format"] is not None:
            # Loaded by the first structured request (~0.8 µs each after it, beside the schema
            # work): a plain query never needs the schema modules.
            from ._response_format import openai_response_format

            body["response_format"] = openai_response_format(
                fields["response_format"], endpoint, body["messages"]
            )
        if stream:
            body["stream"] = True
            if endpoint.option("stream_usage", True):
                body["stream_options"] = {"include_usage": True}
        if fields["openai_params"]:
            body.update(fields["openai_params"])  # OpenAI's own parameters, as they are
        body.update(endpoint.extra_body)
        if fields["extra_body"]:
            body.update(fields["extra_body"])

        headers = request_headers(endpoint, stream=stream)
        if endpoint.option("azure"):
            # The query is part of the cached URL: merging params costs more than the rest.
            version = quote(endpoint.api_version or "2024-10-21", safe="")
            deployment = quote(endpoint.wire_model, safe="")
            url = endpoint.url(
                f"openai/deployments/{deployment}/chat/completions?api-version={version}"
            )
        else:
            url = endpoint.url("chat/completions")
        return post_request(
            endpoint,
            url,
            headers,
            json_bytes(body),
        )

    # -- embeddings ----------------------------------------------------------------------------

    embedding_limits = (2048, 300_000)  # inputs, and tokens, per request (OpenAI's limits)

    def build_embedding_request(
        self,
        inputs: Sequence[str],
        endpoint: Endpoint,
        *,
        dimensions: int | None,
        task: EmbedTask | None = None,
    ) -> httpx.Request:
        if task is not None:  # Gemini's; a client with unsupported_params="error" refused it
            drop_params(endpoint.provider, task.params)
        body: dict[str, Any] = {
            "model": endpoint.wire_model,
            "input": list(inputs),
            # base64 (little-endian float32s) where the provider documents it: a third of
            # the bytes, and ten times faster to decode than JSON numbers.
            "encoding_format": "base64" if endpoint.option("embedding_base64") else "float",
        }
        if dimensions is not None:
            body["dimensions"] = dimensions
        headers = request_headers(endpoint, stream=False)
        if endpoint.option("azure"):
            version = quote(endpoint.api_version or "2024-10-21", safe="")
            deployment = quote(endpoint.wire_model, safe="")
            url = endpoint.url(f"openai/deployments/{deployment}/embeddings?api-version={version}")
        else:
            url = endpoint.url("embeddings")
        return post_request(endpoint, url, headers, json_bytes(body))

    def parse_embedding_response(
        self, response: httpx.Response, endpoint: Endpoint, count: int
    ) -> ParsedEmbeddings:
        from ..embeddings import ParsedEmbeddings

        body = self.json_body(response, endpoint, MAX_EMBEDDINGS_BODY_BYTES)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list) or len(data) != count:
            raise self._malformed(
                f"an embeddings answer needs `data` with {count} vectors", endpoint, response
            )
        vectors: list[list[float] | None] = [None] * count
        for position, item in enumerate(data):
            index = item.get("index", position) if isinstance(item, dict) else None
            vector = embedding_vector(item.get("embedding") if isinstance(item, dict) else None)
            if not isinstance(index, int) or not 0 <= index < count or vector is None:
                raise self._malformed(f"embedding {position} is malformed", endpoint, response)
            vectors[index] = vector
        if any(v is None for v in vectors):
            raise self._malformed("an embeddings answer repeats an index", endpoint, response)
        usage = body.get("usage")
        parsed_usage = (
            usage_of(token_count(usage.get("prompt_tokens")), 0, 0, 0, 0)
            if isinstance(usage, dict) and "prompt_tokens" in usage
            else None
        )
        model = body.get("model")
        return ParsedEmbeddings(
            vectors=[v for v in vectors if v is not None],
            usage=parsed_usage,
            model=model if isinstance(model, str) else endpoint.wire_model,
        )

    @staticmethod
    def _message(message: Message) -> dict[str, Any]:
        values = message.__dict__  # dict reads, as in build_request
        out: dict[str, Any] = {"role": values["role"]}
        content = values["content"]
        if content is None or isinstance(content, str):
            out["content"] = content
        else:
            parts: list[dict[str, Any]] = []
            for part in content:
                if isinstance(part, TextPart):
                    parts.append({"type": "text", "text": part.text})
                elif isinstance(part, ImagePart):
                    inline = part.inline()
                    url = f"data:{inline[0]};base64,{inline[1]}" if inline else part.url
                    image: dict[str, Any] = {"url": url}
                    if part.detail:
                        image["detail"] = part.detail
                    parts.append({"type": "image_url", "image_url": image})
                elif isinstance(part, AudioPart):
                    audio = {"data": part.data, "format": part.format}
                    parts.append({"type": "input_audio", "input_audio": audio})
                elif isinstance(part, FilePart):
                    file: dict[str, Any] = {}
                    if part.data is not None:
                        kind = part.media_type or "application/octet-stream"
                        file["file_data"] = f"data:{kind};base64,{part.data}"
                    if part.file_id is not None:
                        file["file_id"] = part.file_id
                    if part.filename is not None:
                        file["filename"] = part.filename
                    parts.append({"type": "file", "file": file})
            out["content"] = parts
        if values["name"]:
            out["name"] = values["name"]
        if values["refusal"] is not None:
            out["refusal"] = values["refusal"]
        if values["tool_calls"]:
            out["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in values["tool_calls"]
            ]
        if values["role"] == "tool":
            out["tool_call_id"] = values["tool_call_id"]
            if content is None:
                raise InvalidRequestError(
                    "a tool message needs content", field="messages[].content"
                )
        return out

    # -- responses -----------------------------------------------------------------------------

    def parse_response(self, response: httpx.Response, endpoint: Endpoint) -> ParsedResponse:
        body = self.json_body(response, endpoint)
        if not isinstance(body, dict):
            raise self._malformed("response body is not a JSON object", endpoint, response)
        error = body.get("error") is not None or body.get("object") == "error"  # vLLM's old shape
        if error and not body.get("choices"):
            raise self._error_from_body(body, response.status_code, endpoint, response.headers)
        choices = body.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise self._malformed("response has no choices", endpoint, response)
        choice = choices[0]
        msg = choice.get("message")
        if not isinstance(msg, dict):
            raise self._malformed("choice has no message", endpoint, response)
        text = msg.get("content")
        refusal = msg.get("refusal")  # _str, inline: once per answer
        if not (isinstance(refusal, str) and refusal):
            refusal = None
        if isinstance(text, list):
            # Some compatible servers (Mistral's reasoning models) send content as parts.
            text = "".join(
                p["text"]
                for p in text
                if isinstance(p, dict)
                and p.get("type") == "text"
                and isinstance(p.get("text"), str)
            )
        if text is not None and not isinstance(text, str):
            raise self._malformed("message content is not a string", endpoint, response)
        calls: list[ToolCall] = []
        raw_calls = msg.get("tool_calls") or ()
        if raw_calls and not isinstance(raw_calls, list):
            raise self._malformed("tool_calls is not a list", endpoint, response)
        for raw in raw_calls:
            fn = raw.get("function") if isinstance(raw, dict) else None
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                raise self._malformed("tool call without a function name", endpoint, response)
            args = fn.get("arguments", "")
            if not isinstance(args, str):
                # Some compatible servers (Ollama's native style) send an object.
                args = json.dumps(args, separators=(",", ":"))
            calls.append(
                ToolCall(
                    id=str(raw.get("id") or f"call_{len(calls)}"),
                    name=fn["name"],
                    arguments=args or "{}",
                    metadata=None,
                )
            )
        message = assistant_message(
            text if text is not None else ("" if not calls else None), calls or None, refusal
        )
        raw_finish = choice.get("finish_reason")
        if isinstance(raw_finish, str):
            finish = normalize_finish_reason(raw_finish, refused=refusal is not None)
        else:
            raw_finish = finish = None
        usage = parse_usage(body.get("usage")) or NO_USAGE
        return ParsedResponse(
            id=str(body.get("id") or ""),
            message=message,
            finish_reason=finish,
            raw_finish_reason=raw_finish,
            usage=usage,
            model=str(body.get("model") or endpoint.wire_model),
            raw=body,
        )

    def stream_decoder(
        self, endpoint: Endpoint, *, content_type: str | None = None
    ) -> StreamDecoder:
        # The streaming modules load with the first stream: a plain query never needs them.
        from ._openai_stream import OpenAIStreamDecoder

        return OpenAIStreamDecoder(endpoint, content_type, self)

    @staticmethod
    def _error_from_body(
        body: dict[str, Any], status: int, endpoint: Endpoint, headers: Any = None
    ) -> ProviderError:
        err = body.get("error")
        # vLLM's older servers put the error at the top level: {"object": "error", ...}.
        if not isinstance(err, dict):
            err = body if "message" in body else {"message": str(err or body)[:500]}
        message = str(err.get("message") or "")
        code = err.get("code")
        etype = err.get("type")
        chosen = code if isinstance(code, str) and code else etype
        if status < 400 and type(code) is int and 400 <= code <= 599:
            # An error event inside a 200 stream (vLLM, OpenRouter) gives its status as `code`.
            status = code
        return error_from_status(
            status,
            message,
            endpoint,
            code=chosen if isinstance(chosen, str) else None,
            headers=headers,
            body=body,
        )
