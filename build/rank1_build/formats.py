"""Quantization formats, KV-cache types, GPU generations and the pinned release's support matrix.

Everything here is data read from TensorRT-LLM 1.2.x (sources in docs/engines.md):
``examples/models/core/qwen/README.md`` (Qwen2/2.5 support matrix: FP16/BF16, FP8, WO, AWQ, SQ, "Ampere+"),
``examples/models/core/llama/README.md`` (LLaMA; Mistral and Mistral NeMo "can be built and run using the same
instructions"), ``docs/source/reference/support-matrix.md`` (FP8 on SM89+ only) and
``examples/quantization/quantize.py`` (``--qformat``, ``--kv_cache_dtype``).
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


def runs_on(quant: Quant, kv_cache: KVCache | None, compute_capability: float) -> bool:
    """Whether the engine format runs on a GPU of that compute capability."""
    if compute_capability < MIN_CC:
        return False
    return not needs_fp8_hardware(quant, kv_cache) or compute_capability >= FP8_MIN_CC
