"""The scripting model of the mock provider server: what a mock deployment does per request.

A :class:`Behavior` is an immutable description (latency, reply text, tool calls, usage,
failures, broken streams); a :class:`MockDeployment` pairs one with a wire format. The server
keeps one :class:`DeploymentState` per deployment, which turns the behaviour into a
:class:`Decision` for every request (consuming the ``script`` and drawing from the seeded
random generators) and keeps the request log and counters.

Example::

    from multimodel.testing import Behavior, MockDeployment

    flaky = MockDeployment(
        format="openai",
        behavior=Behavior(script=[429, 500, 200], retry_after=0.1, text="fine now"),
    )
    broken_stream = MockDeployment(format="anthropic", behavior=Behavior(drop_after=2))

Use :func:`dataclasses.replace` to derive a behaviour from another one.
"""

from __future__ import annotations

import dataclasses
import math
import random
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "FORMATS",
    "Behavior",
    "Decision",
    "DeploymentState",
    "DeploymentStats",
    "MockDeployment",
    "MockUsage",
    "RecordedRequest",
    "ResolvedUsage",
    "WireFormat",
    "default_deployments",
]

WireFormat = Literal["openai", "anthropic", "gemini"]
FORMATS: tuple[str, ...] = ("openai", "anthropic", "gemini")

#: Script entry that closes the connection without answering.
DROP = "drop"


@dataclass(frozen=True)
class MockUsage:
    """Token counts a mock deployment reports; ``None`` means "derive from the text".

    Counts use OpenAI's conventions and each wire format converts them: ``input_tokens`` is
    the whole prompt *including* ``cached_tokens`` and ``cache_creation_tokens`` (Anthropic's
    ``input_tokens`` is sent without them); ``output_tokens`` *includes* ``reasoning_tokens``
    (Gemini's ``candidatesTokenCount`` is sent without them).
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cache_creation_tokens: int = 0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ValueError(f"MockUsage.{f.name} must be a non-negative int, got {value!r}")

    def resolve(self, prompt_chars: int, output_chars: int) -> ResolvedUsage:
        """Fill in the derived counts (about four characters per token)."""
        inp = self.input_tokens
        if inp is None:
            inp = max(1, math.ceil(prompt_chars / 4)) + self.cached_tokens
            inp += self.cache_creation_tokens
        out = self.output_tokens
        if out is None:
            out = max(1, math.ceil(output_chars / 4)) + self.reasoning_tokens
        return ResolvedUsage(
            input_tokens=inp,
            output_tokens=out,
            cached_tokens=min(self.cached_tokens, inp),
            reasoning_tokens=min(self.reasoning_tokens, out),
            cache_creation_tokens=min(self.cache_creation_tokens, inp),
        )


@dataclass(frozen=True, slots=True)
class ResolvedUsage:
    """Usage with every count known, in OpenAI's conventions (see :class:`MockUsage`)."""

    input_tokens: int
    output_tokens: int
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cache_creation_tokens: int = 0


_DEFAULT_USAGE = MockUsage()


