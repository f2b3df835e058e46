"""The answer side: a complete :class:`ChatResponse`, its :class:`Usage`, and the
:class:`ChatChunk` steps of a stream. Built on the hot path with ``model_construct``.

Part of :mod:`multimodel.types`, which re-exports every public name.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from ._messages import Message, ToolCall

__all__ = ["ChatChunk", "ChatResponse", "FinishReason", "ToolCallDelta", "Usage"]

FinishReason = Literal[
    "stop", "length", "tool_calls", "content_filter", "refusal", "error", "other"
]
"""Why generation ended, normalized across providers (the raw value is kept beside it).

``refusal`` means the model declined to answer: the explanation is in ``refusal``
(:attr:`ChatResponse.refusal`), never in the answer's text. ``content_filter`` means a provider's
safety filter cut or blocked the answer."""


class Usage(BaseModel):
    """Token counts for one response, normalized across providers.

    ``input_tokens`` is every prompt token billed, cached ones included (Anthropic's
    ``input_tokens + cache_read + cache_creation``); ``cache_read_tokens`` and
    ``cache_write_tokens`` say how many of them were served from or written to a prompt cache.
    ``output_tokens`` includes ``reasoning_tokens`` (Gemini's thoughts are added in).
    ``estimated`` is true when the counts are multimodel's estimates rather than the provider's:
    the provider sent no usage, or the stream was stopped or cut before it did (about four
    characters per token, see :mod:`multimodel._core.tokens`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    @property
    def uncached_input_tokens(self) -> int:
        """Input tokens that were neither read from nor written to a prompt cache."""
        return max(0, self.input_tokens - self.cache_read_tokens - self.cache_write_tokens)


class ChatResponse(BaseModel):
    """A complete answer, with where it came from, what it used and how long it took.

    ``latency`` and ``ttft`` (time to first token, streams only) are seconds. ``cost`` is the
    exact price in USD when the deployment's prices are known, else ``None``. The provider's
    own JSON body is kept out of ``repr`` and dumps; :meth:`raw_body` returns it.
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", arbitrary_types_allowed=True, defer_build=True
    )

    id: str
    message: Message
    finish_reason: FinishReason | None
    raw_finish_reason: str | None = None
    usage: Usage = Field(default_factory=Usage)
    model: str
    provider: str
    deployment: str
    request_id: str | None = None
    latency: float = 0.0
    ttft: float | None = None
    cost: Decimal | None = None
    cost_breakdown: Any = Field(default=None, repr=False)
    cached: bool = False
    trace: Any = Field(default=None, repr=False)
    parsed: Any = Field(default=None, exclude=True)
    """The validated answer when a ``response_format`` was given: an instance of the pydantic
    model, or the decoded JSON for a schema dict; ``None`` otherwise and for a refusal."""
    raw: Any = Field(default=None, repr=False, exclude=True)
    """The provider's decoded JSON body (``None`` for streams and cache hits from Redis); left
    out of ``repr`` and dumps. A plain field rather than a private attribute: pydantic's
    private-attribute setup made every response four times as slow to build."""

    @field_serializer("trace")
    def _plain_trace(self, trace: Any) -> Any:
        # The routing trace keeps strategy scores lazily (built when read): dump plain data.
        to_dict = getattr(trace, "to_dict", None)
        return to_dict() if to_dict is not None else trace

    @property
    def text(self) -> str:
        """The answer's text (empty when the model only called tools)."""
        return self.message.text

    @property
    def tool_calls(self) -> list[ToolCall]:
        """The tool calls the model asked for, in order (empty when none)."""
        return self.message.tool_calls or []

    @property
    def refusal(self) -> str | None:
        """Why the model declined to answer (``None`` when it did not); ``finish_reason`` is
        then ``"refusal"``. A refusal is never part of :attr:`text`."""
        return self.message.refusal

    def raw_body(self) -> Any:
        """The provider's decoded JSON body (for streams, ``None``)."""
        return self.raw

    def feedback(self, score: float, *, tag: str | None = None) -> None:
        """Score this answer: ``client.feedback(response, score, tag=tag)`` on the client that
        made it (see :meth:`multimodel.Client.feedback`). The response holds that client only
        weakly (through its routing trace): no reference cycle, nothing in dumps or equality.

        Raises:
            UnknownResponseError: the response was not made by a client (built by hand, or
                rebuilt from a dump), or its client is gone; call ``client.feedback`` then.
            InvalidRequestError: ``score`` is not a number in [0, 1], or ``tag`` is empty.

        .. versionadded:: 0.2
        """
        ref = getattr(self.trace, "feedback_to", None)
        client = ref() if ref is not None else None
        if client is None:
            from ..errors import UnknownResponseError

            raise UnknownResponseError(
                f"response {self.id!r} has no client to score it (built by hand, rebuilt from a "
                "dump, or its client is gone): call client.feedback(response, score)",
                key=self.id,
            )
        client.feedback(self, score, tag=tag)


class ToolCallDelta(BaseModel):
    """A fragment of a tool call in a stream.

    Fragments with the same ``index`` belong to one call: the first carries ``id`` and ``name``,
    the rest carry pieces of ``arguments`` to concatenate.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)
    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""
    metadata: dict[str, Any] | None = None


class ChatChunk(BaseModel):
    """One step of a stream.

    ``text`` is the new text (possibly empty). ``refusal`` is a piece of the model's refusal
    (OpenAI streams it like text, in ``delta.refusal``); pieces are joined into
    :attr:`ChatResponse.refusal` and are never part of the text. ``usage``, when present, is the
    cumulative usage so far; the last one seen is the answer's usage (it is never summed).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)
    text: str = ""
    reasoning: str = ""
    refusal: str = ""
    tool_calls: list[ToolCallDelta] = Field(default_factory=list)
    finish_reason: FinishReason | None = None
    raw_finish_reason: str | None = None
    usage: Usage | None = None
    id: str | None = None
    model: str | None = None

    @property
    def has_content(self) -> bool:
        """Whether this chunk carries anything the caller sees (text, reasoning, a refusal or a
        tool call)."""
        return bool(self.text or self.reasoning or self.refusal or self.tool_calls)
