"""Differential: the same programs, written for the official ``openai`` package, run through
``openai.OpenAI(base_url=<mock OpenAI deployment>)`` and through ``multimodel.Client``'s
``chat.completions`` in front of each wire format; the results' ``model_dump()`` must match
(ids, timestamps and the serving model's name aside).

The programs only use what the SDK offers: a multi-turn tool loop that appends the returned
message object, vision input, a stream read inside ``with``, ``stream_options.include_usage``,
``with_raw_response``, and error handling by the SDK's exception names (a 429 and a 503 after
the retries, a timeout caught as ``APIConnectionError``). The async programs run the same
way on ``openai.AsyncOpenAI`` and ``multimodel.AsyncClient``, on asyncio and trio.
"""

from __future__ import annotations

import json
import types
from collections.abc import Callable
from typing import Any, cast

import pytest

import multimodel as mm
from multimodel.testing import Behavior, MockDeployment, MockUsage

from .conftest import FAST_RETRY, KEY, Mock, async_transport, sync_transport

openai = pytest.importorskip("openai")

USAGE = MockUsage(input_tokens=12, output_tokens=7)
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

Program = Callable[[Any, types.SimpleNamespace], Any]


# -- the programs: plain OpenAI SDK code ------------------------------------------------------


def tool_loop(client: Any, errors: types.SimpleNamespace) -> Any:
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    out = []
    for _ in range(2):
        completion = client.chat.completions.create(model="m", messages=messages, tools=TOOLS)
        out.append(completion.model_dump())
        message = completion.choices[0].message
        messages.append(message)  # the SDK's own object, appended as it is
        for call in message.tool_calls or []:
            args = json.loads(call.function.arguments)
            messages.append(
                {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"c": args})}
            )
    return out


def vision(client: Any, errors: types.SimpleNamespace) -> Any:
    content = [
        {"type": "text", "text": "What is in this image?"},
        {"type": "image_url", "image_url": {"url": PNG, "detail": "low"}},
    ]
    completion = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": content}], max_tokens=50
    )
    return completion.model_dump()


def stream_in_with(client: Any, errors: types.SimpleNamespace) -> Any:
    with client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], stream=True
    ) as stream:
        return [chunk.model_dump() for chunk in stream]


def stream_with_usage(client: Any, errors: types.SimpleNamespace) -> Any:
    stream = client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk.model_dump() for chunk in stream]
    stream.close()
    return chunks


def raw_response(client: Any, errors: types.SimpleNamespace) -> Any:
    raw = client.chat.completions.with_raw_response.create(
        model="m", messages=[{"role": "user", "content": "hi"}]
    )
    return {
        "status": raw.status_code,
        "json": raw.headers.get("content-type", "").startswith("application/json"),
        "completion": raw.parse().model_dump(),
    }


def error_handling(client: Any, errors: types.SimpleNamespace) -> Any:
    try:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    except errors.RateLimitError as exc:
        return {
            "caught": "RateLimitError",
            "status": exc.status_code,
            "retry_after": exc.response.headers.get("retry-after"),
            "api_status_error": isinstance(exc, errors.APIStatusError),
        }
    except errors.APIError as exc:  # pragma: no cover - a failure shows the type
        return {"caught": type(exc).__name__}
    return {"caught": None}


def server_error(client: Any, errors: types.SimpleNamespace) -> Any:
    """A 503 after the retries: the SDK's ``InternalServerError`` (every status >= 500)."""
    try:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    except errors.InternalServerError as exc:
        return {
            "caught": "InternalServerError",
            "status": exc.status_code,
            "api_status_error": isinstance(exc, errors.APIStatusError),
        }
    except errors.APIError as exc:  # pragma: no cover - a failure shows the type
        return {"caught": type(exc).__name__}
    return {"caught": None}


