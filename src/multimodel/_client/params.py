"""The typed keyword parameters shared by ``query``, ``stream`` and ``batch``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

from pydantic import BaseModel

from ..types import ResponseFormat, Tool, ToolChoice

__all__ = ["RequestParams"]


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
