"""Streams: :class:`Stream` and :class:`AsyncStream` over one decoder and one accumulator.

Both classes share :class:`_StreamCore`, which owns everything that is not I/O: feeding bytes to
the provider's decoder, accumulating text / tool calls / usage into the final response, the
failover rule and the single report to the tracker. The twins only read bytes and sleep.

The failover rule: until the first content chunk has been produced, any failure (an HTTP error,
an error event inside the stream, a dropped or stalled connection) is handed to the dispatch plan,
which retries or falls back to another deployment; the caller sees nothing of it. Once content
has reached the caller, a failure raises :class:`~multimodel.errors.StreamInterrupted` carrying
the partial text, and no chunk is ever delivered twice.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
import httpx

from ._core.dispatch import DispatchPlan, Send, Sleep
from .errors import ProviderError, StreamInterrupted
from .providers.base import ParsedResponse, StreamDecoder
from .types import ChatChunk, ChatRequest, ChatResponse, Message, ToolCall, Usage

if sys.version_info >= (3, 11):
    from typing import Self
else:  # pragma: no cover
    from typing_extensions import Self

if TYPE_CHECKING:
    from .async_client import AsyncClient
    from .client import Client

__all__ = ["AsyncStream", "Stream"]


class _Accumulator:
    """Builds the final answer from chunks: text joined, tool calls merged by index, usage kept."""

    __slots__ = ("calls", "finish", "id", "model", "raw_finish", "reasoning", "text", "usage")

    def __init__(self) -> None:
        self.text: list[str] = []
        self.reasoning: list[str] = []
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
        for delta in chunk.tool_calls:
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
            role="assistant", content=text if text or not calls else None, tool_calls=calls or None
        )
        return ParsedResponse(
            id=self.id or "",
            message=message,
            finish_reason=self.finish,
            raw_finish_reason=self.raw_finish,
            usage=self.usage or Usage(),
            model=self.model or wire_model,
        )


class _StreamCore:
    """I/O-free state of one streamed call, shared by the two stream classes."""

    def __init__(
        self,
        client: Client | AsyncClient,
        request: ChatRequest,
        plan: DispatchPlan,
        cache: tuple[bool | None, float | None] = (None, None),
    ) -> None:
        self._client = client
        self.request = request
        self.plan = plan
        self.cache_override, self.cache_ttl = cache
        self.send: Send | None = None
        self.decoder: StreamDecoder | None = None
        self.acc = _Accumulator()
        self.buffer: deque[ChatChunk] = deque()
        self.ttft: float | None = None
        self.content_seen = False
        self.done = False
        self.response: ChatResponse | None = None
        self.headers: httpx.Headers | None = None

    def serve_cached(self, hit: ChatResponse) -> None:
        """Replay a cached answer as chunks; nothing is sent."""
        from .cache import chunks_from_response

        self.plan.close()
        self.buffer.extend(chunks_from_response(hit))
        self.response = hit
        self.done = True

    def begin(self, send: Send, response: httpx.Response) -> None:
        """A new attempt's response headers arrived with a success status."""
        self.send = send
        self.headers = response.headers
        self.decoder = self._client._adapters[send.endpoint.name].stream_decoder(send.endpoint)
        self.acc = _Accumulator()
        self.buffer.clear()
        self.ttft = None
        self.content_seen = False
        self.done = False

    def error_for(self, send: Send, response: httpx.Response) -> ProviderError:
        """The typed error for an error status (the body has been read)."""
        return self._client._adapters[send.endpoint.name].map_error(response, send.endpoint)

    def feed(self, data: bytes) -> None:
        assert self.decoder is not None
        self._take(self.decoder.feed(data))

    def end(self) -> None:
        """The body ended; raises when the provider never said the stream was complete."""
        assert self.decoder is not None
        self._take(self.decoder.close())
        self.done = True
        self._finish()

    def _take(self, chunks: list[ChatChunk]) -> None:
        for chunk in chunks:
            if not self.content_seen and chunk.has_content:
                self.content_seen = True
                assert self.send is not None
                self.ttft = self.plan._router.clock.monotonic() - self.send.started
            self.acc.add(chunk)
            self.buffer.append(chunk)

    def _finish(self) -> None:
        send = self.send
        assert send is not None
        parsed = self.acc.parsed(send.endpoint.wire_model)
        outcome = self.plan.succeeded(
            send,
            usage=parsed.usage,
            ttft=self.ttft,
            headers=self.headers,
            response_model=parsed.model,
            finish_reason=parsed.finish_reason,
            request_id=self._client._request_id(self.headers),
        )
        self.response = self._client._response(send, parsed, outcome, self.plan)

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
        self.plan.failed(send, err, retry=False)
        self.done = True
        return err

    def transport_error(self, exc: Exception) -> ProviderError:
        assert self.send is not None
        return self._client._transport_error(exc, self.send.endpoint)


