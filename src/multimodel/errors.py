"""Every error multimodel raises.

The tree::

    MultimodelError
    ├── ConfigError (ValueError)              bad client or deployment configuration
    │   └── MissingAPIKeyError                names the environment variable to set
    ├── InvalidRequestError (ValueError)      a request we refuse before sending; names the field
    ├── UnknownModelError (LookupError)       no deployment serves the model; lists close matches
    ├── NoDeploymentAvailable                 every candidate was skipped (cooldown, limits, ...)
    ├── AllAttemptsFailed                     every attempt failed; carries the attempts
    │                                         (when all failed alike, it is also that error
    │                                         type: ``except RateLimited`` catches it)
    ├── BudgetExceeded                        a hard spend limit is reached
    ├── PolicyViolation                       the caller's policy forbids the request
    ├── DecryptionError                       a stored record failed authentication, or its
    │                                         key is unknown (never returns garbage)
    ├── PoolExhausted                         no free connection in the client's own pool in
    │                                         time: local, never blamed on a provider
    ├── ClientClosed (RuntimeError)           the client was closed before the call
    ├── UnknownResponseError (LookupError)    feedback names a response this client did not
    │                                         serve and the ledger does not know
    ├── StructuredOutputError                 the answer does not fit the requested schema;
    │                                         carries the raw text and the validation errors
    └── ProviderError                         a provider failed; carries provider, deployment,
        │                                     status, request id
        ├── BadRequestError                   400 / 422 (not retryable)
        │   ├── ContextLengthExceeded
        │   └── ContentFiltered
        ├── AuthenticationError               401 (and Gemini's API_KEY_INVALID)
        ├── PermissionDeniedError             403
        ├── NotFoundError                     404
        ├── ConflictError                     409 (retryable)
        ├── RateLimited                       429 (retryable; ``retry_after`` in seconds)
        ├── QuotaExhausted                    billing / spend cap 429 (never retried)
        ├── Overloaded                        529, 503, ``overloaded_error`` (retryable)
        ├── ServerError                       other 5xx (retryable)
        ├── ProviderTimeout                   no answer in time (retryable)
        ├── ProviderConnectionError           could not connect / connection dropped (retryable)
        ├── MalformedResponse                 a body we cannot parse (retryable)
        └── StreamInterrupted                 a stream failed after content reached the caller;
                                              carries the partial text

Every :class:`ProviderError` is raised ``from`` the underlying exception when there is one, and
never carries an API key: its message, body (nested dicts and lists included), code and request
id are redacted of anything that looks like a key (``sk-...``, ``AIza...``, ``Bearer ...``) and,
by value, of the deployment's own secrets (its API key and credential headers, whatever they
look like: a Groq ``gsk_...`` key, a plain token) before they reach a message, a log, a span,
the ledger or the cache.

For code ported from the OpenAI SDK, the SDK's exception names are aliases here
(``RateLimitError`` is :class:`RateLimited`, ``APITimeoutError`` is :class:`ProviderTimeout`,
...; the table is in ``docs/migration/openai-sdk.md``), and every :class:`ProviderError` has
the SDK's ``status_code``, ``response`` (``.status_code``, ``.headers``, ``.json()``),
``request_id`` and ``body``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ._core.suggest import close_matches

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AllAttemptsFailed",
    "AuthenticationError",
    "BadRequestError",
    "BudgetExceeded",
    "ClientClosed",
    "ConfigError",
    "ConflictError",
    "ContentFiltered",
    "ContextLengthExceeded",
    "DecryptionError",
    "DroppedParameterWarning",
    "ErrorResponse",
    "InternalServerError",
    "InvalidRequestError",
    "MalformedResponse",
    "MissingAPIKeyError",
    "MultimodelError",
    "NoDeploymentAvailable",
    "NotFoundError",
    "OpenAIError",
    "Overloaded",
    "PermissionDeniedError",
    "PolicyViolation",
    "PoolExhausted",
    "PricingWarning",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderTimeout",
    "QuotaExhausted",
    "RateLimitError",
    "RateLimited",
    "ServerError",
    "SharedStateUnavailable",
    "StreamInterrupted",
    "StructuredOutputError",
    "UnknownModelError",
    "UnknownResponseError",
    "UnprocessableEntityError",
    "redact",
]


class MultimodelError(Exception):
    """Base class of every error raised by multimodel.

    Attributes:
        trace: the routing trace of the call that failed, when routing got that far.
    """

    trace: Any = None


class ConfigError(MultimodelError, ValueError):
    """The client, a deployment or a config file is invalid. The message says what to change."""


class MissingAPIKeyError(ConfigError):
    """A deployment has no API key.

    Attributes:
        env_var: the environment variable that would provide the key.
    """

    def __init__(self, deployment: str, provider: str, env_var: str | None) -> None:
        self.deployment = deployment
        self.provider = provider
        self.env_var = env_var
        hint = f"set the {env_var} environment variable or " if env_var else ""
        super().__init__(
            f"deployment {deployment!r} ({provider}) has no API key: {hint}pass api_key=... "
            "to its Deployment"
        )


class InvalidRequestError(MultimodelError, ValueError):
    """A request was refused before anything was sent.

    Attributes:
        field: the offending field (dotted path), when one is to blame.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        super().__init__(message)


