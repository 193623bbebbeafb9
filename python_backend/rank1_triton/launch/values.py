"""Template values for a repository served by the PyTorch engine."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..contract import (
    DEFAULT_ENGINE_QUEUE_SIZE,
    DEFAULT_MAX_CONTEXT_TOKENS,
    DEFAULT_MAX_DOCUMENTS,
    DEFAULT_MAX_NUM_TOKENS,
    DEFAULT_MAX_REASONING_TOKENS,
    ENGINE_MODEL_NAME,
    SCHEDULERS,
)

# With the static scheduler a request's documents reach the dynamic batcher spread over 10-30 ms (bench/README.md):
# this delay gathers them into one engine batch. The in-flight scheduler needs no delay.
STATIC_BATCHING_DELAY_US = 40000


@dataclass(frozen=True)
class TorchServingOptions:
    """Knobs of the CPU/CUDA repository (defaults fit a 2-core machine)."""

    dtype: str = "float32"
    device: str = "cpu"
    num_threads: int = 1
    entry_instances: int = 4  # rank1 model instances: how many rerank requests run at once
    max_batch_size: int = 64  # sequences decoding together
    max_queue_size: int = DEFAULT_ENGINE_QUEUE_SIZE
    # The static scheduler's dynamic batcher (the in-flight scheduler has none): its delay (STATIC_BATCHING_DELAY_US
    # suits it) and the queue timeout of its requests.
    max_queue_delay_microseconds: int = 0
    queue_timeout_microseconds: int = 0
    scheduler: str = SCHEDULERS[0]  # "inflight" or "static"
    max_num_tokens: int = DEFAULT_MAX_NUM_TOKENS  # tokens one in-flight step feeds through the model
    max_documents: int = DEFAULT_MAX_DOCUMENTS
    default_max_reasoning_tokens: int = DEFAULT_MAX_REASONING_TOKENS
    max_context_tokens: int | None = None
    # False: the engine model behaves as TensorRT-LLM's (no fused answer step), so the entry model sends each
    # natural answer as its own one-token request with return_generation_logits (tested on CPU in both modes).
    fused_answer_step: bool = True

    def __post_init__(self) -> None:
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"scheduler must be one of {SCHEDULERS}, got {self.scheduler!r}")
        if self.scheduler != "static" and (self.max_queue_delay_microseconds or self.queue_timeout_microseconds):
            raise ValueError("max_queue_delay_microseconds and queue_timeout_microseconds configure the static "
                             "scheduler's dynamic batcher; the in-flight scheduler has none (leave them 0)")
        if self.max_num_tokens <= self.max_batch_size:
            raise ValueError(f"max_num_tokens ({self.max_num_tokens}) must exceed max_batch_size "
                             f"({self.max_batch_size})")


def model_context(model_dir: Path) -> int:
    """The checkpoint's ``max_position_embeddings`` (from config.json)."""
    config = json.loads((model_dir / "config.json").read_text())
    return int(config.get("max_position_embeddings", DEFAULT_MAX_CONTEXT_TOKENS))


def eos_id(model_dir: Path) -> int:
    """The end-of-sequence id of the checkpoint's tokenizer."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    if tokenizer.eos_token_id is None:
        raise ValueError(f"{model_dir}: the tokenizer defines no eos token")
    return int(tokenizer.eos_token_id)


def dynamic_batching(options: TorchServingOptions) -> str:
    """The engine model's ``dynamic_batching`` block: Triton's batcher for the static scheduler only."""
    if options.scheduler != "static":
        return "# (in-flight scheduler: no dynamic batching)"
    return (
        "dynamic_batching {\n"
        f"  max_queue_delay_microseconds: {options.max_queue_delay_microseconds}\n"
        "  default_queue_policy {\n"
        f"    max_queue_size: {options.max_queue_size}\n"
        "    timeout_action: REJECT\n"
        f"    default_timeout_microseconds: {options.queue_timeout_microseconds}\n"
        "    allow_timeout_override: true\n"
        "  }\n"
        "}"
    )


def torch_repository_values(
    model_dir: Path,
    options: TorchServingOptions,
    *,
    serve_model_dir: str | None = None,
    serve_tokenizer_dir: str | None = None,
) -> dict[str, str]:
    """Every ``${key}`` of the templates for the PyTorch engine.

    ``model_dir`` is read here (context length, eos id); the configs name ``serve_model_dir`` and
    ``serve_tokenizer_dir`` (default: ``model_dir``), the paths the server will see (``rank1_build build --engine
    torch`` writes ``SERVE_ROOT/engine`` and ``SERVE_ROOT/tokenizer``).
    """
    context = min(options.max_context_tokens or DEFAULT_MAX_CONTEXT_TOKENS, model_context(model_dir))
    values = {
        "tokenizer_dir": serve_tokenizer_dir or str(model_dir),
        "engine_model_name": ENGINE_MODEL_NAME,
        "max_documents": options.max_documents,
        "default_max_reasoning_tokens": options.default_max_reasoning_tokens,
        "rank1_instance_count": options.entry_instances,
        "triton_max_batch_size": options.max_batch_size,
        "dynamic_batching": dynamic_batching(options),
        "max_queue_size": options.max_queue_size,
        "max_context_tokens": context,
        "model_dir": serve_model_dir or str(model_dir),
        "dtype": options.dtype,
        "device": options.device,
        "num_threads": options.num_threads,
        "default_end_id": eos_id(model_dir),
        "fused_answer_step": str(options.fused_answer_step).lower(),
        "scheduler": options.scheduler,
        "max_num_tokens": options.max_num_tokens,
    }
    return {key: str(value) for key, value in values.items()}
