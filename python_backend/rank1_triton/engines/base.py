"""The engine interface: one generation request and result per sequence, as in the `tensorrt_llm` model.

Field names follow the Triton tensors of TensorRT-LLM's ``tensorrt_llm`` model (see ``contract``):
``input_ids``/``request_output_len``/``end_id``/``pad_id``/``stop_words_list`` in,
``output_ids``/``generation_logits`` out (input excluded from the output). Decoding is greedy.
``answer_token_ids``/``answer_logits`` are this project's extension for engines that advertise
``fused_answer_step``: the logits of those ids at the position right after a stop word, read from the
engine's own KV cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class GenerationRequest:
    """One greedy generation over ``input_ids``."""

    input_ids: Sequence[int]
    request_output_len: int
    end_id: int
    pad_id: int
    stop_words: Sequence[Sequence[int]] = ()
    return_generation_logits: bool = False
    answer_token_ids: Sequence[int] = ()


@dataclass
class GenerationResult:
    """Generated ids (input excluded; a stop word is included, the end id is not) and requested logits."""

    output_ids: list[int]
    generation_logits: np.ndarray | None = None  # [steps, vocab], float32
    answer_logits: np.ndarray | None = None  # [len(answer_token_ids)], only after a stop word


@dataclass(frozen=True)
class EngineCapabilities:
    """What an engine offers beyond NVIDIA's contract, and its limits."""

    fused_answer_step: bool = False
    max_context_tokens: int = 32768
    max_batch_size: int = 0  # sequences the engine runs at once (0: not known)


class Engine(Protocol):
    """Anything that runs a list of generation requests: in-process or over Triton."""

    @property
    def capabilities(self) -> EngineCapabilities: ...

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]: ...
