"""The client's copy of the entry model's names (it does not depend on the server library) equals the contract."""

import pytest

from rank1_client import _constants, _protocol
from rank1_client._protocol import ChunkRequest, RerankOptions

# Skipped in the client-only environment, which has no server library.
contract = pytest.importorskip("rank1_triton.contract")
ENTRY_INPUTS, ENTRY_OUTPUTS, names = contract.ENTRY_INPUTS, contract.ENTRY_OUTPUTS, contract.names


def test_model_name_and_truncate_modes():
    assert _constants.DEFAULT_MODEL_NAME == contract.ENTRY_MODEL_NAME
    assert _protocol.TRUNCATE_MODES == contract.TRUNCATE_MODES


def test_a_request_with_every_option_uses_only_contract_names():
    options = RerankOptions(instruction="i", prompt="SciFact", max_reasoning_tokens=8, rethink=1,
                            return_reasoning=True, truncate="NONE", top_n=1)
    request = ChunkRequest("q", ["a", "b"], 0, options)
    inputs = [tensor.name() for tensor in request.inputs()]
    assert inputs == list(names(ENTRY_INPUTS))
    outputs = {output.name() for output in request.outputs()}
    assert outputs <= set(names(ENTRY_OUTPUTS)) and "reasoning" in outputs
    assert set(options.parameters()) <= set(contract.ENTRY_PARAMETERS)
    assert set(_protocol.PER_DOCUMENT_OUTPUTS) <= set(names(ENTRY_OUTPUTS))
