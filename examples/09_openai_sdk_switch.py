"""09 - Code written for the OpenAI SDK switches with one line.

``client.chat.completions.create(model=..., messages=[...])`` takes the OpenAI SDK's
arguments and returns objects of the same shape (``choices[0].message.content``, ``usage``;
``stream=True`` yields ``ChatCompletionChunk`` objects with ``choices[0].delta.content``), while
multimodel routes, retries and falls back underneath, across providers of any wire format.

Runs against bundled mock providers by default (no API keys, no network). With OPENAI_API_KEY
and/or ANTHROPIC_API_KEY set, it calls those providers (two short real calls).

    python examples/09_openai_sdk_switch.py
"""

from __future__ import annotations

import os

import multimodel as mm
from multimodel.testing import Behavior, MockDeployment, MockProviderServer

# Before:  from openai import OpenAI;  client = OpenAI()
# After:   client = mm.Client(deployments=[...]) -- the calls below stay the same.
MODEL = "fast-chat"  # one model group served by two providers
FLEET = {  # name: (provider, provider's model id, key variable)
    "openai": ("openai", "gpt-4o-mini", "OPENAI_API_KEY"),
    "anthropic": ("anthropic", "claude-3-5-haiku-latest", "ANTHROPIC_API_KEY"),
}


def run(client: mm.Client) -> None:
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "What does a load balancer do?"},
    ]
    completion = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=60)
    print("non-streaming:", completion.choices[0].message.content)
    print(
        f"  id={completion.id} model={completion.model} "
        f"usage={completion.usage.prompt_tokens}+{completion.usage.completion_tokens} tokens"
    )

    print("streaming:    ", end="")
    for chunk in client.chat.completions.create(
        model=MODEL, messages=messages, max_tokens=60, stream=True
    ):
        if chunk.choices and chunk.choices[0].delta.content:
            print(chunk.choices[0].delta.content, end="", flush=True)
    print()


def main() -> None:
    real = {n: row for n, row in FLEET.items() if os.environ.get(row[2])}
    if real:
        deployments = [
            mm.Deployment(name=n, model=MODEL, provider=p, provider_model=w)
            for n, (p, w, _) in real.items()
        ]
        with mm.Client(deployments=deployments) as client:
            run(client)
        return
    text = "It spreads requests across servers so that none is overloaded."
    mocks = {
        name: MockDeployment(provider, Behavior(text=text, chunk_interval=0.01))
        for name, (provider, _, _) in FLEET.items()
    }
    with MockProviderServer(mocks) as server:
        print(f"mock OpenAI and Anthropic endpoints on {server.url}\n")
        deployments = [
            mm.Deployment(
                name=n,
                model=MODEL,
                provider=p,
                provider_model=w,
                base_url=server.base_url(n),
                api_key="mock-key",
            )
            for n, (p, w, _) in FLEET.items()
        ]
        with mm.Client(deployments=deployments) as client:
            run(client)


if __name__ == "__main__":
    main()
