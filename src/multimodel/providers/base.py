"""The provider adapter contract.

An adapter translates between multimodel's normalized types and one wire format. It does no I/O:
it builds an :class:`httpx.Request` (constructing one sends nothing), parses a body that the
driver already read, decodes stream bytes that the driver feeds it, and maps an error response
to a typed :class:`~multimodel.errors.ProviderError`. The same adapter therefore serves the sync
and the async client, and tests can drive it with plain bytes.

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
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
from pydantic import SecretStr

from ..errors import (
    InvalidRequestError,
    MalformedResponse,
    ProviderConnectionError,
    ProviderError,
    redact,
)
from ..types import ChatChunk, ChatRequest, FinishReason, Message, ToolCallDelta, Usage
from .sse import ServerSentEvent, SSEDecoder

if TYPE_CHECKING:
    from ..embeddings import ParsedEmbeddings

__all__ = [
    "MAX_BODY_BYTES",
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

MAX_BODY_BYTES = 32 * 1024 * 1024
"""Bodies larger than this are refused as malformed rather than buffered without bound."""


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
    memo: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

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


_DROPPED: set[tuple[str, str]] = set()


def drop_params(provider: str, names: Iterable[str]) -> None:
    """Warn that OpenAI parameters were not sent: one warning naming them, once per provider
    and parameter."""
    from ..errors import DroppedParameterWarning

    new = [name for name in names if (provider, name) not in _DROPPED]
    if not new:
        return
    _DROPPED.update((provider, name) for name in new)
    listed = ", ".join(map(repr, new))
    warnings.warn(
        DroppedParameterWarning(
            f"{listed} {'has' if len(new) == 1 else 'have'} no equivalent on {provider}: not "
            f"sent to {provider} deployments (extra_body={{...}} sends a provider's own fields)"
        ),
        stacklevel=2,
    )


def embedding_vector(value: Any) -> list[float] | None:
    """A JSON array of numbers as a list of floats (``None`` when it is anything else)."""
    if not isinstance(value, list) or not value:
        return None
    if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in value):
        return None
    return [float(x) for x in value]


def token_count(value: Any) -> int:
    """A token count from a provider body: a non-negative int, else 0 (``null``, strings...)."""
    return value if type(value) is int and value >= 0 else 0


NO_USAGE = Usage(estimated=True)
"""What an adapter returns when the provider sent no usage: the client replaces it with an
estimate (prompt and answer at about four characters a token), marked ``estimated``."""


@functools.lru_cache(maxsize=1024)
def usage_of(
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
    reasoning_tokens: int = 0,
) -> Usage:
    """The :class:`Usage` with these counts; equal counts share one (frozen) object.

    Validating a ``Usage`` costs about 11 k instructions, a cache hit a tenth of that, and
    answers to similar prompts report the same few counts over and over.
    """
    return Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cache_read_tokens,
        cache_write_tokens=cache_write_tokens,
        reasoning_tokens=reasoning_tokens,
        estimated=False,
    )


def request_headers(
    endpoint: Endpoint, *, stream: bool, extra: tuple[tuple[str, str], ...] = ()
) -> httpx.Headers:
    """The headers of a JSON request to ``endpoint``: content type, accept, ``extra``, the
    deployment's own headers and the key.

    Built once per endpoint and mode: normalizing headers is a large share of what httpx
    charges per request, and passing an ``httpx.Headers`` lets it copy the prepared list.
    """
    key = ("headers", stream, extra)
    headers = endpoint.memo.get(key)
    if headers is None:
        values = {
            "content-type": "application/json",
            "accept": "text/event-stream" if stream else "application/json",
            **dict(extra),
        }
        values.update(endpoint.headers)
        values.update(endpoint.auth_headers())
        headers = endpoint.memo[key] = httpx.Headers(values)
    return headers


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


@functools.cache
def _c_encoder() -> Any:
    """The C encoder's factory when it gives ``_ENCODER``'s output, else ``None`` (checked on
    first use, not at import)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    encode_str = getattr(json.encoder, "c_encode_basestring", None)
    if make is None or encode_str is None:  # pragma: no cover - a Python without _json
        return None

    def build() -> Any:
        # What JSONEncoder.iterencode builds on every call: markers (circular references),
        # default, string encoder, indent, separators, sort_keys, skipkeys, allow_nan.
        return make({}, _ENCODER.default, encode_str, None, ":", ",", False, False, True)

    probe = {"a": [1, 2.5, None, True, "é\n\u2028", float("inf")], "b": {"c": -0.0}}
    try:
        same = "".join(build()(probe, 0)) == _ENCODER.encode(probe)
    except (TypeError, ValueError):  # pragma: no cover - a different factory signature
        same = False
    return build if same else None


