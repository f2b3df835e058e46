"""The request side: :class:`ChatRequest` and what it carries besides messages (tools, the
tool choice, the response format, OpenAI parameters without a field of their own).

Part of :mod:`multimodel.types`, which re-exports every public name.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ._messages import _FROZEN, Message, coerce_messages
from ._response import _same, _trusted

__all__ = [
    "OPENAI_PARAMS",
    "ChatRequest",
    "ResponseFormat",
    "Tool",
    "ToolChoice",
    "prompt_request",
]


class Tool(BaseModel):
    """A function the model may call: a name, a description and a JSON Schema for its arguments."""

    model_config = _FROZEN
    name: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,128}$")
    description: str | None = None
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _accept_openai_shape(cls, data: Any) -> Any:
        # Accept {"type": "function", "function": {...}} so OpenAI-shaped tool lists work as-is.
        if isinstance(data, dict) and data.get("type") == "function" and "function" in data:
            return data["function"]
        return data


class ToolChoice(BaseModel):
    """Whether and which tool the model must call.

    ``mode`` is ``auto`` (the model decides), ``none`` (no tool), ``required`` (some tool), or
    ``tool`` with ``name`` (that tool). Strings ``"auto"``, ``"none"``, ``"required"`` and
    OpenAI's ``{"type": "function", "function": {"name": ...}}`` are accepted wherever a
    ``ToolChoice`` is expected.
    """

    model_config = _FROZEN
    mode: Literal["auto", "none", "required", "tool"]
    name: str | None = None
    parallel: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _coerce(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"mode": data}
        if isinstance(data, dict) and data.get("type") == "function":
            return {"mode": "tool", "name": (data.get("function") or {}).get("name")}
        return data

    @model_validator(mode="after")
    def _name_for_tool(self) -> ToolChoice:
        if self.mode == "tool" and not self.name:
            raise ValueError("tool_choice mode 'tool' needs `name`")
        return self


class ResponseFormat(BaseModel):
    """Ask for plain text, any JSON object, or JSON that follows a schema.

    OpenAI's ``{"type": "json_schema", "json_schema": {"name", "schema", "strict"}}`` is accepted.
    """

    model_config = _FROZEN
    type: Literal["text", "json_object", "json_schema"]
    name: str = "response"
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _accept_openai_shape(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("json_schema"), dict):
            inner = data["json_schema"]
            return {
                "type": data.get("type", "json_schema"),
                "name": inner.get("name", "response"),
                "schema": inner.get("schema"),
                "strict": inner.get("strict"),
            }
        return data

    @model_validator(mode="after")
    def _schema_present(self) -> ResponseFormat:
        if self.type == "json_schema" and self.schema_ is None:
            raise ValueError("response_format type 'json_schema' needs `schema`")
        return self


OPENAI_PARAMS = frozenset(
    {
        "frequency_penalty",
        "presence_penalty",
        "logprobs",
        "top_logprobs",
        "logit_bias",
        "reasoning_effort",
        "verbosity",
        "service_tier",
        "store",
        "modalities",
        "audio",
        "prediction",
        "prompt_cache_key",
        "safety_identifier",
        "web_search_options",
    }
)
"""OpenAI Chat Completions parameters without a field of their own in :class:`ChatRequest`.

