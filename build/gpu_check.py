#!/usr/bin/env python3
"""GPU check: Rank1 scores of TensorRT-LLM engines (BF16, FP8) against the PyTorch engine, on one GPU.

Where: a machine with an NVIDIA GPU, inside the image of ``build/Dockerfile`` (NVIDIA's
``nvcr.io/nvidia/tritonserver:26.05-trtllm-python-py3`` plus rank1_triton, rank1_build and tritonclient)::

    docker run --rm --gpus all -v $PWD/gpu-check:/work --entrypoint python3 rank1-trtllm \\
        /opt/rank1-triton/build/gpu_check.py --workdir /work
    # a published checkpoint instead of the tiny random Qwen2 (needs the hub or a local copy):
    ... /opt/rank1-triton/build/gpu_check.py --workdir /work --model jhu-clsp/rank1-0.5b

What it does, per format in ``--formats``: ``python -m rank1_build build --quant FORMAT --serve-root OUT``, then
``python -m rank1_build serve OUT`` (mpirun + tritonserver, NVIDIA's C++ backend), the same (query, passage)
pairs through the ``rank1`` model over gRPC (tritonclient), and a comparison with the PyTorch engine run in this
process (``rank1_triton.engines.torch_engine.TorchEngine`` + ``rank1_triton.reranker.Rank1Reranker`` on CUDA, in
bfloat16, with the unfused answer step: the same two requests per document as TensorRT-LLM). It prints one table
and exits 1 when a format is past its tolerance (2: the check could not run).

``--torch-only`` runs the PyTorch part alone (a GPU machine without TensorRT-LLM): CUDA float32 and CUDA bfloat16
against CPU float32. ``--dry-run`` prints the plan and runs nothing (a CPU test keeps it working).

Tolerances (defaults; the first run on a GPU should confirm them, none was run while writing this):
scores are P(" true") from two logits at the answer position, so numeric noise moves a score by about a quarter of
the logit error near 0.5, and greedy reasoning can fork at a near-tie, after which the two runs judge different
texts. So a format passes when (a) on the pairs whose reasoning text is identical to the reference, the largest
score difference is at most ``max_diff``, and (b) at least ``min_same`` of the pairs have identical reasoning.
BF16 engine vs PyTorch bfloat16: same dtype, different kernels (TensorRT fused attention and GEMM tactics, FP32
logits from ``--logits_dtype float32``), a few bfloat16 ULPs of logit error: 0.05 / 75 %. FP8 engine (FP8 W8A8 and
FP8 KV cache, E4M3 with 3 mantissa bits) vs PyTorch bfloat16: 0.15 / 50 %. PyTorch CUDA float32 vs CPU float32:
0.01 / 90 %; CUDA bfloat16 vs CPU float32: 0.05 / 75 %. Reasoning budgets are short (16 tokens) to keep forks rare.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
for _path in (HERE, HERE.parent / "python_backend"):
    if _path.is_dir() and str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

EXIT_OK, EXIT_FAILED, EXIT_SETUP = 0, 1, 2
FORMATS = ("bf16", "fp8")
FIXTURE_COMMAND = ("-m", "rank1_triton.fixtures", "random", "--arch", "qwen2")


@dataclass(frozen=True)
class Tolerance:
    """Pass marks of one comparison (see the module docstring for why)."""

    max_diff: float
    min_same: float


TOLERANCES = {
    "bf16": Tolerance(0.05, 0.75),
    "fp8": Tolerance(0.15, 0.50),
    "cuda-float32": Tolerance(0.01, 0.90),
    "cuda-bfloat16": Tolerance(0.05, 0.75),
}

QUERIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("what causes the seasons on earth",
     ("The tilt of Earth's axis changes how directly sunlight strikes each hemisphere over the year.",
      "The stock market closed higher on Friday after a week of losses.",
      "Earth's distance from the Sun varies slightly, but the axial tilt drives the seasons.")),
    ("how do vaccines train the immune system",
     ("Vaccines expose the immune system to a harmless antigen so it can form memory cells.",
      "A good sourdough starter needs flour, water and patience.")),
    ("who wrote the origin of species",
     ("Charles Darwin published On the Origin of Species in 1859.",
      "The Eiffel Tower was completed in 1889 for the World's Fair.",
      "Alfred Russel Wallace developed a theory of natural selection independently of Darwin.")),
)


@dataclass
class Scored:
    """One pair's outcome on one engine."""

    score: float
    reasoning: str


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="checkpoint folder or hub id (default: the tiny random Qwen2 fixture)")
    parser.add_argument("--formats", default=",".join(FORMATS), help="TensorRT-LLM formats to build and serve")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/rank1-gpu-check"))
    parser.add_argument("--gpu-cc", type=float, help="compute capability (default: rank1_build asks nvidia-smi)")
    parser.add_argument("--max-context-tokens", type=int, default=2048)
    parser.add_argument("--max-reasoning-tokens", type=int, default=16)
    parser.add_argument("--quantizer", choices=["modelopt", "nvidia"], default="modelopt",
                        help="FP8 checkpoint: modelopt calibrates on texts this script writes (works offline); "
                             "nvidia runs quantize.py (downloads cnn_dailymail unless --calib-dataset)")
    parser.add_argument("--calib-dataset", help="passed to rank1_build build with --quantizer nvidia")
    parser.add_argument("--http-port", type=int, default=18000)
    parser.add_argument("--grpc-port", type=int, default=18001)
    parser.add_argument("--metrics-port", type=int, default=18002)
    parser.add_argument("--startup-timeout", type=float, default=900.0, help="seconds for a server to be ready")
    parser.add_argument("--torch-only", action="store_true",
                        help="only the PyTorch engine: CUDA float32 and bfloat16 against CPU float32")
    parser.add_argument("--dry-run", action="store_true", help="print the plan, run nothing")
    for name, tolerance in TOLERANCES.items():
        flag = name.replace("_", "-")
        parser.add_argument(f"--max-diff-{flag}", type=float, default=tolerance.max_diff)
        parser.add_argument(f"--min-same-{flag}", type=float, default=tolerance.min_same)
    args = parser.parse_args(argv)
    args.formats = [item for item in args.formats.split(",") if item]
    unknown = sorted(set(args.formats) - set(FORMATS))
    if unknown:
        parser.error(f"--formats: unknown {', '.join(unknown)} (choose from {', '.join(FORMATS)})")
    return args


