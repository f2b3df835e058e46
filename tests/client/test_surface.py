"""query / batch / chat.completions.create / config loading on both clients."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

import multimodel as mm
from multimodel.testing.fake import FakeProvider, FakeReply

KEY = "sk-test-surface-0123456789"


def make(cls: type, fake: FakeProvider, **kw: object) -> object:
    return cls(
        deployments=[
            mm.Deployment(model="m", provider="openai", api_key=KEY, base_url="https://a.test/v1")
        ],
        transport=fake,
        **kw,
    )


def test_query_fields() -> None:
    fake = FakeProvider(FakeReply(text="hi there", usage=(7, 3)))
    with make(mm.Client, fake) as client:  # type: ignore[attr-defined]
        r = client.query(
            "hello", max_tokens=20, temperature=0.2, stop="END", user="u1", system="be brief"
        )
    assert r.text == "hi there"
    assert r.usage.input_tokens == 7 and r.usage.output_tokens == 3
    assert r.provider == "openai" and r.deployment == "openai/m" and r.model == "m"
    assert r.request_id == "req_1"
    assert r.raw_body()["id"] == "chatcmpl-fake"
    assert "chat.completion" not in repr(r)  # the raw body stays out of repr
    body = fake.bodies()[0]
    assert body["messages"][0] == {"role": "system", "content": "be brief"}
    assert body["max_completion_tokens"] == 20 and body["stop"] == ["END"]
    assert body["user"] == "u1" and body["temperature"] == 0.2


def test_batch_keeps_order_and_returns_failures_in_place() -> None:
    fake = FakeProvider()
    fake.script("a.test", [200, 400, 200])
    with make(mm.Client, fake, max_retries=0) as client:  # type: ignore[attr-defined]
        results = client.batch(["one", "two", {"prompt": "three", "max_tokens": 0}], concurrency=1)
    assert isinstance(results[0], mm.ChatResponse)
    assert isinstance(results[1], mm.errors.BadRequestError)
    assert isinstance(results[2], mm.InvalidRequestError)
    assert len(fake.requests) == 2  # the invalid item was never sent


def test_batch_concurrent_order() -> None:
    fake = FakeProvider()
    with make(mm.Client, fake) as client:  # type: ignore[attr-defined]
        results = client.batch(
            [{"messages": [{"role": "user", "content": str(i)}]} for i in range(20)], concurrency=5
        )
    assert all(isinstance(r, mm.ChatResponse) for r in results)
    sent = sorted(b["messages"][0]["content"] for b in fake.bodies())
    assert sent == sorted(str(i) for i in range(20))


@pytest.mark.anyio
async def test_async_batch() -> None:
    fake = FakeProvider(FakeReply(echo=True))
    fake.script("a.test", [FakeReply(echo=True), FakeReply(400)])
    async with make(mm.AsyncClient, fake, max_retries=0) as client:  # type: ignore[attr-defined]
        results = await client.batch(["one", "two", "three", "four"], concurrency=2)
    # Tasks run in any order (trio shuffles them); results stay in input order.
    assert sorted(type(r).__name__ for r in results) == [
        "BadRequestError",
        "ChatResponse",
        "ChatResponse",
        "ChatResponse",
    ]
    for prompt, result in zip(["one", "two", "three", "four"], results, strict=True):
        if isinstance(result, mm.ChatResponse):
            assert result.text == prompt


def test_openai_shaped_surface() -> None:
    fake = FakeProvider(FakeReply(text="hey", usage=(4, 2)))
    with make(mm.Client, fake) as client:  # type: ignore[attr-defined]
        c = client.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "hi"}],
            max_completion_tokens=9,
            frequency_penalty=0.5,
        )
        chunks = list(
            client.chat.completions.create(
                model="m",
                messages=[{"role": "user", "content": "hi"}],
                stream=True,
                stream_options={"include_usage": True},
            )
        )
    assert c.choices[0].message.content == "hey"
    assert c.choices[0].finish_reason == "stop"
    assert c.usage.prompt_tokens == 4 and c.usage.total_tokens == 6
    assert c.object == "chat.completion"
    body = fake.bodies()[0]
    assert body["max_completion_tokens"] == 9 and body["frequency_penalty"] == 0.5
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == "hey"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None


@pytest.mark.anyio
async def test_async_openai_shaped_surface() -> None:
    fake = FakeProvider(FakeReply(text="hey"))
    async with make(mm.AsyncClient, fake) as client:  # type: ignore[attr-defined]
        c = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}]
        )
        stream = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        text = "".join([ch.choices[0].delta.content or "" async for ch in stream if ch.choices])
    assert c.choices[0].message.content == "hey"
    assert text == "hey"


def test_injected_http_client_is_not_closed() -> None:
    fake = FakeProvider()
    http = httpx.Client(transport=fake)
    client = mm.Client(
        deployments=[mm.Deployment(model="m", provider="openai", api_key=KEY)], http_client=http
    )
    client.query("hi")
    client.close()
    assert not http.is_closed
    http.close()


def test_config_from_dict_and_toml(tmp_path: Path) -> None:
    cfg = {
        "strategy": "round_robin",
        "timeout": 5,
        "deployments": [{"model": "m", "provider": "openai", "api_key": KEY}],
    }
    client = mm.Client(config=cfg, transport=FakeProvider())
    assert client.models == ["m"]
    path = tmp_path / "multimodel.toml"
    path.write_text(
        'timeout = 5\n[[deployments]]\nmodel = "m"\nprovider = "groq"\n'
        '[[deployments]]\nmodel = "n"\nprovider = "ollama"\n'
    )
    client = mm.Client(config=path, env={"GROQ_API_KEY": KEY}, transport=FakeProvider())
    assert sorted(client.models) == ["m", "n"]
    assert client.deployments[0].base_url == "https://api.groq.com/openai/v1"
    with pytest.raises(mm.ConfigError, match="deployments.0.provider"):
        mm.Client(config={"deployments": [{"model": "m"}]})
    with pytest.raises(mm.ConfigError, match="cannot read"):
        mm.Client(config=tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("this is = = not toml")
    with pytest.raises(mm.ConfigError, match="not valid TOML"):
        mm.Client(config=bad)


def test_model_defaults_when_single_group_and_is_required_otherwise() -> None:
    fake = FakeProvider()
    client = mm.Client(
        deployments=[
            mm.Deployment(model="m", provider="openai", api_key=KEY),
            mm.Deployment(model="n", provider="openai", api_key=KEY),
        ],
        transport=fake,
    )
    with pytest.raises(mm.InvalidRequestError, match="model is required"):
        client.query("hi")
    assert fake.requests == []
