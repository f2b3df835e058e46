"""The sync and async Redis connections, and the one pipeline per round trip they run: redis-py
for :class:`~multimodel.Client` (whose threads that ask while a trip is in flight share the next
one), ``redis.asyncio`` for :class:`~multimodel.AsyncClient` (whose tasks that ask at the same
moment share one pipeline). What goes into a pipeline and what comes
out of it is built here once; only the call that runs it differs.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from ...errors import ConfigError
from ._admission import FOLDED, Admission, Call, Refusal
from ._core import Op
from ._scripts import SCRIPTS, SHA

if TYPE_CHECKING:
    from ..._core.trace import Send

__all__ = ["Connections"]


class _Ticket:
    """One admission (or flush) waiting in an asyncio batch."""

    __slots__ = ("batch", "call", "done", "error", "result", "sent")

    def __init__(self, call: Call | None) -> None:
        self.call = call
        self.done: Any = None  # a threading Event a waiting thread blocks on; an asyncio batch's
        # first ticket: the anyio Event every task of the batch waits on
        self.batch: list[_Ticket] | None = None  # set when this ticket leads a sync batch
        self.error: BaseException | None = None
        self.result: Any = None
        self.sent = 0.0


class Connections(Admission):
    """The Redis clients and the round trips (a part of ``RedisState``)."""

    op_timeout: float
    round_trips: int
    _url: str | None
    _sync: Any
    _async: Any
    _batch: list[_Ticket] | None
    _batch_lock: threading.Lock
    _busy: bool
    _leader: int | None
    _waiting: list[_Ticket]
    _listeners: list[Any]
    _cursor: str | None

    if TYPE_CHECKING:

        def _deliver(self, entries: Any) -> None: ...

        def subscribers(self) -> list[Any]: ...

        @property
        def listening(self) -> bool: ...

    def _connect(self, module: str, refusal: str) -> Any:
        """A client of ``module`` (``redis`` or ``redis.asyncio``) built from the URL; without a
        URL (this state wraps a client of the other kind), a ``ConfigError`` saying ``refusal``."""
        if self._url is None:
            raise ConfigError(f"shared_state: this RedisState wraps {refusal}")
        return _redis(module).Redis.from_url(
            self._url,
            socket_timeout=self.op_timeout,
            socket_connect_timeout=self.op_timeout,
        )

    def _sync_client(self) -> Any:
        if self._sync is None:
            self._sync = self._connect(
                "redis", "a redis.asyncio client; a sync Client needs a URL or a redis.Redis"
            )
        return self._sync

    def _commands(self, ops: list[Op], calls: list[Call]) -> list[Op]:
        """The commands of one round trip: the fleet's new status events when no listener
        pushes them, the queued bookkeeping, then one batch script call with the rate-limit
        bookkeeping and the admissions (its reply last)."""
        commands = [op for op in ops if op.script not in FOLDED]
        if not self.listening and self.subscribers():  # no listener pushes the fleet's events:
            # read those since the last read on the same trip
            commands.insert(0, Op("read", (self._events_key,), (self._cursor,), self._deliver))
        folded = [op for op in ops if op.script in FOLDED]
        if calls or folded:
            commands.append(self._batch_op(folded, calls))
        return commands

    @staticmethod
    def _queue_on(pipe: Any, command: Op) -> None:
        if command.script == "delete":
            pipe.delete(*command.keys)
        elif command.script == "read":
            cursor = command.args[0]
            if cursor is None:  # the first read: only where the stream ends now
                pipe.xrevrange(command.keys[0], count=1)
            else:
                pipe.xrange(command.keys[0], min=f"({cursor}", count=500)
        elif command.script == "announce":
            pipe.xadd(command.keys[0], command.args[0], maxlen=1000, approximate=True)
        elif command.script == "load":  # before the others, on a server that forgot them
            for text in SCRIPTS.values():
                pipe.script_load(text)
        else:  # EVALSHA: a pipeline of Script objects asks SCRIPT EXISTS first (a round trip)
            pipe.evalsha(SHA[command.script], len(command.keys), *command.keys, *command.args)

    def _pipeline(self, client: Any, commands: list[Op]) -> Any:
        """The pipeline of ``commands`` on ``client`` (sync or asyncio: both queue alike), to
        run in one round trip."""
        pipe = client.pipeline(transaction=False)
        for command in commands:
            self._queue_on(pipe, command)
        self.round_trips += 1
        return pipe

    def _reloading(self, client: Any, commands: list[Op], exc: Exception) -> Any:
        """After ``exc`` failed a pipeline: when the server forgot the scripts (restarted or
        flushed), the pipeline that loads them, then runs ``commands`` (its results:
        :func:`_unloaded`); any other failure is raised again."""
        if not _noscript(exc):
            raise exc
        return self._pipeline(client, [_LOAD, *commands])

    def _execute(self, commands: list[Op]) -> list[Any]:
        """Run ``commands`` in one pipeline (one round trip; two after a Redis restart, when
        the scripts are loaded again). Raises on any Redis failure."""
        client = self._sync_client()
        try:
            return list(self._pipeline(client, commands).execute())
        except Exception as exc:  # noqa: BLE001 - _reloading raises all but NOSCRIPT
            pipe = self._reloading(client, commands, exc)
        return _unloaded(pipe.execute())

    def admit(self, send: Send) -> Refusal | None:
        """Check and reserve one attempt fleet-wide (``None``: admitted). One round trip, shared
        with the admissions of other threads that ask while one is in flight."""
        call = self._admit_call(send)
        ticket = _Ticket(call)
        self._sync_batch(ticket)
        if ticket.error is not None:
            if isinstance(ticket.error, ConfigError):
                raise ticket.error
            self._unavailable(ticket.error)
            self._offline(call)
            return None
        return self._verdict(ticket.result, send, ticket.sent)

    def flush(self) -> None:
        """Write the queued bookkeeping now (one round trip; nothing when none is queued)."""
        if not self._pending:
            return
        ticket = _Ticket(None)
        self._sync_batch(ticket)
        if isinstance(ticket.error, ConfigError):
            raise ticket.error
        if ticket.error is not None:  # the bookkeeping is dropped, not retried
            self._failed(ticket.error)

    def settle(self) -> None:
        """Write the bookkeeping an attempt's end left (the answer's time, its real token
        count, a hold, a breaker change): with the round trip that other threads' admissions
        already wait for when there is one (it takes every queued operation), else now."""
        if not self._pending:
            return
        with self._batch_lock:
            carried = bool(self._waiting)
        if not carried:
            self.flush()

    def _sync_batch(self, ticket: _Ticket) -> None:
        """Group commit across threads: with no round trip in flight, ``ticket`` runs at once
        (no added latency); otherwise it waits, and the tickets that arrived during the trip
        run together in the next one, led by the first of them."""
        me = threading.get_ident()
        if self._leader == me:  # a callback of this thread's own batch (a budget alert's)
            self._run_batch([ticket], self._execute)
            return
        with self._batch_lock:
            if self._busy:
                ticket.done = threading.Event()
                self._waiting.append(ticket)
            else:
                self._busy = True
        if ticket.done is not None:
            ticket.done.wait()  # bounded: each trip gives up after op_timeout
            if ticket.batch is None:
                return  # served by the batch of the ticket that led it
        batch = ticket.batch or [ticket]
        self._leader = me
        try:
            self._run_batch(batch, self._execute)
        finally:
            self._leader = None
            with self._batch_lock:
                waiting, self._waiting = self._waiting, []
                if waiting:
                    waiting[0].batch = waiting  # the next leader
                else:
                    self._busy = False
            for t in batch:
                if t is not ticket and t.done is not None:
                    t.done.set()
            if waiting:
                assert waiting[0].done is not None
                waiting[0].done.set()

    def _batch_commands(self, batch: list[_Ticket]) -> tuple[list[Op], list[_Ticket]]:
        """One pipeline for ``batch``: the queued bookkeeping, then every admission."""
        calls = [t for t in batch if t.call is not None]
        return self._commands(self._take(), [t.call for t in calls if t.call]), calls

    def _batch_done(
        self, commands: list[Op], calls: list[_Ticket], results: list[Any], sent: float
    ) -> None:
        """Hand a pipeline's results to the bookkeeping and to each admission of the batch."""
        self._succeeded()
        self._results(commands, results)
        if calls:  # the batch script's reply: one verdict per admission, in order
            reply = results[-1]
            text = reply.decode() if isinstance(reply, bytes) else str(reply)
            for t, verdict in zip(calls, text.split(";"), strict=True):
                t.result, t.sent = verdict.split(","), sent

    def _run_batch(self, batch: list[_Ticket], execute: Any) -> None:
        commands, calls = self._batch_commands(batch)
        if not commands:
            return
        sent = time.monotonic()
        try:
            results = execute(commands)
        except Exception as exc:  # noqa: BLE001 - each ticket reports the outage
            for t in batch:
                t.error = exc
            return
        self._batch_done(commands, calls, results, sent)

    def close(self) -> None:
        """Flush, then close the sync Redis client built from the URL."""
        self.flush()
        if self._url is not None and self._sync is not None:
            self._sync.close()
            self._sync = None

    # -- async executor (asyncio) -----------------------------------------------------------------

    def _async_client(self) -> Any:
        import asyncio

        try:
            asyncio.get_running_loop()
        except RuntimeError:  # trio (or another loop): redis.asyncio needs asyncio's
            raise ConfigError(
                "shared_state runs on asyncio only (redis.asyncio), not on trio; use asyncio, "
                "or a sync Client"
            ) from None
        if self._async is None:
            self._async = self._connect(
                "redis.asyncio",
                "a sync redis.Redis; an AsyncClient needs a URL or a redis.asyncio.Redis",
            )
        return self._async

    async def _async_execute(self, commands: list[Op]) -> list[Any]:
        """:meth:`_execute` for the asyncio client: only the awaited calls differ."""
        client = self._async_client()
        try:
            return list(await self._pipeline(client, commands).execute())
        except Exception as exc:  # noqa: BLE001 - _reloading raises all but NOSCRIPT
            pipe = self._reloading(client, commands, exc)
        return _unloaded(await pipe.execute())

    async def async_admit(self, send: Send) -> Refusal | None:
        """:meth:`admit` for the asyncio client. Admissions of tasks that ask at the same
        moment share one pipeline (one round trip for all of them)."""
        call = self._admit_call(send)
        self._async_client()  # refuses trio before anything is taken
        ticket = _Ticket(call)
        await self._async_batch(ticket)
        if ticket.error is not None:
            self._unavailable(ticket.error)
            self._offline(call)
            return None
        return self._verdict(ticket.result, send, ticket.sent)

    async def async_flush(self) -> None:
        """:meth:`flush` for the asyncio client."""
        self._async_client()
        if not self._pending:
            return
        ticket = _Ticket(None)
        await self._async_batch(ticket)
        if ticket.error is not None:
            self._failed(ticket.error)

    async def async_settle(self) -> None:
        """:meth:`settle` for the asyncio client: a batch collecting now (other tasks'
        admissions, about to leave) carries the bookkeeping; else one round trip now."""
        if self._pending and self._batch is None:
            await self.async_flush()

    async def _async_batch(self, ticket: _Ticket) -> None:
        """Run ``ticket`` in the batch now collecting, or open one, let the tasks that are
        ready join it, and run it: queued bookkeeping, then every admission, one pipeline."""
        import anyio
        import anyio.lowlevel

        batch = self._batch
        if batch is not None:  # the batch's first ticket carries the event all of it waits on
            batch.append(ticket)
            await batch[0].done.wait()
            return
        ticket.done = anyio.Event()
        batch = self._batch = [ticket]
        # Shielded: the tasks that joined depend on this one; Redis bounds it (op_timeout).
        with anyio.CancelScope(shield=True):
            await anyio.lowlevel.checkpoint()  # the admissions of tasks ready now join
            self._batch = None
            commands, calls = self._batch_commands(batch)
            if commands:
                sent = time.monotonic()
                try:
                    results = await self._async_execute(commands)
                except Exception as exc:  # noqa: BLE001 - each ticket reports the outage
                    for t in batch:
                        t.error = exc
                else:
                    self._batch_done(commands, calls, results, sent)
            ticket.done.set()

    async def aclose(self) -> None:
        """Flush, then close the asyncio Redis client built from the URL."""
        if self._async is not None or self._pending:
            try:
                await self.async_flush()
            except ConfigError:
                pass
        if self._url is not None and self._async is not None:
            await self._async.aclose()
            self._async = None


def _redis(module: str) -> Any:
    """``redis`` or ``redis.asyncio``; a ``ConfigError`` naming the extra without it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            "shared_state needs the `redis` package: pip install 'multimodel[redis]'"
        ) from None


_LOAD = Op("load", (), ())  # loads every script (see Connections._reloading)


def _unloaded(results: list[Any]) -> list[Any]:
    """The results of a pipeline that began by loading the scripts, without the loads'."""
    return results[len(SCRIPTS) :]


def _noscript(exc: BaseException) -> bool:
    """Whether Redis did not know a script (``NOSCRIPT``: a restarted or flushed server)."""
    return type(exc).__name__ == "NoScriptError" or str(exc).startswith("NOSCRIPT")


def _client_kind(value: Any) -> str | None:
    module = type(value).__module__
    if not module.startswith("redis"):
        return None
    return "async" if module.startswith("redis.asyncio") else "sync"


def _safe_url(url: str) -> str:
    """``url`` without its password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return url
