"""The SQLite usage ledger: durability, batching, never blocking, content privacy, queries."""

from __future__ import annotations

import json
import logging
import multiprocessing
import sqlite3
import threading
import time
from contextlib import closing
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from multimodel.tracking.ledger import (
    SCHEMA_VERSION,
    DailyRow,
    LedgerError,
    ModelCostRow,
    UsageLedger,
    UserRow,
    parse_since,
)
from multimodel.tracking.outcome import Outcome
from multimodel.types import Message, Usage

NOW = datetime(2024, 3, 10, 12, 0, tzinfo=timezone.utc).timestamp()
HOUR = 3600.0
DAY = 86400.0


def outcome(**kw: Any) -> Outcome:
    fields: dict[str, Any] = {
        "deployment": "oa-1",
        "model": "gpt-4o",
        "provider": "openai",
        "ok": True,
        "latency": 1.0,
        "started_at": NOW,
    }
    fields.update(kw)
    return Outcome(**fields)


def raw(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql, params).fetchall()


def count(path: Path) -> int:
    return int(raw(path, "SELECT COUNT(*) FROM usage")[0][0])


# -- lifecycle and storage -------------------------------------------------------------------


def test_nothing_is_opened_until_first_use(tmp_path: Path) -> None:
    path = tmp_path / "usage.db"
    ledger = UsageLedger(path)
    assert not path.exists()
    ledger.close()  # closing an unused ledger is fine and still touches nothing
    assert not path.exists()
    assert ledger.closed


def test_wal_mode_schema_version_and_indexes(tmp_path: Path) -> None:
    path = tmp_path / "usage.db"
    with UsageLedger(path):
        assert path.exists()
        assert raw(path, "PRAGMA journal_mode")[0][0] == "wal"
        assert raw(path, "SELECT value FROM meta WHERE key='schema_version'") == [
            (str(SCHEMA_VERSION),)
        ]
        indexes = {
            name for (name,) in raw(path, "SELECT name FROM sqlite_master WHERE type='index'")
        }
        assert {
            "ix_usage_model_ts",
            "ix_usage_user_ts",
            "ix_usage_day",
            "ix_usage_deployment_ts",
            "ix_usage_ts",
        } <= indexes
        plan = raw(path, "EXPLAIN QUERY PLAN SELECT * FROM usage WHERE model = 'x' AND ts > 0")
        assert "ix_usage_model_ts" in str(plan)


def test_reopening_keeps_rows_and_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "usage.db"
    with UsageLedger(path) as ledger:
        ledger.record(outcome())
    with UsageLedger(path) as ledger:
        ledger.record(outcome())
    assert count(path) == 2
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
        conn.commit()
    with pytest.raises(LedgerError, match="newer"):
        UsageLedger(path).open()


def test_round_trip_of_every_field(tmp_path: Path) -> None:
    path = tmp_path / "usage.db"
    exact = Decimal("0.000123456789012345678901")  # more digits than a float holds
    full = outcome(
        deployment="az-east",
        model="gpt-4o",
        provider="azure",
        ok=False,
        latency=2.5,
        started_at=NOW - 10.25,
        error="RateLimited",
        status=429,
        ttft=0.125,
        usage=Usage(
            input_tokens=1200,
            output_tokens=340,
            cache_read_tokens=1000,
            cache_write_tokens=100,
            reasoning_tokens=40,
        ),
        cost=exact,
        stream=True,
        cached=True,
        user="alice",
        tags=("prod", "chat"),
        response_model="gpt-4o-2024-08-06",
        finish_reason="length",
        request_id="req_123",
        attempt=3,
    )
    bare = outcome(started_at=NOW - 5, cost=None, usage=None)
    with UsageLedger(path) as ledger:
        ledger.record(full)
        ledger.record(bare)
        assert ledger.flush(timeout=10)
        newest, oldest = ledger.requests(since=0)
    assert (newest.ts, newest.cost, newest.input_tokens, newest.tags) == (NOW - 5, None, 0, ())
    assert oldest.cost == exact and str(oldest.cost) == str(exact)
    assert (oldest.ts, oldest.day) == (NOW - 10.25, "2024-03-10")
    assert (oldest.deployment, oldest.model, oldest.provider) == ("az-east", "gpt-4o", "azure")
    assert (oldest.ok, oldest.error, oldest.status) == (False, "RateLimited", 429)
    assert (oldest.latency, oldest.ttft, oldest.stream, oldest.cached) == (2.5, 0.125, True, True)
    assert (oldest.user, oldest.tags) == ("alice", ("prod", "chat"))
    assert (oldest.response_model, oldest.finish_reason) == ("gpt-4o-2024-08-06", "length")
    assert (oldest.request_id, oldest.attempt) == ("req_123", 3)
    assert (
        oldest.input_tokens,
        oldest.output_tokens,
        oldest.cache_read_tokens,
        oldest.cache_write_tokens,
        oldest.reasoning_tokens,
    ) == (1200, 340, 1000, 100, 40)
    stored = raw(path, "SELECT cost, cost_micro_usd, tags, ok FROM usage ORDER BY id")
    assert stored == [
        ("0.000123456789012345678901", 123, '["prod", "chat"]', 0),
        (None, None, "[]", 1),
    ]


