"""What a streamed call does apart from I/O, shared by :class:`~multimodel.Stream` and
:class:`~multimodel.AsyncStream`.

:class:`StreamCore` feeds bytes to the provider's decoder, accumulates text / tool calls /
usage into the final response (:class:`Accumulator`), applies the failover rule and reports
once to the tracker. A stream receives what it needs from its client as one
:class:`StreamKit`, not by reaching into the client.

The failover rule: until the first content chunk has been produced, any failure (an HTTP error,
an error event inside the stream, a dropped or stalled connection) is handed to the dispatch plan,
which retries or falls back to another deployment; the caller sees nothing of it. Once content
has reached the caller, a failure raises :class:`~multimodel.errors.StreamInterrupted` carrying
the partial text, and no chunk is ever delivered twice.

Time limits: ``timeout`` bounds one attempt up to its first content chunk; after it, each wait
for more content is bounded by the idle limit (keep-alive comments and pings are not content)
and by what is left of the call's ``deadline``.
"""

from __future__ import annotations

import sys
import warnings
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import httpx

from .._core.dispatch import DispatchPlan, Send
from .._core.tokens import estimate_text_tokens
from ..errors import MultimodelError, ProviderError, ProviderTimeout, StreamInterrupted
from ..providers.base import NO_USAGE, ParsedResponse, ProviderAdapter, StreamDecoder
from ..types import ChatChunk, ChatRequest, ChatResponse, Message, ToolCall, Usage

if TYPE_CHECKING:
    from .._core.clock import Clock
    from ..cache import ResponseCache
    from ..tracking.outcome import Outcome

__all__ = [
    "DEADLINE_CODE",
    "IDLE_CODE",
    "Accumulator",
    "StreamCore",
    "StreamKit",
    "caller",
    "unclosed_warning",
]

FIRST_SLICE = 512
"""Bytes decoded first from a large read: an attempt's first event or two (the time to the
first chunk pays for every event decoded before it)."""
FEED_SLICE = 4096
"""Bytes decoded at a time from the rest of a large read (~16 token events, ~0.1 ms)."""
DEADLINE_CODE = "multimodel_deadline"
"""``ProviderTimeout.code`` when the call's deadline ended a stream (not the provider's fault)."""
IDLE_CODE = "multimodel_stream_idle"
"""``ProviderTimeout.code`` when a stream sent no content for its idle limit."""


def caller(depth: int = 2) -> str:
    """``file:line`` of the code that opened a stream (named when it is left unclosed)."""
    frame = sys._getframe(depth)
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


def unclosed_warning(opened_at: str) -> None:
    """Warn that a stream was dropped before its end without being closed."""
    warnings.warn(
        f"a stream opened at {opened_at} was dropped before its end without being closed; "
        "multimodel released its connection and recorded it as cancelled. Use "
        "`with client.stream(...) as stream:` (or `async with`) so it closes on time.",
        ResourceWarning,
        stacklevel=3,
    )


class StreamKit(NamedTuple):
    """What a stream needs from its client (built by its first stream; a named tuple, which
    takes an eighth of the time a frozen dataclass takes to define: ~0.07 against ~0.6 ms, on
    the first stream's path)."""

    adapters: Mapping[str, ProviderAdapter]
    clock: Clock
    cache: ResponseCache | None
    idle_timeout: float
    http_request: Callable[..., httpx.Request]
    transport_error: Callable[..., MultimodelError]
    respond: Callable[[Send, ParsedResponse, Outcome, DispatchPlan], ChatResponse]
    from_cache: Callable[[ChatRequest, ChatResponse, float], ChatResponse]
    request_id: Callable[[Any], str | None]


class Accumulator:
    """Builds the final answer from chunks: text joined, tool calls merged by index, usage kept."""

    __slots__ = (
        "calls", "finish", "id", "model", "raw_finish", "reasoning", "refusal", "text", "usage",
    )  # fmt: skip

    def __init__(self) -> None:
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.refusal: list[str] = []
        self.calls: dict[int, list[Any]] = {}  # index -> [id, name, [argument pieces], metadata]
        self.finish: Any = None
        self.raw_finish: str | None = None
        self.usage: Usage | None = None
        self.id: str | None = None
        self.model: str | None = None

    def add(self, chunk: ChatChunk) -> None:
        if chunk.text:
            self.text.append(chunk.text)
        if chunk.reasoning:
            self.reasoning.append(chunk.reasoning)
        if chunk.refusal:
            self.refusal.append(chunk.refusal)
        for delta in chunk.tool_calls or ():
            call = self.calls.get(delta.index)
            if call is None:
                call = self.calls[delta.index] = [None, None, [], None]
            if delta.id:
                call[0] = delta.id
            if delta.name:
                call[1] = delta.name
            if delta.arguments:
                call[2].append(delta.arguments)
            if delta.metadata:
                call[3] = {**(call[3] or {}), **delta.metadata}
        if chunk.finish_reason is not None:
            self.finish = chunk.finish_reason
            self.raw_finish = chunk.raw_finish_reason
        if chunk.usage is not None:
            self.usage = chunk.usage  # cumulative: the last one wins, never summed
        if chunk.id and self.id is None:
            self.id = chunk.id
        if chunk.model and self.model is None:
            self.model = chunk.model

    @property
    def partial_text(self) -> str:
        return "".join(self.text)

    def parsed(self, wire_model: str) -> ParsedResponse:
        calls = [
            ToolCall(
                id=c[0] or f"call_{i}",
                name=c[1] or "",
                arguments="".join(c[2]) or "{}",
                metadata=c[3],
            )
            for i, c in sorted(self.calls.items())
        ]
        text = "".join(self.text)
        message = Message(
            role="assistant",
            content=text if text or not calls else None,
            tool_calls=calls or None,
            refusal="".join(self.refusal) or None,
        )
        return ParsedResponse(
            id=self.id or "",
            message=message,
            finish_reason=self.finish,
            raw_finish_reason=self.raw_finish,
            usage=self.usage or Usage(),
            model=self.model or wire_model,
        )


