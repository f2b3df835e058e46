"""Provider errors: :class:`ProviderError` (what failed, where, with the redacted error
response) and one subclass per kind of failure (HTTP status, timeout, connection, bad body,
interrupted stream), each saying whether a retry may succeed.

Part of :mod:`multimodel.errors`, which re-exports every public name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ._local import MultimodelError
from ._redact import _redact_body, _redact_optional, redact

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "ContentFiltered",
    "ContextLengthExceeded",
    "ErrorResponse",
    "MalformedResponse",
    "NotFoundError",
    "Overloaded",
    "PermissionDeniedError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderTimeout",
    "QuotaExhausted",
    "RateLimited",
    "ServerError",
    "StreamInterrupted",
]


class ProviderError(MultimodelError):
    """A provider (or the way to it) failed.

    Attributes:
        provider: provider name (``openai``, ``anthropic`` ...).
        deployment: the deployment's name.
        status: HTTP status, or ``None`` when no response arrived.
        request_id: the provider's request id, when it sent one.
        code: the provider's error type or code (``rate_limit_error``, ``insufficient_quota``).
        body: the decoded error body (redacted), when there was one.
        headers: the error response's headers (lower-case names; redacted), when one arrived.
        retryable: whether retrying (here or elsewhere) may succeed.

    As in the OpenAI SDK, ``status_code`` is ``status`` and ``response`` has the response's
    ``status_code``, ``headers`` and ``json()`` (``None`` when no response arrived).

    ``secrets`` are values to redact wherever they occur (see :meth:`redact_secrets`); anything
    that looks like an API key is redacted in any case.
    """

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        deployment: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
        code: str | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        secrets: Iterable[str] = (),
    ) -> None:
        secrets = tuple(secrets)
        self.headers: dict[str, str] | None = (
            None
            if headers is None
            else {str(k).lower(): redact(str(v), secrets) for k, v in headers.items()}
        )
        self.provider = provider
        self.deployment = deployment
        self.status = status
        self.request_id = _redact_optional(request_id, secrets)
        self.code = _redact_optional(code, secrets)
        self.body = _redact_body(body, secrets)
        self.trace: Any = None  # the routing trace, attached by the dispatch plan
        self.message = redact(message, secrets)
        super().__init__(self.message)

    def redact_secrets(self, secrets: Iterable[str]) -> None:
        """Replace each of ``secrets`` with ``[REDACTED]`` in everything this error carries.

        The message (and so ``str`` and ``repr``), the body at any depth, the code and the
        request id; then the same for the :class:`ProviderError` it was raised from, if any.
        The clients call it with the failed deployment's secrets before the error is recorded
        anywhere, so even an error built by a custom adapter cannot echo that deployment's key.
        """
        secrets = tuple(secrets)
        if not secrets:
            return
        error: BaseException | None = self
        for _ in range(8):  # the chain of provider errors this one wraps
            if not isinstance(error, ProviderError):
                break
            error.message = redact(error.message, secrets)
            error.args = tuple(
                redact(arg, secrets) if isinstance(arg, str) else arg for arg in error.args
            )
            error.body = _redact_body(error.body, secrets)
            error.code = _redact_optional(error.code, secrets)
            error.request_id = _redact_optional(error.request_id, secrets)
            if error.headers:
                error.headers = {k: redact(v, secrets) for k, v in error.headers.items()}
            error = error.__cause__

    @property
    def status_code(self) -> int | None:
        """The HTTP status (the OpenAI SDK's name for :attr:`status`)."""
        return self.status

    @property
    def response(self) -> ErrorResponse | None:
        """The error response, as far as it is kept: ``status_code``, ``headers``, ``json()``
        (``None`` when no response arrived: a timeout, a connection error)."""
        if self.status is None:
            return None
        return ErrorResponse(self.status, self.headers or {}, self.body, self.request_id)

    def __str__(self) -> str:
        where = "/".join(p for p in (self.provider, self.deployment) if p)
        status = f" HTTP {self.status}" if self.status is not None else ""
        rid = f" (request id {self.request_id})" if self.request_id else ""
        return f"[{where}{status}] {self.message}{rid}" if where or status else self.message


class ErrorResponse:
    """What a :class:`ProviderError` keeps of the error response (``error.response``), with
    the attribute names of the ``httpx.Response`` the OpenAI SDK's errors carry."""

    def __init__(
        self, status_code: int, headers: Mapping[str, str], body: Any, request_id: str | None
    ) -> None:
        import httpx

        self.status_code = status_code
        self.headers = httpx.Headers(dict(headers))
        self.request_id = request_id
        self._body = body

    def json(self) -> Any:
        """The decoded (redacted) error body."""
        return self._body

    @property
    def text(self) -> str:
        """The error body as text."""
        import json

        body = self._body
        return body if isinstance(body, str) else json.dumps(body)

    def __repr__(self) -> str:
        return f"<ErrorResponse [{self.status_code}]>"


class BadRequestError(ProviderError):
    """The provider rejected the request (400 / 422). Not retryable."""


class ContextLengthExceeded(BadRequestError):
    """The prompt plus ``max_tokens`` does not fit the model's context window."""


class ContentFiltered(BadRequestError):
    """The provider's safety filter blocked the prompt or the answer."""


class AuthenticationError(ProviderError):
    """The API key was rejected (401, or Gemini's 400 ``API_KEY_INVALID``)."""


class PermissionDeniedError(ProviderError):
    """The key may not use this model or region (403)."""


class NotFoundError(ProviderError):
    """The model or endpoint does not exist (404)."""


class ConflictError(ProviderError):
    """A transient conflict (409); retryable."""

    retryable = True


class RateLimited(ProviderError):
    """Too many requests (429).

    Attributes:
        retry_after: seconds the provider asked us to wait, when it said.
    """

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class QuotaExhausted(ProviderError):
    """The account's quota or spend limit is used up (OpenAI ``insufficient_quota``). Never retried."""


class ServerError(ProviderError):
    """The provider failed (5xx); retryable."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class Overloaded(ServerError):
    """The provider is overloaded (529, 503, ``overloaded_error``); a load signal, retryable.

    A :class:`ServerError`, as the OpenAI SDK's ``InternalServerError`` is every status
    >= 500, so ``except InternalServerError`` ports; the router still treats it as a load
    signal (held for its Retry-After, no breaker failure), not as a failing deployment.
    """


class ProviderConnectionError(ProviderError):
    """No (complete) HTTP answer: the connection could not be made or was dropped, or (the
    subclass :class:`ProviderTimeout`) the time ran out; retryable.

    The OpenAI SDK's ``APIConnectionError`` likewise covers its ``APITimeoutError``.
    """

    retryable = True


class ProviderTimeout(ProviderConnectionError):
    """No (complete) answer within the timeout; retryable."""


class MalformedResponse(ProviderError):
    """The provider sent a body we cannot parse (bad JSON, wrong types, too large)."""

    retryable = True


class StreamInterrupted(ProviderError):
    """A stream failed after content had reached the caller.

    Attributes:
        partial_text: the text delivered before the failure.
    """

    retryable = False

    def __init__(self, message: str, *, partial_text: str = "", **kw: Any) -> None:
        super().__init__(message, **kw)
        self.partial_text = partial_text
