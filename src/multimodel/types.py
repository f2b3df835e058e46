"""Request, response and stream types shared by every provider.

These are the normalized shapes that the adapters translate to and from each provider's wire
format. Values the user builds (:class:`Message`, :class:`ChatRequest`, :class:`Tool`) are frozen
pydantic models with ``extra="forbid"`` so that a typo is an error, not a silently dropped field.
Values the library hands back (:class:`ChatResponse`, :class:`ChatChunk`) are built on the hot
path with ``model_construct`` from already-normalized data, so they cost microseconds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_serializer,
    field_validator,
    model_validator,
)

__all__ = [
    "OPENAI_PARAMS",
    "AudioPart",
    "ChatChunk",
    "ChatRequest",
    "ChatResponse",
    "ContentPart",
    "FilePart",
    "FinishReason",
    "ImagePart",
    "Message",
    "ResponseFormat",
    "Role",
    "TextPart",
    "Tool",
    "ToolCall",
    "ToolCallDelta",
    "ToolChoice",
    "Usage",
]

Role = Literal["system", "developer", "user", "assistant", "tool"]
"""A message author. ``developer`` is OpenAI's newer name for ``system``."""

FinishReason = Literal[
    "stop", "length", "tool_calls", "content_filter", "refusal", "error", "other"
]
"""Why generation ended, normalized across providers (the raw value is kept beside it).

``refusal`` means the model declined to answer: the explanation is in ``refusal``
(:attr:`ChatResponse.refusal`), never in the answer's text. ``content_filter`` means a provider's
safety filter cut or blocked the answer."""

_FROZEN = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class TextPart(BaseModel):
    """A text part of a message's content."""

    model_config = _FROZEN
    type: Literal["text"] = "text"
    text: str


class ImagePart(BaseModel):
    """An image part of a message's content: a URL, or base64 ``data`` with its ``media_type``.

    ``data:`` URLs are accepted in ``url`` and split into ``media_type`` and ``data`` for
    providers that need them apart (Anthropic, Gemini).
    """

    model_config = _FROZEN
    type: Literal["image"] = "image"
    url: str | None = None
    data: str | None = None
    media_type: str | None = None
    detail: Literal["auto", "low", "high"] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ImagePart:
        if (self.url is None) == (self.data is None):
            raise ValueError("an image part needs exactly one of `url` or `data`")
        if self.data is not None and not self.media_type:
            raise ValueError("an image part with `data` needs `media_type` (e.g. 'image/png')")
        return self

    def inline(self) -> tuple[str, str] | None:
        """Return ``(media_type, base64 data)`` when the image is inline (``data`` or a data URL)."""
        if self.data is not None:
            return (self.media_type or "application/octet-stream", self.data)
        assert self.url is not None
        if self.url.startswith("data:") and ";base64," in self.url:
            head, _, payload = self.url.partition(";base64,")
            return (head[5:] or "application/octet-stream", payload)
        return None


class AudioPart(BaseModel):
    """An audio part of a message's content: base64 ``data`` in ``format`` (OpenAI's
    ``input_audio``). OpenAI-format deployments and Gemini take it; Anthropic refuses it."""

    model_config = _FROZEN
    type: Literal["audio"] = "audio"
    data: str
    format: str = Field(min_length=1)
    """``wav``, ``mp3`` ..."""

    @property
    def media_type(self) -> str:
        """The MIME type of the audio (``audio/wav``, ``audio/mp3`` ...)."""
        return self.format if "/" in self.format else f"audio/{self.format}"


class FilePart(BaseModel):
    """A file part of a message's content (OpenAI's ``file``): base64 ``data`` with its
    ``media_type`` (a PDF, most often), or the ``file_id`` of a file uploaded to OpenAI.

    OpenAI-format deployments take both; Anthropic takes PDFs and plain text as documents,
    Gemini inline data; a ``file_id`` only works with OpenAI."""

    model_config = _FROZEN
    type: Literal["file"] = "file"
    data: str | None = None
    media_type: str | None = None
    file_id: str | None = None
    filename: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> FilePart:
        if (self.data is None) == (self.file_id is None):
            raise ValueError("a file part needs exactly one of `data` or `file_id`")
        return self


