"""What the HTTP gateway costs: Cohere-v2 HTTP requests through `rank1-gateway` vs the same requests over gRPC.

Both paths score the same requests (``--docs`` documents each, fixed reasoning budget) against one Triton server:
direct is ``AsyncRank1Client`` in this process; the gateway runs as its own process (``python -m rank1_gateway``,
as deployed) and is called with ``httpx.AsyncClient`` on ``POST /v2/rerank``. Two scenarios: one caller sending
requests one after another (latency), and ``--concurrency`` callers at once (wall time of the whole batch). Paths
alternate direct, gateway, gateway, direct within each scenario, so load drift on a shared machine hits both, and
the ratio is gateway / direct of the means measured in this run: of per-request latency with one caller, of the
batch's wall time with many. The gateway's scores must equal the direct ones. ``--http-overhead N`` first times N
requests through an in-process gateway whose client answers at once: the HTTP + JSON + validation cost alone.

    python bench/gateway.py                                     # own toy server, 32 documents, 16 callers
    python bench/gateway.py --url localhost:8001 --docs 8 --concurrency 2 --rounds 1
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from common import MODELS, machine_line, triton_server

from rank1_client import AsyncRank1Client
from rank1_triton.fixtures.toy_task import make_ranking_queries
from rank1_triton.launch.values import TorchServingOptions

REPO = Path(__file__).resolve().parents[1]
Request = tuple[str, list[str]]


@dataclass(frozen=True)
class Sample:
    """One batch of requests through one path: per-request seconds, the batch's wall seconds, and the scores."""

    latencies: list[float]
    wall: float
    scores: list[list[tuple[int, float]]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def gateway_process(grpc_url: str, timeout_s: float = 60.0) -> Iterator[str]:
    """``python -m rank1_gateway`` on a free loopback port in front of ``grpc_url``; its base URL."""
    port = free_port()
    command = [sys.executable, "-m", "rank1_gateway", "--port", str(port), "--grpc-url", grpc_url,
               "--max-concurrent-requests", "0", "--log-level", "warning"]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "gateway"),
                                                                             os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen(command, env=environment)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the gateway did not become ready on {url}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(30)


async def run_direct(url: str, requests: list[Request], budget: int, concurrency: int) -> Sample:
    async with AsyncRank1Client(url) as client:
        async def one(request: Request) -> tuple[float, list[tuple[int, float]]]:
            started = time.perf_counter()
            response = await client.rerank(*request, max_reasoning_tokens=budget)
            return time.perf_counter() - started, [(r.index, r.score) for r in response.results]

        return await _batch(one, requests, concurrency)


async def run_gateway(url: str, requests: list[Request], budget: int, concurrency: int) -> Sample:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:
        async def one(request: Request) -> tuple[float, list[tuple[int, float]]]:
            query, documents = request
            started = time.perf_counter()
            response = await client.post("/v2/rerank", json={"model": "rank1", "query": query, "documents": documents,
                                                             "max_reasoning_tokens": budget})
            response.raise_for_status()
            results = response.json()["results"]
            return time.perf_counter() - started, [(r["index"], r["relevance_score"]) for r in results]

        return await _batch(one, requests, concurrency)


async def _batch(one, requests: list[Request], concurrency: int) -> Sample:
    """``concurrency`` callers, each sending its share of ``requests`` one after another."""
    results: list[tuple[float, list[tuple[int, float]]] | None] = [None] * len(requests)

    async def caller(start: int) -> None:
        for position in range(start, len(requests), concurrency):
            results[position] = await one(requests[position])

    started = time.perf_counter()
    await asyncio.gather(*(caller(start) for start in range(concurrency)))
    wall = time.perf_counter() - started
    done = [item for item in results if item is not None]
    return Sample([latency for latency, _ in done], wall, [scores for _, scores in done])


class InstantClient:
    """Stands in for the gRPC client: every document scores 0.5 at once (for --http-overhead)."""

    async def rerank(self, query, documents, **options):
        from rank1_client import RerankResponse, RerankResult, Usage

        results = [RerankResult(index=i, score=0.5, reasoning_tokens=0, forced=False, truncated=False)
                   for i in range(len(documents))]
        return RerankResponse(results=results, usage=Usage(len(documents), 0))

    async def close(self) -> None:
        pass