@dataclass(frozen=True)
class Behavior:
    """How a mock deployment answers. Every field has a harmless default.

    Args:
        latency: seconds to wait before answering (errors included).
        latency_jitter: extra uniform random delay in ``[0, latency_jitter]`` seconds.
        text: reply text. ``None`` means ``"Hello from {deployment name}"``, or no text when
            ``tool_calls`` are given (set ``text`` too to get both).
        echo: reply with the text of the last user message instead of ``text``.
        chunks: number of stream chunks the text is split into (default: one per word).
        chunk_interval: seconds between stream chunks.
        tool_calls: ``(name, arguments)`` pairs returned as tool calls, streamed the way the
            provider does it.
        usage: token counts; defaults are derived from the prompt and reply lengths.
        finish_reason: ``"stop"``, ``"length"``, ``"tool_calls"`` or ``"content_filter"``
            (translated per format; Anthropic has no content filter and gets ``refusal``, which
            the client reports as finish reason ``"refusal"``), or a raw provider value sent
            verbatim.
        fail_rate: probability that a request fails with ``fail_status``.
        fail_status: HTTP status of random failures.
        seed: seed of the random generators (failures and jitter); ``None`` = unseeded.
        script: statuses consumed one per request, in order, before the normal behaviour
            applies (e.g. ``[429, 500, 200]``); ``"drop"`` closes the connection unanswered.
        retry_after: seconds sent as ``Retry-After`` on 429/503/529 (Gemini: also as
            ``RetryInfo.retryDelay`` in the body).
        error_code: overrides the provider error type/code of error responses, e.g.
            ``"insufficient_quota"``, ``"context_length_exceeded"``, ``"overloaded_error"``.
        error_message: overrides the error message.
        stream_error_after: streams send this many chunks, then an in-stream error event.
        drop_after: streams send this many chunks, then the socket is closed (no terminal chunk).
        drop_before_response: close the connection without answering.
        stall_after: streams send this many chunks, then hang for ``stall_timeout`` seconds (or
            until the server stops) and close.
        stall_timeout: upper bound of a stall, in seconds.
        omit_done: OpenAI streams end without ``data: [DONE]``.
        refusal: the model declines, saying this: OpenAI sends it as ``message.refusal``
            (streams: ``delta.refusal`` pieces) with no content, Anthropic as ``stop_reason:
            "refusal"`` with it in ``stop_details.explanation``; Gemini has no refusal and
            blocks the answer instead (``finishReason: "SAFETY"``, no text). ``text`` is then
            only what comes before it (default none).

    ``stream_error_after``, ``drop_after`` and ``stall_after`` apply to streaming requests only
    and count content chunks (text pieces, tool-call fragments) after the stream's opening
    events; when several are set the smallest count wins.
    """

    latency: float = 0.0
    latency_jitter: float = 0.0
    text: str | None = None
    echo: bool = False
    chunks: int | None = None
    chunk_interval: float = 0.0
    tool_calls: Sequence[tuple[str, Mapping[str, Any]]] = ()
    usage: MockUsage | None = None
    finish_reason: str | None = None
    fail_rate: float = 0.0
    fail_status: int = 500
    seed: int | None = None
    script: Sequence[int | str] = ()
    retry_after: float | None = None
    error_code: str | None = None
    error_message: str | None = None
    stream_error_after: int | None = None
    drop_after: int | None = None
    drop_before_response: bool = False
    stall_after: int | None = None
    stall_timeout: float = 30.0
    omit_done: bool = False
    refusal: str | None = None

    def __post_init__(self) -> None:
        calls = tuple((str(name), dict(args)) for name, args in self.tool_calls)
        object.__setattr__(self, "tool_calls", calls)
        object.__setattr__(self, "script", tuple(self.script))
        for name in ("latency", "latency_jitter", "chunk_interval"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"Behavior.{name} must be a finite number >= 0, got {value!r}")
        if not 0.0 <= self.fail_rate <= 1.0:
            raise ValueError(f"Behavior.fail_rate must be in [0, 1], got {self.fail_rate!r}")
        if not 400 <= self.fail_status <= 599:
            raise ValueError(f"Behavior.fail_status must be 4xx/5xx, got {self.fail_status!r}")
        if self.chunks is not None and self.chunks < 1:
            raise ValueError(f"Behavior.chunks must be >= 1, got {self.chunks!r}")
        for entry in self.script:
            if entry != DROP and not (isinstance(entry, int) and 200 <= entry <= 599):
                raise ValueError(f"script entries are statuses 200-599 or 'drop', got {entry!r}")
        for name in ("stream_error_after", "drop_after", "stall_after"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"Behavior.{name} must be >= 0, got {value!r}")
        if not (self.stall_timeout > 0 and math.isfinite(self.stall_timeout)):
            raise ValueError("Behavior.stall_timeout must be a finite number > 0")
        if self.retry_after is not None and not (
            self.retry_after >= 0 and math.isfinite(self.retry_after)
        ):
            raise ValueError("Behavior.retry_after must be a finite number >= 0")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Behavior:
        """Build a behaviour from JSON-like data (as in a scenario file).

        ``tool_calls`` items may be ``[name, arguments]`` or ``{"name", "arguments"}``;
        ``usage`` is a mapping of :class:`MockUsage` fields. Unknown keys raise ``ValueError``.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown Behavior keys: {sorted(unknown)}")
        values = dict(data)
        if "tool_calls" in values:
            calls: list[tuple[str, Mapping[str, Any]]] = []
            for item in values["tool_calls"]:
                if isinstance(item, Mapping):
                    calls.append((item["name"], item.get("arguments", {})))
                else:
                    name, args = item
                    calls.append((name, args))
            values["tool_calls"] = calls
        if isinstance(values.get("usage"), Mapping):
            values["usage"] = MockUsage(**values["usage"])
        return cls(**values)

    def stream_cut(self) -> tuple[str, int] | None:
        """The stream interruption to apply: ``(kind, after_chunks)`` or ``None``."""
        cuts = [
            (after, rank, kind)
            for rank, (kind, after) in enumerate(
                (
                    ("error", self.stream_error_after),
                    ("drop", self.drop_after),
                    ("stall", self.stall_after),
                )
            )
            if after is not None
        ]
        if not cuts:
            return None
        after, _, kind = min(cuts)
        return kind, after

    @property
    def usage_spec(self) -> MockUsage:
        """``usage`` or the all-derived default."""
        return self.usage if self.usage is not None else _DEFAULT_USAGE


@dataclass(frozen=True)
class MockDeployment:
    """One mock deployment: a wire format, a behaviour, and optionally a fixed model name.

    Args:
        format: ``"openai"``, ``"anthropic"`` or ``"gemini"``.
        behavior: what it does per request.
        model: model name reported in responses; default: the model the request asked for.
    """

    format: WireFormat
    behavior: Behavior = field(default_factory=Behavior)
    model: str | None = None

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, got {self.format!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MockDeployment:
        """Build from ``{"format": ..., "behavior": {...}, "model": ...}``."""
        unknown = set(data) - {"format", "behavior", "model"}
        if unknown:
            raise ValueError(f"unknown MockDeployment keys: {sorted(unknown)}")
        return cls(
            format=data["format"],
            behavior=Behavior.from_dict(data.get("behavior", {})),
            model=data.get("model"),
        )


def default_deployments() -> dict[str, MockDeployment]:
    """The three default deployments: ``openai-mock``, ``anthropic-mock``, ``gemini-mock``."""
    return {
        "openai-mock": MockDeployment(format="openai"),
        "anthropic-mock": MockDeployment(format="anthropic"),
        "gemini-mock": MockDeployment(format="gemini"),
    }


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """A request the server received.

    ``headers`` names are lowercase; ``body`` is the parsed JSON (``None`` if it was not JSON).
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass(frozen=True, slots=True)
class DeploymentStats:
    """Counters of one deployment.

    ``errors`` counts requests that did not end in a complete success: error statuses, dropped
    connections and interrupted streams. ``max_in_flight`` is the highest concurrency seen.
    """

    requests: int
    errors: int
    streams: int
    in_flight: int
    max_in_flight: int


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one request: ``kind`` is ``"ok"``, ``"error"`` or ``"drop"``."""

    kind: str
    status: int
    delay: float
    behavior: Behavior


class DeploymentState:
    """Run-time state of one deployment (thread-safe): behaviour, script position, log, counters."""

    def __init__(self, name: str, deployment: MockDeployment, max_recorded: int) -> None:
        self.name = name
        self.format: WireFormat = deployment.format
        self.model = deployment.model
        self._lock = threading.Lock()
        self._log: deque[RecordedRequest] = deque(maxlen=max_recorded)
        self._requests = self._errors = self._streams = 0
        self._in_flight = self._max_in_flight = 0
        self._behavior = deployment.behavior
        self._script_pos = 0
        self._fail_rng = random.Random(deployment.behavior.seed)
        self._jitter_rng = random.Random(deployment.behavior.seed)

    @property
    def behavior(self) -> Behavior:
        """The current behaviour."""
        return self._behavior

    def set_behavior(self, behavior: Behavior) -> None:
        """Replace the behaviour; its script and random generators start afresh."""
        with self._lock:
            self._behavior = behavior
            self._script_pos = 0
            self._fail_rng = random.Random(behavior.seed)
            self._jitter_rng = random.Random(behavior.seed)

    def record(self, request: RecordedRequest) -> None:
        """Append to the bounded request log and count the request."""
        with self._lock:
            self._log.append(request)
            self._requests += 1

    def begin(self, stream: bool) -> Decision:
        """Decide the fate of a request and mark it in flight (pair with :meth:`end`)."""
        with self._lock:
            b = self._behavior
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            if stream:
                self._streams += 1
            kind, status = "ok", 200
            if self._script_pos < len(b.script):
                entry = b.script[self._script_pos]
                self._script_pos += 1
                if entry == DROP:
                    kind, status = "drop", 0
                elif isinstance(entry, int) and entry >= 400:
                    kind, status = "error", entry
            elif b.drop_before_response:
                kind, status = "drop", 0
            elif b.fail_rate and self._fail_rng.random() < b.fail_rate:
                kind, status = "error", b.fail_status
            delay = b.latency
            if b.latency_jitter:
                delay += self._jitter_rng.uniform(0.0, b.latency_jitter)
            if kind != "ok":
                self._errors += 1
        return Decision(kind, status, delay, b)

    def end(self) -> None:
        """Mark a request finished."""
        with self._lock:
            self._in_flight -= 1

    def count_error(self) -> None:
        """Count a failure found after :meth:`begin` (bad body, interrupted stream)."""
        with self._lock:
            self._errors += 1

    def requests(self) -> list[RecordedRequest]:
        """A copy of the request log, oldest first."""
        with self._lock:
            return list(self._log)

    def stats(self) -> DeploymentStats:
        """A snapshot of the counters."""
        with self._lock:
            return DeploymentStats(
                requests=self._requests,
                errors=self._errors,
                streams=self._streams,
                in_flight=self._in_flight,
                max_in_flight=self._max_in_flight,
            )

    def reset(self) -> None:
        """Clear the request log and counters (not the behaviour or script position)."""
        with self._lock:
            self._log.clear()
            self._requests = self._errors = self._streams = 0
            self._max_in_flight = self._in_flight
