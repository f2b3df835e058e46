"""Structured outputs without I/O: turn a pydantic model or a JSON-schema dict into a
:class:`~multimodel.types.ResponseFormat`, and an answer into a validated object.

Used by ``query``, ``chat.completions.parse`` and ``stream`` of both clients only when a
``response_format`` is given: the plain chat path never comes here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from ..errors import ContentFiltered, InvalidRequestError, StructuredOutputError
from ..types import ChatChunk, ChatRequest, ChatResponse, Message, ResponseFormat

__all__ = [
    "AnswerChunks",
    "feedback",
    "finish",
    "for_call",
    "prepare",
    "validate_json",
]

_FORMAT_TYPES = frozenset({"text", "json_object", "json_schema"})
_NAME = re.compile(r"[^A-Za-z0-9_-]")
_FENCE = re.compile(r"\A\s*```[A-Za-z]*\s*\n?(.*?)\n?\s*```\s*\Z", re.DOTALL)


def prepare(value: Any) -> tuple[ResponseFormat, type[BaseModel] | None]:
    """The wire format and, for a pydantic model, the class that validates the answer.

    ``value`` is a pydantic model class, a :class:`ResponseFormat`, OpenAI's
    ``{"type": "json_schema", "json_schema": {...}}`` (or ``json_object``/``text``), or a
    JSON-schema dict (anything else with a ``type``/``properties``), which is sent in strict mode.
    """
    if isinstance(value, type) and issubclass(value, BaseModel):
        schema = value.model_json_schema()
        name = _NAME.sub("_", value.__name__)[:64] or "response"
        return ResponseFormat(type="json_schema", name=name, schema=schema, strict=True), value
    if isinstance(value, ResponseFormat):
        return value, None
    if isinstance(value, Mapping):
        if value.get("type") in _FORMAT_TYPES:
            try:
                return ResponseFormat.model_validate(dict(value)), None
            except ValidationError as exc:
                raise InvalidRequestError(
                    f"response_format: {exc.errors()[0]['msg']}", field="response_format"
                ) from None
        name = _NAME.sub("_", str(value.get("title") or "response"))[:64]
        schema = dict(value)
        return ResponseFormat(type="json_schema", name=name, schema=schema, strict=True), None
    raise InvalidRequestError(
        "response_format must be a pydantic model class, a JSON-schema dict or a "
        f"ResponseFormat, got {type(value).__name__}",
        field="response_format",
    )


def for_call(
    prompt: Any, params: Mapping[str, Any]
) -> tuple[dict[str, Any], ResponseFormat, type[BaseModel] | None]:
    """``params`` with the call's ``response_format`` (from ``params``, else from a
    ``ChatRequest`` prompt) as a :class:`ResponseFormat`, that format, and the model class."""
    out = dict(params)
    value = out.get("response_format")
    if value is None and isinstance(prompt, ChatRequest):
        value = prompt.response_format
    if value is None:
        raise InvalidRequestError(
            "structured_retries needs a response_format", field="response_format"
        )
    fmt, model = prepare(value)
    out["response_format"] = fmt
    return out, fmt, model


def _answer(response: ChatResponse, fmt: ResponseFormat) -> tuple[str, ChatResponse]:
    """The answer's JSON text; a forced structured-output tool call (Anthropic) becomes text."""
    text = response.text
    calls = response.tool_calls
    if not text.strip() and calls and calls[0].name == fmt.name:
        text = calls[0].arguments
        message = Message(role="assistant", content=text)
        finish = "stop" if response.finish_reason == "tool_calls" else response.finish_reason
        response = response.model_copy(update={"message": message, "finish_reason": finish})
    return text, response


class AnswerChunks:
    """A structured stream's chunks with the forced answer tool's input as text.

    Anthropic gets a ``json_schema`` format as a forced call of a tool named after it, so its
    answer streams as that call's argument fragments. The final response turns the call into
    the answer's text (:func:`finish`); this does the same to the chunks as they come, so that
    ``chunk.text`` streams the JSON whichever provider serves the call (and the call never
    shows as a tool call). Only for requests without tools of the caller's own: with them the
    adapter asks for the JSON as text.
    """

    __slots__ = ("_index", "_name")

    def __init__(self, fmt: ResponseFormat) -> None:
        self._name = fmt.name
        self._index: int | None = None  # the forced call's index, once it started

    def reset(self) -> None:
        """A new attempt: its chunks start afresh."""
        self._index = None

    def __call__(self, chunks: list[ChatChunk]) -> list[ChatChunk]:
        return [self._one(chunk) for chunk in chunks]

    def _one(self, chunk: ChatChunk) -> ChatChunk:
        calls = chunk.tool_calls
        if not calls:
            if self._index is not None and chunk.finish_reason == "tool_calls":
                return chunk.model_copy(update={"finish_reason": "stop"})
            return chunk
        text: list[str] = []
        kept = []
        for delta in calls:
            if self._index is None and delta.name == self._name:
                self._index = delta.index
            if delta.index == self._index:
                text.append(delta.arguments)
            else:
                kept.append(delta)
        if len(kept) == len(calls):
            return chunk
        update: dict[str, Any] = {"text": chunk.text + "".join(text), "tool_calls": kept}
        if chunk.finish_reason == "tool_calls" and not kept:
            update["finish_reason"] = "stop"
        return chunk.model_copy(update=update)


def _unfenced(text: str) -> str:
    match = _FENCE.match(text)
    return match.group(1) if match else text


