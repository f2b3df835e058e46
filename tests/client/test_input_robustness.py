"""Bad input to any public entry point is a typed error naming the field; nothing is sent."""

from __future__ import annotations

from typing import Any

import pytest

import multimodel as mm
from multimodel import errors
from multimodel.testing.fake import FakeProvider

KEY = "sk-test-input-0123456789"
S = "\ud800"  # a lone surrogate: not valid Unicode, cannot be encoded as UTF-8

BAD_TEXT: list[tuple[Any, dict[str, Any], str]] = [
    (f"caf{S}", {}, "messages.0.content"),
    (
        [{"role": "user", "content": [{"type": "text", "text": f"a{S}"}]}],
        {},
        "messages.0.content.0.text",
    ),
    ("ok", {"system": f"be {S}"}, "messages.0.content"),
    ("ok", {"stop": [S]}, "stop.0"),
    ("ok", {"extra_body": {f"k{S}": 1}}, "extra_body.k\\ud800"),
    ("ok", {"metadata": {"a": S}}, "metadata.a"),
    (
        "ok",
        {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": {"type": "object", "description": S}},
            }
        },
        "response_format.schema_.description",
    ),
    (
        "ok",
        {"tools": [{"name": "f", "description": S, "parameters": {"type": "object"}}]},
        "tools.0.description",
    ),
]


def client(cls: type[Any], fake: FakeProvider) -> Any:
    return cls(
        deployments=[
            mm.Deployment(model="m", provider="openai", api_key=KEY, base_url="https://a.test/v1")
        ],
        transport=fake,
    )


@pytest.mark.parametrize(("prompt", "params", "field"), BAD_TEXT)
def test_sync_refuses_text_that_is_not_unicode(
    prompt: Any, params: dict[str, Any], field: str
) -> None:
    fake = FakeProvider()
    with client(mm.Client, fake) as c:
        with pytest.raises(errors.InvalidRequestError) as info:
            c.query(prompt, **params)
        assert info.value.field == field
        with pytest.raises(errors.InvalidRequestError):
            c.stream(prompt, **params)
        [result] = c.batch([{"prompt": prompt, **params}])
        assert isinstance(result, errors.InvalidRequestError)
        messages = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
        extra = dict(params)
        if "system" in extra:
            messages = [{"role": "system", "content": extra.pop("system")}, *messages]
        with pytest.raises(errors.InvalidRequestError):
            c.chat.completions.create(model="m", messages=messages, **extra)
    assert fake.hosts() == []  # nothing was sent


@pytest.mark.anyio
@pytest.mark.parametrize(("prompt", "params", "field"), BAD_TEXT)
async def test_async_refuses_text_that_is_not_unicode(
    prompt: Any, params: dict[str, Any], field: str
) -> None:
    fake = FakeProvider()
    async with client(mm.AsyncClient, fake) as c:
        with pytest.raises(errors.InvalidRequestError) as info:
            await c.query(prompt, **params)
        assert info.value.field == field
        with pytest.raises(errors.InvalidRequestError):
            c.stream(prompt, **params)
        [result] = await c.batch([{"prompt": prompt, **params}])
        assert isinstance(result, errors.InvalidRequestError)
    assert fake.hosts() == []


def test_valid_unicode_is_sent_as_is() -> None:
    fake = FakeProvider()
    with client(mm.Client, fake) as c:
        assert c.query("café ✓ 日本 🚀").text
    assert len(fake.hosts()) == 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"extra_body": [1]}, "extra_body"),
        ({"stream_options": "yes"}, "stream_options"),
        ({"n": 2}, "n"),
    ],
)
def test_chat_completions_keywords_of_the_wrong_shape(kwargs: dict[str, Any], field: str) -> None:
    fake = FakeProvider()
    with client(mm.Client, fake) as c:
        for stream in (False, True):
            with pytest.raises(errors.InvalidRequestError) as info:
                c.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": "hi"}], stream=stream, **kwargs
                )
            assert info.value.field == field
    assert fake.hosts() == []


@pytest.mark.anyio
async def test_async_chat_completions_keywords_of_the_wrong_shape() -> None:
    fake = FakeProvider()
    async with client(mm.AsyncClient, fake) as c:
        with pytest.raises(errors.InvalidRequestError) as info:
            await c.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}], stream_options="yes"
            )
        assert info.value.field == "stream_options"