class UnknownModelError(MultimodelError, LookupError):
    """No configured deployment serves the requested model.

    Attributes:
        model: the name asked for.
        suggestions: configured model names close to it.
    """

    def __init__(self, model: str, known: Iterable[str]) -> None:
        known = sorted(set(known))
        self.model = model
        self.suggestions = close_matches(model, known, n=3, cutoff=0.5)
        hint = (
            f"; did you mean {', '.join(map(repr, self.suggestions))}?"
            if self.suggestions
            else (f"; configured models: {', '.join(known)}" if known else "")
        )
        super().__init__(f"no deployment serves model {model!r}{hint}")


class NoDeploymentAvailable(MultimodelError):
    """Every candidate deployment was excluded before sending.

    Attributes:
        model: the model group.
        exclusions: ``{deployment name: reason}`` for each candidate.
        retry_at: the earliest monotonic time a candidate may become available, if known.
    """

    def __init__(
        self,
        model: str,
        exclusions: dict[str, str],
        *,
        retry_at: float | None = None,
        trace: Any = None,
    ) -> None:
        self.model = model
        self.exclusions = dict(exclusions)
        self.retry_at = retry_at
        self.trace = trace
        why = "; ".join(f"{name}: {reason}" for name, reason in exclusions.items()) or "none"
        super().__init__(f"no deployment of {model!r} is available ({why})")


class AllAttemptsFailed(MultimodelError):
    """Every attempt failed. ``errors`` holds each attempt's error in order; the last is chained.

    When every attempt failed with the same :class:`ProviderError` type (three 429s), the
    error raised is also an instance of that type, so ``except RateLimited`` (the OpenAI SDK's
    ``except RateLimitError``) catches it after the retries as it would a single failure; its
    ``status``, ``status_code``, ``response``, ``request_id``, ``body`` and ``retry_after``
    are the last attempt's. Mixed failures are a plain ``AllAttemptsFailed``. Either way it is
    never ``retryable``: the retries are spent.
    """

    retryable = False

    def __new__(
        cls, model: str, errors: Sequence[BaseException] = (), *a: Any, **kw: Any
    ) -> AllAttemptsFailed:
        kinds = {type(e) for e in errors}
        made = cls
        if cls is AllAttemptsFailed and len(kinds) == 1:
            (kind,) = kinds
            if issubclass(kind, ProviderError) and not issubclass(kind, AllAttemptsFailed):
                made = _alike_class(kind)
        return super().__new__(made)

    def __init__(self, model: str, errors: Sequence[BaseException], *, trace: Any = None) -> None:
        self.model = model
        self.errors = list(errors)
        parts = "; ".join(_short(e) for e in self.errors[-5:])
        message = f"all {len(self.errors)} attempt(s) for {model!r} failed: {parts}"
        if isinstance(self, ProviderError):
            last = self.errors[-1]
            assert isinstance(last, ProviderError)
            ProviderError.__init__(self, message)
            for name in _COPIED:
                if hasattr(last, name):
                    setattr(self, name, getattr(last, name))
            self.message = message
        else:
            super().__init__(message)
        self.trace = trace

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __reduce__(self) -> Any:
        return (AllAttemptsFailed, (self.model, self.errors), {"trace": self.trace})

    @property
    def last(self) -> BaseException | None:
        """The last attempt's error."""
        return self.errors[-1] if self.errors else None


