"""Conversion between engine requests/results and the ``tensorrt_llm`` model's tensors (batch dim included).

Both directions are used: the entry model turns requests into tensors for BLS and reads results back;
the PyTorch engine model reads requests from tensors and writes results. Shapes follow NVIDIA's model:
scalars are ``[1, 1]``, ``input_ids`` is ``[1, L]``, ``stop_words_list`` is ``[1, 2, W]``,
``output_ids`` is ``[1, beam, L]`` and ``generation_logits`` ``[1, beam, steps, vocab]``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ..contract import ENGINE_INPUTS, ENGINE_OUTPUTS, FUSED_ANSWER_INPUTS, FUSED_ANSWER_OUTPUTS, names
from ..errors import RequestError
from .base import GenerationRequest, GenerationResult

Tensors = Mapping[str, np.ndarray]
ENGINE_INPUT_NAMES = names(ENGINE_INPUTS + FUSED_ANSWER_INPUTS)
ENGINE_OUTPUT_NAMES = names(ENGINE_OUTPUTS + FUSED_ANSWER_OUTPUTS)


def named_tensors(get: Callable[[Any, str], Any], source: Any, tensor_names: Iterable[str]) -> dict[str, np.ndarray]:
    """The tensors of a Triton request or response that are present, as numpy arrays.

    ``get`` is ``pb_utils.get_input_tensor_by_name`` or ``pb_utils.get_output_tensor_by_name``.
    """
    found = {}
    for name in tensor_names:
        tensor = get(source, name)
        if tensor is not None:
            found[name] = tensor.as_numpy()
    return found


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


def _scalar(value: int | bool, dtype: type) -> np.ndarray:
    return np.array([[value]], dtype=dtype)


def request_tensors(request: GenerationRequest) -> dict[str, np.ndarray]:
    """The input tensors of one ``tensorrt_llm`` request for a greedy generation."""
    tensors = {
        "input_ids": np.asarray([request.input_ids], dtype=np.int32),
        "input_lengths": _scalar(len(request.input_ids), np.int32),
        "request_output_len": _scalar(request.request_output_len, np.int32),
        "end_id": _scalar(request.end_id, np.int32),
        "pad_id": _scalar(request.pad_id, np.int32),
        "runtime_top_k": _scalar(1, np.int32),
        "exclude_input_in_output": _scalar(True, np.bool_),
        "return_generation_logits": _scalar(request.return_generation_logits, np.bool_),
    }
    if request.stop_words:
        tensors["stop_words_list"] = to_word_list(request.stop_words)[np.newaxis]
    if request.answer_token_ids:
        tensors["answer_token_ids"] = np.asarray([request.answer_token_ids], dtype=np.int32)
    return tensors


def stop_request_tensors() -> dict[str, np.ndarray]:
    """The inputs of a stop request (sent with the request id to cancel), as NVIDIA's ``tensorrt_llm_bls`` sends."""
    return {"input_ids": np.zeros((1, 1), np.int32), "input_lengths": _scalar(0, np.int32),
            "request_output_len": _scalar(0, np.int32), "stop": _scalar(True, np.bool_)}


def _read_scalar(tensors: Tensors, name: str, default: int | None = None) -> int:
    if name not in tensors:
        if default is None:
            raise RequestError(name, "is required")
        return default
    values = np.asarray(tensors[name]).reshape(-1)
    if values.size != 1:
        raise RequestError(name, f"must hold one value, got shape {list(np.shape(tensors[name]))}")
    return int(values[0])


def is_stop_request(tensors: Tensors) -> bool:
    """Whether a request asks to cancel the request with its id (``stop`` true) rather than to generate."""
    return bool(_read_scalar(tensors, "stop", 0))


def parse_request(tensors: Tensors, *, default_end_id: int, default_pad_id: int) -> GenerationRequest:
    """Read one ``tensorrt_llm`` request (batch size 1, greedy) — RequestError names a bad tensor."""
    if _read_scalar(tensors, "runtime_top_k", 1) not in (0, 1):
        raise RequestError("runtime_top_k", "this engine decodes greedily: use 1 (or leave it unset)")
    if not _read_scalar(tensors, "exclude_input_in_output", 1):
        raise RequestError("exclude_input_in_output", "this engine returns generated tokens only: set it to true")
    if "input_ids" not in tensors:
        raise RequestError("input_ids", "is required")
    input_ids = np.asarray(tensors["input_ids"])
    if input_ids.ndim != 2 or input_ids.shape[0] != 1:
        raise RequestError("input_ids", f"must have shape [1, L], got {list(input_ids.shape)}")
    length = _read_scalar(tensors, "input_lengths")
    if not 0 < length <= input_ids.shape[1]:
        raise RequestError("input_lengths", f"must be between 1 and {input_ids.shape[1]}, got {length}")
    stop_words: list[list[int]] = []
    if "stop_words_list" in tensors:
        words = np.asarray(tensors["stop_words_list"])
        try:
            stop_words = [w for w in from_word_list(words.reshape(words.shape[-2:])) if w]
        except ValueError as error:
            raise RequestError("stop_words_list", str(error)) from error
    answer_ids = np.asarray(tensors["answer_token_ids"]).reshape(-1) if "answer_token_ids" in tensors else ()
    return GenerationRequest(
        input_ids=[int(t) for t in input_ids[0, :length]],
        request_output_len=_read_scalar(tensors, "request_output_len"),
        end_id=_read_scalar(tensors, "end_id", default_end_id),
        pad_id=_read_scalar(tensors, "pad_id", default_pad_id),
        stop_words=stop_words,
        return_generation_logits=bool(_read_scalar(tensors, "return_generation_logits", 0)),
        answer_token_ids=[int(t) for t in answer_ids],
    )


def result_tensors(result: GenerationResult) -> dict[str, np.ndarray]:
    """The output tensors of one request (beam width 1)."""
    tensors = {
        "output_ids": np.asarray([[result.output_ids]], dtype=np.int32).reshape(1, 1, -1),
        "sequence_length": np.array([[len(result.output_ids)]], dtype=np.int32),
    }
    if result.generation_logits is not None:
        tensors["generation_logits"] = result.generation_logits.astype(np.float32)[np.newaxis, np.newaxis]
    if result.answer_logits is not None:
        tensors["answer_logits"] = result.answer_logits.astype(np.float32)[np.newaxis]
    return tensors


def parse_result(tensors: Tensors) -> GenerationResult:
    """Read one ``tensorrt_llm`` response (first beam), trimming ``output_ids`` to ``sequence_length``."""
    length = int(np.asarray(tensors["sequence_length"]).reshape(-1)[0])
    output_ids = np.asarray(tensors["output_ids"]).reshape(-1)[:length]
    logits = tensors.get("generation_logits")
    answer = tensors.get("answer_logits")
    return GenerationResult(
        output_ids=[int(t) for t in output_ids],
        generation_logits=None if logits is None else np.asarray(logits, dtype=np.float32)[0, 0],
        answer_logits=None if answer is None else np.asarray(answer, dtype=np.float32).reshape(-1),
    )
