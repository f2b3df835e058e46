"""End-to-end, non-streaming: every wire format, both clients, real sockets.

Each table runs for format in (openai, anthropic, gemini) x runner in (sync, asyncio, trio):
the runner (``conftest.py``) builds the client, sends the call to a ``MockProviderServer`` and
returns a normalized ``Outcome``.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

import multimodel as mm
from multimodel import errors
from multimodel.testing import Behavior, MockDeployment, MockUsage

KEY = "sk-test-e2e-0123456789"

pytestmark = [
    # The mock model "m" has no catalog price (cost None): not what these tests are about.
    pytest.mark.filterwarnings("ignore::multimodel.errors.PricingWarning"),
    # See test_streams_e2e.py: httpcore's nested async generators on trio.
    pytest.mark.filterwarnings("ignore:Async generator 'httpcore.:ResourceWarning"),
]

# Normalized finish reason -> the raw value each format sends.
RAW_FINISH = {
    "stop": {"openai": "stop", "anthropic": "end_turn", "gemini": "STOP"},
    "length": {"openai": "length", "anthropic": "max_tokens", "gemini": "MAX_TOKENS"},
    "content_filter": {"openai": "content_filter", "anthropic": "refusal", "gemini": "SAFETY"},
    "tool_calls": {"openai": "tool_calls", "anthropic": "tool_use", "gemini": "STOP"},
}
REQUEST_ID_PREFIX = {"openai": "req_mock", "anthropic": "req_mock", "gemini": None}

WEATHER = {"city": "Paris", "unit": "celsius", "days": [1, 2], "detail": {"wind": True}}
TIME = {"tz": "Europe/Paris"}
TOOLS = [
    {"name": "get_weather", "parameters": {"type": "object", "properties": {}}},
    {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
]

# --- answers and finish reasons ---------------------------------------------------------------


@dataclass
class Answer:
    name: str
    behavior: Behavior
    finish: str
    usage: dict[str, int] | None = None  # exact normalized usage, when scripted
    served_model: str | None = None


ANSWERS = [
    Answer("text", Behavior(text="The answer is 42."), "stop"),
    Answer(
        "text with cached and reasoning usage",
        Behavior(
            text="Thought hard.",
            usage=MockUsage(
                input_tokens=120, output_tokens=50, cached_tokens=30, reasoning_tokens=20
            ),
        ),
        "stop",
        usage={
            "input_tokens": 120,
            "output_tokens": 50,
            "cache_read_tokens": 30,
            "reasoning_tokens": 20,
        },
    ),
    Answer("served model name reported", Behavior(text="hi"), "stop", served_model="m-2025-01"),
    Answer("length", Behavior(text="cut sh", finish_reason="length"), "length"),
    Answer("content filter", Behavior(text="", finish_reason="content_filter"), "content_filter"),
]


@pytest.mark.parametrize("case", ANSWERS, ids=lambda c: c.name)
def test_answer(case: Answer, fmt: str, runner: Any, serve: Any) -> None:
    mock = serve(d=MockDeployment(format=fmt, behavior=case.behavior, model=case.served_model))  # type: ignore[arg-type]
    r = runner.query(mock.deps("d")).ok()
    assert r.text == (case.behavior.text or "")
    # Anthropic has no content filter stop reason: the mock sends `refusal`, which is one.
    refused = (case.finish, fmt) == ("content_filter", "anthropic")
    assert r.finish_reason == ("refusal" if refused else case.finish)
    assert r.raw_finish_reason == RAW_FINISH[case.finish][fmt]
    assert (r.refusal is not None) == refused
    assert r.model == (case.served_model or "m")
    assert (r.provider, r.deployment) == (fmt, "d")
    assert r.latency > 0
    assert r.tool_calls == []
    if REQUEST_ID_PREFIX[fmt]:
        assert r.request_id and r.request_id.startswith(REQUEST_ID_PREFIX[fmt])
    else:
        assert r.request_id is None
    assert r.usage.input_tokens > 0
    assert r.usage.output_tokens > 0
    if case.usage is not None:
        want = dict(case.usage)
        if fmt == "anthropic":
            want["reasoning_tokens"] = 0  # thinking is billed in output_tokens, not itemized
        assert r.usage.model_dump(include=set(want)) == want
        assert (
            r.usage.uncached_input_tokens
            == case.usage["input_tokens"] - case.usage["cache_read_tokens"]
        )
    assert r.trace.deployments() == ["d"]


def test_anthropic_cache_write_is_part_of_input(runner: Any, serve: Any) -> None:
    usage = MockUsage(input_tokens=100, output_tokens=7, cached_tokens=20, cache_creation_tokens=30)
    mock = serve(d=MockDeployment(format="anthropic", behavior=Behavior(text="x", usage=usage)))
    r = runner.query(mock.deps("d")).ok()
    assert r.usage.input_tokens == 100
    assert (r.usage.cache_read_tokens, r.usage.cache_write_tokens) == (20, 30)
    assert r.usage.uncached_input_tokens == 50
    assert mock.body("d")["messages"][0]["role"] == "user"


# --- tool calls and their replay --------------------------------------------------------------


@dataclass
class Tools:
    name: str
    calls: list[tuple[str, dict[str, Any]]]
    stream: bool = False
    text: str | None = None


TOOL_CASES = [
    Tools("one call", [("get_weather", WEATHER)]),
    Tools(
        "several calls",
        [("get_weather", WEATHER), ("get_time", TIME), ("get_weather", {"city": "Oslo"})],
    ),
    Tools("one call, streamed", [("get_weather", WEATHER)], stream=True),
    Tools("several calls, streamed", [("get_weather", WEATHER), ("get_time", TIME)], stream=True),
    Tools("text and a call", [("get_time", TIME)], text="Let me check."),
]


def check_replay(fmt: str, body: dict[str, Any], calls: list[mm.ToolCall]) -> None:
    """The follow-up body carries the assistant's calls and one result per call, well-formed."""
    if fmt == "openai":
        msgs = body["messages"]
        assistant = msgs[1]
        assert assistant["role"] == "assistant"
        assert [(c["id"], c["type"], c["function"]["name"]) for c in assistant["tool_calls"]] == [
            (c.id, "function", c.name) for c in calls
        ]
        for sent, call in zip(assistant["tool_calls"], calls, strict=True):
            assert json.loads(sent["function"]["arguments"]) == call.parsed_arguments()
        tool_msgs = msgs[2:]
        assert [(m["role"], m["tool_call_id"]) for m in tool_msgs] == [
            ("tool", c.id) for c in calls
        ]
        assert [json.loads(m["content"]) for m in tool_msgs] == [
            {"result": i} for i in range(len(calls))
        ]
    elif fmt == "anthropic":
        msgs = body["messages"]
        assert [m["role"] for m in msgs] == ["user", "assistant", "user"]
        uses = [b for b in msgs[1]["content"] if b["type"] == "tool_use"]
        assert [(b["id"], b["name"], b["input"]) for b in uses] == [
            (c.id, c.name, c.parsed_arguments()) for c in calls
        ]
        results = msgs[2]["content"]
        assert [b["type"] for b in results] == ["tool_result"] * len(calls)
        assert [b["tool_use_id"] for b in results] == [c.id for c in calls]
    else:
        contents = body["contents"]
        assert [c.get("role") for c in contents] == ["user", "model", "user"]
        fc_parts = [p for p in contents[1]["parts"] if "functionCall" in p]
        assert [(p["functionCall"]["name"], p["functionCall"]["args"]) for p in fc_parts] == [
            (c.name, c.parsed_arguments()) for c in calls
        ]
        for part, call in zip(fc_parts, calls, strict=True):
            # The opaque signature the mock minted for this call, replayed byte for byte.
            minted = base64.b64encode(f"mock-thought-signature:{call.name}".encode()).decode()
            assert part["thoughtSignature"] == minted
            assert call.metadata == {"thoughtSignature": minted}
        responses = [p["functionResponse"] for p in contents[2]["parts"]]
        assert [r["name"] for r in responses] == [c.name for c in calls]
        assert [r["response"] for r in responses] == [{"result": i} for i in range(len(calls))]