_COPIED = (
    "provider",
    "deployment",
    "status",
    "request_id",
    "code",
    "body",
    "headers",
    "retry_after",
    "partial_text",
)


_ALIKE: dict[type[ProviderError], type[AllAttemptsFailed]] = {}


def _alike_class(kind: type[ProviderError]) -> type[AllAttemptsFailed]:
    """``AllAttemptsFailed`` that is also a ``kind`` (one class per kind, made on first use)."""
    made = _ALIKE.get(kind)
    if made is None:
        made = type(
            f"AllAttemptsFailed[{kind.__name__}]",
            (AllAttemptsFailed, kind),
            {"__module__": __name__, "__doc__": AllAttemptsFailed.__doc__},
        )
        _ALIKE[kind] = made
    return made


class BudgetExceeded(MultimodelError):
    """A hard spend limit covers every candidate; nothing was sent."""


class PolicyViolation(MultimodelError):
    """The caller's policy forbids this request; nothing was sent."""


class DecryptionError(MultimodelError):
    """A record could not be decrypted: altered, malformed, bound to other associated data,
    sealed under another key, or its key id is unknown. No plaintext is ever returned."""


class PoolExhausted(MultimodelError):
    """No connection of the client's own pool came free within the attempt's time limit.

    The limit is local (``max_connections`` of the client's pool, shared by every deployment),
    so this never counts against a deployment: no failure is recorded, no breaker opens, no
    cooldown starts, and the call is not retried elsewhere. Too many requests in flight, or
    streams left open (use ``with client.stream(...)``), exhaust it.
    """


class SharedStateUnavailable(MultimodelError):
    """The shared state (Redis) did not answer within its ``op_timeout`` and the client was
    built with ``RedisState(..., on_unavailable="fail")``; nothing was sent.

    .. versionadded:: 0.2
    """


class ClientClosed(MultimodelError, RuntimeError):
    """The client was closed; build a new one (or call before ``close()``)."""


class UnknownResponseError(MultimodelError, LookupError):
    """Feedback named a response id or request id that this client does not remember and its
    ledger (if any) has no row for; ``key`` is the id given.

    .. versionadded:: 0.2
    """

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class StructuredOutputError(MultimodelError):
    """The model's answer does not fit the requested ``response_format`` (not JSON, or JSON
    that fails validation), after the structured-output retries, if any.

    Attributes:
        raw_text: the answer's text as the model produced it.
        errors: the validation errors: pydantic's ``errors()`` list for a model, or
            ``{"loc", "msg"}`` dicts for a JSON-schema dict.
        response: the :class:`~multimodel.types.ChatResponse` that failed (usage, cost and
            deployment included), when there is one.
    """

    def __init__(
        self,
        message: str,
        *,
        raw_text: str = "",
        errors: Sequence[Any] = (),
        response: Any = None,
    ) -> None:
        super().__init__(message)
        self.raw_text = raw_text
        self.errors = list(errors)
        self.response = response


class DroppedParameterWarning(UserWarning):
    """An OpenAI parameter (``frequency_penalty``, ``logprobs`` ...) has no equivalent on the
    provider that serves the call, so it was not sent there (warned once per provider and
    parameter). ``extra_body`` sends a provider's own fields."""


class PricingWarning(UserWarning):
    """A model's price is unknown, so its cost is reported as ``None`` (warned once per model)."""


# --- provider errors -------------------------------------------------------------------------


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


class Overloaded(ProviderError):
    """The provider is overloaded (529, 503, ``overloaded_error``); a load signal, retryable."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServerError(ProviderError):
    """The provider failed (5xx); retryable."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ProviderTimeout(ProviderError):
    """No (complete) answer within the timeout; retryable."""

    retryable = True


