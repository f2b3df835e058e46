"""Input limits: refuse oversized requests before they are serialized or sent.

:func:`check_request` walks a :class:`~multimodel.types.ChatRequest` once and raises
:class:`~multimodel.errors.InvalidRequestError` naming the offending field, its size, the limit
and the :class:`InputLimits` attribute that sets it::

    messages[3].content: 1,200,000 characters exceeds the 1,000,000 limit
    (InputLimits.max_message_chars)

The defaults are generous (they stop accidents and abuse, not normal use); tighten them per
client or per endpoint with ``InputLimits(max_message_chars=100_000)``.

Example::

    from multimodel.security import InputLimits, check_batch, check_request

    limits = InputLimits(max_messages=200)
    check_request(request, limits)     # raises InvalidRequestError, or returns None
    check_batch(len(requests), limits)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

from ..errors import ConfigError, InvalidRequestError
from ..providers.base import MAX_BODY_BYTES
from ..types import AudioPart, ChatRequest, FilePart, ImagePart, TextPart

__all__ = [
    "DEFAULT_LIMITS",
    "InputLimits",
    "check_batch",
    "check_inputs",
    "check_request",
    "request_size",
]


@dataclass(frozen=True, kw_only=True, slots=True)
class InputLimits:
    """Size limits on what callers may send.

    Attributes:
        max_message_chars: characters of text in one message's content; of one embedding
            input.
        max_messages: messages in one request.
        max_batch_size: requests in one batch call; inputs in one embeddings call.
        max_tool_argument_chars: characters of one tool call's ``arguments`` JSON.
        max_tools: tools offered in one request.
        max_request_bytes: bytes of the request serialized as JSON (images included); the
            default is the library's body limit, :data:`~multimodel.providers.base.MAX_BODY_BYTES`.

    Raises:
        ConfigError: a limit is not a positive integer.
    """

    max_message_chars: int = 1_000_000
    max_messages: int = 1_000
    max_batch_size: int = 10_000
    max_tool_argument_chars: int = 100_000
    max_tools: int = 128
    max_request_bytes: int = MAX_BODY_BYTES

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"InputLimits.{f.name} must be a positive integer, not {value!r}")


DEFAULT_LIMITS = InputLimits()
"""The limits used when none are given."""


def _over(field: str, size: int, unit: str, limit: int, attr: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"{field}: {size:,} {unit} exceeds the {limit:,} limit (InputLimits.{attr})",
        field=field,
    )


def request_size(request: ChatRequest) -> int:
    """Bytes of ``request`` serialized as compact JSON (``None`` fields left out).

    Close to, not exactly, the provider body the adapter builds; use it as the limit's measure.
    """
    text = request.model_dump_json(exclude_none=True, by_alias=True)
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def check_request(request: ChatRequest, limits: InputLimits = DEFAULT_LIMITS) -> None:
    """Raise :class:`~multimodel.errors.InvalidRequestError` if ``request`` breaks ``limits``.

    Checked in order: message count, each message's text, each tool call's arguments, tool
    count, then the serialized size. ``error.field`` is the dotted path of the offender
    (``"messages[3].content"``, ``"messages[1].tool_calls[0].arguments"``, ``"tools"``,
    ``"messages"``, ``"request"``).

    Example::

        try:
            check_request(request, InputLimits(max_messages=50))
        except InvalidRequestError as exc:
            print(exc.field, exc)   # messages  messages: 51 messages exceeds the 50 limit ...
    """
    # The fields read from the models' __dict__ (see _upper_bound).
    fields = request.__dict__
    messages = fields["messages"]
    if len(messages) > limits.max_messages:
        raise _over("messages", len(messages), "messages", limits.max_messages, "max_messages")
    total_chars = 0
    for i, message in enumerate(messages):
        parts = message.__dict__
        content = parts["content"]
        chars = 0
        if isinstance(content, str):
            chars = len(content)
        elif content is not None:
            for part in content:
                if isinstance(part, TextPart):
                    chars += len(part.text)
                elif isinstance(part, ImagePart):
                    total_chars += len(part.data or "") + len(part.url or "")
                elif isinstance(part, AudioPart | FilePart):
                    total_chars += len(part.data or "")
        if chars > limits.max_message_chars:
            raise _over(
                f"messages[{i}].content",
                chars,
                "characters",
                limits.max_message_chars,
                "max_message_chars",
            )
        total_chars += chars
        for j, call in enumerate(parts["tool_calls"] or ()):
            size = len(call.arguments)
            if size > limits.max_tool_argument_chars:
                raise _over(
                    f"messages[{i}].tool_calls[{j}].arguments",
                    size,
                    "characters",
                    limits.max_tool_argument_chars,
                    "max_tool_argument_chars",
                )
            total_chars += size
    tools = fields["tools"] or ()
    if len(tools) > limits.max_tools:
        raise _over("tools", len(tools), "tools", limits.max_tools, "max_tools")
    # Every character is at least one byte of JSON: a cheap lower bound first; then, when a
    # cheap upper bound already fits (plain text requests, the common case), no serializing.
    if total_chars > limits.max_request_bytes:
        size = total_chars
    elif _upper_bound(request, total_chars) <= limits.max_request_bytes:
        return
    else:
        size = request_size(request)
    if size > limits.max_request_bytes:
        raise _over("request", size, "bytes", limits.max_request_bytes, "max_request_bytes")


_ESCAPED = 6  # the longest JSON escape of one character: a six-byte \u escape
_FRAME = 256  # bytes of JSON framing per message, tool call, stop string or tag, generously


def _upper_bound(request: ChatRequest, text_chars: int) -> int:
    """A cheap upper bound on :func:`request_size`; ``2**62`` when there is none.

    Only for requests made of strings and numbers: tools, schemas, metadata, ``extra_body`` and
    image parts are left to the real serialization.
    """
    # The fields read from the models' __dict__: a pydantic model's attribute read passes
    # through its __getattr__ hook, dearer than a dict lookup (once per call).
    fields = request.__dict__
    if (
        fields["tools"]
        or fields["tool_choice"] is not None
        or fields["response_format"] is not None
        or fields["metadata"]
        or fields["openai_params"]
        or fields["extra_body"]
    ):
        return 1 << 62
    chars = text_chars + len(fields["model"]) + len(fields["user"] or "")
    frames = 4
    for message in fields["messages"]:
        parts = message.__dict__
        content = parts["content"]
        if content is not None and not isinstance(content, str):
            return 1 << 62
        chars += len(parts["name"] or "") + len(parts["tool_call_id"] or "")
        for call in parts["tool_calls"] or ():
            chars += len(call.id) + len(call.name)  # arguments are in text_chars
            frames += 1
        frames += 1
    stop = fields["stop"]
    tags = fields["tags"]
    if stop or tags:
        for value in (*(stop or ()), *(tags or ())):
            chars += len(value)
            frames += 1
    return _ESCAPED * chars + _FRAME * frames


def check_batch(n: int, limits: InputLimits = DEFAULT_LIMITS) -> None:
    """Raise :class:`~multimodel.errors.InvalidRequestError` if a batch of ``n`` requests is
    larger than ``limits.max_batch_size`` (``field="batch"``).

    Example::

        check_batch(len(requests))     # 10,001 requests -> InvalidRequestError
    """
    if n < 0:
        raise InvalidRequestError(f"batch size must be >= 0, not {n!r}", field="batch")
    if n > limits.max_batch_size:
        raise _over("batch", n, "requests", limits.max_batch_size, "max_batch_size")


def check_inputs(inputs: Sequence[str], limits: InputLimits = DEFAULT_LIMITS) -> None:
    """Raise :class:`~multimodel.errors.InvalidRequestError` if embedding ``inputs`` break
    ``limits``: more inputs than ``max_batch_size`` (``field="input"``), or one input longer
    than ``max_message_chars`` characters or ``max_request_bytes`` bytes of UTF-8
    (``field="input[3]"``). One input is never split across requests, so it must fit one.

    Example::

        check_inputs(["a", "b" * 2_000_000])   # input[1]: 2,000,000 characters exceeds ...
    """
    if len(inputs) > limits.max_batch_size:
        raise _over("input", len(inputs), "inputs", limits.max_batch_size, "max_batch_size")
    chars_limit = limits.max_message_chars
    # At most four bytes of UTF-8 a character: count the bytes only when that bound is over.
    bytes_limit = limits.max_request_bytes
    for i, text in enumerate(inputs):
        chars = len(text)
        if chars > chars_limit:
            raise _over(f"input[{i}]", chars, "characters", chars_limit, "max_message_chars")
        if 4 * chars > bytes_limit:
            size = len(text.encode("utf-8", "surrogatepass"))
            if size > bytes_limit:
                raise _over(f"input[{i}]", size, "bytes", bytes_limit, "max_request_bytes")
