"""Engine requests/results <-> the tensorrt_llm model's tensors, and per-tensor validation."""

import numpy as np
import pytest

from rank1_triton.engines.base import GenerationRequest, GenerationResult
from rank1_triton.engines.tensors import (
    is_stop_request,
    parse_request,
    parse_result,
    request_tensors,
    result_tensors,
    stop_request_tensors,
)
from rank1_triton.errors import RequestError


def test_request_round_trip_with_nvidia_shapes():
    request = GenerationRequest([5, 6, 7], 9, 1, 2, stop_words=[[151666]], return_generation_logits=True,
                                answer_token_ids=[830, 895])
    tensors = request_tensors(request)
    assert tensors["input_ids"].shape == (1, 3) and tensors["input_ids"].dtype == np.int32
    assert tensors["stop_words_list"].shape == (1, 2, 1)
    assert tensors["runtime_top_k"].tolist() == [[1]] and tensors["exclude_input_in_output"].tolist() == [[True]]
    assert parse_request(tensors, default_end_id=0, default_pad_id=0) == GenerationRequest(
        [5, 6, 7], 9, 1, 2, stop_words=[[151666]], return_generation_logits=True, answer_token_ids=[830, 895]
    )


def test_input_lengths_trims_padded_input_ids_and_defaults_apply():
    tensors = {
        "input_ids": np.array([[4, 5, 0, 0]], dtype=np.int32),
        "input_lengths": np.array([2], dtype=np.int32),  # reshape [] gives [batch] on the server side
        "request_output_len": np.array([[3]], dtype=np.int32),
    }
    parsed = parse_request(tensors, default_end_id=77, default_pad_id=78)
    assert parsed.input_ids == [4, 5] and parsed.end_id == 77 and parsed.pad_id == 78 and parsed.stop_words == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"runtime_top_k": np.array([[40]], dtype=np.int32)}, "runtime_top_k"),
        ({"exclude_input_in_output": np.array([[False]])}, "exclude_input_in_output"),
        ({"input_lengths": np.array([[9]], dtype=np.int32)}, "input_lengths"),
        ({"input_ids": np.zeros((2, 3), dtype=np.int32)}, "input_ids"),
        ({"stop_words_list": np.array([[[1, 2], [3, -1]]], dtype=np.int32)}, "stop_words_list"),
    ],
)
def test_bad_tensors_are_named(change, field):
    tensors = request_tensors(GenerationRequest([1, 2, 3], 4, 0, 0))
    tensors.update(change)
    with pytest.raises(RequestError) as error:
        parse_request(tensors, default_end_id=0, default_pad_id=0)
    assert error.value.field == field


def test_missing_required_tensor():
    tensors = request_tensors(GenerationRequest([1, 2, 3], 4, 0, 0))
    del tensors["request_output_len"]
    with pytest.raises(RequestError, match=r"^request_output_len: is required"):
        parse_request(tensors, default_end_id=0, default_pad_id=0)


def test_result_round_trip_and_sequence_length_trims_padding():
    logits = np.arange(6, dtype=np.float32).reshape(2, 3)
    result = GenerationResult([3, 4], generation_logits=logits, answer_logits=np.array([1.5, -2.0]))
    tensors = result_tensors(result)
    assert tensors["output_ids"].shape == (1, 1, 2) and tensors["generation_logits"].shape == (1, 1, 2, 3)
    back = parse_result(tensors)
    assert back.output_ids == [3, 4]
    np.testing.assert_array_equal(back.generation_logits, logits)
    np.testing.assert_array_equal(back.answer_logits, [1.5, -2.0])
    padded = {"output_ids": np.array([[[3, 4, 0, 0]]], dtype=np.int32), "sequence_length": np.array([[2]])}
    assert parse_result(padded).output_ids == [3, 4]


def test_a_stop_request_reads_as_one_and_a_generation_request_does_not():
    assert is_stop_request(stop_request_tensors())
    assert not is_stop_request(request_tensors(GenerationRequest([5, 6, 7], 9, 1, 2)))