@pytest.mark.parametrize("case", TOOL_CASES, ids=lambda c: c.name)
def test_tool_calls_and_replay(case: Tools, fmt: str, runner: Any, serve: Any) -> None:
    behavior = Behavior(tool_calls=case.calls, text=case.text, chunks=2)
    mock = serve(d=MockDeployment(format=fmt, behavior=behavior))  # type: ignore[arg-type]
    call = runner.stream if case.stream else runner.query
    out = call(mock.deps("d"), "weather?", tools=TOOLS)
    r = out.ok()
    assert r.finish_reason == "tool_calls"
    assert r.raw_finish_reason == RAW_FINISH["tool_calls"][fmt]
    assert r.text == (case.text or "")
    assert [(c.name, c.parsed_arguments()) for c in r.tool_calls] == case.calls
    ids = [c.id for c in r.tool_calls]
    assert all(ids)
    assert len(set(ids)) == len(ids)
    if case.stream:
        assert "".join(out.texts) == (case.text or "")

    # Replay: the assistant turn as received, then one tool result per call.
    messages: list[Any] = [
        {"role": "user", "content": "weather?"},
        r.message,
        *[
            {
                "role": "tool",
                "tool_call_id": c.id,
                "name": c.name,
                "content": json.dumps({"result": i}),
            }
            for i, c in enumerate(r.tool_calls)
        ],
    ]
    mock.server.set_behavior("d", Behavior(text="It is sunny."))
    follow = runner.query(mock.deps("d"), messages, tools=TOOLS).ok()
    assert follow.text == "It is sunny."
    check_replay(fmt, mock.body("d"), r.tool_calls)


