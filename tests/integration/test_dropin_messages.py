"""Messages in every shape the OpenAI SDK accepts and returns, on the three wire formats.

A tool-call round trip appends the facade's own message object (or its ``model_dump()``, or an
OpenAI-shaped dict) to ``messages`` and sends the next turn; the mock server records the body
each wire format received, which must carry the call and its result in that format's shape.
Runs on the sync client and the async client on asyncio and trio.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from typing import Any

import anyio
import pytest

import multimodel as mm
from multimodel.testing import Behavior, MockDeployment

from .conftest import FAST_RETRY, Mock, async_transport, sync_transport

ARGS = {"city": "Paris"}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "weather",
            "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
PNG = "data:image/png;base64,iVBORw0KGgo="


def _replay(kind: str, first: Any) -> Any:
    """The assistant turn as the caller appends it: the object, its dump, or a plain dict."""
    message = first.choices[0].message
    if kind == "object":
        return message
    if kind == "dump":
        return message.model_dump()
    call = message.tool_calls[0]
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.function.name, "arguments": call.function.arguments},
            }
        ],
    }


def _turns(first: Any, kind: str) -> list[Any]:
    call = first.choices[0].message.tool_calls[0]
    return [
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?", "name": "ann"},
        _replay(kind, first),
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temp": 21})},
    ]


def _check_round_trip(fmt: str, body: Any, call_id: str) -> None:
    if fmt == "openai":
        msgs = body["messages"]
        assert msgs[0] == {"role": "developer", "content": "Be brief."}
        assert msgs[1]["name"] == "ann"
        (call,) = msgs[2]["tool_calls"]
        assert call["id"] == call_id and call["type"] == "function"
        assert call["function"]["name"] == "weather"
        assert json.loads(call["function"]["arguments"]) == ARGS
        assert msgs[3] == {"role": "tool", "tool_call_id": call_id, "content": '{"temp": 21}'}
    elif fmt == "anthropic":
        assert body["system"] == "Be brief."
        turns = body["messages"]
        assert [t["role"] for t in turns] == ["user", "assistant", "user"]
        assert turns[1]["content"] == [
            {"type": "tool_use", "id": call_id, "name": "weather", "input": ARGS}
        ]
        assert turns[2]["content"] == [
            {"type": "tool_result", "tool_use_id": call_id, "content": '{"temp": 21}'}
        ]
    else:
        assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
        contents = body["contents"]
        assert [c["role"] for c in contents] == ["user", "model", "user"]
        call = contents[1]["parts"][0]["functionCall"]
        assert call["name"] == "weather" and call["args"] == ARGS
        response = contents[2]["parts"][0]["functionResponse"]
        assert response["name"] == "weather" and response["response"] == {"temp": 21}


def _server(serve: Callable[..., Mock], fmt: Any) -> Mock:
    return serve(a=MockDeployment(fmt, Behavior(tool_calls=[("weather", ARGS)])))


@pytest.mark.parametrize("kind", ["object", "dump", "dict"])
def test_tool_round_trip_sync(serve: Callable[..., Mock], fmt: str, kind: str) -> None:
    mock = _server(serve, fmt)
    with mm.Client(
        deployments=[mock.dep("a")], retry=FAST_RETRY, transport=sync_transport()
    ) as client:
        first = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "Weather in Paris?"}], tools=TOOLS
        )
        assert first.choices[0].finish_reason == "tool_calls"
        calls = first.choices[0].message.tool_calls
        assert calls
        call_id = calls[0].id
        client.chat.completions.create(model="m", messages=_turns(first, kind), tools=TOOLS)
        _check_round_trip(fmt, mock.body("a"), call_id)
        # The native query() takes the same shapes.
        client.query(_turns(first, kind), model="m", tools=TOOLS)
        _check_round_trip(fmt, mock.body("a"), call_id)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("kind", ["object", "dump", "dict"])
def test_tool_round_trip_async(
    serve: Callable[..., Mock], fmt: str, kind: str, backend: str
) -> None:
    mock = _server(serve, fmt)

    async def go() -> None:
        async with mm.AsyncClient(
            deployments=[mock.dep("a")], retry=FAST_RETRY, transport=async_transport()
        ) as client:
            first = await client.chat.completions.create(
                model="m",
                messages=[{"role": "user", "content": "Weather in Paris?"}],
                tools=TOOLS,
            )
            calls = first.choices[0].message.tool_calls
            assert calls
            call_id = calls[0].id
            await client.chat.completions.create(
                model="m", messages=_turns(first, kind), tools=TOOLS
            )
            _check_round_trip(fmt, mock.body("a"), call_id)
            await client.query(_turns(first, kind), model="m", tools=TOOLS)
            _check_round_trip(fmt, mock.body("a"), call_id)

    anyio.run(go, backend=backend)


def test_image_url_parts(serve: Callable[..., Mock], fmt: str) -> None:
    mock = serve(a=MockDeployment(fmt))  # type: ignore[arg-type]
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": PNG, "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.b/photo.JPG?s=1"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/render?id=7"}},
    ]
    with mm.Client(
        deployments=[mock.dep("a")], retry=FAST_RETRY, transport=sync_transport()
    ) as client:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": content}])
        body = mock.body("a")
    if fmt == "openai":
        assert body["messages"][0]["content"] == content
    elif fmt == "anthropic":
        blocks = body["messages"][0]["content"]
        assert blocks[1] == {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
        }
        assert blocks[2] == {
            "type": "image",
            "source": {"type": "url", "url": "https://example.com/cat.png"},
        }
    else:
        parts = body["contents"][0]["parts"]
        assert parts[1] == {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}
        # Gemini fetches the URL: the type from the extension where the path names one
        assert parts[2] == {
            "fileData": {"mimeType": "image/png", "fileUri": "https://example.com/cat.png"}
        }
        assert parts[3]["fileData"]["mimeType"] == "image/jpeg"
        assert parts[4] == {"fileData": {"fileUri": "https://example.com/render?id=7"}}


def test_refusal_replayed(serve: Callable[..., Mock], fmt: str) -> None:
    mock = serve(a=MockDeployment(fmt))  # type: ignore[arg-type]
    messages: list[Any] = [
        {"role": "user", "content": "Do something bad"},
        {"role": "assistant", "content": None, "refusal": "I can't help with that."},
        {"role": "user", "content": [{"type": "text", "text": "OK, something good"}]},
    ]
    with mm.Client(
        deployments=[mock.dep("a")], retry=FAST_RETRY, transport=sync_transport()
    ) as client:
        client.chat.completions.create(model="m", messages=messages)
        body = mock.body("a")
    if fmt == "openai":
        assert body["messages"][1] == {
            "role": "assistant",
            "content": None,
            "refusal": "I can't help with that.",
        }
    elif fmt == "anthropic":
        assert body["messages"][1] == {"role": "assistant", "content": "I can't help with that."}
    else:
        assert body["contents"][1] == {
            "role": "model",
            "parts": [{"text": "I can't help with that."}],
        }


WAV = "UklGRiQAAABXQVZF"
PDF = "JVBERi0xLjQK"


def test_audio_and_file_parts(serve: Callable[..., Mock], fmt: Any) -> None:
    mock = serve(a=MockDeployment(fmt))
    pdf = {"type": "file", "file": {"file_data": f"data:application/pdf;base64,{PDF}"}}
    audio = {"type": "input_audio", "input_audio": {"data": WAV, "format": "wav"}}
    with mm.Client(
        deployments=[mock.dep("a")], retry=FAST_RETRY, transport=sync_transport()
    ) as client:

        def send(*parts: Any) -> Any:
            content = [{"type": "text", "text": "Summarize"}, *parts]
            client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": content}]
            )
            return mock.body("a")

        body = send(pdf) if fmt == "anthropic" else send(pdf, audio)
        if fmt == "openai":
            assert body["messages"][0]["content"][1:] == [
                {"type": "file", "file": {"file_data": f"data:application/pdf;base64,{PDF}"}},
                {"type": "input_audio", "input_audio": {"data": WAV, "format": "wav"}},
            ]
        elif fmt == "anthropic":
            assert body["messages"][0]["content"][1] == {
                "type": "document",
                "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
            }
            with pytest.raises(mm.InvalidRequestError, match="Anthropic does not accept audio"):
                send(audio)
        else:
            assert body["contents"][0]["parts"][1:] == [
                {"inlineData": {"mimeType": "application/pdf", "data": PDF}},
                {"inlineData": {"mimeType": "audio/wav", "data": WAV}},
            ]
        if fmt != "openai":
            with pytest.raises(mm.InvalidRequestError, match="file_id"):
                send({"type": "file", "file": {"file_id": "file-abc"}})


def test_malformed_parts_are_typed_errors() -> None:
    msg = {"role": "user", "content": [{"type": "input_audio", "input_audio": "AAAA"}]}
    with mm.Client(deployments=[{"model": "m", "provider": "openai", "api_key": "sk-x"}]) as c:
        with pytest.raises(mm.InvalidRequestError, match="input_audio"):
            c.chat.completions.create(model="m", messages=[msg])


# -- streams as the SDK has them ------------------------------------------------------------


def test_stream_is_a_context_manager_sync(serve: Callable[..., Mock], fmt: Any) -> None:
    mock = serve(a=MockDeployment(fmt, Behavior(text="alpha beta gamma")))
    with mm.Client(
        deployments=[mock.dep("a")], retry=FAST_RETRY, transport=sync_transport()
    ) as client:
        messages = [{"role": "user", "content": "hi"}]
        with client.chat.completions.create(
            model="m", messages=messages, stream=True, stream_options={"include_usage": True}
        ) as stream:
            chunks = list(stream)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == "alpha beta gamma"
        assert chunks[0].choices[0].delta.role == "assistant"
        assert chunks[-1].choices == [] and chunks[-1].usage is not None
        final = stream.get_final_completion()
        assert final.choices[0].message.content == "alpha beta gamma"
        assert stream.final_response is not None
        # Stopped early: close() releases the attempt.
        stream = client.chat.completions.create(model="m", messages=messages, stream=True)
        next(stream)
        stream.close()
        assert list(stream) == []
        assert client.tracker.get("a").in_flight == 0


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_stream_is_a_context_manager_async(
    serve: Callable[..., Mock], fmt: Any, backend: str
) -> None:
    mock = serve(a=MockDeployment(fmt, Behavior(text="alpha beta gamma")))

    async def go() -> None:
        async with mm.AsyncClient(
            deployments=[mock.dep("a")], retry=FAST_RETRY, transport=async_transport()
        ) as client:
            messages = [{"role": "user", "content": "hi"}]
            async with await client.chat.completions.create(
                model="m", messages=messages, stream=True, stream_options={"include_usage": True}
            ) as stream:
                chunks = [c async for c in stream]
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            assert text == "alpha beta gamma"
            assert chunks[-1].usage is not None
            stream = await client.chat.completions.create(model="m", messages=messages, stream=True)
            await stream.__anext__()
            await stream.close()
            assert [c async for c in stream] == []
            assert client.tracker.get("a").in_flight == 0

    anyio.run(go, backend=backend)


# -- errors that migrate -------------------------------------------------------------------


def test_errors_after_retries_keep_their_type(serve: Callable[..., Mock], fmt: Any) -> None:
    mock = serve(a=MockDeployment(fmt, Behavior(fail_rate=1.0, fail_status=429, retry_after=0)))
    with mm.Client(
        deployments=[mock.dep("a")], retry=FAST_RETRY, transport=sync_transport(), max_retries=2
    ) as client:
        with pytest.raises(mm.errors.RateLimitError) as caught:
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    err = caught.value
    assert isinstance(err, mm.AllAttemptsFailed)
    assert len(err.errors) == 3 and all(isinstance(e, mm.RateLimited) for e in err.errors)
    assert err.status_code == 429 and err.response is not None
    assert err.response.status_code == 429
    assert err.response.headers.get("retry-after") == "0"
    assert err.body is not None and err.response.json() == err.body
    assert not err.retryable
    if fmt != "gemini":  # Gemini sends no request id
        assert err.request_id


def test_sdk_names_are_aliases() -> None:
    e = mm.errors
    assert e.RateLimitError is e.RateLimited
    assert e.APITimeoutError is e.ProviderTimeout
    assert e.APIConnectionError is e.ProviderConnectionError
    assert e.InternalServerError is e.ServerError
    assert e.APIStatusError is e.ProviderError and e.APIError is e.ProviderError
    assert issubclass(e.AuthenticationError, e.APIStatusError)
    assert e.ProviderTimeout("t").response is None


# -- one parameter rule for both surfaces ----------------------------------------------------


@pytest.mark.parametrize("surface", ["create", "query"])
def test_a_typo_is_refused_and_never_sent(serve: Callable[..., Mock], surface: str) -> None:
    mock = serve(a=MockDeployment("openai"))
    with mm.Client(
        deployments=[mock.dep("a")], retry=FAST_RETRY, transport=sync_transport()
    ) as client:
        kwargs: dict[str, Any] = {"temprature": 0}
        with pytest.raises(mm.InvalidRequestError, match="did you mean 'temperature'") as caught:
            if surface == "create":
                client.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": "x"}], **kwargs
                )
            else:
                client.query("x", model="m", **kwargs)
        assert caught.value.field == "temprature"
    assert mock.count("a") == 0


OPENAI_ONLY: dict[str, Any] = {"frequency_penalty": 0.5, "presence_penalty": 0.1, "logprobs": True}


@pytest.mark.parametrize("surface", ["create", "query"])
def test_openai_params_are_translated_or_dropped(
    serve: Callable[..., Mock], fmt: Any, surface: str
) -> None:
    from multimodel.providers import _params

    _params._DROPPED.clear()  # warnings are once per process and provider
    mock = serve(a=MockDeployment(fmt))
    with mm.Client(
        deployments=[mock.dep("a")], retry=FAST_RETRY, transport=sync_transport()
    ) as client:

        def call() -> None:
            if surface == "create":
                client.chat.completions.create(
                    model="m",
                    messages=[{"role": "user", "content": "x"}],
                    extra_body={"custom": 1},
                    **OPENAI_ONLY,
                )
            else:
                client.query("x", model="m", extra_body={"custom": 1}, **OPENAI_ONLY)

        if fmt == "openai":
            call()
        else:
            with pytest.warns(mm.errors.DroppedParameterWarning, match="'logprobs'") as record:
                call()
            dropped = [w for w in record if w.category is mm.errors.DroppedParameterWarning]
            assert len(dropped) == 1  # one warning, naming every dropped parameter
            call()  # once per provider and parameter: no warning the second time
        body = mock.body("a")
    assert body["custom"] == 1  # extra_body, as it is
    if fmt == "openai":
        assert {k: body[k] for k in OPENAI_ONLY} == OPENAI_ONLY
    elif fmt == "anthropic":
        assert not set(OPENAI_ONLY) & set(body)
    else:
        config = body["generationConfig"]
        assert config["frequencyPenalty"] == 0.5 and config["presencePenalty"] == 0.1
        assert "logprobs" not in json.dumps(body)


def test_max_completion_tokens_on_both_surfaces(serve: Callable[..., Mock]) -> None:
    mock = serve(a=MockDeployment("anthropic"))
    with mm.Client(
        deployments=[mock.dep("a")], retry=FAST_RETRY, transport=sync_transport()
    ) as client:
        client.query("x", model="m", max_completion_tokens=33)
        assert mock.body("a")["max_tokens"] == 33
        client.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "x"}],
            max_completion_tokens=44,
            task="summarize",  # a client keyword, as for query()
        )
        assert mock.body("a")["max_tokens"] == 44


def test_parallel_tool_calls_becomes_tool_choice(serve: Callable[..., Mock], fmt: Any) -> None:
    from multimodel.providers import _params

    _params._DROPPED.clear()  # warnings are once per process and provider
    mock = serve(a=MockDeployment(fmt))
    with (
        mm.Client(deployments=[mock.dep("a")], retry=FAST_RETRY, transport=sync_transport()) as c,
        warnings.catch_warnings(record=True) as record,
    ):
        warnings.simplefilter("always")
        c.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "x"}],
            tools=TOOLS,
            parallel_tool_calls=False,
        )
        body = mock.body("a")
    dropped = [w for w in record if w.category is mm.errors.DroppedParameterWarning]
    # Gemini may always call several functions at once: the one warning says so.
    assert len(dropped) == (1 if fmt == "gemini" else 0)
    if fmt == "openai":
        assert body["parallel_tool_calls"] is False
    elif fmt == "anthropic":
        assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}


# -- per-call options the SDK way ----------------------------------------------------------


def test_with_options_raw_response_and_models_sync(serve: Callable[..., Mock], fmt: Any) -> None:
    mock = serve(a=MockDeployment(fmt, Behavior(text="hi")), b=MockDeployment(fmt))
    deps = [mock.dep("a"), mock.dep("b", model="n")]
    with mm.Client(deployments=deps, retry=FAST_RETRY, transport=sync_transport()) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="m", messages=[{"role": "user", "content": "x"}]
        )
        assert raw.status_code == 200 and "content-type" in raw.headers
        if fmt != "gemini":
            assert raw.request_id
        assert raw.parse().choices[0].message.content == "hi"
        raw_stream = client.chat.completions.with_raw_response.create(
            model="m", messages=[{"role": "user", "content": "x"}], stream=True
        )
        assert "text/event-stream" in raw_stream.headers["content-type"]
        with raw_stream.parse() as stream:
            assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "hi"

        assert client.models == ["m", "n"]  # still the list of names
        page = client.models.list()
        assert [m.id for m in page] == ["m", "n"] and page.data[0].object == "model"
        assert page.data[0].owned_by == fmt and page.data[0].deployments == ["a"]
        assert client.models.retrieve("n").deployments == ["b"]
        with pytest.raises(mm.UnknownModelError):
            client.models.retrieve("nope")

        fast = client.with_options(timeout=5, max_retries=0)
        assert fast._timeout == 5 and fast._router.retry.max_retries == 0
        assert client._router.retry.max_retries == FAST_RETRY.max_retries
        fast.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        fast.close()  # shares the connections: the original client keeps working
        client.query("x", model="m")
        assert client.tracker.get("a").requests == 4  # one tracker (raw, raw stream, 2 here)


def test_with_options_max_retries_zero_fails_once(serve: Callable[..., Mock]) -> None:
    mock = serve(a=MockDeployment("openai", Behavior(fail_rate=1.0, fail_status=500)))
    with mm.Client(
        deployments=[mock.dep("a")], retry=FAST_RETRY, transport=sync_transport()
    ) as client:
        with pytest.raises(mm.errors.InternalServerError) as caught:
            client.with_options(max_retries=0).query("x", model="m")
        assert not isinstance(caught.value, mm.AllAttemptsFailed)  # one attempt: itself
        assert mock.count("a") == 1


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_with_options_raw_response_and_models_async(
    serve: Callable[..., Mock], fmt: Any, backend: str
) -> None:
    mock = serve(a=MockDeployment(fmt, Behavior(text="hi")))

    async def go() -> None:
        async with mm.AsyncClient(
            deployments=[mock.dep("a")], retry=FAST_RETRY, transport=async_transport()
        ) as client:
            raw = await client.chat.completions.with_raw_response.create(
                model="m", messages=[{"role": "user", "content": "x"}]
            )
            assert raw.status_code == 200 and raw.parse().choices[0].message.content == "hi"
            page = await client.models.list()
            assert [m.id async for m in page] == ["m"]
            fast = client.with_options(max_retries=0)
            await fast.query("x", model="m")
            await fast.aclose()
            await client.query("x", model="m")

    anyio.run(go, backend=backend)


@pytest.mark.parametrize("kind", ["object", "dump", "dict"])
def test_chat_request_built_directly_converts(
    serve: Callable[..., Mock], fmt: Any, kind: str
) -> None:
    """``ChatRequest(messages=[...])`` takes the same shapes as ``query`` (and converts them
    as ``Message.from_openai`` does), so a request built by hand reaches every wire format."""
    mock = _server(serve, fmt)
    with mm.Client(
        deployments=[mock.dep("a")], retry=FAST_RETRY, transport=sync_transport()
    ) as client:
        first = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "Weather in Paris?"}], tools=TOOLS
        )
        calls = first.choices[0].message.tool_calls
        assert calls
        call_id = calls[0].id
        request = mm.ChatRequest(model="m", messages=_turns(first, kind), tools=TOOLS)
        assert request.messages == [mm.Message.from_openai(m) for m in _turns(first, kind)]
        client.query(request)
        _check_round_trip(fmt, mock.body("a"), call_id)
        image = {"type": "image_url", "image_url": {"url": PNG, "detail": "low"}}
        vision = mm.ChatRequest(
            model="m",
            messages=[{"role": "user", "content": [{"type": "text", "text": "?"}, image]}],
        )
        (part,) = [p for p in vision.messages[0].content or () if isinstance(p, mm.ImagePart)]
        assert part.detail == "low" and part.url == PNG
        with pytest.raises(ValueError, match="function_call"):
            mm.ChatRequest(
                model="m", messages=[{"role": "assistant", "function_call": {"name": "f"}}]
            )
