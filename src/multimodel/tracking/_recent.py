"""A bounded map of the most recent keys, in two generations (the ids feedback can name, the
scores another process already shared).

Why not an ``OrderedDict`` trimmed one key in, one key out: a dict that churns keeps its size
but is reallocated whole every time its deleted slots fill it (a 100,000-entry map: a table of
several MiB freed and allocated again every ~50,000 insertions). After the first such table is
freed, glibc raises its mmap threshold to that size and serves the next ones from the heap, where
they fragment it: a process that remembered 100,000 response ids grew by ~11 % after its first
few hundred thousand requests and never gave it back (``benchmarks/soak_memory.py``; the same
churn alone, 2M keys: 32 → 48 MiB, against a flat ~35 MiB in generations). Generations only
insert, then drop a whole dict: the same allocation sizes come back every cycle, and nothing
is ever searched past deleted slots.
"""

from __future__ import annotations

from typing import Generic, TypeVar

__all__ = ["Recent"]

K = TypeVar("K")
V = TypeVar("V")


class Recent(Generic[K, V]):
    """The last ``size`` keys put, at least, and at most ``2 * size``: keys go into the young
    generation; when it holds ``size`` keys it becomes the old one and the previous old one is
    dropped whole.

    Safe to share between threads for what it is used for: each operation is a few dict
    operations that hold the GIL, and a key put while the generations turn lands in one of the two.
    """

    __slots__ = ("_old", "_size", "_young")

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("size must be >= 1")
        self._size = size
        self._young: dict[K, V] = {}
        self._old: dict[K, V] = {}

    def put(self, key: K, value: V) -> None:
        """Remember ``key`` (again, if it is already there: its value replaced)."""
        young = self._young
        young[key] = value
        if len(young) >= self._size:
            self._old, self._young = young, {}

    def get(self, key: K) -> V | None:
        """The value of ``key``, or ``None`` when it is forgotten (or was never put)."""
        found = self._young.get(key)
        return self._old.get(key) if found is None else found

    def pop(self, key: K) -> bool:
        """Forget ``key``; whether it was there."""
        young = self._young.pop(key, self) is not self
        return self._old.pop(key, self) is not self or young

    def __contains__(self, key: object) -> bool:
        return key in self._young or key in self._old

    def __len__(self) -> int:
        return len(self._young) + len(self._old)
