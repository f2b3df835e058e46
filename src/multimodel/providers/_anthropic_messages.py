"""OpenAI-shaped messages as Anthropic Messages API turns (no I/O).

:func:`to_anthropic` splits the conversation into the top-level ``system`` text and the
``messages`` turns: content parts become ``text``/``image``/``document`` blocks, tool results
``tool_result`` blocks inside a user turn, assistant ``tool_calls`` ``tool_use`` blocks (after
the thinking blocks kept in the first call's ``metadata[THINKING_KEY]``), and consecutive
same-role turns merge.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import InvalidRequestError
from ..types import ContentPart, FilePart, ImagePart, Message, TextPart, ToolCall

__all__ = ["THINKING_KEY", "to_anthropic"]

THINKING_KEY = "anthropic_thinking"
"""The ``ToolCall.metadata`` key under which an answer's thinking blocks are kept for replay."""


def _document(part: FilePart) -> dict[str, Any]:
    """A file part as an Anthropic document block (PDF as base64, plain text as text)."""
    if part.data is None:
        raise InvalidRequestError(
            "Anthropic cannot read an OpenAI file_id; send the file's data (file_data)",
            field="messages[].content",
        )
    kind = part.media_type or "application/pdf"
    if kind == "text/plain":
        import base64

        text = base64.b64decode(part.data).decode("utf-8", "replace")
        source: dict[str, Any] = {"type": "text", "media_type": kind, "data": text}
    elif kind == "application/pdf":
        source = {"type": "base64", "media_type": kind, "data": part.data}
    else:
        raise InvalidRequestError(
            f"Anthropic takes PDF and plain-text documents, not {kind!r}",
            field="messages[].content",
        )
    block: dict[str, Any] = {"type": "document", "source": source}
    if part.filename:
        block["title"] = part.filename
    return block


def to_anthropic(messages: list[Message]) -> tuple[list[str], list[dict[str, Any]]]:
    """The ``system`` texts (joined by the caller) and the ``messages`` turns for ``messages``.

    Raises:
        InvalidRequestError: a message Anthropic cannot express (an image in a system prompt,
            audio, a file id, tool call arguments that are not a JSON object, no turns at all).
    """
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        if message.role in ("system", "developer"):
            content = message.content
            if isinstance(content, list) and any(isinstance(p, ImagePart) for p in content):
                raise InvalidRequestError(
                    "Anthropic's system prompt takes text only",
                    field=f"messages[{i}].content",
                )
            system.append(message.text)
            continue
        if message.role == "tool":
            role = "user"
            content = message.content
            result = _blocks(content) if isinstance(content, list) else content or ""
            blocks = [
                {"type": "tool_result", "tool_use_id": message.tool_call_id, "content": result}
            ]
        else:
            role = message.role
            blocks = _blocks(message.content, skip_empty=role == "assistant")
            if message.refusal and not blocks:
                # A replayed refusal (OpenAI's `refusal` field): Anthropic has only text.
                blocks = [{"type": "text", "text": message.refusal}]
            if message.tool_calls:
                blocks = _thinking(message.tool_calls) + blocks
                blocks.extend(_tool_use(message.tool_calls, i))
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    if not turns:
        raise InvalidRequestError(
            "Anthropic needs at least one user or assistant message", field="messages"
        )
    for turn in turns:
        content = turn["content"]
        if len(content) == 1 and content[0]["type"] == "text":
            turn["content"] = content[0]["text"]
    return system, turns


def _blocks(
    content: str | list[ContentPart] | None, *, skip_empty: bool = False
) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [] if skip_empty and not content else [{"type": "text", "text": content}]
    blocks: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, TextPart):
            if part.text or not skip_empty:
                blocks.append({"type": "text", "text": part.text})
        elif isinstance(part, ImagePart):
            inline = part.inline()
            source: dict[str, Any] = (
                {"type": "base64", "media_type": inline[0], "data": inline[1]}
                if inline
                else {"type": "url", "url": part.url}
            )
            blocks.append({"type": "image", "source": source})
        elif isinstance(part, FilePart):
            blocks.append(_document(part))
        else:
            raise InvalidRequestError(
                "Anthropic does not accept audio input (input_audio parts); send a "
                "transcript, or route the request to an OpenAI or Gemini deployment",
                field="messages[].content",
            )
    return blocks


def _thinking(calls: list[ToolCall]) -> list[dict[str, Any]]:
    for call in calls:
        kept = (call.metadata or {}).get(THINKING_KEY)
        if isinstance(kept, list):
            return [b for b in kept if isinstance(b, dict)]
    return []


def _tool_use(calls: list[ToolCall], i: int) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for j, call in enumerate(calls):
        try:
            args = json.loads(call.arguments) if call.arguments.strip() else {}
        except (ValueError, RecursionError) as exc:
            raise InvalidRequestError(
                f"tool call {call.name!r} has arguments that are not valid JSON",
                field=f"messages[{i}].tool_calls[{j}].arguments",
            ) from exc
        if not isinstance(args, dict):
            raise InvalidRequestError(
                f"Anthropic needs tool call arguments to be a JSON object ({call.name!r})",
                field=f"messages[{i}].tool_calls[{j}].arguments",
            )
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": args})
    return blocks
