"""OpenAI parameters on the other wire formats: refused by ``unsupported_params="error"``, and
``reasoning_effort`` translated to Anthropic's and Gemini's thinking settings.

Every check reads the body the mock server received (or that it received nothing), on the sync
client and the async client on asyncio and trio (the ``runner`` fixture).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import multimodel as mm
from multimodel.openai_compat import ChoiceLogprobs
from multimodel.testing import Behavior, MockDeployment

from .conftest import KEY, AsyncRunner, Mock, SyncRunner

Runner = SyncRunner | AsyncRunner
REFUSE = {"unsupported_params": "error"}


def test_refused_before_anything_is_sent(
    serve: Callable[..., Mock], fmt: Any, runner: Runner
) -> None:
    mock = serve(a=MockDeployment(fmt))
    out = runner.query([mock.dep("a")], options=REFUSE, logprobs=True, top_logprobs=2)
    if fmt == "openai":  # OpenAI's own parameters: sent as they are
        out.ok()
        assert mock.body("a")["logprobs"] is True and mock.body("a")["top_logprobs"] == 2
        return
    assert isinstance(out.error, mm.InvalidRequestError)
    message = str(out.error)
    for part in ("'logprobs'", "'top_logprobs'", fmt, "deployment 'a'", "extra_body"):
        assert part in message
    assert out.error.field == "logprobs"
    assert mock.count("a") == 0


def test_translated_parameters_are_not_refused(
    serve: Callable[..., Mock], fmt: Any, runner: Runner
) -> None:
    mock = serve(a=MockDeployment(fmt))
    with warnings.catch_warnings():
        warnings.simplefilter("error", mm.errors.DroppedParameterWarning)
        params: dict[str, Any] = {"reasoning_effort": "low"}
        if fmt != "anthropic":  # Gemini translates the penalties
            params["frequency_penalty"] = 0.5
        runner.query([mock.dep("a")], options=REFUSE, **params).ok()
    body = mock.body("a")
    if fmt == "gemini":
        assert body["generationConfig"]["frequencyPenalty"] == 0.5
    elif fmt == "openai":
        assert body["reasoning_effort"] == "low" and body["frequency_penalty"] == 0.5


def test_a_fallback_of_another_format_is_checked_up_front(
    serve: Callable[..., Mock], runner: Runner
) -> None:
    """The primary could take ``logprobs``; its fallback could not. The call is refused before
    the primary is tried, not after it failed: the outcome does not depend on routing."""
    mock = serve(
        a=MockDeployment("openai", Behavior(fail_rate=1.0, fail_status=429)),
        b=MockDeployment("anthropic"),
    )
    deployments = [mock.dep("a"), mock.dep("b", model="n")]
    options = {**REFUSE, "fallbacks": {"m": ["n"]}}
    out = runner.query(deployments, options=options, logprobs=True)
    assert isinstance(out.error, mm.InvalidRequestError)
    assert "anthropic (deployment 'b', model group 'n')" in str(out.error)
    assert mock.count("a") == 0 and mock.count("b") == 0
    # The default drops it: the primary fails, the fallback answers without it.
    from multimodel.providers import _params

    _params._DROPPED.clear()  # warnings are once per process and provider
    with pytest.warns(mm.errors.DroppedParameterWarning):
        out = runner.query(deployments, options={"fallbacks": {"m": ["n"]}}, logprobs=True)
    out.ok()
    assert mock.count("b") == 1 and "logprobs" not in mock.body("b")


FIELDS: dict[str, Any] = {
    "seed": 3,
    "metadata": {"run": "r1"},
    "parallel_tool_calls": False,
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
}
# What each wire format cannot express of FIELDS (the rest is translated).
NOT_EXPRESSIBLE = {"openai": [], "anthropic": ["seed", "metadata"], "gemini": ["metadata", "parallel_tool_calls"]}  # fmt: skip


def test_fields_without_an_equivalent_follow_the_same_rule(
    serve: Callable[..., Mock], fmt: Any, runner: Runner
) -> None:
    """``seed``, ``metadata`` and ``parallel_tool_calls`` have fields of their own in a
    request, but the rule is the OpenAI parameters': translated where the format has them,
    otherwise dropped with the one warning, or refused up front by ``"error"``."""
    from multimodel.providers import _params

    _params._DROPPED.clear()  # warnings are once per process and provider
    mock = serve(a=MockDeployment(fmt))
    missing = NOT_EXPRESSIBLE[fmt]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        runner.query([mock.dep("a")], **FIELDS).ok()
    dropped = [str(w.message) for w in record if w.category is mm.errors.DroppedParameterWarning]
    if missing:
        assert len(dropped) == 1 and all(f"'{name}'" in dropped[0] for name in missing)
    else:
        assert dropped == []
    body = mock.body("a")
    if fmt == "openai":  # OpenAI's own API: all three as they are
        assert body["seed"] == 3 and body["metadata"] == {"run": "r1"}
        assert body["parallel_tool_calls"] is False
    elif fmt == "anthropic":
        assert "seed" not in body and "metadata" not in body
        assert body["tool_choice"]["disable_parallel_tool_use"] is True
    else:
        assert body["generationConfig"]["seed"] == 3
        assert "metadata" not in body and "parallel" not in json.dumps(body).lower()

    out = runner.query([mock.dep("a")], options=REFUSE, **FIELDS)
    if not missing:
        out.ok()
        return
    assert isinstance(out.error, mm.InvalidRequestError)
    assert all(f"'{name}'" in str(out.error) for name in missing)
    assert mock.count("a") == 1  # the refused call sent nothing


def test_metadata_reaches_only_openais_own_api(serve: Callable[..., Mock], runner: Runner) -> None:
    """An OpenAI-compatible server other than OpenAI's and Azure's may refuse ``metadata``:
    it is dropped with the warning there, as on another format."""
    from multimodel.providers import _params

    _params._DROPPED.clear()
    mock = serve(a=MockDeployment("openai"))
    groq = mm.Deployment(
        model="m", provider="groq", api_key=KEY, base_url=mock.server.base_url("a")
    )
    with pytest.warns(mm.errors.DroppedParameterWarning, match="'metadata'.*groq"):
        runner.query([groq], metadata={"run": "r1"}).ok()
    assert "metadata" not in mock.body("a")
    out = runner.query([groq], options=REFUSE, metadata={"run": "r1"})
    assert isinstance(out.error, mm.InvalidRequestError) and out.error.field == "metadata"


def test_the_setting_is_checked() -> None:
    deployment = mm.Deployment(model="m", provider="openai", api_key=KEY)
    with pytest.raises(mm.ConfigError, match="unsupported_params"):
        mm.Client([deployment], unsupported_params="refuse")  # type: ignore[arg-type]
    with mm.Client([deployment], config={"unsupported_params": "error"}) as client:
        assert client.config.unsupported_params == "error"
    with pytest.raises(mm.ConfigError, match="did you mean 'unsupported_params'"):
        mm.ClientConfig(deployments=[deployment], unsupported_param="error")  # type: ignore[call-arg]


# -- reasoning_effort ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("effort", "max_tokens", "thinking", "sent_max"),
    [
        ("minimal", None, {"type": "enabled", "budget_tokens": 1024}, 4096),
        ("low", 8000, {"type": "enabled", "budget_tokens": 1024}, 8000),
        ("medium", None, {"type": "enabled", "budget_tokens": 2048}, 4096),
        ("high", 3000, {"type": "enabled", "budget_tokens": 4096}, 7096),  # budget added
        ("none", 100, None, 100),
    ],
)
def test_reasoning_effort_on_anthropic(
    serve: Callable[..., Mock],
    runner: Runner,
    effort: str,
    max_tokens: int | None,
    thinking: Any,
    sent_max: int,
) -> None:
    mock = serve(a=MockDeployment("anthropic"))
    params: dict[str, Any] = {"reasoning_effort": effort}
    if max_tokens is not None:
        params["max_tokens"] = max_tokens
    runner.query([mock.dep("a")], **params).ok()
    body = mock.body("a")
    assert body.get("thinking") == thinking
    assert body["max_tokens"] == sent_max
    assert body["max_tokens"] > (thinking or {}).get("budget_tokens", 0)
    assert "reasoning_effort" not in body


def test_anthropic_thinking_conflicts_are_named(serve: Callable[..., Mock], runner: Runner) -> None:
    mock = serve(a=MockDeployment("anthropic"))
    out = runner.query([mock.dep("a")], reasoning_effort="high", temperature=0.2)
    assert isinstance(out.error, mm.InvalidRequestError) and out.error.field == "temperature"
    assert mock.count("a") == 0
    out = runner.query([mock.dep("a")], reasoning_effort="extreme")
    assert isinstance(out.error, mm.InvalidRequestError)
    assert "'extreme'" in str(out.error) and "'high'" in str(out.error)
    assert mock.count("a") == 0


def test_anthropic_structured_output_with_thinking_is_not_a_forced_tool(
    serve: Callable[..., Mock], runner: Runner
) -> None:
    """Anthropic refuses a forced tool call with thinking on: the schema goes in the system
    prompt instead."""
    mock = serve(a=MockDeployment("anthropic", Behavior(text='{"x": 1}')))
    schema = {"type": "object", "properties": {"x": {"type": "integer"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}
    runner.query([mock.dep("a")], reasoning_effort="low", response_format=fmt).ok()
    body = mock.body("a")
    assert body["thinking"]["budget_tokens"] == 1024
    assert "tool_choice" not in body and "tools" not in body
    assert "answer" in body["system"]


@pytest.mark.parametrize(
    ("model", "effort", "config"),
    [
        ("gemini-2.5-flash", "none", {"thinkingBudget": 0}),
        ("gemini-2.5-flash", "minimal", {"thinkingBudget": 128}),
        ("gemini-2.5-pro", "low", {"thinkingBudget": 1024}),
        ("gemini-2.5-pro", "medium", {"thinkingBudget": 2048}),
        ("gemini-2.5-pro", "high", {"thinkingBudget": 4096}),
        ("gemini-3-pro-preview", "low", {"thinkingLevel": "low"}),
        ("models/gemini-3-flash", "medium", {"thinkingLevel": "medium"}),
        ("gemini-3-flash", "none", {"thinkingLevel": "minimal"}),
    ],
)
def test_reasoning_effort_on_gemini(
    serve: Callable[..., Mock], runner: Runner, model: str, effort: str, config: Any
) -> None:
    mock = serve(a=MockDeployment("gemini"))
    deployment = mock.dep("a").model_copy(update={"provider_model": model})
    runner.query([deployment], reasoning_effort=effort).ok()
    body = mock.body("a")
    assert body["generationConfig"]["thinkingConfig"] == config
    assert "reasoning_effort" not in body


def test_reasoning_effort_through_the_facade(serve: Callable[..., Mock], fmt: Any) -> None:
    mock = serve(a=MockDeployment(fmt))
    with mm.Client([mock.dep("a")]) as client:
        client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x"}], reasoning_effort="medium"
        )
    body = mock.body("a")
    expected = {
        "openai": ("reasoning_effort", "medium"),
        "anthropic": ("thinking", {"type": "enabled", "budget_tokens": 2048}),
        "gemini": ("generationConfig", {"thinkingConfig": {"thinkingBudget": 2048}}),
    }[fmt]
    assert body[expected[0]] == expected[1]


# -- what the SDK's objects carry beyond the normalized answer --------------------------------

_LOGPROBS = {
    "content": [
        {
            "token": "Hi",
            "logprob": -0.01,
            "bytes": [72, 105],
            "top_logprobs": [
                {"token": "Hi", "logprob": -0.01, "bytes": [72, 105]},
                {"token": "Hello", "logprob": -4.5, "bytes": None},
            ],
        }
    ],
    "refusal": None,
}
_CHOICE: dict[str, Any] = {
    "index": 0,
    "message": {"role": "assistant", "content": "Hi", "refusal": None},
    "logprobs": _LOGPROBS,
    "finish_reason": "stop",
}
_BODY: dict[str, Any] = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "system_fingerprint": "fp_1",
    "service_tier": "default",
    "choices": [_CHOICE],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}


def _answering(body: dict[str, Any], sent: list[httpx.Request]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json=body)

    return httpx.MockTransport(handle)


def _deployment() -> mm.Deployment:
    return mm.Deployment(model="m", provider="openai", api_key=KEY, base_url="https://a.test/v1")


def _same_as_the_sdk(completion: Any) -> None:
    openai = pytest.importorskip("openai")
    sdk = openai.types.chat.ChatCompletion.model_validate(_BODY)
    assert completion.choices[0].logprobs.model_dump() == sdk.choices[0].logprobs.model_dump()
    assert completion.choices[0].logprobs.content[0].top_logprobs[1].token == "Hello"
    assert completion.system_fingerprint == sdk.system_fingerprint == "fp_1"
    assert completion.service_tier == sdk.service_tier == "default"
    message, sdk_message = completion.choices[0].message, sdk.choices[0].message
    assert message.audio is sdk_message.audio is None
    assert message.function_call is sdk_message.function_call is None


def test_logprobs_and_the_fingerprint_reach_the_completion_as_the_sdk_reads_them() -> None:
    sent: list[httpx.Request] = []
    with mm.Client([_deployment()], transport=_answering(_BODY, sent)) as client:
        completion = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], logprobs=True, top_logprobs=2
        )
        _same_as_the_sdk(completion)
        assert json.loads(sent[0].content)["top_logprobs"] == 2
        # another provider's answer (no such fields): None, as the SDK has them unset
        plain = {k: v for k, v in _BODY.items() if k not in ("system_fingerprint", "service_tier")}
        plain["choices"] = [{k: v for k, v in _CHOICE.items() if k != "logprobs"}]
    with mm.Client([_deployment()], transport=_answering(plain, sent)) as client:
        bare = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x"}]
        )
    assert bare.choices[0].logprobs is None and bare.system_fingerprint is None


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_logprobs_reach_the_async_completion_and_close_is_the_sdks(backend: str) -> None:
    import anyio

    async def go() -> None:
        client = mm.AsyncClient([_deployment()], transport=_answering(_BODY, []))
        completion = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], logprobs=True
        )
        _same_as_the_sdk(completion)
        assert not client.is_closed()
        await client.close()  # AsyncOpenAI's spelling of aclose()
        assert client.is_closed()
        with pytest.raises(mm.errors.ClientClosed):
            await client.query("again")

    anyio.run(go, backend=backend)


def _token(token: str, logprob: float) -> dict[str, Any]:
    alternative = {"token": token.upper(), "logprob": logprob - 2, "bytes": None}
    return {
        "token": token,
        "logprob": logprob,
        "bytes": list(token.encode()),
        "top_logprobs": [{"token": token, "logprob": logprob, "bytes": list(token.encode())}]
        + [alternative],
    }


def _stream_body() -> bytes:
    def event(delta: dict[str, Any], logprobs: Any = None, finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
        chunk = {
            "id": "chatcmpl-s",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "system_fingerprint": "fp_1",
            "choices": [choice],
        }
        return b"data: " + json.dumps(chunk).encode() + b"\n\n"

    return b"".join(
        [
            event({"role": "assistant", "content": ""}),
            event({"content": "Hi"}, {"content": [_token("Hi", -0.01)], "refusal": None}),
            event({"content": " there"}, {"content": [_token(" there", -0.5)], "refusal": None}),
            event({}, None, "stop"),
            b"data: [DONE]\n\n",
        ]
    )


def _streaming(sent: list[httpx.Request]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        headers = {"content-type": "text/event-stream"}
        return httpx.Response(200, headers=headers, content=_stream_body())

    return httpx.MockTransport(handle)


def test_a_streams_logprobs_reach_its_chunks_as_the_sdk_reads_them() -> None:
    openai = pytest.importorskip("openai")
    messages = [{"role": "user", "content": "hi"}]
    sdk = openai.OpenAI(
        api_key=KEY,
        base_url="https://a.test/v1",
        http_client=httpx.Client(transport=_streaming([])),
    )
    expected = [
        c.choices[0].logprobs.model_dump()
        for c in sdk.chat.completions.create(
            model="m", messages=messages, stream=True, logprobs=True, top_logprobs=2
        )
        if c.choices and c.choices[0].logprobs is not None
    ]
    assert len(expected) == 2
    sent: list[httpx.Request] = []
    with mm.Client([_deployment()], transport=_streaming(sent)) as client:
        with client.chat.completions.create(
            model="m", messages=messages, stream=True, logprobs=True, top_logprobs=2
        ) as stream:
            chunks = list(stream)
        assert stream.response is not None and stream.response.status_code == 200
        assert stream.response.headers["content-type"] == "text/event-stream"
        parsed = [c.choices[0].logprobs for c in chunks if c.choices]
        assert all(isinstance(p, ChoiceLogprobs | None) for p in parsed)
        assert [p.model_dump() for p in parsed if isinstance(p, ChoiceLogprobs)] == expected
        final = stream.get_final_completion().choices[0].logprobs
        assert isinstance(final, ChoiceLogprobs) and final.model_dump() == {
            "content": [e["content"][0] for e in expected],
            "refusal": None,
        }
        # the native stream carries them as sent
        with client.stream("hi", logprobs=True) as native:
            raw = [c.logprobs for c in native if c.logprobs is not None]
        assert [r["content"][0]["token"] for r in raw] == ["Hi", " there"]
        assert native.response is not None and native.response.text == "Hi there"
    assert json.loads(sent[0].content)["logprobs"] is True


@pytest.mark.parametrize("messages", [None, "hi", {"role": "user", "content": "hi"}])
def test_messages_that_are_not_a_list_are_named(messages: Any) -> None:
    sent: list[httpx.Request] = []
    with mm.Client([_deployment()], transport=_answering(_BODY, sent)) as client:
        with pytest.raises(mm.InvalidRequestError) as exc:
            client.chat.completions.create(model="m", messages=messages)
    assert exc.value.field == "messages" and "a list of messages" in str(exc.value)
    assert sent == []
