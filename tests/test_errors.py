"""The error tree: Retry-After parsing, secret redaction, suggestions and messages."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr

from multimodel.errors import (
    AllAttemptsFailed,
    AuthenticationError,
    BadRequestError,
    ConfigError,
    ConflictError,
    ContentFiltered,
    ContextLengthExceeded,
    InvalidRequestError,
    MalformedResponse,
    MissingAPIKeyError,
    MultimodelError,
    NoDeploymentAvailable,
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
    UnknownModelError,
    redact,
)
from multimodel.providers._errors import MAX_RETRY_AFTER, error_from_status, parse_retry_after
from multimodel.providers.base import Endpoint

NOW = 1_700_000_000.0

ENDPOINT = Endpoint(
    name="primary",
    model="m",
    wire_model="w",
    provider="openai",
    base_url="https://api.openai.com/v1",
    api_key=SecretStr("tok_live_0123456789"),
)


# -- parse_retry_after ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after": ""}, None),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "0"}, 0.0),
        ({"retry-after-ms": "250.5"}, 0.2505),
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "0"}, 0.0),
        ({"retry-after": " 7 "}, 7.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after": "0.25"}, 0.25),
        # retry-after-ms is more precise and wins over retry-after.
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        # An unusable retry-after-ms falls back to retry-after.
        ({"retry-after-ms": "soon", "retry-after": "3"}, 3.0),
        ({"retry-after-ms": "NaN", "retry-after": "3"}, 3.0),
        ({"retry-after-ms": "", "retry-after": "3"}, 3.0),
        # Garbage.
        ({"retry-after": "soon"}, None),
        ({"retry-after": "2 seconds"}, None),
        ({"retry-after": "12ms"}, None),
        ({"retry-after": "Mon, 99 Foo 2024 99:99:99 GMT"}, None),
        ({"retry-after-ms": "x"}, None),
        # NaN is no hint at all.
        ({"retry-after": "NaN"}, None),
        ({"retry-after": "nan"}, None),
        # Negative values mean "now".
        ({"retry-after": "-5"}, 0.0),
        ({"retry-after-ms": "-100"}, 0.0),
        # Huge values are clamped to an hour.
        ({"retry-after": "86400"}, MAX_RETRY_AFTER),
        ({"retry-after": "1e400"}, MAX_RETRY_AFTER),
        ({"retry-after": "inf"}, MAX_RETRY_AFTER),
        ({"retry-after-ms": "99999999999"}, MAX_RETRY_AFTER),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers, now=NOW) == expected


def test_max_retry_after_is_an_hour() -> None:
    assert MAX_RETRY_AFTER == 3600.0


@pytest.mark.parametrize(
    ("offset", "expected"),
    [(30, 30.0), (0, 0.0), (-120, 0.0), (7200, MAX_RETRY_AFTER)],
)
def test_parse_retry_after_http_date(offset: int, expected: float) -> None:
    date = email.utils.formatdate(NOW + offset, usegmt=True)
    assert parse_retry_after({"retry-after": date}, now=NOW) == expected


@pytest.mark.parametrize(
    "form",
    [
        "Tue, 14 Nov 2023 22:13:50 GMT",  # IMF-fixdate
        "Tuesday, 14-Nov-23 22:13:50 GMT",  # obsolete RFC 850
        "Tue Nov 14 22:13:50 2023",  # obsolete asctime: no zone, but HTTP dates are UTC
        "Tue, 14 Nov 2023 22:13:50 -0000",
        "Tue, 14 Nov 2023 23:13:50 +0100",
    ],
)
def test_parse_retry_after_http_date_forms(form: str) -> None:
    # 2023-11-14 22:13:50 UTC is NOW + 30 s.
    assert email.utils.formatdate(NOW + 30, usegmt=True) == "Tue, 14 Nov 2023 22:13:50 GMT"
    assert parse_retry_after({"retry-after": form}, now=NOW) == 30.0


@pytest.fixture
def far_timezone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    if not hasattr(time, "tzset"):
        pytest.skip("time.tzset is POSIX-only")
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("far_timezone")
def test_zoneless_http_date_is_utc_whatever_the_local_zone() -> None:
    assert parse_retry_after({"retry-after": "Tue Nov 14 22:13:50 2023"}, now=NOW) == 30.0


def test_parse_retry_after_uses_the_clock_without_now() -> None:
    date = email.utils.formatdate(time.time() + 60, usegmt=True)
    wait = parse_retry_after({"retry-after": date})
    assert wait is not None
    assert 55 <= wait <= 60


def test_parse_retry_after_with_httpx_headers_is_case_insensitive() -> None:
    assert parse_retry_after(httpx.Headers({"Retry-After": "4"})) == 4.0
    assert parse_retry_after(httpx.Headers({"Retry-After-Ms": "40"})) == 0.04


# -- redact --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Incorrect API key provided: sk-abc123456789.", "sk-abc123456789"),
        ("key sk-proj-AbC_dEf-123456789xyz was revoked", "sk-proj-AbC_dEf-123456789xyz"),
        ("invalid x-api-key sk-ant-api03-abcDEF_123-xyz", "sk-ant-api03-abcDEF_123-xyz"),
        ("API key not valid: AIzaSyA1234567890abcdefghijklmn", "AIzaSyA1234567890abcdefghijklmn"),
        ("https://x/v1beta/models?key=AIzaSyDdI0hCZtE6vySjMm", "AIzaSyDdI0hCZtE6vySjMm"),
        ("got header Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig", "eyJhbGciOiJIUzI1NiJ9.e30.sig"),
        ("got header bearer abcdefgh12345678", "abcdefgh12345678"),
        ("x-api-key: abc123secret", "abc123secret"),
        ('{"x-api-key": "abc123secret"}', "abc123secret"),
        ("api-key=abc123secret&x=1", "abc123secret"),
        ("X-Goog-Api-Key: abc123secret", "abc123secret"),
        ("authorization='abc123secret'", "abc123secret"),
    ],
)
def test_redact_patterns(text: str, secret: str) -> None:
    out = redact(text)
    assert secret not in out
    assert "[REDACTED]" in out


def test_redact_authorization_bearer_header() -> None:
    assert "eyJhbGciOiJIUzI1NiJ9" not in redact("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30")


@pytest.mark.parametrize(
    "text",
    [
        "The model `gpt-4o` does not exist",
        "Rate limit reached for requests per minute (RPM): Limit 3, Used 3",
        "max_tokens must be at least 1, got 0",
        "",
    ],
)
def test_redact_leaves_ordinary_text(text: str) -> None:
    assert redact(text) == text


def test_redact_given_secrets() -> None:
    assert redact("your key tok_123456 is bad", ["tok_123456"]) == "your key [REDACTED] is bad"
    # Very short or empty secrets are not redacted (they would shred ordinary words).
    assert redact("a b c", ["a", "", "abc"]) == "a b c"
    assert redact("xxxx yyyy", ["xxxx", "yyyy"]) == "[REDACTED] [REDACTED]"


def test_provider_error_message_is_redacted() -> None:
    err = AuthenticationError("Incorrect API key provided: sk-abc123456789", provider="openai")
    assert "sk-abc123456789" not in str(err)
    assert "sk-abc123456789" not in repr(err)
    assert "sk-abc123456789" not in err.message


def test_error_from_status_redacts_the_endpoints_own_key() -> None:
    err = error_from_status(401, "bad key tok_live_0123456789 (revoked)", ENDPOINT)
    assert "tok_live_0123456789" not in str(err)
    assert "[REDACTED]" in str(err)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_names_where_it_points_and_what_to_fix(status: int) -> None:
    headers = {"location": "https://api.example.test/v1/chat/completions?k=tok_live_0123456789"}
    err = error_from_status(status, "", ENDPOINT, headers=headers)
    assert isinstance(err, NotFoundError) and not err.retryable and err.status_code == status
    assert "redirected the request to https://api.example.test/v1/chat/completions" in str(err)
    assert "base_url" in str(err) and "tok_live_0123456789" not in str(err)
    assert "redirected the request; " in str(error_from_status(status, "", ENDPOINT))


# -- UnknownModelError -----------------------------------------------------------------------------


def test_unknown_model_suggests_close_names() -> None:
    err = UnknownModelError("gpt-4o-mni", ["gpt-4o-mini", "gpt-4o", "claude-3-5-sonnet", "gpt-4o"])
    assert err.model == "gpt-4o-mni"
    assert err.suggestions[0] == "gpt-4o-mini"
    assert "claude-3-5-sonnet" not in err.suggestions
    assert len(err.suggestions) <= 3
    assert "did you mean 'gpt-4o-mini'" in str(err)
    assert isinstance(err, LookupError)
    assert isinstance(err, MultimodelError)


def test_unknown_model_without_close_names_lists_known() -> None:
    err = UnknownModelError("llama", ["gpt-4o", "claude"])
    assert err.suggestions == []
    assert "configured models: claude, gpt-4o" in str(err)


def test_unknown_model_with_nothing_configured() -> None:
    err = UnknownModelError("x", [])
    assert err.suggestions == []
    assert str(err) == "no deployment serves model 'x'"


# -- messages and flags ----------------------------------------------------------------------------


def test_provider_error_str_has_provider_deployment_status_and_request_id() -> None:
    err = RateLimited(
        "Rate limit reached",
        provider="openai",
        deployment="openai/gpt-4o",
        status=429,
        request_id="req_123",
        code="rate_limit_exceeded",
        retry_after=2.0,
    )
    assert str(err) == "[openai/openai/gpt-4o HTTP 429] Rate limit reached (request id req_123)"
    assert err.code == "rate_limit_exceeded"
    assert err.retry_after == 2.0


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({}, "boom"),
        ({"provider": "groq"}, "[groq] boom"),
        ({"deployment": "d1"}, "[d1] boom"),
        ({"status": 500}, "[ HTTP 500] boom"),
        ({"provider": "groq", "status": 503}, "[groq HTTP 503] boom"),
        ({"request_id": "r1"}, "boom"),
        ({"provider": "groq", "request_id": "r1"}, "[groq] boom (request id r1)"),
    ],
)
def test_provider_error_str_variants(kw: dict[str, object], expected: str) -> None:
    assert str(ProviderError("boom", **kw)) == expected  # type: ignore[arg-type]


def test_error_from_status_str_and_fields() -> None:
    headers = httpx.Headers({"x-request-id": "req_9", "retry-after": "3"})
    err = error_from_status(429, "slow down", ENDPOINT, code="rate_limit_exceeded", headers=headers)
    assert isinstance(err, RateLimited)
    assert err.retry_after == 3.0
    assert str(err) == "[openai/primary HTTP 429] slow down (request id req_9)"


def test_error_from_status_request_id_fallbacks() -> None:
    anthropic_style = error_from_status(500, "x", ENDPOINT, headers={"request-id": "req_ant"})
    assert anthropic_style.request_id == "req_ant"
    explicit = error_from_status(500, "x", ENDPOINT, headers={"x-request-id": "a"}, request_id="b")
    assert explicit.request_id == "b"


def test_error_from_status_empty_message() -> None:
    assert error_from_status(502, "", ENDPOINT).message == "HTTP 502"


@pytest.mark.parametrize(
    ("status", "code", "message", "expected"),
    [
        (400, None, "bad", BadRequestError),
        (400, "context_length_exceeded", "x", ContextLengthExceeded),
        (413, None, "prompt is too long", ContextLengthExceeded),
        (400, "content_filter", "x", ContentFiltered),
        (401, None, "x", AuthenticationError),
        (402, None, "x", QuotaExhausted),
        (403, None, "x", PermissionDeniedError),
        (404, None, "x", NotFoundError),
        (408, None, "x", ProviderTimeout),
        (409, None, "x", ConflictError),
        (429, None, "x", RateLimited),
        (429, "insufficient_quota", "x", QuotaExhausted),
        (429, "credit_balance_exhausted", "x", QuotaExhausted),
        (500, None, "x", ServerError),
        (503, None, "x", Overloaded),
        (529, None, "x", Overloaded),
        (200, "overloaded_error", "x", Overloaded),
        (200, "rate_limit_error", "x", RateLimited),
        (200, "mystery", "x", ServerError),
        (500, "Context_Length_Exceeded", "x", ContextLengthExceeded),
    ],
)
def test_error_from_status_table(
    status: int, code: str | None, message: str, expected: type[ProviderError]
) -> None:
    err = error_from_status(status, message, ENDPOINT, code=code)
    assert type(err) is expected
    assert err.status == status
    assert err.provider == "openai"
    assert err.deployment == "primary"


@pytest.mark.parametrize(
    ("cls", "retryable"),
    [
        (BadRequestError, False),
        (ContextLengthExceeded, False),
        (ContentFiltered, False),
        (AuthenticationError, False),
        (PermissionDeniedError, False),
        (NotFoundError, False),
        (QuotaExhausted, False),
        (ConflictError, True),
        (RateLimited, True),
        (Overloaded, True),
        (ServerError, True),
        (ProviderTimeout, True),
        (ProviderConnectionError, True),
        (MalformedResponse, True),
        (StreamInterrupted, False),
    ],
)
def test_retryable_flags(cls: type[ProviderError], retryable: bool) -> None:
    assert cls("x").retryable is retryable
    assert issubclass(cls, ProviderError)


def test_stream_interrupted_keeps_partial_text() -> None:
    err = StreamInterrupted("cut", partial_text="Hello wor", provider="openai")
    assert err.partial_text == "Hello wor"


def test_missing_api_key_error_names_the_variable() -> None:
    err = MissingAPIKeyError("openai/gpt-4o", "openai", "OPENAI_API_KEY")
    assert err.env_var == "OPENAI_API_KEY"
    assert "OPENAI_API_KEY" in str(err)
    assert "openai/gpt-4o" in str(err)
    assert isinstance(err, ConfigError)
    assert isinstance(err, ValueError)
    assert "environment variable" not in str(MissingAPIKeyError("d", "custom", None))


def test_invalid_request_error_field() -> None:
    err = InvalidRequestError("bad", field="messages[0].content")
    assert err.field == "messages[0].content"
    assert isinstance(err, ValueError)


def test_no_deployment_available_and_all_attempts_failed() -> None:
    none = NoDeploymentAvailable("gpt-4o", {"a": "cooling down", "b": "rpm limit"})
    assert "a: cooling down" in str(none)
    assert "b: rpm limit" in str(none)
    errors = [RateLimited("slow", provider="openai"), ServerError("boom", provider="azure")]
    failed = AllAttemptsFailed("gpt-4o", errors)
    assert failed.last is errors[-1]
    assert "all 2 attempt(s)" in str(failed)
    assert "RateLimited" in str(failed)
    assert AllAttemptsFailed("m", []).last is None


@pytest.mark.parametrize(
    ("errors", "family"),
    [
        ([RateLimited("a"), RateLimited("b")], RateLimited),
        ([ServerError("a"), Overloaded("b")], ServerError),  # the SDK's InternalServerError
        ([Overloaded("a"), Overloaded("b")], Overloaded),
        ([ProviderTimeout("a"), ProviderConnectionError("b")], ProviderConnectionError),
        ([ContextLengthExceeded("a"), ContentFiltered("b")], BadRequestError),
        ([RateLimited("a"), ServerError("b")], None),
        ([ProviderTimeout("a"), ServerError("b")], None),
        ([ServerError("a"), InvalidRequestError("b")], None),
    ],
)
def test_all_attempts_failed_is_the_attempts_family(
    errors: list[MultimodelError], family: type[ProviderError] | None
) -> None:
    """The most specific type every attempt shares, below ``ProviderError``, as the SDK's
    last error would be caught; a mix without one is a plain ``AllAttemptsFailed``."""
    failed = AllAttemptsFailed("m", errors)
    if family is None:
        assert type(failed) is AllAttemptsFailed
        assert not isinstance(failed, ProviderError)
        return
    assert isinstance(failed, family) and isinstance(failed, AllAttemptsFailed)
    for kind in {type(e) for e in errors} - {family}:
        assert not isinstance(failed, kind)  # the family, not one of its members
    assert failed.errors == errors


def test_the_sdk_hierarchy_holds() -> None:
    """``APITimeoutError`` is an ``APIConnectionError`` and a 503/529 an
    ``InternalServerError`` in the OpenAI SDK; so here."""
    assert issubclass(ProviderTimeout, ProviderConnectionError)
    assert issubclass(Overloaded, ServerError)
    assert not issubclass(ProviderConnectionError, ProviderTimeout)
    assert not issubclass(ServerError, Overloaded)
