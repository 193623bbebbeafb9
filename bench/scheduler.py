"""The engine model's in-flight scheduler vs the static batcher, side by side in one run.

Two tritonservers serve the same model (random tiny Qwen2 by default: every document thinks for its whole budget,
so lengths are exact), one with ``scheduler="inflight"`` (no batching delay), one with ``scheduler="static"``
(dynamic batching, 40 ms delay: the former default). Scenarios alternate between the two servers:

* head-of-line: a 1-document request (budget 8) alone, and sent 0.5 s after a 32-document request (budget 256);
  the ratio behind/alone (goal ≤ 2).
* abandoned: a 200-document request (budget 32) whose client deadline (1 s) expires, then at once the small
  request: its latency over alone (goal ≤ 2), and the engine steps the in-flight engine ran for the abandoned
  request after its cancellation (from its ``rank1_engine_steps_after_cancel_total`` metric).
* load sweep: 1..32 clients, each sending 2-document requests back to back, budgets alternating 8 and 256;
  documents/s, p50 and p99 (goal: in-flight ≥ 1.3× static throughput).
* step cost (in-process): one decode step with 33 rows over one with 1 row, the head-of-line floor on a CPU.
* prefix sharing (in-process, the in-flight scheduler alone): one query's 32 toy-task documents, budget 32, with
  the shared prefix (template + query) computed once vs per document: prompt tokens fed and seconds.

Single-request latency against the in-process engine is ``bench/overhead.py --docs 8``.

    python bench/scheduler.py
    python bench/scheduler.py --clients 1 4 --requests-per-client 2     # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
import urllib.request
from collections.abc import Sequence

import numpy as np
import tritonclient.grpc.aio as grpcclient
from common import ENTRY_MODEL, MODELS, machine_line, triton_server
from prometheus_client.parser import text_string_to_metric_families
from tritonclient.utils import InferenceServerException

from rank1_triton.contract import SCHEDULERS
from rank1_triton.launch.values import STATIC_BATCHING_DELAY_US, TorchServingOptions

QUERY = "what do cats eat"
PASSAGE = "passage {}: cats eat fish and mice, and sometimes the food that their owners leave on the table"


def documents(count: int, offset: int = 0) -> list[str]:
    return [PASSAGE.format(offset + i) for i in range(count)]


def inputs(docs: list[str]) -> list[grpcclient.InferInput]:
    tensors = []
    for name, values in (("query", [QUERY]), ("documents", docs)):
        tensor = grpcclient.InferInput(name, [len(values)], "BYTES")
        tensor.set_data_from_numpy(np.array([v.encode() for v in values], dtype=np.object_))
        tensors.append(tensor)
    return tensors


async def rerank(client: grpcclient.InferenceServerClient, docs: list[str], budget: int,
                 timeout_s: float | None = None) -> float:
    """One rank1 request; its latency in seconds."""
    started = time.perf_counter()
    await client.infer(ENTRY_MODEL, inputs(docs), parameters={"max_reasoning_tokens": budget},
                       client_timeout=timeout_s)
    return time.perf_counter() - started


def engine_counter(server, name: str) -> float | None:
    """A counter of the in-flight engine (None on the static engine, which has none)."""
    text = urllib.request.urlopen(server.metrics_url, timeout=10).read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    return None


async def wait_idle(server, timeout_s: float = 120.0) -> None:
    """Until the engine holds no sequence (in-flight) or a 1-token request comes back at once (either)."""
    deadline = time.monotonic() + timeout_s
    async with grpcclient.InferenceServerClient(server.grpc_url) as client:
        while time.monotonic() < deadline:
            if await rerank(client, documents(1), 1) < 0.5:
                return
    raise TimeoutError("the engine did not become idle")


async def head_of_line(server, small_budget: int, large_docs: int, large_budget: int, repeats: int) -> dict:
    async with grpcclient.InferenceServerClient(server.grpc_url) as client:
        alone = statistics.median([await rerank(client, documents(1), small_budget) for _ in range(repeats)])
        behind = []
        for _ in range(repeats):
            large = asyncio.ensure_future(rerank(client, documents(large_docs, 100), large_budget))
            await asyncio.sleep(0.5)
            behind.append(await rerank(client, documents(1), small_budget))
            await large
    return {"alone_s": alone, "behind_s": statistics.median(behind), "ratio": statistics.median(behind) / alone}


async def abandoned(server, small_budget: int, docs: int, budget: int, deadline_s: float, repeats: int) -> dict:
    async with grpcclient.InferenceServerClient(server.grpc_url) as client:
        alone = statistics.median([await rerank(client, documents(1), small_budget) for _ in range(repeats)])
        after, steps = [], []
        for _ in range(repeats):
            before = engine_counter(server, "rank1_engine_steps_after_cancel_total")
            with contextlib.suppress(InferenceServerException):  # the deadline: expected
                await rerank(client, documents(docs, 1000), budget, timeout_s=deadline_s)
            after.append(await rerank(client, documents(1), small_budget))
            await wait_idle(server)
            if before is not None:
                await asyncio.sleep(1.0)  # the engine publishes its metrics every 0.5 s
                steps.append(engine_counter(server, "rank1_engine_steps_after_cancel_total") - before)
    return {"alone_s": alone, "after_s": statistics.median(after), "ratio": statistics.median(after) / alone,
            "steps_after_cancel": statistics.median(steps) if steps else None, "docs": docs}


async def load_level(server, clients: int, requests_per_client: int, budgets: Sequence[int]) -> dict:
    latencies: list[float] = []

    async def client_loop(client: grpcclient.InferenceServerClient, index: int) -> None:
        for turn in range(requests_per_client):
            budget = budgets[(index + turn) % len(budgets)]
            latencies.append(await rerank(client, documents(2, 10 * index), budget))

    async with grpcclient.InferenceServerClient(server.grpc_url) as client:
        started = time.perf_counter()
        await asyncio.gather(*(client_loop(client, i) for i in range(clients)))
        seconds = time.perf_counter() - started
    p50, p99 = np.percentile(latencies, [50, 99])
    return {"clients": clients, "docs_per_s": 2 * len(latencies) / seconds, "p50_s": p50, "p99_s": p99}


def prefix_sharing(docs: int, budget: int, repeats: int) -> dict[str, dict]:
    """The in-process scheduler over one query's documents with and without a shared prefix."""
    import torch
    from transformers import AutoTokenizer

    from rank1_triton.engines.inflight import InflightScheduler, SchedulerLimits
    from rank1_triton.engines.torch_engine import TorchEngine
    from rank1_triton.fixtures.toy_task import make_ranking_queries
    from rank1_triton.reranker import Rank1Reranker, ScoringOptions
    from rank1_triton.tokenization import Rank1Tokenizer

    torch.set_num_threads(TorchServingOptions.num_threads)
    model_dir = MODELS["toy"]()
    engine = TorchEngine(model_dir)
    tokenizer = Rank1Tokenizer(AutoTokenizer.from_pretrained(model_dir))
    query, passages, _ = make_ranking_queries(1, docs, seed=3)[0]
    options = ScoringOptions(max_reasoning_tokens=budget)
    rows: dict[str, dict] = {}
    for name, minimum in (("shared", SchedulerLimits.min_shared_prefix), ("per document", 0)):
        scheduler = InflightScheduler(engine, SchedulerLimits(min_shared_prefix=minimum))
        reranker = Rank1Reranker(scheduler, tokenizer)
        prompts = reranker.encode(query, passages, options=options)
        times = []
        for _ in range(repeats + 1):  # the first run warms up
            started = time.perf_counter()
            asyncio.run(reranker.ascore(prompts, options, scheduler.agenerate_one))
            times.append(time.perf_counter() - started)
        stats = scheduler.stats
        scheduler.close()
        rows[name] = {"seconds": statistics.median(times[1:]), "prefill": stats.prefill_tokens / (repeats + 1),
                      "saved": stats.shared_prefix_tokens / (repeats + 1),
                      "prompt_tokens": sum(len(p.input_ids) for p in prompts)}
    return rows