def timeout(client: Any, errors: types.SimpleNamespace) -> Any:
    """A timeout is caught by ``except APIConnectionError``, and is an ``APITimeoutError``."""
    try:
        client.with_options(timeout=0.3, max_retries=0).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}]
        )
    except errors.APIConnectionError as exc:
        return {"caught": "APIConnectionError", "timeout": isinstance(exc, errors.APITimeoutError)}
    except errors.APIError as exc:  # pragma: no cover - a failure shows the type
        return {"caught": type(exc).__name__}
    return {"caught": None}


PROGRAMS: dict[str, tuple[Program, Behavior]] = {
    "tool_loop": (tool_loop, Behavior(tool_calls=[("weather", {"city": "Paris"})], usage=USAGE)),
    "vision": (vision, Behavior(text="A tiny image", usage=USAGE)),
    "stream_in_with": (stream_in_with, Behavior(text="alpha beta gamma", usage=USAGE)),
    "stream_with_usage": (stream_with_usage, Behavior(text="alpha beta gamma", usage=USAGE)),
    "raw_response": (raw_response, Behavior(text="hello", usage=USAGE)),
    "error_handling": (
        error_handling,
        Behavior(fail_rate=1.0, fail_status=429, retry_after=0.001),
    ),
    "server_error": (server_error, Behavior(fail_rate=1.0, fail_status=503, retry_after=0.001)),
    "timeout": (timeout, Behavior(latency=2.0)),
}

SDK_ERRORS = types.SimpleNamespace(
    RateLimitError=openai.RateLimitError,
    InternalServerError=openai.InternalServerError,
    APIConnectionError=openai.APIConnectionError,
    APITimeoutError=openai.APITimeoutError,
    APIStatusError=openai.APIStatusError,
    APIError=openai.APIError,
)
MM_ERRORS = types.SimpleNamespace(
    RateLimitError=mm.errors.RateLimitError,
    InternalServerError=mm.errors.InternalServerError,
    APIConnectionError=mm.errors.APIConnectionError,
    APITimeoutError=mm.errors.APITimeoutError,
    APIStatusError=mm.errors.APIStatusError,
    APIError=mm.errors.APIError,
)


# -- comparison ---------------------------------------------------------------------------


_VOLATILE = {"id", "created", "system_fingerprint", "model", "multimodel", "service_tier"}


def normalize(value: Any, ids: dict[str, str] | None = None) -> Any:
    """Drop ids, timestamps and ``None``/empty-detail noise; number tool-call ids by first
    appearance within each top-level item (each wire format makes its own)."""
    if ids is None and isinstance(value, list):
        return [normalize(v, {}) for v in value]
    ids = {} if ids is None else ids
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "multimodel":
                continue  # our addition: the normalized response
            if key in _VOLATILE and not isinstance(item, dict | list):
                if key == "id" and isinstance(item, str) and _is_call_id(value):
                    out[key] = ids.setdefault(item, f"call_{len(ids)}")
                continue
            if key == "tool_call_id" and isinstance(item, str):
                out[key] = ids.setdefault(item, f"call_{len(ids)}")
                continue
            item = normalize(item, ids)
            if (
                item is None
                or item == {}
                or (str(key).endswith("_details") and not any_value(item))
            ):
                continue
            out[key] = item
        return out
    if isinstance(value, list):
        return [normalize(v, ids) for v in value]
    return value


def _is_call_id(holder: dict[str, Any]) -> bool:
    return holder.get("type") == "function" or "function" in holder


def any_value(details: Any) -> bool:
    return isinstance(details, dict) and any(v for v in details.values())


def _sdk(mock: Mock) -> Any:
    return openai.OpenAI(
        base_url=mock.server.base_url("sdk"),
        api_key=KEY,
        max_retries=2,
    )


def _ours(mock: Mock) -> mm.Client:
    return mm.Client(deployments=[mock.dep("ours")], retry=FAST_RETRY, transport=sync_transport())


@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_same_results_as_the_openai_sdk(serve: Callable[..., Mock], fmt: Any, program: str) -> None:
    run, behavior = PROGRAMS[program]
    mock = serve(
        sdk=MockDeployment("openai", behavior, model="m"),
        ours=MockDeployment(fmt, behavior, model="m"),
    )
    with _sdk(mock) as sdk_client:
        expected = normalize(run(sdk_client, SDK_ERRORS))
    with _ours(mock) as client:
        got = normalize(run(client, MM_ERRORS))
    assert got == expected
    if program in ("error_handling", "server_error"):
        assert mock.count("sdk") == mock.count("ours") == 3  # both retried twice


