"""Client-side rate limits per deployment: requests and tokens per minute, never exceeded.

Each limit is a *sliding log* over the last 60 seconds: a reservation is recorded with its time
and size, and a request is admitted only if the sum over the window, plus its own size, stays
within the limit. Unlike a token bucket (which admits a full burst plus the refill), this holds
for *every* 60-second window, which is what providers enforce. Memory is bounded by the number
of requests admitted per window (at most ``rpm`` entries).

Tokens are reserved before sending from an estimate (prompt size plus ``max_tokens``) and
reconciled with the real usage afterwards. Providers' own headers tighten the picture:
``x-ratelimit-remaining-requests`` / ``-tokens`` with ``x-ratelimit-reset-*`` (OpenAI, Groq;
durations such as ``6s`` or ``12ms``) and ``anthropic-ratelimit-*-remaining`` / ``-reset``
(RFC 3339 times) add a phantom reservation so that we stop before the provider says no.

Everything here is pure: time is passed in; one lock makes it safe under threads and tasks.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Mapping
from datetime import datetime
from typing import Any

__all__ = ["RateLimiter", "Reservation", "parse_reset"]

WINDOW = 60.0
_new_object = object.__new__


class _Log:
    __slots__ = ("entries", "limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.entries: deque[list[Any]] = deque()  # [time, amount]

    def expire(self, now: float) -> None:
        entries = self.entries
        cutoff = now - WINDOW
        while entries and entries[0][0] <= cutoff:
            self.used -= entries.popleft()[1]

    def wait(self, amount: int, now: float) -> float:
        """Seconds until ``amount`` fits (0 now); a request larger than the limit waits for an
        empty window."""
        self.expire(now)
        amount = min(amount, self.limit)
        excess = self.used + amount - self.limit
        if excess <= 0:
            return 0.0
        freed = 0
        for when, size in self.entries:
            freed += size
            if freed >= excess:
                return max(0.0, float(when) + WINDOW - now)
        return WINDOW

    def take(self, amount: int, now: float) -> list[Any]:
        entry = [now, amount]
        self.entries.append(entry)
        self.used += amount
        return entry


class Reservation:
    """What was reserved for one attempt; hand it back to :meth:`RateLimiter.reconcile`."""

    __slots__ = ("_entry", "_request", "deployment", "shared", "shared_at", "tokens")

    def __init__(
        self,
        deployment: str,
        tokens: int,
        entry: list[Any] | None,
        request: list[Any] | None = None,
    ) -> None:
        self.deployment = deployment
        self.tokens = tokens
        self._entry = entry
        self._request = request
        self.shared: str | None = None  # its id in the shared state, once admitted there
        self.shared_at: tuple[int, float] | None = None  # (Redis ms, local monotonic) then


class RateLimiter:
    """Per-deployment ``rpm`` / ``tpm`` limits (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[str, _Log] = {}
        self._tokens: dict[str, _Log] = {}
        # Called with (deployment, shared id, actual tokens) when a reservation admitted by the
        # shared state is reconciled (``shared_state=``).
        self.on_reconcile: Any = None
        #: Whether any deployment has a limit (else every check passes): a plain attribute set
        #: by :meth:`configure`, read twice per call.
        self.any_limits = False

    def configure(self, deployment: str, *, rpm: int | None, tpm: int | None) -> None:
        """Set the limits of one deployment (``None``: unlimited)."""
        with self._lock:
            if rpm:
                self._requests[deployment] = _Log(rpm)
            if tpm:
                self._tokens[deployment] = _Log(tpm)
            self.any_limits = bool(self._requests or self._tokens)

    def limited(self, deployment: str) -> bool:
        """Whether ``deployment`` has any limit."""
        return deployment in self._requests or deployment in self._tokens

    def wait_time(self, deployment: str, tokens: int, now: float) -> float:
        """Seconds before a request of ``tokens`` may be sent to ``deployment`` (0: now)."""
        req = self._requests.get(deployment)
        tok = self._tokens.get(deployment)
        if req is None and tok is None:
            return 0.0
        with self._lock:
            wait = req.wait(1, now) if req is not None else 0.0
            if tok is not None:
                wait = max(wait, tok.wait(tokens, now))
        return wait

    def acquire(self, deployment: str, tokens: int, now: float) -> Reservation | None:
        """Reserve one request and ``tokens`` if both fit now; ``None`` when they do not."""
        req = self._requests.get(deployment)
        tok = self._tokens.get(deployment)
        if req is None and tok is None:
            # Reservation(deployment, tokens, None) without the __init__ call (every attempt
            # on an unlimited deployment takes this path).
            reservation: Reservation = _new_object(Reservation)
            reservation.deployment = deployment
            reservation.tokens = tokens
            reservation._entry = reservation._request = reservation.shared = None
            reservation.shared_at = None
            return reservation
        with self._lock:
            if (req is not None and req.wait(1, now) > 0) or (
                tok is not None and tok.wait(tokens, now) > 0
            ):
                return None
            request = req.take(1, now) if req is not None else None
            entry = tok.take(tokens, now) if tok is not None else None
        return Reservation(deployment, tokens, entry, request)

    def release(self, reservation: Reservation | None) -> None:
        """Give back a reservation whose attempt was never sent (the fleet refused it)."""
        if reservation is None:
            return
        with self._lock:
            for entry, log in (
                (reservation._request, self._requests.get(reservation.deployment)),
                (reservation._entry, self._tokens.get(reservation.deployment)),
            ):
                if entry is None or log is None:
                    continue
                if log.entries and log.entries[0][0] <= entry[0]:
                    log.used -= entry[1]
                    entry[1] = 0
        reservation._request = reservation._entry = None

    def reconcile(self, reservation: Reservation | None, actual_tokens: int | None) -> None:
        """Replace the estimate with the real token count (``None``: keep the estimate)."""
        if reservation is None:
            return
        if reservation.shared is not None and actual_tokens is not None:
            hook = self.on_reconcile
            if hook is not None and reservation.deployment in self._tokens:
                hook(reservation.deployment, reservation.shared, actual_tokens)
        entry = reservation._entry
        if entry is None or actual_tokens is None:
            return
        log = self._tokens.get(reservation.deployment)
        if log is None:
            return
        with self._lock:
            # Still in the window? (expired entries were popped and no longer count)
            if log.entries and log.entries[0][0] <= entry[0]:
                log.used += actual_tokens - entry[1]
                entry[1] = actual_tokens

    def observe(self, deployment: str, headers: Mapping[str, str], now: float) -> None:
        """Tighten the limits from a provider's rate-limit headers."""
        pairs = (
            (self._requests.get(deployment), "requests"),
            (self._tokens.get(deployment), "tokens"),
        )
        for log, kind in pairs:
            if log is None:
                continue
            remaining = headers.get(f"x-ratelimit-remaining-{kind}") or headers.get(
                f"anthropic-ratelimit-{kind}-remaining"
            )
            if remaining is None:
                continue
            try:
                left = int(float(remaining))
            except ValueError:
                continue
            reset = parse_reset(
                headers.get(f"x-ratelimit-reset-{kind}")
                or headers.get(f"anthropic-ratelimit-{kind}-reset"),
                now_wall=None,
            )
            with self._lock:
                log.expire(now)
                phantom = log.limit - left - log.used
                if phantom > 0:
                    # A phantom reservation that expires when the provider's window resets;
                    # inserted in time order (rare: only when the provider knows better).
                    when = now - WINDOW + min(reset if reset is not None else WINDOW, WINDOW)
                    index = 0
                    for index, entry in enumerate(log.entries):  # noqa: B007
                        if entry[0] > when:
                            break
                    else:
                        index = len(log.entries)
                    log.entries.insert(index, [when, phantom])
                    log.used += phantom


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_reset(value: str | None, *, now_wall: float | None) -> float | None:
    """Seconds until a rate-limit window resets: ``"6s"``, ``"1m30s"``, ``"12ms"``, a number of
    seconds, or an RFC 3339 time (Anthropic)."""
    if not value:
        return None
    value = value.strip()
    parts = _DURATION.findall(value)
    if parts and "".join(n + u for n, u in parts) == value:
        return sum(float(n) * _UNITS[u] for n, u in parts)
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    current = time.time() if now_wall is None else now_wall
    return max(0.0, when.timestamp() - current)
