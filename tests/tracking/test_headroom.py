"""Rate-limit headroom read from response headers (OpenAI and Anthropic styles)."""

from __future__ import annotations

import httpx
import pytest

from multimodel._core.clock import ManualClock
from multimodel.tracking.headroom import parse_headroom
from multimodel.tracking.stats import Tracker


def test_openai_headers_smallest_share_and_its_reset() -> None:
    headers = httpx.Headers(
        {
            "x-ratelimit-limit-requests": "500",
            "x-ratelimit-remaining-requests": "400",
            "x-ratelimit-reset-requests": "12s",
            "x-ratelimit-limit-tokens": "10000",
            "x-ratelimit-remaining-tokens": "500",
            "x-ratelimit-reset-tokens": "1m30s",
        }
    )
    assert parse_headroom(headers) == (0.05, 60.0)  # tokens: 5 % left, reset capped at a minute


def test_anthropic_headers_with_rfc3339_reset() -> None:
    headers = {
        "anthropic-ratelimit-requests-limit": "50",
        "anthropic-ratelimit-requests-remaining": "1",
        "anthropic-ratelimit-requests-reset": "2023-11-14T22:13:40Z",
        "anthropic-ratelimit-output-tokens-limit": "8000",
        "anthropic-ratelimit-output-tokens-remaining": "7000",
    }
    fraction, holds = parse_headroom(headers, now_wall=1_700_000_000.0) or (None, None)
    assert fraction == pytest.approx(0.02)
    assert holds == pytest.approx(20.0)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"x-request-id": "r"}, None),  # no budget reported
        ({"x-ratelimit-remaining-requests": "0"}, (0.0, 60.0)),  # none left, limit unknown
        ({"x-ratelimit-remaining-requests": "7"}, None),  # some left, share unknown
        ({"x-ratelimit-remaining-requests": "x", "x-ratelimit-limit-requests": "9"}, None),
    ],
)
def test_partial_or_missing_headers(
    headers: dict[str, str], expected: tuple[float, float] | None
) -> None:
    assert parse_headroom(headers) == expected


def test_tracker_keeps_the_reading_until_the_reset_and_rereads_near_the_limit() -> None:
    clock = ManualClock()
    tracker = Tracker(clock.monotonic)

    def answer(remaining: int) -> dict[str, str]:
        return {
            "x-ratelimit-limit-requests": "100",
            "x-ratelimit-remaining-requests": str(remaining),
            "x-ratelimit-reset-requests": "6s",
        }

    tracker.observe_headers("a", answer(90))
    cell = tracker.get("a")
    assert (cell.headroom, cell.headroom_until) == (0.9, clock.monotonic() + 6.0)
    for remaining in (80, 70, 60):  # plenty left: every 4th answer is read
        tracker.observe_headers("a", answer(remaining))
    assert cell.headroom == 0.9
    tracker.observe_headers("a", answer(5))
    tracker.observe_headers("a", answer(2))  # near the limit: every answer is read
    assert cell.headroom == 0.02
    tracker.observe_headers("b", {"x-request-id": "r"})  # no budget: headroom stays unknown
    assert tracker.get("b").headroom == 1.0


def test_record_with_headers_reads_them_as_observe_headers_does() -> None:
    # Tracker.record(outcome, headers) folds observe_headers into the answer's bookkeeping: the
    # headroom, its reset and the skip cadence must be exactly those of the two calls.
    from multimodel.tracking.outcome import Outcome

    def answers() -> list[dict[str, str]]:
        budget = [
            {
                "x-ratelimit-limit-requests": "100",
                "x-ratelimit-remaining-requests": str(remaining),
                "x-ratelimit-reset-requests": "6s",
            }
            for remaining in (90, 80, 70, 60, 5, 2, 40, 30)
        ]
        return budget + [{"x-request-id": "r"}] * 70 + budget

    outcome = Outcome(
        deployment="a", model="m", provider="openai", ok=True, latency=0.1, started_at=0.0
    )
    clocks = ManualClock(), ManualClock()
    merged, separate = Tracker(clocks[0].monotonic), Tracker(clocks[1].monotonic)
    seen = []
    for headers in answers():
        for clock in clocks:
            clock.advance(0.5)
        merged.started("a")
        merged.record(outcome, headers)
        separate.started("a")
        separate.observe_headers("a", headers)
        separate.record(outcome)
        one, two = merged.get("a"), separate.get("a")
        pair = (one.headroom, one.headroom_until, one.headroom_skip)  # type: ignore[attr-defined]
        assert pair == (two.headroom, two.headroom_until, two.headroom_skip)  # type: ignore[attr-defined]
        seen.append(pair[0])
    assert 0.02 in seen and 0.9 in seen  # the readings did change along the way
    assert merged.snapshot().deployments["a"] == separate.snapshot().deployments["a"]
