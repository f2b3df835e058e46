"""Streams: :class:`Stream` (sync) and :class:`AsyncStream`, over one decoder and accumulator.

``with client.stream(...) as s: for chunk in s`` — or ``async with`` / ``async for`` on the
async client. See :class:`AsyncStream` for the time limits and the failover rule.
"""

from ._client._async.stream import AsyncStream
from ._client._sync.stream import Stream

__all__ = ["AsyncStream", "Stream"]