# --- errors -------------------------------------------------------------------------------------


@dataclass
class Failure:
    name: str
    behavior: Behavior
    error: type[BaseException] | None  # None: the call succeeds after retrying
    formats: tuple[str, ...] = ("openai", "anthropic", "gemini")
    max_retries: int = 0
    requests: int = 1  # requests the server received
    status: int | None = None
    sleeps: list[float] = field(default_factory=list)
    retry_after: float | None = None


LEAK = f"Incorrect API key provided: {KEY}. x-api-key: {KEY}"

FAILURES = [
    Failure("400 bad request", Behavior(script=[400]), errors.BadRequestError, status=400),
    Failure(
        "401 authentication (key echoed and redacted)",
        Behavior(script=[401], error_message=LEAK),
        errors.AuthenticationError,
        status=401,
    ),
    Failure("403 permission", Behavior(script=[403]), errors.PermissionDeniedError, status=403),
    Failure("404 not found", Behavior(script=[404]), errors.NotFoundError, status=404),
    Failure(
        "429 raw",
        Behavior(script=[429], retry_after=0.05),
        errors.RateLimited,
        status=429,
        retry_after=0.05,
    ),
    Failure(
        "429 retried after Retry-After then success",
        Behavior(script=[429, 200], retry_after=0.05, text="ok"),
        None,
        max_retries=2,
        requests=2,
        sleeps=[0.05],
    ),
    Failure(
        "429 insufficient_quota is not retried",
        Behavior(script=[429, 200], error_code="insufficient_quota"),
        errors.QuotaExhausted,
        formats=("openai", "anthropic"),
        max_retries=2,
        status=429,
    ),
    Failure("500 raw", Behavior(script=[500]), errors.ServerError, status=500),
    Failure(
        "500 retried then success",
        Behavior(script=[500, 200], text="ok"),
        None,
        max_retries=2,
        requests=2,
        sleeps=[0.001],
    ),
    Failure("503 overloaded", Behavior(script=[503]), errors.Overloaded, status=503),
    Failure(
        "529 overloaded (anthropic)",
        Behavior(script=[529]),
        errors.Overloaded,
        formats=("anthropic",),
        status=529,
    ),
    Failure(
        "529 retried then success (anthropic)",
        Behavior(script=[529, 200], text="ok"),
        None,
        formats=("anthropic",),
        max_retries=2,
        requests=2,
        sleeps=[0.001],
    ),
    Failure(
        "context length exceeded",
        Behavior(script=[400], error_code="context_length_exceeded"),
        errors.ContextLengthExceeded,
        status=400,
    ),
    Failure(
        "context length exceeded is not retried",
        Behavior(script=[400, 200], error_code="context_length_exceeded"),
        errors.ContextLengthExceeded,
        max_retries=2,
        status=400,
    ),
]


@pytest.mark.parametrize(
    ("fmt", "case"),
    [pytest.param(f, c, id=f"{f}-{c.name}") for c in FAILURES for f in c.formats],
)
def test_failure(case: Failure, fmt: str, runner: Any, serve: Any) -> None:
    mock = serve(d=MockDeployment(format=fmt, behavior=case.behavior))  # type: ignore[arg-type]
    out = runner.query(mock.deps("d"), options={"max_retries": case.max_retries})
    assert mock.count("d") == case.requests
    assert out.in_flight == {"d": 0}
    if case.error is None:
        r = out.ok()
        assert r.text == "ok"
        assert r.trace.deployments() == ["d"] * case.requests
        assert r.trace.sleeps == pytest.approx(case.sleeps, abs=0.1)
        if case.sleeps:
            assert all(s >= want for s, want in zip(r.trace.sleeps, case.sleeps, strict=True))
        return
    assert isinstance(out.error, case.error), repr(out.error)  # raw, not AllAttemptsFailed
    err: Any = out.error
    assert err.provider == fmt
    assert err.deployment == "d"
    assert err.status == case.status
    if fmt != "gemini":
        assert err.request_id and err.request_id.startswith("req_mock")
    text = str(err)
    assert KEY not in text
    assert KEY not in repr(err)
    assert "0123456789" not in text
    assert f"{fmt}/d" in text
    if case.retry_after is not None:
        assert err.retry_after == pytest.approx(case.retry_after, abs=0.01)


