"""Circuit breakers and health status (HealthBoard), with time passed in."""

from __future__ import annotations

import itertools
import sys
import threading

import pytest

from multimodel.errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ContentFiltered,
    MalformedResponse,
    NotFoundError,
    Overloaded,
    PermissionDeniedError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeout,
    QuotaExhausted,
    RateLimited,
    ServerError,
    StreamInterrupted,
)
from multimodel.resilience.circuit import CircuitPolicy, HealthBoard

Event = tuple[str, str, str, str]


def server_error(retry_after: float | None = None) -> ServerError:
    return ServerError("boom", status=500, retry_after=retry_after)


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self._lock = threading.Lock()

    def __call__(self, name: str, previous: str, status: str, reason: str) -> None:
        with self._lock:
            self.events.append((name, previous, status, reason))

    def transitions(self, name: str = "a") -> list[tuple[str, str]]:
        return [(p, s) for n, p, s, _ in self.events if n == name]


def board(**policy: object) -> tuple[HealthBoard, Recorder]:
    rec = Recorder()
    return HealthBoard(CircuitPolicy(**policy), rec), rec  # type: ignore[arg-type]


def open_after(b: HealthBoard, name: str, n: int, now: float) -> None:
    for _ in range(n):
        b.on_failure(name, server_error(), now)


def is_open(b: HealthBoard, name: str, now: float) -> bool:
    ok, reason, _ = b.check(name, now)
    return not ok and reason is not None and reason.startswith("cooldown")


def test_unknown_deployment_is_available() -> None:
    b, rec = board()
    assert b.check("never-seen", 0.0) == (True, None, None)
    assert b.status("never-seen") == "healthy"
    assert rec.events == []


def test_opens_after_consecutive_failures() -> None:
    b, _ = board(failure_threshold=3, cooldown=5.0)
    open_after(b, "a", 2, 0.0)
    assert b.check("a", 0.0) == (True, None, None)
    b.on_failure("a", server_error(), 1.0)
    ok, reason, retry_at = b.check("a", 1.0)
    assert not ok
    assert reason is not None and reason.startswith("cooldown (5.00s left)")
    assert retry_at == 6.0
    assert b.status("a") == "down"
    assert is_open(b, "a", 5.99)
    assert b.check("a", 6.0) == (True, None, None)  # cooldown over: a probe may go


def test_success_resets_the_consecutive_count() -> None:
    b, _ = board(failure_threshold=3, min_requests=1000)
    for t in range(10):
        open_after(b, "a", 2, float(t))
        b.on_success("a", float(t))
    assert b.check("a", 10.0) == (True, None, None)


@pytest.mark.parametrize(
    "error",
    [
        ServerError("x", status=500),
        ProviderTimeout("x"),
        ProviderConnectionError("x"),
        MalformedResponse("x", status=200),
    ],
    ids=lambda e: type(e).__name__,
)
def test_counted_failures(error: ProviderError) -> None:
    b, _ = board(failure_threshold=2)
    b.on_failure("a", error, 0.0)
    b.on_failure("a", error, 0.0)
    assert is_open(b, "a", 0.0)


