"""Shared pieces of the mock server's renderers: the reply model, the renderer base, helpers.

Example::

    split_text("Hello from mock", None)  # ("Hello", " from", " mock")
    split_text("abcdef", 2)              # ("abc", "def")
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .behavior import ResolvedUsage

__all__ = [
    "ErrorSpec",
    "Reply",
    "StreamPlan",
    "WireRenderer",
    "dumps",
    "mock_embedding",
    "split_text",
    "strings_len",
    "text_of",
    "thirds",
]

dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

# Normalised finish reason -> (openai, anthropic, gemini).
_FINISH: dict[str, tuple[str, str, str]] = {
    "stop": ("stop", "end_turn", "STOP"),
    "length": ("length", "max_tokens", "MAX_TOKENS"),
    "tool_calls": ("tool_calls", "tool_use", "STOP"),
    "content_filter": ("content_filter", "refusal", "SAFETY"),
    "refusal": ("stop", "refusal", "SAFETY"),  # Behavior.refusal: OpenAI says it in the message
}


def mock_embedding(text: str, dimensions: int = 8) -> list[float]:
    """A deterministic unit vector for ``text`` (the same text, the same vector); its values
    are float32s, so the base64 encoding (float32) carries them exactly."""
    import hashlib
    from array import array

    values: list[float] = []
    counter = 0
    while len(values) < dimensions:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        values.extend(b / 127.5 - 1.0 for b in digest)
        counter += 1
    values = values[:dimensions]
    norm = sum(v * v for v in values) ** 0.5 or 1.0
    return array("f", [round(v / norm, 6) for v in values]).tolist()


def split_text(text: str, chunks: int | None) -> tuple[str, ...]:
    """Split ``text`` into stream pieces: one per word, or ``chunks`` near-equal slices."""
    if not text:
        return ()
    if chunks is None:
        pieces = re.findall(r"\s*\S+", text)
        tail = text[sum(map(len, pieces)) :]
        if not pieces:
            return (text,)
        if tail:
            pieces[-1] += tail
        return tuple(pieces)
    n = min(chunks, len(text))
    bounds = [round(i * len(text) / n) for i in range(n + 1)]
    return tuple(text[bounds[i] : bounds[i + 1]] for i in range(n))


def thirds(s: str) -> list[str]:
    """Split a tool-argument string into up to three fragments."""
    if len(s) < 3:
        return [s]
    a, b = len(s) // 3, 2 * len(s) // 3
    return [s[:a], s[a:b], s[b:]]


def strings_len(value: Any) -> int:
    """Total length of the strings inside a JSON value."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, Mapping):
        return sum(strings_len(v) for v in value.values())
    if isinstance(value, list):
        return sum(strings_len(v) for v in value)
    return 0


def text_of(content: Any, text_key: str = "text") -> str:
    """Text of a message content: a string, or the text parts of a list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p[text_key]
            for p in content
            if isinstance(p, Mapping) and isinstance(p.get(text_key), str)
        )
    return ""


@dataclass(frozen=True, slots=True)
class Reply:
    """Everything a renderer needs to answer one successful request."""

    model: str
    text: str | None
    pieces: tuple[str, ...]
    tool_calls: tuple[tuple[str, Mapping[str, Any]], ...]
    usage: ResolvedUsage
    finish_reason: str | None
    seq: int
    include_usage: bool = False
    omit_done: bool = False
    refusal: str | None = None


@dataclass(frozen=True, slots=True)
class ErrorSpec:
    """One error to render. In-stream errors use the format's own status (500/529/503)."""

    status: int
    code: str | None = None
    message: str | None = None
    retry_after: float | None = None
    request_id: str = ""
    model: str | None = None


@dataclass(frozen=True, slots=True)
class StreamPlan:
    """A rendered stream: framed SSE events, each unit sent as one write."""

    head: tuple[bytes, ...]
    body: tuple[bytes, ...]
    tail: tuple[bytes, ...]


class WireRenderer(ABC):
    """Base renderer; subclasses implement one provider's wire format."""

    format = ""
    #: Name of the response header carrying a request id ("" for none).
    request_id_header = ""

    @abstractmethod
    def route(self, rest: str) -> tuple[str | None, str] | None:
        """Match the path after ``/{name}/``: ``(model, mode)`` or ``None`` if no route.

        ``mode`` is ``"body"`` (the body's ``stream`` flag decides), ``"json"`` (never a
        stream) or ``"stream"`` (Gemini: SSE with ``alt=sse``, else a JSON array).
        """

    @abstractmethod
    def prompt_chars(self, body: Mapping[str, Any]) -> int:
        """Characters of prompt text, for derived input-token counts."""

    @abstractmethod
    def last_user_text(self, body: Mapping[str, Any]) -> str:
        """The text of the last user message (for ``echo``)."""

    @abstractmethod
    def body(self, reply: Reply) -> bytes:
        """The JSON body of a non-streaming success."""

    @abstractmethod
    def stream(self, reply: Reply) -> StreamPlan:
        """The SSE events of a streaming success."""

    @abstractmethod
    def error(self, e: ErrorSpec) -> bytes:
        """The JSON body of an error response."""

    @abstractmethod
    def stream_error(self, e: ErrorSpec) -> bytes:
        """One framed SSE event reporting an error inside a 200 stream."""

    def embeddings(self, body: Mapping[str, Any], model: str) -> bytes | None:
        """The JSON body answering an embeddings request (``mode`` ``"embed"``); ``None`` when
        the wire format has no embeddings."""
        return None

    def finish(self, reply: Reply, index: int) -> str:
        """The provider's finish reason for ``reply`` (``index`` selects the format)."""
        raw = reply.finish_reason
        if raw is None:
            raw = "tool_calls" if reply.tool_calls else "stop"
        mapped = _FINISH.get(raw)
        return mapped[index] if mapped else raw