def finish(
    response: ChatResponse, fmt: ResponseFormat, model: type[BaseModel] | None
) -> ChatResponse:
    """``response`` with ``parsed`` set to the validated answer.

    A refusal is returned as is (``parsed`` stays ``None``; ``response.refusal`` says why).

    Raises:
        StructuredOutputError: the answer is not JSON, or does not validate.
        ContentFiltered: the provider's safety filter stopped the answer (finish reason
            ``content_filter``): not the model's mistake, so not fed back and asked again.
    """
    if response.refusal is not None or fmt.type == "text":
        return response
    if response.finish_reason == "content_filter":
        raise ContentFiltered(
            f"the provider's content filter stopped the answer (finish reason "
            f"{response.raw_finish_reason or 'content_filter'!r}) before it could be parsed as "
            f"{fmt.name or 'JSON'!r}",
            provider=response.provider,
            deployment=response.deployment,
            status=200,
            request_id=response.request_id,
            code="content_filter",
        )
    text, response = _answer(response, fmt)
    if response.finish_reason == "length":
        raise StructuredOutputError(
            "the answer was cut by the token limit before its JSON was complete (raise max_tokens)",
            raw_text=text,
            errors=[{"loc": (), "msg": "truncated (finish_reason 'length')"}],
            response=response,
        )
    body = _unfenced(text)
    parsed: Any
    if model is not None:
        try:
            parsed = model.model_validate_json(body)
        except ValidationError as exc:
            details: list[Any] = list(exc.errors(include_url=False, include_context=False))
            raise StructuredOutputError(
                f"the answer does not validate as {model.__name__}: {_summary(details)}",
                raw_text=text,
                errors=details,
                response=response,
            ) from None
    else:
        try:
            parsed = json.loads(body)
        except ValueError as exc:
            errors: list[Any] = [{"loc": (), "msg": f"not valid JSON: {exc}"}]
            raise StructuredOutputError(
                f"the answer is not valid JSON: {exc}",
                raw_text=text,
                errors=errors,
                response=response,
            ) from None
        if fmt.type == "json_schema" and fmt.schema_ is not None:
            problems = validate_json(parsed, fmt.schema_)
            if problems:
                raise StructuredOutputError(
                    f"the answer does not fit the schema {fmt.name!r}: {_summary(problems)}",
                    raw_text=text,
                    errors=problems,
                    response=response,
                )
    return response.model_copy(update={"parsed": parsed})


def _summary(errors: list[Any]) -> str:
    shown = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ())) or '(root)'}: {e.get('msg')}"
        for e in errors[:3]
    )
    more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
    return shown + more


def feedback(request: ChatRequest, error: StructuredOutputError) -> ChatRequest:
    """``request`` with the failed answer and its validation errors appended, to ask again."""
    note = (
        "Your answer did not fit the required JSON schema. Errors:\n"
        + "\n".join(
            f"- {'.'.join(str(p) for p in e.get('loc', ())) or '(root)'}: {e.get('msg')}"
            for e in error.errors[:20]
        )
        + "\nAnswer again with only the corrected JSON object."
    )
    messages = [
        *request.messages,
        Message(role="assistant", content=error.raw_text or "(no answer)"),
        Message(role="user", content=note),
    ]
    return request.model_copy(update={"messages": messages})


_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def validate_json(value: Any, schema: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Check ``value`` against the common JSON-Schema keywords (``type``, ``properties``,
    ``required``, ``additionalProperties: false``, ``items``, ``enum``, ``const``, ``anyOf``,
    local ``$ref``); return the problems as ``{"loc", "msg"}`` dicts (empty when it fits).

    A light check for JSON-schema dicts; pass a pydantic model for full validation.
    """
    out: list[dict[str, Any]] = []
    _check(value, schema, schema, (), out, 0)
    return out


def _check(
    value: Any,
    schema: Any,
    root: Mapping[str, Any],
    loc: tuple[Any, ...],
    out: list[dict[str, Any]],
    depth: int,
) -> None:
    if not isinstance(schema, Mapping) or depth > 64:
        return
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, Mapping) else None
        _check(value, target, root, loc, out, depth + 1)
    options = schema.get("anyOf") or schema.get("oneOf")
    if (
        isinstance(options, list)
        and options
        and all(validate_json_at(value, o, root, depth) for o in options)
    ):
        out.append({"loc": loc, "msg": "matches none of the allowed schemas"})
    kinds = schema.get("type")
    if kinds is not None:
        names = kinds if isinstance(kinds, list) else [kinds]
        ok = any(
            isinstance(value, _TYPES.get(k, object))
            and not (k in ("integer", "number") and isinstance(value, bool))
            for k in names
        ) or ("integer" in names and isinstance(value, float) and value.is_integer())
        if not ok:
            out.append({"loc": loc, "msg": f"expected {' or '.join(names)}"})
            return
    if "enum" in schema and value not in schema["enum"]:
        out.append({"loc": loc, "msg": f"not one of {schema['enum']!r}"})
    if "const" in schema and value != schema["const"]:
        out.append({"loc": loc, "msg": f"must be {schema['const']!r}"})
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        out.extend(
            {"loc": (*loc, name), "msg": "field required"}
            for name in schema.get("required") or ()
            if name not in value
        )
        for name, item in value.items():
            if name in props:
                _check(item, props[name], root, (*loc, name), out, depth + 1)
            elif schema.get("additionalProperties") is False:
                out.append({"loc": (*loc, name), "msg": "extra field not permitted"})
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for i, item in enumerate(value):
            _check(item, schema["items"], root, (*loc, i), out, depth + 1)


def validate_json_at(value: Any, schema: Any, root: Mapping[str, Any], depth: int) -> bool:
    """Whether ``value`` fails ``schema`` (``True`` when there are problems)."""
    problems: list[dict[str, Any]] = []
    _check(value, schema, root, (), problems, depth + 1)
    return bool(problems)
