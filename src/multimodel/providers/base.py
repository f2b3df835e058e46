"""The provider adapter contract.

An adapter translates between multimodel's normalized types and one wire format. It does no I/O:
it builds an :class:`httpx.Request` (constructing one sends nothing), parses a body that the
driver already read, decodes stream bytes that the driver feeds it, and maps an error response
to a typed :class:`~multimodel.errors.ProviderError`. The same adapter therefore serves the sync
and the async client, and tests can drive it with plain bytes.

This module holds the contract: :class:`Endpoint` (what an adapter is given),
:class:`ParsedResponse` (what it returns) and :class:`ProviderAdapter`. The helpers adapters
share live in sibling modules and are re-exported here: stream decoding (``_stream``, loaded
with the first stream or when its names are asked for), request building (``_request``), usage
(``_usage``), dropped parameters (``_params``) and embeddings (``_embeddings``).

Example, the whole life of one non-streaming call (this is what the clients do)::

    adapter = get_adapter("openai")
    http_request = adapter.build_request(chat_request, endpoint, stream=False)
    http_response = httpx_client.send(http_request)          # the driver's only I/O
    if http_response.is_success:
        parsed = adapter.parse_response(http_response, endpoint)
    else:
        raise adapter.map_error(http_response, endpoint)
"""

from __future__ import annotations

import functools
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
from pydantic import SecretStr

from ..errors import InvalidRequestError, MalformedResponse, ProviderError
from ..types import ChatRequest, FinishReason, Message, Usage
from ._embeddings import embedding_vector  # noqa: F401 - importable from here, as before
from ._params import drop_params  # noqa: F401 - importable from here, as before
from ._request import json_bytes, post_request, request_headers
from ._usage import NO_USAGE, token_count, usage_of

if TYPE_CHECKING:
    from ..embeddings import EmbedTask, ParsedEmbeddings
    from ._stream import SSEStreamDecoder, StreamDecoder, chunks_from_parsed
else:  # a plain query never streams: the decoders load with the first stream
    from .._core.lazy import lazy_attributes

    __getattr__, __dir__ = lazy_attributes(
        __name__,
        dict.fromkeys(
            ("SSEStreamDecoder", "StreamDecoder", "chunks_from_parsed"),
            "multimodel.providers._stream",
        ),
        globals(),
    )

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_EMBEDDINGS_BODY_BYTES",
    "NO_USAGE",
    "Endpoint",
    "ParsedResponse",
    "ProviderAdapter",
    "SSEStreamDecoder",
    "StreamDecoder",
    "chunks_from_parsed",
    "json_bytes",
    "post_request",
    "request_headers",
    "token_count",
    "usage_of",
]

# The C scanner json.loads uses (see load_json); typeshed does not declare the attribute.
_scan: Callable[[str, int], tuple[Any, int]] = getattr(json.JSONDecoder(), "scan_once")  # noqa: B009