def tolerance(args: argparse.Namespace, name: str) -> Tolerance:
    flag = name.replace("-", "_")
    return Tolerance(getattr(args, f"max_diff_{flag}"), getattr(args, f"min_same_{flag}"))


def pairs() -> list[tuple[int, str, int, str]]:
    """(query index, query, document index, document) of every pair."""
    return [(qi, query, di, doc) for qi, (query, docs) in enumerate(QUERIES) for di, doc in enumerate(docs)]


def build_command(args: argparse.Namespace, model: str, quant: str, out: Path, calib: Path) -> list[str]:
    """``rank1_build build`` of one format, served from where it is written."""
    argv = [sys.executable, "-m", "rank1_build", "build", "--model", model, "--quant", quant,
            "--output", str(out), "--serve-root", str(out),
            "--max-context-tokens", str(args.max_context_tokens),
            "--max-reasoning-tokens", str(args.max_reasoning_tokens), "--max-batch-size", "8"]
    if args.gpu_cc is not None:
        argv += ["--gpu-cc", str(args.gpu_cc)]
    if quant == "fp8":
        if args.quantizer == "modelopt":
            argv += ["--quantizer", "modelopt", "--calib-texts", str(calib),
                     "--calib-size", str(len(pairs()))]
        elif args.calib_dataset:
            argv += ["--calib-dataset", args.calib_dataset]
    return argv


def serve_command(args: argparse.Namespace, out: Path) -> list[str]:
    return [sys.executable, "-m", "rank1_build", "serve", str(out), "--workdir", str(out.parent / f"{out.name}-serve"),
            "--http-port", str(args.http_port), "--grpc-port", str(args.grpc_port),
            "--metrics-port", str(args.metrics_port)]


