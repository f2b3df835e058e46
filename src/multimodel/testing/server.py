"""A local mock LLM provider server speaking the OpenAI, Anthropic and Gemini wire formats.

:class:`MockProviderServer` is a real HTTP/1.1 server on ``127.0.0.1`` (standard library only:
asyncio streams on an event loop in a background daemon thread). It hosts named mock
deployments, each with a wire format and a scripted :class:`~multimodel.testing.Behavior`
(latency, text, tool calls, usage, failures, broken streams). Every deployment has its own base
URL under a path prefix:

=========  ==========================================================  =======================
format     routes                                                      ``base_url(name)``
=========  ==========================================================  =======================
openai     ``POST /{name}/v1/chat/completions``                        ``{url}/{name}/v1``
anthropic  ``POST /{name}/v1/messages``                                ``{url}/{name}/v1``
gemini     ``POST /{name}/v1beta/models/{model}:generateContent``,     ``{url}/{name}/v1beta``
           ``...:streamGenerateContent?alt=sse`` (no ``alt``: array)
=========  ==========================================================  =======================

Example::

    import httpx
    from multimodel.testing import Behavior, MockDeployment, MockProviderServer

    deployments = {
        "fast": MockDeployment(format="openai", behavior=Behavior(text="hi")),
        "flaky": MockDeployment(format="anthropic", behavior=Behavior(script=[529, 200])),
    }
    with MockProviderServer(deployments=deployments) as server:
        r = httpx.post(server.base_url("fast") + "/chat/completions",
                       json={"model": "m", "messages": [{"role": "user", "content": "yo"}]})
        assert r.json()["choices"][0]["message"]["content"] == "hi"
        assert server.stats("fast").requests == 1

As a separate process (for benchmarks)::

    python -m multimodel.testing.server --port 0 --config scenario.json

prints one line ``READY http://127.0.0.1:PORT`` and serves until SIGTERM/SIGINT, or until its
standard input is closed when that is a pipe or a terminal (``--ignore-stdin`` turns this off).
``scenario.json`` looks like ``{"deployments": {"fast": {"format": "openai", "behavior":
{"latency": 0.01}, "model": null}}}`` (see :meth:`Behavior.from_dict`); without ``--config``
the three default deployments ``openai-mock``, ``anthropic-mock`` and ``gemini-mock`` are served.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import json
import random
import re
import ssl
import threading
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._http import (
    LAST_CHUNK,
    BadRequest,
    RequestHead,
    chunk,
    parse_head,
    read_body,
    response_bytes,
    stream_head_bytes,
)
from .behavior import (
    Behavior,
    Decision,
    DeploymentState,
    DeploymentStats,
    MockDeployment,
    RecordedRequest,
    default_deployments,
)
from .wire import RENDERERS, ErrorSpec, GeminiRenderer, Reply, WireRenderer, split_text

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["MockProviderServer"]

HOST = "127.0.0.1"
_NAME = re.compile(r"[A-Za-z0-9._~-]+")
_JSON = ("content-type", "application/json")
_SSE = [("content-type", "text/event-stream; charset=utf-8"), ("cache-control", "no-cache")]
_RETRY_AFTER_STATUSES = frozenset({429, 503, 529})


def _guess_renderer(rest: str) -> WireRenderer:
    """The wire format a request for an unknown deployment most likely expects."""
    if rest.endswith("messages"):
        return RENDERERS["anthropic"]
    if rest.startswith("v1beta/") or ":generateContent" in rest or ":stream" in rest:
        return RENDERERS["gemini"]
    return RENDERERS["openai"]


def _seconds(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:.3f}"


class MockProviderServer:
    """A mock provider HTTP server hosting named deployments (see the module docstring).

    Args:
        deployments: name -> :class:`MockDeployment`; ``None`` means the three defaults.
        port: TCP port on 127.0.0.1; 0 picks a free one.
        max_recorded: how many requests each deployment's log keeps.
        tls: serve ``https`` with this server-side TLS context (its certificate must name
            ``127.0.0.1``; clients trust it through their own context, e.g. ``SSL_CERT_FILE``).

    The server is thread-safe: deployments can be added and behaviours changed while it runs.
    """

    def __init__(
        self,
        deployments: Mapping[str, MockDeployment] | None = None,
        *,
        port: int = 0,
        max_recorded: int = 10_000,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._requested_port = port
        self._tls = tls
        self._max_recorded = max_recorded
        self._lock = threading.Lock()
        self._states: dict[str, DeploymentState] = {}
        for name, deployment in (
            default_deployments() if deployments is None else deployments
        ).items():
            self.add(name, deployment)
        self._seq = itertools.count(1)
        self._id_prefix = f"{random.getrandbits(32):08x}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._port: int | None = None
        self._connections_opened = 0
        self._connections_open = 0

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind and start serving in a background thread; returns ``self``."""
        if self._thread is not None:
            raise RuntimeError("server already started")
        loop = self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=loop.run_forever, name="mock-provider-server", daemon=True
        )
        self._thread.start()
        starting = asyncio.start_server(
            self._handle, HOST, self._requested_port, limit=1 << 20, backlog=2048, ssl=self._tls
        )
        try:
            self._server = asyncio.run_coroutine_threadsafe(starting, loop).result(timeout=10)
        except BaseException:
            self._close_loop()
            raise
        self._port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        """Stop serving: cancel open connections (stalled streams too) and join the thread."""
        if self._thread is None or self._loop is None:
            return
        if self._server is not None:
            done = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
            try:
                done.result(timeout=10)
            except (TimeoutError, concurrent.futures.TimeoutError):
                pass  # a connection ignored cancellation; the daemon thread dies with us
            self._server = None
        self._close_loop()

    def _close_loop(self) -> None:
        loop, thread = self._loop, self._thread
        assert loop is not None
        assert thread is not None
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        if not thread.is_alive():
            loop.close()
        self._thread = self._loop = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def _shutdown(self) -> None:
        server = self._server
        assert server is not None
        server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.wait_for(server.wait_closed(), timeout=5)

    # -- addresses and configuration -------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound TCP port (after :meth:`start`)."""
        if self._port is None:
            raise RuntimeError("server not started")
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (``https://`` with ``tls``)."""
        return f"{'https' if self._tls is not None else 'http'}://{HOST}:{self.port}"

    def base_url(self, name: str) -> str:
        """The base URL a client should use for deployment ``name``.

        ``{url}/{name}/v1`` for openai and anthropic, ``{url}/{name}/v1beta`` for gemini.
        """
        state = self._state(name)
        return f"{self.url}/{name}/{'v1beta' if state.format == 'gemini' else 'v1'}"

    def add(self, name: str, deployment: MockDeployment) -> None:
        """Add (or replace) deployment ``name``; its log and counters start empty."""
        if not _NAME.fullmatch(name):
            raise ValueError(f"deployment names must match {_NAME.pattern}, got {name!r}")
        state = DeploymentState(name, deployment, self._max_recorded)
        with self._lock:
            self._states = {**self._states, name: state}

    def remove(self, name: str) -> None:
        """Remove deployment ``name`` (later requests get 404)."""
        with self._lock:
            states = dict(self._states)
            if states.pop(name, None) is None:
                raise KeyError(name)
            self._states = states

    def set_behavior(self, name: str, behavior: Behavior) -> None:
        """Replace the behaviour of ``name``; its script and random draws start afresh."""
        self._state(name).set_behavior(behavior)

    def behavior(self, name: str) -> Behavior:
        """The current behaviour of ``name``."""
        return self._state(name).behavior

    def _state(self, name: str) -> DeploymentState:
        try:
            return self._states[name]
        except KeyError:
            raise KeyError(f"no mock deployment named {name!r}") from None

    # -- observability -----------------------------------------------------------------------

    def requests(self, name: str) -> list[RecordedRequest]:
        """Requests received by ``name`` (the last ``max_recorded``), oldest first."""
        return self._state(name).requests()

    def stats(self, name: str) -> DeploymentStats:
        """Counters of ``name``: requests, errors, streams, in flight, max in flight."""
        return self._state(name).stats()

    def reset(self, name: str | None = None) -> None:
        """Clear the request log and counters of ``name`` (or of every deployment)."""
        for state in [self._state(name)] if name is not None else self._states.values():
            state.reset()

    @property
    def connections_opened(self) -> int:
        """TCP connections accepted since start (keep-alive keeps this low)."""
        return self._connections_opened

    @property
    def connections_open(self) -> int:
        """TCP connections currently open."""
        return self._connections_open

    # -- HTTP --------------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._connections_opened += 1
        self._connections_open += 1
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            # Only stop() cancels connections. Ending normally keeps asyncio < 3.12 from
            # logging "Exception in callback" for the cancelled connection task.
            pass
        finally:
            self._connections_open -= 1
            self._tasks.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                raw = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return  # the client closed the connection between requests
            except asyncio.LimitOverrunError:
                writer.write(response_bytes(431, [], b"", keep_alive=False))
                await writer.drain()
                return
            try:
                head = parse_head(raw)
                body = await read_body(reader, head.headers)
            except BadRequest as exc:
                payload = json.dumps({"error": {"message": str(exc)}}).encode()
                writer.write(response_bytes(exc.status, [_JSON], payload, keep_alive=False))
                await writer.drain()
                return
            if not await self._respond(head, body, writer) or not head.keep_alive:
                await writer.drain()
                return
            await writer.drain()

    def _request_id(self) -> tuple[int, str]:
        seq = next(self._seq)
        return seq, f"req_mock{self._id_prefix}{seq:016x}"

    def _headers(self, wire: WireRenderer, request_id: str) -> list[tuple[str, str]]:
        return [(wire.request_id_header, request_id)] if wire.request_id_header else []

    def _send_error(
        self,
        writer: asyncio.StreamWriter,
        head: RequestHead,
        wire: WireRenderer,
        status: int,
        *,
        behavior: Behavior | None = None,
        message: str | None = None,
        model: str | None = None,
    ) -> None:
        _, request_id = self._request_id()
        code = retry_after = None
        if behavior is not None:
            code, retry_after = behavior.error_code, behavior.retry_after
            message = message or behavior.error_message
        headers = [_JSON, *self._headers(wire, request_id)]
        if retry_after is not None and status in _RETRY_AFTER_STATUSES:
            headers.append(("retry-after", _seconds(retry_after)))
        body = wire.error(ErrorSpec(status, code, message, retry_after, request_id, model))
        writer.write(response_bytes(status, headers, body, keep_alive=head.keep_alive))

    async def _respond(self, head: RequestHead, raw: bytes, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; returns whether the connection may be reused."""
        name, _, rest = head.path[1:].partition("/")
        state = self._states.get(name)
        if state is None:
            message = f"Invalid URL ({head.method} {head.path}): no mock deployment {name!r}"
            self._send_error(writer, head, _guess_renderer(rest), 404, message=message)
            return True
        wire = RENDERERS[state.format]
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
            bad_json = True
        else:
            bad_json = not isinstance(body, dict)
        state.record(RecordedRequest(head.method, head.path, head.query, head.headers, body))
        route = wire.route(rest)
        if route is None or head.method != "POST" or bad_json:
            state.count_error()
            if route is None:
                status, message = 404, f"Invalid URL ({head.method} {head.path})"
            elif head.method != "POST":
                status, message = 405, f"Method {head.method} not allowed"
            else:
                status, message = 400, "We could not parse the JSON body of your request."
            self._send_error(writer, head, wire, status, message=message)
            return True
        path_model, mode = route
        stream = mode == "stream" or (mode == "body" and body.get("stream") is True)
        decision = state.begin(stream)
        try:
            if decision.delay:
                await asyncio.sleep(decision.delay)
            model = state.model or path_model or body.get("model") or "mock-model"
            if decision.kind == "drop":
                return False
            if decision.kind == "error":
                self._send_error(
                    writer, head, wire, decision.status, behavior=decision.behavior, model=model
                )
                return True
            return await self._succeed(writer, head, state, wire, decision, body, model, mode)
        finally:
            state.end()

    async def _succeed(
        self,
        writer: asyncio.StreamWriter,
        head: RequestHead,
        state: DeploymentState,
        wire: WireRenderer,
        decision: Decision,
        body: dict[str, Any],
        model: str,
        mode: str,
    ) -> bool:
        if mode == "embed":
            payload = wire.embeddings(body, model)
            _, request_id = self._request_id()
            if payload is None:  # pragma: no cover - only routed for formats that embed
                self._send_error(writer, head, wire, 404, message="no embeddings here")
                return True
            headers = [_JSON, *self._headers(wire, request_id)]
            writer.write(response_bytes(200, headers, payload, keep_alive=head.keep_alive))
            return True
        b = decision.behavior
        if b.echo:
            text: str | None = wire.last_user_text(body)
        elif b.text is not None:
            text = b.text
        elif b.tool_calls or b.refusal is not None:
            text = None
        else:
            text = f"Hello from {state.name}"
        out_chars = len(text or "") + len(b.refusal or "")
        for tool_name, args in b.tool_calls:
            out_chars += len(tool_name) + len(json.dumps(args))
        usage = b.usage_spec.resolve(wire.prompt_chars(body), out_chars)
        stream = mode == "stream" or (mode == "body" and body.get("stream") is True)
        options = body.get("stream_options")
        seq, request_id = self._request_id()
        reply = Reply(
            model=model,
            text=text,
            pieces=split_text(text or "", b.chunks) if stream else (),
            tool_calls=tuple(b.tool_calls),
            usage=usage,
            finish_reason=b.finish_reason
            if b.finish_reason is not None or b.refusal is None
            else "refusal",
            refusal=b.refusal,
            seq=seq,
            include_usage=isinstance(options, dict) and options.get("include_usage") is True,
            omit_done=b.omit_done,
        )
        headers = self._headers(wire, request_id)
        keep_alive = head.keep_alive
        if not stream:
            payload = wire.body(reply)
            writer.write(response_bytes(200, [_JSON, *headers], payload, keep_alive=keep_alive))
            return True
        if isinstance(wire, GeminiRenderer) and head.query.get("alt") != "sse":
            payload = wire.array(reply)
            writer.write(response_bytes(200, [_JSON, *headers], payload, keep_alive=keep_alive))
            return True
        plan = wire.stream(reply)
        cut = b.stream_cut()
        units = plan.body if cut is None else plan.body[: cut[1]]
        out = [stream_head_bytes(200, [*_SSE, *headers], keep_alive=keep_alive)]
        out += [chunk(event) for event in plan.head]
        if b.chunk_interval:
            for unit in units:
                writer.write(b"".join(out))
                await writer.drain()
                await asyncio.sleep(b.chunk_interval)
                out = [chunk(unit)]
        else:
            out += [chunk(unit) for unit in units]
        if cut is None:
            if b.chunk_interval and units:
                writer.write(b"".join(out))
                await writer.drain()
                await asyncio.sleep(b.chunk_interval)
                out = []
            out += [chunk(event) for event in plan.tail]
            out.append(LAST_CHUNK)
            writer.write(b"".join(out))
            return True
        state.count_error()
        kind = cut[0]
        if kind == "error":
            spec = ErrorSpec(200, b.error_code, b.error_message, None, request_id, reply.model)
            out += [chunk(wire.stream_error(spec)), LAST_CHUNK]
            writer.write(b"".join(out))
            return True
        writer.write(b"".join(out))
        await writer.drain()
        if kind == "stall":
            await asyncio.sleep(b.stall_timeout)
        return False  # drop / end of stall: close without the terminal chunk


if __name__ == "__main__":
    from ._cli import main

    raise SystemExit(main())