MAX_BODY_BYTES = 32 * 1024 * 1024
"""Bodies larger than this are refused as malformed rather than buffered without bound."""
MAX_EMBEDDINGS_BODY_BYTES = 256 * 1024 * 1024
"""The limit for an embeddings answer: OpenAI's largest batch (2,048 inputs) at 3,072
dimensions is ~130 MB as JSON numbers (~34 MB in base64), a size no chat answer reaches."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Everything an adapter needs to reach one deployment (resolved from a ``Deployment``).

    Attributes:
        name: the deployment's unique name (used in errors, traces and stats).
        model: the model group the user asks for.
        wire_model: the model id sent to the provider (Azure: the deployment name).
        provider: the provider preset name (``openai``, ``groq``, ``azure`` ...).
        base_url: URL the adapter appends its path to.
        api_key: the secret, or ``None`` for providers that need none (local Ollama).
        auth: how the key is sent: ``bearer``, ``x-api-key``, ``api-key``, ``x-goog-api-key``.
        api_version: ``anthropic-version`` or Azure's ``api-version``.
        headers: extra headers for every request.
        extra_body: merged into every JSON body (the request's own ``extra_body`` wins).
        options: adapter-specific switches from the preset (e.g. ``max_tokens_field``).
        adapter: the wire format's adapter name.
        weight, rpm, tpm, timeout, tags: routing settings copied from the deployment.
        spec: the catalog's ``ModelSpec`` for this model (prices, context window,
            capabilities, quality), when the catalog knows it.
        memo: values adapters derive from the endpoint once and reuse (prepared headers).
    """

    name: str
    model: str
    wire_model: str
    provider: str
    base_url: str
    api_key: SecretStr | None = field(default=None, repr=False)
    auth: str = "bearer"
    api_version: str | None = None
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # may hold credentials
    extra_body: tuple[tuple[str, Any], ...] = ()
    options: tuple[tuple[str, Any], ...] = ()
    adapter: str = "openai"
    weight: float = 1.0
    rpm: int | None = None
    tpm: int | None = None
    timeout: float | None = None
    tags: tuple[str, ...] = ()
    spec: Any = field(default=None, repr=False, compare=False)
    # Not an __init__ argument: dataclasses.replace() gives the copy a memo of its own, so
    # values prepared from the original's headers or key are never served for the copy.
    memo: dict[Any, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def option(self, key: str, default: Any = None) -> Any:
        """An adapter option from the provider preset or the deployment."""
        for k, v in self.options:
            if k == key:
                return v
        return default

    def auth_headers(self) -> dict[str, str]:
        """The header carrying the API key, in this endpoint's style (empty when keyless)."""
        if self.api_key is None:
            return {}
        key = self.api_key.get_secret_value()
        if self.auth == "bearer":
            return {"authorization": f"Bearer {key}"}
        return {self.auth: key}

    def url(self, path: str) -> httpx.URL:
        """Join ``base_url`` and ``path`` with exactly one slash (parsed once, then cached)."""
        return _join(self.base_url, path)


@functools.lru_cache(maxsize=1024)
def _join(base_url: str, path: str) -> httpx.URL:
    # Parsing a URL is a sizeable share of building a request; endpoints reuse a few paths.
    return httpx.URL(base_url.rstrip("/") + "/" + path.lstrip("/"))


@dataclass(slots=True)
class ParsedResponse:
    """What an adapter extracts from one complete answer; the client adds timing and routing."""

    id: str
    message: Message
    finish_reason: FinishReason | None
    raw_finish_reason: str | None
    usage: Usage
    model: str
    raw: Any = None


class ProviderAdapter(ABC):
    """Translate one wire format. Stateless: one instance serves every deployment and thread.

    Register a subclass with :func:`multimodel.providers.register_adapter` (or an entry point in
    the ``multimodel.providers`` group) to add a wire format.
    """

    name: ClassVar[str]
    openai_equivalents: ClassVar[frozenset[str] | None] = None
    """The OpenAI parameters (``ChatRequest.openai_params``) this wire format translates;
    ``None``: all, sent as they are (OpenAI's format). The others are dropped with one
    :class:`~multimodel.errors.DroppedParameterWarning`, or refused up front by a client with
    ``unsupported_params="error"``."""

    def unsupported_fields(self, request: ChatRequest, endpoint: Endpoint) -> list[str]:
        """The OpenAI parameters with a ``ChatRequest`` field of their own (``seed``,
        ``metadata``, ``parallel_tool_calls=False``) that ``request`` sets and this wire format
        cannot express on ``endpoint``: dropped with the same warning as ``openai_params``, or
        refused by ``unsupported_params="error"``. Default: none."""
        return []

    @abstractmethod
    def build_request(
        self, request: ChatRequest, endpoint: Endpoint, *, stream: bool
    ) -> httpx.Request:
        """Build the HTTP request for ``request`` on ``endpoint``.

        Raises:
            InvalidRequestError: the request uses something this provider cannot express.
        """

    @abstractmethod
    def parse_response(self, response: httpx.Response, endpoint: Endpoint) -> ParsedResponse:
        """Parse a successful, fully read response.

        Raises:
            MalformedResponse: the body is not what the wire format promises.
        """

    @abstractmethod
    def stream_decoder(
        self, endpoint: Endpoint, *, content_type: str | None = None
    ) -> StreamDecoder:
        """A fresh decoder for one streamed response.

        ``content_type`` is the response's ``content-type`` header when the caller knows it
        (the body may be one JSON answer rather than an event stream; see
        :class:`SSEStreamDecoder`)."""

    embedding_limits: ClassVar[tuple[int, int | None] | None] = None
    """How many inputs, and about how many tokens, one embeddings request may carry
    (``None``: this wire format has no embeddings). A deployment's ``embedding_batch_size``
    option lowers the input count."""

    embedding_task_types: ClassVar[bool] = False
    """Whether embeddings requests carry a task type and title (Gemini's ``taskType``)."""

    def build_embedding_request(
        self,
        inputs: Sequence[str],
        endpoint: Endpoint,
        *,
        dimensions: int | None,
        task: EmbedTask | None = None,
    ) -> httpx.Request:
        """Build the HTTP request embedding ``inputs`` on ``endpoint`` (``task``: a task type,
        and titles lined up with ``inputs``; dropped with a warning without
        :attr:`embedding_task_types`).

        Raises:
            InvalidRequestError: this wire format offers no embeddings.
        """
        raise InvalidRequestError(
            f"deployment {endpoint.name!r} ({self.name} wire format) offers no embeddings",
            field="model",
        )

    def parse_embedding_response(
        self, response: httpx.Response, endpoint: Endpoint, count: int
    ) -> ParsedEmbeddings:
        """Parse a successful embeddings answer for ``count`` inputs (vectors in input order).

        Raises:
            MalformedResponse: the body is not what the wire format promises.
        """
        raise self._malformed("this wire format offers no embeddings", endpoint, response)

    def map_error(self, response: httpx.Response, endpoint: Endpoint) -> ProviderError:
        """Map an error response (status >= 400, or a redirect: >= 300; body read) to a typed
        error.

        The default decodes a JSON object and hands it to :meth:`_error_from_body`; any other
        body becomes a plain-text message (redacted, cut to 500 characters).
        """
        from ._errors import error_from_status

        try:
            body: Any = json.loads(response.content)
        except (ValueError, RecursionError):
            body = None
        if isinstance(body, dict):
            return self._error_from_body(body, response.status_code, endpoint, response.headers)
        text = response.content[:500].decode("utf-8", "replace").strip()
        return error_from_status(
            response.status_code, text, endpoint, headers=response.headers, body=text
        )

    def _error_from_body(
        self, body: dict[str, Any], status: int, endpoint: Endpoint, headers: Any = None
    ) -> ProviderError:
        """Map a decoded error object; adapters override this with their body shape."""
        from ._errors import error_from_status

        return error_from_status(status, str(body)[:500], endpoint, headers=headers, body=body)

    @staticmethod
    def _malformed(what: str, endpoint: Endpoint, response: httpx.Response) -> MalformedResponse:
        """A :class:`MalformedResponse` for ``response`` with the request id it carries."""
        headers = response.headers
        return MalformedResponse(
            what,
            provider=endpoint.provider,
            deployment=endpoint.name,
            status=response.status_code,
            request_id=headers.get("x-request-id") or headers.get("request-id"),
        )

    # -- helpers shared by adapters ------------------------------------------------------------

    @staticmethod
    def json_body(response: httpx.Response, endpoint: Endpoint, limit: int = 0) -> Any:
        """Decode a response body as JSON, mapping failure to :class:`MalformedResponse`
        (a body over ``limit`` bytes, default :data:`MAX_BODY_BYTES`, included)."""
        content = response.content
        limit = limit or MAX_BODY_BYTES
        if len(content) > limit:
            raise MalformedResponse(
                f"response body of {len(content)} bytes exceeds the {limit} byte limit",
                provider=endpoint.provider,
                deployment=endpoint.name,
                status=response.status_code,
            )
        try:
            if content[:1] == b"{" and content[1:2] != b"\x00":
                # UTF-8 (json.loads' encoding detection says so for a body that starts with
                # "{" and no NUL), decoded as json.loads decodes it, and json's C scanner
                # straight away: json.loads adds three Python calls and two whitespace
                # matches. Anything but one bare object (trailing blanks or bytes, bad JSON)
                # goes through json.loads, which accepts or rejects it exactly as before.
                text = content.decode("utf-8", "surrogatepass")
                try:
                    value, end = _scan(text, 0)
                except StopIteration:  # pragma: no cover - "{" always starts a value
                    return json.loads(content)
                return value if end == len(text) else json.loads(content)
            # DeepSeek pads queued non-streaming answers with blank lines: json.loads skips them.
            return json.loads(content)
        except (ValueError, RecursionError) as exc:
            raise MalformedResponse(
                f"response body is not valid JSON: {content[:120]!r}",
                provider=endpoint.provider,
                deployment=endpoint.name,
                status=response.status_code,
            ) from exc
