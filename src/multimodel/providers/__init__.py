"""Provider adapters (one per wire format), presets, the SSE decoder and their registries."""

from typing import TYPE_CHECKING

from .base import Endpoint, ParsedResponse, ProviderAdapter
from .presets import ProviderPreset
from .registry import get_adapter, get_preset, known_providers, register_adapter, register_provider

if TYPE_CHECKING:
    from ._response_format import StructuredOutputMode, structured_output_mode
    from ._stream import SSEStreamDecoder, StreamDecoder
    from .sse import ServerSentEvent, SSEDecoder
else:  # the stream decoders and schema helpers load with their first use (a query needs none)
    from .._core.lazy import lazy_attributes

    __getattr__, __dir__ = lazy_attributes(
        __name__,
        {
            "SSEDecoder": ".sse",
            "SSEStreamDecoder": "._stream",
            "ServerSentEvent": ".sse",
            "StreamDecoder": "._stream",
            "StructuredOutputMode": "._response_format",
            "structured_output_mode": "._response_format",
        },
        globals(),
    )

__all__ = [
    "Endpoint",
    "ParsedResponse",
    "ProviderAdapter",
    "ProviderPreset",
    "SSEDecoder",
    "SSEStreamDecoder",
    "ServerSentEvent",
    "StreamDecoder",
    "StructuredOutputMode",
    "get_adapter",
    "get_preset",
    "known_providers",
    "register_adapter",
    "register_provider",
    "structured_output_mode",
]
