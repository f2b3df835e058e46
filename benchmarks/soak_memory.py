"""Memory soak: the process's RSS over a long run of requests (issue 18: flat within ± 5 %
from 100k to 1M requests).

Usage::

    python benchmarks/soak_memory.py [--requests 1000000] [--every 100000]
                                     [--concurrency 50] [--seconds 1800] [--ledger]

An ``AsyncClient`` with the default configuration (``adaptive``, tracking, telemetry on) sends
a mix of queries (80 %) and streams (20 %) to three OpenAI-format deployments served in-process
by an ``httpx.MockTransport`` handler (no sockets: the run measures the library, not a server).
Every answer has its own response id and request id, prompts come in 97 sizes, and the calls
carry 5,000 different users and 50 tags in turn, so everything the client keeps per response,
per user or per tag is exercised (its bounds must hold). ``--ledger`` adds the SQLite usage
ledger (a file in a temporary directory).

The RSS (``VmRSS``, after a garbage collection) is sampled every ``--every`` requests; the run
prints the samples and the spread of those from ``--every`` on: (max - min) / min. Bounded in
count (``--requests``) and in time (``--seconds``): no more calls are issued when either is
reached.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import httpx

import multimodel as mm

warnings.simplefilter("ignore")

MODEL = "gpt-4o-mini"  # priced in the catalog
HOSTS = ("a.test", "b.test", "c.test")
WORDS = " ".join(f"token{i}" for i in range(24))


def rss_mib() -> float:
    """The resident set size of this process now (Linux ``/proc``), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


class Provider:
    """OpenAI-format answers, each with its own ids; nothing is kept per request."""

    def __init__(self) -> None:
        self._ids = itertools.count()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        # One checkpoint, as a network read would be: without it a call never yields to the
        # event loop, and the loop never gets to drop the timers of finished time limits.
        await anyio.lowlevel.checkpoint()
        n = next(self._ids)
        body = json.loads(request.content)
        prompt = sum(len(str(m.get("content", ""))) for m in body["messages"]) // 4 + 1
        headers = {"x-request-id": f"req_{n}"}
        usage = {"prompt_tokens": prompt, "completion_tokens": 24, "total_tokens": prompt + 24}
        if not body.get("stream"):
            return httpx.Response(
                200,
                headers=headers,
                json={
                    "id": f"chatcmpl-{n}",
                    "object": "chat.completion",
                    "created": 1_700_000_000,
                    "model": MODEL,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": WORDS},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": usage,
                },
            )
        events = []
        for i, word in enumerate(WORDS.split(" ")):
            delta = {"content": (" " if i else "") + word}
            events.append(self._chunk(n, delta, None))
        events.append(self._chunk(n, {}, "stop"))
        events.append(json.dumps({"id": f"chatcmpl-{n}", "choices": [], "usage": usage}))
        sse = "".join(f"data: {e}\n\n" for e in events) + "data: [DONE]\n\n"
        return httpx.Response(
            200,
            headers={**headers, "content-type": "text/event-stream"},
            content=sse.encode(),
        )

    @staticmethod
    def _chunk(n: int, delta: dict[str, Any], finish: str | None) -> str:
        return json.dumps(
            {
                "id": f"chatcmpl-{n}",
                "object": "chat.completion.chunk",
                "created": 1_700_000_000,
                "model": MODEL,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
        )


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    deployments = [
        mm.Deployment(
            model=MODEL,
            provider="openai",
            name=host.split(".")[0],
            base_url=f"https://{host}/v1",
            api_key="sk-soak",
        )
        for host in HOSTS
    ]
    tmp = tempfile.TemporaryDirectory()
    extra: dict[str, Any] = {"ledger": str(Path(tmp.name) / "usage.db")} if args.ledger else {}
    client = mm.AsyncClient(
        deployments=deployments, transport=httpx.MockTransport(Provider()), **extra
    )
    prompts = [f"Summarise item {k}: " + "lorem ipsum " * k for k in range(97)]
    issued = itertools.count()
    done = 0
    samples: list[tuple[int, float]] = []
    stop_at = time.monotonic() + args.seconds
    started = time.monotonic()

    async def worker() -> None:
        nonlocal done
        while time.monotonic() < stop_at:
            i = next(issued)
            if i >= args.requests:
                return
            kw: dict[str, Any] = {
                "model": MODEL,
                "max_tokens": 32,
                "user": f"user{i % 5000}",
                "tags": [f"tag{i % 50}"],
            }
            if i % 5 == 4:
                async with client.stream(prompts[i % 97], **kw) as stream:
                    async for _ in stream:
                        pass
            else:
                await client.query(prompts[i % 97], **kw)
            done += 1
            if done % args.every == 0:
                gc.collect()
                samples.append((done, rss_mib()))
                rate = done / (time.monotonic() - started)
                print(f"{done:>9,} requests  RSS {samples[-1][1]:7.1f} MiB  ({rate:,.0f}/s)")
                sys.stdout.flush()

    async with anyio.create_task_group() as tg:
        for _ in range(args.concurrency):
            tg.start_soon(worker)
    await client.aclose()
    tmp.cleanup()
    spread = None
    if len(samples) >= 2:
        values = [mib for _, mib in samples]
        spread = (max(values) - min(values)) / min(values)
    return {"requests": done, "samples": samples, "spread": spread}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--every", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=1800.0)
    parser.add_argument("--ledger", action="store_true", help="add the SQLite usage ledger")
    args = parser.parse_args()
    result = anyio.run(soak, args)
    if result["spread"] is None:
        print(f"{result['requests']:,} requests: too few samples for a spread")
        return
    first, last = result["samples"][0], result["samples"][-1]
    print(
        f"RSS {first[1]:.1f} MiB at {first[0]:,} -> {last[1]:.1f} MiB at {last[0]:,}; "
        f"spread (max - min) / min over the samples: {100 * result['spread']:.1f} %"
    )


if __name__ == "__main__":
    main()
