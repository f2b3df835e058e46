"""An incremental Server-Sent Events decoder: bytes in, events out, no I/O.

It follows the WHATWG ``text/event-stream`` rules that matter for LLM providers:

* lines end in LF, CRLF or a lone CR (Gemini sends CRLF); a CR at the end of one network chunk
  may be the first half of a CRLF in the next, so it is held back;
* only those three end lines: ``str.splitlines`` would also split on U+2028 and friends, which
  are legal inside JSON strings;
* UTF-8 sequences split across network chunks are reassembled; a leading BOM is ignored;
* ``:`` lines are comments (``: keep-alive``, ``: OPENROUTER PROCESSING``) and are skipped;
* several ``data:`` lines form one event, joined with ``\\n``;
* a blank line dispatches the event only when it has data, so a blank line after a comment does
  not produce an empty event.

Example::

    decoder = SSEDecoder()
    for raw in network_chunks:
        for event in decoder.feed(raw):
            handle(event.event, event.data)
    for event in decoder.close():
        handle(event.event, event.data)
"""

from __future__ import annotations

import codecs
from typing import NamedTuple

__all__ = ["SSEDecoder", "ServerSentEvent"]

# tuple.__new__ directly (in the per-event dispatch): a named tuple's generated __new__ is a
# Python function, one more frame per streamed token.
_new_tuple = tuple.__new__


class ServerSentEvent(NamedTuple):
    """One dispatched event. ``event`` is ``"message"`` when the stream gave no name.

    A named tuple, not a frozen dataclass: one is built per streamed token, and a frozen
    dataclass's ``__init__`` costs four ``object.__setattr__`` calls (about 4x the time).
    """

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Push-style SSE decoder. Feed it bytes; it returns the events those bytes completed."""

    __slots__ = (
        "_data", "_event", "_fast", "_id", "_last_id", "_long", "_pending", "_retry", "_skip_lf",
        "_utf8",
    )  # fmt: skip

    def __init__(self) -> None:
        # utf-8-sig: one leading byte order mark is ignored, as the spec says.
        self._utf8 = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
        # Whether a chunk may be decoded with one bytes.decode call: past the start (the BOM
        # check) and with no partial UTF-8 sequence held back. The incremental decoder is two
        # Python-level calls per chunk; most chunks are whole, valid UTF-8.
        self._fast = False
        self._pending = ""  # text after the last complete line
        # A line longer than one read (a large tool call, an inline image): its pieces, joined
        # once it ends. Appending each read to ``_pending`` would copy the whole line again
        # with every read (20 MB in 64 KiB reads: seconds; in pieces, milliseconds).
        self._long: list[str] | None = None
        self._skip_lf = False  # the last chunk ended in CR: an LF starting the next one pairs it
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self._last_id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Decode ``chunk`` and return every event it completed, in order."""
        if self._fast:
            try:
                text = chunk.decode("utf-8")
            except UnicodeDecodeError:  # a sequence split across chunks, or invalid bytes
                text = self._decode(chunk)
        else:
            text = self._decode(chunk)
        if not text:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if text[0] == "\n":
                text = text[1:]
        if self._pending:
            if "\n" not in text and "\r" not in text:  # the line goes on past this read
                self._long = [self._pending, text]
                self._pending = ""
                return []
            buf = self._pending + text
        elif self._long is not None:
            self._long.append(text)
            if "\n" not in text and "\r" not in text:
                return []
            buf = "".join(self._long)
            self._long = None
        else:
            buf = text
        if "\r" in buf:
            # A final CR ends its line now (the replacements below turn it into LF); note it so
            # that an LF opening the next chunk is taken as the second half of a CRLF.
            self._skip_lf = buf[-1] == "\r"
            buf = buf.replace("\r\n", "\n").replace("\r", "\n")
        lines = buf.split("\n")
        self._pending = lines.pop()
        events: list[ServerSentEvent] = []
        data = self._data
        for line in lines:
            if line[:5] == "data:":  # the field nearly every line holds: handled inline
                data.append(line[6:] if line[5:6] == " " else line[5:])
            elif line:
                self._field(line)
            elif data:
                # The dispatch (see _dispatch), inline: once per event.
                if self._id is not None:
                    self._last_id = self._id
                events.append(
                    _new_tuple(
                        ServerSentEvent,
                        (
                            data[0] if len(data) == 1 else "\n".join(data),
                            self._event or "message",
                            self._last_id,
                            self._retry,
                        ),
                    )
                )
                data = self._data = []
                self._event = ""
                self._retry = None
            else:
                self._event = ""
        return events

    def _decode(self, chunk: bytes) -> str:
        """``chunk`` through the incremental decoder (BOM, split sequences, bad bytes)."""
        text: str = self._utf8.decode(chunk)
        held, first = self._utf8.getstate()
        self._fast = not held and not first
        return text

    def close(self) -> list[ServerSentEvent]:
        """Signal the end of the stream and return an event that was complete but undispatched.

        A final line without a line ending is incomplete (the connection may have been cut in
        the middle of it) and is dropped; complete ``data:`` lines that were never followed by
        the blank line that dispatches them still form an event.
        """
        self._utf8.decode(b"", final=True)
        self._pending = ""
        self._long = None
        self._skip_lf = False
        return [self._dispatch()] if self._data else []

    def _field(self, line: str) -> None:
        if line[0] == ":":
            return
        name, sep, value = line.partition(":")
        if sep and value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._id = value
        elif name == "retry" and value.isdigit():
            self._retry = int(value)
        # Unknown field names are ignored, as the spec says.

    def _dispatch(self) -> ServerSentEvent:
        if self._id is not None:
            self._last_id = self._id
        data = self._data
        event = ServerSentEvent(
            data[0] if len(data) == 1 else "\n".join(data),
            self._event or "message",
            self._last_id,
            self._retry,
        )
        self._data = []
        self._event = ""
        self._retry = None
        return event
