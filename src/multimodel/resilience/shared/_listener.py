"""The listener that pushes the fleet's status changes to an idle process.

Each process's status changes are entries of one Redis stream (``{prefix}:events``). A listener
waits on it with a blocking ``XREAD`` on a connection of its own, and hands each new entry to
the subscribers (the clients' :meth:`_fleet_status_changed`) as it arrives: a breaker opened in
one process is open in the others' ``status()`` and callbacks within one read, without a
request. A stream rather than pub/sub: a listener that reconnects reads nothing twice, and the
pull on the hot path (used only while no listener runs) reads the same entries.

* :class:`~multimodel.Client`: a daemon thread owned by the state, started on the client's
  first use (``status()``, ``on()``, a request, ``with``), stopped and joined on ``close()``
  (woken at once with ``CLIENT UNBLOCK``; at worst within one read, ``BLOCK_MS`` +
  ``op_timeout``).
* :class:`~multimodel.AsyncClient`: a task of the running asyncio loop, started on first use
  inside it, cancelled and awaited on ``aclose()``. No loop or thread of its own; on trio the
  shared state is refused anyway.

While Redis is unavailable the listener counts the failure like any operation (one warning per
outage), retries with a bounded backoff, and after reconnecting starts from the stream's end:
what it missed is not replayed (the admission script still sees the fleet's holds and breakers
on the next attempt), so a stale event never opens a breaker late.
"""

from __future__ import annotations

import threading
from typing import Any

from ._connection import Connections, _redis

__all__ = ["BLOCK_MS", "FleetListener"]

BLOCK_MS = 1000  # one blocking read; bounds the sync listener's stop when Redis hangs


def _backoff(failures: int) -> float:
    return float(min(5.0, 0.25 * 2 ** min(failures, 5)))


