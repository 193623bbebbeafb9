"""Quantization with NVIDIA ModelOpt: Hugging Face checkpoint -> calibrated model -> TensorRT-LLM checkpoint.

This is the work NVIDIA's ``examples/quantization/quantize.py`` does (``mtq.quantize`` with a calibration
forward loop, then ``modelopt.torch.export.export_tensorrt_llm_checkpoint``), done directly so that it runs
without TensorRT-LLM installed, on CPU or GPU, and calibrates on Rank1's own text. Run it in the quantization
environment (``build/install_quantize_env.sh``: nvidia-modelopt 0.47.0, transformers<5.15).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .formats import KVCache, Quant
from .model import inspect_model
from .validate import architecture_support

# ModelOpt's configs for the formats that need calibration (the same choices quantize.py makes for --qformat).
MODELOPT_CONFIGS: dict[Quant, str] = {
    Quant.FP8: "FP8_DEFAULT_CFG",
    Quant.INT8_SQ: "INT8_SMOOTHQUANT_CFG",
    Quant.INT4_AWQ: "INT4_AWQ_CFG",
}
# KV cache: quantize the K and V outputs of attention (ModelOpt's FP8_KV_CFG pattern, with 8 bits for INT8).
KV_QUANTIZER = "*[kv]_bmm_quantizer"
KV_NUM_BITS: dict[KVCache, Any] = {KVCache.FP8: (4, 3), KVCache.INT8: 8}


@dataclass(frozen=True)
class CalibrationSource:
    """Calibration text (JSONL with a ``text`` field per line), or random token ids (tiny test models only)."""

    texts: Path | None
    size: int
    max_length: int = 512
    batch_size: int = 4
    seed: int = 0


def quantization_config(mtq: Any, quant: Quant, kv_cache: KVCache | None) -> dict:
    """ModelOpt's config for ``quant``, plus the KV-cache quantizer when ``kv_cache`` is set."""
    config = copy.deepcopy(getattr(mtq, MODELOPT_CONFIGS[quant]))
    if kv_cache is not None:
        kv = {"num_bits": KV_NUM_BITS[kv_cache], "axis": None}
        entries = config["quant_cfg"]
        if isinstance(entries, dict):  # ModelOpt < 0.40 keeps patterns in a dict
            entries[KV_QUANTIZER] = kv
        else:
            config["quant_cfg"] = [*entries, {"quantizer_name": KV_QUANTIZER, "cfg": kv}]
    return config


def calibration_batches(source: CalibrationSource, model_dir: Path, vocab_size: int) -> list:
    """Input-id tensors for the calibration forward passes."""
    import torch

    if source.texts is None:
        generator = torch.Generator().manual_seed(source.seed)
        ids = torch.randint(0, vocab_size, (source.size, source.max_length), generator=generator)
        return list(ids.split(source.batch_size))
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    texts = []
    with source.texts.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                texts.append(json.loads(line)["text"])
            if len(texts) == source.size:
                break
    if not texts:
        raise ValueError(f"{source.texts}: no calibration texts")
    return [
        tokenizer(text, return_tensors="pt", truncation=True, max_length=source.max_length,
                  add_special_tokens=False).input_ids
        for text in texts
    ]


def quantize_checkpoint(
    model_dir: Path, output_dir: Path, quant: Quant, kv_cache: KVCache | None, *, tp_size: int,
    calibration: CalibrationSource, device: str = "cpu",
) -> dict:
    """Quantize and export; return the exported ``config.json``'s ``quantization`` and ``mapping`` sections."""
    import modelopt.torch.quantization as mtq
    import torch
    from modelopt.torch.export import export_tensorrt_llm_checkpoint
    from transformers import AutoModelForCausalLM

    spec = inspect_model(model_dir)
    decoder_type = architecture_support(spec).decoder_type
    model = AutoModelForCausalLM.from_pretrained(
        model_dir,
        dtype=torch.float32 if device == "cpu" else torch.bfloat16,
        device_map="auto" if device == "cuda" else None,
    ).eval()
    batches = calibration_batches(calibration, model_dir, spec.vocab_size)

    def forward_loop(calibrated: torch.nn.Module) -> None:
        # lm_head is not quantized, so only the last position's logits are computed.
        for input_ids in batches:
            calibrated(input_ids=input_ids.to(calibrated.device), logits_to_keep=1)

    with torch.no_grad():
        mtq.quantize(model, quantization_config(mtq, quant, kv_cache), forward_loop)
        export_tensorrt_llm_checkpoint(model, decoder_type=decoder_type, dtype=torch.bfloat16,
                                       export_dir=output_dir, inference_tensor_parallel=tp_size)
    exported = json.loads((Path(output_dir) / "config.json").read_text(encoding="utf-8"))
    return {"quantization": exported["quantization"], "mapping": exported["mapping"]}