# -- the writer: batching, flushing, closing, never blocking ----------------------------------


def test_batches_many_records_into_few_transactions(tmp_path: Path) -> None:
    path = tmp_path / "usage.db"
    with UsageLedger(path, batch_size=100, flush_interval=30) as ledger:
        for i in range(50):
            ledger.record(outcome(attempt=i))
        time.sleep(0.1)
        assert ledger.written == 0 and ledger.pending == 50  # below batch_size, before interval
        assert ledger.flush(timeout=10)
        assert (ledger.written, ledger.batches) == (50, 1)
        for i in range(1000):
            ledger.record(outcome(attempt=i))
        assert ledger.flush(timeout=10)
        assert ledger.written == 1050
        assert ledger.batches <= 1 + 11
    assert count(path) == 1050


def test_flush_interval_writes_without_an_explicit_flush(tmp_path: Path) -> None:
    with UsageLedger(tmp_path / "usage.db", flush_interval=0.02) as ledger:
        ledger.record(outcome())
        deadline = time.monotonic() + 5
        while ledger.written == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ledger.written == 1


def test_close_drains_the_queue_and_is_idempotent(tmp_path: Path, caplog: Any) -> None:
    path = tmp_path / "usage.db"
    ledger = UsageLedger(path, batch_size=10_000, flush_interval=30)
    for _ in range(300):
        ledger.record(outcome())
    ledger.close()
    ledger.close()
    assert count(path) == 300
    with caplog.at_level(logging.WARNING, logger="multimodel.tracking.ledger"):
        ledger.record(outcome())
    assert ledger.dropped == 1 and "after close" in caplog.text
    with pytest.raises(LedgerError):
        ledger.open()


def test_record_never_blocks_and_overflow_drops_the_oldest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    ledger = UsageLedger(tmp_path / "usage.db", batch_size=10, flush_interval=0.01, max_queue=100)
    entered, release = threading.Event(), threading.Event()
    real_insert = ledger._writer.insert

    def slow_insert(conn: sqlite3.Connection, batch: list[Any]) -> None:
        entered.set()
        release.wait(10)  # a disk that stalls
        real_insert(conn, batch)

    monkeypatch.setattr(ledger._writer, "insert", slow_insert)
    try:
        ledger.record(outcome(attempt=0))
        assert entered.wait(5)  # the writer holds row 0 and is stuck
        with caplog.at_level(logging.WARNING, logger="multimodel.tracking.ledger"):
            start = time.perf_counter()
            for i in range(1, 1001):
                ledger.record(outcome(attempt=i))
            elapsed = time.perf_counter() - start
        assert elapsed < 0.5  # 1,000 records while the writer is stuck: nothing waited on it
        assert ledger.dropped == 900 and ledger.pending == 100
        assert len([r for r in caplog.records if "dropping" in r.message]) == 1  # warned once
    finally:
        release.set()
    assert ledger.flush(timeout=10)
    attempts = sorted(r.attempt for r in ledger.requests(since=0, limit=10_000))
    ledger.close()
    assert attempts == [0, *range(901, 1001)]  # the newest 100 survived


def test_a_failed_write_is_logged_counted_and_the_writer_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    ledger = UsageLedger(tmp_path / "usage.db")
    real_insert = ledger._writer.insert
    calls = []

    def failing_once(conn: sqlite3.Connection, batch: list[Any]) -> None:
        calls.append(len(batch))
        if len(calls) == 1:
            raise sqlite3.OperationalError("disk I/O error")
        real_insert(conn, batch)

    monkeypatch.setattr(ledger._writer, "insert", failing_once)
    with caplog.at_level(logging.ERROR, logger="multimodel.tracking.ledger"), ledger:
        ledger.record(outcome())
        assert ledger.flush(timeout=10)
        ledger.record(outcome())
        assert ledger.flush(timeout=10)
    assert (ledger.failed, ledger.written) == (1, 1)
    assert "could not write 1 rows" in caplog.text


