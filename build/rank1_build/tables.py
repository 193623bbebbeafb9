"""The tables of docs/engines.md (``python -m rank1_build tables``): formats x GPU generations, memory per size."""

from __future__ import annotations

from .catalog import RANK1_CHECKPOINTS, catalog_spec
from .formats import FORMATS, GPU_GENERATIONS, KVCache, Quant, paged_context_fmha_lost, runs_on
from .sizing import GIB, EngineShape, kv_bytes_per_token, weight_bytes

DEFAULT_SHAPE = EngineShape()
_ARCH_LABEL = {"Qwen2ForCausalLM": "Qwen2.5", "MistralForCausalLM": "Mistral-Small-2501",
               "LlamaForCausalLM": "Llama 3.1"}


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _support(quant: Quant, kv: KVCache | None, compute_capability: float) -> str:
    if not runs_on(quant, kv, compute_capability):
        return "no"
    return "no KV reuse" if paged_context_fmha_lost(quant, kv) else "yes"


def gpu_support_table() -> str:
    """Which engine formats (weights + KV cache) build and serve on which GPU generation.

    "no KV reuse": trtllm-build drops paged context FMHA, so ``build`` refuses it unless ``--no-kv-cache-reuse``.
    """
    header = ["Weights", "KV cache"] + [f"{g.name} {g.compute_capability} ({g.examples})" for g in GPU_GENERATIONS]
    lines = [_row(header), _row(["---"] * len(header))]
    for quant, info in FORMATS.items():
        kv_options = sorted(info.kv_caches, key=lambda kv: "" if kv is None else kv.value)
        for kv in kv_options:
            cells = [info.label, "BF16" if kv is None else kv.value.upper()]
            cells += [_support(quant, kv, g.compute_capability) for g in GPU_GENERATIONS]
            lines.append(_row(cells))
    return "\n".join(lines)


def memory_table(shape: EngineShape = DEFAULT_SHAPE) -> str:
    """Weights and KV cache per GPU (TP 1) for every published Rank1 size, in GiB (KV per token in KiB)."""
    header = ["Checkpoint", "Base", "Params", "Layers x KV heads x head dim", "BF16", "FP8 / INT8", "INT4 AWQ",
              "KV/token BF16", "KV/token FP8 or INT8", f"KV of one {shape.max_seq_len}-token judgment BF16 / 8-bit"]
    lines = [_row(header), _row(["---"] * len(header))]
    for model_id in RANK1_CHECKPOINTS:
        spec = catalog_spec(model_id)
        kv16, kv8 = kv_bytes_per_token(spec, None), kv_bytes_per_token(spec, KVCache.FP8)
        lines.append(_row([
            model_id.split("/", 1)[1],
            _ARCH_LABEL[spec.architecture],
            f"{spec.parameter_counts().total / 1e9:.2f} B",
            f"{spec.num_layers} x {spec.num_kv_heads} x {spec.head_dim}",
            f"{weight_bytes(spec, Quant.BF16) / GIB:.1f}",
            f"{weight_bytes(spec, Quant.FP8) / GIB:.1f}",
            f"{weight_bytes(spec, Quant.INT4_AWQ) / GIB:.1f}",
            f"{kv16 / 1024:.0f}",
            f"{kv8 / 1024:.0f}",
            f"{kv16 * shape.max_seq_len / GIB:.2f} / {kv8 * shape.max_seq_len / GIB:.2f}",
        ]))
    return "\n".join(lines)


def render_tables() -> str:
    """Both tables, as they appear in docs/engines.md."""
    return f"{gpu_support_table()}\n\n{memory_table()}\n"