``query`` and ``chat.completions.create`` accept them as keywords and keep them in
``ChatRequest.openai_params``: OpenAI-format deployments receive them as they are, other
formats get the provider's equivalent where there is one (Gemini: ``frequency_penalty``,
``presence_penalty``; Anthropic and Gemini: ``reasoning_effort``, as thinking), and drop the rest
with one :class:`~multimodel.errors.DroppedParameterWarning` per provider and parameter (or, on a
client with ``unsupported_params="error"``, refuse the call before sending).
``parallel_tool_calls`` becomes ``tool_choice.parallel``."""


class ChatRequest(BaseModel):
    """One chat request, independent of provider.

    ``model`` names a model group (every deployment serving it is a candidate) or ``"auto"``.
    Parameters left as ``None`` are not sent. ``openai_params`` holds OpenAI parameters without
    a field here (:data:`OPENAI_PARAMS`), translated per provider or dropped with a warning.
    ``extra_body`` is merged into the provider's JSON body last, as it is: the escape hatch for
    provider-specific fields, and the only way to send a field multimodel does not know.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, defer_build=True)

    messages: list[Message] = Field(min_length=1)
    model: str = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    stop: list[str] | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    response_format: ResponseFormat | None = None
    seed: int | None = None
    user: str | None = None
    metadata: dict[str, str] | None = None
    tags: list[str] | None = None
    openai_params: dict[str, Any] | None = None
    extra_body: dict[str, Any] | None = None

    # OpenAI's message shapes (nested tool_calls, image_url parts, the facade's objects) are
    # converted as Message.from_openai does; plain messages pass with one check each.
    _openai_messages = field_validator("messages", mode="before")(coerce_messages)

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("openai_params")
    @classmethod
    def _known_openai_params(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value:
            unknown = sorted(set(value) - OPENAI_PARAMS)
            if unknown:
                raise ValueError(
                    f"{unknown[0]!r} is not an OpenAI parameter multimodel knows "
                    f"({', '.join(sorted(OPENAI_PARAMS))}); send other fields in extra_body"
                )
        return value or None

    @model_validator(mode="after")
    def _check_tools(self) -> ChatRequest:
        if self.tool_choice is not None and self.tool_choice.mode == "tool":
            names = {t.name for t in self.tools or ()}
            if self.tool_choice.name not in names:
                raise ValueError(
                    f"tool_choice names {self.tool_choice.name!r}, which is not in `tools`"
                )
        return self


# -- the common request built without validation ---------------------------------------------------

_PROMPT_PARAMS = frozenset({"max_tokens", "temperature", "top_p", "seed", "user"})
_USER_SET = frozenset({"role", "content"})
_REQUEST_SET = frozenset({"messages", "model"})


def prompt_request(prompt: str, model: str, params: Mapping[str, Any]) -> ChatRequest | None:
    """``ChatRequest(messages=[{"role": "user", "content": prompt}], model=model, **params)``
    built without running the validators, for the common call: a non-empty prompt string and
    only ``max_tokens``, ``temperature``, ``top_p``, ``seed`` or ``user``, each of exactly its
    field's type and within its bounds. ``None`` for anything else: the caller validates.

    Validating such a request costs ~25 µs, mostly its three Python validators (the messages'
    OpenAI shapes, the message's shape, the tool choice), none of which has anything to check
    here; the checks below are the fields' own constraints.
    """
    if not (type(prompt) is str and prompt and type(model) is str and model):
        return None
    if not _PROMPT_PARAMS.issuperset(params):
        return None
    get = params.get
    max_tokens = get("max_tokens")
    temperature = get("temperature")
    top_p = get("top_p")
    seed = get("seed")
    user = get("user")
    if not (
        (max_tokens is None or (type(max_tokens) is int and max_tokens >= 1))
        and (temperature is None or (type(temperature) is float and 0 <= temperature <= 2))
        and (top_p is None or (type(top_p) is float and 0 <= top_p <= 1))
        and (seed is None or type(seed) is int)
        and (user is None or type(user) is str)
        and _prompt_request_works()
    ):
        return None
    return _build_prompt_request(prompt, model, params, max_tokens, temperature, top_p, seed, user)


def _build_prompt_request(
    prompt: str,
    model: str,
    params: Mapping[str, Any],
    max_tokens: int | None,
    temperature: float | None,
    top_p: float | None,
    seed: int | None,
    user: str | None,
) -> ChatRequest:
    message = _trusted(
        Message,
        {
            "role": "user",
            "content": prompt,
            "name": None,
            "tool_calls": None,
            "tool_call_id": None,
            "refusal": None,
        },
        _USER_SET,
    )
    return _trusted(
        ChatRequest,
        {
            "messages": [message],
            "model": model,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "top_p": top_p,
            "stop": None,
            "tools": None,
            "tool_choice": None,
            "response_format": None,
            "seed": seed,
            "user": user,
            "metadata": None,
            "tags": None,
            "openai_params": None,
            "extra_body": None,
        },
        _REQUEST_SET | params.keys() if params else _REQUEST_SET,
    )


@functools.cache
def _prompt_request_works() -> bool:
    """Whether :func:`_build_prompt_request` lays the request and its message out as pydantic's
    own unvalidated constructor (``model_construct``) does, checked once on first use (see
    :func:`~multimodel.types._response._trusted_works`: no schema is built for it; that the
    values are what validation gives is what the callers' type checks ensure, and the tests
    compare the two constructors)."""
    try:
        probes: tuple[dict[str, Any], ...] = (
            {},
            {"max_tokens": 20},
            {"max_tokens": 5, "temperature": 0.5, "top_p": 1.0, "seed": 7, "user": "u"},
            {"max_tokens": None, "user": None},
        )
        for params in probes:
            values = {k: params.get(k) for k in ("max_tokens", "temperature", "top_p")}
            got = _build_prompt_request(
                "hi",
                "m",
                params,
                values["max_tokens"],
                values["temperature"],
                values["top_p"],
                params.get("seed"),
                params.get("user"),
            )
            message = Message.model_construct(
                set(_USER_SET),
                role="user",
                content="hi",
                name=None,
                tool_calls=None,
                tool_call_id=None,
                refusal=None,
            )
            fields: dict[str, Any] = dict.fromkeys(ChatRequest.model_fields)
            fields |= {"messages": [message], "model": "m"} | params
            expected = ChatRequest.model_construct(set(_REQUEST_SET | params.keys()), **fields)
            if not (_same(expected, got) and _same(expected.messages[0], got.messages[0])):
                return False
        return True
    except (AttributeError, TypeError, ValueError):  # pragma: no cover - pydantic changed
        return False