def test_eight_threads_recording_at_once(tmp_path: Path) -> None:
    path = tmp_path / "usage.db"
    barrier = threading.Barrier(8)

    def work(n: int, ledger: UsageLedger) -> None:
        barrier.wait()
        for i in range(500):
            ledger.record(outcome(user=f"u{n}", attempt=i))

    with UsageLedger(path, batch_size=64) as ledger:
        threads = [threading.Thread(target=work, args=(n, ledger)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert ledger.flush(timeout=10)
        assert ledger.dropped == 0
        users = ledger.user_engagement(since=0)
    assert count(path) == 4000
    assert sorted((u.user, u.total_requests) for u in users) == [(f"u{n}", 500) for n in range(8)]


_WORKER = """
from decimal import Decimal
from multimodel.tracking.ledger import UsageLedger
from multimodel.tracking.outcome import Outcome

go.wait(30)
with UsageLedger(path, batch_size=25, flush_interval=0.01) as ledger:
    for i in range(500):
        ledger.record(Outcome(deployment=name, model="m", provider="p", ok=True, latency=0.1,
                              started_at=1.0e9 + i, cost=Decimal("0.001")))
    assert ledger.flush(timeout=30)
    assert ledger.written == 500 and ledger.failed == 0, (ledger.written, ledger.failed)
"""


def test_two_processes_write_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    ctx = multiprocessing.get_context("spawn")
    go = ctx.Event()
    # exec (a picklable builtin) runs the worker, so nothing depends on how pytest imported us.
    procs = [
        ctx.Process(target=exec, args=(_WORKER, {"path": str(path), "name": name, "go": go}))
        for name in ("proc-a", "proc-b")
    ]
    for p in procs:
        p.start()
    go.set()
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0, 0]
    assert count(path) == 1000
    assert raw(path, "SELECT deployment, COUNT(*) FROM usage GROUP BY deployment") == [
        ("proc-a", 500),
        ("proc-b", 500),
    ]
    assert raw(path, "SELECT value FROM meta") == [(str(SCHEMA_VERSION),)]
    with UsageLedger(path) as ledger:
        assert ledger.totals(since=0).cost == Decimal("1.000")


# -- content privacy ---------------------------------------------------------------------------


def _all_bytes(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in directory.iterdir())


def test_prompts_and_responses_are_not_stored_by_default(tmp_path: Path) -> None:
    path = tmp_path / "usage.db"
    with UsageLedger(path) as ledger:
        ledger.record(outcome(), prompt="SECRET-PROMPT-1234", response="SECRET-ANSWER-5678")
        assert ledger.flush(timeout=10)
        (row,) = ledger.requests(since=0)
        assert ledger.content(row.id) is None
        assert raw(path, "SELECT COUNT(*) FROM contents") == [(0,)]
    blob = _all_bytes(tmp_path)
    assert b"SECRET-PROMPT" not in blob and b"SECRET-ANSWER" not in blob


def test_prompts_and_responses_are_stored_when_opted_in(tmp_path: Path) -> None:
    messages = [Message(role="user", content="hi")]
    with UsageLedger(tmp_path / "usage.db", store_content=True) as ledger:
        ledger.record(outcome(attempt=1), prompt="the prompt", response="the answer")
        ledger.record(outcome(attempt=2))  # no content for this one
        ledger.record(outcome(attempt=3), prompt=messages, response=None)
        assert ledger.flush(timeout=10)
        rows = {r.attempt: r.id for r in ledger.requests(since=0)}
        assert ledger.content(rows[1]) == ("the prompt", "the answer")
        assert ledger.content(rows[2]) is None
        stored = ledger.content(rows[3])
    assert stored is not None and stored[1] is None
    assert json.loads(stored[0] or "")[0]["content"] == "hi"


# -- queries -----------------------------------------------------------------------------------

SEED = [
    # (hours before NOW, model, user, cost, latency, ok)
    (1, "gpt-4o", "alice", "0.0123", 1.0, True),
    (2, "gpt-4o", "alice", "0.0077", 2.0, True),
    (3, "gpt-4o", "bob", None, 3.0, False),
    (5, "claude", "bob", "0.1", 0.5, True),
    (30, "gpt-4o", "alice", "5", 4.0, True),  # yesterday, outside 24 h
    (240, "claude", "carol", "0.3", 0.25, True),  # 10 days ago: 2024-02-29
    (960, "claude", "carol", "100", 9.0, True),  # 40 days ago, outside 30 days
]


@pytest.fixture
def seeded(tmp_path: Path) -> Any:
    with UsageLedger(tmp_path / "usage.db") as ledger:
        for hours, model, user, cost, latency, ok in SEED:
            ledger.record(
                outcome(
                    started_at=NOW - hours * HOUR,
                    model=model,
                    user=user,
                    cost=None if cost is None else Decimal(cost),
                    latency=latency,
                    ok=ok,
                    error=None if ok else "RateLimited",
                    # A failure reports no tokens: with tokens and no cost it would be unpriced.
                    usage=Usage(input_tokens=100 * hours, output_tokens=10 * hours) if ok else None,
                )
            )
        assert ledger.flush(timeout=10)
        yield ledger


def test_cost_by_model_over_24_hours(seeded: UsageLedger) -> None:
    assert seeded.cost_by_model(now=NOW) == [
        ModelCostRow(
            "claude", 1, Decimal("0.1"), Decimal("0.1"), 500, 50, 0.5, 0.0, Decimal("0.1"), 0
        ),
        ModelCostRow(
            "gpt-4o",
            3,
            Decimal("0.0200"),
            Decimal("0.0100"),
            300,
            30,
            2.0,
            1 / 3,
            Decimal("0.0200"),
            0,
        ),
    ]
    assert seeded.cost_by_model("24h", now=NOW) == seeded.cost_by_model(now=NOW)
    assert [r.requests for r in seeded.cost_by_model(timedelta(days=2), now=NOW)] == [4, 1]


def test_user_engagement_over_30_days(seeded: UsageLedger) -> None:
    assert seeded.user_engagement(now=NOW) == [
        UserRow("alice", 3, Decimal("5.0200"), NOW - 1 * HOUR, Decimal("5.0200"), 0),
        UserRow("bob", 2, Decimal("0.1"), NOW - 3 * HOUR, Decimal("0.1"), 0),
        UserRow("carol", 1, Decimal("0.3"), NOW - 240 * HOUR, Decimal("0.3"), 0),
    ]
    assert [u.user for u in seeded.user_engagement(now=NOW, limit=1)] == ["alice"]


def test_daily_series_over_30_days(seeded: UsageLedger) -> None:
    assert seeded.daily_series(now=NOW) == [
        DailyRow("2024-02-29", 1, Decimal("0.3"), 0.25, 0.25, 0, Decimal("0.3"), 0),
        DailyRow("2024-03-09", 1, Decimal(5), 4.0, 4.0, 0, Decimal(5), 0),
        DailyRow("2024-03-10", 4, Decimal("0.1200"), 1.625, 3.0, 1, Decimal("0.1200"), 0),
    ]


def test_totals_and_requests_filters(seeded: UsageLedger) -> None:
    totals = seeded.totals("24h", now=NOW)
    assert (totals.requests, totals.errors, totals.cost, totals.users) == (4, 1, Decimal("0.12"), 2)
    assert (totals.input_tokens, totals.output_tokens, totals.avg_latency) == (800, 80, 1.625)
    empty = seeded.totals(NOW + 1)
    assert (empty.requests, empty.cost, empty.avg_latency) == (0, Decimal(0), None)
    rows = seeded.requests("30d", now=NOW, model="gpt-4o")
    assert [r.ts for r in rows] == [NOW - h * HOUR for h in (1, 2, 3, 30)]
    assert [r.user for r in seeded.requests("30d", now=NOW, user="carol")] == ["carol"]
    assert len(seeded.requests(0, until=NOW - 4 * HOUR)) == 4
    assert len(seeded.requests(0, limit=2)) == 2


def test_p95_is_the_nearest_rank(tmp_path: Path) -> None:
    with UsageLedger(tmp_path / "usage.db") as ledger:
        for i in range(1, 101):
            ledger.record(outcome(started_at=NOW - i, latency=float(101 - i)))
        for i in range(1, 21):
            ledger.record(outcome(started_at=NOW - DAY - i, latency=float(i)))
        assert ledger.flush(timeout=10)
        series = ledger.daily_series(now=NOW)
    assert [(d.day, d.requests, d.p95_latency) for d in series] == [
        ("2024-03-09", 20, 19.0),
        ("2024-03-10", 100, 95.0),
    ]


def test_costs_are_summed_exactly(tmp_path: Path) -> None:
    with UsageLedger(tmp_path / "usage.db") as ledger:
        for _ in range(1000):
            ledger.record(outcome(cost=Decimal("0.0000001")))  # 0.1 micro-USD each
        ledger.record(outcome(cost=Decimal("0.1")))
        ledger.record(outcome(cost=Decimal("0.2")))
        assert ledger.flush(timeout=10)
        assert ledger.totals(0).cost == Decimal("0.3001")


def test_parse_since() -> None:
    assert parse_since(1234.5) == 1234.5
    assert parse_since(1000) == 1000.0
    assert parse_since(timedelta(hours=2), now=NOW) == NOW - 7200
    assert parse_since("24h", now=NOW) == NOW - DAY
    assert parse_since("30d", now=NOW) == NOW - 30 * DAY
    assert parse_since("15m", now=NOW) == NOW - 900
    assert parse_since(" 90 S ", now=NOW) == NOW - 90
    assert parse_since("1.5h", now=NOW) == NOW - 5400
    assert parse_since("2w", now=NOW) == NOW - 14 * DAY
    assert parse_since(datetime(2024, 3, 10, 12, tzinfo=timezone.utc)) == NOW
    assert parse_since(datetime(2024, 3, 10, 12)) == NOW  # naive reads as UTC
    before = time.time()
    assert before - DAY <= parse_since("1d") <= time.time() - DAY
    for bad in ("24", "h", "-1h", "1y", "", "24 hours"):
        with pytest.raises(ValueError):
            parse_since(bad, now=NOW)
    with pytest.raises(ValueError):
        parse_since(timedelta(hours=-1), now=NOW)
    with pytest.raises(TypeError):
        parse_since(True)
    with pytest.raises(TypeError):
        parse_since([1], now=NOW)  # type: ignore[arg-type]


def test_constructor_validation() -> None:
    with pytest.raises(ValueError, match="file path"):
        UsageLedger(":memory:")
    with pytest.raises(ValueError):
        UsageLedger("x.db", batch_size=0)


def test_a_version_1_file_is_migrated_and_estimated_usage_is_kept(tmp_path: Path) -> None:
    from multimodel.tracking._ledger_queries import _STEPS

    path = tmp_path / "v1.sqlite3"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        for statement in _STEPS[1]:
            conn.execute(statement)
        conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        conn.execute(
            "INSERT INTO usage (ts, day, deployment, model, provider, ok, latency)"
            " VALUES (1.0, '1970-01-01', 'oa-1', 'gpt-4o', 'openai', 1, 0.5)"
        )
        conn.commit()
    ledger = UsageLedger(path)
    try:
        ledger.record(outcome(usage=Usage(input_tokens=9, output_tokens=3, estimated=True)))
        ledger.flush()
        rows = sorted(ledger.requests(since=0.0), key=lambda r: r.ts)
    finally:
        ledger.close()
    assert [r.usage_estimated for r in rows] == [False, True]
    assert SCHEMA_VERSION == 4


def test_a_version_3_file_is_migrated_and_answers_are_found_by_their_id(tmp_path: Path) -> None:
    from multimodel.tracking._ledger_queries import _STEPS

    path = tmp_path / "v3.sqlite3"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        for version in (1, 2, 3):
            for statement in _STEPS[version]:
                conn.execute(statement)
        conn.execute("INSERT INTO meta VALUES ('schema_version', '3')")
        conn.execute(
            "INSERT INTO usage (ts, day, deployment, model, provider, ok, latency, request_id,"
            " tags) VALUES (1.0, '1970-01-01', 'oa-1', 'gpt-4o', 'openai', 1, 0.5, 'req_old',"
            " '[\"task:code\"]')"
        )
        conn.commit()
    ledger = UsageLedger(path)
    try:
        ledger.record(outcome(request_id="req_new", response_id="chatcmpl-new"))
        ledger.flush()
        rows = sorted(ledger.requests(since=0.0), key=lambda r: r.ts)
        # The old row keeps its request id and has no answer id; the new one has both.
        assert [(r.request_id, r.response_id) for r in rows] == [
            ("req_old", None),
            ("req_new", "chatcmpl-new"),
        ]
        assert ledger.served_by("req_old") == ("gpt-4o", ("task:code",))
        assert ledger.served_by("chatcmpl-new") is not None
        assert ledger.served_by("req_new") == ledger.served_by("chatcmpl-new")
        assert ledger.served_by("chatcmpl-unknown") is None
    finally:
        ledger.close()
    assert raw(path, "SELECT value FROM meta WHERE key='schema_version'") == [("4",)]
    assert ("ix_usage_response_id",) in raw(
        path, "SELECT name FROM sqlite_master WHERE type = 'index'"
    )