async def async_program(client: Any, errors: types.SimpleNamespace) -> Any:
    """A tool turn, then a streamed answer inside ``async with`` with the usage chunk."""
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = await client.chat.completions.create(model="m", messages=messages, tools=TOOLS)
    messages.append(first.choices[0].message)
    for call in first.choices[0].message.tool_calls or []:
        messages.append({"role": "tool", "tool_call_id": call.id, "content": "sunny"})
    # Streamed tool calls are fragmented as each wire format does it: compare what a caller
    # accumulates (the SDK's documented way), not the fragments.
    text, finish, usage = "", None, None
    calls: dict[int, dict[str, Any]] = {}
    async with await client.chat.completions.create(
        model="m", messages=messages, stream=True, stream_options={"include_usage": True}
    ) as stream:
        async for chunk in stream:
            if chunk.usage is not None:
                usage = chunk.usage.model_dump()
            for choice in chunk.choices:
                text += choice.delta.content or ""
                finish = choice.finish_reason or finish
                for part in choice.delta.tool_calls or []:
                    call = calls.setdefault(part.index, {"name": "", "arguments": ""})
                    if part.function is not None:
                        call["name"] += part.function.name or ""
                        call["arguments"] += part.function.arguments or ""
    for call in calls.values():
        call["arguments"] = json.loads(call["arguments"])
    return [first.model_dump(), {"text": text, "calls": calls, "finish": finish, "usage": usage}]


# The SDK leaves its own SSE generators to the garbage collector; trio warns about them.
@pytest.mark.filterwarnings("ignore:Async generator 'openai.:ResourceWarning")
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_same_results_as_the_async_openai_sdk(
    serve: Callable[..., Mock], fmt: Any, backend: str
) -> None:
    import anyio

    behavior = Behavior(tool_calls=[("weather", {"city": "Paris"})], usage=USAGE)
    mock = serve(
        sdk=MockDeployment("openai", behavior, model="m"),
        ours=MockDeployment(fmt, behavior, model="m"),
    )

    async def go() -> tuple[Any, Any]:
        async with openai.AsyncOpenAI(
            base_url=mock.server.base_url("sdk"), api_key=KEY, max_retries=2
        ) as sdk_client:
            expected = await async_program(sdk_client, SDK_ERRORS)
        async with mm.AsyncClient(
            deployments=[mock.dep("ours")], retry=FAST_RETRY, transport=async_transport()
        ) as client:
            got = await async_program(client, MM_ERRORS)
        return expected, got

    expected, got = anyio.run(go, backend=backend)
    assert normalize(got) == normalize(expected)


# -- the same programs on the async clients --------------------------------------------------


async def vision_async(client: Any, errors: types.SimpleNamespace) -> Any:
    content = [
        {"type": "text", "text": "What is in this image?"},
        {"type": "image_url", "image_url": {"url": PNG, "detail": "low"}},
    ]
    completion = await client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": content}], max_tokens=50
    )
    return completion.model_dump()


async def stream_in_with_async(client: Any, errors: types.SimpleNamespace) -> Any:
    async with await client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], stream=True
    ) as stream:
        return [chunk.model_dump() async for chunk in stream]


async def stream_with_usage_async(client: Any, errors: types.SimpleNamespace) -> Any:
    stream = await client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk.model_dump() async for chunk in stream]
    await stream.close()
    return chunks


async def raw_response_async(client: Any, errors: types.SimpleNamespace) -> Any:
    raw = await client.chat.completions.with_raw_response.create(
        model="m", messages=[{"role": "user", "content": "hi"}]
    )
    return {
        "status": raw.status_code,
        "json": raw.headers.get("content-type", "").startswith("application/json"),
        "completion": raw.parse().model_dump(),
    }