ContentPart = Annotated[
    Union[TextPart, ImagePart, AudioPart, FilePart],  # noqa: UP007
    Field(discriminator="type"),
]


class ToolCall(BaseModel):
    """A function call requested by the model.

    ``arguments`` is the JSON text exactly as the provider produced it (OpenAI sends a string;
    Anthropic and Gemini send objects, which are serialized). ``metadata`` keeps opaque provider
    data that must be sent back when the call is replayed, such as Gemini's ``thoughtSignature``.
    """

    model_config = _FROZEN
    id: str
    name: str
    arguments: str = "{}"
    metadata: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _accept_openai_shape(cls, data: Any) -> Any:
        # OpenAI's nested shape: {"id", "type": "function", "function": {"name", "arguments"}}.
        if isinstance(data, BaseModel) and not isinstance(data, ToolCall):
            data = data.model_dump(exclude_none=True)
        if isinstance(data, dict) and "function" in data:
            fn = data["function"]
            if isinstance(fn, BaseModel):
                fn = fn.model_dump()
            if not isinstance(fn, dict):
                return data  # let validation name the bad field
            out = {k: v for k, v in data.items() if k not in ("function", "type", "index")}
            out["name"] = fn.get("name")
            arguments = fn.get("arguments")
            if isinstance(arguments, dict | list):
                arguments = json.dumps(arguments)
            out["arguments"] = "{}" if arguments is None else arguments
            return out
        return data

    def parsed_arguments(self) -> Any:
        """Decode ``arguments`` as JSON.

        Raises:
            ValueError: the model produced arguments that are not valid JSON (for example a
                generation cut by ``max_tokens``).
        """
        try:
            return json.loads(self.arguments) if self.arguments else {}
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"tool call {self.name!r} ({self.id}) has arguments that are not valid JSON: {exc}"
            ) from exc


class Message(BaseModel):
    """One turn of a conversation.

    ``content`` is a string or a list of parts. An assistant turn that called tools carries
    ``tool_calls``; the answer to a call is a ``tool`` message with the call's ``tool_call_id``.
    An assistant turn in which the model declined carries the explanation in ``refusal`` (as
    OpenAI's assistant messages do), not in ``content``.
    """

    model_config = _FROZEN
    role: Role
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    refusal: str | None = None

    @classmethod
    def from_openai(cls, data: Any) -> Message:
        """A message from any shape the OpenAI SDK accepts or returns: a dict (nested
        ``tool_calls``, ``image_url`` parts, ``refusal`` parts ...), or a message object the
        SDK or ``chat.completions`` returned. ``ChatRequest`` (hence ``query``, ``stream``,
        ``batch`` and ``chat.completions.create``) converts its messages the same way."""
        return cls.model_validate(coerce_message(data))

    @model_validator(mode="after")
    def _check_shape(self) -> Message:
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError(
                "a 'tool' message needs `tool_call_id` (the id of the call it answers)"
            )
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only 'assistant' messages can carry `tool_calls`")
        if self.refusal is not None and self.role != "assistant":
            raise ValueError("only 'assistant' messages can carry `refusal`")
        if self.content is None and not self.tool_calls and self.refusal is None:
            raise ValueError(f"a {self.role!r} message needs `content`")
        return self

    @property
    def text(self) -> str:
        """The message's text: the string content, or its text parts joined."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content if isinstance(p, TextPart))


_PLAIN_MESSAGE_KEYS = frozenset({"role", "content", "name", "tool_call_id", "refusal"})


def coerce_messages(messages: Any) -> Any:
    """``messages`` with OpenAI's shapes converted (:func:`coerce_message`); the same list when
    every item is a :class:`Message` or a plain dict of its fields (the common case costs one
    check per message)."""
    if type(messages) is not list:
        return messages
    for message in messages:
        if type(message) is dict:
            if _PLAIN_MESSAGE_KEYS.issuperset(message) and type(message.get("content")) is not list:
                continue
        elif isinstance(message, Message):
            continue
        return [coerce_message(m) for m in messages]
    return messages


def coerce_message(data: Any) -> Any:
    """One message in OpenAI's shapes as :class:`Message` input (anything else unchanged)."""
    if isinstance(data, Message):
        return data
    if type(data) is dict:
        if _PLAIN_MESSAGE_KEYS.issuperset(data) and type(data.get("content")) is not list:
            return data
        return _from_openai_message(data)
    if isinstance(data, BaseModel):
        # A message object the facade or the OpenAI SDK returned.
        kept = getattr(data, "_multimodel_message", None)
        if isinstance(kept, Message):
            return kept  # the normalized message, provider metadata included
        return _from_openai_message(data.model_dump(exclude_none=True))
    if isinstance(data, Mapping):
        return _from_openai_message(dict(data))
    return data


