"""Gemini embeddings (no I/O): the ``batchEmbedContents`` request and its answer.

:class:`GeminiEmbeddings` is the embeddings half of
:class:`~multimodel.providers.gemini.GeminiAdapter`, which inherits it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import httpx

from ._embeddings import embedding_vector
from ._gemini_contents import model_path
from ._request import json_bytes, post_request, request_headers
from .base import MAX_EMBEDDINGS_BODY_BYTES, Endpoint, ProviderAdapter

if TYPE_CHECKING:
    from ..embeddings import EmbedTask, ParsedEmbeddings

__all__ = ["GeminiEmbeddings"]


class GeminiEmbeddings(ProviderAdapter):
    """Gemini's ``batchEmbedContents``: one request per input, up to 100 per call."""

    embedding_limits = (100, None)  # requests per batchEmbedContents call
    embedding_task_types = True

    def build_embedding_request(
        self,
        inputs: Sequence[str],
        endpoint: Endpoint,
        *,
        dimensions: int | None,
        task: EmbedTask | None = None,
    ) -> httpx.Request:
        model = model_path(endpoint.wire_model)
        requests: list[dict[str, Any]] = []
        for position, text in enumerate(inputs):
            item: dict[str, Any] = {"model": model, "content": {"parts": [{"text": text}]}}
            if dimensions is not None:
                item["outputDimensionality"] = dimensions
            if task is not None:
                item["taskType"] = task.task_type
                if task.titles is not None:
                    item["title"] = task.titles[position]
            requests.append(item)
        headers = request_headers(endpoint, stream=False)
        return post_request(
            endpoint,
            endpoint.url(f"{model}:batchEmbedContents"),
            headers,
            json_bytes({"requests": requests}),
        )

    def parse_embedding_response(
        self, response: httpx.Response, endpoint: Endpoint, count: int
    ) -> ParsedEmbeddings:
        from ..embeddings import ParsedEmbeddings

        body = self.json_body(response, endpoint, MAX_EMBEDDINGS_BODY_BYTES)
        items = body.get("embeddings") if isinstance(body, dict) else None
        if not isinstance(items, list) or len(items) != count:
            raise self._malformed(
                f"an embeddings answer needs `embeddings` with {count} vectors", endpoint, response
            )
        vectors: list[list[float]] = []
        for position, item in enumerate(items):
            vector = embedding_vector(item.get("values") if isinstance(item, dict) else None)
            if vector is None:
                raise self._malformed(f"embedding {position} is malformed", endpoint, response)
            vectors.append(vector)
        # batchEmbedContents reports no token counts: the client estimates them.
        return ParsedEmbeddings(vectors=vectors, usage=None, model=endpoint.wire_model)