def http_overhead(requests: int, docs: int) -> float:
    """Mean ms of a ``docs``-document ``/v2/rerank`` through uvicorn, FastAPI and the gateway's checks alone."""
    from rank1_gateway import GatewaySettings
    from rank1_gateway.server import BackgroundGateway

    (query, documents, _), = make_ranking_queries(1, docs, seed=3)
    body = {"model": "rank1", "query": query, "documents": documents}
    with BackgroundGateway(GatewaySettings(log_level="warning"), client=InstantClient()) as gateway, \
            httpx.Client(base_url=gateway.url) as client:
        for _ in range(5):
            client.post("/v2/rerank", json=body).raise_for_status()
        started = time.perf_counter()
        for _ in range(requests):
            client.post("/v2/rerank", json=body).raise_for_status()
        return (time.perf_counter() - started) / requests * 1000


def max_score_diff(a: Sample, b: Sample) -> float:
    diff = 0.0
    for left, right in zip(a.scores, b.scores, strict=True):
        if [index for index, _ in left] != [index for index, _ in right]:
            by_index = dict(right)
            diff = max(diff, *(abs(score - by_index[index]) for index, score in left))
        else:
            diff = max(diff, *(abs(x - y) for (_, x), (_, y) in zip(left, right, strict=True)))
    return diff


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="gRPC URL of a running server (default: start one with --model)")
    parser.add_argument("--model", choices=sorted(MODELS), default="toy")
    parser.add_argument("--docs", type=int, default=32, help="documents per request")
    parser.add_argument("--budget", type=int, default=16, help="max_reasoning_tokens")
    parser.add_argument("--sequential", type=int, default=4, help="requests per sequential sample")
    parser.add_argument("--concurrency", type=int, default=16, help="callers of the concurrent scenario")
    parser.add_argument("--rounds", type=int, default=2, help="ABBA rounds per scenario")
    parser.add_argument("--http-overhead", type=int, default=200, metavar="N",
                        help="requests timed through a gateway with an instant client (0: skip)")
    args = parser.parse_args()
    if args.http_overhead:
        print(f"# HTTP layer alone (instant client, {args.docs} documents): "
              f"{http_overhead(args.http_overhead, args.docs):.2f} ms per request")

    with ExitStack() as stack:
        url = args.url
        if url is None:
            options = TorchServingOptions(default_max_reasoning_tokens=args.budget)
            url = stack.enter_context(triton_server(MODELS[args.model](), options)).grpc_url
        gateway = stack.enter_context(gateway_process(url))
        print(f"# {machine_line()}")
        print(f"# server {url}, gateway {gateway}; {args.docs} documents per request, budget {args.budget}")

        scenarios = {"sequential (1 caller)": (args.sequential, 1),
                     f"concurrent ({args.concurrency} callers)": (args.concurrency, args.concurrency)}
        rows = []
        for name, (count, concurrency) in scenarios.items():
            requests = [(q, d) for q, d, _ in make_ranking_queries(count, args.docs, seed=len(rows) + 7)]
            asyncio.run(run_direct(url, requests[:1], args.budget, 1))  # warm both paths
            asyncio.run(run_gateway(gateway, requests[:1], args.budget, 1))
            samples: dict[str, list[Sample]] = {"gRPC": [], "gateway": []}
            for _ in range(args.rounds):
                for path in ("gRPC", "gateway", "gateway", "gRPC"):
                    run = run_direct if path == "gRPC" else run_gateway
                    target = url if path == "gRPC" else gateway
                    samples[path].append(asyncio.run(run(target, requests, args.budget, concurrency)))
            diff = max(max_score_diff(a, b) for a, b in zip(samples["gRPC"], samples["gateway"], strict=True))
            means = {}
            for path, runs in samples.items():
                latencies = [latency for sample in runs for latency in sample.latencies]
                wall = statistics.mean(sample.wall for sample in runs)
                means[path] = statistics.mean(latencies) if concurrency == 1 else wall
                rows.append([name, path, str(len(latencies)), f"{statistics.mean(latencies) * 1000:.1f}",
                             f"{statistics.median(latencies) * 1000:.1f}", f"{wall * 1000:.1f}",
                             f"{count * args.docs / wall:.1f}"])
            ratio = means["gateway"] / means["gRPC"]
            rows[-1] += [f"**{ratio:.3f}**", f"{diff:.1e}"]
            rows[-2] += ["", ""]
        print()
        print("| scenario | path | requests | mean ms | p50 ms | batch wall ms | docs/s | ratio (goal ≤ 1.05) "
              "| max score diff |")
        print("|---|---|---|---|---|---|---|---|---|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