# Fields of OpenAI's response message that are not part of a request message.
_RESPONSE_ONLY = ("parsed", "annotations", "function_call", "audio")


def _from_openai_message(data: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI-shaped message dict (a request message, or a response message's
    ``model_dump()``) as :class:`Message` fields; what cannot be converted is left for the
    validation to name."""
    out = dict(data)
    for key in _RESPONSE_ONLY:
        value = out.pop(key, None)
        if value and key == "audio":
            raise ValueError(
                "replaying an assistant audio answer (`audio`) is not supported; send its "
                "transcript as `content`"
            )
        if value and key == "function_call":
            raise ValueError("the deprecated `function_call` is not supported; use `tool_calls`")
    if "tool_calls" in out and not out["tool_calls"]:
        out["tool_calls"] = None  # OpenAI dumps may carry an empty list
    content = out.get("content")
    if isinstance(content, list):
        parts: list[Any] = []
        refusals: list[str] = []
        for part in content:
            if isinstance(part, BaseModel) and not isinstance(
                part, TextPart | ImagePart | AudioPart | FilePart
            ):
                part = part.model_dump(exclude_none=True)
            if isinstance(part, dict):
                kind = part.get("type")
                if kind == "image_url":
                    part = _image_url_part(part.get("image_url"))
                elif kind == "refusal":
                    refusals.append(str(part.get("refusal") or ""))
                    continue
                elif kind == "input_audio":
                    part = _audio_part(part.get("input_audio"))
                elif kind == "file":
                    part = _file_part(part.get("file"))
            parts.append(part)
        out["content"] = parts if parts or not refusals else None
        if refusals and out.get("refusal") is None:
            out["refusal"] = "".join(refusals)
    return out


def _audio_part(value: Any) -> dict[str, Any]:
    """OpenAI's ``{"type": "input_audio", "input_audio": {"data", "format"}}``."""
    if not isinstance(value, dict) or not isinstance(value.get("data"), str):
        raise ValueError("an input_audio part needs input_audio={'data': ..., 'format': ...}")  # noqa: TRY004
    return {"type": "audio", "data": value["data"], "format": value.get("format") or "wav"}


def _file_part(value: Any) -> dict[str, Any]:
    """OpenAI's ``{"type": "file", "file": {"file_data" (a data: URL), "file_id", "filename"}}``."""
    if not isinstance(value, dict):
        raise ValueError("a file part needs file={'file_data': ...} or file={'file_id': ...}")  # noqa: TRY004
    part: dict[str, Any] = {"type": "file"}
    data = value.get("file_data")
    if isinstance(data, str):
        if data.startswith("data:") and ";base64," in data:
            head, _, payload = data.partition(";base64,")
            part["media_type"], part["data"] = head[5:] or None, payload
        else:
            part["data"] = data
    if value.get("file_id") is not None:
        part["file_id"] = value["file_id"]
    if value.get("filename") is not None:
        part["filename"] = value["filename"]
    return part


def _image_url_part(value: Any) -> dict[str, Any]:
    """OpenAI's ``{"type": "image_url", "image_url": {"url", "detail"}}`` (or a bare URL
    string) as an :class:`ImagePart` dict; ``data:`` URLs stay in ``url`` and are split where
    a provider needs them apart."""
    if isinstance(value, str):
        return {"type": "image", "url": value}
    if isinstance(value, BaseModel):
        value = value.model_dump(exclude_none=True)
    if not isinstance(value, dict) or not isinstance(value.get("url"), str):
        raise ValueError("an image_url part needs image_url={'url': ...}")  # noqa: TRY004
    part: dict[str, Any] = {"type": "image", "url": value["url"]}
    if value.get("detail") is not None:
        part["detail"] = value["detail"]
    return part


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
            from .errors import UnknownResponseError

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