@pytest.mark.parametrize(
    "error",
    [
        BadRequestError("x", status=400),
        ContentFiltered("x", status=400),
        ConflictError("x", status=409),
        StreamInterrupted("x"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_request_faults_do_not_count(error: ProviderError) -> None:
    b, rec = board(failure_threshold=1)
    for _ in range(5):
        b.on_failure("a", error, 0.0)
    assert b.check("a", 0.0) == (True, None, None)
    assert b.status("a") == "healthy"
    assert rec.events == []


def test_failure_ratio_trips() -> None:
    b, _ = board(failure_threshold=100, failure_ratio=0.5, min_requests=10, window=30.0)
    # Alternate success / failure: never 2 in a row, but half of the attempts fail.
    for i in range(4):
        b.on_success("a", float(i))
        b.on_failure("a", server_error(), float(i))
    assert b.check("a", 4.0)[0]  # 8 attempts < min_requests
    b.on_success("a", 4.0)
    assert b.check("a", 4.0)[0]  # 9 attempts
    b.on_failure("a", server_error(), 4.0)  # 10 attempts, 5 failures: 50 %
    assert is_open(b, "a", 4.0)


def test_failure_ratio_below_threshold_does_not_trip() -> None:
    b, _ = board(failure_threshold=100, failure_ratio=0.5, min_requests=10)
    for i in range(30):
        b.on_success("a", float(i))
        b.on_success("a", float(i))
        b.on_failure("a", server_error(), float(i))  # one in three fails
    assert b.check("a", 30.0)[0]


def test_failure_ratio_window_forgets_old_failures() -> None:
    b, _ = board(failure_threshold=100, failure_ratio=0.5, min_requests=10, window=30.0)
    for _ in range(9):
        b.on_failure("a", server_error(), 0.0)
        b.on_success("a", 0.0)
    # A minute later the window holds only the new attempts.
    for _ in range(9):
        b.on_success("a", 60.0)
    b.on_failure("a", server_error(), 60.0)
    assert b.check("a", 60.0)[0]


def test_cooldown_doubles_on_reopen_and_caps() -> None:
    b, _ = board(failure_threshold=1, cooldown=1.0, max_cooldown=5.0)
    now = 0.0
    b.on_failure("a", server_error(), now)
    expected = [1.0, 2.0, 4.0, 5.0, 5.0]
    for cooldown in expected:
        _, _, until = b.check("a", now)
        assert until == pytest.approx(now + cooldown)
        now = until  # type: ignore[assignment]
        assert b.check("a", now)[0]
        b.on_send("a", now)  # the half-open probe ...
        b.on_failure("a", server_error(), now)  # ... fails: open again, for longer
    # A successful probe closes the breaker and resets the cooldown.
    _, _, until = b.check("a", now)
    now = until  # type: ignore[assignment]
    b.on_send("a", now)
    b.on_success("a", now)
    assert b.check("a", now) == (True, None, None)
    b.on_failure("a", server_error(), now)
    assert b.check("a", now)[2] == pytest.approx(now + 1.0)


def test_retry_after_lengthens_cooldown() -> None:
    b, _ = board(failure_threshold=1, cooldown=1.0, max_cooldown=5.0)
    b.on_failure("a", server_error(retry_after=30.0), 0.0)
    assert b.check("a", 0.0)[2] == 30.0  # never shorter than the provider asked
    b2, _ = board(failure_threshold=1, cooldown=10.0)
    b2.on_failure("a", server_error(retry_after=2.0), 0.0)
    assert b2.check("a", 0.0)[2] == 10.0  # a shorter hint does not shorten it


def test_half_open_lets_exactly_one_probe_through() -> None:
    b, _ = board(failure_threshold=1, cooldown=1.0)
    b.on_failure("a", server_error(), 0.0)
    assert b.check("a", 1.0)[0]
    b.on_send("a", 1.0)  # the probe
    for t in (1.0, 1.5, 100.0):
        ok, reason, _ = b.check("a", t)
        assert not ok
        assert reason == "half-open: probe in flight"
    assert b.status("a") == "degraded"
    b.on_success("a", 2.0)
    assert b.check("a", 2.0) == (True, None, None)
    assert b.check("a", 2.0) == (True, None, None)  # closed: everyone may go


def test_half_open_probe_failure_reopens_longer() -> None:
    b, _ = board(failure_threshold=1, cooldown=1.0)
    b.on_failure("a", server_error(), 0.0)
    b.on_send("a", 1.0)
    b.on_failure("a", server_error(), 1.5)
    assert is_open(b, "a", 1.5)
    assert b.check("a", 1.5)[2] == pytest.approx(3.5)  # 2 s: doubled


def test_cancelled_probe_frees_the_slot() -> None:
    b, _ = board(failure_threshold=1, cooldown=1.0)
    b.on_failure("a", server_error(), 0.0)
    b.on_send("a", 1.0)
    assert not b.check("a", 1.0)[0]
    b.on_cancel("a")
    assert b.check("a", 1.0)[0]


@pytest.mark.parametrize(
    "error",
    [BadRequestError("x", status=400), ConflictError("x", status=409), StreamInterrupted("x")],
    ids=lambda e: type(e).__name__,
)
def test_half_open_probe_with_uncounted_error_frees_the_slot(error: ProviderError) -> None:
    # A probe that fails because of the request (or a 409) proves nothing about the
    # deployment; it must not leave the breaker waiting forever for a probe that is over.
    b, _ = board(failure_threshold=1, cooldown=1.0)
    b.on_failure("a", server_error(), 0.0)
    b.on_send("a", 1.0)
    b.on_failure("a", error, 1.1)
    assert b.check("a", 1.2)[0]


@pytest.mark.parametrize(
    "error",
    [
        RateLimited("x", status=429, retry_after=5.0),
        Overloaded("x", status=503, retry_after=5.0),
        Overloaded("x", status=529, retry_after=5.0),
    ],
    ids=lambda e: str(e.status),
)
def test_load_signals_hold_but_never_open(error: RateLimited | Overloaded) -> None:
    b, rec = board(failure_threshold=1, failure_ratio=0.1, min_requests=1)
    for _ in range(20):
        b.on_failure("a", error, 0.0)
    ok, reason, retry_at = b.check("a", 1.0)
    assert not ok
    assert reason is not None and reason.startswith("rate limited (Retry-After, 4.00s left)")
    assert retry_at == 5.0
    assert b.status("a") == "degraded"  # held back, not down
    assert all(status != "down" for _, _, status, _ in rec.events)
    assert b.check("a", 5.0) == (True, None, None)  # the breaker never opened


def test_load_signal_without_retry_after_does_not_hold() -> None:
    b, _ = board(failure_threshold=1)
    for _ in range(10):
        b.on_failure("a", RateLimited("x", status=429), 0.0)
    assert b.check("a", 0.0) == (True, None, None)


def test_hold() -> None:
    b, rec = board()
    b.hold("a", 10.0, now=0.0)
    assert b.check("a", 9.9)[:2] == (False, "rate limited (Retry-After, 0.10s left)")
    assert b.check("a", 10.0) == (True, None, None)
    b.hold("a", 5.0, now=1.0)  # a shorter hold does not shorten the longer one
    assert b.check("a", 9.0)[2] == 10.0
    assert rec.transitions() == [("healthy", "degraded")]


def test_hold_during_half_open_probe_releases_probe_on_load_signal() -> None:
    b, _ = board(failure_threshold=1, cooldown=1.0)
    b.on_failure("a", server_error(), 0.0)
    b.on_send("a", 1.0)
    b.on_failure("a", RateLimited("x", status=429, retry_after=2.0), 1.1)
    assert not b.check("a", 2.0)[0]  # held by the Retry-After ...
    assert b.check("a", 3.1)[0]  # ... then another probe may go


@pytest.mark.parametrize(
    "error",
    [
        AuthenticationError("x", status=401),
        PermissionDeniedError("x", status=403),
        NotFoundError("x", status=404),
        QuotaExhausted("x", status=429),
    ],
    ids=lambda e: type(e).__name__,
)
def test_fatal_errors_open_for_max_cooldown(error: ProviderError) -> None:
    b, _ = board(failure_threshold=5, cooldown=1.0, max_cooldown=300.0)
    b.on_failure("a", error, 10.0)
    ok, _, retry_at = b.check("a", 10.0)
    assert not ok
    assert retry_at == 310.0
    assert b.status("a") == "down"


def test_status_events_once_per_transition() -> None:
    b, rec = board(failure_threshold=3, cooldown=1.0)
    b.on_success("a", 0.0)
    assert rec.events == []  # healthy -> healthy is no event
    b.on_failure("a", server_error(), 0.0)  # error rate 0.3 >= 0.25: degraded
    b.on_failure("a", server_error(), 0.0)
    b.on_failure("a", server_error(), 0.0)  # third in a row: down
    b.on_failure("a", server_error(), 0.1)  # a late failure of an earlier request
    assert b.check("a", 0.5)[0] is False
    b.on_send("a", 1.0)  # half-open probe: degraded
    b.on_success("a", 1.2)  # closed; the recent error rate is still high ...
    for t in range(2, 10):
        b.on_success("a", float(t))  # ... and falls with each success: healthy
    assert rec.transitions() == [
        ("healthy", "degraded"),
        ("degraded", "down"),
        ("down", "degraded"),
        ("degraded", "healthy"),
    ]
    reasons = [r for *_, r in rec.events]
    assert reasons[1] == "ServerError"
    assert reasons[2] == "probing after cooldown"
    assert b.status("a") == "healthy"


def test_status_events_per_deployment() -> None:
    b, rec = board(failure_threshold=1)
    b.on_failure("a", server_error(), 0.0)
    b.on_failure("b", AuthenticationError("x", status=401), 0.0)
    assert rec.events == [
        ("a", "healthy", "down", "ServerError"),
        ("b", "healthy", "down", "AuthenticationError"),
    ]


def test_status_events_consistent_under_threads() -> None:
    """Under threads each event's ``previous`` is the status the last event announced."""
    b, rec = board(failure_threshold=2, cooldown=0.0, degraded_error_rate=0.25)
    barrier = threading.Barrier(8)

    def work(i: int) -> None:
        barrier.wait()
        for j in range(400):
            if (i + j) % 3:
                b.on_success("a", float(j))
            else:
                b.on_failure("a", server_error(), float(j))
                b.on_send("a", float(j))

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        pool = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in pool:
            t.start()
        for t in pool:
            t.join(timeout=30)
    finally:
        sys.setswitchinterval(old)
    transitions = rec.transitions()
    assert transitions
    assert transitions[0][0] == "healthy"
    for (_, status), (previous, new) in itertools.pairwise(transitions):
        assert previous == status
        assert new != previous
    assert transitions[-1][1] == b.status("a")


def test_earliest_recovery() -> None:
    b, _ = board(failure_threshold=1, cooldown=5.0)
    b.on_failure("a", server_error(), 0.0)  # open until 5
    b.on_failure("b", RateLimited("x", status=429, retry_after=3.0), 0.0)  # held until 3
    b.on_failure("c", server_error(retry_after=8.0), 0.0)  # open until 8
    assert b.earliest_recovery(["a", "b", "c"], 0.0) == 3.0
    assert b.earliest_recovery(["a", "c"], 0.0) == 5.0
    assert b.earliest_recovery(["c"], 6.0) == 8.0
    assert b.earliest_recovery(["a"], 6.0) == 6.0  # already over: now
    assert b.earliest_recovery(["a", "never-seen"], 0.0) == 0.0
    assert b.earliest_recovery([], 0.0) is None


def test_policy_is_immutable_and_replace() -> None:
    p = CircuitPolicy()
    q = p.replace(cooldown=1.0)
    assert p.cooldown == 5.0
    assert q.cooldown == 1.0
    with pytest.raises(AttributeError):
        p.cooldown = 2.0  # type: ignore[misc]


def test_late_failures_while_open_do_not_escalate_the_cooldown() -> None:
    # Ten requests in flight fail together: the breaker opens once, with the first cooldown,
    # rather than re-opening (and doubling) for each late failure.
    b, rec = board(failure_threshold=5, cooldown=1.0, max_cooldown=300.0)
    open_after(b, "a", 10, 0.0)
    assert rec.transitions() == [("healthy", "degraded"), ("degraded", "down")]
    assert b.check("a", 0.0)[2] == 1.0
    assert b.check("a", 1.0)[0]
    b.on_send("a", 1.0)
    b.on_failure("a", server_error(), 1.0)  # the probe fails: the second cooldown, 2 s
    assert b.check("a", 1.0)[2] == 3.0
    # A late failure that carries a longer Retry-After still extends the open period.
    b.on_failure("a", server_error(retry_after=10.0), 1.5)
    assert b.check("a", 1.5)[2] == 11.5


def test_late_success_while_open_does_not_close() -> None:
    # A slow request sent before the breaker opened proves little; only the probe decides.
    b, _ = board(failure_threshold=2, cooldown=10.0)
    open_after(b, "a", 2, 0.0)
    b.on_success("a", 1.0)
    assert is_open(b, "a", 1.0)


def test_all_closed_tracks_every_way_a_check_can_fail() -> None:
    # The router skips per-deployment checks while all_closed is True, so it must turn False
    # whenever any check() could fail, and back to True only once every breaker is settled.
    b, _ = board(failure_threshold=1, cooldown=5.0)
    assert b.all_closed
    b.on_send("a", 0.0)
    b.on_success("a", 0.0)
    assert b.all_closed
    b.on_failure("a", server_error(), 1.0)  # opens
    assert not b.all_closed and not b.check("a", 1.0)[0]
    b.on_send("a", 6.0)  # half-open probe
    assert not b.all_closed and not b.check("a", 6.0)[0]
    b.on_success("a", 6.5)  # probe succeeded: closed
    assert b.all_closed and b.check("a", 6.5)[0]
    b.on_failure("b", RateLimited("slow down", status=429, retry_after=2.0), 7.0)  # a hold
    assert not b.all_closed and not b.check("b", 8.0)[0]
    assert b.check("b", 9.0)[0]  # the hold ran out: checks pass before anything settles it
    b.on_send("b", 9.0)
    b.on_success("b", 9.1)
    assert b.all_closed
    b.hold("c", 20.0, 10.0)
    assert not b.all_closed and not b.check("c", 15.0)[0]
