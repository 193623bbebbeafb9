"""Throughput and p50/p95/p99 latency of the `rank1` model over a concurrency sweep, with two load generators.

At each concurrency level, NVIDIA's ``perf_analyzer`` (from the tritonclient 2.51.0 wheel; installed by
``bench/install_perf_analyzer.sh`` into ``.cache/perf-analyzer``) and then the project's ``AsyncRank1Client``
(one client, ``concurrency`` coroutines each sending its next request when the last one returns) send the same
requests: ``--docs`` documents of the toy task, budget ``--budget`` reasoning tokens, ``--requests`` requests per
level (at least two per client). Without ``--url`` a server with the PyTorch engine and default serving options
is started on loopback and stopped at the end. Writes ``bench/results/load.csv`` and ``load.png``.

    python bench/load.py                                   # toy model, 1..32 clients
    python bench/load.py --url localhost:8001 --concurrency 1 4 16
    python bench/load.py --concurrency 1 --requests 2 --docs 2 --budget 4     # smoke
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import subprocess
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from common import ENTRY_MODEL, MODELS, RESULTS_DIR, machine_line, triton_server

from rank1_client import AsyncRank1Client
from rank1_triton.fixtures.toy_task import make_ranking_queries
from rank1_triton.launch.values import TorchServingOptions

INSTALLER = Path(__file__).resolve().parent / "install_perf_analyzer.sh"
Request = tuple[str, list[str]]


@dataclass(frozen=True)
class Level:
    """One tool at one concurrency level."""

    tool: str
    concurrency: int
    requests: int
    docs_per_request: int
    seconds: float
    requests_per_s: float
    docs_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float


def make_level(tool: str, concurrency: int, docs: int, seconds: float, latencies_s: list[float]) -> Level:
    p50, p95, p99 = np.percentile(latencies_s, [50, 95, 99]) * 1e3
    rate = len(latencies_s) / seconds
    return Level(tool, concurrency, len(latencies_s), docs, seconds, rate, rate * docs, p50, p95, p99)


async def client_level(url: str, requests: list[Request], concurrency: int, count: int, budget: int) -> Level:
    """``concurrency`` coroutines on one AsyncRank1Client share ``count`` requests (no retries)."""
    latencies: list[float] = []
    remaining = iter(range(count))
    docs = len(requests[0][1])
    async with AsyncRank1Client(url, chunk_size=docs, max_retries=0) as client:
        async def worker() -> None:
            for index in remaining:
                query, documents = requests[index % len(requests)]
                start = time.perf_counter()
                await client.rerank(query, documents, max_reasoning_tokens=budget)
                latencies.append(time.perf_counter() - start)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - start
    return make_level("AsyncRank1Client", concurrency, docs, seconds, latencies)


def perf_analyzer_binary() -> Path | None:
    """The perf_analyzer wrapper (installing it on first use), or None with the reason printed."""
    run = subprocess.run(["bash", str(INSTALLER)], capture_output=True, text=True, check=False)
    if run.returncode != 0:
        print(f"perf_analyzer unavailable, AsyncRank1Client only:\n{run.stderr.strip()}", flush=True)
        return None
    return Path(run.stdout.strip().splitlines()[-1])


def write_input_data(requests: list[Request], path: Path) -> Path:
    """perf_analyzer's ``--input-data`` JSON: one entry per request, BYTES tensors as lists of strings."""
    data = [{"query": {"content": [query], "shape": [1]},
             "documents": {"content": documents, "shape": [len(documents)]}} for query, documents in requests]
    path.write_text(json.dumps({"data": data}))
    return path


def perf_analyzer_level(binary: Path, url: str, data: Path, concurrency: int, count: int, budget: int,
                        docs: int, timeout_s: float) -> Level:
    """perf_analyzer at one concurrency over gRPC with ``count`` requests (``--request-count``).

    Throughput and percentiles come from its per-request timestamps (``--profile-export-file``), computed as for
    the client: requests / (last response - first send). Its own throughput line divides by a whole-second window.
    """
    with tempfile.TemporaryDirectory() as work:
        export = Path(work) / "profile.json"
        command = [
            str(binary), "-m", ENTRY_MODEL, "-u", url, "-i", "grpc", "--input-data", str(data),
            "--concurrency-range", f"{concurrency}:{concurrency}", "--request-count", str(count),
            "--request-parameter", f"max_reasoning_tokens:{budget}:int", "--profile-export-file", str(export),
        ]
        run = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
        if run.returncode != 0:
            raise RuntimeError(f"perf_analyzer failed ({run.returncode}):\n{run.stdout[-2000:]}{run.stderr[-2000:]}")
        records = json.loads(export.read_text())["experiments"][0]["requests"]
    sent = [record["timestamp"] for record in records]
    done = [record["response_timestamps"][-1] for record in records]
    latencies = [(end - start) / 1e9 for start, end in zip(sent, done, strict=True)]
    return make_level("perf_analyzer", concurrency, docs, (max(done) - min(sent)) / 1e9, latencies)


