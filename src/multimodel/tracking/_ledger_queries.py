"""The SQL side of the usage ledger: schema and migrations, row types, ``parse_since``, queries.

Kept apart from :mod:`multimodel.tracking.ledger` (the queue and writer thread) so each stays
small. Every
function here takes an open :class:`sqlite3.Connection` on which :func:`register_functions` has
been called; :class:`~multimodel.tracking.ledger.UsageLedger` does both for you.

Costs are summed exactly: the ``cost`` column holds each Decimal as TEXT and the ``dsum`` SQL
aggregate (a Python class registered on the connection) adds them as :class:`~decimal.Decimal`.

Unknown prices stay unknown, as in ``client.stats()``: a row that reports tokens (or an
abandoned hedge) with no cost was billed at a price nobody knows. Each aggregate row counts
those in ``unpriced_requests``, sums the others in ``known_cost``, and gives ``cost`` (the
total) only when nothing is unknown, else ``None``.
"""

from __future__ import annotations

import json
import math
import random
import re
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, TypeVar, Union, cast

__all__ = [
    "SCHEMA_VERSION",
    "DailyRow",
    "LedgerError",
    "LedgerRow",
    "ModelCostRow",
    "Since",
    "TotalsRow",
    "UserRow",
    "parse_since",
]

Since = Union[float, int, timedelta, datetime, str]  # noqa: UP007
"""A window start: epoch seconds, a duration back from now, a datetime, or ``"24h"``-style text."""

_T = TypeVar("_T")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)


def parse_since(since: Since, *, now: float | None = None) -> float:
    """Turn a window start into epoch seconds.

    Args:
        since: epoch seconds (``float``/``int``, taken as is); a :class:`~datetime.timedelta`
            back from ``now``; a :class:`~datetime.datetime` (naive ones are read as UTC); or a
            duration string: a number and a unit among ``s``, ``m`` (minutes), ``h``, ``d``,
            ``w`` — ``"15m"``, ``"24h"``, ``"30d"``, ``"1.5h"``.
        now: the reference time for relative forms (epoch seconds); defaults to ``time.time()``.

    Raises:
        ValueError: an unreadable string or a negative duration.
        TypeError: any other type.
    """
    if isinstance(since, bool):
        raise TypeError("`since` must be epoch seconds, a timedelta, a datetime or '24h'-style")
    if isinstance(since, (int, float)):
        return float(since)
    if isinstance(since, datetime):
        if since.tzinfo is None:
            since = since.replace(tzinfo=timezone.utc)
        return since.timestamp()
    reference = time.time() if now is None else now
    if isinstance(since, timedelta):
        if since < timedelta(0):
            raise ValueError(f"`since` must not be a negative duration, got {since}")
        return reference - since.total_seconds()
    if isinstance(since, str):
        match = _DURATION.match(since)
        if match is None:
            raise ValueError(
                f"cannot read {since!r} as a duration; use a number and one of s, m, h, d, w "
                "(for example '15m', '24h', '30d')"
            )
        return reference - float(match.group(1)) * _UNITS[match.group(2).lower()]
    raise TypeError(
        f"`since` must be epoch seconds, a timedelta, a datetime or '24h'-style, "
        f"not {type(since).__name__}"
    )


@dataclass(frozen=True, slots=True)
class ModelCostRow:
    """Spend and health of one model over a window (``cost_by_model``).

    ``cost`` is the exact total, ``None`` when ``unpriced_requests`` is not 0; ``known_cost``
    the sum of the known costs. ``avg_cost`` averages over the requests whose cost is known
    (SQL ``AVG`` semantics), ``None`` when none is. ``error_rate`` is failed requests over all
    requests.
    """

    model: str
    requests: int
    cost: Decimal | None
    avg_cost: Decimal | None
    input_tokens: int
    output_tokens: int
    avg_latency: float
    error_rate: float
    known_cost: Decimal
    unpriced_requests: int


@dataclass(frozen=True, slots=True)
class UserRow:
    """One user's activity over a window (``user_engagement``); ``user`` is ``None`` for
    requests without one. ``last_activity`` is the latest start time (epoch seconds).
    ``total_cost`` is ``None`` when ``unpriced_requests`` is not 0."""

    user: str | None
    total_requests: int
    total_cost: Decimal | None
    last_activity: float
    known_cost: Decimal
    unpriced_requests: int