# --- OpenAI-shaped surface --------------------------------------------------------------------


def test_openai_surface(fmt: str, runner: Any, serve: Any) -> None:
    usage = MockUsage(input_tokens=11, output_tokens=5, cached_tokens=3, reasoning_tokens=2)
    mock = serve(d=MockDeployment(format=fmt, behavior=Behavior(text="one two", usage=usage)))  # type: ignore[arg-type]
    c = runner.compat(mock.deps("d"), stream=False, max_completion_tokens=20).response
    assert c.object == "chat.completion"
    assert c.choices[0].message.content == "one two"
    assert c.choices[0].message.role == "assistant"
    assert c.choices[0].finish_reason == "stop"
    assert (c.usage.prompt_tokens, c.usage.completion_tokens, c.usage.total_tokens) == (11, 5, 16)
    assert c.multimodel.deployment == "d"
    body = mock.body("d")
    sent_max = {
        "openai": body.get("max_completion_tokens", body.get("max_tokens")),
        "anthropic": body.get("max_tokens"),
        "gemini": (body.get("generationConfig") or {}).get("maxOutputTokens"),
    }[fmt]
    assert sent_max == 20


def test_openai_surface_stream(fmt: str, runner: Any, serve: Any) -> None:
    usage = MockUsage(input_tokens=11, output_tokens=5)
    behavior = Behavior(text="one two three", usage=usage)
    mock = serve(d=MockDeployment(format=fmt, behavior=behavior))  # type: ignore[arg-type]
    chunks = runner.compat(
        mock.deps("d"), stream=True, stream_options={"include_usage": True}
    ).chunks
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(ch.delta.content or "" for c in chunks for ch in c.choices)
    assert text == "one two three"
    finishes = [ch.finish_reason for c in chunks for ch in c.choices if ch.finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (11, 5)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_openai_surface_tool_calls(stream: bool, fmt: str, runner: Any, serve: Any) -> None:
    behavior = Behavior(tool_calls=[("get_weather", WEATHER), ("get_time", TIME)])
    mock = serve(d=MockDeployment(format=fmt, behavior=behavior))  # type: ignore[arg-type]
    out = runner.compat(mock.deps("d"), stream=stream, tools=TOOLS)
    calls: dict[int, dict[str, Any]] = {}
    if stream:
        for c in out.chunks:
            for ch in c.choices:
                for d in ch.delta.tool_calls or ():
                    call = calls.setdefault(d.index, {"id": None, "name": None, "args": ""})
                    call["id"] = call["id"] or d.id
                    call["name"] = call["name"] or (d.function and d.function.name)
                    call["args"] += (d.function and d.function.arguments) or ""
        finishes = [ch.finish_reason for c in out.chunks for ch in c.choices if ch.finish_reason]
    else:
        choice = out.response.choices[0]
        for i, tc in enumerate(choice.message.tool_calls):
            assert tc.type == "function"
            calls[i] = {"id": tc.id, "name": tc.function.name, "args": tc.function.arguments}
        assert choice.message.content is None
        finishes = [choice.finish_reason]
    assert [(c["name"], json.loads(c["args"])) for _, c in sorted(calls.items())] == [
        ("get_weather", WEATHER),
        ("get_time", TIME),
    ]
    assert all(c["id"] for c in calls.values())
    assert finishes == ["tool_calls"]


# --- batch ------------------------------------------------------------------------------------


def test_batch_keeps_order_with_mixed_results(fmt: str, runner: Any, serve: Any) -> None:
    mock = serve(
        good=MockDeployment(format=fmt, behavior=Behavior(echo=True, latency=0.01)),  # type: ignore[arg-type]
        bad=MockDeployment(format=fmt, behavior=Behavior(fail_rate=1.0, fail_status=400)),  # type: ignore[arg-type]
    )
    deps = [mock.dep("good"), mock.dep("bad", model="broken")]
    items: list[Any] = [
        "first",
        {"prompt": "second", "model": "broken"},
        "third",
        {"messages": [{"role": "user", "content": "fourth"}], "max_tokens": 9},
        {"prompt": "fifth", "model": "broken"},
        "sixth",
    ]
    results = runner.batch(deps, items, concurrency=4).batch
    assert len(results) == len(items)
    for item, result in zip(items, results, strict=True):
        if isinstance(item, dict) and item.get("model") == "broken":
            assert isinstance(result, errors.BadRequestError), repr(result)
            assert (result.deployment, result.status) == ("bad", 400)
        else:
            assert isinstance(result, mm.ChatResponse), repr(result)
            want = item if isinstance(item, str) else item["messages"][0]["content"]
            assert result.text == want
            assert result.deployment == "good"
    assert mock.count("good") == 4
    assert mock.count("bad") == 2
