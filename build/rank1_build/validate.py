"""Refusals: builds the pinned release cannot produce, or that the serving design cannot use."""

from __future__ import annotations

import shutil
import subprocess

from rank1_triton.contract import ANSWER_RESERVE_TOKENS

from .errors import BuildRefusal
from .formats import (
    AWQ_GROUP_SIZE,
    FORMATS,
    FP8_MIN_CC,
    MIN_CC,
    SM100_RANGE,
    SUPPORTED_ARCHITECTURES,
    ArchitectureSupport,
    KVCache,
    Quant,
    needs_fp8_hardware,
    paged_context_fmha_lost,
    sm100_error,
)
from .model import ModelSpec
from .pins import TRTLLM_VERSION
from .sizing import TOKENS_PER_BLOCK, EngineShape

TP_REPORT_WARNING = (
    "tensor parallelism shards the reasoning model across GPUs; a third party reports that TP-sharded "
    "rank1-32b gave corrupted relevance scores. Prefer one GPU per replica (FP8 or INT4-AWQ fit 32B on one "
    "GPU) and run `python -m rank1_build compare` against a single-GPU build before serving this engine."
)


def architecture_support(spec: ModelSpec) -> ArchitectureSupport:
    """The example folder and formats of the spec's architecture; BuildRefusal if the release has none."""
    support = SUPPORTED_ARCHITECTURES.get(spec.architecture)
    if support is None:
        known = ", ".join(SUPPORTED_ARCHITECTURES)
        raise BuildRefusal(
            f"{spec.name}: architecture {spec.architecture} has no TensorRT engine recipe for Rank1 in "
            f"TensorRT-LLM {TRTLLM_VERSION} (supported: {known})"
        )
    return support


def check_format(spec: ModelSpec, quant: Quant, kv_cache: KVCache | None) -> None:
    """The format must be in the architecture's support matrix, with a documented KV-cache pairing."""
    support = architecture_support(spec)
    if quant not in support.formats:
        raise BuildRefusal(
            f"{spec.name}: {spec.architecture} does not support {quant.value} in TensorRT-LLM {TRTLLM_VERSION} "
            f"({support.source})"
        )
    if spec.quantized:
        raise BuildRefusal(
            f"{spec.name}: the checkpoint is already quantized (config.json has quantization_config); "
            "start from the BF16 checkpoint, e.g. jhu-clsp/rank1-7b rather than jhu-clsp/rank1-7b-awq"
        )
    info = FORMATS[quant]
    if kv_cache not in info.kv_caches:
        allowed = ", ".join(sorted(kv.value if kv else "bf16 (default)" for kv in info.kv_caches))
        shown = kv_cache.value if kv_cache else "bf16"
        raise BuildRefusal(
            f"--quant {quant.value} with a {shown} KV cache is not a documented recipe of TensorRT-LLM "
            f"{TRTLLM_VERSION}; KV caches for {quant.value}: {allowed}"
        )


def check_gpu(quant: Quant, kv_cache: KVCache | None, compute_capability: float) -> None:
    """FP8 needs compute capability 8.9+ (Ada, Hopper, Blackwell); every Rank1 engine needs BF16 (Ampere+)."""
    if compute_capability < MIN_CC:
        raise BuildRefusal(
            f"GPU compute capability {compute_capability}: Rank1 engines run in bfloat16, which TensorRT-LLM "
            f"supports from Ampere (8.0) on"
        )
    if needs_fp8_hardware(quant, kv_cache) and compute_capability < FP8_MIN_CC:
        what = "FP8 weights" if quant is Quant.FP8 else "an FP8 KV cache"
        raise BuildRefusal(
            f"{what} need compute capability {FP8_MIN_CC} or newer (Ada, Hopper, Blackwell); this GPU is "
            f"{compute_capability}. Use --quant int4-awq, int8-sq or int8-wo (with --kv-cache int8) on Ampere"
        )


def check_blackwell(quant: Quant, kv_cache: KVCache | None, compute_capability: float) -> None:
    """trtllm-build raises for INT8/INT4 weights, the INT8 KV cache and SmoothQuant on SM 10.x."""
    error = sm100_error(quant, kv_cache)
    if error and SM100_RANGE[0] <= compute_capability < SM100_RANGE[1]:
        what = f"--quant {quant.value}" + (f" --kv-cache {kv_cache.value}" if kv_cache else "")
        raise BuildRefusal(
            f"{what} on compute capability {compute_capability}: trtllm-build stops with \"{error}\" "
            "(tensorrt_llm/builder.py build(), for SM 100 to 119, the GPU it builds on). On Blackwell use "
            "--quant fp8 (FP8 weights and KV cache) or --quant bf16"
        )