def json_bytes(value: Any) -> bytes:
    """``json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()``: a request body.

    Calls the C encoder ``json.dumps`` ends up in directly: ``json.dumps`` with options builds
    a ``JSONEncoder``, and ``encode`` a closure and the C encoder, on every call (26 k
    instructions for a one-message body; 8 k this way).
    """
    build = _c_encoder()
    if build is None:  # pragma: no cover
        return _ENCODER.encode(value).encode()
    if isinstance(value, dict):
        return "".join(build()(value, 0)).encode()
    return _ENCODER.encode(value).encode()  # pragma: no cover - bodies are objects


def post_request(
    endpoint: Endpoint, url: httpx.URL, headers: httpx.Headers, content: bytes
) -> httpx.Request:
    """``httpx.Request("POST", url, headers=headers, content=content)``, built in a quarter
    of the time (5 µs against 20 µs): the same method, URL, headers (``Host`` first, then
    ``headers``, then ``Content-Length``), body and byte stream.

    httpx's constructor runs the body through its stream encoder, scans the headers for
    multipart boundaries and content headers, and rebuilds the header list; here the ``Host``
    line is added to ``headers`` once per endpoint and URL host (``headers`` should be a
    prepared, reused object, as :func:`request_headers` returns).
    """
    memo = endpoint.memo
    key = ("post", id(url), id(headers))
    found = memo.get(key)
    # The entry keeps ``url`` and ``headers`` alive, so their ids are not reused while it exists.
    if found is None or found[0] is not url or found[1] is not headers:
        if "host" in headers:
            prepared = headers
        else:
            prepared = httpx.Headers([(b"Host", url.netloc), *headers.raw])
        if len(memo) > 256:  # URLs or headers built per request: keep the memo bounded
            for stale in [k for k in memo if isinstance(k, tuple) and k[0] == "post"]:
                del memo[stale]
        found = memo[key] = (url, headers, prepared)
    return _post(url, found[2], content, _direct_request_works())


def _post(url: httpx.URL, headers: httpx.Headers, content: bytes, direct: bool) -> httpx.Request:
    request = httpx.Request("POST", url, headers=headers, stream=httpx.ByteStream(content))
    length = str(len(content))
    if direct:  # what the public calls below do, without their checks (~17 k instructions)
        request.headers._list.append((b"Content-Length", b"content-length", length.encode()))
        request._content = content
    else:  # pragma: no cover - an httpx whose private layout changed
        request.headers["Content-Length"] = length
        request.read()
    return request


@functools.cache
def _direct_request_works() -> bool:
    """Whether setting httpx's private fields builds the request ``httpx.Request`` builds
    (checked on first use, not at import)."""
    try:
        url = httpx.URL("http://example.test/v1/x")
        headers = httpx.Headers({"content-type": "application/json", "x-k": "v"})
        expected = httpx.Request("POST", url, headers=headers, content=b"{}")
        prepared = httpx.Headers([(b"Host", url.netloc), *headers.raw])
        got = _post(url, prepared, b"{}", direct=True)
        return (
            got.headers.raw == expected.headers.raw
            and got.headers.get("content-length") == "2"
            and got.content == expected.content
            and isinstance(got.stream, httpx.ByteStream)
            and isinstance(expected.stream, httpx.ByteStream)
            and list(got.stream) == list(expected.stream)
        )
    except (AttributeError, TypeError, ValueError):  # pragma: no cover
        return False


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
        for event in self._sse.feed(data):
            self._events += 1
            chunk = self.on_event(event)
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
            return json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise MalformedResponse(
                f"stream event is not valid JSON: {data[:120]!r}",
                provider=self.endpoint.provider,
                deployment=self.endpoint.name,
            ) from exc


class ProviderAdapter(ABC):
    """Translate one wire format. Stateless: one instance serves every deployment and thread.

    Register a subclass with :func:`multimodel.providers.register_adapter` (or an entry point in
    the ``multimodel.providers`` group) to add a wire format.
    """

    name: ClassVar[str]

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

    def build_embedding_request(
        self, inputs: Sequence[str], endpoint: Endpoint, *, dimensions: int | None
    ) -> httpx.Request:
        """Build the HTTP request embedding ``inputs`` on ``endpoint``.

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
        """Map an error response (status >= 400, body read) to a typed error.

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
    def json_body(response: httpx.Response, endpoint: Endpoint) -> Any:
        """Decode a response body as JSON, mapping failure to :class:`MalformedResponse`."""
        content = response.content
        if len(content) > MAX_BODY_BYTES:
            raise MalformedResponse(
                f"response body of {len(content)} bytes exceeds the {MAX_BODY_BYTES} byte limit",
                provider=endpoint.provider,
                deployment=endpoint.name,
                status=response.status_code,
            )
        try:
            # DeepSeek pads queued non-streaming answers with blank lines: json.loads skips them.
            return json.loads(content)
        except (ValueError, RecursionError) as exc:
            raise MalformedResponse(
                f"response body is not valid JSON: {content[:120]!r}",
                provider=endpoint.provider,
                deployment=endpoint.name,
                status=response.status_code,
            ) from exc
