"""The tensor contract shared by both engine models (PyTorch and TensorRT-LLM).

Names, dtypes and dims are those of the ``tensorrt_llm`` model in TensorRT-LLM 1.2.x
(``triton_backend/all_models/inflight_batcher_llm/tensorrt_llm/config.pbtxt``), restricted to the tensors
the entry model uses, plus the PyTorch engine's fused-answer extension. Tests check both model configs
against this table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ENGINE_MODEL_NAME = "tensorrt_llm"


@dataclass(frozen=True)
class TensorSpec:
    """One tensor of a Triton model config (dims exclude the batch dimension)."""

    name: str
    data_type: str
    dims: tuple[int, ...]
    optional: bool = False


ENGINE_INPUTS: tuple[TensorSpec, ...] = (
    TensorSpec("input_ids", "TYPE_INT32", (-1,), optional=True),
    TensorSpec("input_lengths", "TYPE_INT32", (1,)),
    TensorSpec("request_output_len", "TYPE_INT32", (1,)),
    TensorSpec("end_id", "TYPE_INT32", (1,), optional=True),
    TensorSpec("pad_id", "TYPE_INT32", (1,), optional=True),
    TensorSpec("stop_words_list", "TYPE_INT32", (2, -1), optional=True),
    TensorSpec("runtime_top_k", "TYPE_INT32", (1,), optional=True),
    TensorSpec("return_generation_logits", "TYPE_BOOL", (1,), optional=True),
    TensorSpec("exclude_input_in_output", "TYPE_BOOL", (1,), optional=True),
)
ENGINE_OUTPUTS: tuple[TensorSpec, ...] = (
    TensorSpec("output_ids", "TYPE_INT32", (-1, -1)),
    TensorSpec("sequence_length", "TYPE_INT32", (-1,)),
    TensorSpec("generation_logits", "TYPE_FP32", (-1, -1, -1)),
)
# Extension of the PyTorch engine, advertised by the config parameter FUSED_ANSWER_STEP_PARAMETER.
FUSED_ANSWER_INPUTS: tuple[TensorSpec, ...] = (TensorSpec("answer_token_ids", "TYPE_INT32", (-1,), optional=True),)
FUSED_ANSWER_OUTPUTS: tuple[TensorSpec, ...] = (TensorSpec("answer_logits", "TYPE_FP32", (-1,)),)
FUSED_ANSWER_STEP_PARAMETER = "rank1_fused_answer_step"
MAX_CONTEXT_PARAMETER = "rank1_max_context_tokens"


def to_word_list(words: Sequence[Sequence[int]]) -> np.ndarray:
    """Encode token sequences in NVIDIA's ``[2, N]`` stop/bad-words format.

    Row 0 holds the ids of all words back to back (padded with 0); row 1 the cumulative end offsets
    (padded with -1), as NVIDIA's preprocessing model writes it.
    """
    flat = [int(t) for word in words for t in word]
    offsets = np.cumsum([len(word) for word in words], dtype=np.int64).tolist()
    width = max(len(flat), len(offsets), 1)
    array = np.zeros((2, width), dtype=np.int32)
    array[1, :] = -1
    array[0, : len(flat)] = flat
    array[1, : len(offsets)] = offsets
    return array


def from_word_list(array: np.ndarray) -> list[list[int]]:
    """Decode NVIDIA's ``[2, N]`` word-list format back into token sequences."""
    if array.ndim != 2 or array.shape[0] != 2:
        raise ValueError(f"a word list has shape [2, N], got {list(array.shape)}")
    ids, offsets = array[0], [int(o) for o in array[1] if o >= 0]
    words, start = [], 0
    for end in offsets:
        if end < start or end > len(ids):
            raise ValueError(f"word-list offsets must rise within the {len(ids)} ids, got {offsets}")
        words.append([int(t) for t in ids[start:end]])
        start = end
    return words
