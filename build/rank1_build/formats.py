"""Quantization formats, KV-cache types, GPU generations and the pinned release's support matrix.

Everything here is data read from TensorRT-LLM 1.2.x (sources in docs/engines.md):
``examples/models/core/qwen/README.md`` (Qwen2/2.5 support matrix: FP16/BF16, FP8, WO, AWQ, SQ, "Ampere+"),
``examples/models/core/llama/README.md`` (LLaMA; Mistral and Mistral NeMo "can be built and run using the same
instructions"), ``docs/source/reference/support-matrix.md`` (FP8 on SM89+ only) and
``examples/quantization/quantize.py`` (``--qformat``, ``--kv_cache_dtype``), and what ``trtllm-build`` does with
a format (``tensorrt_llm/builder.py`` ``build()``, read at NVIDIA/TensorRT-LLM commit 14e801da, the stored version).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Quant(str, Enum):
    """Weight (and activation) format of the engine."""

    BF16 = "bf16"
    FP8 = "fp8"
    INT8_SQ = "int8-sq"
    INT8_WO = "int8-wo"
    INT4_AWQ = "int4-awq"


class KVCache(str, Enum):
    """Quantized KV-cache type; ``None`` elsewhere means the KV cache stays in the model dtype (bfloat16)."""

    FP8 = "fp8"
    INT8 = "int8"


@dataclass(frozen=True)
class FormatInfo:
    """One quantization format: bytes per quantized weight and the KV caches it is documented with."""

    label: str
    weight_bytes: float
    kv_caches: frozenset[KVCache | None]
    default_kv_cache: KVCache | None
    calibrated: bool


AWQ_GROUP_SIZE = 128

_NONE_OR_INT8 = frozenset({None, KVCache.INT8})
FORMATS: dict[Quant, FormatInfo] = {
    Quant.BF16: FormatInfo("BF16", 2.0, _NONE_OR_INT8, None, calibrated=False),
    Quant.FP8: FormatInfo("FP8 W8A8", 1.0, frozenset({KVCache.FP8}), KVCache.FP8, calibrated=True),
    Quant.INT8_SQ: FormatInfo("INT8 SmoothQuant W8A8", 1.0, _NONE_OR_INT8, None, calibrated=True),
    Quant.INT8_WO: FormatInfo("INT8 weight-only W8A16", 1.0, _NONE_OR_INT8, None, calibrated=False),
    Quant.INT4_AWQ: FormatInfo("INT4 AWQ W4A16", 0.5, _NONE_OR_INT8 | {KVCache.FP8}, None, calibrated=True),
}

KV_BYTES: dict[KVCache | None, int] = {None: 2, KVCache.FP8: 1, KVCache.INT8: 1}

FP8_MIN_CC = 8.9
MIN_CC = 8.0
# tensorrt_llm/builder.py build(): `if get_sm_version() >= 100 and get_sm_version() < 120:` raises for INT8/INT4
# weight-only, the INT8 KV cache and SmoothQuant (data-center Blackwell; SM 12.x is not covered by that check).
SM100_RANGE = (10.0, 12.0)


@dataclass(frozen=True)
class ArchitectureSupport:
    """How the pinned release builds one Hugging Face architecture in the TensorRT engine flow."""

    example_dir: str
    decoder_type: str
    formats: frozenset[Quant]
    source: str


_ALL_FORMATS = frozenset(Quant)
SUPPORTED_ARCHITECTURES: dict[str, ArchitectureSupport] = {
    "Qwen2ForCausalLM": ArchitectureSupport("models/core/qwen", "qwen", _ALL_FORMATS,
                                            "examples/models/core/qwen/README.md"),
    "LlamaForCausalLM": ArchitectureSupport("models/core/llama", "llama", _ALL_FORMATS,
                                            "examples/models/core/llama/README.md"),
    "MistralForCausalLM": ArchitectureSupport("models/core/llama", "llama", _ALL_FORMATS,
                                              "examples/models/core/llama/README.md (Mistral v0.1, Mistral NeMo)"),
}


@dataclass(frozen=True)
class GpuGeneration:
    """A GPU generation by CUDA compute capability."""

    compute_capability: float
    name: str
    examples: str


GPU_GENERATIONS: tuple[GpuGeneration, ...] = (
    GpuGeneration(8.0, "Ampere", "A100, A30"),
    GpuGeneration(8.6, "Ampere", "A10, A40, RTX A6000"),
    GpuGeneration(8.9, "Ada", "L4, L40S, RTX 6000 Ada"),
    GpuGeneration(9.0, "Hopper", "H100, H200"),
    GpuGeneration(10.0, "Blackwell", "B200, GB200"),
)


def needs_fp8_hardware(quant: Quant, kv_cache: KVCache | None) -> bool:
    """FP8 weights or an FP8 KV cache need FP8 tensor cores (compute capability 8.9 or newer)."""
    return quant is Quant.FP8 or kv_cache is KVCache.FP8


def sm100_error(quant: Quant, kv_cache: KVCache | None) -> str | None:
    """The RuntimeError ``trtllm-build`` raises for this format on SM 10.x (tensorrt_llm/builder.py build())."""
    if quant in (Quant.INT8_WO, Quant.INT4_AWQ) or kv_cache is KVCache.INT8:
        return "INT8/INT4 quantization is not supported on SM>=100."
    if quant is Quant.INT8_SQ:
        return "SmoothQuant is not supported on SM>=100."
    return None


def paged_context_fmha_lost(quant: Quant, kv_cache: KVCache | None) -> str | None:
    """Why ``trtllm-build`` turns ``--use_paged_context_fmha enable`` off for this format (its warning), or None.

    tensorrt_llm/builder.py build(): with weights outside FP8/W4A8_AWQ/NVFP4, an FP8 KV cache drops paged context
    FMHA ("FP8 Paged Context FMHA is disabled because FP8 context FMHA is disabled."); an INT8 KV cache always does
    ("Paged Context FMHA is disabled because it doesn't work with int8 kv cache currently.").
    """
    if kv_cache is KVCache.INT8:
        return "Paged Context FMHA is disabled because it doesn't work with int8 kv cache currently."
    if kv_cache is KVCache.FP8 and quant is not Quant.FP8:
        return "FP8 Paged Context FMHA is disabled because FP8 context FMHA is disabled."
    return None


def runs_on(quant: Quant, kv_cache: KVCache | None, compute_capability: float) -> bool:
    """Whether the engine format builds and runs on a GPU of that compute capability."""
    if compute_capability < MIN_CC:
        return False
    if SM100_RANGE[0] <= compute_capability < SM100_RANGE[1] and sm100_error(quant, kv_cache):
        return False
    return not needs_fp8_hardware(quant, kv_cache) or compute_capability >= FP8_MIN_CC
