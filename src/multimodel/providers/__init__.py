"""Provider adapters (one per wire format), presets, the SSE decoder and their registries."""

from ._response_format import StructuredOutputMode, structured_output_mode
from ._stream import SSEStreamDecoder, StreamDecoder
from .base import Endpoint, ParsedResponse, ProviderAdapter
from .presets import ProviderPreset
from .registry import get_adapter, get_preset, known_providers, register_adapter, register_provider
from .sse import ServerSentEvent, SSEDecoder

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
