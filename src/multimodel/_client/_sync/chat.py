"""Generated from ``_async/chat.py`` by ``.ci/unasync.py``: do not edit.

Edit ``_async/chat.py``, then run ``nox -s generate`` (or ``python .ci/unasync.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal, overload

from ...errors import InvalidRequestError
from .._base import MessageInput
from ..openai_shapes import (
    ChatCompletion,
    ChatCompletionChunk,
    create_params,
    to_chunks,
    to_completion,
    usage_chunk,
)
from .stream import Stream

if TYPE_CHECKING:
    from .client import Client

__all__ = ["Chat", "Completions"]


class Completions:
    """``client.chat.completions``."""

    def __init__(self, client: Client) -> None:
        self._client = client

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
    ) -> Iterator[ChatCompletionChunk]: ...

    @overload
    def create(
        self,
        *,
        model: str,
        messages: Sequence[MessageInput],
        stream: bool,
        **kwargs: Any,
    ) -> ChatCompletion | Iterator[ChatCompletionChunk]: ...

    def create(
        self,
        *,
        model: str,
        messages: Sequence[MessageInput],
        stream: bool = False,
        **kwargs: Any,
    ) -> ChatCompletion | Iterator[ChatCompletionChunk]:
        """Create a chat completion, OpenAI-style (``stream=True``: an iterator of chunks)."""
        timeout = kwargs.pop("timeout", None)
        params, include_usage = create_params(messages, kwargs)
        clock = self._client._clock
        if not stream:
            response = self._client.query(
                list(messages), model=model, timeout=timeout, **params
            )
            return to_completion(response, int(clock.time()))
        s = self._client.stream(list(messages), model=model, timeout=timeout, **params)
        return self._iterate(s, model, int(clock.time()), include_usage)

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
        timeout = kwargs.pop("timeout", None)
        retries = kwargs.pop("structured_retries", None)
        if kwargs.get("stream"):
            raise InvalidRequestError(
                "parse() does not stream; use client.stream(..., response_format=...)",
                field="stream",
            )
        kwargs.pop("stream", None)
        params, _ = create_params(messages, {**kwargs, "response_format": response_format})
        response = self._client.query(
            list(messages), model=model, timeout=timeout, structured_retries=retries, **params
        )
        return to_completion(response, int(self._client._clock.time()))

    @staticmethod
    def _iterate(
        s: Stream, model: str, created: int, include_usage: bool
    ) -> Iterator[ChatCompletionChunk]:
        with s:
            first = True
            for chunk in s:
                ident = chunk.id or "chatcmpl-multimodel"
                for out in to_chunks(chunk, ident, chunk.model or model, created, first):
                    yield out
                first = False
            if include_usage and s.response is not None:
                yield usage_chunk(s.response, created)


class Chat:
    """``client.chat``."""

    def __init__(self, client: Client) -> None:
        self.completions = Completions(client)
