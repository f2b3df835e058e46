"""Status code and body to typed error, shared by every adapter.

Adapters extract ``(message, code)`` from their own error body shape and call
:func:`error_from_status`; the status-to-class table, the Retry-After parsing, the detection
of context-length, content-filter and quota errors, and the redaction of the deployment's own
secrets (:func:`endpoint_secrets`) live here once.
"""

from __future__ import annotations

import datetime
import email.utils
import json
import math
import re
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, quote_plus

from ..errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ContentFiltered,
    ContextLengthExceeded,
    NotFoundError,
    Overloaded,
    PermissionDeniedError,
    ProviderError,
    ProviderTimeout,
    QuotaExhausted,
    RateLimited,
    ServerError,
    redact,
)
from ..errors._redact import _MIN_SECRET_CHARS
from .base import Endpoint

__all__ = ["endpoint_secrets", "error_from_status", "parse_retry_after"]

MAX_RETRY_AFTER = 3600.0  # a hint beyond an hour is a daily quota, not a back-off

_CONTEXT_RE = re.compile(
    r"context[ _-]?length|context window|maximum context|too many tokens|prompt is too long"
    r"|input is too long|exceeds the (?:maximum|context)|reduce the length",
    re.IGNORECASE,
)
_CONTEXT_CODES = {
    "context_length_exceeded",
    "string_above_max_length",
    "model_context_window_exceeded",
}
_FILTER_CODES = {"content_filter", "content_policy_violation", "safety", "prohibited_content"}
_QUOTA_CODES = {
    "insufficient_quota",
    "billing_error",
    "credit_balance_exhausted",
    "enforced_spend_limit_reached",
    "billing_hard_limit_reached",
}
_OVERLOAD_CODES = {
    "overloaded_error",
    "server_is_overloaded",
    "service_unavailable_error",
    "slow_down",
}


# Extra headers whose values are credentials (a gateway key, a second bearer token, a cookie).
_CREDENTIAL_HEADER = re.compile(
    r"auth|key|token|secret|passw|cookie|credential|signature|session", re.IGNORECASE
)
_AUTH_SCHEMES = ("bearer ", "basic ", "token ", "key ")
_SECRETS_MEMO = "multimodel.secrets"  # the key of the endpoint's memo entry


