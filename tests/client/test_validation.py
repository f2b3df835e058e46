"""Bad input gets a typed error that says what to fix, and nothing is sent."""

from __future__ import annotations

import pytest

import multimodel as mm
from multimodel.testing.fake import FakeProvider

KEY = "sk-test-validation-0123456789"


@pytest.fixture
def fake() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
def client(fake: FakeProvider) -> mm.Client:
    return mm.Client(
        deployments=[mm.Deployment(model="gpt-4o-mini", provider="openai", api_key=KEY)],
        transport=fake,
    )


@pytest.mark.parametrize(
    ("prompt", "params", "error", "match"),
    [
        ([], {}, mm.InvalidRequestError, "messages is empty"),
        ("", {}, mm.InvalidRequestError, "prompt is empty"),
        ([{"role": "wizard", "content": "x"}], {}, mm.InvalidRequestError, "messages.0.role"),
        ([{"role": "tool", "content": "x"}], {}, mm.InvalidRequestError, "tool_call_id"),
        ([{"role": "user"}], {}, mm.InvalidRequestError, "needs `content`"),
        ("hi", {"max_tokens": -5}, mm.InvalidRequestError, "max_tokens"),
        ("hi", {"temperature": 3}, mm.InvalidRequestError, "temperature"),
        ("hi", {"top_p": 1.5}, mm.InvalidRequestError, "top_p"),
        ("hi", {"colour": "blue"}, mm.InvalidRequestError, "unknown parameter 'colour'"),
        (
            "hi",
            {"tool_choice": {"type": "function", "function": {"name": "nope"}}},
            mm.InvalidRequestError,
            "not in `tools`",
        ),
        ("hi", {"response_format": {"type": "json_schema"}}, mm.InvalidRequestError, "schema"),
        (42, {}, mm.InvalidRequestError, "prompt string or a list"),
    ],
)
def test_bad_requests(
    client: mm.Client,
    fake: FakeProvider,
    prompt: object,
    params: dict[str, object],
    error: type[Exception],
    match: str,
) -> None:
    with pytest.raises(error, match=match) as info:
        client.query(prompt, **params)  # type: ignore[arg-type]
    assert fake.requests == []
    if isinstance(info.value, mm.InvalidRequestError) and "unknown parameter" in match:
        assert info.value.field == "colour"


def test_unknown_model_lists_close_matches(client: mm.Client, fake: FakeProvider) -> None:
    with pytest.raises(mm.UnknownModelError, match="did you mean 'gpt-4o-mini'") as info:
        client.query("hi", model="gpt-4o-mni")
    assert info.value.suggestions == ["gpt-4o-mini"]
    assert isinstance(info.value, LookupError)
    assert fake.requests == []


def test_missing_key_names_the_env_var() -> None:
    with pytest.raises(mm.MissingAPIKeyError, match="ANTHROPIC_API_KEY") as info:
        mm.Client(deployments=[mm.Deployment(model="c", provider="anthropic")], env={})
    assert info.value.env_var == "ANTHROPIC_API_KEY"
    assert isinstance(info.value, ValueError)


def test_key_from_environment() -> None:
    client = mm.Client(
        deployments=[{"model": "c", "provider": "anthropic"}], env={"ANTHROPIC_API_KEY": KEY}
    )
    assert client.deployments[0].api_key is not None
    assert client.deployments[0].api_key.get_secret_value() == KEY


@pytest.mark.parametrize(
    ("deployments", "match"),
    [
        ([], "at least one deployment"),
        ([{"model": "m", "provider": "nope", "api_key": KEY}], "unknown provider 'nope'"),
        ([{"model": "m", "provider": "azure", "api_key": KEY}], "needs base_url"),
        (
            [
                {"model": "m", "provider": "openai", "api_key": KEY, "name": "x"},
                {"model": "m", "provider": "openai", "api_key": KEY, "name": "x"},
            ],
            "unique",
        ),
        ([{"model": "m", "provider": "openai", "api_key": KEY, "weight": 0}], "weight"),
        ([{"model": "m", "provider": "openai", "api_key": KEY, "base_url": "ftp://x"}], "base_url"),
    ],
)
def test_bad_config(deployments: list[dict[str, object]], match: str) -> None:
    with pytest.raises(mm.ConfigError, match=match):
        mm.Client(deployments=deployments)


def test_unknown_strategy_lists_known() -> None:
    with pytest.raises(mm.ConfigError, match="known strategies: .*round_robin"):
        mm.Client(
            deployments=[{"model": "m", "provider": "openai", "api_key": KEY}],
            strategy="fastest-please",
        )
