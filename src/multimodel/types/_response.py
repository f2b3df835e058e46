"""The answer side: a complete :class:`ChatResponse`, its :class:`Usage`, and the
:class:`ChatChunk` steps of a stream.

An answer's :class:`ChatResponse` and its assistant :class:`Message` are built on the hot path
by :func:`chat_response` and :func:`assistant_message` from values whose types are checked
exactly (``type(x) is str`` ...), without running the validator (see :func:`_trusted`).

Part of :mod:`multimodel.types`, which re-exports every public name.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from decimal import Decimal
from typing import Any, Literal, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from ._messages import Message, ToolCall

__all__ = [
    "ChatChunk",
    "ChatResponse",
    "FinishReason",
    "ToolCallDelta",
    "Usage",
    "assistant_message",
    "chat_response",
]

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
    ``logprobs`` is the chunk's ``choices[0].logprobs`` as an OpenAI-format deployment sent it
    for ``logprobs=True`` (``{"content": [{"token", "logprob", "bytes", "top_logprobs"}, ...]}``),
    else ``None``.
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
    logprobs: dict[str, Any] | None = Field(default=None, repr=False)

    @property
    def has_content(self) -> bool:
        """Whether this chunk carries anything the caller sees (text, reasoning, a refusal or a
        tool call)."""
        return bool(self.text or self.reasoning or self.refusal or self.tool_calls)


# -- answers built without validation ------------------------------------------------------------

_M = TypeVar("_M", bound=BaseModel)
_setattr = object.__setattr__
_FINISH_REASONS = frozenset(get_args(FinishReason))
_MESSAGE_SET = frozenset({"role", "content", "name", "tool_calls", "tool_call_id"})
_RESPONSE_SET = frozenset(ChatResponse.model_fields) - {"cached", "parsed"}
_USAGE_SET = frozenset(Usage.model_fields)
_ABSENT = object()


def _trusted(cls: type[_M], values: dict[str, Any], fields_set: AbstractSet[str]) -> _M:
    """An instance of ``cls`` holding ``values`` (every field, in the class's field order),
    in the state validation leaves it in, without running the validator.

    Validating a ``ChatResponse`` costs ~15 µs and its ``Message`` ~11 µs (the shape check is a
    Python validator); ``model_construct`` is slower still, as it looks at every field's
    default and alias in Python. The callers check each value's exact type first, so the result
    is the one validation gives (:func:`_trusted_works` confirms the layout once).
    """
    obj = _new_object(cls)
    _set_dict(obj, values)
    _set_fields_set(obj, set(fields_set))
    _set_extra(obj, None)
    _set_private(obj, None)
    return obj


def _slot_setter(name: str) -> Callable[[Any, Any], None]:
    """The setter of ``BaseModel``'s slot ``name``, as its descriptor's ``__set__``.

    ``object.__setattr__(obj, name, value)`` sets the same slot the same way (around
    pydantic's ``__setattr__``), looking the descriptor up by name on each call: ~400
    instructions more a slot, four slots a model. :func:`_trusted_works` compares the result
    with pydantic's own (``model_construct``); a pydantic without these slots gets
    ``object.__setattr__``."""
    descriptor = vars(BaseModel).get(name)
    if descriptor is None or not hasattr(descriptor, "__set__"):  # pragma: no cover
        return lambda obj, value: _setattr(obj, name, value)
    setter: Callable[[Any, Any], None] = descriptor.__set__
    return setter


_new_object = object.__new__
_set_dict = _slot_setter("__dict__")
_set_fields_set = _slot_setter("__pydantic_fields_set__")
_set_extra = _slot_setter("__pydantic_extra__")
_set_private = _slot_setter("__pydantic_private__")


def assistant_message(
    content: str | None, tool_calls: list[ToolCall] | None, refusal: Any = ...
) -> Message:
    """``Message(role="assistant", content=..., name=None, tool_calls=..., tool_call_id=None,
    refusal=...)`` (``refusal`` left out of the call, and of the fields set, when not given):
    an adapter's answer. Built without validation when the values have exactly the fields'
    types and the message's shape holds; else validated (and any error raised) as usual.
    """
    set_refusal = refusal is not ...
    # The type tests are written out (here and in chat_response): a helper was a call each.
    if set_refusal:
        ok_refusal = refusal is None or type(refusal) is str
    else:
        refusal, ok_refusal = None, True
    if (
        ok_refusal
        and (content is None or type(content) is str)
        and (
            tool_calls is None
            or (type(tool_calls) is list and all(type(c) is ToolCall for c in tool_calls))
        )
        and (content is not None or tool_calls or refusal is not None)
        and _trusted_works()
    ):
        return _trusted(
            Message,
            {
                "role": "assistant",
                "content": content,
                "name": None,
                "tool_calls": tool_calls,
                "tool_call_id": None,
                "refusal": refusal,
            },
            _MESSAGE_SET | {"refusal"} if set_refusal else _MESSAGE_SET,
        )
    fields: dict[str, Any] = {"refusal": refusal} if set_refusal else {}
    return Message(
        role="assistant",
        content=content,
        name=None,
        tool_calls=tool_calls,
        tool_call_id=None,
        **fields,
    )


def chat_response(
    *,
    id: str,
    message: Message,
    finish_reason: FinishReason | None,
    raw_finish_reason: str | None,
    usage: Usage,
    model: str,
    provider: str,
    deployment: str,
    request_id: str | None,
    latency: float,
    ttft: float | None,
    cost: Decimal | None,
    cost_breakdown: Any,
    trace: Any,
    raw: Any,
) -> ChatResponse:
    """``ChatResponse(...)`` with these fields (``cached`` and ``parsed`` left to their
    defaults): a client's answer. Built without validation when every value has exactly its
    field's type, else validated as usual (an ``int`` latency becomes a ``float`` ...)."""
    if (
        type(id) is str
        and type(message) is Message
        and (finish_reason is None or finish_reason in _FINISH_REASONS)
        and (raw_finish_reason is None or type(raw_finish_reason) is str)
        and type(usage) is Usage
        and type(model) is str
        and type(provider) is str
        and type(deployment) is str
        and (request_id is None or type(request_id) is str)
        and type(latency) is float
        and (ttft is None or type(ttft) is float)
        and (cost is None or type(cost) is Decimal)
        and _trusted_works()
    ):
        return _trusted(
            ChatResponse,
            {
                "id": id,
                "message": message,
                "finish_reason": finish_reason,
                "raw_finish_reason": raw_finish_reason,
                "usage": usage,
                "model": model,
                "provider": provider,
                "deployment": deployment,
                "request_id": request_id,
                "latency": latency,
                "ttft": ttft,
                "cost": cost,
                "cost_breakdown": cost_breakdown,
                "cached": False,
                "trace": trace,
                "parsed": None,
                "raw": raw,
            },
            _RESPONSE_SET,
        )
    return ChatResponse(
        id=id,
        message=message,
        finish_reason=finish_reason,
        raw_finish_reason=raw_finish_reason,
        usage=usage,
        model=model,
        provider=provider,
        deployment=deployment,
        request_id=request_id,
        latency=latency,
        ttft=ttft,
        cost=cost,
        cost_breakdown=cost_breakdown,
        trace=trace,
        raw=raw,
    )


@functools.cache
def _trusted_works() -> bool:
    """Whether :func:`_trusted` lays an instance out as pydantic does (every instance slot of
    ``BaseModel``: field values in order, fields set, extras, private state; equality and repr),
    checked on first use against pydantic's own unvalidated constructor, ``model_construct``: a
    pydantic whose instance layout changed gets the validating constructors instead.

    The reference is not a validated instance: validating would build the schemas of
    ``Message``, ``ChatResponse``, ``Usage`` and ``ToolCall`` (~0.5 MiB and tens of
    milliseconds on a client's first request) that a plain answer never needs. That the values
    the callers pass are the ones validation would give is what their exact type checks ensure,
    and ``tests/providers/test_answer_building.py`` compares both constructors field by field.
    """
    try:
        call = ToolCall.model_construct(id="c", name="f", arguments="{}")
        for content, calls, refusal in (("hi", None, None), (None, [call], ...), ("", None, "no")):
            values: dict[str, Any] = {
                "role": "assistant",
                "content": content,
                "name": None,
                "tool_calls": calls,
                "tool_call_id": None,
                "refusal": None if refusal is ... else refusal,
            }
            fields_set = _MESSAGE_SET if refusal is ... else _MESSAGE_SET | {"refusal"}
            expected = Message.model_construct(set(fields_set), **values)
            if not _same(expected, _trusted(Message, dict(values), fields_set)):
                return False
        answer: dict[str, Any] = {
            "id": "r",
            "message": expected,
            "finish_reason": "stop",
            "raw_finish_reason": "stop",
            "usage": Usage.model_construct(input_tokens=1),
            "model": "m",
            "provider": "p",
            "deployment": "d",
            "request_id": None,
            "latency": 0.5,
            "ttft": None,
            "cost": Decimal("0.25"),
            "cost_breakdown": None,
            "cached": False,
            "trace": None,
            "parsed": None,
            "raw": {"id": "r"},
        }
        expected_response = ChatResponse.model_construct(set(_RESPONSE_SET), **answer)
        if not _same(expected_response, _trusted(ChatResponse, dict(answer), _RESPONSE_SET)):
            return False
        counts: dict[str, Any] = dict.fromkeys(Usage.model_fields, 3) | {"estimated": False}
        return _same(Usage.model_construct(**counts), _trusted(Usage, counts, _USAGE_SET))
    except (AttributeError, TypeError, ValueError):  # pragma: no cover - pydantic changed
        return False


def _same(expected: BaseModel, got: BaseModel, *, by_repr: bool = True) -> bool:
    """Whether ``got`` holds what ``expected`` holds in every instance slot pydantic defines
    (a slot a later pydantic adds is compared too), in the same order, with equal repr
    (``by_repr=False``: equality only, where the repr's cost counts)."""
    for slot in BaseModel.__slots__:
        if slot == "__dict__":
            if list(expected.__dict__.items()) != list(got.__dict__.items()):
                return False
        elif getattr(expected, slot, _ABSENT) != getattr(got, slot, _ABSENT):
            return False
    return expected == got and (not by_repr or repr(expected) == repr(got))
