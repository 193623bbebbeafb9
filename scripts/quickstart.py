"""Quick start: serve Rank1 from a real Triton server and rerank a small example through the gRPC client.

Uses jhu-clsp/rank1-0.5b when it can be downloaded (or a local checkpoint given with --model). Where the hub
cannot be reached it builds the tiny toy model trained here on a synthetic task — its scores only show the
machinery working, not Rank1's quality.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from rank1_client import Rank1Client
from rank1_triton.errors import ModelNotAvailableError
from rank1_triton.fixtures.cache import ensure_toy_model
from rank1_triton.launch.local import torch_server
from rank1_triton.launch.models import DEFAULT_MODEL, resolve_model

REAL_EXAMPLE = (
    "how do vaccines train the immune system",
    [
        "Vaccines expose the immune system to a harmless piece or weakened form of a pathogen, so B and T cells "
        "learn to recognise it and memory cells respond quickly to a later infection.",
        "The Great Wall of China is a series of fortifications built across northern China over many centuries.",
        "Antibodies are proteins made by B cells that bind to specific antigens on viruses and bacteria.",
    ],
)
# The toy task: is the quoted word in the passage? (rank1_triton/fixtures/toy_task.py)
TOY_EXAMPLE = ('find "cat"', ["river cat dog sun", "stone cloud tree", "cat red blue", "king rain gold ship wolf"])


def step(message: str) -> None:
    print(f"\n==> {message}", flush=True)


def choose_model(name: str) -> tuple[Path, bool]:
    """The checkpoint folder and whether it is the toy stand-in."""
    try:
        return resolve_model(name), False
    except ModelNotAvailableError as error:
        print(f"   {error}")
        print("   Falling back to the toy model trained locally on a synthetic task. Its scores only show the")
        print("   serving machinery working; pass --model with a Rank1 checkpoint folder for real reranking.")
        return ensure_toy_model(), True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--max-reasoning-tokens", type=int, default=None)
    args = parser.parse_args()

    step(f"model: {args.model}")
    model_dir, is_toy = choose_model(args.model)
    query, documents = TOY_EXAMPLE if is_toy else REAL_EXAMPLE
    budget = args.max_reasoning_tokens or (48 if is_toy else 512)

    step("assembling the model repository and starting tritonserver (the log shows progress)")
    server = torch_server(model_dir, Path(tempfile.mkdtemp(prefix="rank1-quickstart-")))
    print(f"   log: {server.log_path}")
    started = time.perf_counter()
    server.start(timeout_s=600)
    print(f"   ready in {time.perf_counter() - started:.1f} s on gRPC {server.grpc_url}")
    try:
        step(f"reranking {len(documents)} documents for {query!r} over gRPC")
        with Rank1Client(server.grpc_url) as client:
            started = time.perf_counter()
            response = client.rerank(query, documents, return_reasoning=True, return_documents=True,
                                     max_reasoning_tokens=budget)
            elapsed = time.perf_counter() - started
        for rank, result in enumerate(response.results, start=1):
            flag = " (forced)" if result.forced else ""
            print(f"\n#{rank}  score {result.score:.4f}{flag}  {result.document}")
            print(f"    reasoning ({result.reasoning_tokens} tokens): {(result.reasoning or '').strip()[:300]}")
        print(f"\n   {len(documents)} documents in {elapsed:.2f} s")
    finally:
        step("stopping tritonserver")
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