def step_cost(model_dir, rows: Sequence[int], context: int = 300, steps: int = 30) -> dict[int, float]:
    """Median seconds of one decode step with ``rows`` sequences of ``context`` tokens, in-process.

    The floor of the head-of-line ratio on this machine: the small request's decode steps run in the large
    request's batch, and on a CPU a step's cost grows with its rows (the vocabulary projection is per row).
    """
    import torch
    from transformers import DynamicCache

    from rank1_triton.engines.torch_engine import TorchEngine

    torch.set_num_threads(TorchServingOptions.num_threads)
    engine = TorchEngine(model_dir)
    medians = {}
    with torch.inference_mode():
        for count in rows:
            cache = DynamicCache()
            mask = torch.ones((count, context), dtype=torch.long)
            positions = torch.arange(context)[None].repeat(count, 1)
            engine.forward(torch.full((count, context), 100), mask, positions, cache)
            positions = positions[:, -1:]
            times = []
            for _ in range(steps):
                mask = torch.cat([mask, mask.new_ones((count, 1))], dim=-1)
                positions = positions + 1
                started = time.perf_counter()
                engine.forward(torch.full((count, 1), 100), mask, positions, cache).argmax(-1).tolist()
                times.append(time.perf_counter() - started)
            medians[count] = statistics.median(times)
    return medians


def serving(scheduler: str, max_documents: int) -> TorchServingOptions:
    delay = STATIC_BATCHING_DELAY_US if scheduler == "static" else 0
    return TorchServingOptions(scheduler=scheduler, max_queue_delay_microseconds=delay, max_documents=max_documents,
                               default_max_reasoning_tokens=8)