class ProviderConnectionError(ProviderError):
    """The connection could not be made or was dropped; retryable."""

    retryable = True


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


# --- the OpenAI SDK's names -------------------------------------------------------------------
# So that ``except openai.RateLimitError`` ports as ``except errors.RateLimitError``. Where our
# tree is finer or coarser than the SDK's, the migration guide's table says so.

OpenAIError = MultimodelError
"""The OpenAI SDK's base error: :class:`MultimodelError`."""
APIError = ProviderError
"""The OpenAI SDK's ``APIError``: :class:`ProviderError`."""
APIStatusError = ProviderError
"""The OpenAI SDK's ``APIStatusError``: :class:`ProviderError` (``status_code`` is ``None``
for errors without a response, which the SDK raises as ``APIConnectionError``)."""
APIConnectionError = ProviderConnectionError
"""The OpenAI SDK's ``APIConnectionError``: :class:`ProviderConnectionError` (a timeout is
:class:`ProviderTimeout`, not a subclass of it)."""
APITimeoutError = ProviderTimeout
"""The OpenAI SDK's ``APITimeoutError``: :class:`ProviderTimeout`."""
RateLimitError = RateLimited
"""The OpenAI SDK's ``RateLimitError``: :class:`RateLimited` (billing 429s are
:class:`QuotaExhausted`)."""
InternalServerError = ServerError
"""The OpenAI SDK's ``InternalServerError``: :class:`ServerError` (503/529 are
:class:`Overloaded`)."""
UnprocessableEntityError = BadRequestError
"""The OpenAI SDK's ``UnprocessableEntityError`` (422): :class:`BadRequestError`."""
APIResponseValidationError = MalformedResponse
"""The OpenAI SDK's ``APIResponseValidationError``: :class:`MalformedResponse`."""


# --- helpers ---------------------------------------------------------------------------------

# Bodies sometimes echo request headers or keys back ("Incorrect API key provided: sk-abc...").
_SECRET_PATTERNS = re.compile(
    r"(?i)("
    r"\b(?:sk|pk|rk)-[A-Za-z0-9_\-]{6,}"  # OpenAI / Anthropic style keys
    r"|AIza[0-9A-Za-z_\-]{10,}"  # Google API keys
    r"|(?:bearer)\s+[A-Za-z0-9._\-]{8,}"
    r"|(?:x-api-key|api-key|x-goog-api-key|authorization)[\"']?\s*[:=]\s*[\"']?"
    r"(?:bearer\s+)?[^\s\"',}]+"
    r")"
)


_MIN_SECRET_CHARS = 4
"""Shorter secrets are not redacted by value (they would blank out ordinary words)."""


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace anything that looks like an API key, and each of ``secrets`` wherever it occurs
    (literally: a secret may hold any character), with ``[REDACTED]``.

    Give longer secrets first when one may contain another.
    """
    for secret in secrets:
        if len(secret) >= _MIN_SECRET_CHARS and secret in text:
            text = text.replace(secret, "[REDACTED]")
    return _SECRET_PATTERNS.sub("[REDACTED]", text)


def _redact_optional(text: str | None, secrets: tuple[str, ...]) -> str | None:
    return redact(text, secrets) if isinstance(text, str) else text


def _redact_body(body: Any, secrets: tuple[str, ...] = (), depth: int = 0) -> Any:
    """A copy of a decoded error body with every string (keys too) redacted: bodies can echo
    keys and request headers, at any depth. Beyond 20 levels the rest is dropped."""
    if isinstance(body, str):
        return redact(body, secrets)
    if depth > 20:
        return None
    if isinstance(body, dict):
        return {
            (redact(k, secrets) if isinstance(k, str) else k): _redact_body(v, secrets, depth + 1)
            for k, v in body.items()
        }
    if isinstance(body, list | tuple):
        return [_redact_body(v, secrets, depth + 1) for v in body]
    return body


def _short(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text[:200]}"
