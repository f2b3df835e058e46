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
import os
import sqlite3
import weakref
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import timedelta
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
from ._ledger_writer import _EXIT_TIMEOUT, _Score, _Writer
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


_DAY = timedelta(days=1)
_MONTH = timedelta(days=30)


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
