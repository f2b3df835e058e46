"""Instructions per routed request, for ``valgrind --tool=callgrind`` (repeatable where the
wall clock is not).

The loop of ``run.py``'s routing section (plan, decision, bookkeeping of a success; prompts of
97 sizes) on a deterministic clock and seeded strategies, so two runs make the same choices::

    for n in 200 1200; do
        valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
            python benchmarks/route_callgrind.py intelligent:50:learned $n 2>&1 | grep Collected
    done
    # instructions per request = (second - first) / 1000

Cases: ``STRATEGY:DEPLOYMENTS:FLEET`` with FLEET ``one`` (one model on every deployment),
``auto`` (``model="auto"`` over five models) or ``learned`` (the same after feedback).
"""

from __future__ import annotations

import functools
import itertools
import sys

import httpx

import multimodel as mm
from multimodel.types import Usage

PROMPT = "Say hello in one short sentence."
MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1", "deepseek-chat", "gpt-4.1-mini")


class TickClock:
    """Deterministic and read in C: every read moves time on by 0.3 ms."""

    monotonic = staticmethod(functools.partial(next, itertools.count(1000.0, 0.0003)))
    time = staticmethod(functools.partial(next, itertools.count(1.7e9, 0.0003)))


def main(case: str, n: int) -> None:
    strategy, size, fleet = case.split(":")
    auto = fleet in ("auto", "learned")
    model = "auto" if auto else MODELS[0]
    deps = [
        mm.Deployment(
            model=MODELS[i % len(MODELS)] if auto else MODELS[0],
            provider="openai",
            api_key="sk-test",
            name=f"d{i}",
            base_url=f"http://127.0.0.1:9/{i}/v1",
        )
        for i in range(int(size))
    ]
    client = mm.Client(deployments=deps, strategy={"name": strategy, "seed": 7}, clock=TickClock())
    if fleet == "learned":
        client._router.strategy(model)._thompson.seed(11)
        for name in MODELS:
            client.quality.add(name, "*", 0.8)
    requests = [
        client._build_request(PROMPT + " Please." * k, model, {"max_tokens": 20 + k % 5})
        for k in range(97)
    ]
    router = client._router
    usage = Usage(input_tokens=12, output_tokens=9)
    headers = httpx.Headers({"x-request-id": "req_1"})

    def loop(k: int) -> None:
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

    loop(300)  # warm up: every cache built, the fleet's measured deployments measured
    loop(n)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