def check_kv_reuse(quant: Quant, kv_cache: KVCache | None, shape: EngineShape, kv_cache_reuse: bool) -> None:
    """Refuse formats whose engines lose paged context FMHA unless KV reuse is opted out of, and then check the
    prefill limit that chunked context no longer lifts."""
    lost = paged_context_fmha_lost(quant, kv_cache)
    if lost is None:
        return
    what = f"--quant {quant.value} --kv-cache {kv_cache.value if kv_cache else 'bf16'}"
    if kv_cache_reuse:
        fp8 = " or --quant fp8 (FP8 weights keep paged context FMHA with their FP8 KV cache on SM 89+)" if (
            kv_cache is KVCache.FP8) else ""
        raise BuildRefusal(
            f"{what}: trtllm-build turns paged context FMHA off (\"{lost}\", tensorrt_llm/builder.py build()), "
            "and without it the executor drops KV-cache block reuse (TrtGptModelInflightBatching::"
            "fixExecutorConfig) and chunked context (executorImpl.cpp fixExecutorConfig): every answer step would "
            f"prefill the whole prompt + reasoning again. Use the BF16 KV cache (omit --kv-cache){fp8}; or pass "
            "--no-kv-cache-reuse to build it anyway and pay that prefill (docs/engines.md, \"Refusals\")"
        )
    if shape.max_num_tokens < shape.max_input_len:
        needed = -(-shape.max_input_len // TOKENS_PER_BLOCK) * TOKENS_PER_BLOCK
        raise BuildRefusal(
            f"{what} --no-kv-cache-reuse: without chunked context the executor fits each prefill into "
            "--max_num_tokens (TrtGptModelInflightBatching constructor: \"Max context size is limited by "
            "`max_num_tokens` for chunked-context or context-FMHA\"), and the answer step's input is up to "
            f"{shape.max_input_len} tokens: pass --max-num-tokens {needed} or lower --max-context-tokens"
        )


def check_tensor_parallel(spec: ModelSpec, quant: Quant, tp_size: int) -> None:
    """TP must split attention heads and KV heads evenly; AWQ also needs whole 128-wide groups on every rank."""
    if tp_size < 1:
        raise BuildRefusal(f"--tp-size must be 1 or more, got {tp_size}")
    for count, what in ((spec.num_heads, "attention heads"), (spec.num_kv_heads, "KV heads")):
        if count % tp_size:
            raise BuildRefusal(f"--tp-size {tp_size} does not divide the {count} {what} of {spec.name}")
    if quant is Quant.INT4_AWQ:
        input_widths = {
            "attention output (heads x head_dim)": spec.num_heads * spec.head_dim // tp_size,
            "MLP down projection (intermediate_size)": spec.intermediate_size // tp_size,
            "hidden_size": spec.hidden_size,
        }
        for what, width in input_widths.items():
            if width % AWQ_GROUP_SIZE:
                raise BuildRefusal(
                    f"--quant int4-awq --tp-size {tp_size}: the {what} input width per rank is {width}, not a "
                    f"multiple of the AWQ group size {AWQ_GROUP_SIZE} (the 'Y*' AWQ+TP gaps of the Qwen README)"
                )


def check_shape(spec: ModelSpec, shape: EngineShape) -> list[str]:
    """The engine's context must fit the model's positions and the reasoning budget; returns warnings."""
    if shape.max_reasoning_tokens < 1:
        raise BuildRefusal("--max-reasoning-tokens must be 1 or more")
    if shape.max_prompt_tokens < 1:
        raise BuildRefusal(
            f"--max-context-tokens {shape.max_context_tokens} leaves no prompt room next to a reasoning budget of "
            f"{shape.max_reasoning_tokens} and the {ANSWER_RESERVE_TOKENS}-token answer reserve"
        )
    if shape.max_seq_len > spec.max_position_embeddings:
        raise BuildRefusal(
            f"--max-context-tokens {shape.max_seq_len} exceeds max_position_embeddings "
            f"{spec.max_position_embeddings} of {spec.name}; lower it (and --max-reasoning-tokens)"
        )
    if shape.max_batch_size < 1:
        raise BuildRefusal(f"--max-batch-size must be 1 or more, got {shape.max_batch_size}")
    if shape.max_num_tokens < shape.max_batch_size or shape.max_num_tokens % TOKENS_PER_BLOCK:
        raise BuildRefusal(
            f"--max-num-tokens {shape.max_num_tokens} must be at least --max-batch-size {shape.max_batch_size} "
            f"(one decode token per sequence) and a multiple of the KV block size {TOKENS_PER_BLOCK}"
        )
    if shape.max_reasoning_tokens > shape.max_context_tokens // 2:
        return [
            f"the rank1 entry model caps its default reasoning budget at half the context "
            f"({shape.max_context_tokens // 2} tokens), below --max-reasoning-tokens {shape.max_reasoning_tokens}"
        ]
    return []


def validate(
    spec: ModelSpec, quant: Quant, kv_cache: KVCache | None, tp_size: int, compute_capability: float,
    shape: EngineShape, *, kv_cache_reuse: bool = True,
) -> list[str]:
    """Run every check; raise BuildRefusal on the first failure, else return warnings to print."""
    check_format(spec, quant, kv_cache)
    check_gpu(quant, kv_cache, compute_capability)
    check_blackwell(quant, kv_cache, compute_capability)
    check_tensor_parallel(spec, quant, tp_size)
    warnings = check_shape(spec, shape)
    check_kv_reuse(quant, kv_cache, shape, kv_cache_reuse)
    if not kv_cache_reuse:
        warnings.append("--no-kv-cache-reuse: every answer step prefills prompt + reasoning again (no block reuse)")
    return [*warnings, TP_REPORT_WARNING] if tp_size > 1 else warnings


def detect_compute_capability() -> float | None:
    """The compute capability of GPU 0 from ``nvidia-smi``, or None where there is no NVIDIA GPU."""
    if shutil.which("nvidia-smi") is None:
        return None
    result = subprocess.run(
        ["nvidia-smi", "--query-gpu=compute_cap", "--format=csv,noheader"],
        capture_output=True, text=True, check=False,
    )
    lines = result.stdout.split()
    if result.returncode != 0 or not lines:
        return None
    return float(lines[0])
