"""Cheap token estimates made before a request is sent (for limits, routing and budgets).

Exact counts need each provider's tokenizer; routing only needs a fast, stable upper-ish
estimate. About four characters per token holds for English text across the major tokenizers;
images count a flat amount. Real usage reconciles the estimate after the answer.
"""

from __future__ import annotations

from ..types import ChatRequest, ImagePart, TextPart

__all__ = [
    "DEFAULT_OUTPUT_TOKENS",
    "estimate_input_tokens",
    "estimate_output_tokens",
    "estimate_text_tokens",
]

CHARS_PER_TOKEN = 4
PER_MESSAGE = 4  # role and framing tokens
PER_IMAGE = 765  # a high-detail 512px tile set, the common case
DEFAULT_OUTPUT_TOKENS = 256  # expected answer length when max_tokens is not given


def estimate_input_tokens(request: ChatRequest) -> int:
    """Estimated prompt tokens of ``request`` (messages, tool schemas)."""
    chars = 0
    images = 0
    # The fields read from the models' __dict__: a pydantic attribute read passes through
    # BaseModel's __getattr__ hook, about three times a dict lookup (once per call).
    fields = request.__dict__
    messages = fields["messages"]
    for message in messages:
        parts = message.__dict__
        content = parts["content"]
        if isinstance(content, str):
            chars += len(content)
        elif content is not None:
            for part in content:
                if isinstance(part, TextPart):
                    chars += len(part.text)
                elif isinstance(part, ImagePart):
                    images += 1
        for call in parts["tool_calls"] or ():
            chars += len(call.name) + len(call.arguments)
    for tool in fields["tools"] or ():
        chars += len(tool.name) + len(tool.description or "") + 2 * len(str(tool.parameters))
    return chars // CHARS_PER_TOKEN + 1 + PER_MESSAGE * len(messages) + PER_IMAGE * images


def estimate_output_tokens(request: ChatRequest) -> int:
    """Expected output tokens: ``max_tokens`` when given (a cap, so an upper bound)."""
    return request.max_tokens if request.max_tokens is not None else DEFAULT_OUTPUT_TOKENS


def estimate_text_tokens(text: str) -> int:
    """Estimated tokens of generated ``text`` (what a stream delivered before it stopped)."""
    return -(-len(text) // CHARS_PER_TOKEN)
