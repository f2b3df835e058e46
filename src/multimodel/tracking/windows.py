"""Fixed-memory sliding-window counters: events and value sums over the last N seconds.

A :class:`SlidingWindow` of ``window`` seconds is a ring of ``buckets`` slots, each
``width = window / buckets`` seconds wide. Time ``t`` belongs to slot number
``floor(t / width)``; the window at time ``now`` is the slot holding ``now`` plus the
``buckets - 1`` slots before it. Running totals are kept alongside the ring, so:

* **Memory** is two lists of ``buckets`` numbers, whatever the event rate.
* **add** is O(1): the common case adds into the current slot. Moving to a later slot clears
  the slots passed over (at most ``buckets`` of them, each cleared once per time it is
  passed, so O(1) amortized); a gap of a whole window or more resets everything at once.
* **Expiry** is exact at slot granularity: an event at time ``t`` is counted while
  ``floor(now / width) - floor(t / width) < buckets``, i.e. for between ``window - width``
  and ``window`` seconds. With 1 s slots an event at ``t = 0.0`` is counted up to
  ``now < 60`` and is gone at ``now = 60``.
* **Reads** (:meth:`~SlidingWindow.total`, :meth:`~SlidingWindow.sum`,
  :meth:`~SlidingWindow.rate`) are O(1) amortized too: they expire old slots the same way.
  The running float sum is recomputed from the slots once per turn of the ring, so rounding
  error cannot build up.

Time is passed in (any monotonic seconds); nothing here reads a clock. An event older than the
window is ignored; a read at a time before the newest event reports the window as of that
event. Nothing here is thread-safe: the caller serialises access (the tracker holds its lock).

:class:`MultiWindow` bundles the usual 1 minute / 5 minute / 1 hour windows (60 slots of 1 s,
5 s and 60 s) and answers with a ``{"1m": ..., "5m": ..., "1h": ...}`` dict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

__all__ = ["DEFAULT_SPANS", "MultiWindow", "SlidingWindow"]

_NEVER = -(1 << 62)  # slot index before any real time

#: Label -> (window seconds, slots) for :class:`MultiWindow`.
DEFAULT_SPANS: Mapping[str, tuple[float, int]] = {
    "1m": (60.0, 60),
    "5m": (300.0, 60),
    "1h": (3600.0, 60),
}


class SlidingWindow:
    """Event count and value sum over the last ``window`` seconds, in ``buckets`` slots.

    Args:
        window: length of the window in seconds.
        buckets: number of slots; expiry is exact to ``window / buckets`` seconds.
    """

    __slots__ = ("_counts", "_head", "_sum", "_sums", "_total", "buckets", "width", "window")

    def __init__(self, window: float = 60.0, buckets: int = 60) -> None:
        if not 0.0 < window < math.inf:
            raise ValueError(f"window must be positive and finite, got {window!r}")
        if buckets < 1:
            raise ValueError(f"buckets must be at least 1, got {buckets!r}")
        self.window = float(window)
        self.buckets = buckets
        self.width = self.window / buckets
        self._counts = [0] * buckets
        self._sums = [0.0] * buckets
        self._head = _NEVER  # slot index of the newest slot in the window
        self._total = 0
        self._sum = 0.0

    def add(self, now: float, count: int = 1, value: float = 0.0) -> None:
        """Record ``count`` events carrying ``value`` in total (e.g. tokens, dollars) at ``now``.

        Events older than the window (relative to the newest one seen) are ignored."""
        index = int(now // self.width)
        head = self._head
        if index > head:
            self._advance(index)
        elif index <= head - self.buckets:
            return
        slot = index % self.buckets
        self._counts[slot] += count
        self._total += count
        if value:
            # Only when there is a value: 0.0 + 0.0 is a new float object, and a count-only
            # window (one per user and tag) would fill each of its slots with its own, growing
            # the process for as long as its longest window takes to turn (an hour).
            self._sums[slot] += value
            self._sum += value

    def _advance(self, index: int) -> None:
        """Move the window's newest slot to ``index``, clearing the slots it passes."""
        head = self._head
        buckets = self.buckets
        counts = self._counts
        sums = self._sums
        if index - head >= buckets:  # the whole window has gone by
            for slot in range(buckets):
                counts[slot] = 0
                sums[slot] = 0.0
            self._total = 0
            self._sum = 0.0
        else:
            total = self._total
            value = self._sum
            for position in range(head + 1, index + 1):
                slot = position % buckets
                total -= counts[slot]
                value -= sums[slot]
                counts[slot] = 0
                sums[slot] = 0.0
            self._total = total
            if total == 0 or index // buckets != head // buckets:
                value = math.fsum(sums)  # once per turn of the ring, and when idle: no drift
            self._sum = value
        self._head = index

    def _at(self, now: float) -> None:
        index = int(now // self.width)
        if index > self._head:
            self._advance(index)

    def total(self, now: float) -> int:
        """Events in the window ending at ``now``."""
        self._at(now)
        return self._total

    def sum(self, now: float) -> float:
        """Sum of the values recorded in the window ending at ``now``."""
        self._at(now)
        return self._sum

    def rate(self, now: float) -> float:
        """Events per second over the window: ``total(now) / window``.

        During the first window after start this under-counts (the window is not yet full)."""
        return self.total(now) / self.window

    def mean(self, now: float) -> float | None:
        """Mean value per event in the window (``None`` when it is empty)."""
        total = self.total(now)
        return self._sum / total if total else None

    def clear(self) -> None:
        """Forget every event."""
        for slot in range(self.buckets):
            self._counts[slot] = 0
            self._sums[slot] = 0.0
        self._head = _NEVER
        self._total = 0
        self._sum = 0.0

    def __repr__(self) -> str:
        return f"SlidingWindow(window={self.window!r}, buckets={self.buckets!r})"


class MultiWindow:
    """Several :class:`SlidingWindow` over the same events, read as a ``{label: ...}`` dict.

    Args:
        spans: label -> ``(window seconds, slots)``; defaults to :data:`DEFAULT_SPANS`
            (``"1m"``, ``"5m"``, ``"1h"``, each 60 slots).

    When every slot width is a whole multiple of the narrowest one (as in the defaults), events
    that fall in the same narrowest slot are summed in two numbers and written to every window
    once, when time moves to another slot or someone reads: an event in the common case costs
    two additions instead of one update per window. Reads see every event, pending or not.
    """

    __slots__ = ("_count", "_index", "_items", "_nested", "_time", "_value", "_width", "_windows")

    def __init__(self, spans: Mapping[str, tuple[float, int]] = DEFAULT_SPANS) -> None:
        if not spans:
            raise ValueError("spans must name at least one window")
        self._windows: dict[str, SlidingWindow] = {
            label: SlidingWindow(window, buckets) for label, (window, buckets) in spans.items()
        }
        self._items = tuple(self._windows.items())
        widths = [w.width for _, w in self._items]
        self._width = min(widths)
        # Slot boundaries of wider windows must be boundaries of the narrowest one, so that one
        # narrow slot lies inside one slot of every window.
        self._nested = all(abs(w / self._width - round(w / self._width)) < 1e-9 for w in widths)
        self._index = _NEVER  # the narrowest slot of the pending events
        self._time = 0.0  # a time inside that slot
        self._count = 0
        self._value = 0.0

    @property
    def windows(self) -> dict[str, SlidingWindow]:
        """The windows by label (pending events written first, so reads are complete)."""
        self._flush()
        return self._windows

    def add(self, now: float, count: int = 1, value: float = 0.0) -> None:
        """Record events in every window (see :meth:`SlidingWindow.add`)."""
        if self._nested:
            index = int(now // self._width)
            if index == self._index:  # the hot path: same narrowest slot as the pending ones
                self._count += count
                self._value += value
                return
            if index > self._index:
                self._flush()
                self._index, self._time, self._count, self._value = index, now, count, value
                return
        for _, window in self._items:  # an older slot (or unnested spans): straight in
            window.add(now, count, value)

    def _flush(self) -> None:
        count, value = self._count, self._value
        if count or value:
            self._count, self._value = 0, 0.0
            for _, window in self._items:
                window.add(self._time, count, value)

    def total(self, now: float) -> dict[str, int]:
        """Events per window ending at ``now``."""
        self._flush()
        return {label: window.total(now) for label, window in self._items}

    def sum(self, now: float) -> dict[str, float]:
        """Value sums per window ending at ``now``."""
        self._flush()
        return {label: window.sum(now) for label, window in self._items}

    def rate(self, now: float) -> dict[str, float]:
        """Events per second per window ending at ``now``."""
        self._flush()
        return {label: window.rate(now) for label, window in self._items}

    def mean(self, now: float) -> dict[str, float | None]:
        """Mean value per event per window (``None`` for an empty window)."""
        self._flush()
        return {label: window.mean(now) for label, window in self._items}

    def clear(self) -> None:
        """Forget every event in every window."""
        self._count, self._value, self._index = 0, 0.0, _NEVER
        for _, window in self._items:
            window.clear()

    def __repr__(self) -> str:
        return f"MultiWindow({list(self._windows)!r})"
