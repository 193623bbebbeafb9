"""Serving options of a build, the entry model's template values, and the repository assembly.

The repository has two models. ``rank1`` (the entry model) is this project's template,
``model_repository/rank1/config.pbtxt``, filled by rank1_triton's assembler with :func:`entry_values`.
``tensorrt_llm`` (the engine model) is, for TensorRT-LLM engines, NVIDIA's own template filled by NVIDIA's
``fill_template.py`` inside the container (:mod:`rank1_build.engine_config`); for ``--engine torch`` it is the
project's Python-backend model ``model_repository/tensorrt_llm/config.pbtxt`` (values from
``rank1_triton.launch.values``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from rank1_triton.contract import DEFAULT_ENGINE_QUEUE_SIZE, DEFAULT_MAX_DOCUMENTS, ENGINE_MODEL_NAME

from .sizing import EngineShape

SCHEDULER_POLICIES = ("max_utilization", "guaranteed_no_evict")


@dataclass(frozen=True)
class ServingOptions:
    """Serving knobs that do not change the engine (they can be changed by re-assembling the repository).

    ``max_utilization`` is the default scheduler policy: ``guaranteed_no_evict`` reserves KV blocks for the full
    reasoning budget of every admitted request, although most Rank1 reasoning stops far earlier; the cost of
    ``max_utilization`` is that a request may be paused and resumed when the KV cache runs full.
    The queue is bounded (one ``rank1`` request fans out to one engine request per document), and there is no
    queue delay: the executor batches in flight. ``queue_timeout_microseconds`` applies to the PyTorch engine only
    (NVIDIA's template has no field for it). ``enable_kv_cache_reuse`` False is the documented opt-out for formats
    whose engines lose paged context FMHA (docs/engines.md, "Refusals").
    """

    max_documents: int = DEFAULT_MAX_DOCUMENTS
    rank1_instance_count: int = 8  # concurrent rerank requests (one execute() per instance at a time)
    max_queue_size: int = DEFAULT_ENGINE_QUEUE_SIZE
    max_queue_delay_microseconds: int = 0
    queue_timeout_microseconds: int = 0
    batch_scheduler_policy: str = "max_utilization"
    kv_cache_free_gpu_mem_fraction: float = 0.9
    enable_kv_cache_reuse: bool = True

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


def entry_values(*, tokenizer_dir: str, shape: EngineShape, options: ServingOptions) -> dict[str, str]:
    """Every ``${placeholder}`` of the entry model's template (``model_repository/rank1/config.pbtxt``)."""
    return {
        "tokenizer_dir": tokenizer_dir,
        "engine_model_name": ENGINE_MODEL_NAME,
        "max_documents": str(options.max_documents),
        "default_max_reasoning_tokens": str(shape.max_reasoning_tokens),
        "rank1_instance_count": str(options.rank1_instance_count),
    }


def write_repository(out_dir: Path, values: Mapping[str, str], engine_config: str | None = None) -> Path:
    """Assemble the Triton repository for a TensorRT-LLM engine (rank1_triton's assembler does the copying).

    ``engine_config`` is the filled ``tensorrt_llm/config.pbtxt``; None leaves that file to the fill step.
    """
    from rank1_triton.launch.repository import assemble_repository

    return assemble_repository(out_dir, engine="tensorrt-llm", values=values, engine_config=engine_config)
