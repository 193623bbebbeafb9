"""NVIDIA's [2, N] stop-word format and the contract table."""

import numpy as np
import pytest

from rank1_triton.contract import ENGINE_INPUTS, ENGINE_OUTPUTS
from rank1_triton.engines.tensors import from_word_list, to_word_list


def test_word_list_layout_matches_nvidias_preprocessing():
    array = to_word_list([[151666], [522, 26865, 29]])
    assert array.dtype == np.int32
    np.testing.assert_array_equal(array, [[151666, 522, 26865, 29], [1, 4, -1, -1]])


@pytest.mark.parametrize("words", [[[7]], [[1, 2], [3], [4, 5, 6]], []])
def test_word_list_round_trip(words):
    assert from_word_list(to_word_list(words)) == words


def test_malformed_word_lists_are_refused():
    with pytest.raises(ValueError, match=r"shape \[2, N\]"):
        from_word_list(np.zeros((3, 2), dtype=np.int32))
    with pytest.raises(ValueError, match="offsets must rise"):
        from_word_list(np.array([[1, 2], [5, -1]], dtype=np.int32))


def test_contract_names_are_nvidias():
    assert [t.name for t in ENGINE_INPUTS][:3] == ["input_ids", "input_lengths", "request_output_len"]
    assert {t.name for t in ENGINE_OUTPUTS} == {"output_ids", "sequence_length", "generation_logits"}
