"""Model inspection: the shapes of a Hugging Face checkpoint, read from its ``config.json``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import BuildRefusal

_REQUIRED_FIELDS = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "vocab_size",
    "max_position_embeddings",
)


@dataclass(frozen=True)
class ModelSpec:
    """What the build needs to know about a decoder-only checkpoint."""

    name: str
    architecture: str
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    max_position_embeddings: int
    tie_word_embeddings: bool
    quantized: bool = False

    @property
    def attention_bias(self) -> bool:
        """Qwen2 has biases on the q, k and v projections; Llama and Mistral have none."""
        return self.architecture == "Qwen2ForCausalLM"

    def parameter_counts(self) -> ParameterCounts:
        """Parameters by role, with a tied ``lm_head`` counted once (as Hugging Face reports model sizes)."""
        q_out = self.num_heads * self.head_dim
        kv_out = self.num_kv_heads * self.head_dim
        attention = self.hidden_size * (q_out + 2 * kv_out) + q_out * self.hidden_size
        mlp = 3 * self.hidden_size * self.intermediate_size
        bias = (q_out + 2 * kv_out) if self.attention_bias else 0
        norms = 2 * self.hidden_size
        embedding = self.vocab_size * self.hidden_size
        return ParameterCounts(
            linear=self.num_layers * (attention + mlp),
            embedding=embedding,
            lm_head=0 if self.tie_word_embeddings else embedding,
            other=self.num_layers * (bias + norms) + self.hidden_size,
        )


@dataclass(frozen=True)
class ParameterCounts:
    """Parameter counts: ``linear`` are the decoder layers' projections (what weight quantization compresses)."""

    linear: int
    embedding: int
    lm_head: int
    other: int

    @property
    def total(self) -> int:
        """All parameters, as the model card counts them."""
        return self.linear + self.embedding + self.lm_head + self.other


def _positive_int(config: Mapping[str, Any], key: str, name: str) -> int:
    value = config.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise BuildRefusal(f"{name}: config.json field {key!r} must be a positive integer, got {value!r}")
    return value


def spec_from_config(name: str, config: Mapping[str, Any]) -> ModelSpec:
    """Build a :class:`ModelSpec` from the fields of a Hugging Face ``config.json``."""
    architectures = config.get("architectures") or []
    if len(architectures) != 1:
        raise BuildRefusal(f"{name}: config.json must name exactly one architecture, got {architectures!r}")
    missing = [key for key in _REQUIRED_FIELDS if key not in config]
    if missing:
        raise BuildRefusal(f"{name}: config.json lacks {', '.join(missing)}")
    hidden = _positive_int(config, "hidden_size", name)
    heads = _positive_int(config, "num_attention_heads", name)
    kv_heads = _positive_int(config, "num_key_value_heads", name) if "num_key_value_heads" in config else heads
    head_dim = config.get("head_dim") or hidden // heads
    if not config.get("head_dim") and hidden % heads:
        raise BuildRefusal(f"{name}: hidden_size {hidden} is not a multiple of num_attention_heads {heads}")
    if heads % kv_heads:
        raise BuildRefusal(f"{name}: num_attention_heads {heads} is not a multiple of num_key_value_heads {kv_heads}")
    return ModelSpec(
        name=name,
        architecture=architectures[0],
        hidden_size=hidden,
        num_layers=_positive_int(config, "num_hidden_layers", name),
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=int(head_dim),
        intermediate_size=_positive_int(config, "intermediate_size", name),
        vocab_size=_positive_int(config, "vocab_size", name),
        max_position_embeddings=_positive_int(config, "max_position_embeddings", name),
        tie_word_embeddings=bool(config.get("tie_word_embeddings", False)),
        quantized="quantization_config" in config,
    )


def inspect_model(model_dir: Path) -> ModelSpec:
    """Read ``model_dir/config.json``; BuildRefusal if it is missing or not a decoder config we can read."""
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        raise BuildRefusal(f"{model_dir}: no config.json (pass a Hugging Face checkpoint directory)")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise BuildRefusal(f"{path}: not valid JSON ({error})") from None
    return spec_from_config(str(model_dir), config)
