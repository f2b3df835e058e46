"""Messages and their content: text, image, audio and file parts, tool calls, and the
conversion of OpenAI's message shapes (dicts, SDK objects) into :class:`Message` input.

Part of :mod:`multimodel.types`, which re-exports every public name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "AudioPart",
    "ContentPart",
    "FilePart",
    "ImagePart",
    "Message",
    "Role",
    "TextPart",
    "ToolCall",
    "coerce_message",
    "coerce_messages",
]

Role = Literal["system", "developer", "user", "assistant", "tool"]
"""A message author. ``developer`` is OpenAI's newer name for ``system``."""

# Shared by the frozen request-side models here and in ``_request``.
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
