"""Generated from ``_async/stream.py`` by ``.ci/unasync.py``: do not edit.

Edit ``_async/stream.py``, then run ``nox -s generate`` (or ``python .ci/unasync.py``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

import httpx

from ..._core.dispatch import DispatchPlan, Send, Sleep
from ..._transports.pool import pool_wait_ended
from ..._transports.send import send_http, reads_time_out
from ...errors import ContentFiltered, MultimodelError, ProviderError, StructuredOutputError
from ...types import ChatChunk, ChatRequest, ChatResponse
from .._primitives import (
    abandon,
    shield,
    sleep,
    time_limit,
    io_time_limit,
)
from .._stream_core import StreamCore, StreamKit, caller, unclosed_warning
from .admission import admitted

if TYPE_CHECKING:
    from pydantic import BaseModel

    from ...types import ResponseFormat

if sys.version_info >= (3, 11):
    from typing import Self
else:  # pragma: no cover
    from typing_extensions import Self

__all__ = ["Stream"]


class Stream:
    """A streamed answer: iterate it for :class:`~multimodel.types.ChatChunk` objects.

    Use it as a context manager so the connection is released even when you stop early::

        with client.stream("Write a haiku", model="gpt-4o-mini") as stream:
            for chunk in stream:
                print(chunk.text, end="")
        print(stream.response.usage)

    ``response`` is the aggregated :class:`~multimodel.types.ChatResponse` once the stream has
    been read to the end (``None`` before); :meth:`get_final_response` reads the rest first.

    Time limits: the client's ``timeout`` bounds each attempt up to its first content chunk;
    then each wait for more content is bounded by ``stream_idle_timeout`` (keep-alive comments
    and pings are not content) and by what is left of the call's ``deadline``. Past either, the
    stream raises :class:`~multimodel.errors.StreamInterrupted` with the text received so far.
    """

    def __init__(
        self,
        http: httpx.Client,
        kit: StreamKit,
        request: ChatRequest,
        plan: DispatchPlan,
        *,
        cache: tuple[bool | None, float | None] = (None, None),
        structured: tuple[ResponseFormat, type[BaseModel] | None] | None = None,
    ) -> None:
        self._http_client = http
        self._structured = structured
        self._invalid: MultimodelError | None = None  # raised once the chunks are read
        self._kit = kit
        self._core = StreamCore(kit, request, plan, cache)
        if structured is not None and structured[0].type == "json_schema" and not request.tools:
            from ..structured import AnswerChunks

            self._core.reshape = AnswerChunks(structured[0])  # the answer streams as text
        self._http: httpx.Response | None = None
        self._bytes: Iterator[bytes] | None = None
        self._opened = False
        self._closed = False
        self._bounded_io = False  # whether the transport bounds each read by the time left
        # Whether each read ends by itself within the attempt's timeout (multimodel's pools,
        # httpx's own transports): nothing to arm while the time left is at least that.
        self._timed_reads = False
        self._opened_at = caller(3)

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
                if self._invalid is not None:  # found when the answer was complete
                    invalid, self._invalid = self._invalid, None
                    raise invalid
                if self._structured is not None and core.response is not None:
                    self._validate()
                raise StopIteration
            try:
                self._read()
            except ProviderError as exc:
                self._release()
                error = core.interrupted(exc)
                self._settle()  # its hold or opened breaker reaches the fleet now
                raise error from exc
            except BaseException:
                self.close()
                raise
        return core.buffer.popleft()

    def _validate(self) -> None:
        """Set the complete response's ``parsed`` (a ``response_format`` was given).

        Raises:
            StructuredOutputError: the streamed answer does not fit the format.
        """
        from ..structured import finish

        assert self._structured is not None
        assert self._core.response is not None
        fmt, model = self._structured
        self._structured = None
        self._core.response = finish(self._core.response, fmt, model)

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
        self._core.stop()
        self._release()
        self._settle()  # a stopped stream's billed tokens replace its reservation

    def __del__(self) -> None:
        # Dropped without being closed (`for chunk in client.stream(...): break`): free the
        # attempt now and say where the stream was opened. The connection goes back to the
        # pool with the response, or, when only a cancel scope could close it, is closed by
        # the pool on its next use.
        if self._closed or not self._opened:
            return
        self._closed = True
        if self._core.done and self._http is None:
            return  # read to its end or failed: nothing held
        unclosed_warning(self._opened_at)
        self._core.stop()
        abandon(self._http, self._bytes)

    # -- I/O ------------------------------------------------------------------------------------

    def _open(self) -> None:
        if self._opened:
            return
        self._opened = True
        core = self._core
        plan = core.plan
        cache = self._kit.cache
        if cache is not None:
            started = self._kit.clock.monotonic()
            hit = cache.lookup(core.request, override=core.cache_override)
            if hit is not None:
                core.serve_cached(self._kit.from_cache(core.request, hit, started))
                return
        while True:
            try:
                action = plan.next_action()
            except BaseException:
                core.done = True  # retries and fallbacks ran out: nothing is held
                raise
            if isinstance(action, Sleep):
                sleep(action.seconds)
                continue
            shared = plan.shared
            if shared is not None:  # the fleet admits the attempt (one Redis round trip)
                try:
                    if not admitted(plan, shared, action):
                        continue
                except BaseException:
                    core.done = True  # the attempt was cancelled: nothing is held
                    raise
            try:
                self._attempt(action)
            except ProviderError as exc:
                self._release()
                plan.failed(action, exc)
                if shared is not None and shared.pending:  # a hold or an opened breaker
                    shared.settle()
                continue
            except BaseException:
                self._release()
                core.stop()
                raise
            return

    def _attempt(self, send: Send) -> None:
        """Send one attempt and read until its first content chunk, within ``send.timeout``."""
        core = self._core
        core.send = send
        kit = self._kit
        http_request = kit.http_request(send, core.request, stream=True)
        try:
            with time_limit(send.timeout):
                response = send_http(self._http_client, http_request, stream=True)
                self._http = response
                if response.status_code >= 300:  # 3xx: not followed (error_from_status)
                    response.read()
                    raise core.error_for(send, response)
                core.begin(send, response)
                self._bounded_io = getattr(response.stream, "bounds_io", False)
                self._timed_reads = self._bounded_io or reads_time_out(
                    self._http_client, http_request.url
                )
                if response.headers.get("content-encoding", "identity") == "identity":
                    # The transport's pieces as they are: httpx's decoder, chunker and two
                    # generator layers cost ~2 µs per piece and do nothing to such a body.
                    self._bytes = cast(Iterable[bytes], response.stream).__iter__()
                else:
                    self._bytes = response.iter_bytes()
                while not core.content_seen and not core.done:
                    if core.read_limit() <= 0:  # a transport that does not bound its reads
                        raise core.timed_out()
                    self._next_bytes()
        except TimeoutError as exc:
            if pool_wait_ended.get() is http_request:  # our own pool, not the provider
                raise kit.transport_error(exc, send.endpoint, http_request) from exc
            raise core.timed_out() from exc
        except httpx.HTTPError as exc:
            raise kit.transport_error(exc, send.endpoint) from exc
        if core.done:
            self._store()
            self._settle()

    def _read(self) -> None:
        """Read more of the body, within the idle limit and the call's deadline (a method kept
        lean: it runs once per network read)."""
        core = self._core
        if core.pending is not None:  # the rest of a large read first: no I/O
            core.feed_pending()
            return
        limit = core.read_by - core.now()
        if limit <= 0:
            raise core.timed_out()
        byte_iter = self._bytes
        assert byte_iter is not None
        try:
            if self._timed_reads and limit >= core.unarmed_limit:
                # The transport bounds each socket read by the attempt's timeout, which ends a
                # silent read within this limit: nothing to arm (the common case, per chunk;
                # a cancel scope per read costs more than the rest of a chunk's reading).
                data = byte_iter.__next__()
            elif self._bounded_io:  # the transport gives each read the time left: no scope
                with io_time_limit(limit):
                    data = byte_iter.__next__()
            else:
                with time_limit(limit):
                    data = byte_iter.__next__()
        except StopIteration:
            core.end()
            self._release()
            self._store()
            self._settle()
            return
        except TimeoutError as exc:
            raise core.timed_out() from exc
        except httpx.HTTPError as exc:
            if isinstance(exc, httpx.TimeoutException) and core.read_limit() <= 0:
                raise core.timed_out() from exc
            raise core.transport_error(exc) from exc
        core.feed(data)

    def _next_bytes(self) -> None:
        core = self._core
        if core.pending is not None:
            core.feed_pending()
            return
        assert self._bytes is not None
        try:
            data = self._bytes.__next__()
        except StopIteration:
            core.end()
            self._release()
            return
        core.feed(data)

    def _store(self) -> None:
        """Keep a complete answer in the response cache (outside the read's time limit); with
        a ``response_format``, only one that validates (the error waits for the last chunk)."""
        core = self._core
        cache = self._kit.cache
        if cache is None or core.response is None:
            return
        answer = core.response
        if self._structured is not None:
            try:
                self._validate()
            except (StructuredOutputError, ContentFiltered) as exc:
                self._invalid = exc
                return
        cache.store(core.request, answer, ttl=core.cache_ttl, override=core.cache_override)

    def _settle(self) -> None:
        """Write the fleet's bookkeeping of the attempt that ended (``shared_state=``): its real
        token count in place of the reservation, the answer's time, a hold or an opened breaker.
        One pipelined Redis round trip at the end of the body (or the one other tasks'
        admissions are about to make), not at the next call; shielded
        (bounded by ``op_timeout``) so that a caller's cancellation does not leave the fleet's
        counters on the estimate."""
        shared = self._core.plan.shared
        if shared is not None and shared.pending:
            with shield():
                shared.settle()

    def _release(self) -> None:
        http, byte_iter, self._http, self._bytes = self._http, self._bytes, None, None
        with shield():
            # Close the byte iterator explicitly: left to the garbage collector, an async
            # generator would be finalized outside any event loop (trio warns, asyncio may too).
            close = getattr(byte_iter, "close", None)
            if close is not None:
                close()
            if http is not None:
                http.close()
