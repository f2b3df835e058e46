"""Generated from ``_async/chat.py`` by ``.ci/unasync.py``: do not edit.

Edit ``_async/chat.py``, then run ``nox -s generate`` (or ``python .ci/unasync.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, overload

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
        messages: Sequence[Mapping[str, Any]],
        stream: Literal[False] = False,
        **kwargs: Any,
    ) -> ChatCompletion: ...

    @overload
    def create(
        self,
        *,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        stream: Literal[True],
        **kwargs: Any,
    ) -> Iterator[ChatCompletionChunk]: ...

    @overload
    def create(
        self,
        *,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        stream: bool,
        **kwargs: Any,
    ) -> ChatCompletion | Iterator[ChatCompletionChunk]: ...

    def create(
        self,
        *,
        model: str,
        messages: Sequence[Mapping[str, Any]],
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