@contextmanager
def server_url(args: argparse.Namespace) -> Iterator[str]:
    """``--url`` as given, or a server of our own for the sweep."""
    if args.url:
        yield args.url
        return
    options = TorchServingOptions(max_documents=max(args.docs, TorchServingOptions.max_documents),
                                  default_max_reasoning_tokens=args.budget, entry_instances=args.entry_instances)
    with triton_server(MODELS[args.model](), options) as server:
        yield server.grpc_url


def plot(levels: list[Level], path: Path, title: str) -> bool:
    """Throughput and latency percentiles against concurrency, one line per tool; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for tool, color in zip(sorted({level.tool for level in levels}), ("tab:blue", "tab:orange"), strict=False):
        rows = [level for level in levels if level.tool == tool]
        x = [level.concurrency for level in rows]
        left.plot(x, [level.docs_per_s for level in rows], marker="o", color=color, label=tool)
        for percentile, style in (("p50", "-"), ("p95", "--"), ("p99", ":")):
            right.plot(x, [getattr(level, f"{percentile}_ms") / 1e3 for level in rows], style, marker="o",
                       color=color, label=f"{tool} {percentile}")
    concurrencies = sorted({level.concurrency for level in levels})
    for axis, label in ((left, "documents / s"), (right, "latency per request (s)")):
        axis.set_xscale("log", base=2)
        axis.set_xticks(concurrencies, [str(c) for c in concurrencies])
        axis.set_xlabel("concurrent clients")
        axis.set_ylabel(label)
        axis.set_ylim(bottom=0)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle(textwrap.fill(title, 150), fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="gRPC host:port of a running server (default: start one)")
    parser.add_argument("--model", choices=sorted(MODELS), default="toy", help="model of the server we start")
    parser.add_argument("--entry-instances", type=int, default=TorchServingOptions.entry_instances,
                        help="rank1 model instances of the server we start (default %(default)s)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    parser.add_argument("--requests", type=int, default=8, help="requests per level and tool (at least 2 per client)")
    parser.add_argument("--docs", type=int, default=8, help="documents per request")
    parser.add_argument("--budget", type=int, default=16, help="max_reasoning_tokens")
    parser.add_argument("--tools", nargs="+", choices=["perf_analyzer", "client"], default=["perf_analyzer", "client"])
    parser.add_argument("--level-timeout", type=float, default=300, help="seconds one perf_analyzer level may take")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "load", help="CSV/PNG path without suffix")
    args = parser.parse_args()

    requests = [(q, docs) for q, docs, _ in make_ranking_queries(16, args.docs, seed=23)]
    binary = perf_analyzer_binary() if "perf_analyzer" in args.tools else None
    levels: list[Level] = []
    with server_url(args) as url, tempfile.TemporaryDirectory() as work:
        data = write_input_data(requests, Path(work) / "input.json")
        asyncio.run(client_level(url, requests, 1, 1, args.budget))  # warm-up
        for concurrency in args.concurrency:
            count = max(args.requests, 2 * concurrency)
            if binary is not None:
                levels.append(perf_analyzer_level(binary, url, data, concurrency, count, args.budget, args.docs,
                                                  args.level_timeout))
            if "client" in args.tools:
                levels.append(asyncio.run(client_level(url, requests, concurrency, count, args.budget)))
            for level in levels[-2:]:
                if level.concurrency == concurrency:
                    print(f"{level.tool:>16} c={concurrency:<3} {level.requests_per_s:6.2f} req/s "
                          f"{level.docs_per_s:7.1f} docs/s  p50 {level.p50_ms:8.0f} ms", flush=True)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    csv_path = args.out.with_suffix(".csv")
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(asdict(levels[0])))
        writer.writeheader()
        writer.writerows(asdict(level) for level in levels)
    server = args.url or f"own server, {args.model} model, serving defaults, {args.entry_instances} rank1 instances"
    context = (f"CPU ({machine_line()}); {server}; {args.docs} docs/request, budget {args.budget}, "
               f"≥{args.requests} requests per level")
    png_path = args.out.with_suffix(".png")
    plotted = plot(levels, png_path, context)
    note = f" and {png_path}" if plotted else " (no plot: pip install -r bench/requirements.txt)"
    print(f"\nwrote {csv_path}{note}")
    print(f"\n{context}")
    print("| tool | clients | requests | req/s | docs/s | p50 ms | p95 ms | p99 ms |")
    print("|---|---|---|---|---|---|---|---|")
    for level in levels:
        print(f"| {level.tool} | {level.concurrency} | {level.requests} | {level.requests_per_s:.2f} "
              f"| {level.docs_per_s:.1f} | {level.p50_ms:.0f} | {level.p95_ms:.0f} | {level.p99_ms:.0f} |")


if __name__ == "__main__":
    main()
