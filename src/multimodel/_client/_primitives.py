"""The few things the async and sync clients do differently, side by side.

The client, stream and OpenAI-shaped surface are written once, async, in ``_async/``; the sync
versions in ``_sync/`` are generated from them (``.ci/unasync.py``), which renames every
``async_X`` below to ``X``. What cannot be renamed lives here, in pairs:

============================  ===============================  ===============================
what                          async (anyio: asyncio or trio)   sync
============================  ===============================  ===============================
wait                          ``anyio.sleep``                  ``time.sleep``
bound one attempt's I/O       a cancel scope                   the time left, passed to every
                              (``anyio.fail_after``)           socket call (``_transports.timed``)
clean up despite cancelling   a shielded cancel scope          nothing to shield
many calls at once            a task group and a semaphore     a thread pool
race a backup attempt         a task group; the loser is       threads; a blocking read cannot
                              cancelled                        be interrupted, so the loser
                                                               finishes and is recorded
============================  ===============================  ===============================

Both time limits raise ``TimeoutError`` (async) or httpx's/httpcore's timeout errors (sync),
which the client maps to :class:`~multimodel.errors.ProviderTimeout`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, TypeVar

import anyio
import httpx

from .._transports.timed import time_limit

if TYPE_CHECKING:
    from concurrent.futures import Future

__all__ = [
    "AsyncSdkClose",
    "SdkClose",
    "abandon",
    "async_abandon",
    "async_gather",
    "async_race",
    "async_shield",
    "async_sleep",
    "async_time_limit",
    "gather",
    "io_time_limit",
    "race",
    "shield",
    "sleep",
    "time_limit",
]

_T = TypeVar("_T")
_R = TypeVar("_R")

# -- the OpenAI SDK's names -------------------------------------------------------------------


class AsyncSdkClose:
    """``await client.close()``: the OpenAI SDK's ``AsyncOpenAI`` closes with ``close()``, an
    async client of httpx's with ``aclose()``; the async client takes both."""

    if TYPE_CHECKING:

        async def aclose(self) -> None: ...

    async def close(self) -> None:
        """Close the client: ``aclose()``, by the OpenAI SDK's name."""
        await self.aclose()


class SdkClose:
    """The sync client's own ``close()`` is the SDK's: nothing to add."""


# -- waiting ----------------------------------------------------------------------------------


async def async_sleep(seconds: float) -> None:
    """Wait without blocking the event loop."""
    await anyio.sleep(seconds)


sleep = time.sleep

# -- time limits ------------------------------------------------------------------------------


def async_time_limit(seconds: float) -> AbstractContextManager[object]:
    """Cancel the block after ``seconds``; raises ``TimeoutError``."""
    return anyio.fail_after(seconds)


# ``time_limit`` (sync) is imported above: it bounds every socket call of multimodel's sync pool.

io_time_limit = time_limit
"""On both sides: pass the time left to each socket call of a transport that bounds its own
I/O (multimodel's pools), instead of a cancel scope per read."""


def async_shield() -> AbstractContextManager[object]:
    """Let clean-up inside the block finish even when the caller is being cancelled."""
    return anyio.CancelScope(shield=True)


def shield() -> AbstractContextManager[object]:
    """Nothing cancels a blocking call from outside: nothing to shield."""
    return nullcontext()


def async_abandon(response: httpx.Response | None, body: object) -> None:
    """Let go of a dropped stream's response without awaiting (a finalizer cannot): the body
    of multimodel's pool frees its connection slot now and the pool closes the socket on its
    next use; other transports' bodies do the same when they are collected."""
    release = getattr(getattr(response, "stream", None), "release_abandoned", None)
    if release is not None:
        release()


def abandon(response: httpx.Response | None, body: object) -> None:
    """Close a dropped stream's response now (a sync close needs no event loop)."""
    close = getattr(body, "close", None)
    if close is not None:
        close()
    if response is not None:
        response.close()


# -- concurrency ------------------------------------------------------------------------------


async def async_gather(
    call: Callable[[_T], Awaitable[_R]], items: Sequence[_T], concurrency: int
) -> list[_R]:
    """``[await call(item) for item in items]``, at most ``concurrency`` at a time, in order."""
    results: list[_R | None] = [None] * len(items)
    limiter = anyio.Semaphore(concurrency)

    async def one(index: int, item: _T) -> None:
        async with limiter:
            results[index] = await call(item)

    async with anyio.create_task_group() as group:
        for index, item in enumerate(items):
            group.start_soon(one, index, item)
    return results  # type: ignore[return-value]  # every slot is filled


def gather(call: Callable[[_T], _R], items: Sequence[_T], concurrency: int) -> list[_R]:
    """``[call(item) for item in items]``, at most ``concurrency`` threads at a time, in order."""
    if concurrency == 1 or len(items) <= 1:
        return [call(item) for item in items]
    # Imported here: concurrent.futures costs ~5 ms at import, and only batch and hedging
    # on the sync client use it.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(concurrency, len(items))) as pool:
        return list(pool.map(call, items))


async def async_race(
    first: Callable[[], Awaitable[_R | None]],
    delay: float,
    backup: Callable[[], Callable[[], Awaitable[_R | None]] | None],
) -> _R | None:
    """Run ``first``; if it has not finished after ``delay``, start ``backup()`` (when it gives
    one) beside it. Returns the first result that is not ``None`` (the other run is cancelled),
    or ``None`` when every run gave ``None``."""
    won: list[_R] = []
    running = [0]
    done = anyio.Event()

    async def run(call: Callable[[], Awaitable[_R | None]]) -> None:
        try:
            result = await call()
            if result is not None and not won:
                won.append(result)
        finally:
            running[0] -= 1
            if won or not running[0]:
                done.set()

    try:
        async with anyio.create_task_group() as group:
            running[0] += 1
            group.start_soon(run, first)
            with anyio.move_on_after(delay):
                await done.wait()
            if not done.is_set():
                second = backup()
                if second is not None:
                    running[0] += 1
                    group.start_soon(run, second)
            await done.wait()
            group.cancel_scope.cancel()
    except BaseException as exc:
        # An attempt raised (the client's own error, an interrupt): raise it as itself, as the
        # sync race does, rather than inside the task group's exception group.
        inner = getattr(exc, "exceptions", None)
        if inner is not None and len(inner) == 1:
            raise inner[0] from None
        raise
    return won[0] if won else None


def race(
    first: Callable[[], _R | None],
    delay: float,
    backup: Callable[[], Callable[[], _R | None] | None],
) -> _R | None:
    """The sync :func:`async_race`: runs in worker threads. A blocking read cannot be
    interrupted, so the losing run finishes in its thread (and records its outcome)."""
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    lock = threading.Lock()
    won: list[_R] = []

    def run(call: Callable[[], _R | None]) -> None:
        result = call()
        if result is not None:
            with lock:
                if not won:
                    won.append(result)

    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="multimodel-hedge")
    try:
        futures: list[Future[None]] = [pool.submit(run, first)]
        done, _ = wait(futures, timeout=delay)
        if not done:
            second = backup()
            if second is not None:
                futures.append(pool.submit(run, second))
        pending = set(futures)
        while pending and not won:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                future.result()  # re-raise KeyboardInterrupt and the like
    finally:
        pool.shutdown(wait=False)
    return won[0] if won else None