@dataclass(frozen=True, slots=True)
class DailyRow:
    """One UTC day of the series (``daily_series``).

    ``p95_latency`` is the nearest-rank 95th percentile of the day's latencies: the value at
    rank ``ceil(0.95 * n)`` in ascending order. ``cost`` is ``None`` when
    ``unpriced_requests`` is not 0.
    """

    day: str
    requests: int
    cost: Decimal | None
    avg_latency: float
    p95_latency: float
    errors: int
    known_cost: Decimal
    unpriced_requests: int


@dataclass(frozen=True, slots=True)
class TotalsRow:
    """Everything in a window at once (``totals``); averages are ``None`` for an empty window.
    ``cost`` is ``None`` when ``unpriced_requests`` is not 0."""

    requests: int
    errors: int
    cost: Decimal | None
    input_tokens: int
    output_tokens: int
    avg_latency: float | None
    users: int
    known_cost: Decimal
    unpriced_requests: int


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """One stored request outcome, as written by :meth:`UsageLedger.record`."""

    id: int
    ts: float
    day: str
    deployment: str
    model: str
    provider: str
    response_model: str | None
    user: str | None
    tags: tuple[str, ...]
    status: int | None
    ok: bool
    error: str | None
    finish_reason: str | None
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    cost: Decimal | None
    latency: float
    ttft: float | None
    cached: bool
    stream: bool
    attempt: int
    request_id: str | None
    usage_estimated: bool = False
    response_id: str | None = None
    """The answer's own id (``ChatResponse.id``); ``None`` in rows written before 0.2."""


SCHEMA_VERSION = 4
"""The schema this code writes. Older files are migrated on open; newer ones are refused."""