class Stream:
    """A streamed answer: iterate it for :class:`~multimodel.types.ChatChunk` objects.

    Use it as a context manager so the connection is released even when you stop early::

        with client.stream("Write a haiku", model="gpt-4o-mini") as stream:
            for chunk in stream:
                print(chunk.text, end="")
        print(stream.response.usage)

    ``response`` is the aggregated :class:`~multimodel.types.ChatResponse` once the stream has
    been read to the end (``None`` before); :meth:`get_final_response` reads the rest first.
    """

    def __init__(
        self,
        client: Client,
        request: ChatRequest,
        plan: DispatchPlan,
        *,
        cached: ChatResponse | None = None,
        cache: tuple[bool | None, float | None] = (None, None),
    ) -> None:
        self._client = client
        self._core = _StreamCore(client, request, plan, cache)
        self._http: httpx.Response | None = None
        self._bytes: Iterator[bytes] | None = None
        self._opened = False
        self._closed = False
        if cached is not None:
            self._core.serve_cached(cached)
            self._opened = True

    @property
    def response(self) -> ChatResponse | None:
        """The complete response, after the stream was read to its end."""
        return self._core.response

    @property
    def trace(self) -> Any:
        """The routing trace so far."""
        return self._core.plan.trace

    def __enter__(self) -> Self:
        self._open()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __iter__(self) -> Iterator[ChatChunk]:
        return self

    def __next__(self) -> ChatChunk:
        core = self._core
        if not self._opened:
            self._open()
        while not core.buffer:
            if core.done:
                self._release()
                raise StopIteration
            try:
                self._read()
            except ProviderError as exc:
                self._release()
                raise core.interrupted(exc) from exc
            except BaseException:
                self.close()
                raise
        return core.buffer.popleft()

    def get_final_response(self) -> ChatResponse:
        """Read whatever is left and return the complete response."""
        for _ in self:
            pass
        assert self._core.response is not None
        return self._core.response

    def close(self) -> None:
        """Release the connection; a stream abandoned before its end is not counted a success."""
        if self._closed:
            return
        self._closed = True
        core = self._core
        if core.send is not None and core.response is None and not core.done:
            core.plan.cancelled(core.send)
            core.done = True
        self._release()

    # -- I/O ------------------------------------------------------------------------------------

    def _open(self) -> None:
        if self._opened:
            return
        self._opened = True
        core = self._core
        plan = core.plan
        while True:
            action = plan.next_action()
            if isinstance(action, Sleep):
                time.sleep(action.seconds)
                continue
            try:
                self._attempt(action)
            except ProviderError as exc:
                self._release()
                plan.failed(action, exc)
                continue
            except BaseException:
                self._release()
                plan.cancelled(action)
                core.done = True
                raise
            return

    def _attempt(self, send: Send) -> None:
        core = self._core
        core.send = send
        http_request = self._client._http_request(send, core.request, stream=True)
        try:
            response = self._client._http.send(http_request, stream=True)
        except httpx.HTTPError as exc:
            raise self._client._transport_error(exc, send.endpoint) from exc
        self._http = response
        if response.status_code >= 400:
            try:
                response.read()
            except httpx.HTTPError as exc:
                raise self._client._transport_error(exc, send.endpoint) from exc
            raise core.error_for(send, response)
        core.begin(send, response)
        self._bytes = response.iter_bytes()
        while not core.content_seen and not core.done:
            self._read()

    def _read(self) -> None:
        core = self._core
        assert self._bytes is not None
        try:
            data = next(self._bytes)
        except StopIteration:
            core.end()
            self._release()
            cache = self._client.cache
            if cache is not None and core.response is not None:
                cache.store(
                    core.request, core.response, ttl=core.cache_ttl, override=core.cache_override
                )
            return
        except httpx.HTTPError as exc:
            raise core.transport_error(exc) from exc
        core.feed(data)

    def _release(self) -> None:
        http, byte_iter, self._http, self._bytes = self._http, self._bytes, None, None
        if byte_iter is not None:
            close = getattr(byte_iter, "close", None)
            if close is not None:
                close()
        if http is not None:
            http.close()


