"""Events: model status changes (and, later, budget alerts), as callbacks and async iterators.

The seed platform pushes status over a WebSocket; in-process, subscribe directly::

    client.on("model_status_change", lambda event: print(event))

    async for event in client.events.iterate():  # AsyncClient, same event loop
        print(event.deployment, event.previous, "->", event.status)

Callbacks run synchronously where the change happened (keep them quick; exceptions are logged
and swallowed so that a faulty callback cannot break routing). Async iterators get events
through a bounded buffer; a consumer that falls behind loses the oldest events, never blocks
the router.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import anyio

from .errors import ConfigError

__all__ = ["EVENT_NAMES", "EventBus", "ModelStatusEvent"]

logger = logging.getLogger("multimodel.events")

EVENT_NAMES = ("model_status_change", "outcome", "budget_alert")


@dataclass(frozen=True, slots=True)
class ModelStatusEvent:
    """A deployment's health changed.

    Attributes:
        deployment, model, provider: which deployment.
        previous, status: ``healthy`` / ``degraded`` / ``down`` before and after.
        reason: what caused it (``ServerError``, ``probe succeeded``, ``rate limited`` ...).
        at: wall-clock time (epoch seconds).
    """

    deployment: str
    model: str
    provider: str
    previous: str
    status: str
    reason: str
    at: float
    type: str = "model_status_change"


class _Subscription:
    __slots__ = ("buffer", "dropped", "types", "wakeup")

    def __init__(self, types: frozenset[str], size: int) -> None:
        self.types = types
        self.buffer: deque[Any] = deque(maxlen=size)
        self.wakeup: anyio.Event | None = None
        self.dropped = 0


class EventBus:
    """Callbacks and async iterators per event name. One per client."""

    def __init__(self) -> None:
        self._callbacks: dict[str, list[Callable[[Any], None]]] = {}
        self._subs: list[_Subscription] = []
        self._lock = threading.Lock()
        self.history: deque[Any] = deque(maxlen=1000)

    def on(self, name: str, callback: Callable[[Any], None]) -> Callable[[], None]:
        """Call ``callback(event)`` for each ``name`` event; returns an unsubscribe function."""
        if name not in EVENT_NAMES:
            raise ConfigError(f"unknown event {name!r}; known: {', '.join(EVENT_NAMES)}")
        with self._lock:
            self._callbacks.setdefault(name, []).append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._callbacks.get(name, []):
                    self._callbacks[name].remove(callback)

        return unsubscribe

    def wants(self, name: str) -> bool:
        """Whether anybody listens to ``name`` (lets emitters skip building events)."""
        if self._callbacks.get(name):
            return True
        subs = self._subs
        return bool(subs) and any(name in s.types for s in subs)

    def emit(self, name: str, event: Any) -> None:
        """Deliver ``event`` to the callbacks and iterators subscribed to ``name``."""
        if name == "model_status_change":
            self.history.append(event)
        for callback in list(self._callbacks.get(name, ())):
            try:
                callback(event)
            except Exception:
                logger.exception("event callback %r failed", callback)
        for sub in list(self._subs):
            if name in sub.types:
                if len(sub.buffer) == sub.buffer.maxlen:
                    sub.dropped += 1
                sub.buffer.append(event)
                if sub.wakeup is not None:
                    sub.wakeup.set()

    async def iterate(
        self, names: tuple[str, ...] = ("model_status_change",), *, buffer: int = 1000
    ) -> AsyncIterator[Any]:
        """Yield events as they happen (use from the event loop that runs the client)."""
        for name in names:
            if name not in EVENT_NAMES:
                raise ConfigError(f"unknown event {name!r}; known: {', '.join(EVENT_NAMES)}")
        sub = _Subscription(frozenset(names), buffer)
        with self._lock:
            self._subs.append(sub)
        try:
            while True:
                while sub.buffer:
                    yield sub.buffer.popleft()
                sub.wakeup = anyio.Event()
                if sub.buffer:
                    continue
                await sub.wakeup.wait()
        finally:
            with self._lock:
                self._subs.remove(sub)
