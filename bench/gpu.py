"""The PyTorch engine on a GPU: decode tokens/s of Qwen2.5-0.5B and -7B shapes against the HBM-bandwidth bound.

Each point runs twice: through ``TorchEngine.generate`` (static batches) and through the in-flight scheduler the
engine model serves with (``InflightScheduler``, all requests submitted at once). The last column, a step's time
over the 1-sequence step's, is the head-of-line floor on this device: a small request's steps run in the batch.

For a GPU machine (H100/H200) whose Python has torch and transformers; no tritonserver, tokenizer or network
needed. Each model is built in-process from its config with random weights (real vocabulary size), saved in bf16
to a temporary folder and loaded with ``TorchEngine`` as a served checkpoint would be. Requests are random token
ids: ``--prompt`` tokens each, ``--steps`` greedy tokens with no end id and no stop word, so every sequence
decodes exactly ``--steps`` tokens. Decode time = time(``--steps`` tokens) - time(1 token, i.e. the prefill).

The bound: each decode step must read every weight once (the input embedding only for the batch's rows), so
    min step time = weight bytes / device-to-device copy bandwidth (2 x bytes copied / time, measured here)
and "of bound" = min step time / measured step time.

    PYTHONPATH=python_backend python bench/gpu.py                    # ~3-5 min on one H100
    PYTHONPATH=python_backend python bench/gpu.py --models 0.5b --batches 1 8
    PYTHONPATH=python_backend python bench/gpu.py --device cpu --tiny --batches 1 2   # CPU smoke (seconds)
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from rank1_triton.engines.base import GenerationRequest
from rank1_triton.engines.inflight import InflightScheduler, SchedulerLimits
from rank1_triton.engines.torch_engine import DTYPES, TorchEngine

SHAPES: dict[str, dict[str, int | bool]] = {
    "0.5b": dict(hidden_size=896, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                 intermediate_size=4864, vocab_size=151936, tie_word_embeddings=True),
    "7b": dict(hidden_size=3584, num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4,
               intermediate_size=18944, vocab_size=152064, tie_word_embeddings=False),
    "tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                 intermediate_size=128, vocab_size=151936, tie_word_embeddings=False),
}
NO_END_ID = -1  # never generated: every sequence runs its full budget


@dataclass(frozen=True)
class Row:
    """One model at one batch size."""

    model: str
    batch: int
    prefill_s: float
    decode_s: float
    decode_tok_s: float
    step_ms: float
    bound_ms: float
    inflight_tok_s: float


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def copy_bandwidth(device: torch.device, megabytes: int) -> float:
    """Bytes/s of a device-to-device copy (read + write counted), best of 5."""
    source = torch.empty(megabytes * 2**20, dtype=torch.uint8, device=device)
    target = torch.empty_like(source)
    target.copy_(source)
    best = float("inf")
    for _ in range(5):
        synchronize(device)
        start = time.perf_counter()
        target.copy_(source)
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * source.numel() / best


def weight_bytes(model: torch.nn.Module) -> int:
    """Bytes a decode step reads: every parameter, less the input embedding when it is not the output head."""
    total = sum(p.numel() * p.element_size() for p in model.parameters())
    if not model.config.tie_word_embeddings:
        embedding = model.get_input_embeddings().weight
        total -= embedding.numel() * embedding.element_size()
    return total


def build_checkpoint(shape: str, dtype: torch.dtype, device: torch.device, folder: Path) -> Path:
    """A random-weight Qwen2 of ``shape`` built on ``device`` and saved to ``folder``."""
    config = Qwen2Config(**SHAPES[shape], max_position_embeddings=4096, rope_theta=1e6)
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = Qwen2ForCausalLM(config)
    finally:
        torch.set_default_dtype(default_dtype)
    model.save_pretrained(str(folder))
    return folder


def timed(run: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Median seconds of ``run`` over ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        run()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_model(shape: str, args: argparse.Namespace, bandwidth: float, deadline: float) -> list[Row]:
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    with tempfile.TemporaryDirectory(prefix=f"rank1-gpu-{shape}-", dir=args.work_dir) as work:
        checkpoint = build_checkpoint(shape, dtype, device, Path(work))
        free_memory(device)  # the built model, before the engine loads its copy
        engine = TorchEngine(checkpoint, dtype=args.dtype, device=args.device, max_batch_size=max(args.batches))
    if engine.model.dtype != dtype:  # an older transformers may ignore `dtype=` in from_pretrained
        print(f"  loaded as {engine.model.dtype}; casting to {dtype}", flush=True)
        engine.model.to(dtype)
    bound_s = weight_bytes(engine.model) / bandwidth
    generator = torch.Generator().manual_seed(0)
    vocab = engine.model.config.vocab_size

    def requests(batch: int, steps: int) -> list[GenerationRequest]:
        ids = torch.randint(0, vocab, (batch, args.prompt), generator=generator).tolist()
        return [GenerationRequest(row, steps, end_id=NO_END_ID, pad_id=0) for row in ids]

    engine.generate(requests(1, 4))  # warm-up: kernels, allocator
    # Every prompt of the largest batch prefilled in one step, as TorchEngine.generate does.
    limits = SchedulerLimits(max_batch_size=max(args.batches), max_num_tokens=max(args.batches) * (args.prompt + 1))
    scheduler = InflightScheduler(engine, limits)
    try:
        return run_points(shape, engine, scheduler, requests, bound_s, args, deadline)
    finally:
        scheduler.close()


def run_points(shape: str, engine: TorchEngine, scheduler: InflightScheduler,
               requests: Callable[[int, int], list[GenerationRequest]], bound_s: float, args: argparse.Namespace,
               deadline: float) -> list[Row]:
    """Every batch size through both schedulers."""
    device = engine.device
    scheduler.generate(requests(1, 4))  # warm-up of the scheduler's thread
    rows = []
    for batch in args.batches:
        if time.monotonic() > deadline:
            print(f"  skipping batch {batch} and above: --max-minutes reached", flush=True)
            break
        full, prefill = requests(batch, args.steps), requests(batch, 1)
        full_s = timed(lambda full=full: engine.generate(full), device, args.repeats)
        prefill_s = timed(lambda prefill=prefill: engine.generate(prefill), device, args.repeats)
        inflight_s = timed(lambda full=full: scheduler.generate(full), device, args.repeats)
        inflight_prefill_s = timed(lambda prefill=prefill: scheduler.generate(prefill), device, args.repeats)
        decode_s = full_s - prefill_s
        step_s = decode_s / (args.steps - 1)
        tokens = batch * (args.steps - 1)
        inflight_decode_s = inflight_s - inflight_prefill_s
        row = Row(shape, batch, prefill_s, decode_s, tokens / decode_s, step_s * 1e3, bound_s * 1e3,
                  tokens / inflight_decode_s if inflight_decode_s > 0 else float("nan"))
        rows.append(row)
        print(f"  {shape} batch {batch:>4}: {row.decode_tok_s:9.0f} decode tok/s ({row.inflight_tok_s:.0f} in-flight), "
              f"{row.step_ms:7.2f} ms/step ({row.bound_ms / row.step_ms:.0%} of the bandwidth bound)", flush=True)
    return rows


def free_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", choices=["0.5b", "7b"], default=["0.5b", "7b"])
    parser.add_argument("--tiny", action="store_true", help="a 2-layer model instead (smoke test on CPU)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32, 128], help="sequences per batch")
    parser.add_argument("--prompt", type=int, default=256, help="prompt tokens per sequence")
    parser.add_argument("--steps", type=int, default=128, help="generated tokens per sequence (≥ 2)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per point (median)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="bfloat16")
    parser.add_argument("--copy-mb", type=int, default=1024, help="buffer size of the bandwidth measurement")
    parser.add_argument("--work-dir", help="where the temporary checkpoints go (default: the system's temp dir)")
    parser.add_argument("--max-minutes", type=float, default=7.0, help="skip remaining points after this long")
    args = parser.parse_args()
    if args.steps < 2:
        parser.error("--steps must be at least 2")

    started = time.monotonic()
    device = torch.device(args.device)
    bandwidth = copy_bandwidth(device, args.copy_mb)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"{name}: device-to-device copy {bandwidth / 1e9:.0f} GB/s", flush=True)
    deadline = started + 60 * args.max_minutes
    rows: list[Row] = []
    for shape in ["tiny"] if args.tiny else args.models:
        if time.monotonic() > deadline:
            print(f"skipping {shape}: --max-minutes reached", flush=True)
            continue
        free_memory(device)  # the previous model's weights and cache
        rows += bench_model(shape, args, bandwidth, deadline)

    print(f"\n{name}, torch {torch.__version__}, {args.dtype}, random weights, prompt {args.prompt} tokens, "
          f"{args.steps} greedy steps, median of {args.repeats}; copy bandwidth {bandwidth / 1e9:.0f} GB/s; "
          f"{time.monotonic() - started:.0f} s in all")
    print("| model | batch | prefill s | decode tok/s | in-flight decode tok/s | ms/step | bound ms/step | of bound "
          "| step / 1-row step |")
    print("|---|---|---|---|---|---|---|---|---|")
    single = {r.model: r.step_ms for r in rows if r.batch == 1}
    for r in rows:
        ratio = f"{r.step_ms / single[r.model]:.2f}" if r.model in single else "n/a"
        print(f"| {r.model} | {r.batch} | {r.prefill_s:.3f} | {r.decode_tok_s:.0f} | {r.inflight_tok_s:.0f} "
              f"| {r.step_ms:.2f} | {r.bound_ms:.2f} | {r.bound_ms / r.step_ms:.0%} | {ratio} |")


if __name__ == "__main__":
    main()
