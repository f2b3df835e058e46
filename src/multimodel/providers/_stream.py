"""Decoding one streamed response: the :class:`StreamDecoder` contract, and
:class:`SSEStreamDecoder`, the base of the SSE-framed providers' decoders.

:class:`SSEStreamDecoder` sniffs the body's first non-blank byte: a server that answers a stream
request with one JSON document instead of an event stream gets that document read whole, as the
complete answer (:func:`chunks_from_parsed`), or mapped to its error.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

import httpx

from ..errors import MalformedResponse, ProviderConnectionError, redact
from ..types import ChatChunk, ToolCallDelta
from .base import _scan
from .sse import ServerSentEvent, SSEDecoder

if TYPE_CHECKING:
    from .base import Endpoint, ParsedResponse, ProviderAdapter

__all__ = ["SSEStreamDecoder", "StreamDecoder", "chunks_from_parsed"]


class StreamDecoder(ABC):
    """Turns the bytes of one streamed response into :class:`ChatChunk` objects.

    ``feed`` raises a :class:`~multimodel.errors.ProviderError` when the stream carries an error
    event (errors can arrive inside an HTTP 200 stream). ``close`` is called when the body ends;
    it raises when the stream stopped before the provider said it was complete, because a stream
    that just stops must not be reported as a success. A stream is complete only when the
    provider said why generation ended (a finish reason); an end-of-stream marker alone
    (OpenAI's ``[DONE]``, Anthropic's ``message_stop``) is not enough.
    """

    complete: bool = False

    @abstractmethod
    def feed(self, data: bytes) -> list[ChatChunk]:
        """Decode more bytes; return the chunks they completed."""

    @abstractmethod
    def close(self) -> list[ChatChunk]:
        """Finish decoding at the end of the body; return any last chunks."""


def chunks_from_parsed(parsed: ParsedResponse) -> list[ChatChunk]:
    """The chunks a complete answer implies: one chunk with its text, refusal, tool calls,
    finish reason and usage (what a stream of that answer would have delivered)."""
    message = parsed.message
    return [
        ChatChunk(
            text=message.text,
            refusal=message.refusal or "",
            tool_calls=[
                ToolCallDelta(
                    index=i, id=c.id, name=c.name, arguments=c.arguments, metadata=c.metadata
                )
                for i, c in enumerate(message.tool_calls or ())
            ],
            finish_reason=parsed.finish_reason,
            raw_finish_reason=parsed.raw_finish_reason,
            usage=parsed.usage,
            id=parsed.id or None,
            model=parsed.model or None,
        )
    ]


_BLANK = b" \t\r\n"
_BOM = b"\xef\xbb\xbf"
_SNIFF_LIMIT = 64 * 1024  # blank bytes held back while the body's kind is unknown


def _media_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    return content_type.split(";", 1)[0].strip().lower() or None


class SSEStreamDecoder(StreamDecoder):
    """A :class:`StreamDecoder` for SSE-framed providers: subclasses implement :meth:`on_event`.

    A server may answer a stream request with one JSON document instead of an event stream (a
    200 ``application/json``: proxies and servers that ignore ``stream: true``, Gemini without
    ``alt=sse``). The first non-blank byte tells: ``{`` or ``[`` can not start an SSE line, so
    the body is buffered and, at the end, decoded by :meth:`on_json` as the complete answer.
    A JSON error object is mapped like the adapter maps an error body; anything else is a
    :class:`MalformedResponse` that names the content type.

    Args:
        endpoint: the deployment streamed from.
        content_type: the response's ``content-type`` header, when the caller passes it (used
            in error messages and to recognize a body that is not an event stream at all).
        adapter: the adapter whose :meth:`~ProviderAdapter.parse_response` reads a JSON answer.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        content_type: str | None = None,
        adapter: ProviderAdapter | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.content_type = content_type
        self.adapter = adapter
        self._sse = SSEDecoder()
        self.complete = False
        #: Why the stream is incomplete when it ended (appended to the error message).
        self.incomplete_detail = ""
        self._mode: str | None = None  # "sse" or "json" once the first non-blank byte arrived
        self._held = bytearray()  # blank bytes before that byte, then the whole JSON body
        self._events = 0  # SSE events dispatched
        self._start = b""  # the body's first bytes, for error messages

    def feed(self, data: bytes) -> list[ChatChunk]:
        if self._mode != "sse":
            data = self._sniff(data)
            if not data:
                return []
        out: list[ChatChunk] = []
        events = self._sse.feed(data)
        self._events += len(events)
        on_event = self.on_event  # once per read, not per event (one per streamed token)
        for event in events:
            chunk = on_event(event)
            if chunk is not None:
                out.append(chunk)
        return out

    def _sniff(self, data: bytes) -> bytes:
        """Hold bytes until the body's kind is known; return the bytes to decode as SSE."""
        self._held += data
        if self._mode == "json":
            self._check_size()
            return b""
        head = bytes(self._held).lstrip(_BLANK)
        if head.startswith(_BOM):
            head = head[len(_BOM) :].lstrip(_BLANK)
        if _BOM.startswith(head) and len(self._held) <= _SNIFF_LIMIT:
            return b""  # only blank lines (or part of a byte order mark) so far
        self._start = head[:120]
        if head[:1] in (b"{", b"["):
            self._mode = "json"
            self._check_size()
            return b""
        self._mode = "sse"
        held, self._held = bytes(self._held), bytearray()
        return held

    def close(self) -> list[ChatChunk]:
        if self._mode == "json":
            return self._close_json()
        out: list[ChatChunk] = []
        if self._held:  # a body of blank bytes only
            self._mode = "sse"
            self._sse.feed(bytes(self._held))
            self._held = bytearray()
        for event in self._sse.close():
            self._events += 1
            chunk = self.on_event(event)
            if chunk is not None:
                out.append(chunk)
        out.extend(self.on_end())
        if not self.complete:
            media = _media_type(self.content_type)
            if self._events == 0 and self._start and media not in (None, "text/event-stream"):
                # Not an event stream at all (an HTML page from a proxy, plain text...).
                raise MalformedResponse(
                    f"a stream request was answered with content type {self.content_type!r} "
                    f"and no events: {self._redacted(self._start)!r}",
                    provider=self.endpoint.provider,
                    deployment=self.endpoint.name,
                    status=200,
                )
            raise ProviderConnectionError(
                "the stream ended before the provider marked it complete"
                + (f" ({self.incomplete_detail})" if self.incomplete_detail else ""),
                provider=self.endpoint.provider,
                deployment=self.endpoint.name,
            )
        return out

    def _check_size(self) -> None:
        from .base import MAX_BODY_BYTES  # base's limit, read when a JSON body grows

        if len(self._held) > MAX_BODY_BYTES:
            raise MalformedResponse(
                f"{self._json_what()} exceeds the {MAX_BODY_BYTES} byte limit",
                provider=self.endpoint.provider,
                deployment=self.endpoint.name,
                status=200,
            )

    def _json_what(self) -> str:
        if self.content_type:
            return f"a JSON body (content type {self.content_type!r})"
        return "a JSON body"

    def _redacted(self, data: bytes) -> str:
        key = self.endpoint.api_key
        secrets = (key.get_secret_value(),) if key is not None else ()
        return redact(data.decode("utf-8", "replace"), secrets)

    def _close_json(self) -> list[ChatChunk]:
        body = bytes(self._held).lstrip(_BLANK)
        self._held = bytearray()
        body = body.removeprefix(_BOM)
        try:
            obj = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise MalformedResponse(
                f"a stream request was answered with {self._json_what()} that is not valid "
                f"JSON: {self._redacted(body[:120])!r}",
                provider=self.endpoint.provider,
                deployment=self.endpoint.name,
                status=200,
            ) from exc
        try:
            chunks = self.on_json(obj, body)
        except MalformedResponse as exc:
            raise MalformedResponse(
                f"a stream request was answered with {self._json_what()} that is not a "
                f"complete answer: {exc.message}",
                provider=self.endpoint.provider,
                deployment=self.endpoint.name,
                status=200,
                request_id=exc.request_id,
            ) from exc
        self.complete = True
        return chunks

    def on_json(self, obj: Any, body: bytes) -> list[ChatChunk]:
        """Decode a JSON document sent instead of an event stream (``obj`` is ``body``
        decoded): the chunks of the complete answer it holds.

        The default parses ``body`` with the adapter's
        :meth:`~ProviderAdapter.parse_response`, which maps an error object to its typed error
        and anything else it cannot read to :class:`MalformedResponse`.
        """
        if self.adapter is None:
            raise MalformedResponse(
                "the decoder cannot read a JSON answer",
                provider=self.endpoint.provider,
                deployment=self.endpoint.name,
                status=200,
            )
        headers = {"content-type": self.content_type or "application/json"}
        response = httpx.Response(200, headers=headers, content=body)
        return chunks_from_parsed(self.adapter.parse_response(response, self.endpoint))

    @abstractmethod
    def on_event(self, event: ServerSentEvent) -> ChatChunk | None:
        """Handle one SSE event: return a chunk, or ``None`` for events the caller need not see."""

    def on_end(self) -> list[ChatChunk]:
        """Hook for chunks owed at the end of the body (e.g. held-back usage)."""
        return []

    def load_json(self, data: str) -> Any:
        """Decode an event's JSON, mapping bad JSON to :class:`MalformedResponse`."""
        try:
            # json's C scanner straight away (once per streamed token): ``json.loads`` adds
            # three Python calls and two whitespace matches. Anything but one bare JSON value
            # (surrounding blanks, trailing bytes, bad JSON) goes through ``json.loads``, which
            # accepts or rejects it exactly as before.
            try:
                obj, end = _scan(data, 0)
            except StopIteration:
                return json.loads(data)
            return obj if end == len(data) else json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise MalformedResponse(
                f"stream event is not valid JSON: {data[:120]!r}",
                provider=self.endpoint.provider,
                deployment=self.endpoint.name,
            ) from exc
