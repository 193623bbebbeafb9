"""What serving through Triton costs: the engine in-process vs gRPC → Triton → `rank1` → `tensorrt_llm`.

Both paths score the same requests (``--docs`` documents each, fixed reasoning budget) with the same engine
settings and torch thread count as the server's engine model (``TorchServingOptions.num_threads``, 1 by
default). In-process is ``Rank1Reranker`` over ``TorchEngine``; the server path is a plain tritonclient gRPC
call on loopback. Runs alternate (in-process then server, then the other way round) so load changes on a shared
machine hit both, and the ratio is of means measured in the same run.

The difference is split with the in-process tokenisation time and Triton's statistics API (per-model queue and
compute times of ``rank1`` and ``tensorrt_llm``, and the engine model's per-batch execution time).

    python bench/overhead.py                          # toy + random tiny models, 32 documents, budget 32
    python bench/overhead.py --models toy --docs 8 --repeats 3
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import tritonclient.grpc as grpcclient
from common import ENGINE_MODEL, ENTRY_MODEL, MODELS, ModelStats, machine_line, model_stats, triton_server
from transformers import AutoTokenizer

from rank1_triton.contract import DEFAULT_MAX_CONTEXT_TOKENS, SCHEDULERS
from rank1_triton.engines.base import EngineCapabilities, GenerationRequest, GenerationResult
from rank1_triton.engines.torch_engine import TorchEngine
from rank1_triton.fixtures.toy_task import make_ranking_queries
from rank1_triton.launch.values import STATIC_BATCHING_DELAY_US, TorchServingOptions, model_context
from rank1_triton.reranker import Rank1Reranker, ScoringOptions
from rank1_triton.scoring import ThinkEndFinder
from rank1_triton.tokenization import Rank1Tokenizer

Request = tuple[str, list[str]]


@dataclass(frozen=True)
class Run:
    """One request through one path: wall seconds, tokenisation seconds (in-process only) and the scores."""

    seconds: float
    tokenize_seconds: float
    scores: list[float]
    reasoning_tokens: int = 0
    forced: int = 0


class CountingEngine:
    """A TorchEngine that counts the batches it runs (one per ``max_batch_size`` requests of a call)."""

    def __init__(self, engine: TorchEngine) -> None:
        self.engine = engine
        self.batches = 0

    @property
    def capabilities(self) -> EngineCapabilities:
        return self.engine.capabilities

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        self.batches += math.ceil(len(requests) / self.engine.capabilities.max_batch_size)
        return self.engine.generate(requests)


def in_process(reranker: Rank1Reranker, request: Request, options: ScoringOptions) -> Run:
    """``Rank1Reranker.rerank`` in two timed steps: templating + tokenisation, then the engine rounds."""
    query, documents = request
    start = time.perf_counter()
    prompts = reranker.encode(query, documents, options=options)
    encoded = time.perf_counter()
    results = reranker.score(prompts, options)
    end = time.perf_counter()
    return Run(end - start, encoded - start, [r.score for r in results],
               sum(r.reasoning_tokens for r in results), sum(r.forced for r in results))


def text_tensor(name: str, values: list[str]) -> grpcclient.InferInput:
    tensor = grpcclient.InferInput(name, [len(values)], "BYTES")
    tensor.set_data_from_numpy(np.array([v.encode() for v in values], dtype=np.object_))
    return tensor


def via_triton(client: grpcclient.InferenceServerClient, request: Request, budget: int) -> Run:
    """One gRPC call to the ``rank1`` model, building the request tensors included."""
    query, documents = request
    start = time.perf_counter()
    result = client.infer(ENTRY_MODEL, [text_tensor("query", [query]), text_tensor("documents", documents)],
                          parameters={"max_reasoning_tokens": budget})
    seconds = time.perf_counter() - start
    return Run(seconds, 0.0, [float(s) for s in result.as_numpy("scores")])


def server_stats(client: grpcclient.InferenceServerClient) -> tuple[ModelStats, ModelStats]:
    return model_stats(client, ENTRY_MODEL), model_stats(client, ENGINE_MODEL)


def breakdown(local: list[Run], served: list[Run], entry: ModelStats, engine: ModelStats,
              scheduler: str) -> list[tuple[str, float]]:
    """Milliseconds per request of each part of the served time, in-process figures first for reference.

    ``rank1`` answers through its response sender after ``execute`` has returned, so Triton's statistics of
    ``rank1`` cover only the hand-off: what follows it (BLS hops, engine queue, rank1 Python, gRPC) is one row.
    With the static scheduler the engine's batches still run inside ``execute``, so their wall time is known.
    """
    n = len(served)
    local_ms = statistics.fmean(r.seconds for r in local) * 1e3
    tokenize_ms = statistics.fmean(r.tokenize_seconds for r in local) * 1e3
    served_ms = statistics.fmean(r.seconds for r in served) * 1e3
    entry_io_ms = entry.queue.mean_ms + entry.compute_input.mean_ms + entry.compute_output.mean_ms
    rows = [
        ("in-process: engine rounds (TorchEngine.generate)", local_ms - tokenize_ms),
        ("in-process: templating + tokenisation", tokenize_ms),
        ("in-process total", local_ms),
        ("Triton: templating + tokenisation in rank1 (in-process figure)", tokenize_ms),
    ]
    engine_wall_ms = 0.0
    if scheduler == "static":
        engine_wall_ms = engine.batch_compute.ns / n / 1e6
        rows += [
            ("Triton: tensorrt_llm executions (wall, all batches)", engine_wall_ms),
            ("  of which beyond the in-process engine (extra batches, tensor parsing, results, logits copies)",
             engine_wall_ms - (local_ms - tokenize_ms)),
        ]
    rest = "BLS hops + engine queue + rank1 Python + gRPC/protobuf" if scheduler == "static" else (
        "engine (in-flight, its own thread) + BLS hops + rank1 Python + gRPC/protobuf")
    rows += [
        ("Triton: rank1 queue + input/output tensors", entry_io_ms),
        (f"Triton: {rest} (after rank1's execute returned)", served_ms - entry_io_ms - tokenize_ms - engine_wall_ms),
        ("Triton total (client wall time)", served_ms),
    ]
    return rows


def bench_model(name: str, model_dir: Path, args: argparse.Namespace, serving: TorchServingOptions) -> dict:
    context = min(serving.max_context_tokens or DEFAULT_MAX_CONTEXT_TOKENS, model_context(model_dir))
    tokenizer = Rank1Tokenizer(AutoTokenizer.from_pretrained(model_dir))
    # The same engine as the served one: with the fused answer step it also stops by text (engine_model.py).
    think_end = ThinkEndFinder(tokenizer.decode) if serving.fused_answer_step else None
    engine = CountingEngine(TorchEngine(model_dir, dtype=serving.dtype, device=serving.device,
                                        max_batch_size=serving.max_batch_size, max_context_tokens=context,
                                        fused_answer_step=serving.fused_answer_step, think_end=think_end))
    reranker = Rank1Reranker(engine, tokenizer)
    options = ScoringOptions(max_reasoning_tokens=args.budget)
    requests = [(q, docs) for q, docs, _ in make_ranking_queries(args.repeats, args.docs, seed=11)]
    local: list[Run] = []
    served: list[Run] = []
    with triton_server(model_dir, serving) as server, grpcclient.InferenceServerClient(server.grpc_url) as client:
        in_process(reranker, requests[0], options)  # warm-up both paths
        via_triton(client, requests[0], args.budget)
        before = server_stats(client)
        engine.batches = 0
        for index, request in enumerate(requests):
            if index % 2 == 0:
                local.append(in_process(reranker, request, options))
                served.append(via_triton(client, request, args.budget))
            else:
                served.append(via_triton(client, request, args.budget))
                local.append(in_process(reranker, request, options))
        after = server_stats(client)
    entry, engine_stats = after[0] - before[0], after[1] - before[1]
    drift = max(abs(a - b) for x, y in zip(local, served, strict=True) for a, b in zip(x.scores, y.scores,
                                                                                       strict=True))
    local_ms = statistics.fmean(r.seconds for r in local) * 1e3
    served_ms = statistics.fmean(r.seconds for r in served) * 1e3
    print(f"{name}: in-process {local_ms:.1f} ms, Triton {served_ms:.1f} ms -> {served_ms / local_ms:.3f}x",
          flush=True)
    return {
        "model": name, "local_ms": local_ms, "served_ms": served_ms, "ratio": served_ms / local_ms,
        "reasoning_tokens": statistics.fmean(r.reasoning_tokens for r in local) / args.docs,
        "forced": statistics.fmean(r.forced for r in local) / args.docs, "max_score_diff": drift,
        "engine_batches": engine_stats.batch_compute.count / len(served),
        "local_batches": engine.batches / len(local),
        "engine_calls": engine_stats.success.count / len(served),
        "engine_queue_ms": engine_stats.queue.mean_ms,
        "engine_batch_sizes": ", ".join(f"{count}×{size}" for size, count in sorted(engine_stats.batch_sizes.items())),
        "parts": breakdown(local, served, entry, engine_stats, serving.scheduler),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=["toy", "random"])
    parser.add_argument("--docs", type=int, default=32, help="documents per request")
    parser.add_argument("--budget", type=int, default=32, help="max_reasoning_tokens")
    parser.add_argument("--repeats", type=int, default=6, help="requests timed on each path (alternating order)")
    parser.add_argument("--scheduler", choices=SCHEDULERS, default=TorchServingOptions.scheduler,
                        help="the engine model's scheduler (server default %(default)s)")
    parser.add_argument("--max-queue-delay-us", type=int,
                        help="the engine model's dynamic-batching delay (default: 0 in-flight, "
                             f"{STATIC_BATCHING_DELAY_US} static)")
    parser.add_argument("--entry-instances", type=int, default=TorchServingOptions.entry_instances,
                        help="rank1 model instances (server default %(default)s; one request runs at a time here)")
    args = parser.parse_args()
    delay = args.max_queue_delay_us
    if delay is None:
        delay = STATIC_BATCHING_DELAY_US if args.scheduler == "static" else 0
    serving = TorchServingOptions(max_documents=max(args.docs, 1), default_max_reasoning_tokens=args.budget,
                                  scheduler=args.scheduler, max_queue_delay_microseconds=delay,
                                  entry_instances=args.entry_instances)
    torch.set_num_threads(serving.num_threads)  # the engine model's setting
    rows = [bench_model(name, MODELS[name](), args, serving) for name in args.models]

    for row in rows:
        print(f"\n{row['model']}: where the Triton time goes, ms per request. Engine model executions per "
              f"request (static: batches; in-flight: hand-offs): "
              f"{row['engine_batches']:.1f} in Triton ({row['engine_calls']:.0f} BLS calls; count×size over the run: "
              f"{row['engine_batch_sizes']}; mean queue wait per call {row['engine_queue_ms']:.1f} ms) vs "
              f"{row['local_batches']:.1f} in-process")
        print("| part | ms | % of Triton total |")
        print("|---|---|---|")
        for part, ms in row["parts"]:
            print(f"| {part} | {ms:.1f} | {100 * ms / row['served_ms']:.1f} |")
    print(f"\nCPU ({machine_line()}); torch threads {serving.num_threads} on both paths; {args.docs} documents, "
          f"budget {args.budget} tokens, mean of {args.repeats} requests per path, alternating; {serving.scheduler} "
          f"engine, max_queue_delay {serving.max_queue_delay_microseconds} µs; "
          f"{serving.entry_instances} rank1 instances")
    print("| model | reasoning tokens/doc | forced | in-process ms | Triton (gRPC) ms | ratio (goal ≤ 1.05) "
          "| max score diff |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['model']} | {row['reasoning_tokens']:.1f} | {row['forced']:.0%} | {row['local_ms']:.1f} "
              f"| {row['served_ms']:.1f} | {row['ratio']:.3f} | {row['max_score_diff']:.1e} |")


if __name__ == "__main__":
    main()
