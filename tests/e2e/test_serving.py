"""End to end over gRPC: the served scores equal the in-process core, options work, concurrency is correct."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from e2e_helpers import rerank_inputs

from rank1_triton.fixtures.toy_task import make_ranking_queries
from rank1_triton.reranker import ScoringOptions

pytestmark = pytest.mark.server
QUERIES = make_ranking_queries(4, 8, seed=99)


def served(server, query, documents, parameters=None, **inputs):
    client = grpcclient.InferenceServerClient(server.grpc_url)
    return client.infer("rank1", rerank_inputs(query, documents, **inputs), parameters=parameters or {})


# "trtllm": the engine model behaves as TensorRT-LLM's (no fused answer step), so the entry model takes the GPU
# path: one-token answer requests with return_generation_logits, sent per document as its thinking ends. The
# in-process reference always uses the fused step, so the two paths are checked against each other.
SERVERS = {"fused": "{}_server", "trtllm": "{}_trtllm_server"}


@pytest.mark.parametrize("mode", SERVERS)
@pytest.mark.parametrize("which", ["random", "toy"])
@pytest.mark.parametrize("rethink", [0, 1])
def test_scores_and_ranking_equal_the_in_process_core(which, mode, rethink, request, reranker_for):
    server = request.getfixturevalue(SERVERS[mode].format(which))
    model_dir = request.getfixturevalue(f"{which}_model_dir")
    query, documents, _ = QUERIES[0]
    response = served(server, query, documents, {"max_reasoning_tokens": 12, "return_reasoning": True,
                                                 "rethink": rethink})
    expected = reranker_for(model_dir).rerank(query, documents,
                                              options=ScoringOptions(max_reasoning_tokens=12, rethink=rethink))
    np.testing.assert_allclose(response.as_numpy("scores"), [r.score for r in expected], atol=1e-6)
    assert response.as_numpy("ranking").tolist() == sorted(range(len(expected)), key=lambda i: -expected[i].score)
    assert response.as_numpy("forced").tolist() == [r.forced for r in expected]
    assert response.as_numpy("reasoning_tokens").tolist() == [r.reasoning_tokens for r in expected]
    assert [t.decode() for t in response.as_numpy("reasoning")] == [r.reasoning for r in expected]
    if which == "toy":
        assert not all(r.forced for r in expected), "the toy model should answer naturally"


def test_reasoning_only_when_asked_and_top_n(toy_server):
    query, documents, labels = QUERIES[1]
    response = served(toy_server, query, documents, {"top_n": 3, "max_reasoning_tokens": 32})
    assert response.as_numpy("reasoning") is None
    assert len(response.as_numpy("ranking")) == 3 and len(response.as_numpy("scores")) == len(documents)
    assert all(labels[i] for i in response.as_numpy("ranking")[:1])


def test_dataset_prompt_and_instruction(random_server, random_model_dir, reranker_for):
    query, documents, _ = QUERIES[2]
    response = served(random_server, query, documents[:3], {"max_reasoning_tokens": 6},
                      instruction="be strict", prompt="SciFact")
    expected = reranker_for(random_model_dir).rerank(query, documents[:3], instruction="be strict", prompt="SciFact",
                                                      options=ScoringOptions(max_reasoning_tokens=6))
    np.testing.assert_allclose(response.as_numpy("scores"), [r.score for r in expected], atol=1e-6)
    plain = served(random_server, query, documents[:3], {"max_reasoning_tokens": 6})
    assert not np.allclose(plain.as_numpy("scores"), response.as_numpy("scores"))


@pytest.mark.parametrize("mode", SERVERS)
def test_sixteen_concurrent_requests_are_all_correct(mode, request, toy_model_dir, reranker_for):
    server = request.getfixturevalue(SERVERS[mode].format("toy"))
    reranker = reranker_for(toy_model_dir)
    jobs = [QUERIES[i % len(QUERIES)] for i in range(16)]
    with ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(lambda job: served(server, job[0], job[1], {"max_reasoning_tokens": 12}), jobs))
    expected = {q: reranker.rerank(q, d, options=ScoringOptions(max_reasoning_tokens=12)) for q, d, _ in QUERIES}
    for (query, _, _), response in zip(jobs, responses, strict=True):
        np.testing.assert_allclose(response.as_numpy("scores"), [r.score for r in expected[query]], atol=1e-6)


def test_custom_metrics_are_exported(toy_server):
    import urllib.request

    query, documents, _ = QUERIES[3]
    served(toy_server, query, documents, {"max_reasoning_tokens": 4})
    text = urllib.request.urlopen(toy_server.metrics_url, timeout=10).read().decode()
    values = {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines() if line.startswith("rank1_")}
    assert values['rank1_documents_total{model="rank1"}'] >= len(documents)
    assert values['rank1_forced_answers_total{model="rank1"}'] >= 1
    assert 'rank1_truncated_documents_total{model="rank1"}' in values
    assert values['rank1_reasoning_tokens_count{model="rank1"}'] >= len(documents)
    assert 'rank1_reasoning_tokens_bucket{model="rank1",le="16"}' in values
