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
        ├── ServerError                       5xx (retryable)
        │   └── Overloaded                    529, 503, ``overloaded_error``: a load signal
        ├── ProviderConnectionError           no HTTP answer: could not connect, connection
        │   │                                 dropped (retryable)
        │   └── ProviderTimeout               no answer in time (retryable)
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

from ._attempts import AllAttemptsFailed
from ._local import (
    BudgetExceeded,
    ClientClosed,
    ConfigError,
    DecryptionError,
    DroppedParameterWarning,
    InvalidRequestError,
    MissingAPIKeyError,
    MultimodelError,
    NoDeploymentAvailable,
    PolicyViolation,
    PoolExhausted,
    PricingWarning,
    SharedStateUnavailable,
    StructuredOutputError,
    UnknownModelError,
    UnknownResponseError,
)
from ._provider import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ContentFiltered,
    ContextLengthExceeded,
    ErrorResponse,
    MalformedResponse,
    NotFoundError,
    Overloaded,
    PermissionDeniedError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeout,
    QuotaExhausted,
    RateLimited,
    ServerError,
    StreamInterrupted,
)
from ._redact import redact

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
"""The OpenAI SDK's ``APIConnectionError``: :class:`ProviderConnectionError`; as in the SDK,
a timeout (:class:`ProviderTimeout`, ``APITimeoutError``) is a subclass of it."""
APITimeoutError = ProviderTimeout
"""The OpenAI SDK's ``APITimeoutError``: :class:`ProviderTimeout`."""
RateLimitError = RateLimited
"""The OpenAI SDK's ``RateLimitError``: :class:`RateLimited` (billing 429s are
:class:`QuotaExhausted`)."""
InternalServerError = ServerError
"""The OpenAI SDK's ``InternalServerError``: :class:`ServerError`, every 5xx (503/529 are its
subclass :class:`Overloaded`)."""
UnprocessableEntityError = BadRequestError
"""The OpenAI SDK's ``UnprocessableEntityError`` (422): :class:`BadRequestError`."""
APIResponseValidationError = MalformedResponse
"""The OpenAI SDK's ``APIResponseValidationError``: :class:`MalformedResponse`."""


# Every class reports this module as its home, as when the tree was one file: tracebacks print
# ``multimodel.errors.RateLimited``, pickles and the API docs name the public path, and the
# private modules stay free to move.
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) and _obj.__module__.startswith(__name__ + "."):
        _obj.__module__ = __name__
del _name, _obj