def subprocess_env() -> dict[str, str]:
    paths = [str(HERE)] + ([str(HERE.parent / "python_backend")] if (HERE.parent / "python_backend").is_dir() else [])
    return {**os.environ, "PYTHONPATH": os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")])}


def plan(args: argparse.Namespace) -> list[str]:
    """The plan as printable lines (what --dry-run prints)."""
    model = args.model or "<tiny random Qwen2: python3 " + " ".join(FIXTURE_COMMAND) + ">"
    calib = args.workdir / "calib.jsonl"
    lines = [f"# model: {model}", f"# pairs: {len(pairs())} ({len(QUERIES)} queries), reasoning budget "
             f"{args.max_reasoning_tokens} tokens, context {args.max_context_tokens}"]
    if args.torch_only:
        lines.append("# PyTorch engine only: CPU float32 (reference), CUDA float32, CUDA bfloat16 (in process)")
        for name in ("cuda-float32", "cuda-bfloat16"):
            t = tolerance(args, name)
            lines.append(f"# {name}: max |score diff| {t.max_diff} on identical reasoning, identical >= {t.min_same}")
        return lines
    lines.append("# reference: PyTorch engine, CUDA bfloat16, unfused answer step (in process)")
    for quant in args.formats:
        out = args.workdir / quant
        t = tolerance(args, quant)
        lines.append(f"# {quant}: max |score diff| {t.max_diff} on identical reasoning, identical >= {t.min_same}")
        lines.append(shlex.join(build_command(args, model, quant, out, calib)))
        lines.append(shlex.join(serve_command(args, out)) + " &")
    return lines


def resolve_model(args: argparse.Namespace) -> str:
    if args.model:
        return args.model
    result = subprocess.run([sys.executable, *FIXTURE_COMMAND], check=True, capture_output=True, text=True,
                            env=subprocess_env())
    return result.stdout.strip().splitlines()[-1]


def write_calibration(path: Path) -> None:
    """Rank1 prompts of the check's own pairs as ModelOpt calibration texts."""
    from rank1_triton.prompts import compose_query, passage_from, render_prompt

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for _, query, _, doc in pairs():
            text = render_prompt(compose_query(query), passage_from(doc).render())
            handle.write(json.dumps({"text": text}) + "\n")


def torch_scores(model: str, device: str, dtype: str, args: argparse.Namespace) -> list[Scored]:
    """Every pair through the PyTorch engine in this process."""
    import torch
    from transformers import AutoTokenizer

    from rank1_triton.engines.torch_engine import TorchEngine
    from rank1_triton.reranker import Rank1Reranker, ScoringOptions
    from rank1_triton.tokenization import Rank1Tokenizer

    engine = TorchEngine(model, dtype=dtype, device=device, max_context_tokens=args.max_context_tokens,
                         fused_answer_step=False)
    reranker = Rank1Reranker(engine, Rank1Tokenizer(AutoTokenizer.from_pretrained(model)))
    options = ScoringOptions(max_reasoning_tokens=args.max_reasoning_tokens)
    scored: list[Scored] = []
    for query, docs in QUERIES:
        scored += [Scored(r.score, r.reasoning) for r in reranker.rerank(query, list(docs), options=options)]
    del reranker, engine
    if device == "cuda":
        torch.cuda.empty_cache()
    return scored


def wait_ready(process: subprocess.Popen, port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} while loading")
        try:
            with urllib.request.urlopen(f"http://localhost:{port}/v2/health/ready", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(1.0)
    raise RuntimeError(f"the server was not ready after {timeout_s:.0f} s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def grpc_scores(url: str, args: argparse.Namespace) -> list[Scored]:
    """Every pair through the served ``rank1`` model, with the project's gRPC client (results in document order)."""
    from rank1_client import Rank1Client

    scored: list[Scored] = []
    with Rank1Client(url) as client:
        for query, docs in QUERIES:
            response = client.rerank(query, list(docs), max_reasoning_tokens=args.max_reasoning_tokens,
                                     return_reasoning=True)
            by_index = sorted(response.results, key=lambda result: result.index)
            scored += [Scored(result.score, result.reasoning or "") for result in by_index]
    return scored


def served_scores(args: argparse.Namespace, model: str, quant: str) -> list[Scored]:
    out = args.workdir / quant
    subprocess.run(build_command(args, model, quant, out, args.workdir / "calib.jsonl"), check=True,
                   env=subprocess_env())
    log = (args.workdir / f"{quant}-server.log").open("wb")
    process = subprocess.Popen(serve_command(args, out), stdout=log, stderr=subprocess.STDOUT, env=subprocess_env(),
                               start_new_session=True)
    try:
        wait_ready(process, args.http_port, args.startup_timeout)
        return grpc_scores(f"localhost:{args.grpc_port}", args)
    finally:
        stop(process)
        log.close()


@dataclass
class Verdict:
    name: str
    max_diff: float
    same: float
    passed: bool


def compare(name: str, reference: list[Scored], candidate: list[Scored], limit: Tolerance) -> Verdict:
    same = [(r, c) for r, c in zip(reference, candidate, strict=True) if r.reasoning == c.reasoning]
    max_diff = max((abs(r.score - c.score) for r, c in same), default=0.0)
    rate = len(same) / len(reference)
    return Verdict(name, max_diff, rate, max_diff <= limit.max_diff and rate >= limit.min_same)


def table(reference_name: str, reference: list[Scored], columns: dict[str, list[Scored]]) -> str:
    header = ["query", "doc", reference_name] + [f"{name} (diff, same reasoning)" for name in columns]
    rows = [" | ".join(header), " | ".join("---" for _ in header)]
    for index, (qi, _, di, _) in enumerate(pairs()):
        cells = [str(qi), str(di), f"{reference[index].score:.4f}"]
        for scored in columns.values():
            item = scored[index]
            cells.append(f"{item.score:.4f} ({item.score - reference[index].score:+.4f}, "
                         f"{'yes' if item.reasoning == reference[index].reasoning else 'no'})")
        rows.append(" | ".join(cells))
    return "\n".join(rows)


def report(reference_name: str, reference: list[Scored], columns: dict[str, list[Scored]],
           args: argparse.Namespace) -> int:
    print(table(reference_name, reference, columns))
    verdicts = [compare(name, reference, scored, tolerance(args, name)) for name, scored in columns.items()]
    for v in verdicts:
        limit = tolerance(args, v.name)
        print(f"{v.name}: max |diff| {v.max_diff:.4f} (limit {limit.max_diff}), identical reasoning {v.same:.0%} "
              f"(at least {limit.min_same:.0%}): {'PASS' if v.passed else 'FAIL'}")
    return EXIT_OK if all(v.passed for v in verdicts) else EXIT_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.dry_run:
        print("\n".join(plan(args)))
        return EXIT_OK
    try:
        import torch

        if not torch.cuda.is_available():
            print("gpu_check: no CUDA device visible to torch", file=sys.stderr)
            return EXIT_SETUP
        model = resolve_model(args)
        args.workdir.mkdir(parents=True, exist_ok=True)
        if args.torch_only:
            reference = torch_scores(model, "cpu", "float32", args)
            columns = {f"cuda-{dtype}": torch_scores(model, "cuda", dtype, args) for dtype in ("float32", "bfloat16")}
            return report("cpu-float32", reference, columns, args)
        write_calibration(args.workdir / "calib.jsonl")
        reference = torch_scores(model, "cuda", "bfloat16", args)
        columns = {quant: served_scores(args, model, quant) for quant in args.formats}
        return report("torch-cuda-bfloat16", reference, columns, args)
    except (subprocess.CalledProcessError, RuntimeError, ImportError, OSError) as error:
        print(f"gpu_check: {error}", file=sys.stderr)
        return EXIT_SETUP


if __name__ == "__main__":
    sys.exit(main())
