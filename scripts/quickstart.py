"""Quick start: serve Rank1 from a real Triton server and rerank a small example through the gRPC client, then the
same example through the HTTP gateway (rank1-gateway) with curl and with the official Cohere SDK.

Uses jhu-clsp/rank1-0.5b when it can be downloaded (or a local checkpoint given with --model). Where the hub
cannot be reached it builds the tiny toy model trained here on a synthetic task — its scores only show the
machinery working, not Rank1's quality.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cohere
from rank1_gateway import GatewaySettings
from rank1_gateway.server import BackgroundGateway

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


GATEWAY_KEY = "quickstart-key"


def port_or_free(port: int) -> int | None:
    """``port`` when nothing listens there, else ``None`` (the gateway then picks a free one)."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return None
    return port


def show_gateway(url: str, query: str, documents: list[str], budget: int) -> None:
    """The example through the gateway: curl (Cohere v2 shape) and the official cohere SDK."""
    body = {"model": "rank1", "query": query, "documents": documents, "top_n": 2, "return_documents": True,
            "max_reasoning_tokens": budget}
    curl = ["curl", "-s", f"{url}/v2/rerank", "-H", f"Authorization: Bearer {GATEWAY_KEY}",
            "-H", "Content-Type: application/json", "-d", json.dumps(body)]
    step("the same request over HTTP through the gateway, with curl (Cohere v2 shape)")
    print("   " + shlex.join(curl))
    if shutil.which("curl"):
        answer = json.loads(subprocess.run(curl, capture_output=True, text=True, check=True).stdout)
        for result in answer["results"]:
            print(f"   index {result['index']}  relevance_score {result['relevance_score']:.4f}  "
                  f"reasoning_tokens {result['reasoning_tokens']}  forced {result['forced']}")
    else:
        print("   (curl is not installed here; the cohere SDK call below sends the same request)")

    step("and with the official cohere SDK (cohere.ClientV2, base_url = the gateway)")
    print(f'   co = cohere.ClientV2(api_key="{GATEWAY_KEY}", base_url="{url}")')
    print(f'   co.rerank(model="rank1", query={query!r}, documents=[...], top_n=2)')
    co = cohere.ClientV2(api_key=GATEWAY_KEY, base_url=url)
    response = co.rerank(model="rank1", query=query, documents=documents, top_n=2,
                         request_options={"additional_body_parameters": {"max_reasoning_tokens": budget}})
    for result in response.results:
        print(f"   index {result.index}  relevance_score {result.relevance_score:.4f}  {documents[result.index]}")
    print(f"   OpenAPI docs of every route (Cohere v1/v2, TEI /rerank): {url}/docs")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--max-reasoning-tokens", type=int, default=None)
    parser.add_argument("--gateway-port", type=int, default=8080, help="HTTP port of the gateway (if free)")
    parser.add_argument("--keep-running", action="store_true",
                        help="keep Triton and the gateway serving until Ctrl-C, to try your own calls")
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

        step("starting the HTTP gateway (rank1-gateway) in front of the gRPC endpoint")
        tokenizer = model_dir if (model_dir / "tokenizer.json").is_file() else None
        settings = GatewaySettings(grpc_url=server.grpc_url, api_keys=(GATEWAY_KEY,), tokenizer=tokenizer)
        with BackgroundGateway(settings, port=port_or_free(args.gateway_port)) as gateway:
            print(f"   {gateway.url} (key {GATEWAY_KEY!r}: Authorization: Bearer {GATEWAY_KEY})")
            show_gateway(gateway.url, query, documents, budget)
            if args.keep_running:
                step(f"serving: gRPC {server.grpc_url}, HTTP {gateway.url}; Ctrl-C stops both")
                try:
                    while True:
                        time.sleep(3600)
                except KeyboardInterrupt:
                    pass
    finally:
        step("stopping tritonserver")
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
