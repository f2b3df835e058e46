"""What a Gemini request names and says (no I/O): the model's resource path, and
OpenAI-shaped messages as ``systemInstruction`` and ``contents`` parts.

:func:`to_gemini` maps roles to ``user``/``model`` (tool results are ``user`` turns), merges
consecutive same-role turns, turns content parts into ``text``/``inlineData``/``fileData``
parts, assistant tool calls into ``functionCall`` parts (their ``thoughtSignature`` replayed from
``ToolCall.metadata``) and tool results into ``functionResponse`` parts named after the earlier
call with the same id.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import InvalidRequestError
from ..types import AudioPart, FilePart, Message, TextPart, ToolCall

__all__ = ["model_path", "to_gemini"]

_MODEL_PREFIXES = ("models/", "tunedModels/", "dynamic/")
_ROLES = {"user": "user", "assistant": "model", "tool": "user"}


def model_path(wire_model: str) -> str:
    """The model's resource path: ``models/{wire_model}``, unless ``wire_model`` already starts
    with ``models/``, ``tunedModels/`` or ``dynamic/``."""
    if wire_model.startswith(_MODEL_PREFIXES):
        return wire_model
    return f"models/{wire_model}"


def to_gemini(messages: list[Message]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The ``systemInstruction`` parts and the ``contents`` turns for ``messages``.

    Raises:
        InvalidRequestError: a message Gemini cannot express (a file id, tool call arguments
            that are not a JSON object, a tool result that answers no earlier call).
    """
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool call id -> function name, from earlier assistant turns
    for i, message in enumerate(messages):
        if message.role in ("system", "developer"):
            if message.text:
                system.append({"text": message.text})
            continue
        if message.role == "tool":
            parts = [_function_response(message, names, i)]
        else:
            parts = _parts(message)
            if message.refusal and not parts:
                parts = [{"text": message.refusal}]  # a replayed refusal: Gemini has text
        for j, call in enumerate(message.tool_calls or ()):
            names[call.id] = call.name
            parts.append(_function_call(call, f"messages[{i}].tool_calls[{j}]"))
        if not parts:
            continue
        role = _ROLES[message.role]
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    return system, contents


def _parts(message: Message) -> list[dict[str, Any]]:
    content = message.content
    if content is None:
        return []
    if isinstance(content, str):
        # Gemini rejects empty text parts; an empty string adds nothing to the turn.
        return [{"text": content}] if content else []
    parts: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, TextPart):
            if part.text:
                parts.append({"text": part.text})
        elif isinstance(part, AudioPart):
            parts.append({"inlineData": {"mimeType": part.media_type, "data": part.data}})
        elif isinstance(part, FilePart):
            if part.data is None:
                raise InvalidRequestError(
                    "Gemini cannot read an OpenAI file_id; send the file's data (file_data)",
                    field="messages[].content",
                )
            mime_type = part.media_type or "application/pdf"
            parts.append({"inlineData": {"mimeType": mime_type, "data": part.data}})
        elif (inline := part.inline()) is not None:  # an ImagePart
            parts.append({"inlineData": {"mimeType": inline[0], "data": inline[1]}})
        else:
            # Gemini needs the type of a URL it fetches; OpenAI's image_url has none, so it is
            # read from the path's extension when it names one.
            media_type = part.media_type or _url_media_type(part.url)
            mime = {"mimeType": media_type} if media_type else {}
            parts.append({"fileData": {**mime, "fileUri": part.url}})
    return parts


_EXTENSION_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
    "heic": "image/heic",
    "heif": "image/heif",
    "pdf": "application/pdf",
}


def _url_media_type(url: str | None) -> str | None:
    """The media type a URL's path extension names (``…/cat.PNG?x=1`` → ``image/png``)."""
    if url is None:
        return None
    path = url.split("?", 1)[0].split("#", 1)[0]
    name = path.rsplit("/", 1)[-1]
    if "." not in name:
        return None
    return _EXTENSION_TYPES.get(name.rsplit(".", 1)[-1].lower())


def _function_call(call: ToolCall, where: str) -> dict[str, Any]:
    try:
        args = json.loads(call.arguments) if call.arguments else {}
    except (ValueError, RecursionError):
        args = None
    if not isinstance(args, dict):
        raise InvalidRequestError(
            f"tool call {call.name!r} ({call.id}) has arguments that are not a JSON object, "
            "which Gemini cannot replay",
            field=where,
        )
    part: dict[str, Any] = {"functionCall": {"name": call.name, "args": args, "id": call.id}}
    signature = (call.metadata or {}).get("thoughtSignature")
    if isinstance(signature, str) and signature:
        part["thoughtSignature"] = signature
    return part


def _function_response(message: Message, names: dict[str, str], i: int) -> dict[str, Any]:
    call_id = message.tool_call_id or ""
    name = names.get(call_id)
    if name is None:
        raise InvalidRequestError(
            f"messages[{i}] answers tool call {call_id!r}, but no earlier assistant message "
            "made that call; Gemini needs the function name from it",
            field="messages",
        )
    text = message.text
    try:
        parsed: Any = json.loads(text)
    except (ValueError, RecursionError):
        parsed = None
    response = parsed if isinstance(parsed, dict) else {"result": text}
    return {"functionResponse": {"name": name, "response": response, "id": call_id}}
