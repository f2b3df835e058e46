"""A durable usage ledger: every request outcome as one SQLite row, written off the hot path.

:class:`UsageLedger` keeps a row per :class:`~multimodel.tracking.outcome.Outcome` — when, where,
who, tokens, exact cost, latency, status — in a SQLite file (standard library only), and answers
the usual analytics questions: cost by model, per-user engagement, a daily cost/latency series.

``record()`` only appends to an in-memory queue (1-3 µs); a daemon writer thread
inserts the queued rows in batches, one transaction each, every ``flush_interval`` seconds or
``batch_size`` rows. The caller is never blocked: past ``max_queue`` pending rows the oldest are
dropped and counted in :attr:`UsageLedger.dropped`. Several processes may share one file: the
database runs in WAL mode, each process has its own connection, and writes retry when the file
is locked. Prompts and responses are never stored unless ``store_content=True``.

Example::

    from multimodel.tracking.ledger import UsageLedger

    with UsageLedger("usage.db") as ledger:
        ledger.record(outcome)                      # cheap; written by a background thread
        ledger.flush()                              # wait for everything recorded so far
        for row in ledger.cost_by_model("24h"):
            print(row.model, row.requests, row.cost, f"{row.error_rate:.1%}")
        for day in ledger.daily_series("30d"):
            print(day.day, day.requests, day.cost, day.p95_latency)

Queries read only what the writer has committed; call :meth:`UsageLedger.flush` first to see
your own latest records.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import timedelta
from decimal import ROUND_HALF_EVEN
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from . import _ledger_queries as _q
from ._ledger_queries import (
    SCHEMA_VERSION,
    DailyRow,
    LedgerError,
    LedgerRow,
    ModelCostRow,
    Since,
    TotalsRow,
    UserRow,
    parse_since,
)
from .outcome import Outcome

if TYPE_CHECKING:
    from ..security.crypto import ContentCodec

__all__ = [
    "SCHEMA_VERSION",
    "DailyRow",
    "LedgerError",
    "LedgerRow",
    "ModelCostRow",
    "Since",
    "TotalsRow",
    "UsageLedger",
    "UserRow",
    "parse_since",
]

logger = logging.getLogger(__name__)

_Item = tuple[Outcome, object, object]
_DAY = timedelta(days=1)
_MONTH = timedelta(days=30)

_COLUMNS = (
    "ts", "day", "deployment", "model", "provider", "response_model", "user", "tags", "status",
    "ok", "error", "finish_reason", "input_tokens", "output_tokens", "cache_read_tokens",
    "cache_write_tokens", "reasoning_tokens", "cost", "cost_micro_usd", "latency", "ttft",
    "cached", "stream", "attempt", "request_id", "usage_estimated",
)  # fmt: skip
_INSERT = f"INSERT INTO usage ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"  # noqa: S608
_INSERT_CONTENT = "INSERT INTO contents (row_id, prompt, response) VALUES (?, ?, ?)"


_days: dict[int, str] = {}  # UTC day number -> 'YYYY-MM-DD' (writer thread only)
_tag_texts: dict[tuple[str, ...], str] = {}  # tags -> JSON text (writer thread only)


def _day(ts: float) -> str:
    number = int(ts // 86400)
    text = _days.get(number)
    if text is None:
        if len(_days) > 4096:
            _days.clear()
        text = _days[number] = time.strftime("%Y-%m-%d", time.gmtime(number * 86400))
    return text


def _tags(tags: tuple[str, ...]) -> str:
    text = _tag_texts.get(tags)
    if text is None:
        if len(_tag_texts) > 4096:
            _tag_texts.clear()
        text = _tag_texts[tags] = json.dumps(list(tags))
    return text


def _row(o: Outcome) -> tuple[Any, ...]:
    """The ``usage`` row for one outcome, in :data:`_COLUMNS` order."""
    u = o.usage
    cost = o.cost
    if cost is not None and cost.is_finite():
        cost_text: str | None = format(cost, "f")
        micro: int | None = int(cost.scaleb(6).to_integral_value(ROUND_HALF_EVEN))
    else:
        cost_text = micro = None
    ts = o.started_at
    return (
        ts, _day(ts), o.deployment, o.model, o.provider,
        o.response_model, o.user, _tags(o.tags) if o.tags else "[]", o.status,
        int(o.ok), o.error, o.finish_reason,
        u.input_tokens if u else 0, u.output_tokens if u else 0,
        u.cache_read_tokens if u else 0, u.cache_write_tokens if u else 0,
        u.reasoning_tokens if u else 0,
        cost_text, micro, o.latency, o.ttft, int(o.cached), int(o.stream), o.attempt,
        o.request_id, int(u.estimated) if u else 0,
    )  # fmt: skip


def _jsonable(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    return dump(mode="json") if callable(dump) else str(value)


def _text(value: object) -> str | None:
    """Prompt/response content as TEXT: strings as is, anything else as JSON."""
    if value is None or isinstance(value, str):
        return value
    dump = getattr(value, "model_dump_json", None)
    if callable(dump):
        return str(dump())
    return json.dumps(value, default=_jsonable, ensure_ascii=False)


_LIVE: weakref.WeakSet[UsageLedger] = weakref.WeakSet()
_atexit_lock = threading.Lock()
_atexit_registered = False


def _close_all() -> None:
    for ledger in list(_LIVE):
        ledger.close(timeout=5.0)


class UsageLedger:
    """Records request outcomes to a SQLite file from a background thread, and queries them.

    Args:
        path: the database file (created on first use). ``":memory:"`` is refused: the writer
            and the queries use separate connections.
        batch_size: the most rows per transaction; reaching it wakes the writer early.
        flush_interval: seconds the writer waits for a batch to fill before writing anyway.
        max_queue: the most rows waiting to be written; beyond it the oldest are dropped.
        store_content: keep the ``prompt``/``response`` passed to :meth:`record` in the
            ``contents`` table. Off by default: content is then discarded in :meth:`record`.

    Nothing touches the disk until :meth:`open`, the first :meth:`record` or the first query.
    Close the ledger (or use it as a context manager) to write what is still queued; ledgers
    left open are closed, with a 5 s limit, when the interpreter exits.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        batch_size: int = 256,
        flush_interval: float = 0.5,
        max_queue: int = 100_000,
        store_content: bool = False,
        content_codec: ContentCodec | None = None,
    ) -> None:
        if str(path) == ":memory:" or str(path).startswith("file::memory:"):
            raise ValueError(
                "UsageLedger needs a file path; ':memory:' is not shared between "
                "its writer and reader connections"
            )
        if batch_size < 1 or max_queue < 1 or flush_interval <= 0:
            raise ValueError("batch_size and max_queue must be >= 1 and flush_interval > 0")
        self._path = os.fspath(path)
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._max_queue = max_queue
        self._store_content = store_content
        if content_codec is not None and not store_content:
            raise ConfigError("content_codec encrypts stored prompts: also pass store_content=True")
        self._codec = content_codec
        self._queue: deque[_Item] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)  # the writer waits here
        self._done = threading.Condition(self._lock)  # flush() waits here
        self._thread: threading.Thread | None = None
        self._closing = False
        self._schema_ready = False
        self._warned_drop = False
        self._flushers = 0
        self._enqueued = 0  # rows handed to record() and accepted
        self._retired = 0  # rows written, failed or dropped
        self._dropped = 0
        self._written = 0
        self._failed = 0
        self._batches = 0

    # -- writing ---------------------------------------------------------------------------

    def record(self, outcome: Outcome, *, prompt: object = None, response: object = None) -> None:
        """Queue one outcome to be written; returns at once and never raises for I/O.

        ``prompt`` and ``response`` (strings, or anything JSON-serializable such as messages)
        are kept only when the ledger was made with ``store_content=True``. When more than
        ``max_queue`` rows are waiting, the oldest is dropped (see :attr:`dropped`); after
        :meth:`close` the outcome itself is dropped.
        """
        if self._thread is None:
            self._start()
        item = (outcome, prompt, response) if self._store_content else (outcome, None, None)
        with self._lock:
            if self._closing:
                self._drop_after_close()
                return
            queue = self._queue
            queue.append(item)
            self._enqueued += 1
            n = len(queue)
            if n > self._max_queue:
                queue.popleft()
                self._dropped += 1
                self._retired += 1
                if not self._warned_drop:
                    self._warned_drop = True
                    logger.warning(
                        "usage ledger %s: more than %d rows waiting to be written; dropping the "
                        "oldest (counted in UsageLedger.dropped; warned once)",
                        self._path,
                        self._max_queue,
                    )
            elif n == self._batch_size:
                self._wake.notify()

    def _drop_after_close(self) -> None:
        self._dropped += 1
        if not self._warned_drop:
            self._warned_drop = True
            logger.warning("usage ledger %s: record() after close(); outcome dropped", self._path)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every outcome recorded before this call is written (or dropped/failed).

        Returns ``False`` if ``timeout`` seconds passed first.
        """
        with self._lock:
            target = self._enqueued
            if self._retired >= target:
                return True
            self._flushers += 1
            self._wake.notify()
            try:
                return self._done.wait_for(lambda: self._retired >= target, timeout)
            finally:
                self._flushers -= 1

    def open(self) -> UsageLedger:
        """Create or migrate the database now and start the writer; returns the ledger.

        Optional: the first :meth:`record` or query does it lazily. Calling it surfaces a bad
        path or an incompatible file here rather than in the writer's log.
        """
        if self._closing:
            raise LedgerError("the ledger is closed")
        with closing(self._connect()):
            pass
        self._start()
        return self

    def close(self, timeout: float | None = None) -> None:
        """Write everything still queued, then stop the writer. Idempotent."""
        with self._lock:
            self._closing = True
            self._wake.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                logger.warning(
                    "usage ledger %s: writer still busy after %ss; %d rows pending",
                    self._path,
                    timeout,
                    len(self._queue),
                )
        _LIVE.discard(self)

    def __enter__(self) -> UsageLedger:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def path(self) -> str:
        """The database file."""
        return self._path

    @property
    def stores_content(self) -> bool:
        """Whether prompts and answers are stored (``store_content=True``)."""
        return self._store_content

    @property
    def dropped(self) -> int:
        """Outcomes discarded unwritten: queue overflow, or recorded after :meth:`close`."""
        return self._dropped

    @property
    def written(self) -> int:
        """Rows committed by this ledger's writer."""
        return self._written

    @property
    def failed(self) -> int:
        """Rows lost to write errors (logged) after retries."""
        return self._failed

    @property
    def batches(self) -> int:
        """Transactions committed by this ledger's writer."""
        return self._batches

    @property
    def pending(self) -> int:
        """Rows queued and not yet taken by the writer."""
        return len(self._queue)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closing

    # -- the writer thread -----------------------------------------------------------------

    def _start(self) -> None:
        global _atexit_registered
        with self._lock:
            if self._thread is not None or self._closing:
                return
            thread = threading.Thread(target=self._run, name="multimodel-ledger", daemon=True)
            self._thread = thread
            thread.start()
        _LIVE.add(self)
        with _atexit_lock:
            if not _atexit_registered:
                _atexit_registered = True
                atexit.register(_close_all)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, timeout=5.0, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout=5000")
            mode = _q.retry(lambda: conn.execute("PRAGMA journal_mode=WAL").fetchone())
            if mode is None or str(mode[0]).lower() != "wal":
                logger.warning("usage ledger %s: journal mode is %s, not WAL", self._path, mode)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            _q.register_functions(conn)
            if not self._schema_ready:
                _q.migrate(conn)
                self._schema_ready = True
        except BaseException:
            conn.close()
            raise
        return conn

    def _take(self) -> list[_Item] | None:
        """Wait for a batch to be due and take it; ``None`` when closing with nothing left."""
        queue = self._queue
        with self._lock:
            deadline = time.monotonic() + self._flush_interval
            while True:
                if queue and (len(queue) >= self._batch_size or self._closing or self._flushers):
                    break
                if self._closing:
                    return None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if queue:
                        break
                    deadline = time.monotonic() + self._flush_interval
                    remaining = self._flush_interval
                self._wake.wait(remaining)
            if len(queue) <= self._batch_size:
                batch = list(queue)
                queue.clear()
            else:
                batch = [queue.popleft() for _ in range(self._batch_size)]
            return batch

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        logged = False
        try:
            while (batch := self._take()) is not None:
                ok = False
                try:
                    if conn is None:
                        conn = self._connect()
                    self._insert(conn, batch)
                    ok = True
                except Exception:
                    logger.error(
                        "usage ledger %s: could not write %d rows; they are lost",
                        self._path,
                        len(batch),
                        exc_info=not logged,
                    )
                    logged = True
                with self._lock:
                    self._retired += len(batch)
                    if ok:
                        self._written += len(batch)
                        self._batches += 1
                    else:
                        self._failed += len(batch)
                    self._done.notify_all()
        finally:
            if conn is not None:
                conn.close()
            with self._lock:  # only reached with rows left if the loop itself broke
                left = len(self._queue)
                self._queue.clear()
                self._failed += left
                self._retired += left
                self._closing = True
                self._done.notify_all()

    def _insert(self, conn: sqlite3.Connection, batch: list[_Item]) -> None:
        """Insert one batch in one IMMEDIATE transaction, retrying while the file is locked."""
        rows = [_row(outcome) for outcome, _, _ in batch]
        contents = [
            (_text(prompt), _text(response)) if prompt is not None or response is not None
            else None
            for _, prompt, response in batch
        ] if self._store_content else None  # fmt: skip
        with_content = contents is not None and any(c is not None for c in contents)

        def transaction() -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if not with_content:
                    conn.executemany(_INSERT, rows)
                else:
                    assert contents is not None
                    for row, content in zip(rows, contents, strict=True):
                        cursor = conn.execute(_INSERT, row)
                        if content is not None:
                            rid = cursor.lastrowid
                            assert rid is not None
                            if self._codec is not None:
                                # Inside the transaction: the row id binds the ciphertext.
                                content = self._codec.encode_row(rid, *content)
                            conn.execute(_INSERT_CONTENT, (rid, *content))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

        _q.retry(transaction)

    # -- queries ---------------------------------------------------------------------------

    @contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        with closing(self._connect()) as conn:
            yield conn

    def cost_by_model(self, since: Since = _DAY, *, now: float | None = None) -> list[ModelCostRow]:
        """Per model since ``since`` (default the last 24 h): requests, exact cost, average
        cost, tokens, average latency and error rate, most expensive first."""
        with self._reader() as conn:
            return _q.cost_by_model(conn, parse_since(since, now=now))

    def user_engagement(
        self, since: Since = _MONTH, *, limit: int | None = None, now: float | None = None
    ) -> list[UserRow]:
        """Per user since ``since`` (default 30 days): requests, exact cost and last activity,
        by requests descending (``user`` is ``None`` for requests without one)."""
        with self._reader() as conn:
            return _q.user_engagement(conn, parse_since(since, now=now), limit)

    def daily_series(self, since: Since = _MONTH, *, now: float | None = None) -> list[DailyRow]:
        """Per UTC day since ``since`` (default 30 days), oldest first: requests, exact cost,
        average and p95 latency, errors. The first day counts only rows at or after ``since``."""
        with self._reader() as conn:
            return _q.daily_series(conn, parse_since(since, now=now))

    def totals(self, since: Since = _DAY, *, now: float | None = None) -> TotalsRow:
        """Requests, errors, exact cost, tokens, average latency and distinct users since
        ``since`` (default 24 h)."""
        with self._reader() as conn:
            return _q.totals(conn, parse_since(since, now=now))

    def requests(
        self,
        since: Since = _DAY,
        until: Since | None = None,
        *,
        model: str | None = None,
        user: str | None = None,
        limit: int = 1000,
        now: float | None = None,
    ) -> list[LedgerRow]:
        """Stored rows with ``since <= ts < until``, optionally for one model and/or user,
        newest first, at most ``limit``."""
        end = None if until is None else parse_since(until, now=now)
        with self._reader() as conn:
            return _q.requests(conn, parse_since(since, now=now), end, model, user, limit)

    def content(self, row_id: int) -> tuple[str | None, str | None] | None:
        """The stored ``(prompt, response)`` of a row, or ``None`` when none was stored."""
        with self._reader() as conn:
            found = conn.execute(
                "SELECT prompt, response FROM contents WHERE row_id = ?", (row_id,)
            ).fetchone()
        if found is None:
            return None
        if self._codec is not None:
            return self._codec.decode_row(row_id, found[0], found[1])
        return (found[0], found[1])
