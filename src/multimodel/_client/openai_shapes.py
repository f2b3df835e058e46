"""The OpenAI-shaped objects and conversions behind ``client.chat.completions.create(...)``.

The objects have the OpenAI field names and are built from the normalized response, whichever
provider answered; :mod:`multimodel.openai_compat` is the public module.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Generator, Iterator, Mapping, Sequence
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError

from ..errors import InvalidRequestError
from ..types import ChatChunk, ChatResponse, FinishReason, Usage
from .params import split_params

__all__ = [
    "ChatCompletion",
    "ChatCompletionChunk",
    "Model",
    "ModelGroups",
    "ModelPage",
    "RawResponse",
    "create_params",
    "joined_logprobs",
    "to_chunks",
    "to_completion",
    "usage_chunk",
]

_Loose = ConfigDict(extra="allow", defer_build=True)

# OpenAI parameter name -> ours
_RENAMES = {"max_completion_tokens": "max_tokens"}
_CREATE_ONLY = ("max_completion_tokens", "n", "stream", "stream_options", "timeout")


class FunctionCall(BaseModel):
    """``tool_calls[].function``."""

    model_config = _Loose
    name: str
    arguments: str


class ChatCompletionMessageToolCall(BaseModel):
    """``message.tool_calls[]``."""

    model_config = _Loose
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatCompletionMessage(BaseModel):
    """``choices[].message``; a refusal is in ``refusal``, with ``content`` ``None``."""

    model_config = _Loose
    role: Literal["assistant"] = "assistant"
    content: str | None
    tool_calls: list[ChatCompletionMessageToolCall] | None = None
    refusal: str | None = None
    annotations: list[Any] | None = None
    """URL citations (OpenAI sends an empty list); multimodel sends ``[]``."""
    audio: Any = None
    """The spoken answer (``modalities=["audio"]``) as an OpenAI-format deployment sent it."""
    function_call: Any = None
    """OpenAI's deprecated single function call, as an OpenAI-format deployment sent it."""
    parsed: Any = None
    """The validated answer (``chat.completions.parse``; ``None`` otherwise or on a refusal)."""
    _multimodel_message: Any = PrivateAttr(default=None)
    # The normalized message it was built from: appended to ``messages``, the object replays
    # exactly (provider metadata such as Gemini's thoughtSignature included).


class TopLogprob(BaseModel):
    """``logprobs.content[].top_logprobs[]``."""

    model_config = _Loose
    token: str
    bytes: list[int] | None = None
    logprob: float


class ChatCompletionTokenLogprob(BaseModel):
    """``logprobs.content[]``: one generated token and its most likely alternatives."""

    model_config = _Loose
    token: str
    bytes: list[int] | None = None
    logprob: float
    top_logprobs: list[TopLogprob] = []


class ChoiceLogprobs(BaseModel):
    """``choices[].logprobs`` (``logprobs=True``)."""

    model_config = _Loose
    content: list[ChatCompletionTokenLogprob] | None = None
    refusal: list[ChatCompletionTokenLogprob] | None = None


class Choice(BaseModel):
    """``choices[]``. ``logprobs`` is what an OpenAI-format deployment sent for
    ``logprobs=True`` (``None`` from other providers, which have no such field; as the dict it
    sent when it is not in OpenAI's shape)."""

    model_config = _Loose
    index: int = 0
    message: ChatCompletionMessage
    finish_reason: str | None
    logprobs: ChoiceLogprobs | dict[str, Any] | None = None


class PromptTokensDetails(BaseModel):
    """``usage.prompt_tokens_details``."""

    model_config = _Loose
    cached_tokens: int = 0


class CompletionTokensDetails(BaseModel):
    """``usage.completion_tokens_details``."""

    model_config = _Loose
    reasoning_tokens: int = 0


