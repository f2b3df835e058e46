"""Decoding an OpenAI embeddings answer: JSON numbers vs ``encoding_format="base64"``.

    python benchmarks/embeddings_base64.py [--vectors 100] [--dimensions 1536]

Builds the same answer both ways (float32 values; the JSON numbers printed with 9 significant
digits, as OpenAI's are) and times multimodel's OpenAI adapter parsing each (best of 20 runs),
the reason OpenAI and Azure deployments are asked for base64.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import struct
import time

import httpx

import multimodel as mm
from multimodel.providers import get_adapter


def answer(vectors: list[list[float]], packed: bool) -> bytes:
    def encode(vector: list[float]) -> object:
        if packed:
            return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        return [float(f"{x:.9g}") for x in vector]

    data = [
        {"object": "embedding", "index": i, "embedding": encode(v)} for i, v in enumerate(vectors)
    ]
    usage = {"prompt_tokens": 1, "total_tokens": 1}
    return json.dumps({"object": "list", "data": data, "model": "m", "usage": usage}).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vectors", type=int, default=100)
    parser.add_argument("--dimensions", type=int, default=1536)
    args = parser.parse_args()
    rng = random.Random(1)
    vectors = [
        list(struct.unpack(f"{args.dimensions}f", struct.pack(
            f"{args.dimensions}f", *(rng.gauss(0, 0.03) for _ in range(args.dimensions))
        )))
        for _ in range(args.vectors)
    ]  # fmt: skip
    adapter = get_adapter("openai")
    deployment = mm.Deployment(model="m", provider="openai", api_key="sk-bench-0123456789")
    with mm.Client(deployments=[deployment]) as client:
        endpoint = client.deployments[0]
    print(f"| {args.vectors} vectors x {args.dimensions} | body bytes | parse (ms, best of 20) |")
    print("|---|---|---|")
    for label, packed in (("JSON numbers", False), ("base64", True)):
        body = answer(vectors, packed)
        best = float("inf")
        for _ in range(20):
            response = httpx.Response(200, content=body)
            start = time.perf_counter()
            adapter.parse_embedding_response(response, endpoint, args.vectors)
            best = min(best, time.perf_counter() - start)
        print(f"| {label} | {len(body):,} | {best * 1e3:.1f} |")


if __name__ == "__main__":
    main()