async def errors_async(clients: dict[str, Any], errors: types.SimpleNamespace) -> Any:
    """A 429 and a 503 after the retries, then a timeout, each caught by the SDK's names.
    ``clients`` maps each model to the client that serves it (the SDK has one base_url per
    client; multimodel one client for the three)."""
    messages = [{"role": "user", "content": "hi"}]
    caught: list[tuple[str, Any]] = []
    for model in ("limited", "down", "slow"):
        client = clients[model]
        if model == "slow":
            client = client.with_options(timeout=0.3, max_retries=0)
        try:
            await client.chat.completions.create(model=model, messages=messages)
        except errors.RateLimitError as exc:
            caught.append(("RateLimitError", exc.status_code))
        except errors.InternalServerError as exc:
            caught.append(("InternalServerError", exc.status_code))
        except errors.APIConnectionError as exc:
            caught.append(("APIConnectionError", isinstance(exc, errors.APITimeoutError)))
    return caught


ASYNC_PROGRAMS: dict[str, Callable[[Any, types.SimpleNamespace], Any]] = {
    "vision": vision_async,
    "stream_in_with": stream_in_with_async,
    "stream_with_usage": stream_with_usage_async,
    "raw_response": raw_response_async,
    "errors": errors_async,
}
ERROR_BEHAVIORS = {
    "limited": Behavior(fail_rate=1.0, fail_status=429, retry_after=0.001),
    "down": Behavior(fail_rate=1.0, fail_status=503, retry_after=0.001),
    "slow": Behavior(latency=2.0),
}


@pytest.mark.filterwarnings("ignore:Async generator 'openai.:ResourceWarning")
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("program", sorted(ASYNC_PROGRAMS))
def test_same_results_as_the_async_openai_sdk_for_every_program(
    serve: Callable[..., Mock], fmt: Any, backend: str, program: str
) -> None:
    """Vision, streams in ``async with`` and with the usage chunk, ``with_raw_response`` and
    the SDK's exception names, on ``AsyncOpenAI`` and ``AsyncClient`` alike."""
    import anyio

    run = ASYNC_PROGRAMS[program]
    behavior = Behavior(text="alpha beta gamma", usage=USAGE)
    if program == "errors":
        mock = serve(
            **{
                f"{side}-{model}": MockDeployment(wire, b, model=model)
                for model, b in ERROR_BEHAVIORS.items()
                for side, wire in (("sdk", cast(Any, "openai")), ("ours", fmt))
            }
        )
        ours = [mock.dep(f"ours-{model}", model=model) for model in ERROR_BEHAVIORS]
    else:
        mock = serve(
            sdk=MockDeployment("openai", behavior, model="m"),
            ours=MockDeployment(fmt, behavior, model="m"),
        )
        ours = [mock.dep("ours")]

    def sdk_client(name: str) -> Any:
        return openai.AsyncOpenAI(base_url=mock.server.base_url(name), api_key=KEY, max_retries=2)

    async def go() -> tuple[Any, Any]:
        async with mm.AsyncClient(
            deployments=ours, retry=FAST_RETRY, transport=async_transport()
        ) as client:
            if program == "errors":
                sdk_clients = {model: sdk_client(f"sdk-{model}") for model in ERROR_BEHAVIORS}
                expected = await run(sdk_clients, SDK_ERRORS)
                for each in sdk_clients.values():
                    await each.close()
                got = await run(dict.fromkeys(ERROR_BEHAVIORS, client), MM_ERRORS)
            else:
                async with sdk_client("sdk") as sdk:
                    expected = await run(sdk, SDK_ERRORS)
                got = await run(client, MM_ERRORS)
        return expected, got

    expected, got = anyio.run(go, backend=backend)
    assert normalize(got) == normalize(expected)
    if program == "errors":
        assert got == [
            ("RateLimitError", 429),
            ("InternalServerError", 503),
            ("APIConnectionError", True),
        ]
        for model, attempts in (("limited", 3), ("down", 3), ("slow", 1)):
            assert mock.count(f"sdk-{model}") == mock.count(f"ours-{model}") == attempts