class CompletionUsage(BaseModel):
    """``usage``: OpenAI semantics (prompt tokens include cached ones)."""

    model_config = _Loose
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails
    completion_tokens_details: CompletionTokensDetails

    @classmethod
    def from_usage(cls, usage: Usage) -> CompletionUsage:
        """Convert normalized usage; counts multimodel estimated carry ``estimated=True`` (an
        extra field: the provider sent none)."""
        extra = {"estimated": True} if usage.estimated else {}
        return cls(
            prompt_tokens=usage.input_tokens,
            completion_tokens=usage.output_tokens,
            total_tokens=usage.total_tokens,
            prompt_tokens_details=PromptTokensDetails(cached_tokens=usage.cache_read_tokens),
            completion_tokens_details=CompletionTokensDetails(
                reasoning_tokens=usage.reasoning_tokens
            ),
            **extra,
        )


class ChatCompletion(BaseModel):
    """An OpenAI ``chat.completion`` object; ``multimodel`` holds the normalized response.
    ``system_fingerprint`` and ``service_tier`` are an OpenAI-format deployment's (``None``
    from other providers)."""

    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True, defer_build=True)
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: CompletionUsage
    system_fingerprint: str | None = None
    service_tier: str | None = None
    multimodel: ChatResponse


class ChoiceDeltaToolCallFunction(BaseModel):
    """``delta.tool_calls[].function``."""

    model_config = _Loose
    name: str | None = None
    arguments: str | None = None


class ChoiceDeltaToolCall(BaseModel):
    """``delta.tool_calls[]``."""

    model_config = _Loose
    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: ChoiceDeltaToolCallFunction | None = None


class ChoiceDelta(BaseModel):
    """``choices[].delta``."""

    model_config = _Loose
    role: Literal["assistant"] | None = None
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[ChoiceDeltaToolCall] | None = None


class ChunkChoice(BaseModel):
    """``choices[]`` of a chunk."""

    model_config = _Loose
    index: int = 0
    delta: ChoiceDelta
    finish_reason: str | None = None
    logprobs: ChoiceLogprobs | dict[str, Any] | None = None
    """What an OpenAI-format deployment sent for ``logprobs=True`` with this chunk."""


class ChatCompletionChunk(BaseModel):
    """An OpenAI ``chat.completion.chunk`` object; the usage chunk has empty ``choices``."""

    model_config = _Loose
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: CompletionUsage | None = None
    system_fingerprint: str | None = None
    service_tier: str | None = None


class Model(BaseModel):
    """One model group, as ``client.models.list()`` lists it (the OpenAI SDK's ``Model``),
    with what the catalog knows of its deployments."""

    model_config = _Loose
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str
    deployments: list[str]
    """The deployments serving the group, in configuration order."""
    context_window: int | None = None
    """The smallest context window among its deployments the catalog knows."""
    max_output_tokens: int | None = None
    """The smallest output limit among its deployments the catalog knows."""
    capabilities: list[str] = []
    """What every deployment of the group can do, per the catalog (``vision``, ``tools`` ...)."""


class ModelPage:
    """``client.models.list()``: ``data`` is the list of :class:`Model`; iterate it (also with
    ``async for``) or ``await`` it, as the SDK's page."""

    object = "list"

    def __init__(self, data: list[Model]) -> None:
        self.data = data

    def __iter__(self) -> Iterator[Model]:
        return iter(self.data)

    async def _aiter(self) -> AsyncIterator[Model]:
        for model in self.data:
            yield model

    def __aiter__(self) -> AsyncIterator[Model]:
        return self._aiter()

    def __await__(self) -> Generator[Any, None, ModelPage]:
        if False:  # pragma: no cover - makes this a generator
            yield
        return self

    def __len__(self) -> int:
        return len(self.data)


class ModelGroups(list[str]):
    """``client.models``: the configured model group names (a list, as before), with the
    OpenAI SDK's ``client.models.list()`` and ``client.models.retrieve(id)``."""

    def __init__(self, names: list[str], build: Callable[[], list[Model]]) -> None:
        super().__init__(names)
        self._build = build

    def list(self) -> ModelPage:
        """Every configured model group, with catalog data."""
        return ModelPage(self._build())

    def retrieve(self, model: str) -> Model:
        """One model group.

        Raises:
            UnknownModelError: no deployment serves ``model``.
        """
        for item in self._build():
            if item.id == model:
                return item
        from ..errors import UnknownModelError

        raise UnknownModelError(model, self)


