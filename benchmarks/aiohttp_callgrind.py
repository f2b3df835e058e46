"""Client instructions per request over ``transport="aiohttp"``, for ``valgrind --tool=callgrind``.

``run.py``'s aiohttp section as one loop: the mock server runs in a child process (valgrind
does not follow it, so only the client is counted), 400 requests warm the connections up,
then N requests are sent by ``WORKERS`` tasks (200, or 1 for the steadier sequential loop)::

    for n in 200 1200; do
        valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
            python benchmarks/aiohttp_callgrind.py lib 200 $n 2>&1 | grep Collected
    done
    # instructions per request = (second - first) / 1000

SIDE is ``lib`` (``AsyncClient(transport="aiohttp")``) or ``native`` (aiohttp's own client with
the same URL, headers and body: the floor). A 200-way count moves by a few percent from run to
run with how the answers batch up; the sequential one (WORKERS 1) is steadier.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).parent))

import run  # the benchmark's own helpers, next to this file

from multimodel.testing.process import MockServerProcess


async def main(server: MockServerProcess, side: str, workers: int, n: int) -> None:
    client, session, native, lib = run.aiohttp_sides(server)
    send: Callable[[], Awaitable[None]] = lib if side == "lib" else native
    await run._conc_round(send, 400, 200, 60)  # warm up: open the connections
    await run._conc_round(send, n, workers, 600)
    await client.aclose()
    await session.close()


if __name__ == "__main__":
    side, workers, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with MockServerProcess(run.server_deployments()) as server:
        anyio.run(main, server, side, workers, count, backend="asyncio")
