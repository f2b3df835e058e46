"""Request, response and stream types shared by every provider.

These are the normalized shapes that the adapters translate to and from each provider's wire
format. Values the user builds (:class:`Message`, :class:`ChatRequest`, :class:`Tool`) are frozen
pydantic models with ``extra="forbid"`` so that a typo is an error, not a silently dropped field.
Values the library hands back (:class:`ChatResponse`, :class:`ChatChunk`) are built on the hot
path from already-normalized data: a chunk by its schema validator directly, an answer and its
message (and the common request: a prompt string with scalar parameters) field by field from
values whose exact types were checked, so they cost microseconds.
"""

from ._messages import (
    AudioPart,
    ContentPart,
    FilePart,
    ImagePart,
    Message,
    Role,
    TextPart,
    ToolCall,
)
from ._messages import coerce_message as coerce_message
from ._messages import coerce_messages as coerce_messages
from ._request import OPENAI_PARAMS, ChatRequest, ResponseFormat, Tool, ToolChoice
from ._response import ChatChunk, ChatResponse, FinishReason, ToolCallDelta, Usage

__all__ = [
    "OPENAI_PARAMS",
    "AudioPart",
    "ChatChunk",
    "ChatRequest",
    "ChatResponse",
    "ContentPart",
    "FilePart",
    "FinishReason",
    "ImagePart",
    "Message",
    "ResponseFormat",
    "Role",
    "TextPart",
    "Tool",
    "ToolCall",
    "ToolCallDelta",
    "ToolChoice",
    "Usage",
]