def print_sharing(rows: dict[str, dict]) -> None:
    shared, alone = rows["shared"], rows["per document"]
    print(f"\nprefix sharing (in-process, toy model, 32 documents of one query, budget 32; "
          f"{shared['prompt_tokens']} prompt tokens)")
    print("| prefill | prompt tokens fed (padding included) | tokens not recomputed | seconds |")
    print("|---|---|---|---|")
    for name, row in rows.items():
        print(f"| {name} | {row['prefill']:.0f} | {row['saved']:.0f} | {row['seconds']:.3f} |")
    print(f"| ratio shared / per document | {shared['prefill'] / alone['prefill']:.2f} | | "
          f"**{shared['seconds'] / alone['seconds']:.3f}** |")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(MODELS), default="random")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16, 32])
    parser.add_argument("--requests-per-client", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--large-docs", type=int, default=32)
    parser.add_argument("--large-budget", type=int, default=256)
    parser.add_argument("--abandoned-docs", type=int, default=200)
    parser.add_argument("--abandoned-budget", type=int, default=32)
    parser.add_argument("--small-budget", type=int, default=8)
    parser.add_argument("--budgets", type=int, nargs="+", default=[8, 256], help="load sweep budgets, alternating")
    args = parser.parse_args(argv)
    model_dir = MODELS[args.model]()
    print(machine_line(), flush=True)
    results: dict[str, dict] = {name: {"load": []} for name in SCHEDULERS}
    max_documents = max(args.abandoned_docs, args.large_docs)
    with triton_server(model_dir, serving("inflight", max_documents)) as inflight, \
            triton_server(model_dir, serving("static", max_documents)) as static:
        servers = {"inflight": inflight, "static": static}
        for server in servers.values():  # warm-up
            asyncio.run(head_of_line(server, args.small_budget, 2, 4, 1))
        for name, server in servers.items():
            results[name]["hol"] = asyncio.run(head_of_line(server, args.small_budget, args.large_docs,
                                                            args.large_budget, args.repeats))
            print(name, "head-of-line", results[name]["hol"], flush=True)
        for name, server in servers.items():
            results[name]["abandoned"] = asyncio.run(abandoned(server, args.small_budget, args.abandoned_docs,
                                                               args.abandoned_budget, 1.0, args.repeats))
            print(name, "abandoned", results[name]["abandoned"], flush=True)
        for clients in args.clients:
            order = list(servers) if clients % 2 else list(reversed(servers))
            for name in order:
                level = asyncio.run(load_level(servers[name], clients, args.requests_per_client, args.budgets))
                results[name]["load"].append(level)
                print(name, "load", level, flush=True)

    sharing = prefix_sharing(32, 32, args.repeats)
    steps = step_cost(model_dir, (1, args.large_docs + 1))
    inflight_r, static_r = results["inflight"], results["static"]
    print(f"\nmodel {args.model}; defaults of TorchServingOptions but the scheduler (static: "
          f"{STATIC_BATCHING_DELAY_US} µs batching delay); medians of {args.repeats}")
    print("| scenario | in-flight | static | goal |")
    print("|---|---|---|---|")
    hol_i, hol_s = inflight_r["hol"], static_r["hol"]
    print(f"| 1 doc (budget {args.small_budget}) alone, s | {hol_i['alone_s']:.3f} | {hol_s['alone_s']:.3f} | |")
    print(f"| … 0.5 s after {args.large_docs} docs (budget {args.large_budget}), s | {hol_i['behind_s']:.3f} | "
          f"{hol_s['behind_s']:.3f} | |")
    print(f"| head-of-line ratio (behind / alone) | **{hol_i['ratio']:.2f}** | {hol_s['ratio']:.2f} | ≤ 2 |")
    one, full = steps[1], steps[args.large_docs + 1]
    print(f"| its floor here: one decode step with {args.large_docs + 1} rows / 1 row (in-process, "
          f"{full * 1000:.1f} / {one * 1000:.1f} ms) | {full / one:.2f} | | |")
    ab_i, ab_s = inflight_r["abandoned"], static_r["abandoned"]
    print(f"| 1 doc right after {args.abandoned_docs} docs (budget {args.abandoned_budget}) hit their 1 s deadline, s "
          f"| {ab_i['after_s']:.3f} | {ab_s['after_s']:.3f} | |")
    print(f"| abandoned ratio (after / alone) | **{ab_i['ratio']:.2f}** | {ab_s['ratio']:.2f} | ≤ 2 |")
    steps = ab_i["steps_after_cancel"]
    print(f"| engine steps after cancellation (sum over the {args.abandoned_docs} sequences) | "
          f"{steps if steps is not None else 'n/a'} | n/a (no scheduler metrics) | |")
    print(f"\nload sweep: 2 documents per request, budgets alternating {args.budgets}, "
          f"{args.requests_per_client} requests per client")
    print("| clients | in-flight docs/s | static docs/s | ratio (goal ≥ 1.3) | in-flight p50 / p99 s "
          "| static p50 / p99 s |")
    print("|---|---|---|---|---|---|")
    for mine, theirs in zip(inflight_r["load"], static_r["load"], strict=True):
        print(f"| {mine['clients']} | {mine['docs_per_s']:.2f} | {theirs['docs_per_s']:.2f} | "
              f"**{mine['docs_per_s'] / theirs['docs_per_s']:.2f}** | {mine['p50_s']:.2f} / {mine['p99_s']:.2f} | "
              f"{theirs['p50_s']:.2f} / {theirs['p99_s']:.2f} |")
    print_sharing(sharing)


if __name__ == "__main__":
    main()

