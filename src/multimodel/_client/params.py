"""The typed keyword parameters shared by ``query``, ``stream`` and ``batch``, and the one
rule both surfaces (``query`` and ``chat.completions.create``) apply to the others."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, TypedDict

from pydantic import BaseModel, ValidationError

from .._core.suggest import close_matches
from ..errors import InvalidRequestError
from ..types import OPENAI_PARAMS, ChatRequest, ResponseFormat, Tool, ToolChoice

__all__ = ["REQUEST_FIELDS", "RequestParams", "split_params"]

REQUEST_FIELDS = frozenset(ChatRequest.model_fields) - {"messages", "model"}
_CLIENT_KEYS = frozenset({"system", "task"})  # keywords the client takes before the request


class RequestParams(TypedDict, total=False):
    """Optional request parameters; see :class:`~multimodel.types.ChatRequest` for each."""

    system: str
    max_tokens: int
    temperature: float
    top_p: float
    stop: str | Sequence[str]
    tools: Sequence[Tool | Mapping[str, Any]]
    tool_choice: ToolChoice | str | Mapping[str, Any]
    response_format: ResponseFormat | Mapping[str, Any] | type[BaseModel]
    seed: int
    user: str
    metadata: Mapping[str, str]
    tags: Sequence[str]
    task: str
    extra_body: Mapping[str, Any]
    # OpenAI parameters (OPENAI_PARAMS): translated per provider or dropped with a warning
    frequency_penalty: float
    presence_penalty: float
    logprobs: bool
    top_logprobs: int
    logit_bias: Mapping[str, float]
    reasoning_effort: Literal["minimal", "low", "medium", "high"] | str
    verbosity: str
    service_tier: str
    store: bool
    modalities: Sequence[str]
    audio: Mapping[str, Any]
    prediction: Mapping[str, Any]
    prompt_cache_key: str
    safety_identifier: str
    web_search_options: Mapping[str, Any]
    parallel_tool_calls: bool
    max_completion_tokens: int


def split_params(params: Mapping[str, Any], also: Iterable[str] = ()) -> dict[str, Any]:
    """``params`` with OpenAI's parameters moved into ``openai_params`` (and
    ``parallel_tool_calls`` into ``tool_choice``); called only when a keyword is not a
    ``ChatRequest`` field, so the common call pays nothing.

    Raises:
        InvalidRequestError: a keyword nobody knows (a typo is never sent): the message names
            the closest valid one; ``also`` are other names valid where it is called.
    """
    out: dict[str, Any] = {}
    openai: dict[str, Any] = dict(params.get("openai_params") or {})
    parallel = None
    for key, value in params.items():
        if key in REQUEST_FIELDS or key in _CLIENT_KEYS:
            out[key] = value
        elif key == "max_completion_tokens":  # OpenAI's newer name
            if value is not None:
                out["max_tokens"] = value
        elif key == "parallel_tool_calls":
            parallel = value
        elif key in OPENAI_PARAMS:
            if value is not None:
                openai[key] = value
        else:
            valid = sorted(
                {*REQUEST_FIELDS, *OPENAI_PARAMS, *_CLIENT_KEYS}
                | {"max_completion_tokens", "parallel_tool_calls", "extra_headers", "extra_query"}
                | set(also)
            )
            close = close_matches(key, valid)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise InvalidRequestError(
                f"unknown parameter {key!r}: {hint}Nothing was sent. Valid ones: "
                f"{', '.join(valid)}; provider-specific fields go in extra_body={{...}}",
                field=key,
            )
    if parallel is not None:
        try:
            choice = ToolChoice.model_validate(out.get("tool_choice") or "auto")
        except ValidationError as exc:
            raise InvalidRequestError(
                f"invalid tool_choice: {exc.errors()[0]['msg']}", field="tool_choice"
            ) from None
        out["tool_choice"] = choice.model_copy(update={"parallel": bool(parallel)})
    if openai:
        out["openai_params"] = openai
    return out
