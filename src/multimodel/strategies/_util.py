"""Small helpers shared by the strategies."""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence

from ..providers.base import Endpoint

__all__ = ["LockedRandom", "pick_min"]


class LockedRandom:
    """A seeded ``random.Random`` safe to share between threads (its state is guarded)."""

    __slots__ = ("_lock", "_rng")

    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def random(self) -> float:
        """A float in [0, 1)."""
        with self._lock:
            return self._rng.random()

    def randrange(self, n: int) -> int:
        """An int in [0, n)."""
        with self._lock:
            return self._rng.randrange(n)

    def sample2(self, n: int) -> tuple[int, int]:
        """Two distinct indexes in [0, n) (n >= 2).

        Lock-free: ``Random.random`` is one C call, atomic under the GIL (and locked inside on
        free-threaded builds), and is far cheaper than two locked ``randrange`` calls; the
        bias of ``int(random() * n)`` is below ``n / 2**53``."""
        random_ = self._rng.random
        a = int(random_() * n)
        b = int(random_() * (n - 1))
        return a, b + (b >= a)


def pick_min(
    candidates: Sequence[Endpoint], scores: Sequence[float], rng: LockedRandom
) -> Endpoint:
    """The candidate with the lowest score; ties broken at random (no herding on list order)."""
    best = min(scores)
    ties = [c for c, s in zip(candidates, scores, strict=True) if s <= best]
    return ties[0] if len(ties) == 1 else ties[rng.randrange(len(ties))]
