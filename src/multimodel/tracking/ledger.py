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

Delivery is at most once: a row is written once or not at all, never twice. :meth:`close`
writes everything still queued, and so does a normal interpreter exit (a ledger left open is
closed then, within 5 s) or the garbage collection of a ledger nobody closed. Rows still queued
are lost when the process dies without exiting normally (``SIGKILL``, ``os._exit``, a crash, a
signal whose default action ends the process, such as ``SIGTERM``), when the queue overflows
(the oldest go first), and when a write still fails after its retries (logged, counted in
:attr:`UsageLedger.failed`). With ``synchronous=NORMAL`` a committed batch survives a crash of
the process but may be lost if the operating system crashes or the power fails.

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
from typing import TYPE_CHECKING, Any, NamedTuple

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
    "cached", "stream", "attempt", "request_id", "usage_estimated", "response_id",
)  # fmt: skip
_INSERT = f"INSERT INTO usage ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"  # noqa: S608
_INSERT_CONTENT = "INSERT INTO contents (row_id, prompt, response) VALUES (?, ?, ?)"
_INSERT_SCORE = "INSERT INTO feedback (model, task, score, ts, origin) VALUES (?, ?, ?, ?, ?)"


class _Score(NamedTuple):
    """One feedback score queued for the ``feedback`` table."""

    model: str
    task: str
    score: float
    ts: float
    origin: str | None


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
        o.request_id, int(u.estimated) if u else 0, o.response_id,
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


_EXIT_TIMEOUT = 5.0  # seconds a ledger left open may spend writing its queue at exit


