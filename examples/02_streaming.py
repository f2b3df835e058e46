"""02 - Stream an answer as it is generated.

``client.stream(...)`` is a context manager and an iterator of chunks; after the last chunk,
``stream.response`` holds the complete answer with usage, cost, latency and time to first token.

Runs against a bundled mock provider by default (no API keys, no network): it streams a reply
word by word, 30 ms apart. With ANTHROPIC_API_KEY set it streams from Claude 3.5 Haiku instead
(a real call of about 100 tokens).

    python examples/02_streaming.py
"""

from __future__ import annotations

import os
import sys

import multimodel as mm
from multimodel.testing import Behavior, MockDeployment, MockProviderServer

MODEL = "claude-3.5-haiku"
HAIKU = "Packets find their way / through the quiet router's choice / fastest path wins out"


def run(deployment: mm.Deployment) -> None:
    with (
        mm.Client(deployments=[deployment]) as client,
        client.stream("Write a haiku about routers", model=MODEL, max_tokens=100) as stream,
    ):
        chunks = 0
        for chunk in stream:
            if chunk.text:
                chunks += 1
                sys.stdout.write(chunk.text)
                sys.stdout.flush()
        print("\n")
        response = stream.response
        assert response is not None
        ttft = f"{response.ttft:.3f} s" if response.ttft is not None else "-"
        print(
            f"{chunks} chunks from {response.deployment}; first token after {ttft}, "
            f"complete after {response.latency:.3f} s"
        )
        print(
            f"usage: {response.usage.input_tokens} in, {response.usage.output_tokens} out; "
            f"finish reason: {response.finish_reason}"
        )


def main() -> None:
    if os.environ.get("ANTHROPIC_API_KEY"):
        run(
            mm.Deployment(
                model=MODEL, provider="anthropic", provider_model="claude-3-5-haiku-latest"
            )
        )
        return
    mock = MockDeployment("anthropic", Behavior(text=HAIKU, chunk_interval=0.03))
    with MockProviderServer({"claude": mock}) as server:
        print(f"streaming from a mock Anthropic endpoint on {server.url}\n")
        run(
            mm.Deployment(
                model=MODEL,
                provider="anthropic",
                base_url=server.base_url("claude"),
                api_key="mock-key",
            )
        )


if __name__ == "__main__":
    main()
