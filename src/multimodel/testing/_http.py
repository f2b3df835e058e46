"""Minimal HTTP/1.1 pieces of the mock provider server: request heads, bodies, response bytes.

Only what LLM clients send: a request line, headers, and a ``Content-Length`` or chunked body.
Responses are built as single byte strings so each one is one socket write.

Example::

    head = parse_head(b"POST /x/v1/messages HTTP/1.1\\r\\nContent-Length: 2\\r\\n\\r\\n")
    response_bytes(200, [("content-type", "application/json")], b"{}", keep_alive=True)
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import parse_qsl, unquote

__all__ = [
    "BadRequest",
    "RequestHead",
    "chunk",
    "parse_head",
    "read_body",
    "response_bytes",
    "stream_head_bytes",
]

MAX_BODY = 64 * 1024 * 1024
LAST_CHUNK = b"0\r\n\r\n"

_REASONS = {s.value: s.phrase for s in HTTPStatus}
_REASONS[529] = "Site Overloaded"
_STATUS_LINES: dict[int, bytes] = {}


class BadRequest(Exception):
    """The request could not be parsed; answer ``status`` and close the connection."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(slots=True)
class RequestHead:
    """A parsed request line and headers (names lowercase)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    keep_alive: bool


def parse_head(head: bytes) -> RequestHead:
    """Parse the bytes up to and including the blank line that ends the headers."""
    lines = head.decode("latin-1").split("\r\n")
    while lines and not lines[0]:
        lines.pop(0)  # RFC 9112 allows empty lines before the request line
    if not lines:
        raise BadRequest("empty request")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(f"bad request line: {lines[0][:100]!r}")
    method, target, version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise BadRequest(f"bad header line: {line[:100]!r}")
        name = name.lower()
        value = value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    path, _, raw_query = target.partition("?")
    query = dict(parse_qsl(raw_query, keep_blank_values=True)) if raw_query else {}
    connection = headers.get("connection", "").lower()
    http10 = version == "HTTP/1.0"
    keep_alive = "keep-alive" in connection if http10 else "close" not in connection
    return RequestHead(method, unquote(path), query, headers, keep_alive)


async def read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    """Read a ``Content-Length`` or chunked request body."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        parts: list[bytes] = []
        size_total = 0
        while True:
            line = await reader.readuntil(b"\r\n")
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise BadRequest("bad chunk size") from None
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailers
                return b"".join(parts)
            size_total += size
            if size_total > MAX_BODY:
                raise BadRequest("body too large", 413)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
    length = headers.get("content-length")
    if length is None:
        return b""
    try:
        n = int(length)
    except ValueError:
        raise BadRequest("bad content-length") from None
    if n < 0:
        raise BadRequest("bad content-length")
    if n > MAX_BODY:
        raise BadRequest("body too large", 413)
    return await reader.readexactly(n) if n else b""


def _status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    if line is None:
        reason = _REASONS.get(status, "Unknown")
        line = _STATUS_LINES[status] = f"HTTP/1.1 {status} {reason}\r\n".encode()
    return line


def _header_block(headers: list[tuple[str, str]], keep_alive: bool) -> bytes:
    text = "".join(f"{k}: {v}\r\n" for k, v in headers)
    if not keep_alive:
        text += "connection: close\r\n"
    return (text + "\r\n").encode("latin-1")


def response_bytes(
    status: int, headers: list[tuple[str, str]], body: bytes, *, keep_alive: bool
) -> bytes:
    """A complete response with ``Content-Length``."""
    headers = [*headers, ("content-length", str(len(body)))]
    return _status_line(status) + _header_block(headers, keep_alive) + body


def stream_head_bytes(status: int, headers: list[tuple[str, str]], *, keep_alive: bool) -> bytes:
    """The status line and headers of a ``Transfer-Encoding: chunked`` response."""
    headers = [*headers, ("transfer-encoding", "chunked")]
    return _status_line(status) + _header_block(headers, keep_alive)


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body."""
    return b"%x\r\n%s\r\n" % (len(data), data)
