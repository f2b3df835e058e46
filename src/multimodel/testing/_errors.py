"""Error objects of the mock provider server, per wire format (``WIRE.md`` §1.6, §3.5, §4.5).

Each function returns the inner error object for an HTTP status, optionally overridden by a
``Behavior.error_code`` (``"insufficient_quota"``, ``"context_length_exceeded"``,
``"overloaded_error"``, a provider type such as ``"rate_limit_error"``, or a Google status name
such as ``"RESOURCE_EXHAUSTED"``) and an explicit message. The status itself never changes.

Example::

    openai_error(429, "insufficient_quota", None)
    # {"message": "You exceeded your current quota, ...", "type": "insufficient_quota",
    #  "param": None, "code": "insufficient_quota"}
"""

from __future__ import annotations

from typing import Any

__all__ = ["anthropic_error", "gemini_error", "openai_error", "retry_delay"]

# -- OpenAI ------------------------------------------------------------------------------------

# status -> (type, code, message)
_OPENAI_STATUS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request (mock)."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided (mock)."),
    403: (
        "request_forbidden",
        "unsupported_country_region_territory",
        "Country, region, or territory not supported (mock).",
    ),
    404: (
        "invalid_request_error",
        "model_not_found",
        "The model does not exist or you do not have access to it (mock).",
    ),
    429: ("rate_limit_error", "rate_limit_exceeded", "Rate limit reached for requests (mock)."),
    500: (
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that! (mock)",
    ),
    503: (
        "service_unavailable_error",
        "server_is_overloaded",
        "The engine is currently overloaded, please try again later (mock).",
    ),
}

# error_code -> (type, code, message)
_OPENAI_CODES: dict[str, tuple[str, str | None, str]] = {
    "insufficient_quota": (
        "insufficient_quota",
        "insufficient_quota",
        "You exceeded your current quota, please check your plan and billing details (mock).",
    ),
    "context_length_exceeded": (
        "invalid_request_error",
        "context_length_exceeded",
        (
            "This model's maximum context length is 128000 tokens. However, your messages "
            "resulted in 131072 tokens. Please reduce the length of the messages."
        ),
    ),
    "overloaded_error": _OPENAI_STATUS[503],
}

_OPENAI_TYPES = {
    "invalid_request_error",
    "rate_limit_error",
    "server_error",
    "service_unavailable_error",
    "authentication_error",
    "request_forbidden",
}


def openai_error(status: int, code: str | None, message: str | None) -> dict[str, Any]:
    """``{"message", "type", "param", "code"}`` for an OpenAI error."""
    default = _OPENAI_STATUS.get(
        status,
        ("server_error", None, f"Server error {status} (mock).")
        if status >= 500
        else ("invalid_request_error", None, f"Request failed with status {status} (mock)."),
    )
    etype, ecode, emsg = default
    if code is not None:
        if code in _OPENAI_CODES:
            etype, ecode, emsg = _OPENAI_CODES[code]
        elif code in _OPENAI_TYPES:
            etype, ecode = code, None
        else:
            ecode = code
    return {"message": message or emsg, "type": etype, "param": None, "code": ecode}


# -- Anthropic ---------------------------------------------------------------------------------

_ANTHROPIC_STATUS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request (mock)."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Billing error (mock)."),
    403: (
        "permission_error",
        "Your API key does not have permission to use the specified resource.",
    ),
    404: ("not_found_error", "Not found (mock)."),
    409: ("conflict_error", "Conflict (mock)."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of requests has exceeded your rate limit (mock)."),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out (mock)."),
    529: ("overloaded_error", "Overloaded"),
}

_ANTHROPIC_CODES: dict[str, tuple[str, str]] = {
    "context_length_exceeded": (
        "invalid_request_error",
        "prompt is too long: 210000 tokens > 200000 maximum",
    ),
    "insufficient_quota": (
        "billing_error",
        "Your credit balance is too low to access the Anthropic API (mock).",
    ),
}
_ANTHROPIC_CODES.update({etype: (etype, msg) for etype, msg in _ANTHROPIC_STATUS.values()})


def anthropic_error(status: int, code: str | None, message: str | None) -> dict[str, Any]:
    """``{"type", "message"}`` for an Anthropic error."""
    etype, emsg = _ANTHROPIC_STATUS.get(
        status,
        ("api_error", f"Server error {status} (mock).")
        if status >= 500
        else ("invalid_request_error", f"Request failed with status {status} (mock)."),
    )
    if code is not None:
        etype, emsg = _ANTHROPIC_CODES.get(code, (code, emsg))
    return {"type": etype, "message": message or emsg}


# -- Gemini ------------------------------------------------------------------------------------

_GEMINI_STATUS: dict[int, tuple[str, str]] = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "Request had invalid authentication credentials."),
    403: ("PERMISSION_DENIED", "The caller does not have permission."),
    404: ("NOT_FOUND", "Requested entity was not found."),
    409: ("ABORTED", "The operation was aborted."),
    429: ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    499: ("CANCELLED", "The operation was cancelled."),
    500: ("INTERNAL", "An internal error has occurred. Please retry (mock)."),
    501: ("UNIMPLEMENTED", "Not implemented."),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
}

_GEMINI_CODES: dict[str, tuple[str, str]] = {
    "context_length_exceeded": (
        "INVALID_ARGUMENT",
        "The input token count (1048577) exceeds the maximum number of tokens allowed (1048576).",
    ),
    "insufficient_quota": (
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details.",
    ),
    "overloaded_error": _GEMINI_STATUS[503],
}


def retry_delay(seconds: float) -> str:
    """A protobuf JSON ``Duration``: ``"2s"``, ``"0.250s"``."""
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{seconds:.3f}s"


def gemini_error(
    status: int,
    code: str | None,
    message: str | None,
    retry_after: float | None,
    model: str | None,
) -> dict[str, Any]:
    """``{"code", "message", "status", "details"}`` for a Gemini (google.rpc.Status) error."""
    gstatus, gmsg = _GEMINI_STATUS.get(
        status,
        ("INTERNAL", f"Error {status} (mock).")
        if status >= 500
        else ("FAILED_PRECONDITION", f"Error {status} (mock)."),
    )
    details: list[dict[str, Any]] = []
    if code is not None:
        if code in _GEMINI_CODES:
            gstatus, gmsg = _GEMINI_CODES[code]
        elif code.isupper():
            gstatus = code
        else:
            details.append(
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": code,
                    "domain": "googleapis.com",
                }
            )
    if status == 429:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": "generativelanguage.googleapis.com/generate_content_requests",
                        "quotaId": "GenerateRequestsPerMinutePerProjectPerModel",
                        "quotaDimensions": {"location": "global", "model": model or "unknown"},
                        "quotaValue": "10",
                    }
                ],
            }
        )
    if retry_after is not None and status in (429, 503):
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": retry_delay(retry_after),
            }
        )
    error: dict[str, Any] = {"code": status, "message": message or gmsg, "status": gstatus}
    if details:
        error["details"] = details
    return error
