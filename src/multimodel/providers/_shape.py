"""A stream's repeated event, read by its shape: the same JSON text around one varying string.

Most events of a streamed answer differ only in the new text. An OpenAI-compatible chunk
repeats ``id``, ``object``, ``created``, ``model``, ``system_fingerprint``, ``logprobs`` and
``finish_reason`` around ``choices[0].delta.content`` (OpenAI's own also ends with an
``obfuscation`` string of random padding, which nothing reads). Parsing each event in full
(~2.3 µs of JSON and ~0.9 µs of validation for a ~300-byte chunk) is most of a streamed
token's cost in the decoder.

:func:`learn` takes one event the adapter has parsed in full and the chunk it made of it, and
returns an :class:`EventShape`: the event's text before the varying string (the *head*) and
after it (the *tail*). An event that starts with the head, continues with one JSON string
literal and ends with the tail (then, when learned so, a padding member) is then decoded by
comparing those texts (``str.startswith``) and reading that one string with json's own C
``scanstring``, and its chunk is the learned chunk with the new text.

Why this is exact: JSON's grammar does not look inside a string token, so replacing one string
literal with another leaves every other value of the document as it was. :func:`learn` proves
the head and tail bound the right string by parsing a probe (the head, a different string, the
tail) with ``json.loads`` and requiring the learned event back once the probe's string is
put at that path; it proves the chunk by building it the fast way and comparing it with the
validated one, slot by slot. An event of any other shape (a finish reason, usage, a tool call,
a changed ``created``) fails :meth:`EventShape.text` and is parsed in full as before.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ..types import ChatChunk
from ..types._response import _same, _trusted

__all__ = ["LEARNS", "EventShape", "Shapes", "learn"]

LEARNS = 3
"""Shapes learned at most per stream: one whose events change each time (a ``created`` that
counts up) would otherwise be learned again at every chunk, ~20 µs each."""

# json's C string reader (the scanner json.loads runs), strict as json.loads is: it returns the
# decoded string and the index after its closing quote, or raises JSONDecodeError (ValueError).
_scanstring: Callable[[str, int], tuple[str, int]] = getattr(json.decoder, "scanstring")  # noqa: B009


class EventShape:
    """An event's text around its one varying JSON string (see the module docstring)."""

    __slots__ = ("_fields_set", "_head", "_pad", "_start", "_tail", "_values")

    def __init__(
        self, head: str, tail: str, pad: str | None, values: dict[str, Any], fields_set: set[str]
    ) -> None:
        self._head = head  # ends with the string's opening quote
        self._start = len(head)
        self._tail = tail
        self._pad = pad  # '"<key>":"' of a trailing padding member, or None
        self._values = values  # the chunk's field values, in field order
        self._fields_set = fields_set

    def text(self, data: str) -> str | None:
        """The varying string of ``data`` when ``data`` has this shape; else ``None``."""
        if not data.startswith(self._head):
            return None
        try:
            value, end = _scanstring(data, self._start)
        except ValueError:  # not one string literal there
            return None
        tail = self._tail
        if self._pad is None:
            return value if len(data) - end == len(tail) and data.startswith(tail, end) else None
        if not data.startswith(tail, end):
            return None
        end += len(tail)
        if not data.startswith(self._pad, end):
            return None
        try:
            end = _scanstring(data, end + len(self._pad))[1]
        except ValueError:
            return None
        return value if end == len(data) - 1 and data[end] == "}" else None

    def chunk(self, text: str) -> ChatChunk:
        """The learned chunk with ``text`` as its text (built as validation builds it)."""
        values = self._values.copy()
        values["text"] = text
        values["tool_calls"] = []  # a list of its own, as validation's default factory gives
        return _trusted(ChatChunk, values, self._fields_set)


class Shapes:
    """A stream decoder's learned shape (``shape``), and the learning budget.

    A decoder reads an event with ``shape`` when it has one, and :meth:`offer` s each text
    chunk it parsed in full. Nothing is learned from the first text chunk, nor from any chunk
    decoded in the same read as it: learning takes ~20 µs (~70 µs with the caches cold after
    the wait for the answer), which would delay the first token.
    """

    __slots__ = ("_first", "_left", "event", "shape")

    def __init__(self) -> None:
        self.shape: EventShape | None = None
        self.event = ""  # the SSE event name the shape was learned on
        self._left = LEARNS + 1
        self._first: object = None  # the read the first text chunk came in

    def offer(
        self,
        data: str,
        obj: dict[str, Any],
        path: tuple[str | int, ...],
        marker: str,
        chunk: ChatChunk,
        *,
        read: object,
        event: str = "message",
        pad_key: str | None = None,
    ) -> None:
        """A text chunk parsed in full (``data`` parsed as ``obj``, read as ``chunk``) in the
        decoder's read ``read`` (any value that differs from one read to the next): learn its
        shape if the budget allows (see :func:`learn`)."""
        left = self._left
        if left > LEARNS:  # the first text chunk
            self._left = LEARNS
            self._first = read
        elif left and read != self._first:
            self._left = left - 1
            self.shape = learn(data, obj, path, marker, chunk, pad_key=pad_key)
            self.event = event

    def forget(self) -> None:
        """Drop the shape (what it was learned with changed)."""
        self.shape = None


def learn(
    data: str,
    obj: dict[str, Any],
    path: tuple[str | int, ...],
    marker: str,
    chunk: ChatChunk,
    *,
    pad_key: str | None = None,
) -> EventShape | None:
    """The shape of ``data`` (parsed as ``obj``, read as ``chunk``) whose string at ``path``
    varies, found after the first ``marker`` (the text just before that string, its opening
    quote included); ``None`` when the event is not of that shape or the proof fails.

    ``pad_key``: a top-level string member that may end the event with any value and that
    the chunk does not depend on (OpenAI's ``obfuscation``).
    """
    at = data.find(marker)
    if at < 0:
        return None
    head = data[: at + len(marker)]
    try:
        value, end = _scanstring(data, len(head))
    except ValueError:
        return None
    if value != _get(obj, path) or not value or chunk.text != value:
        return None
    tail, pad = data[end:], None
    if pad_key is not None and type(obj.get(pad_key)) is str:
        pad = f'"{pad_key}":"'
        cut = tail.rfind("," + pad)
        if cut < 0 or not tail.endswith('"}'):
            return None
        tail = tail[:cut] + ","
    probe = "x" if value != "x" else "y"
    text = head + probe + '"' + tail + (pad + 'p"}' if pad is not None else "")
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        return None
    # The probe's strings must be where the event's were (a duplicate key later in the event
    # would win over the one in the hole), and everything else as it was.
    if type(parsed) is not dict or _get(parsed, path) != probe:
        return None
    _put(parsed, path, value)
    if pad_key is not None and pad is not None:
        if parsed.get(pad_key) != "p":
            return None
        parsed[pad_key] = obj[pad_key]
    if parsed != obj:
        return None
    values = dict(chunk.__dict__)
    shape = EventShape(head, tail, pad, values, set(chunk.__pydantic_fields_set__))
    if shape.text(data) != value or not _same(chunk, shape.chunk(value), by_repr=False):
        return None
    return shape


def _get(obj: Any, path: tuple[str | int, ...]) -> Any:
    try:
        for key in path:
            obj = obj[key]
    except (LookupError, TypeError):
        return None
    return obj


def _put(obj: Any, path: tuple[str | int, ...], value: str) -> None:
    for key in path[:-1]:
        obj = obj[key]
    obj[path[-1]] = value
