"""Holds, breakers and status events shared by the fleet: a Retry-After hold or an open
circuit one process sees keeps the deployment out of rotation in all, and each process's status
changes and feedback scores reach the others (entries of a Redis stream, pushed by the
listener of ``_listener``, or read with the next round trip).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any

from ._core import Op, SharedCore

__all__ = ["FleetStatus"]


class _Strong:
    """A strong reference with the call shape of :class:`weakref.WeakMethod` (for plain
    functions and other callables, which have nothing that could keep a client alive)."""

    __slots__ = ("_target",)

    def __init__(self, target: Callable[[dict[str, str]], None]) -> None:
        self._target = target

    def __call__(self) -> Callable[[dict[str, str]], None]:
        return self._target


class FleetStatus(SharedCore):
    """Holds, breakers and status events (a part of ``RedisState``)."""

    _listeners: list[Callable[[], Callable[[dict[str, str]], None] | None]]
    _cursor: str | None
    _cursor_lock: threading.Lock

    def subscribe(self, listener: Callable[[dict[str, str]], None]) -> None:
        """Call ``listener`` with each status change another process announces (pushed by the
        listener of :meth:`listen` / :meth:`async_listen`; without one, read with this
        process's next Redis round trip).

        A bound method is held weakly: a client dropped without ``close()`` is not kept alive
        by the shared state (or its listener thread), and the listener stops once no
        subscriber is left (see :meth:`subscribers`)."""
        ref: Callable[[], Callable[[dict[str, str]], None] | None]
        if hasattr(listener, "__self__") and hasattr(listener, "__func__"):
            ref = weakref.WeakMethod(listener)
        else:
            ref = _Strong(listener)
        self._listeners.append(ref)

    def subscribers(self) -> list[Callable[[dict[str, str]], None]]:
        """The live subscribers (dead weak references are dropped)."""
        live = [listener for ref in self._listeners if (listener := ref()) is not None]
        if len(live) != len(self._listeners):
            self._listeners[:] = [ref for ref in self._listeners if ref() is not None]
        return live

    def announce(
        self,
        deployment: str,
        previous: str,
        status: str,
        reason: str,
        at: float,
        *,
        open_for: float | None = None,
    ) -> None:
        """Queue a status change of this process for the fleet (``open_for``: the seconds an
        opened breaker stays open, for the other processes to open theirs as long)."""
        fields = {
            "origin": self._owner,
            "deployment": deployment,
            "previous": previous,
            "status": status,
            "reason": reason,
            "at": repr(at),
        }
        if open_for is not None:
            fields["open_for"] = repr(open_for)
        self._queue(Op("announce", (self._events_key,), (fields,)))

    def share_feedback(
        self, model: str, task: str, score: float, at: float, *, source: str = ""
    ) -> None:
        """Queue one feedback score of this process for the fleet (``kind=feedback`` on the
        event stream; ``source`` names the client, as its ledger rows do)."""
        fields = {
            "origin": self._owner,
            "kind": "feedback",
            "model": model,
            "task": task,
            "score": repr(float(score)),
            "at": repr(float(at)),
            "source": source,
        }
        self._queue(Op("announce", (self._events_key,), (fields,)))

    def _deliver(self, entries: Any) -> None:
        """Hand the fleet's new entries (read after ``_cursor``) to the listeners, each once:
        the cursor moves under a lock (the listener thread and a pull may both read), the
        listeners run outside it."""
        news = []
        with self._cursor_lock:
            first = self._cursor is None
            for entry_id, fields in entries or ():
                ident = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
                if self._cursor is not None and not _after(ident, self._cursor):
                    continue  # read twice (a pull and the listener): delivered already
                self._cursor = ident
                if not first:  # the first read only finds where the stream ends: not news
                    news.append(fields)
            if first and self._cursor is None:
                self._cursor = "0-0"  # an empty stream: everything from now on is news
        for fields in news:
            event = {
                (k.decode() if isinstance(k, bytes) else str(k)): (
                    v.decode() if isinstance(v, bytes) else str(v)
                )
                for k, v in fields.items()
            }
            if event.get("origin") == self._owner:
                continue  # this process's own, announced here already
            for listener in self.subscribers():
                listener(event)

    def held(self, deployment: str, seconds: float) -> None:
        """Queue a Retry-After hold of ``deployment`` for the fleet."""
        ms = max(1, round(seconds * 1000))
        self._queue(Op("extend", (self._key(deployment, "hold"),), (ms, 0)))

    def opened(self, deployment: str, seconds: float) -> None:
        """Queue an open breaker for the fleet (kept afterwards to coordinate the probe)."""
        ms = max(1, round(seconds * 1000))
        self._queue(Op("extend", (self._key(deployment, "open"),), (ms, 600_000)))
        self._queue(Op("delete", (self._key(deployment, "probe"),), ()))

    def closed(self, deployment: str) -> None:
        """Queue the closing of a breaker (a probe succeeded) for the fleet."""
        self._queue(
            Op("delete", (self._key(deployment, "open"), self._key(deployment, "probe")), ())
        )


def _after(a: str, b: str) -> bool:
    """Whether stream id ``a`` comes after ``b``."""
    ams, _, aseq = a.partition("-")
    bms, _, bseq = b.partition("-")
    return (int(ams), int(aseq or 0)) > (int(bms), int(bseq or 0))
