"""The published Rank1 checkpoints, for planning (``--dry-run``) without downloading them.

The fields are those of each base model's ``config.json`` (Rank1 fine-tunes keep the base shapes: the README of
``orionw/rank1`` lists the bases; ``train_configs/*.yaml`` name them). A real build always downloads the
checkpoint first and plans from its own ``config.json``, so this table only feeds dry runs and docs/engines.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import BuildRefusal
from .model import ModelSpec, spec_from_config


def _qwen25(hidden: int, layers: int, heads: int, kv_heads: int, intermediate: int, vocab: int, tied: bool) -> dict:
    return {
        "architectures": ["Qwen2ForCausalLM"],
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "intermediate_size": intermediate,
        "vocab_size": vocab,
        "max_position_embeddings": 32768,
        "tie_word_embeddings": tied,
    }


RANK1_CHECKPOINTS: Mapping[str, Mapping[str, Any]] = {
    "jhu-clsp/rank1-0.5b": _qwen25(896, 24, 14, 2, 4864, 151936, tied=True),
    "jhu-clsp/rank1-1.5b": _qwen25(1536, 28, 12, 2, 8960, 151936, tied=True),
    "jhu-clsp/rank1-3b": _qwen25(2048, 36, 16, 2, 11008, 151936, tied=True),
    "jhu-clsp/rank1-7b": _qwen25(3584, 28, 28, 4, 18944, 152064, tied=False),
    "jhu-clsp/rank1-14b": _qwen25(5120, 48, 40, 8, 13824, 152064, tied=False),
    "jhu-clsp/rank1-32b": _qwen25(5120, 64, 40, 8, 27648, 152064, tied=False),
    # Mistral-Small-24B-Base-2501: head_dim 128 is set explicitly (hidden_size / heads would be 160).
    "jhu-clsp/rank1-mistral-2501-24b": {
        "architectures": ["MistralForCausalLM"],
        "hidden_size": 5120,
        "num_hidden_layers": 40,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "intermediate_size": 32768,
        "vocab_size": 131072,
        "max_position_embeddings": 32768,
        "tie_word_embeddings": False,
    },
    # The README says Llama 3.1 8B (max_position_embeddings 131072); train_configs/train_lora_llama.yaml names
    # Meta-Llama-3-8B (8192). A real build reads the downloaded config.json and refuses if the engine would not fit.
    "jhu-clsp/rank1-llama3-8b": {
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": 4096,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "intermediate_size": 14336,
        "vocab_size": 128256,
        "max_position_embeddings": 131072,
        "tie_word_embeddings": False,
    },
}


def catalog_spec(model_id: str) -> ModelSpec:
    """The spec of a published Rank1 checkpoint; BuildRefusal for any other hub id."""
    config = RANK1_CHECKPOINTS.get(model_id.lower())
    if config is None:
        known = ", ".join(RANK1_CHECKPOINTS)
        raise BuildRefusal(
            f"{model_id}: not a published Rank1 checkpoint this tool knows ({known}); "
            "download it and pass its directory to --model"
        )
    return spec_from_config(model_id, config)