T = TypeVar("T")


class RawResponse(Generic[T]):
    """``with_raw_response.create(...)``: the final attempt's HTTP ``headers`` and
    ``status_code`` and, from :meth:`parse`, the object ``create`` would have returned (the
    OpenAI SDK's ``LegacyAPIResponse``). A cached answer has empty headers."""

    def __init__(self, parsed: T, headers: Any, status_code: int = 200) -> None:
        import httpx

        self._parsed = parsed
        self.headers: httpx.Headers = httpx.Headers(headers or {})
        self.status_code = status_code

    @property
    def request_id(self) -> str | None:
        """The provider's request id header, when it sent one."""
        found: str | None = self.headers.get("x-request-id") or self.headers.get("request-id")
        return found

    def parse(self) -> T:
        """The parsed object (a ``ChatCompletion``)."""
        return self._parsed


_OPENAI_FINISH: dict[FinishReason, str] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
    "refusal": "stop",  # what OpenAI sends with a refusal
    "error": "stop",
    "other": "stop",
}


def to_completion(response: ChatResponse, created: int) -> ChatCompletion:
    """Convert a normalized response to an OpenAI ``ChatCompletion``."""
    calls = [
        ChatCompletionMessageToolCall(
            id=c.id, function=FunctionCall(name=c.name, arguments=c.arguments)
        )
        for c in response.tool_calls
    ] or None
    content = (
        response.message.content
        if isinstance(response.message.content, str)
        else (response.text or None)
    )
    refusal = response.refusal
    if refusal is not None and not content:
        content = None  # OpenAI's shape of a refusal: no content, the text in `refusal`
    body = response.raw if isinstance(response.raw, dict) else {}
    sent = _first_choice(body)
    sent_message = sent.get("message")
    if not isinstance(sent_message, dict):
        sent_message = {}
    message = ChatCompletionMessage(
        content=content,
        tool_calls=calls,
        refusal=refusal,
        annotations=[],
        audio=sent_message.get("audio"),
        function_call=sent_message.get("function_call"),
        parsed=response.parsed,
    )
    message._multimodel_message = response.message
    fingerprint, tier = body.get("system_fingerprint"), body.get("service_tier")
    return ChatCompletion(
        id=response.id or f"chatcmpl-{response.request_id or 'multimodel'}",
        created=created,
        model=response.model,
        choices=[
            Choice(
                message=message,
                finish_reason=_OPENAI_FINISH[response.finish_reason]
                if response.finish_reason
                else None,
                logprobs=_logprobs(sent.get("logprobs")),
            )
        ],
        usage=CompletionUsage.from_usage(response.usage),
        system_fingerprint=fingerprint if isinstance(fingerprint, str) else None,
        service_tier=tier if isinstance(tier, str) else None,
        multimodel=response,
    )


def _first_choice(body: dict[str, Any]) -> dict[str, Any]:
    """The first choice of an OpenAI-format body (``{}`` for another provider's)."""
    choices = body.get("choices")
    first = choices[0] if isinstance(choices, list) and choices else None
    return first if isinstance(first, dict) else {}


def _logprobs(sent: Any) -> ChoiceLogprobs | dict[str, Any] | None:
    """A choice's ``logprobs`` as OpenAI's objects; kept as sent when it is not their shape."""
    if not isinstance(sent, dict):
        return None
    try:
        return ChoiceLogprobs.model_validate(sent)
    except ValidationError:
        return sent