class AsyncStream:
    """The async twin of :class:`Stream`: ``async with`` / ``async for``.

    Example::

        async with client.stream("Write a haiku", model="gpt-4o-mini") as stream:
            async for chunk in stream:
                print(chunk.text, end="")
    """

    def __init__(
        self,
        client: AsyncClient,
        request: ChatRequest,
        plan: DispatchPlan,
        *,
        cache: tuple[bool | None, float | None] = (None, None),
    ) -> None:
        self._client = client
        self._core = _StreamCore(client, request, plan, cache)
        self._http: httpx.Response | None = None
        self._bytes: AsyncIterator[bytes] | None = None
        self._opened = False
        self._closed = False

    @property
    def response(self) -> ChatResponse | None:
        """The complete response, after the stream was read to its end."""
        return self._core.response

    @property
    def trace(self) -> Any:
        """The routing trace so far."""
        return self._core.plan.trace

    async def __aenter__(self) -> Self:
        await self._open()
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncIterator[ChatChunk]:
        return self

    async def __anext__(self) -> ChatChunk:
        core = self._core
        if not self._opened:
            await self._open()
        while not core.buffer:
            if core.done:
                await self._release()
                raise StopAsyncIteration
            try:
                await self._read()
            except ProviderError as exc:
                await self._release()
                raise core.interrupted(exc) from exc
            except BaseException:
                await self.aclose()
                raise
        return core.buffer.popleft()

    async def get_final_response(self) -> ChatResponse:
        """Read whatever is left and return the complete response."""
        async for _ in self:
            pass
        assert self._core.response is not None
        return self._core.response

    async def aclose(self) -> None:
        """Release the connection; a stream abandoned before its end is not counted a success."""
        if self._closed:
            return
        self._closed = True
        core = self._core
        if core.send is not None and core.response is None and not core.done:
            core.plan.cancelled(core.send)
            core.done = True
        await self._release()

    async def _open(self) -> None:
        if self._opened:
            return
        self._opened = True
        core = self._core
        plan = core.plan
        cache = self._client.cache
        if cache is not None:
            started = self._client._clock.monotonic()
            hit = await cache.alookup(core.request, override=core.cache_override)
            if hit is not None:
                core.serve_cached(self._client._from_cache(core.request, hit, started))
                return
        while True:
            action = plan.next_action()
            if isinstance(action, Sleep):
                await anyio.sleep(action.seconds)
                continue
            try:
                await self._attempt(action)
            except ProviderError as exc:
                await self._release()
                plan.failed(action, exc)
                continue
            except BaseException:
                await self._release()
                plan.cancelled(action)
                core.done = True
                raise
            return

    async def _attempt(self, send: Send) -> None:
        core = self._core
        core.send = send
        http_request = self._client._http_request(send, core.request, stream=True)
        try:
            response = await self._client._http.send(http_request, stream=True)
        except httpx.HTTPError as exc:
            raise self._client._transport_error(exc, send.endpoint) from exc
        self._http = response
        if response.status_code >= 400:
            try:
                await response.aread()
            except httpx.HTTPError as exc:
                raise self._client._transport_error(exc, send.endpoint) from exc
            raise core.error_for(send, response)
        core.begin(send, response)
        self._bytes = response.aiter_bytes()
        while not core.content_seen and not core.done:
            await self._read()

    async def _read(self) -> None:
        core = self._core
        assert self._bytes is not None
        try:
            data = await self._bytes.__anext__()
        except StopAsyncIteration:
            core.end()
            await self._release()
            cache = self._client.cache
            if cache is not None and core.response is not None:
                await cache.astore(
                    core.request, core.response, ttl=core.cache_ttl, override=core.cache_override
                )
            return
        except httpx.HTTPError as exc:
            raise core.transport_error(exc) from exc
        core.feed(data)

    async def _release(self) -> None:
        http, byte_iter, self._http, self._bytes = self._http, self._bytes, None, None
        with anyio.CancelScope(shield=True):
            # Close the async generator explicitly: left to the garbage collector, it would be
            # finalized outside any event loop (trio warns, asyncio may too).
            aclose = getattr(byte_iter, "aclose", None)
            if aclose is not None:
                await aclose()
            if http is not None:
                await http.aclose()
