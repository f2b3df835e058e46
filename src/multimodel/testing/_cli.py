"""Command line of the mock provider server: ``python -m multimodel.testing.server``.

Example::

    $ python -m multimodel.testing.server --port 0 --config scenario.json
    READY http://127.0.0.1:54321

The process serves until SIGTERM/SIGINT, or until its standard input is closed when stdin is a
pipe, socket or terminal (``--ignore-stdin`` turns that off; ``/dev/null`` is never watched).
A scenario file looks like::

    {"deployments": {
        "fast": {"format": "openai", "behavior": {"latency": 0.01, "text": "hi"}},
        "flaky": {"format": "anthropic", "behavior": {"script": [529, 200], "retry_after": 0.1}}
    }}
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import stat
import sys
import threading
from pathlib import Path

from .behavior import MockDeployment
from .server import MockProviderServer

__all__ = ["load_scenario", "main"]


def load_scenario(path: Path) -> dict[str, MockDeployment]:
    """Read ``{"deployments": {name: {"format", "behavior", "model"}}}`` from a JSON file."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("deployments"), dict):
        raise TypeError(f"{path}: expected an object with a 'deployments' object")
    return {name: MockDeployment.from_dict(spec) for name, spec in data["deployments"].items()}


def _stdin_is_watchable() -> bool:
    """Whether stdin can signal shutdown by closing (a pipe, socket or terminal)."""
    try:
        mode = os.fstat(0).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(0)


def _wait_for_eof(stop: threading.Event) -> None:
    try:
        while os.read(0, 65536):
            pass
    except OSError:
        pass
    stop.set()


def main(argv: list[str] | None = None) -> int:
    """Run the mock server as a process: print ``READY <url>``, serve until told to stop."""
    parser = argparse.ArgumentParser(
        prog="python -m multimodel.testing.server",
        description="Mock LLM provider server (OpenAI, Anthropic, Gemini wire formats).",
    )
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any)")
    parser.add_argument("--config", type=Path, help="scenario JSON file")
    parser.add_argument(
        "--ignore-stdin", action="store_true", help="do not stop when stdin is closed"
    )
    args = parser.parse_args(argv)
    deployments = load_scenario(args.config) if args.config else None
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with MockProviderServer(deployments, port=args.port) as server:
        sys.stdout.write(f"READY {server.url}\n")
        sys.stdout.flush()
        if not args.ignore_stdin and _stdin_is_watchable():
            threading.Thread(target=_wait_for_eof, args=(stop,), daemon=True).start()
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