def to_chunks(
    chunk: ChatChunk, ident: str, model: str, created: int, first: bool
) -> list[ChatCompletionChunk]:
    """One normalized chunk as OpenAI's chunks, in OpenAI's order: the opening chunk (``role``
    and empty ``content``) before the first, then the content, then a separate chunk with an
    empty ``delta`` and the ``finish_reason``."""

    def make(delta: ChoiceDelta, finish: str | None = None) -> ChatCompletionChunk:
        return ChatCompletionChunk(
            id=ident,
            created=created,
            model=model,
            choices=[ChunkChoice(delta=delta, finish_reason=finish)],
        )

    out: list[ChatCompletionChunk] = []
    if first:
        out.append(make(ChoiceDelta(role="assistant", content="")))
    opened = len(out)
    if chunk.text or chunk.refusal or chunk.tool_calls:
        delta = ChoiceDelta(
            content=chunk.text or None,
            refusal=chunk.refusal or None,
            tool_calls=[
                ChoiceDeltaToolCall(
                    index=d.index,
                    id=d.id,
                    type="function" if d.id else None,
                    function=ChoiceDeltaToolCallFunction(name=d.name, arguments=d.arguments),
                )
                for d in chunk.tool_calls
            ]
            or None,
        )
        out.append(make(delta))
    if chunk.finish_reason is not None:
        out.append(make(ChoiceDelta(), _OPENAI_FINISH[chunk.finish_reason]))
    if chunk.logprobs is not None:  # on the chunk that carries the tokens they score
        if len(out) == opened:
            out.append(make(ChoiceDelta()))
        out[opened].choices[0].logprobs = _logprobs(chunk.logprobs)
    return out


def joined_logprobs(parts: list[ChoiceLogprobs | dict[str, Any]]) -> ChoiceLogprobs | None:
    """A stream's chunk logprobs as one choice's, as the SDK's stream accumulator joins them:
    ``content`` and ``refusal`` lists concatenated in order."""
    content: list[ChatCompletionTokenLogprob] = []
    refusal: list[ChatCompletionTokenLogprob] = []
    seen = {"content": False, "refusal": False}
    for part in parts:
        if not isinstance(part, ChoiceLogprobs):
            continue  # not OpenAI's shape: kept on its chunk only
        for name, into in (("content", content), ("refusal", refusal)):
            items = getattr(part, name)
            if items is not None:
                seen[name] = True
                into.extend(items)
    if not (seen["content"] or seen["refusal"]):
        return None
    return ChoiceLogprobs(
        content=content if seen["content"] else None, refusal=refusal if seen["refusal"] else None
    )


def usage_chunk(final: ChatResponse, created: int) -> ChatCompletionChunk:
    """The final ``include_usage`` chunk: no choices, the answer's usage."""
    return ChatCompletionChunk(
        id=final.id or "chatcmpl-multimodel",
        created=created,
        model=final.model,
        choices=[],
        usage=CompletionUsage.from_usage(final.usage),
    )


def create_params(
    messages: Sequence[Any], kwargs: Mapping[str, Any]
) -> tuple[dict[str, Any], bool]:
    """``create()``'s keywords as ``query`` parameters, and whether the caller asked for the
    final usage chunk (``stream_options={"include_usage": True}``).

    The rule is ``query``'s (:func:`~multimodel._client.params.split_params`): OpenAI's
    parameters are kept for translation per provider, anything else is refused with the
    closest valid name, and ``extra_body`` is the only way to send an arbitrary field.

    Raises:
        InvalidRequestError: an unknown keyword, one of the wrong shape (named), or ``n`` > 1.
    """
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence):
        raise InvalidRequestError(
            "messages must be a list of messages such as "
            f'[{{"role": "user", "content": "Hi"}}], got {type(messages).__name__}',
            field="messages",
        )
    params: dict[str, Any] = {}
    include_usage = False
    for key, value in kwargs.items():
        if value is None:
            continue
        key = _RENAMES.get(key, key)
        if key == "extra_body" and not isinstance(value, Mapping):
            raise InvalidRequestError(
                f"extra_body must be a dict of JSON fields, got {type(value).__name__}",
                field="extra_body",
            )
        if key == "stream_options":
            if not isinstance(value, Mapping):
                raise InvalidRequestError(
                    'stream_options must be a dict such as {"include_usage": true}, got '
                    f"{type(value).__name__}",
                    field="stream_options",
                )
            include_usage = bool(value.get("include_usage"))
        elif key == "n":
            if value != 1:
                raise InvalidRequestError("n > 1 is not supported; send n requests", field="n")
        else:
            params[key] = value
    return split_params(params, also=_CREATE_ONLY), include_usage