class StreamCore:
    """I/O-free state of one streamed call, shared by the two stream classes."""

    def __init__(
        self,
        kit: StreamKit,
        request: ChatRequest,
        plan: DispatchPlan,
        cache: tuple[bool | None, float | None] = (None, None),
    ) -> None:
        self.kit = kit
        self.request = request
        self.plan = plan
        self.cache_override, self.cache_ttl = cache
        self.send: Send | None = None
        self.decoder: StreamDecoder | None = None
        self.acc = Accumulator()
        # Rewrites each decoded batch of chunks before anything sees them (a structured
        # stream's forced answer tool becomes text: structured.AnswerChunks); None: as decoded.
        self.reshape: Callable[[list[ChatChunk]], list[ChatChunk]] | None = None
        self.buffer: deque[ChatChunk] = deque()
        self.pending: memoryview | None = None  # read, not yet decoded (see feed)
        self.ttft: float | None = None
        self.content_seen = False
        self.read_by = 0.0  # clock reading by which the next piece of the body must arrive
        self.unarmed_limit = float("inf")
        self._deadline_at = float("inf")  # the call's deadline, when it bounds the body
        self.now = kit.clock.monotonic
        self.done = False
        self.response: ChatResponse | None = None
        self.headers: httpx.Headers | None = None
        self.answering: Send | None = None  # the attempt whose provider started answering

    def serve_cached(self, hit: ChatResponse) -> None:
        """Replay a cached answer as chunks; nothing is sent."""
        from ..cache import chunks_from_response

        self.plan.close()
        chunks = chunks_from_response(hit)
        self.buffer.extend(chunks if self.reshape is None else self.reshape(chunks))
        self.response = hit
        self.done = True

    def begin(self, send: Send, response: httpx.Response) -> None:
        """A new attempt's response headers arrived with a success status."""
        self.send = send
        self.answering = send
        self.headers = response.headers
        self.decoder = self.kit.adapters[send.endpoint.name].stream_decoder(
            send.endpoint, content_type=response.headers.get("content-type")
        )
        self.acc = Accumulator()
        reset = getattr(self.reshape, "reset", None)
        if reset is not None:
            reset()
        self.buffer.clear()
        self.pending = None
        self.ttft = None
        self.content_seen = False
        self.done = False
        self.read_by = send.started + send.timeout  # the first content, within the timeout
        # Each socket read of the body is bounded by the attempt's timeout (the request's read
        # timeout): a read limit at least this long needs nothing more (1 % slack: the limit
        # is a little shorter than the timeout right after every event).
        self.unarmed_limit = send.timeout * 0.99
        left = self.plan.time_left() if self.plan.body_deadline else None
        self._deadline_at = float("inf") if left is None else self.now() + left

    def error_for(self, send: Send, response: httpx.Response) -> ProviderError:
        """The typed error for an error status (the body has been read)."""
        return self.kit.adapters[send.endpoint.name].map_error(response, send.endpoint)

    def feed(self, data: bytes) -> None:
        """Decode a piece of the body. A large piece (a burst the provider sent faster than the
        caller read) is decoded a slice at a time, as the caller asks for chunks: its first
        chunk is not held back until every event behind it is parsed."""
        assert self.decoder is not None
        size = FEED_SLICE if self.content_seen else FIRST_SLICE
        if len(data) > size:
            self.pending = memoryview(data)[size:]
            data = data[:size]
        self._take(self.decoder.feed(data))

    def feed_pending(self) -> None:
        """Decode the next slice of a large piece (see :meth:`feed`)."""
        assert self.decoder is not None
        view = self.pending
        assert view is not None
        size = FEED_SLICE if self.content_seen else FIRST_SLICE
        self.pending = view[size:] if len(view) > size else None
        self._take(self.decoder.feed(bytes(view[:size])))

    def end(self) -> None:
        """The body ended; raises when the provider never said the stream was complete."""
        assert self.decoder is not None
        self._take(self.decoder.close())
        self.done = True
        self._finish()

    def _take(self, chunks: list[ChatChunk]) -> None:
        if not chunks:  # keep-alive comments and pings decode to nothing
            return
        if self.reshape is not None:
            chunks = self.reshape(chunks)
        now = self.now()
        if not self.content_seen:
            for chunk in chunks:
                if chunk.has_content:
                    self.content_seen = True
                    assert self.send is not None
                    self.ttft = now - self.send.started
                    break
        add = self.acc.add
        for chunk in chunks:
            add(chunk)
        self.buffer.extend(chunks)
        if self.content_seen:  # the idle limit runs from the last event, within the deadline
            self.read_by = min(self._deadline_at, now + self.kit.idle_timeout)

    def _finish(self) -> None:
        send = self.send
        assert send is not None
        parsed = self.acc.parsed(send.endpoint.wire_model)
        if self.acc.usage is None or self.acc.usage is NO_USAGE:  # none sent: estimate
            parsed.usage = self.partial_usage()
        outcome = self.plan.succeeded(
            send,
            usage=parsed.usage,
            ttft=self.ttft,
            headers=self.headers,
            response_model=parsed.model,
            finish_reason=parsed.finish_reason,
            request_id=self.kit.request_id(self.headers),
            response_id=parsed.id or None,
        )
        self.response = self.kit.respond(send, parsed, outcome, self.plan)

    def interrupted(self, error: ProviderError) -> StreamInterrupted:
        """Turn a failure after content reached the caller into :class:`StreamInterrupted`."""
        send = self.send
        assert send is not None
        err = StreamInterrupted(
            f"the stream failed after content was delivered: {error.message}",
            partial_text=self.acc.partial_text,
            provider=send.endpoint.provider,
            deployment=send.endpoint.name,
            status=error.status,
            request_id=error.request_id,
            code=error.code,
        )
        err.__cause__ = error
        usage = self.partial_usage()
        if error.code == DEADLINE_CODE:
            # The call's own limit, not the provider's failure: billed, not penalized.
            self.plan.stopped(send, usage=usage, ttft=self.ttft)
        else:
            self.plan.failed(send, err, retry=False, usage=usage, ttft=self.ttft)
        self.done = True
        return err

    def partial_usage(self) -> Usage:
        """What the provider bills for this attempt so far, marked ``estimated``: its own
        counts where they arrived (e.g. Anthropic's input tokens at the start), else the
        request's estimated prompt tokens and the output received at ~4 characters a token
        (bytes read but not yet decoded included: the provider sent, and bills, them)."""
        self._count_pending()
        acc = self.acc
        got = acc.usage
        delivered = "".join(acc.text) + "".join(acc.reasoning)
        delivered += "".join("".join(call[2]) for call in acc.calls.values())
        output = estimate_text_tokens(delivered)
        if got is not None:
            return got.model_copy(
                update={"output_tokens": max(got.output_tokens, output), "estimated": True}
            )
        return Usage(input_tokens=self.plan.ctx.input_tokens, output_tokens=output, estimated=True)

    def _count_pending(self) -> None:
        """Decode what is left of a large read into the accumulated answer only (the caller
        stopped or the stream failed: no chunk is delivered any more)."""
        view, self.pending = self.pending, None
        if view is None or self.decoder is None:
            return
        try:
            chunks = self.decoder.feed(bytes(view))
        except MultimodelError:  # a broken event in the unread part: count what came before
            return
        for chunk in chunks:
            self.acc.add(chunk)

    def stop(self) -> None:
        """The caller stopped before the end (closed or abandoned the stream): release the
        attempt; once the provider had started answering, record what it bills."""
        send = self.send
        if send is None or self.done or self.response is not None:
            return
        self.done = True
        if self.answering is send:
            self.plan.stopped(send, usage=self.partial_usage(), ttft=self.ttft)
        else:
            self.plan.cancelled(send)

    def read_limit(self) -> float:
        """Seconds the next read may wait: up to the attempt's first content its timeout, then
        the idle limit since the last event; never past the call's deadline."""
        return self.read_by - self.now()

    def timed_out(self) -> ProviderError:
        """The error for a read that ran out of time (see :meth:`read_limit`)."""
        send = self.send
        assert send is not None
        if not self.content_seen:
            return ProviderTimeout(
                f"no content within the attempt's timeout ({send.timeout:.3g}s)",
                provider=send.endpoint.provider,
                deployment=send.endpoint.name,
            )
        left = self.plan.time_left() if self.plan.body_deadline else None
        if left is not None and left <= 0:
            return ProviderTimeout(
                "the call's deadline passed while the stream was still running",
                provider=send.endpoint.provider,
                deployment=send.endpoint.name,
                code=DEADLINE_CODE,
            )
        return ProviderTimeout(
            f"no content for {self.kit.idle_timeout:.3g}s (the stream's idle limit; keep-alive "
            "comments and pings do not count)",
            provider=send.endpoint.provider,
            deployment=send.endpoint.name,
            code=IDLE_CODE,
        )

    def transport_error(self, exc: Exception) -> MultimodelError:
        assert self.send is not None
        return self.kit.transport_error(exc, self.send.endpoint)