def endpoint_secrets(endpoint: Endpoint) -> tuple[str, ...]:
    """The values to redact from whatever ``endpoint``'s provider sends back, longest first.

    Its API key and the values of its credential-like extra headers (``authorization``,
    ``x-portkey-api-key``, ``cookie`` ...; the token alone too, after ``Bearer``), each also as
    it appears escaped inside JSON text and percent-encoded in a URL. Computed once per
    endpoint (kept in its ``memo``): the secrets are per deployment, never process-wide.
    """
    found: tuple[str, ...] | None = endpoint.memo.get(_SECRETS_MEMO)
    if found is not None:
        return found
    values: list[str] = []
    if endpoint.api_key is not None:
        values.append(endpoint.api_key.get_secret_value())
    for name, value in endpoint.headers:
        if _CREDENTIAL_HEADER.search(name):
            values.append(value)
            if value.lower().startswith(_AUTH_SCHEMES):
                values.append(value.split(" ", 1)[1])
    forms: set[str] = set()
    for value in values:
        value = value.strip()
        if len(value) < _MIN_SECRET_CHARS:
            continue
        forms.add(value)
        forms.add(json.dumps(value)[1:-1])
        forms.add(json.dumps(value, ensure_ascii=False)[1:-1])
        forms.add(quote(value, safe=""))
        forms.add(quote_plus(value))
    found = tuple(sorted(forms, key=len, reverse=True))
    endpoint.memo[_SECRETS_MEMO] = found
    return found


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait, from ``retry-after-ms``, then ``retry-after`` (seconds or HTTP date).

    Returns ``None`` when no usable hint is present; values are clamped to ``[0, 3600]``.
    """
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            seconds = _clamp(float(raw_ms) / 1000.0)
        except ValueError:
            seconds = None
        if seconds is not None:  # an unusable value (NaN, garbage) falls back to retry-after
            return seconds
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return _clamp(float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        # asctime dates and "-0000" carry no zone; HTTP dates are always UTC (RFC 9110 §5.6.7).
        when = when.replace(tzinfo=datetime.timezone.utc)
    current = time.time() if now is None else now
    return _clamp(when.timestamp() - current)


def _clamp(seconds: float) -> float | None:
    if math.isnan(seconds):
        return None
    return max(0.0, min(seconds, MAX_RETRY_AFTER))


def error_from_status(
    status: int,
    message: str,
    endpoint: Endpoint,
    *,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
    body: Any = None,
    retry_after: float | None = None,
    request_id: str | None = None,
) -> ProviderError:
    """Build the typed error for an HTTP error (or an error event inside a 200 stream).

    ``code`` is the provider's error type or code; it refines the status (a 429 whose code is
    ``insufficient_quota`` is :class:`QuotaExhausted`, an ``overloaded_error`` event is
    :class:`Overloaded` whatever the status).
    """
    headers = headers or {}
    if retry_after is None:
        retry_after = parse_retry_after(headers)
    if request_id is None:
        request_id = headers.get("x-request-id") or headers.get("request-id")
    # Bodies and headers may echo the key in use; generic patterns miss key shapes such as
    # Groq's gsk_ or a plain token, so the deployment's own secrets are redacted by value.
    secrets = endpoint_secrets(endpoint)
    kw: dict[str, Any] = {
        "provider": endpoint.provider,
        "deployment": endpoint.name,
        "status": status,
        "request_id": request_id,
        "code": code,
        "body": body,
        "headers": headers or None,
        "secrets": secrets,
    }
    message = redact(message or f"HTTP {status}", secrets)
    lowered = (code or "").lower()
    if lowered in _QUOTA_CODES or (status == 402):
        return QuotaExhausted(message, **kw)
    if lowered in _OVERLOAD_CODES or status == 529:
        return Overloaded(message, retry_after=retry_after, **kw)
    if lowered in _CONTEXT_CODES or (
        status in (400, 413, 422)
        and lowered != "request_too_large"  # a body-size limit: a bigger model would not help
        and _CONTEXT_RE.search(message)
    ):
        return ContextLengthExceeded(message, **kw)
    if lowered in _FILTER_CODES:
        return ContentFiltered(message, **kw)
    if status == 429 or lowered in {
        "rate_limit_error",
        "rate_limit_exceeded",
        "resource_exhausted",
    }:
        return RateLimited(message, retry_after=retry_after, **kw)
    if status == 401:
        return AuthenticationError(message, **kw)
    if status == 403:
        return PermissionDeniedError(message, **kw)
    if status == 404:
        return NotFoundError(message, **kw)
    if status == 409:
        return ConflictError(message, **kw)
    if status == 408:
        return ProviderTimeout(message, **kw)
    if status == 503:
        return Overloaded(message, retry_after=retry_after, **kw)
    if 300 <= status < 400:
        # A POST is not replayed at another address (httpx would turn a 301/302 into a GET):
        # the deployment's address is wrong, typically http:// for an https:// API.
        location = headers.get("location")
        where = f" to {redact(location, secrets)}" if location else ""
        return NotFoundError(
            f"the server redirected the request{where}; multimodel does not "
            "follow redirects: set the deployment's base_url to the API's own address",
            **kw,
        )
    if status >= 500:
        return ServerError(message, retry_after=retry_after, **kw)
    if 400 <= status < 500:
        return BadRequestError(message, **kw)
    # An error event inside a 200 stream with a code we do not know: treat as a server fault.
    return ServerError(message, retry_after=retry_after, **kw)
