"""multimodel's overhead, measured against raw httpx calls to the same local mock server.

Usage::

    python benchmarks/run.py [--quick] [--json out.json] [--only seq,conc,stream,import,route,track]
    MULTIMODEL_BENCH_REDIS_URL=redis://127.0.0.1:6379/15 python benchmarks/run.py --only shared

Every figure that depends on the machine is reported as a RATIO against a raw ``httpx`` call
made in the same run to the same mock server (a ``MockServerProcess``: a child process, so the
server does not share the GIL with the code measured). Repetitions are interleaved (raw,
multimodel, raw, multimodel...) and medians are reported. Every loop is bounded in count and in
time. See ``docs/performance.md`` for the results and how to read them.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import anyio
import httpx

import multimodel as mm
from multimodel.testing import Behavior, MockDeployment
from multimodel.testing.process import MockServerProcess
from multimodel.tracking.outcome import Outcome
from multimodel.tracking.stats import Tracker
from multimodel.types import Usage

warnings.simplefilter("ignore")  # pricing warnings for mock model names are not the point here

STRATEGIES = (
    "round_robin",
    "weighted",
    "least_connections",
    "response_time",
    "intelligent",
    "adaptive",
)
TARGETS = {
    "sequential_overhead_pct": ("<=", 10.0),
    "concurrent_ratio": (">=", 0.90),
    "aiohttp_native_ratio": (">=", 0.80),
    "stream_ratio": (">=", 0.80),
    "astream_ttft_overhead_ms": ("<=", 0.5),
    "astream_chunks_ratio": (">=", 1.0),
    "shared_state_ratio": (">=", 0.80),
    "import_ratio_bare": ("<=", 1.3),
    "import_ratio_usable": ("<=", 1.3),
    "rss_ratio": ("<=", 1.2),
    "routing_pct_of_rtt_default": ("<", 5.0),
    "routing_pct_of_rtt_all": ("<", 5.0),
    "tracker_record_us": ("<", 5.0),
}
# Reported beside the targets, without one of their own: multimodel and raw httpx sharing
# httpx's pool (noise around its collapse), intelligent with model="auto" over five models (the
# routing target's rows are one model on 3 and 50 deployments), the import with Client and
# AsyncClient touched but no client built, and the pydantic floor: the baselines import pydantic
# but never build a model, and the first BaseModel a process builds and validates loads pydantic's
# model machinery, its plugin scan (importlib.metadata over every installed distribution) and its
# validators; the floor rows are that alone (one one-field model, one instance) over each
# baseline, the part of each ratio no library whose public types are pydantic models avoids.
INFO = (
    "concurrent_ratio_same_pool",
    "aiohttp_rps",
    "aiohttp_native_200_ratio",
    "routing_pct_auto_mixed",
    "import_ratio_touch",
    "import_ratio_pydantic_floor",
    "rss_ratio_pydantic_floor",
)
PROMPT = "Say hello in one short sentence."
LIMITS = httpx.Limits(max_connections=200, max_keepalive_connections=200)


@dataclass(frozen=True)
class Budget:
    """How much work each section may do (counts and seconds)."""

    seq_rounds: int
    seq_block: int
    conc_rounds: int
    conc_requests: int
    conc_aiohttp_rounds: int
    stream_rounds: int
    import_runs: int
    rss_requests: int
    route_iters: int
    tracker_big: int
    ledger_records: int
    section_seconds: float


FULL = Budget(
    seq_rounds=60,
    seq_block=60,
    conc_rounds=3,
    conc_requests=600,
    conc_aiohttp_rounds=9,
    stream_rounds=21,
    import_runs=9,
    rss_requests=1000,
    route_iters=3000,
    tracker_big=1_000_000,
    ledger_records=50_000,
    section_seconds=40.0,
)
QUICK = Budget(
    seq_rounds=24,
    seq_block=40,
    conc_rounds=1,
    conc_requests=400,
    conc_aiohttp_rounds=5,
    stream_rounds=9,
    import_runs=7,
    rss_requests=1000,
    route_iters=800,
    tracker_big=200_000,
    ledger_records=20_000,
    section_seconds=8.0,
)


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- the server -----------------------------------------------------------------------------------

WORDS = " ".join(f"w{i}" for i in range(500))


def server_deployments() -> dict[str, MockDeployment]:
    return {
        "oai": MockDeployment(format="openai", behavior=Behavior(text="Hello there, friend.")),
        "ant": MockDeployment(format="anthropic", behavior=Behavior(text="Hello there, friend.")),
        "oai-stream": MockDeployment(format="openai", behavior=Behavior(text=WORDS, chunks=500)),
    }


def deployment(server: MockServerProcess, name: str) -> mm.Deployment:
    if name == "ant":
        return mm.Deployment(
            model="claude-3.5-haiku",
            provider="anthropic",
            provider_model="claude-3-5-haiku-latest",
            api_key="sk-test",
            base_url=server.base_url(name),
        )
    return mm.Deployment(
        model="gpt-4o-mini", provider="openai", api_key="sk-test", base_url=server.base_url(name)
    )


def raw_request(client: mm.Client | mm.AsyncClient, stream: bool = False) -> httpx.Request:
    """The exact request multimodel sends (same URL, headers and JSON body) for the raw calls."""
    request = client._build_request(PROMPT, None, {"max_tokens": 20})
    endpoint = client.deployments[0]
    return client._adapters[endpoint.name].build_request(request, endpoint, stream=stream)


# -- (a) sequential ------------------------------------------------------------------------------


def raw_parts(client: mm.Client | mm.AsyncClient) -> tuple[str, dict[str, str], Any, bytes]:
    """URL, headers (without the body's), JSON payload and encoded body of multimodel's request.

    The raw baseline posts the payload with ``json=``, as code that calls an LLM API with httpx
    directly does; the stricter ``content=`` variant posts multimodel's own pre-encoded bytes.
    """
    req = raw_request(client)
    headers = {k: v for k, v in req.headers.items() if k not in ("content-length", "content-type")}
    return str(req.url), headers, json.loads(req.content), req.content


def bench_sequential(server: MockServerProcess, b: Budget) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("oai", "ant"):
        raw_http = httpx.Client(limits=LIMITS)
        client = mm.Client(
            deployments=[deployment(server, name)], http_client=httpx.Client(limits=LIMITS)
        )
        url, headers, payload, body = raw_parts(client)
        bytes_headers = {**headers, "content-type": "application/json"}

        def raw(
            n: int,
            raw_http: httpx.Client = raw_http,
            url: str = url,
            headers: dict[str, str] = headers,
            payload: Any = payload,
        ) -> None:
            for _ in range(n):
                r = raw_http.post(url, json=payload, headers=headers)
                json.loads(r.content)
                assert r.status_code == 200

        def raw_bytes(
            n: int,
            raw_http: httpx.Client = raw_http,
            url: str = url,
            headers: dict[str, str] = bytes_headers,
            body: bytes = body,
        ) -> None:
            for _ in range(n):
                r = raw_http.post(url, content=body, headers=headers)
                json.loads(r.content)
                assert r.status_code == 200

        def lib(n: int, client: mm.Client = client) -> None:
            for _ in range(n):
                client.query(PROMPT, max_tokens=20)

        sides = {"raw": (raw, []), "raw_bytes": (raw_bytes, []), "lib": (lib, [])}
        for fn, _ in sides.values():
            fn(200)
        deadline = time.perf_counter() + b.section_seconds
        order = list(sides)
        for i in range(b.seq_rounds):
            # Short rounds of every side back to back, the order rotating, so that the machine's
            # slow drifts hit all sides alike; ratios are taken within each round (paired).
            for key in order[i % 3 :] + order[: i % 3]:
                fn, into = sides[key]
                t = time.perf_counter()
                fn(b.seq_block)
                into.append((time.perf_counter() - t) / b.seq_block * 1e6)
            if time.perf_counter() > deadline and i >= 4:
                break
        raws, bytes_, libs = (sides[k][1] for k in ("raw", "raw_bytes", "lib"))
        ratio = median([x / r for x, r in zip(libs, raws, strict=True)])
        ratio_bytes = median([x / r for x, r in zip(libs, bytes_, strict=True)])
        raw_us, bytes_us, lib_us = median(raws), median(bytes_), median(libs)
        out[name] = {
            "raw_us": raw_us,
            "raw_bytes_us": bytes_us,
            "multimodel_us": lib_us,
            "overhead_us": lib_us - raw_us,
            "overhead_pct": 100.0 * (ratio - 1),
            "overhead_vs_bytes_pct": 100.0 * (ratio_bytes - 1),
            "rounds": len(libs),
        }
        client.close()
        client._http.close()
        raw_http.close()
    return out


# -- (b) concurrent ------------------------------------------------------------------------------


async def _conc_round(send: Callable[[], Any], total: int, workers: int, limit: float) -> float:
    """Requests/s of ``workers`` tasks sending ``total`` requests (stops after ``limit`` s)."""
    remaining = total
    done = 0

    async def worker() -> None:
        nonlocal remaining, done
        while remaining > 0:
            remaining -= 1
            await send()
            done += 1

    t = time.perf_counter()
    with anyio.move_on_after(limit):
        async with anyio.create_task_group() as tg:
            for _ in range(workers):
                tg.start_soon(worker)
    return done / (time.perf_counter() - t)


async def _bench_conc(server: MockServerProcess, b: Budget) -> dict[str, Any]:
    raw_http = httpx.AsyncClient(limits=LIMITS, timeout=60)
    lib_http = httpx.AsyncClient(limits=LIMITS, timeout=60)
    client = mm.AsyncClient(deployments=[deployment(server, "oai")], http_client=lib_http)
    url, headers, payload, _ = raw_parts(client)

    async def raw() -> None:
        r = await raw_http.post(url, json=payload, headers=headers)
        json.loads(r.content)
        assert r.status_code == 200

    async def lib() -> None:
        await client.query(PROMPT, max_tokens=20)

    # multimodel as a user gets it: AsyncClient's own httpx client, whose transport is
    # multimodel's O(1) pool over httpcore connections (same limits as the raw side).
    from multimodel._transports.pool import AsyncPoolTransport

    own = mm.AsyncClient(
        deployments=[deployment(server, "oai")], transport=AsyncPoolTransport(limits=LIMITS)
    )

    async def lib_own() -> None:
        await own.query(PROMPT, max_tokens=20)

    rates = await _conc_rates({"raw": raw, "lib": lib, "lib_own_pool": lib_own}, b, b.conc_requests)
    await raw_http.aclose()
    await lib_http.aclose()
    await own.aclose()
    out = {
        "raw_rps": median(rates["raw"]),
        "multimodel_rps": median(rates["lib"]),
        "ratio": median(rates["lib"]) / median(rates["raw"]),
        "rounds": len(rates["lib"]),
    }
    out["own_pool_rps"] = median(rates["lib_own_pool"])
    out["own_pool_ratio"] = out["own_pool_rps"] / out["raw_rps"]
    return out


def aiohttp_sides(
    server: MockServerProcess, connections: int = 100
) -> tuple[mm.AsyncClient, Any, Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]:
    """The two sides of the aiohttp comparison, built inside the event loop: ``(client,
    session, native, lib)``, where ``native`` posts the same request with aiohttp's own client
    and ``lib`` makes one ``client.query`` over ``transport="aiohttp"``, both with at most
    ``connections`` connections (100: both defaults, so at 200 in flight every other request
    waits on either side). The caller closes ``client`` and ``session``."""
    import aiohttp

    client = mm.AsyncClient(
        deployments=[deployment(server, "oai")], transport="aiohttp", max_connections=connections
    )
    url, headers, payload, _ = raw_parts(client)
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections))
    body = json.dumps(payload).encode()
    aio_headers = {**headers, "content-type": "application/json"}

    async def native() -> None:
        async with session.post(url, data=body, headers=aio_headers) as r:
            json.loads(await r.read())
            assert r.status == 200

    async def lib() -> None:
        await client.query(PROMPT, max_tokens=20)

    return client, session, native, lib


async def _bench_conc_aiohttp(server: MockServerProcess, b: Budget) -> dict[str, Any]:
    """``AsyncClient(transport="aiohttp")`` as a user gets it (its default limits: 100
    connections), against aiohttp's own client alone as a user gets it (the ceiling: no httpx,
    no multimodel; its default connector, 100 connections too), both with 200 connections
    (reported: no request waits for a connection there), and raw httpx over
    ``httpx_aiohttp.AiohttpTransport`` (when that package is installed)."""
    client, session, native, lib = aiohttp_sides(server)
    # Both with 200 connections (no request waits for one on either side), reported.
    wide_client, wide, native_200, lib_200 = aiohttp_sides(server, 200)
    url, headers, payload, _ = raw_parts(client)
    sides: dict[str, Callable[[], Any]] = {
        "aiohttp_native": native,
        "lib": lib,
        "aiohttp_native_200": native_200,
        "lib_200": lib_200,
    }
    raw_http = None
    try:
        from httpx_aiohttp import AiohttpTransport
    except ImportError:
        pass
    else:
        raw_http = httpx.AsyncClient(transport=AiohttpTransport(limits=LIMITS), timeout=60)

        async def raw() -> None:
            assert raw_http is not None
            r = await raw_http.post(url, json=payload, headers=headers)
            json.loads(r.content)
            assert r.status_code == 200

        sides["raw"] = raw
    # More, shorter rounds than the httpx section: the machine's speed drifts, and the
    # median and range of paired rounds say more than one long round.
    rates = await _conc_rates(sides, b, b.conc_requests * 3, b.conc_aiohttp_rounds)
    await client.aclose()
    await session.close()
    await wide.close()
    await wide_client.aclose()
    if raw_http is not None:
        await raw_http.aclose()
    lib_rps = median(rates["lib"])
    native_rps = median(rates["aiohttp_native"])
    wide_rps = median(rates["aiohttp_native_200"])
    lib_wide_rps = median(rates["lib_200"])
    out: dict[str, Any] = {
        "multimodel_rps": lib_rps,
        "aiohttp_native_rps": native_rps,
        "native_ratio": lib_rps / native_rps,
        "aiohttp_native_200_rps": wide_rps,
        "native_200_ratio": lib_wide_rps / wide_rps,
        "multimodel_200_rps": lib_wide_rps,
        "multimodel_200_all": rates["lib_200"],
        "rounds": len(rates["lib"]),
        "multimodel_all": rates["lib"],
        "aiohttp_native_all": rates["aiohttp_native"],
        "aiohttp_native_200_all": rates["aiohttp_native_200"],
    }
    if "raw" in rates:
        out["raw_rps"] = median(rates["raw"])
        out["ratio"] = lib_rps / out["raw_rps"]
        out["raw_all"] = rates["raw"]
    return out


async def _conc_rates(
    sides: dict[str, Callable[[], Any]], b: Budget, total: int, rounds: int | None = None
) -> dict[str, list[float]]:
    """Requests/s of each side over ``rounds`` rounds, the order rotating per round."""
    limit = b.section_seconds / 2
    for fn in sides.values():
        await _conc_round(fn, 200, 200, limit)  # warm up: open the connections
    rates: dict[str, list[float]] = {key: [] for key in sides}
    for i in range(rounds or b.conc_rounds):
        keys = list(sides)
        for key in keys[i % len(keys) :] + keys[: i % len(keys)]:
            rates[key].append(await _conc_round(sides[key], total, 200, limit))
    return rates


async def _bench_shared_conc(server: MockServerProcess, b: Budget, url: str) -> dict[str, Any]:
    import uuid

    from multimodel._transports.pool import AsyncPoolTransport

    def client(shared: Any, rpm: int | None) -> mm.AsyncClient:
        dep = deployment(server, "oai").model_copy(update={"rpm": rpm})
        return mm.AsyncClient(
            deployments=[dep],
            transport=AsyncPoolTransport(limits=LIMITS),
            shared_state=shared,
        )

    prefix = f"bench-{uuid.uuid4().hex}"
    plain = client(None, None)
    local_rpm = client(None, 10**9)  # the local limiter alone: what rpm costs without Redis
    states = {
        "shared": mm.RedisState(url, prefix=prefix),
        "shared_rpm": mm.RedisState(url, prefix=prefix + "-rpm"),
    }
    shared = client(states["shared"], None)
    limited = client(states["shared_rpm"], 10**9)  # limits on: admission plus bookkeeping
    sides = {
        "plain": lambda: plain.query(PROMPT, max_tokens=20),
        "plain_rpm": lambda: local_rpm.query(PROMPT, max_tokens=20),
        "shared": lambda: shared.query(PROMPT, max_tokens=20),
        "shared_rpm": lambda: limited.query(PROMPT, max_tokens=20),
    }
    before = {k: st.round_trips for k, st in states.items()}
    calls = dict.fromkeys(sides, 0)

    def counted(key: str) -> Callable[[], Any]:
        async def send() -> None:
            calls[key] += 1
            await sides[key]()

        return send

    # At least 7 rounds, the sides' order rotating: each ratio is the median of the per-round
    # ratios (paired, as the sequential overhead), so the machine's drifts hit both sides alike.
    # Single rounds of identical work differ by up to ~30 % on this machine: 3 were too few.
    rounds = max(7, 3 * b.conc_rounds)
    rates = await _conc_rates({k: counted(k) for k in sides}, b, b.conc_requests, rounds)
    out: dict[str, Any] = {"plain_rps": median(rates["plain"]), "rounds": rounds}
    for key in ("plain_rpm", *states):
        out[f"{key}_rps"] = median(rates[key])
        ratios = [x / p for x, p in zip(rates[key], rates["plain"], strict=True)]
        out[f"{key}_ratio"] = median(ratios)
        out[f"{key}_ratios"] = ratios
    for key, state in states.items():
        out[f"{key}_round_trips_per_request"] = (state.round_trips - before[key]) / calls[key]
    for c in (plain, local_rpm, shared, limited):
        await c.aclose()
    return out


def bench_shared(server: MockServerProcess, b: Budget) -> dict[str, Any]:
    """``shared_state`` against a local Redis: 200-way async throughput and sequential latency,
    without limits (admission only) and with ``rpm`` (admission plus bookkeeping)."""
    import uuid

    url = os.environ.get("MULTIMODEL_BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
    out: dict[str, Any] = {"redis": url}
    out["concurrent"] = anyio.run(_bench_shared_conc, server, b, url, backend="asyncio")
    n = b.seq_block
    state = mm.RedisState(url, prefix=f"bench-{uuid.uuid4().hex}")
    dep = deployment(server, "oai")
    with (
        mm.Client(deployments=[dep]) as plain,
        mm.Client(deployments=[dep.model_copy(update={"rpm": 10**9})], shared_state=state) as sh,
    ):
        times: dict[str, list[float]] = {"plain": [], "shared_rpm": []}
        for c in (plain, sh):
            c.query(PROMPT, max_tokens=20)  # warm up
        deadline = time.perf_counter() + b.section_seconds
        for _ in range(max(3, b.seq_rounds // 4)):
            for key, c in (("plain", plain), ("shared_rpm", sh)):
                t = time.perf_counter()
                for _ in range(n):
                    c.query(PROMPT, max_tokens=20)
                times[key].append((time.perf_counter() - t) / n)
            if time.perf_counter() > deadline:
                break
        plain_us = median(times["plain"]) * 1e6
        shared_us = median(times["shared_rpm"]) * 1e6
    out["sequential"] = {
        "plain_us": plain_us,
        "shared_rpm_us": shared_us,
        "added_us": shared_us - plain_us,
        "overhead_pct": (shared_us / plain_us - 1) * 100,
    }
    return out


def bench_concurrent(server: MockServerProcess, b: Budget) -> dict[str, Any]:
    out = {"httpx": anyio.run(_bench_conc, server, b)}
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        out["aiohttp"] = {"skipped": "pip install 'multimodel[aiohttp]'"}
    else:
        out["aiohttp"] = anyio.run(_bench_conc_aiohttp, server, b, backend="asyncio")
    return out


# -- (c) streaming -------------------------------------------------------------------------------


def bench_stream(server: MockServerProcess, b: Budget) -> dict[str, Any]:
    raw_http = httpx.Client(limits=LIMITS)
    client = mm.Client(deployments=[deployment(server, "oai-stream")])
    req = raw_request(client, stream=True)
    url, headers, body = str(req.url), dict(req.headers), req.content

    def raw() -> int:  # what code reading an OpenAI stream with httpx alone does
        n = 0
        with raw_http.stream("POST", url, content=body, headers=headers) as r:
            for line in r.iter_lines():
                if line.startswith("data:") and line != "data: [DONE]":
                    event = json.loads(line[5:])
                    n += bool(event["choices"] and event["choices"][0]["delta"].get("content"))
        return n

    def lib() -> int:
        n = 0
        with client.stream(PROMPT, max_tokens=20) as s:
            for chunk in s:
                n += bool(chunk.text)
        return n

    runners: list[tuple[str, Callable[[], int]]] = [("raw", raw), ("multimodel", lib)]
    sdk = _openai_sdk(server)
    if sdk is not None:
        runners.append(("openai_sdk", sdk))
    times: dict[str, list[float]] = {k: [] for k, _ in runners}
    counts: dict[str, int] = {}
    for _, fn in runners:
        fn()
    deadline = time.perf_counter() + b.section_seconds
    for i in range(b.stream_rounds):
        for key, fn in runners if i % 2 == 0 else runners[::-1]:
            t = time.perf_counter()
            counts[key] = fn()
            times[key].append(time.perf_counter() - t)
        if time.perf_counter() > deadline:
            break
    client.close()
    raw_http.close()
    out: dict[str, Any] = {"content_chunks": 500, "counted": counts}
    for key, secs in times.items():  # unit: the 500 content chunks of one stream, any client
        out[f"{key}_chunks_per_s"] = 500 / median(secs)
    # Paired, like the sequential section: each round's two streams ran back to back.
    out["ratio"] = median([r / m for r, m in zip(times["raw"], times["multimodel"], strict=True)])
    if sdk is not None:
        out["openai_sdk_ratio"] = out["openai_sdk_chunks_per_s"] / out["raw_chunks_per_s"]
    return out


async def _bench_astream(server: MockServerProcess, b: Budget) -> dict[str, Any]:
    """Async streams: time to the first content chunk and chunks/s, multimodel against raw
    httpx (``AsyncClient.stream`` + ``aiter_lines`` + ``json.loads``) and raw aiohttp (its
    line iterator + ``json.loads``), rounds interleaved; the overhead is the median of the
    per-round differences."""
    raw_http = httpx.AsyncClient(limits=LIMITS)
    lib_default = mm.AsyncClient(deployments=[deployment(server, "oai-stream")])
    req = raw_request(lib_default, stream=True)
    url, headers, body = str(req.url), dict(req.headers), req.content
    Timed = tuple[float, float]  # seconds to the first content chunk, to the end

    def content(data: bytes | str) -> bool:
        event = json.loads(data)
        return bool(event["choices"] and event["choices"][0]["delta"].get("content"))

    async def raw_httpx() -> Timed:
        t = time.perf_counter()
        first = 0.0
        async with raw_http.stream("POST", url, content=body, headers=headers) as r:
            async for line in r.aiter_lines():
                if line.startswith("data:") and line != "data: [DONE]" and content(line[5:]):
                    first = first or time.perf_counter() - t
        return first, time.perf_counter() - t

    def lib(client: mm.AsyncClient) -> Callable[[], Any]:
        async def run() -> Timed:
            t = time.perf_counter()
            first = 0.0
            async with client.stream(PROMPT, max_tokens=20) as s:
                async for chunk in s:
                    if chunk.text:
                        first = first or time.perf_counter() - t
            return first, time.perf_counter() - t

        return run

    sides: dict[str, Callable[[], Any]] = {"raw_httpx": raw_httpx, "httpx": lib(lib_default)}
    closers: list[Callable[[], Any]] = [raw_http.aclose, lib_default.aclose]
    try:
        import aiohttp
    except ImportError:
        pass
    else:
        session = aiohttp.ClientSession()
        lib_aio = mm.AsyncClient(
            deployments=[deployment(server, "oai-stream")], transport="aiohttp"
        )
        closers += [session.close, lib_aio.aclose]

        async def raw_aiohttp() -> Timed:
            t = time.perf_counter()
            first = 0.0
            async with session.post(url, data=body, headers=headers) as r:
                async for line in r.content:
                    done = line.strip() == b"data: [DONE]"
                    if line.startswith(b"data:") and not done and content(line[5:]):
                        first = first or time.perf_counter() - t
            return first, time.perf_counter() - t

        sides["raw_aiohttp"] = raw_aiohttp
        sides["aiohttp"] = lib(lib_aio)
    times: dict[str, list[Timed]] = {k: [] for k in sides}
    for fn in sides.values():
        await fn()
    deadline = time.perf_counter() + b.section_seconds
    keys = list(sides)
    for i in range(b.stream_rounds * 3):
        for key in keys if i % 2 == 0 else keys[::-1]:
            times[key].append(await sides[key]())
        if time.perf_counter() > deadline:
            break
    for close in closers:
        await close()
    out: dict[str, Any] = {"rounds": len(times["httpx"]), "ttft_ms": {}, "ttft_overhead_ms": {}}
    for key, xs in times.items():
        out["ttft_ms"][key] = median([x[0] for x in xs]) * 1000
        out[f"{key}_chunks_per_s"] = 500 / median([x[1] for x in xs])
    for transport in ("httpx", "aiohttp"):
        if transport in times:
            pairs = zip(times[transport], times[f"raw_{transport}"], strict=True)
            out["ttft_overhead_ms"][transport] = median([(m[0] - r[0]) * 1000 for m, r in pairs])
    pairs = zip(times["raw_httpx"], times["httpx"], strict=True)
    out["chunks_ratio"] = median([r[1] / m[1] for r, m in pairs])
    return out


def bench_astream(server: MockServerProcess, b: Budget) -> dict[str, Any]:
    return anyio.run(_bench_astream, server, b, backend="asyncio")


def _openai_sdk(server: MockServerProcess) -> Callable[[], int] | None:
    try:
        import openai
    except ImportError:
        return None
    sdk = openai.OpenAI(base_url=server.base_url("oai-stream"), api_key="sk-test", max_retries=0)

    def run() -> int:
        n = 0
        stream = sdk.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": PROMPT}],
            max_tokens=20,
            stream=True,
        )
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                n += 1
        return n

    return run


# -- (d) import time and memory ------------------------------------------------------------------

_IMPORT = "import time; t = time.perf_counter(); {code}; print(time.perf_counter() - t)"
_TOUCH = "import multimodel; multimodel.Client; multimodel.AsyncClient"
# One pydantic model built and validated, as an expression (the -c line joins with "; ").
_ONE_MODEL = "pydantic.create_model('M', a=(str, ...))(a='x')"
_FLOOR = f"import httpx, pydantic; {_ONE_MODEL}"
# The first client as a user builds it: the preset's https URL, every default (telemetry on).
_FIRST_CLIENT = (
    "import multimodel as mm; mm.Client; mm.AsyncClient; "
    "mm.Client(deployments=[mm.Deployment(model='gpt-4o-mini', provider='openai', "
    "api_key='sk-test')])"
)


def bench_import(b: Budget) -> dict[str, Any]:
    # ``import multimodel`` is lazy (PEP 562): the usable figure also touches Client/AsyncClient.
    # Bytecode first, as an installed package has it (pip compiles at install; an editable
    # checkout under PYTHONDONTWRITEBYTECODE would otherwise recompile every module each run).
    import compileall

    compileall.compile_dir(os.path.dirname(mm.__file__), quiet=1)
    samples: dict[str, list[float]] = {
        "import multimodel": [],
        _TOUCH: [],
        _FIRST_CLIENT: [],
        _FLOOR: [],
        "import httpx, pydantic": [],
    }
    for _ in range(b.import_runs):
        for code, into in samples.items():
            res = subprocess.run(
                [sys.executable, "-c", _IMPORT.format(code=code)],
                capture_output=True,
                text=True,
                check=True,
                timeout=60,
            )
            into.append(float(res.stdout) * 1000)
    lazy = median(samples["import multimodel"])
    lib = median(samples[_TOUCH])
    first = median(samples[_FIRST_CLIENT])
    floor = median(samples[_FLOOR])
    base = median(samples["import httpx, pydantic"])
    return {
        "multimodel_lazy_ms": lazy,
        "multimodel_ms": lib,
        "first_client_ms": first,
        "httpx_pydantic_ms": base,
        "ratio": lib / base,
        "first_client_ratio": first / base,
        "pydantic_floor_ms": floor,
        "pydantic_floor_ratio": floor / base,
        "lazy_ratio": lazy / base,
        "runs": b.import_runs,
        "top": _importtime_top(),
    }


def _importtime_top(n: int = 12) -> list[tuple[str, float]]:
    """Modules with the largest self import time (µs) under ``-X importtime``."""
    res = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", _FIRST_CLIENT],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    rows: list[tuple[str, float]] = []
    for line in res.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[0].startswith("import time:") and "self" not in parts[0]:
            rows.append((parts[2].strip(), float(parts[0].split(":")[1])))
    return sorted(rows, key=lambda r: -r[1])[:n]


_RSS = textwrap.dedent("""
    import json, resource, sys, warnings
    warnings.simplefilter("ignore")
    url, n, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    import httpx
    if mode == "multimodel":
        import multimodel as mm
        c = mm.Client(deployments=[mm.Deployment(model="gpt-4o-mini", provider="openai",
                                                 api_key="sk-test", base_url=url)])
        for _ in range(n):
            c.query("Say hello in one short sentence.", max_tokens=20)
    else:
        import pydantic
        if mode == "floor":  # the first pydantic model a process builds and validates
            pydantic.create_model("M", a=(str, ...))(a="x")
        h = httpx.Client()
        body = json.dumps({"model": "gpt-4o-mini", "messages": [
            {"role": "user", "content": "Say hello in one short sentence."}]})
        for _ in range(n):
            json.loads(h.post(url + "/chat/completions", content=body,
                              headers={"content-type": "application/json"}).content)
    # VmHWM is this process's own peak; ru_maxrss also counts the parent's peak before exec.
    with open("/proc/self/status") as fh:
        hwm = [int(ln.split()[1]) for ln in fh if ln.startswith("VmHWM:")]
    print(hwm[0] if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
""")


def bench_rss(server: MockServerProcess, b: Budget) -> dict[str, Any]:
    out: dict[str, Any] = {"requests": b.rss_requests}
    for mode in ("multimodel", "raw", "floor"):
        res = subprocess.run(
            [sys.executable, "-c", _RSS, server.base_url("oai"), str(b.rss_requests), mode],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        out[f"{mode}_mib"] = int(res.stdout) / 1024  # KiB on Linux
    return out


# -- (e) routing + bookkeeping, sans I/O ---------------------------------------------------------


def raw_rtt(server: MockServerProcess) -> Callable[[int], float]:
    """A function timing ``n`` raw round trips now (µs per call)."""
    http = httpx.Client(limits=LIMITS)
    probe = mm.Client(deployments=[deployment(server, "oai")], http_client=http)
    url, headers, payload, _ = raw_parts(probe)

    def measure(n: int) -> float:
        t = time.perf_counter()
        for _ in range(n):
            json.loads(http.post(url, json=payload, headers=headers).content)
        return (time.perf_counter() - t) / n * 1e6

    measure(100)  # warm up
    return measure


def bench_routing(b: Budget, rtt: Callable[[int], float]) -> dict[str, Any]:
    """Routing + bookkeeping per call as a share of a raw round trip, paired: short blocks of
    the sans-I/O loop alternate with short blocks of raw calls, and the share is the median of
    the per-pair ratios (the machine's speed drifts by up to 2x within seconds here)."""
    usage = Usage(input_tokens=12, output_tokens=9)
    headers = httpx.Headers({"x-request-id": "req_1"})
    out: dict[str, Any] = {}
    rtts: list[float] = []
    mixed = ("gpt-4o-mini", "gpt-4o", "gpt-4.1", "deepseek-chat", "gpt-4.1-mini")
    cases: list[tuple[str, int, str, str]] = [
        (strategy, n, strategy, "gpt-4o-mini") for n in (3, 50) for strategy in STRATEGIES
    ]
    # intelligent's real use: model="auto" over several models with different prices and
    # quality (the rows above are one model on every deployment).
    cases.append(("intelligent/auto-mixed", 50, "intelligent", "auto"))
    # The same with learned quality (feedback received): Thompson sampling over the posteriors.
    cases.append(("intelligent/auto-learned", 50, "intelligent", "auto"))
    for label, n, strategy, model in cases:
        if model == "auto":
            deps = [
                mm.Deployment(
                    model=mixed[i % len(mixed)],
                    provider="openai",
                    api_key="sk-test",
                    name=f"d{i}",
                    base_url=f"http://127.0.0.1:9/{i}/v1",
                )
                for i in range(n)
            ]
        else:
            deps = [
                mm.Deployment(
                    model="gpt-4o-mini",
                    provider="openai",
                    api_key="sk-test",
                    name=f"d{i}",
                    base_url=f"http://127.0.0.1:9/{i}/v1",
                )
                for i in range(n)
            ]
        client = mm.Client(deployments=deps, strategy=strategy)
        if label.endswith("learned"):
            for name in mixed:
                client.quality.add(name, "*", 0.8)
        # Prompts of 97 different sizes in turn, as real traffic has: a strategy that keeps
        # something per token count must not look cheaper than it is.
        requests = [
            client._build_request(PROMPT + " Please." * k, model, {"max_tokens": 20 + k % 5})
            for k in range(97)
        ]
        router = client._router

        def loop(k: int, router: Any = router, requests: list[Any] = requests) -> None:
            for j in range(k):
                plan = router.plan(requests[j % 97], timeout=30)
                action = plan.next_action()
                plan.succeeded(
                    action,
                    usage=usage,
                    headers=headers,
                    response_model="m",
                    finish_reason="stop",
                    request_id="req_1",
                )

        loop(200)
        costs: list[float] = []
        trips: list[float] = []
        deadline = time.perf_counter() + b.section_seconds / 12
        block = max(100, b.route_iters // 5)
        for _ in range(15):
            t = time.perf_counter()
            loop(block)
            costs.append((time.perf_counter() - t) / block * 1e6)
            trips.append(rtt(20))
            if time.perf_counter() > deadline and len(costs) >= 3:
                break
        share = median([c / r for c, r in zip(costs, trips, strict=True)])
        rtts.extend(trips)
        key = f"{label}/{n}" if "/" not in label else label
        out[key] = {
            "us": median(costs),
            "us_min": min(costs),
            "rtt_us": median(trips),
            "pct_of_rtt": 100 * share,
        }
        client.close()
    out["rtt_us"] = median(rtts)
    return out


# -- (f) tracker and ledger ----------------------------------------------------------------------


def _outcomes(groups: bool = True) -> list[Outcome]:
    usage = Usage(input_tokens=120, output_tokens=80)
    out = []
    for i in range(1000):
        ok = i % 10 != 0
        out.append(
            Outcome(
                deployment=f"d{i % 3}",
                ok=ok,
                latency=0.2 + (i % 17) / 100,
                status=200 if ok else 500,
                error=None if ok else "ServerError",
                usage=usage if ok else None,
                cost=Decimal("0.000066") if ok else None,
                user=f"user{i % 50}" if groups else None,
                tags=("bench",) if groups else (),
                model="gpt-4o-mini",
                provider="openai",
                started_at=1.7e9,
            )
        )
    return out


def _deep_size(root: object) -> int:
    """Bytes reachable from ``root`` (excluding modules, classes and functions)."""
    import types

    seen: set[int] = set()
    stack = [root]
    total = 0
    skip = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType)
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, skip):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
    return total


def bench_tracker(b: Budget) -> dict[str, Any]:
    outcomes = _outcomes()
    plain = _outcomes(groups=False)
    clock = [0.0]

    def tick() -> float:
        return clock[0]

    def fill(
        tracker: Tracker, n: int, items: list[Outcome] = outcomes, step: float = 1e-3
    ) -> float:
        t = time.perf_counter()
        for i in range(n):
            clock[0] += step
            tracker.record(items[i % 1000])
        return (time.perf_counter() - t) / n * 1e6

    # Both trackers see 2 hours of virtual time, longer than the longest window (1 h), so the
    # fixed-size window rings are full in both: what is left to compare is growth with count.
    span = 7200.0
    small = Tracker(tick)
    fill(small, 10_000, step=span / 10_000)
    size_small = _deep_size(small)
    big = Tracker(tick)
    done = 0
    deadline = time.perf_counter() + b.section_seconds * 2
    while done < b.tracker_big and time.perf_counter() < deadline:
        step = min(100_000, b.tracker_big - done)
        fill(big, step, step=span / b.tracker_big)
        done += step
    size_big = _deep_size(big)
    timing = Tracker(tick)
    fill(timing, 10_000, plain)
    per_call = min(fill(timing, 50_000, plain) for _ in range(3))
    per_call_groups = min(fill(timing, 50_000) for _ in range(3))
    return {
        "record_us": per_call,
        "record_with_user_tag_us": per_call_groups,
        "records_small": 10_000,
        "bytes_small": size_small,
        "records_big": done,
        "bytes_big": size_big,
    }


def bench_ledger(b: Budget) -> dict[str, Any]:
    from multimodel.tracking.ledger import UsageLedger

    outcomes = _outcomes()
    with tempfile.TemporaryDirectory() as tmp:
        ledger = UsageLedger(os.path.join(tmp, "usage.db")).open()
        per: list[float] = []
        for i in range(b.ledger_records):
            t = time.perf_counter_ns()
            ledger.record(outcomes[i % 1000])
            per.append((time.perf_counter_ns() - t) / 1000)
        t = time.perf_counter()
        ledger.flush(timeout=60)
        flush_s = time.perf_counter() - t
        written, dropped = ledger.written, ledger.dropped
        ledger.close(timeout=30)
    per.sort()
    return {
        "records": b.ledger_records,
        "median_us": per[len(per) // 2],
        "p99_us": per[int(len(per) * 0.99)],
        "max_us": per[-1],
        "flush_s": flush_s,
        "written": written,
        "dropped": dropped,
    }


# -- report ---------------------------------------------------------------------------------------


def verdicts(r: dict[str, Any]) -> dict[str, tuple[float, str, float, bool]]:
    values: dict[str, float] = {}
    if "sequential" in r:
        values["sequential_overhead_pct"] = r["sequential"]["oai"]["overhead_pct"]
    if "concurrent" in r:
        values["concurrent_ratio"] = r["concurrent"]["httpx"]["own_pool_ratio"]
        values["concurrent_ratio_same_pool"] = r["concurrent"]["httpx"]["ratio"]
        if "multimodel_rps" in r["concurrent"]["aiohttp"]:
            values["aiohttp_native_ratio"] = r["concurrent"]["aiohttp"]["native_ratio"]
            values["aiohttp_native_200_ratio"] = r["concurrent"]["aiohttp"]["native_200_ratio"]
            values["aiohttp_rps"] = r["concurrent"]["aiohttp"]["multimodel_rps"]
    if "shared" in r:
        values["shared_state_ratio"] = r["shared"]["concurrent"]["shared_rpm_ratio"]
    if "stream" in r:
        values["stream_ratio"] = r["stream"]["ratio"]
    if "astream" in r:
        values["astream_ttft_overhead_ms"] = max(r["astream"]["ttft_overhead_ms"].values())
        values["astream_chunks_ratio"] = r["astream"]["chunks_ratio"]
    if "rss" in r:
        values["rss_ratio"] = r["rss"]["multimodel_mib"] / r["rss"]["raw_mib"]
        values["rss_ratio_pydantic_floor"] = r["rss"]["floor_mib"] / r["rss"]["raw_mib"]
    if "import" in r:
        values["import_ratio_bare"] = r["import"]["lazy_ratio"]
        # The "usable import": import multimodel and build the first Client(...).
        values["import_ratio_usable"] = r["import"]["first_client_ratio"]
        values["import_ratio_touch"] = r["import"]["ratio"]
        values["import_ratio_pydantic_floor"] = r["import"]["pydantic_floor_ratio"]
    if "routing" in r:
        rows = {k: v["pct_of_rtt"] for k, v in r["routing"].items() if "/" in k}
        mixed = rows.pop("intelligent/auto-mixed", None)
        values["routing_pct_of_rtt_default"] = max(
            v for k, v in rows.items() if k.startswith("adaptive/")
        )
        values["routing_pct_of_rtt_all"] = max(rows.values())
        if mixed is not None:
            values["routing_pct_auto_mixed"] = mixed
    if "tracker" in r:
        values["tracker_record_us"] = r["tracker"]["record_us"]
    out = {}
    for key, value in values.items():
        if key in INFO:
            out[key] = (value, "", float("nan"), True)
            continue
        op, target = TARGETS[key]
        met = value <= target if op == "<=" else value >= target if op == ">=" else value < target
        out[key] = (value, op, target, met)
    return out


def report(r: dict[str, Any]) -> None:
    print("\n## Targets\n")
    print("| metric | measured | target | met |\n|---|---|---|---|")
    for key, (value, op, target, met) in verdicts(r).items():
        if not op:
            print(f"| {key} | {value:.3g} | (reported) | — |")
            continue
        print(f"| {key} | {value:.3g} | {op} {target:g} | {'yes' if met else 'NO'} |")
    if "sequential" in r:
        print(
            "\n## Sequential requests (µs per request, medians of interleaved rounds; overhead = median of the per-round ratios)\n"
        )
        print(
            "| format | raw httpx `json=` | multimodel | overhead | raw `content=` bytes "
            "| overhead vs bytes |\n|---|---|---|---|---|---|"
        )
        for name, v in r["sequential"].items():
            print(
                f"| {name} | {v['raw_us']:.0f} | {v['multimodel_us']:.0f} | "
                f"{v['overhead_pct']:+.1f} % ({v['overhead_us']:+.0f} µs) | "
                f"{v['raw_bytes_us']:.0f} | {v['overhead_vs_bytes_pct']:+.1f} % |"
            )
    if "shared" in r:
        v, q = r["shared"]["concurrent"], r["shared"]["sequential"]
        print(f"\n## shared_state (Redis at {r['shared']['redis']})\n")
        print(
            "| 200-way async | requests/s | ratio | Redis round trips per request |\n"
            "|---|---|---|---|"
        )
        print(f"| without shared state | {v['plain_rps']:.0f} | 1.00 | 0 |")
        print(
            f"| without shared state, rpm set (local limiter) | {v['plain_rpm_rps']:.0f} | "
            f"{v['plain_rpm_ratio']:.2f} | 0 |"
        )
        for key, label in (("shared", "shared, no limits"), ("shared_rpm", "shared, rpm set")):
            print(
                f"| {label} | {v[key + '_rps']:.0f} | {v[key + '_ratio']:.2f} | "
                f"{v[key + '_round_trips_per_request']:.3f} |"
            )
        print(f"\nRatios: median of {v['rounds']} paired rounds (sides in rotating order).")
        print(
            f"\nSequential (sync Client, rpm set): {q['plain_us']:.0f} µs without, "
            f"{q['shared_rpm_us']:.0f} µs with shared state ({q['added_us']:+.0f} µs, "
            f"{q['overhead_pct']:+.1f} %)."
        )
    if "concurrent" in r:
        print("\n## 200 concurrent requests (requests/s)\n")
        v = r["concurrent"]["httpx"]
        print(
            "| httpx transports | raw httpx | multimodel, same httpx client | ratio | "
            "multimodel, own pool (default) | ratio |\n|---|---|---|---|---|---|"
        )
        print(
            f"| httpx | {v['raw_rps']:.0f} | {v['multimodel_rps']:.0f} | {v['ratio']:.2f} | "
            f"{v['own_pool_rps']:.0f} | {v['own_pool_ratio']:.2f} |"
        )
        v = r["concurrent"]["aiohttp"]
        if "skipped" in v:
            print(f"\naiohttp: skipped: {v['skipped']}")
        else:

            def cell(key: str) -> str:
                xs = v[f"{key}_all"]
                return f"{median(xs):.0f} ({min(xs):.0f}-{max(xs):.0f})"

            raw = (
                f"{cell('raw')} | {v['ratio']:.2f}"
                if "raw_all" in v
                else "- (pip install httpx-aiohttp) | -"
            )
            print(
                '\n| aiohttp, median (range) of rounds | `AsyncClient(transport="aiohttp")` '
                "| aiohttp alone (ceiling) | ratio | both with 200 connections: multimodel "
                "| aiohttp alone | ratio | raw httpx over httpx-aiohttp | ratio |\n"
                "|---|---|---|---|---|---|---|---|---|"
            )
            print(
                f"| {v['rounds']} rounds | {cell('multimodel')} | {cell('aiohttp_native')} | "
                f"{v['native_ratio']:.2f} | {cell('multimodel_200')} | "
                f"{cell('aiohttp_native_200')} | {v['native_200_ratio']:.2f} | {raw} |"
            )
    if "stream" in r:
        s = r["stream"]
        print("\n## 500-chunk stream (content chunks/s)\n")
        print(
            "| client | chunks/s (median) | ratio to raw (median of paired rounds) |\n|---|---|---|"
        )
        ratios = {"raw": 1.0, "multimodel": s["ratio"], "openai_sdk": s.get("openai_sdk_ratio")}
        for key in ("raw", "multimodel", "openai_sdk"):
            if f"{key}_chunks_per_s" in s:
                print(f"| {key} | {s[f'{key}_chunks_per_s']:.0f} | {ratios[key]:.2f} |")
        print("\n(sync `Client`; raw: httpx `iter_lines` + `json.loads` of each event)")
    if "astream" in r:
        a = r["astream"]
        print(f"\n## Async streams ({a['rounds']} interleaved rounds, medians)\n")
        print(
            "| client | time to first content chunk | overhead over raw (paired) | chunks/s |\n"
            "|---|---|---|---|"
        )
        for key, label in (
            ("raw_httpx", "raw httpx `aiter_lines` + `json.loads`"),
            ("httpx", "`AsyncClient` (own pool)"),
            ("raw_aiohttp", "raw aiohttp line iterator + `json.loads`"),
            ("aiohttp", '`AsyncClient(transport="aiohttp")`'),
        ):
            if key in a["ttft_ms"]:
                over = a["ttft_overhead_ms"].get(key)
                cell = "" if over is None else f"{over:+.2f} ms"
                print(
                    f"| {label} | {a['ttft_ms'][key]:.2f} ms | {cell} | "
                    f"{a[f'{key}_chunks_per_s']:.0f} |"
                )
        print(f"\nchunks/s, own pool ÷ raw httpx (paired): {a['chunks_ratio']:.2f}")
    if "import" in r:
        i = r["import"]
        print(
            f"\n## Import\n\nimport multimodel + Client + AsyncClient "
            f"{i['multimodel_ms']:.0f} ms (bare lazy import {i['multimodel_lazy_ms']:.0f} ms), "
            f"import httpx, pydantic {i['httpx_pydantic_ms']:.0f} ms: {i['ratio']:.2f}x "
            f"(median of {i['runs']}); with the first Client(...) built "
            f"{i['first_client_ms']:.0f} ms: {i['first_client_ratio']:.2f}x; the pydantic floor "
            f"(one model built and validated) {i['pydantic_floor_ms']:.0f} ms: "
            f"{i['pydantic_floor_ratio']:.2f}x"
        )
        print(
            "largest self import times (µs): "
            + ", ".join(f"{m} {us:.0f}" for m, us in i["top"][:8])
        )
    if "rss" in r:
        m = r["rss"]
        print(
            f"peak RSS after {m['requests']} requests: multimodel {m['multimodel_mib']:.1f} "
            f"MiB, raw httpx+pydantic {m['raw_mib']:.1f} MiB "
            f"({m['multimodel_mib'] / m['raw_mib']:.2f}x); raw with one pydantic model built "
            f"{m['floor_mib']:.1f} MiB ({m['floor_mib'] / m['raw_mib']:.2f}x)"
        )
    if "routing" in r:
        print(
            "\n## Routing + bookkeeping per request, sans I/O (median µs; median of paired "
            f"ratios to raw round trips, median {r['routing']['rtt_us']:.0f} µs)\n"
        )
        print("| strategy | 3 deployments | 50 deployments |\n|---|---|---|")
        for s in STRATEGIES:
            a, b = r["routing"][f"{s}/3"], r["routing"][f"{s}/50"]
            print(
                f"| {s} | {a['us']:.1f} ({a['pct_of_rtt']:.1f} %) | "
                f"{b['us']:.1f} ({b['pct_of_rtt']:.1f} %) |"
            )
        mixed = r["routing"].get("intelligent/auto-mixed")
        if mixed:
            print(
                f'| intelligent, `model="auto"` over 5 models | | {mixed["us"]:.1f} '
                f"({mixed['pct_of_rtt']:.1f} %) |"
            )
    if "tracker" in r:
        t = r["tracker"]
        print(
            f"\n## Tracker and ledger\n\nTracker.record: {t['record_us']:.2f} µs "
            f"({t['record_with_user_tag_us']:.2f} µs with a user and a tag); object graph "
            f"{t['bytes_small'] / 1024:.0f} KiB after {t['records_small']:,} records, "
            f"{t['bytes_big'] / 1024:.0f} KiB after {t['records_big']:,}"
        )
    if "ledger" in r:
        lg = r["ledger"]
        print(
            f"UsageLedger.record: median {lg['median_us']:.2f} µs, p99 {lg['p99_us']:.2f} µs, "
            f"max {lg['max_us']:.0f} µs over {lg['records']:,} calls; flush {lg['flush_s']:.2f}"
            f" s, written {lg['written']:,}, dropped {lg['dropped']}"
        )


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next(
                (ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), ""
            )
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu or platform.processor(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "httpx": httpx.__version__,
        "multimodel": getattr(mm, "__version__", "?"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="multimodel overhead benchmarks")
    parser.add_argument("--quick", action="store_true", help="fewer rounds (about 40 s)")
    parser.add_argument("--json", help="write every number to this file")
    parser.add_argument(
        "--only", default="seq,conc,stream,import,route,track", help="comma-separated sections"
    )
    args = parser.parse_args()
    b = QUICK if args.quick else FULL
    only = set(args.only.split(","))
    started = time.perf_counter()
    results: dict[str, Any] = {"machine": machine(), "quick": args.quick}
    with MockServerProcess(server_deployments()) as server:
        if "seq" in only:
            log("sequential...")
            results["sequential"] = bench_sequential(server, b)
        if "route" in only:
            log("routing...")
            results["routing"] = bench_routing(b, raw_rtt(server))
        if "conc" in only:
            log("concurrent...")
            results["concurrent"] = bench_concurrent(server, b)
        if "shared" in only:  # not by default: needs a Redis server
            log("shared state (Redis)...")
            results["shared"] = bench_shared(server, b)
        if "stream" in only:
            log("stream...")
            results["stream"] = bench_stream(server, b)
            log("async stream...")
            results["astream"] = bench_astream(server, b)
        if "import" in only:
            log("rss...")
            results["rss"] = bench_rss(server, b)
    if "import" in only:
        log("import...")
        results["import"] = bench_import(b)
    if "track" in only:
        log("tracker, ledger...")
        results["tracker"] = bench_tracker(b)
        results["ledger"] = bench_ledger(b)
    results["seconds"] = time.perf_counter() - started
    m = results["machine"]
    print(
        f"# multimodel benchmarks ({'quick' if args.quick else 'full'}, "
        f"{results['seconds']:.0f} s)\n\n{m['cpus']} CPUs, {m['cpu']}, Python {m['python']}, "
        f"httpx {m['httpx']}"
    )
    report(results)
    if args.json:
        results["verdicts"] = {
            k: [value, op, target, met] if op else [value, None, None, None]
            for k, (value, op, target, met) in verdicts(results).items()
        }
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=2, default=str)


if __name__ == "__main__":
    main()
