"""The write side of the usage ledger: the in-memory queue, the background writer thread that
drains it into SQLite in batches (one IMMEDIATE transaction each, retried while the file is
locked), the connection setup (WAL, schema migration) and the ``usage`` row of an outcome.

:class:`~multimodel.tracking.ledger.UsageLedger` owns one :class:`_Writer`; the queries are in
``_ledger_queries``.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections import deque
from decimal import ROUND_HALF_EVEN
from typing import TYPE_CHECKING, Any, NamedTuple

from . import _ledger_queries as _q
from .outcome import Outcome

if TYPE_CHECKING:
    from ..security.crypto import ContentCodec

# The public module's name: what users configure logging by, wherever the writer lives.
logger = logging.getLogger("multimodel.tracking.ledger")

_Item = tuple[Outcome, object, object]

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