class FleetListener(Connections):
    """The status-event listener (a part of ``RedisState``)."""

    _thread: threading.Thread | None
    _stop: threading.Event
    _listener_id: int | None
    _cursor_lock: threading.Lock
    _task: Any
    _task_stop: threading.Event

    @property
    def listening(self) -> bool:
        """Whether a listener pushes the fleet's status changes now."""
        thread, task = self._thread, self._task
        return (thread is not None and thread.is_alive()) or (task is not None and not task.done())

    def _listener_client(self, module: str) -> Any:
        """A client of ``module`` with a connection of its own, whose reads may block for
        ``BLOCK_MS`` (the shared clients give up after ``op_timeout``); ``None`` when this
        state wraps a caller's client of the other kind."""
        timeout = BLOCK_MS / 1000 + self.op_timeout
        lib = _redis(module)
        if self._url is not None:
            return lib.Redis.from_url(
                self._url, socket_timeout=timeout, socket_connect_timeout=self.op_timeout
            )
        base = self._async if module == "redis.asyncio" else self._sync
        if base is None:
            return None
        pool = base.connection_pool
        kwargs = {**pool.connection_kwargs, "socket_timeout": timeout}
        own = type(pool)(connection_class=pool.connection_class, max_connections=2, **kwargs)
        return lib.Redis.from_pool(own)  # closing the client closes its pool

    def _read_once(self, reply: Any) -> None:
        self._succeeded()
        for _key, entries in reply or ():
            self._deliver(entries)

    # -- sync: a daemon thread ------------------------------------------------------------------

    def listen(self) -> None:
        """Start the listener thread (once; nothing when no client subscribed)."""
        if self.listening or not self.subscribers():
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop = threading.Event()
            self._thread = threading.Thread(
                target=self._listen_loop,
                args=(self._stop,),
                name=f"multimodel-shared-{self.prefix}",
                daemon=True,
            )
            self._thread.start()

    def _listen_loop(self, stop: threading.Event) -> None:
        client = None
        failures = 0
        try:
            while not stop.is_set() and self.subscribers():
                try:
                    if client is None:
                        client = self._listener_client("redis")
                        if client is None:
                            return
                        ident = int(client.client_id())
                        with self._lock:  # see _stop_thread: stopped now, or woken later
                            if stop.is_set():
                                return
                            self._listener_id = ident
                    if self._cursor is None:
                        self._deliver(client.xrevrange(self._events_key, count=1))
                    cursor = self._cursor or "$"
                    reply = client.xread({self._events_key: cursor}, count=500, block=BLOCK_MS)
                except Exception as exc:  # noqa: BLE001 - an outage: counted, retried
                    if stop.is_set():
                        return
                    self._lost(exc)
                    failures += 1
                    if client is not None:
                        client.close()
                        client = None
                    stop.wait(_backoff(failures))
                    continue
                failures = 0
                if not stop.is_set():
                    self._read_once(reply)
        finally:
            self._listener_id = None
            if client is not None:
                client.close()

    def _lost(self, exc: BaseException) -> None:
        """The listener's read failed: count it (one warning per outage) and start again from
        the stream's end (see the module docs)."""
        self._failed(exc)
        with self._cursor_lock:
            self._cursor = None

    def _stop_thread(self) -> None:
        thread = self._thread
        if thread is None:
            return
        self._thread = None
        with self._lock:
            self._stop.set()
            ident = self._listener_id
        if ident is not None and thread.is_alive():
            try:  # end the blocking read now rather than within BLOCK_MS
                self._sync_client().client_unblock(ident)
            except Exception:  # noqa: BLE001, S110 - the read ends by itself within BLOCK_MS
                pass
        thread.join(BLOCK_MS / 1000 + 2 * self.op_timeout)

    def close(self) -> None:
        """Stop the listener thread, flush, then close the sync Redis client built from the
        URL."""
        self._stop_thread()
        super().close()

    # -- asyncio: a task of the running loop ----------------------------------------------------

    def async_listen(self) -> None:
        """Start the listener task on the running asyncio loop (once per loop; nothing outside
        a running asyncio loop, or when no client subscribed)."""
        import asyncio

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop, or trio (where shared state is refused)
            return
        task = self._task
        if task is not None and not task.done() and task.get_loop() is loop:
            return  # the common case, asked before every admission: checked first
        if not self.subscribers():
            return
        self._task_stop = threading.Event()  # a flag: redis.asyncio may swallow a cancel
        self._task = loop.create_task(self._async_listen_loop(self._task_stop))

    async def _async_listen_loop(self, stop: threading.Event) -> None:
        import asyncio

        client = None
        failures = 0
        try:
            while not stop.is_set() and self.subscribers():
                try:
                    if client is None:
                        client = self._listener_client("redis.asyncio")
                        if client is None:
                            return
                    if self._cursor is None:
                        self._deliver(await client.xrevrange(self._events_key, count=1))
                    cursor = self._cursor or "$"
                    reply = await client.xread(
                        {self._events_key: cursor}, count=500, block=BLOCK_MS
                    )
                except Exception as exc:  # noqa: BLE001 - an outage: counted, retried
                    if stop.is_set():  # a cancel that the Redis client turned into a timeout
                        return
                    self._lost(exc)
                    failures += 1
                    if client is not None:
                        await client.aclose()
                        client = None
                    await asyncio.sleep(_backoff(failures))
                    continue
                failures = 0
                if not stop.is_set():
                    self._read_once(reply)
        finally:
            if client is not None:
                await asyncio.shield(client.aclose())

    async def aclose(self) -> None:
        """Cancel and await the listener task, flush, then close the asyncio Redis client built
        from the URL."""
        import asyncio

        task, self._task = self._task, None
        if task is not None and not task.done():
            self._task_stop.set()
            task.cancel()
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            if task.get_loop() is loop:
                # wait() raises only the caller's own cancellation, never the listener's.
                await asyncio.wait({task})
                if not task.cancelled():
                    task.exception()  # retrieved: an unexpected end is not logged at exit
        await super().aclose()
