"""Config filling: the values of the Triton model configs for a built engine, and the assembled repository.

The GPU engine model's template is ``model_repository/tensorrt_llm/config.tensorrtllm.pbtxt`` (this project's
own file in the format of NVIDIA's ``inflight_batcher_llm/tensorrt_llm/config.pbtxt``); the entry model's is
``model_repository/rank1/config.pbtxt``. Both take ``${name}`` placeholders (``string.Template``), like NVIDIA's
``triton_backend/tools/fill_template.py``.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from rank1_triton.contract import ENGINE_MODEL_NAME
from rank1_triton.launch.repository import placeholders

from .sizing import EngineShape

ENGINE_TEMPLATE = Path("tensorrt_llm") / "config.tensorrtllm.pbtxt"
SCHEDULER_POLICIES = ("max_utilization", "guaranteed_no_evict")


@dataclass(frozen=True)
class ServingOptions:
    """Serving knobs that do not change the engine (they can be changed by re-assembling the repository).

    ``max_utilization`` is the default scheduler policy: ``guaranteed_no_evict`` reserves KV blocks for the full
    reasoning budget of every admitted request, although most Rank1 reasoning stops far earlier; the cost of
    ``max_utilization`` is that a request may be paused and resumed when the KV cache runs full.
    The queue is bounded (one ``rank1`` request fans out to one engine request per document; overload is
    rejected with UNAVAILABLE), requests wait in it without a deadline unless ``queue_timeout_microseconds`` is
    set, and there is no queue delay: the executor batches in flight.
    """

    max_documents: int = 256
    rank1_instance_count: int = 8  # concurrent rerank requests (one execute() per instance at a time)
    max_queue_size: int = 4096
    max_queue_delay_microseconds: int = 0
    queue_timeout_microseconds: int = 0
    batch_scheduler_policy: str = "max_utilization"
    kv_cache_free_gpu_mem_fraction: float = 0.9

    def __post_init__(self) -> None:
        if self.batch_scheduler_policy not in SCHEDULER_POLICIES:
            raise ValueError(f"batch_scheduler_policy must be one of {SCHEDULER_POLICIES}")
        if not 0.0 < self.kv_cache_free_gpu_mem_fraction <= 1.0:
            raise ValueError("kv_cache_free_gpu_mem_fraction must be in (0, 1]")
        if min(self.max_documents, self.rank1_instance_count) < 1:
            raise ValueError("max_documents and rank1_instance_count must be 1 or more")
        if min(self.max_queue_size, self.max_queue_delay_microseconds, self.queue_timeout_microseconds) < 0:
            raise ValueError("max_queue_size, max_queue_delay_microseconds and queue_timeout_microseconds must be "
                             "0 or more")

    def to_dict(self) -> dict[str, object]:
        """The options as JSON-able values (for build.json)."""
        return asdict(self)


def model_repository_dir() -> Path:
    """The repository templates, where rank1_triton's assembler finds them.

    That is ``$RANK1_TRITON_TEMPLATES``, the source checkout's ``model_repository/``, or the image's copy.
    """
    from rank1_triton.launch.repository import templates_dir

    return templates_dir()


def repository_values(
    *, engine_dir: Path, tokenizer_dir: Path, shape: EngineShape, options: ServingOptions
) -> dict[str, str]:
    """Every ``${placeholder}`` of the entry model's and the GPU engine model's configs."""
    return {
        # model_repository/rank1/config.pbtxt
        "tokenizer_dir": str(tokenizer_dir),
        "engine_model_name": ENGINE_MODEL_NAME,
        "max_context_tokens": str(shape.max_seq_len),
        "max_documents": str(options.max_documents),
        "default_max_reasoning_tokens": str(shape.max_reasoning_tokens),
        "rank1_instance_count": str(options.rank1_instance_count),
        # model_repository/tensorrt_llm/config.tensorrtllm.pbtxt (max_context_tokens too)
        "engine_dir": str(engine_dir),
        "triton_max_batch_size": str(shape.max_batch_size),
        "max_queue_delay_microseconds": str(options.max_queue_delay_microseconds),
        "max_queue_size": str(options.max_queue_size),
        "queue_timeout_microseconds": str(options.queue_timeout_microseconds),
        "batch_scheduler_policy": options.batch_scheduler_policy,
        "kv_cache_free_gpu_mem_fraction": str(options.kv_cache_free_gpu_mem_fraction),
    }


def render_engine_config(values: Mapping[str, str]) -> str:
    """The GPU engine model's config with every placeholder filled; ValueError names any missing value."""
    text = (model_repository_dir() / ENGINE_TEMPLATE).read_text(encoding="utf-8")
    missing = sorted(placeholders(text) - set(values))
    if missing:
        raise ValueError(f"{ENGINE_TEMPLATE}: no value for {', '.join(missing)}")
    return string.Template(text).substitute(values)


def write_repository(out_dir: Path, values: Mapping[str, str]) -> Path:
    """Assemble the Triton repository for the TensorRT-LLM engine (rank1_triton's assembler does the copying)."""
    from rank1_triton.launch.repository import assemble_repository

    return assemble_repository(out_dir, engine="tensorrt-llm", values=values)
