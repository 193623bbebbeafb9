"""Batched PyTorch engine vs per-pair scoring of the same (query, passage) pairs, side by side in one run.

Per-pair = the same reranker and engine called with one pair at a time (greedy decoding with a KV cache,
no batching), i.e. how a naive per-document loop over transformers behaves. Prints docs/s and generated
tokens/s for both and the ratio, for each batch size and model, then a table.

    python bench/engine.py                      # toy + random tiny models, 1/8/32/128 documents
    python bench/engine.py --sizes 32 --models toy --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from transformers import AutoTokenizer

from rank1_triton.engines.torch_engine import TorchEngine
from rank1_triton.fixtures.cache import ensure_random_model, ensure_toy_model
from rank1_triton.fixtures.toy_task import make_ranking_queries
from rank1_triton.reranker import DocumentScore, Rank1Reranker, ScoringOptions
from rank1_triton.tokenization import Rank1Tokenizer


def timed(run: Callable[[], list[DocumentScore]], repeats: int) -> tuple[float, list[DocumentScore]]:
    """Median wall time over ``repeats`` runs, and the last run's results."""
    times, results = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        results = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), results


def bench_model(name: str, model_dir: Path, sizes: list[int], budget: int, repeats: int) -> list[dict]:
    reranker = Rank1Reranker(TorchEngine(model_dir), Rank1Tokenizer(AutoTokenizer.from_pretrained(model_dir)))
    options = ScoringOptions(max_reasoning_tokens=budget)
    query, passages, _ = make_ranking_queries(1, max(sizes), seed=5)[0]
    reranker.rerank(query, passages[:2], options=options)  # warm-up
    rows = []
    for size in sizes:
        docs = passages[:size]
        batched_s, batched = timed(lambda docs=docs: reranker.rerank(query, docs, options=options), repeats)
        per_pair_s, per_pair = timed(
            lambda docs=docs: [reranker.rerank(query, [d], options=options)[0] for d in docs], repeats
        )
        drift = max(abs(a.score - b.score) for a, b in zip(batched, per_pair, strict=True))
        tokens = sum(r.reasoning_tokens for r in batched)
        rows.append({
            "model": name, "docs": size, "tokens": tokens, "batched_s": batched_s, "per_pair_s": per_pair_s,
            "batched_docs_s": size / batched_s, "per_pair_docs_s": size / per_pair_s,
            "batched_tok_s": tokens / batched_s, "per_pair_tok_s": tokens / per_pair_s,
            "speedup": per_pair_s / batched_s, "forced": sum(r.forced for r in batched), "max_score_drift": drift,
        })
        print(f"{name:>6} {size:>4} docs: batched {size / batched_s:8.1f} docs/s, per-pair {size / per_pair_s:7.1f} "
              f"docs/s -> {per_pair_s / batched_s:5.2f}x", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 8, 32, 128])
    parser.add_argument("--models", nargs="+", choices=["toy", "random"], default=["toy", "random"])
    parser.add_argument("--budget", type=int, default=32, help="max_reasoning_tokens")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 suits a shared 2-core machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    models = {"toy": ensure_toy_model, "random": lambda: ensure_random_model("qwen2")}
    rows = [row for name in args.models for row in bench_model(name, models[name](), args.sizes, args.budget,
                                                                args.repeats)]
    print(f"\nCPU, {args.threads} torch thread(s), budget {args.budget} tokens, median of {args.repeats} runs")
    print("| model | docs | batched docs/s | per-pair docs/s | batched tok/s | per-pair tok/s | speedup | forced "
          "| max score drift |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['docs']} | {r['batched_docs_s']:.1f} | {r['per_pair_docs_s']:.1f} "
              f"| {r['batched_tok_s']:.0f} | {r['per_pair_tok_s']:.0f} | {r['speedup']:.2f}x | {r['forced']} "
              f"| {r['max_score_drift']:.1e} |")


if __name__ == "__main__":
    main()
