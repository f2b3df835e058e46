"""The usage ledger's durability: what close(), interpreter exit and garbage collection write,
and what an abrupt end loses (delivery is at most once)."""

from __future__ import annotations

import gc
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import weakref
from contextlib import closing
from pathlib import Path

import pytest

from multimodel.tracking.ledger import UsageLedger
from multimodel.tracking.outcome import Outcome

ROWS = 2_000


def outcome(i: int = 0) -> Outcome:
    return Outcome(
        deployment="d",
        model="m",
        provider="openai",
        ok=True,
        latency=0.1,
        started_at=time.time(),
        attempt=i,
    )


def count(path: Path) -> int:
    if not path.exists():
        return 0
    with closing(sqlite3.connect(path)) as conn:
        tables = conn.execute("SELECT name FROM sqlite_master WHERE name = 'usage'").fetchall()
        return int(conn.execute("SELECT COUNT(*) FROM usage").fetchone()[0]) if tables else 0


def run(path: Path, ending: str) -> subprocess.CompletedProcess[str]:
    """A child process that records ROWS rows (none written yet: long interval, huge batch)
    and then ends as ``ending`` says, without calling close()."""
    code = textwrap.dedent(f"""
        import os, sys, time
        from multimodel.tracking.ledger import UsageLedger
        from multimodel.tracking.outcome import Outcome

        ledger = UsageLedger({str(path)!r}, flush_interval=3600, batch_size=1_000_000)
        for i in range({ROWS}):
            ledger.record(Outcome(deployment="d", model="m", provider="openai", ok=True,
                                  latency=0.1, started_at=time.time(), attempt=i))
        assert ledger.written == 0 and ledger.pending == {ROWS}
        print("recorded", flush=True)
        {ending}
    """)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )


@pytest.mark.parametrize(
    "ending",
    [
        "pass",  # the script just ends
        "sys.exit(3)",
        "raise RuntimeError('boom')",  # an unhandled exception still exits normally
        "del ledger",  # dropped unclosed: closed when collected
    ],
)
def test_rows_queued_at_a_normal_exit_are_written(tmp_path: Path, ending: str) -> None:
    path = tmp_path / "usage.db"
    done = run(path, ending)
    assert "recorded" in done.stdout, done.stderr
    assert count(path) == ROWS


def test_an_abrupt_end_loses_the_queue_at_most_once(tmp_path: Path) -> None:
    """os._exit skips the exit hooks: the queued rows are lost (documented), never doubled."""
    path = tmp_path / "usage.db"
    done = run(path, "os._exit(0)")
    assert done.returncode == 0 and "recorded" in done.stdout, done.stderr
    assert count(path) == 0


def test_close_writes_the_queue_and_removes_the_exit_hook(tmp_path: Path) -> None:
    path = tmp_path / "usage.db"
    ledger = UsageLedger(path, flush_interval=3600, batch_size=1_000_000)
    for i in range(ROWS):
        ledger.record(outcome(i))
    finalizer = ledger._finalizer
    assert finalizer is not None and finalizer.alive
    assert ledger.pending == ROWS and count(path) == 0
    ledger.close()
    assert count(path) == ROWS
    assert ledger.written == ROWS and ledger.pending == 0
    assert not finalizer.alive  # unregistered: nothing left to run at exit
    ref = weakref.ref(ledger)
    del ledger
    gc.collect()
    assert ref() is None


def test_an_unclosed_ledger_is_not_kept_alive_and_is_written_when_collected(
    tmp_path: Path,
) -> None:
    path = tmp_path / "usage.db"
    before = {t for t in threading.enumerate() if t.name == "multimodel-ledger"}
    ledger = UsageLedger(path, flush_interval=3600, batch_size=1_000_000)
    for i in range(ROWS):
        ledger.record(outcome(i))
    ref = weakref.ref(ledger)
    del ledger  # neither its writer thread nor its exit hook holds it
    gc.collect()
    assert ref() is None
    assert count(path) == ROWS
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        after = {t for t in threading.enumerate() if t.name == "multimodel-ledger"} - before
        if not after:
            break
        time.sleep(0.01)
    assert not after  # its writer stopped
