"""Bad input gets INVALID_ARGUMENT naming the field, never kills an instance, and spares concurrent requests."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from e2e_helpers import bytes_input, rerank_inputs
from tritonclient.utils import InferenceServerException

pytestmark = pytest.mark.server
GOOD = ("find cat", ["cat dog sun", "river stone"])


def infer(server, inputs, parameters=None):
    return grpcclient.InferenceServerClient(server.grpc_url).infer("rank1", inputs, parameters=parameters or {})


def assert_invalid(server, inputs, parameters, field):
    with pytest.raises(InferenceServerException) as error:
        infer(server, inputs, parameters)
    assert error.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert field in error.value.message()
    return error.value.message()


def test_empty_query(random_server):
    assert_invalid(random_server, rerank_inputs("   ", GOOD[1]), {}, "query: must not be empty")


def test_zero_documents(random_server):
    assert_invalid(random_server, rerank_inputs(GOOD[0], []), {}, "documents: at least one document")


def test_too_many_documents(random_server):
    assert_invalid(random_server, rerank_inputs(GOOD[0], ["d"] * 17), {}, "documents: 17 documents exceed")


def test_non_utf8_document(random_server):
    assert_invalid(random_server, rerank_inputs(GOOD[0], [b"fine", b"\xff\xfe"]), {}, "documents: element 1")


def test_unknown_prompt_name(random_server):
    assert_invalid(random_server, rerank_inputs(*GOOD, prompt="MSMARCO"), {}, "prompt: unknown dataset prompt")


def test_custom_prompt_without_placeholder(random_server):
    message = assert_invalid(random_server, rerank_inputs(*GOOD, prompt="Find related passages"), {}, "prompt:")
    assert "FILL_QUERY_HERE" in message


@pytest.mark.parametrize("budget", [-5, 0])
def test_negative_or_zero_budget(random_server, budget):
    assert_invalid(random_server, rerank_inputs(*GOOD), {"max_reasoning_tokens": budget}, "max_reasoning_tokens:")


def test_huge_budget(random_server):
    assert_invalid(random_server, rerank_inputs(*GOOD), {"max_reasoning_tokens": 10**7}, "max_reasoning_tokens:")


def test_wrong_dtype(random_server):
    query = grpcclient.InferInput("query", [1], "INT32")
    query.set_data_from_numpy(np.array([3], dtype=np.int32))
    assert_invalid(random_server, [query, bytes_input("documents", ["d"])], {}, "query")


def test_wrong_shape(random_server):
    assert_invalid(random_server, [bytes_input("query", ["a", "b"]), bytes_input("documents", ["d"])], {}, "query")


def test_over_long_passage_with_truncate_none(random_server):
    inputs = rerank_inputs(GOOD[0], ["short", "word " * 5000])
    assert_invalid(random_server, inputs, {"truncate": "NONE"}, "documents: the prompt has")


def test_bad_requests_spare_concurrent_good_ones_and_the_instance(random_server):
    good = {"max_reasoning_tokens": 8}
    baseline = infer(random_server, rerank_inputs(*GOOD), good).as_numpy("scores")
    jobs = [(rerank_inputs(*GOOD), good) if i % 2 else (rerank_inputs("", GOOD[1]), good) for i in range(12)]

    def run(job):
        try:
            return infer(random_server, *job).as_numpy("scores")
        except InferenceServerException as error:
            return error

    with ThreadPoolExecutor(12) as pool:
        outcomes = list(pool.map(run, jobs))
    for index, outcome in enumerate(outcomes):
        if index % 2:
            np.testing.assert_allclose(outcome, baseline, atol=1e-6)
        else:
            assert isinstance(outcome, InferenceServerException) and outcome.status() == "StatusCode.INVALID_ARGUMENT"
    client = grpcclient.InferenceServerClient(random_server.grpc_url)
    assert client.is_server_ready() and client.is_model_ready("rank1") and client.is_model_ready("tensorrt_llm")