class _Writer:
    """The queue, the writer thread and the counters of one :class:`UsageLedger`.

    Kept apart from the ledger so that neither the thread nor the exit hook refers to it: a
    ledger nobody closed can still be garbage-collected, which closes its writer.
    """

    def __init__(
        self,
        path: str,
        batch_size: int,
        flush_interval: float,
        max_queue: int,
        store_content: bool,
        codec: ContentCodec | None,
    ) -> None:
        self.path = path
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_queue = max_queue
        self.store_content = store_content
        self.codec = codec
        self.queue: deque[_Item] = deque()
        self.lock = threading.Lock()
        self.wake = threading.Condition(self.lock)  # the writer waits here
        self.done = threading.Condition(self.lock)  # flush() waits here
        self.thread: threading.Thread | None = None
        self.closing = False
        self.schema_ready = False
        self.warned_drop = False
        self.flushers = 0
        self.enqueued = 0  # rows handed to record() and accepted
        self.retired = 0  # rows written, failed or dropped
        self.dropped = 0
        self.written = 0
        self.failed = 0
        self.batches = 0

    def put(self, item: _Item) -> None:
        with self.lock:
            if self.closing:
                self._drop_after_close()
                return
            queue = self.queue
            queue.append(item)
            self.enqueued += 1
            n = len(queue)
            if n > self.max_queue:
                queue.popleft()
                self.dropped += 1
                self.retired += 1
                if not self.warned_drop:
                    self.warned_drop = True
                    logger.warning(
                        "usage ledger %s: more than %d rows waiting to be written; dropping the "
                        "oldest (counted in UsageLedger.dropped; warned once)",
                        self.path,
                        self.max_queue,
                    )
            elif n == self.batch_size:
                self.wake.notify()

    def _drop_after_close(self) -> None:
        self.dropped += 1
        if not self.warned_drop:
            self.warned_drop = True
            logger.warning("usage ledger %s: record() after close(); outcome dropped", self.path)

    def flush(self, timeout: float | None) -> bool:
        with self.lock:
            target = self.enqueued
            if self.retired >= target:
                return True
            self.flushers += 1
            self.wake.notify()
            try:
                return self.done.wait_for(lambda: self.retired >= target, timeout)
            finally:
                self.flushers -= 1

    def start(self) -> bool:
        """Start the thread; whether this call started it (``False``: running, or closed)."""
        with self.lock:
            if self.thread is not None or self.closing:
                return False
            thread = threading.Thread(target=self.run, name="multimodel-ledger", daemon=True)
            self.thread = thread
            thread.start()
        return True

    def close(self, timeout: float | None) -> None:
        with self.lock:
            self.closing = True
            self.wake.notify()
            thread = self.thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                logger.warning(
                    "usage ledger %s: writer still busy after %ss; %d rows pending",
                    self.path,
                    timeout,
                    len(self.queue),
                )

    def connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout=5000")
            mode = _q.retry(lambda: conn.execute("PRAGMA journal_mode=WAL").fetchone())
            if mode is None or str(mode[0]).lower() != "wal":
                logger.warning("usage ledger %s: journal mode is %s, not WAL", self.path, mode)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            _q.register_functions(conn)
            if not self.schema_ready:
                _q.migrate(conn)
                self.schema_ready = True
        except BaseException:
            conn.close()
            raise
        return conn

    def _take(self) -> list[_Item] | None:
        """Wait for a batch to be due and take it; ``None`` when closing with nothing left."""
        queue = self.queue
        with self.lock:
            deadline = time.monotonic() + self.flush_interval
            while True:
                if queue and (len(queue) >= self.batch_size or self.closing or self.flushers):
                    break
                if self.closing:
                    return None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if queue:
                        break
                    deadline = time.monotonic() + self.flush_interval
                    remaining = self.flush_interval
                self.wake.wait(remaining)
            if len(queue) <= self.batch_size:
                batch = list(queue)
                queue.clear()
            else:
                batch = [queue.popleft() for _ in range(self.batch_size)]
            return batch

    def run(self) -> None:
        conn: sqlite3.Connection | None = None
        logged = False
        try:
            while (batch := self._take()) is not None:
                ok = False
                try:
                    if conn is None:
                        conn = self.connect()
                    self.insert(conn, batch)
                    ok = True
                except Exception:
                    logger.error(
                        "usage ledger %s: could not write %d rows; they are lost",
                        self.path,
                        len(batch),
                        exc_info=not logged,
                    )
                    logged = True
                with self.lock:
                    self.retired += len(batch)
                    if ok:
                        self.written += len(batch)
                        self.batches += 1
                    else:
                        self.failed += len(batch)
                    self.done.notify_all()
        finally:
            if conn is not None:
                conn.close()
            with self.lock:  # only reached with rows left if the loop itself broke
                left = len(self.queue)
                self.queue.clear()
                self.failed += left
                self.retired += left
                self.closing = True
                self.done.notify_all()

    def insert(self, conn: sqlite3.Connection, batch: list[_Item]) -> None:
        """Insert one batch in one IMMEDIATE transaction, retrying while the file is locked."""
        items: list[tuple[Any, object, object]] = list(batch)
        scores = [item[0] for item in items if type(item[0]) is _Score]
        if scores:  # feedback scores (rare) travel in the same queue
            batch = [item for item in items if type(item[0]) is not _Score]
        rows = [_row(outcome) for outcome, _, _ in batch]
        contents = [
            (_text(prompt), _text(response)) if prompt is not None or response is not None
            else None
            for _, prompt, response in batch
        ] if self.store_content else None  # fmt: skip
        with_content = contents is not None and any(c is not None for c in contents)
        codec = self.codec

        def transaction() -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if scores:
                    conn.executemany(_INSERT_SCORE, scores)
                if not with_content:
                    conn.executemany(_INSERT, rows)
                else:
                    assert contents is not None
                    for row, content in zip(rows, contents, strict=True):
                        cursor = conn.execute(_INSERT, row)
                        if content is not None:
                            rid = cursor.lastrowid
                            assert rid is not None
                            if codec is not None:
                                # Inside the transaction: the row id binds the ciphertext.
                                content = codec.encode_row(rid, *content)
                            conn.execute(_INSERT_CONTENT, (rid, *content))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

        _q.retry(transaction)


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
    Close the ledger (or use it as a context manager) to write what is still queued. A ledger
    left open is closed when it is garbage-collected, or at interpreter exit (within 5 s);
    the exit hook holds no reference to the ledger, and
    :meth:`close` removes it.

    Delivery is at most once: rows are never written twice, but rows still queued are lost if
    the process dies without a normal exit (``SIGKILL``, ``os._exit``, a crash, an unhandled
    ``SIGTERM``), past ``max_queue`` pending rows (the oldest are dropped, see :attr:`dropped`)
    and when a write fails after its retries (see :attr:`failed`).
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
        if content_codec is not None and not store_content:
            raise ConfigError("content_codec encrypts stored prompts: also pass store_content=True")
        self._path = os.fspath(path)
        self._store_content = store_content
        self._codec = content_codec
        self._writer = _Writer(
            self._path, batch_size, flush_interval, max_queue, store_content, content_codec
        )
        # Closes the writer when this ledger is collected or the interpreter exits; it refers
        # to the writer only, so it does not keep the ledger alive. Detached by close().
        self._finalizer: weakref.finalize[Any, Any] | None = None

    # -- writing ---------------------------------------------------------------------------

    def record(self, outcome: Outcome, *, prompt: object = None, response: object = None) -> None:
        """Queue one outcome to be written; returns at once and never raises for I/O.

        ``prompt`` and ``response`` (strings, or anything JSON-serializable such as messages)
        are kept only when the ledger was made with ``store_content=True``. When more than
        ``max_queue`` rows are waiting, the oldest is dropped (see :attr:`dropped`); after
        :meth:`close` the outcome itself is dropped.
        """
        writer = self._writer
        if writer.thread is None:
            self._start()
        writer.put((outcome, prompt, response) if self._store_content else (outcome, None, None))

    def record_feedback(
        self, model: str, task: str, score: float, at: float, *, origin: str | None = None
    ) -> None:
        """Queue one feedback score (written with the next batch, to the ``feedback`` table);
        returns at once. Clients call it for every :meth:`~multimodel.Client.feedback`, with
        ``origin`` naming the client (so that it does not read its own scores back)."""
        writer = self._writer
        if writer.thread is None:
            self._start()
        item = (_Score(model, task, score, at, origin), None, None)
        writer.put(item)  # type: ignore[arg-type]

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every outcome recorded before this call is written (or dropped/failed).

        Returns ``False`` if ``timeout`` seconds passed first.
        """
        return self._writer.flush(timeout)

    def open(self) -> UsageLedger:
        """Create or migrate the database now and start the writer; returns the ledger.

        Optional: the first :meth:`record` or query does it lazily. Calling it surfaces a bad
        path or an incompatible file here rather than in the writer's log.
        """
        if self._writer.closing:
            raise LedgerError("the ledger is closed")
        with closing(self._writer.connect()):
            pass
        self._start()
        return self

    def close(self, timeout: float | None = None) -> None:
        """Write everything still queued, then stop the writer. Idempotent.

        Waits at most ``timeout`` seconds (``None``: as long as the writing takes).
        """
        finalizer, self._finalizer = self._finalizer, None
        if finalizer is not None:
            finalizer.detach()
        self._writer.close(timeout)

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
        return self._writer.dropped

    @property
    def written(self) -> int:
        """Rows committed by this ledger's writer."""
        return self._writer.written

    @property
    def failed(self) -> int:
        """Rows lost to write errors (logged) after retries."""
        return self._writer.failed

    @property
    def batches(self) -> int:
        """Transactions committed by this ledger's writer."""
        return self._writer.batches

    @property
    def pending(self) -> int:
        """Rows queued and not yet taken by the writer."""
        return len(self._writer.queue)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._writer.closing

    def _start(self) -> None:
        writer = self._writer
        if writer.start():
            # Only the call that started the thread gets here, once per ledger.
            self._finalizer = weakref.finalize(self, writer.close, _EXIT_TIMEOUT)

    def _connect(self) -> sqlite3.Connection:
        return self._writer.connect()

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

    def feedback_rows(
        self, since: float = 0.0, *, after_id: int = 0, exclude_origin: str | None = None
    ) -> list[tuple[int, str, str, float, float]]:
        """Stored feedback scores at or after ``since`` (a Unix time) with a row id above
        ``after_id``, except those of ``exclude_origin``, in row order, as
        ``(id, model, task, score, ts)``: what clients replay into their quality estimates."""
        with self._reader() as conn:
            found = conn.execute(
                "SELECT id, model, task, score, ts FROM feedback WHERE ts >= ? AND id > ?"
                " AND (? IS NULL OR origin IS NULL OR origin != ?) ORDER BY id",
                (since, after_id, exclude_origin, exclude_origin),
            ).fetchall()
        return [(int(i), str(m), str(t), float(sc), float(ts)) for i, m, t, sc, ts in found]

    def served_by(self, key: str) -> tuple[str, tuple[str, ...]] | None:
        """The model group and tags of the newest successful row whose request id, or else
        whose answer id (``ChatResponse.id``), is ``key`` (``None``: no such row). Feedback by
        id, late or from another process, uses it; a cached answer's row names the model that
        produced it (the original row is preferred)."""
        with self._reader() as conn:
            found = None
            for column in ("request_id", "response_id"):  # each one indexed
                found = conn.execute(
                    f"SELECT model, tags FROM usage WHERE {column} = ? AND ok = 1 "  # noqa: S608
                    "ORDER BY cached, id DESC LIMIT 1",
                    (key,),
                ).fetchone()
                if found is not None:
                    break
        if found is None:
            return None
        return str(found[0]), tuple(json.loads(found[1] or "[]"))

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
