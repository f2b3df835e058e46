"""Generated from ``_async/chat.py`` by ``.ci/unasync.py``: do not edit.

Edit ``_async/chat.py``, then run ``nox -s generate`` (or ``python .ci/unasync.py``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from functools import cached_property
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, overload

import httpx

from ...errors import InvalidRequestError
from ...types import ChatResponse
from .._requests import MessageInput
from ..openai_shapes import (
    ChatCompletion,
    ChatCompletionChunk,
    RawResponse,
    create_params,
    joined_logprobs,
    to_chunks,
    to_completion,
    usage_chunk,
)
from .stream import Stream

if TYPE_CHECKING:
    from .client import Client

__all__ = [
    "Chat",
    "ChatCompletionStream",
    "Completions",
    "CompletionsWithRawResponse",
]


class Completions:
    """``client.chat.completions``."""

    def __init__(self, client: Client) -> None:
        self._client = client

    @cached_property
    def with_raw_response(self) -> CompletionsWithRawResponse:
        """``create`` returning the raw response: ``.headers``, ``.status_code`` and
        ``.parse()`` (the ``ChatCompletion``), as in the OpenAI SDK."""
        return CompletionsWithRawResponse(self._client)

    @overload
    def create(
        self,
        *,
        model: str,
        messages: Sequence[MessageInput],
        stream: Literal[False] = False,
        **kwargs: Any,
    ) -> ChatCompletion: ...

    @overload
    def create(
        self,
        *,
        model: str,
        messages: Sequence[MessageInput],
        stream: Literal[True],
        **kwargs: Any,
    ) -> ChatCompletionStream: ...

    @overload
    def create(
        self,
        *,
        model: str,
        messages: Sequence[MessageInput],
        stream: bool,
        **kwargs: Any,
    ) -> ChatCompletion | ChatCompletionStream: ...

    def create(
        self,
        *,
        model: str,
        messages: Sequence[MessageInput],
        stream: bool = False,
        **kwargs: Any,
    ) -> ChatCompletion | ChatCompletionStream:
        """Create a chat completion, OpenAI-style.

        With ``stream=True`` the answer is an :class:`ChatCompletionStream`: an iterator
        of chunks and a context manager with ``close()``, as the SDK's stream is; the request
        is sent (and retried or failed over up to its first content) before it is returned.
        """
        client, timeout = _timed(self._client, kwargs.pop("timeout", None))
        extra = {"extra_headers": kwargs.pop("extra_headers", None)}
        extra["extra_query"] = kwargs.pop("extra_query", None)
        params, include_usage = create_params(messages, kwargs)
        clock = client._clock
        if not stream:
            response = client.query(
                list(messages), model=model, timeout=timeout, **extra, **params
            )
            return to_completion(response, int(clock.time()))
        s = client.stream(list(messages), model=model, timeout=timeout, **extra, **params)
        s.__enter__()
        return ChatCompletionStream(s, model, int(clock.time()), include_usage)

    def parse(
        self,
        *,
        model: str,
        messages: Sequence[MessageInput],
        response_format: Any,
        **kwargs: Any,
    ) -> ChatCompletion:
        """Create a chat completion whose answer is validated, like the OpenAI SDK's
        ``parse``: ``response_format`` is a pydantic model class (or a JSON-schema dict) and
        ``choices[0].message.parsed`` holds the validated object (``None`` on a refusal, which
        is in ``message.refusal``).

        Raises:
            StructuredOutputError: the answer does not validate (after ``structured_retries``).
        """
        client, timeout = _timed(self._client, kwargs.pop("timeout", None))
        extra = {"extra_headers": kwargs.pop("extra_headers", None)}
        extra["extra_query"] = kwargs.pop("extra_query", None)
        retries = kwargs.pop("structured_retries", None)
        if kwargs.get("stream"):
            raise InvalidRequestError(
                "parse() does not stream; use client.stream(..., response_format=...)",
                field="stream",
            )
        kwargs.pop("stream", None)
        params, _ = create_params(messages, {**kwargs, "response_format": response_format})
        response = client.query(
            list(messages),
            model=model,
            timeout=timeout,
            structured_retries=retries,
            **extra,
            **params,
        )
        return to_completion(response, int(client._clock.time()))


def _timed(client: Client, timeout: Any) -> tuple[Client, Any]:
    """The client and the timeout a ``create`` call runs with: the SDK also takes an
    ``httpx.Timeout`` per call, which is ``with_options(timeout=...)`` for this call (its read
    limit becomes the stream idle limit, as with a client's)."""
    if isinstance(timeout, httpx.Timeout):
        return client.with_options(timeout=timeout), None
    return client, timeout


class ChatCompletionStream:
    """What ``create(stream=True)`` returns: an iterator of ``ChatCompletionChunk`` and a
    context manager, like the OpenAI SDK's stream::

        with client.chat.completions.create(..., stream=True) as stream:
            for chunk in stream:
                ...

    ``close()`` releases the connection (leaving the ``with`` block or reading to the end
    does it too). After the last chunk, :meth:`get_final_completion` is the aggregated
    ``ChatCompletion`` and ``final_response`` the normalized response.
    """

    def __init__(self, stream: Stream, model: str, created: int, include_usage: bool):
        self._stream = stream
        #: The HTTP response of the attempt that answered (the SDK's ``Stream.response``:
        #: ``status_code``, ``headers``); ``None`` for an answer replayed from the cache.
        self.response: httpx.Response | None = stream._http
        self._model = model
        self._created = created
        self._include_usage = include_usage
        self._pending: deque[ChatCompletionChunk] = deque()
        self._first = True
        self._finished = False
        self._logprobs: list[Any] = []  # each chunk's, for the final completion

    @property
    def final_response(self) -> ChatResponse | None:
        """The normalized response, once the stream was read to its end (else ``None``)."""
        return self._stream.response

    def get_final_completion(self) -> ChatCompletion:
        """The aggregated ``ChatCompletion`` of a stream read to its end.

        Raises:
            InvalidRequestError: the stream has not been read to its end.
        """
        response = self._stream.response
        if response is None:
            raise InvalidRequestError(
                "the stream has not been read to its end; iterate it first", field="stream"
            )
        completion = to_completion(response, self._created)
        completion.choices[0].logprobs = joined_logprobs(self._logprobs)
        return completion

    def __iter__(self) -> ChatCompletionStream:
        return self

    def __next__(self) -> ChatCompletionChunk:
        pending = self._pending
        while not pending:
            if self._finished:
                raise StopIteration
            try:
                chunk = self._stream.__next__()
            except StopIteration:
                self._finished = True
                final = self._stream.response
                if self._include_usage and final is not None:
                    pending.append(usage_chunk(final, self._created))
                continue
            ident = chunk.id or "chatcmpl-multimodel"
            made = to_chunks(chunk, ident, chunk.model or self._model, self._created, self._first)
            if chunk.logprobs is not None:
                self._logprobs.extend(
                    c.choices[0].logprobs for c in made if c.choices[0].logprobs is not None
                )
            pending.extend(made)
            self._first = False
        return pending.popleft()

    def close(self) -> None:
        """Release the connection (an answer abandoned early is not counted a success)."""
        self._finished = True
        self._pending.clear()
        self._stream.close()

    def __enter__(self) -> ChatCompletionStream:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class CompletionsWithRawResponse:
    """``client.chat.completions.with_raw_response``."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def create(
        self, *, model: str, messages: Sequence[MessageInput], **kwargs: Any
    ) -> RawResponse[Any]:
        """As ``chat.completions.create``: ``parse()`` is the ``ChatCompletion`` (or, with
        ``stream=True``, the stream); the headers are those of the attempt that answered."""
        if kwargs.get("stream"):
            stream = self._client.chat.completions.create(
                model=model, messages=messages, **kwargs
            )
            http = stream.response  # the answering attempt's (None if cached)
            return RawResponse(stream, http.headers if http is not None else None)
        headers: list[Any] = []
        client = self._client._capturing(headers)
        completion = client.chat.completions.create(model=model, messages=messages, **kwargs)
        return RawResponse(completion, headers[-1] if headers else None)


class Chat:
    """``client.chat``."""

    def __init__(self, client: Client) -> None:
        self.completions = Completions(client)