# Schema steps by the version they bring the file to. A future change appends a step
# (``2: ("ALTER TABLE usage ADD COLUMN ...",)``) and bumps SCHEMA_VERSION; files are migrated
# in order inside one IMMEDIATE transaction, so concurrent openers cannot both apply a step.
_STEPS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE usage (
            id INTEGER PRIMARY KEY,
            ts REAL NOT NULL,
            day TEXT NOT NULL,
            deployment TEXT NOT NULL,
            model TEXT NOT NULL,
            provider TEXT NOT NULL,
            response_model TEXT,
            user TEXT,
            tags TEXT NOT NULL DEFAULT '[]',
            status INTEGER,
            ok INTEGER NOT NULL,
            error TEXT,
            finish_reason TEXT,
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            cache_read_tokens INTEGER NOT NULL DEFAULT 0,
            cache_write_tokens INTEGER NOT NULL DEFAULT 0,
            reasoning_tokens INTEGER NOT NULL DEFAULT 0,
            cost TEXT,
            cost_micro_usd INTEGER,
            latency REAL NOT NULL,
            ttft REAL,
            cached INTEGER NOT NULL DEFAULT 0,
            stream INTEGER NOT NULL DEFAULT 0,
            attempt INTEGER NOT NULL DEFAULT 1,
            request_id TEXT
        )""",
        """CREATE TABLE contents (
            row_id INTEGER PRIMARY KEY REFERENCES usage(id) ON DELETE CASCADE,
            prompt TEXT,
            response TEXT
        )""",
        "CREATE INDEX ix_usage_model_ts ON usage (model, ts)",
        "CREATE INDEX ix_usage_user_ts ON usage (user, ts)",
        "CREATE INDEX ix_usage_day ON usage (day)",
        "CREATE INDEX ix_usage_deployment_ts ON usage (deployment, ts)",
        "CREATE INDEX ix_usage_ts ON usage (ts)",
    ),
    # Token counts multimodel estimated (no usage from the provider, or a stream cut short).
    2: ("ALTER TABLE usage ADD COLUMN usage_estimated INTEGER NOT NULL DEFAULT 0",),
    # Feedback scores (client.feedback), replayed into the quality estimates on start; the
    # request id index finds who served an answer named by its id, late or in another process.
    3: (
        """CREATE TABLE feedback (
            id INTEGER PRIMARY KEY,
            ts REAL NOT NULL,
            model TEXT NOT NULL,
            task TEXT NOT NULL DEFAULT '*',
            score REAL NOT NULL,
            origin TEXT
        )""",
        "CREATE INDEX ix_feedback_ts ON feedback (ts)",
        "CREATE INDEX ix_usage_request_id ON usage (request_id)",
    ),
    # The answer's own id (ChatResponse.id, e.g. chatcmpl-...): feedback may name an answer by
    # it, late or from another process, as by the request id.
    4: (
        "ALTER TABLE usage ADD COLUMN response_id TEXT",
        "CREATE INDEX ix_usage_response_id ON usage (response_id)",
    ),
}
assert max(_STEPS) == SCHEMA_VERSION


class LedgerError(RuntimeError):
    """The ledger file cannot be used (for example it was written by a newer schema)."""


def retry(fn: Callable[[], _T], attempts: int = 8) -> _T:
    """Run ``fn``, retrying with short jittered backoff while SQLite says locked/busy.

    ``busy_timeout`` already waits inside SQLite; this covers the cases where SQLite returns
    BUSY without calling the busy handler (WAL recovery, journal-mode changes, snapshots).
    """
    for i in range(attempts):
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            text = str(exc).lower()
            if i == attempts - 1 or ("locked" not in text and "busy" not in text):
                raise
            time.sleep(0.005 * (2**i) * (0.5 + random.random()))
    raise AssertionError("unreachable")  # pragma: no cover


def migrate(conn: sqlite3.Connection) -> None:
    """Create or upgrade the schema to :data:`SCHEMA_VERSION` (idempotent, process-safe)."""

    def step() -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise LedgerError(
                    f"the ledger file has schema version {version}, newer than this library's "
                    f"{SCHEMA_VERSION}; upgrade multimodel to use it"
                )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _STEPS[target]:
                    conn.execute(statement)
            if version != SCHEMA_VERSION:
                conn.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    retry(step)


class _DecimalSum:
    """``dsum(cost)``: the exact Decimal sum of TEXT costs, NULLs skipped, returned as TEXT."""

    def __init__(self) -> None:
        self.total = Decimal(0)

    def step(self, value: str | None) -> None:
        if value is not None:
            self.total += Decimal(value)

    def finalize(self) -> str:
        return str(self.total)


def register_functions(conn: sqlite3.Connection) -> None:
    """Register the ``dsum`` aggregate the queries use on ``conn``."""
    conn.create_aggregate("dsum", 1, cast("Callable[[], Any]", _DecimalSum))


def _dec(text: Any) -> Decimal:
    return Decimal(text) if text is not None else Decimal(0)


UNPRICED_SQL = "SUM(cost IS NULL AND (input_tokens + output_tokens > 0 OR error = 'Abandoned'))"
"""SQL: how many rows were billed at an unknown price (``outcome.unpriced`` in SQL)."""


def _total(known: Decimal, unpriced: int | None) -> Decimal | None:
    return None if unpriced else known


def cost_by_model(conn: sqlite3.Connection, since: float) -> list[ModelCostRow]:
    """Requests, exact cost, tokens, latency and error rate per model since ``since``."""
    rows = conn.execute(
        "SELECT model, COUNT(*), dsum(cost), COUNT(cost), SUM(input_tokens), SUM(output_tokens),"  # noqa: S608 - fixed text
        f" AVG(latency), SUM(1 - ok), {UNPRICED_SQL} FROM usage WHERE ts >= ? GROUP BY model"
        " ORDER BY SUM(cost_micro_usd) DESC, model",
        (since,),
    ).fetchall()
    out = []
    for model, n, cost, priced, tin, tout, lat, errors, unpriced in rows:
        known = _dec(cost)
        out.append(
            ModelCostRow(
                model=model,
                requests=n,
                cost=_total(known, unpriced),
                avg_cost=known / priced if priced else None,
                input_tokens=tin or 0,
                output_tokens=tout or 0,
                avg_latency=float(lat or 0.0),
                error_rate=(errors or 0) / n,
                known_cost=known,
                unpriced_requests=unpriced or 0,
            )
        )
    return out


def user_engagement(
    conn: sqlite3.Connection, since: float, limit: int | None = None
) -> list[UserRow]:
    """Requests, exact cost and last activity per user since ``since``, busiest first."""
    rows = conn.execute(
        f"SELECT user, COUNT(*) AS n, dsum(cost), MAX(ts), {UNPRICED_SQL} FROM usage"  # noqa: S608 - fixed text
        " WHERE ts >= ? GROUP BY user ORDER BY n DESC, user LIMIT ?",
        (since, -1 if limit is None else limit),
    ).fetchall()
    return [
        UserRow(user, n, _total(_dec(cost), unpriced), last, _dec(cost), unpriced or 0)
        for user, n, cost, last, unpriced in rows
    ]


def daily_series(conn: sqlite3.Connection, since: float) -> list[DailyRow]:
    """One row per UTC day since ``since`` (the first day may be partial), oldest first."""
    rows = conn.execute(
        f"SELECT day, COUNT(*), dsum(cost), AVG(latency), SUM(1 - ok), {UNPRICED_SQL}"  # noqa: S608 - fixed text
        " FROM usage WHERE ts >= ? GROUP BY day ORDER BY day",
        (since,),
    ).fetchall()
    out = []
    for day, n, cost, lat, errors, unpriced in rows:
        # Nearest rank: the ceil(0.95 n)-th smallest latency, found by SQLite (no rows in Python).
        offset = max(0, math.ceil(0.95 * n) - 1)
        (p95,) = conn.execute(
            "SELECT latency FROM usage WHERE day = ? AND ts >= ? ORDER BY latency LIMIT 1 OFFSET ?",
            (day, since, offset),
        ).fetchone()
        known = _dec(cost)
        out.append(
            DailyRow(
                day, n, _total(known, unpriced), float(lat), float(p95), errors or 0, known,
                unpriced or 0,
            )
        )  # fmt: skip
    return out


def totals(conn: sqlite3.Connection, since: float) -> TotalsRow:
    """Aggregate totals since ``since``."""
    n, errors, cost, tin, tout, lat, users, unpriced = conn.execute(
        "SELECT COUNT(*), SUM(1 - ok), dsum(cost), SUM(input_tokens), SUM(output_tokens),"  # noqa: S608 - fixed text
        f" AVG(latency), COUNT(DISTINCT user), {UNPRICED_SQL} FROM usage WHERE ts >= ?",
        (since,),
    ).fetchone()
    known = _dec(cost)
    return TotalsRow(
        n, errors or 0, _total(known, unpriced), tin or 0, tout or 0, lat, users, known,
        unpriced or 0,
    )  # fmt: skip


_ROW_COLUMNS = (
    "id, ts, day, deployment, model, provider, response_model, user, tags, status, ok, error,"
    " finish_reason, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,"
    " reasoning_tokens, cost, latency, ttft, cached, stream, attempt, request_id,"
    " usage_estimated, response_id"
)


def requests(
    conn: sqlite3.Connection,
    since: float,
    until: float | None = None,
    model: str | None = None,
    user: str | None = None,
    limit: int = 1000,
) -> list[LedgerRow]:
    """Stored rows with ``since <= ts < until``, optionally one model's or one user's, newest
    first, at most ``limit``."""
    where = ["ts >= ?"]
    params: list[Any] = [since]
    if until is not None:
        where.append("ts < ?")
        params.append(until)
    if model is not None:
        where.append("model = ?")
        params.append(model)
    if user is not None:
        where.append("user = ?")
        params.append(user)
    params.append(limit)
    sql = (
        f"SELECT {_ROW_COLUMNS} FROM usage WHERE {' AND '.join(where)}"  # noqa: S608 - fixed text
        " ORDER BY ts DESC, id DESC LIMIT ?"
    )
    return [_ledger_row(r) for r in conn.execute(sql, params).fetchall()]


def _ledger_row(r: Any) -> LedgerRow:
    return LedgerRow(
        id=r[0],
        ts=r[1],
        day=r[2],
        deployment=r[3],
        model=r[4],
        provider=r[5],
        response_model=r[6],
        user=r[7],
        tags=tuple(json.loads(r[8])) if r[8] else (),
        status=r[9],
        ok=bool(r[10]),
        error=r[11],
        finish_reason=r[12],
        input_tokens=r[13],
        output_tokens=r[14],
        cache_read_tokens=r[15],
        cache_write_tokens=r[16],
        reasoning_tokens=r[17],
        cost=Decimal(r[18]) if r[18] is not None else None,
        latency=r[19],
        ttft=r[20],
        cached=bool(r[21]),
        stream=bool(r[22]),
        attempt=r[23],
        request_id=r[24],
        usage_estimated=bool(r[25]),
        response_id=r[26],
    )
