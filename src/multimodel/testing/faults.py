"""A raw-socket HTTP server for what well-behaved servers never do.

:class:`FaultServer` answers every request on ``127.0.0.1`` by playing a script of
:class:`Step` objects: bytes sent after a pause, byte by byte control over the status line,
headers and body. It is how multimodel tests that time limits hold when a server trickles a
body 4 bytes at a time, sends a JSON body in seven slow pieces, keeps a stream alive with
comments only, or streams for longer than the caller's deadline. Every pause ends at once when
the server stops, so no test waits on a sleeping thread.

Example::

    from multimodel.testing.faults import FaultServer, json_response, trickle

    body = b'{"id": "x", "choices": [...]}'
    with FaultServer(trickle(json_response(body), size=4, interval=0.5)) as server:
        url = server.base_url  # http://127.0.0.1:PORT/v1
"""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType

__all__ = [
    "FaultServer",
    "Step",
    "json_response",
    "openai_completion",
    "pieces",
    "sse_events",
    "sse_head",
    "trickle",
]


@dataclass(frozen=True, slots=True)
class Step:
    """Send ``data`` after waiting ``delay`` seconds; ``close=True`` then closes the socket,
    ``reset=True`` aborts it (a TCP RST, as a crashed server or a middlebox does)."""

    delay: float = 0.0
    data: bytes = b""
    close: bool = False
    reset: bool = False


Script = Sequence[Step]


def json_response(
    body: bytes, status: int = 200, headers: Sequence[tuple[str, str]] = ()
) -> tuple[bytes, bytes]:
    """The head (status line and headers) and body of a JSON response."""
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers)
    head = (
        f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n{extra}"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode()
    return head, body


def trickle(response: tuple[bytes, bytes], *, size: int, interval: float) -> list[Step]:
    """The head at once, then the body ``size`` bytes at a time, ``interval`` seconds apart."""
    head, body = response
    steps = [Step(0.0, head)]
    steps += [Step(interval, body[i : i + size]) for i in range(0, len(body), size)]
    return steps


def pieces(response: tuple[bytes, bytes], *, count: int, interval: float) -> list[Step]:
    """The head at once, then the body in ``count`` pieces, ``interval`` seconds apart."""
    head, body = response
    size = -(-len(body) // count)
    return trickle((head, body), size=size, interval=interval)


def sse_head() -> bytes:
    """The head of an event stream delimited by closing the connection."""
    return b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"


def sse_events(events: Iterable[object]) -> bytes:
    """``data: <json>`` events (a ``str`` is sent as is, e.g. ``"[DONE]"`` or a comment)."""
    out = []
    for event in events:
        if isinstance(event, str) and event.startswith(":"):
            out.append(f"{event}\n\n")
        elif isinstance(event, str):
            out.append(f"data: {event}\n\n")
        else:
            out.append(f"data: {json.dumps(event)}\n\n")
    return "".join(out).encode()


def openai_completion(text: str = "ok", model: str = "m") -> bytes:
    """A minimal OpenAI chat completion body."""
    return json.dumps(
        {
            "id": "chatcmpl-fault",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        }
    ).encode()


class FaultServer:
    """Plays ``script`` (or ``script(n)`` for the n-th request, from 0) to every request.

    The socket closes after the last step. Bounded: at most ``max_requests`` connections are
    served, and :meth:`stop` (or leaving the ``with`` block) ends every pause at once.

    Attributes:
        base_url: ``http://127.0.0.1:PORT/v1``.
        requests: how many requests arrived.
    """

    def __init__(
        self, script: Script | Callable[[int], Script], *, max_requests: int = 100
    ) -> None:
        self._script = script
        self._max = max_requests
        self._stop = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.05)
        self.port = self._sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.requests = 0
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._serve, name="fault-server", daemon=True)

    def __enter__(self) -> FaultServer:
        self._accept.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop serving; every pause ends and every connection closes."""
        self._stop.set()
        if self._accept.is_alive():
            self._accept.join(5)
        for thread in self._threads:
            thread.join(5)
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set() and self.requests < self._max:
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            index = self.requests
            self.requests += 1
            script = self._script(index) if callable(self._script) else self._script
            thread = threading.Thread(target=self._play, args=(conn, script), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _play(self, conn: socket.socket, script: Script) -> None:
        with conn:
            try:
                _read_request(conn, self._stop)
                for step in script:
                    if step.delay and self._stop.wait(step.delay):
                        return
                    if step.data:
                        conn.sendall(step.data)
                    if step.reset:
                        # SO_LINGER with a zero timeout: close() sends RST, not FIN.
                        conn.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
                        return
                    if step.close:
                        return
            except OSError:
                return  # the client went away: that is its right


def _read_request(conn: socket.socket, stop: threading.Event) -> None:
    """Read one request's head and ``content-length`` body (the script ignores them)."""
    conn.settimeout(0.05)
    data = b""
    while b"\r\n\r\n" not in data:
        if stop.is_set():
            raise OSError("stopped")
        try:
            piece = conn.recv(65536)
        except TimeoutError:
            continue
        if not piece:
            raise OSError("closed")
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length and not stop.is_set():
        try:
            piece = conn.recv(65536)
        except TimeoutError:
            continue
        if not piece:
            break
        body += piece
    conn.settimeout(None)
