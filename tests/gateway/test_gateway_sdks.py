"""The official SDKs and framework rerankers against the gateway in front of a real tritonserver (toy model).

Every score is checked against the gRPC client's for the same request (same documents as the server scores them).
"""

from __future__ import annotations

import math

import cohere
import httpx
import pytest
from gateway_helpers import API_KEY, AUTH, DOCUMENTS, DOCUMENTS_32, QUERY, QUERY_32
from tokenizers import Tokenizer

from rank1_client import Rank1Client

pytestmark = pytest.mark.server
TOLERANCE = 1e-6  # the same float32 scores; batching across a request's chunks may move the last bits


@pytest.fixture(scope="module")
def grpc(toy_server):
    with Rank1Client(toy_server.grpc_url) as client:
        yield client


def assert_same_ranking(got: list[tuple[int, float]], expected) -> None:
    """(index, score) pairs best first, against a RerankResponse of the gRPC client."""
    want = [(r.index, r.score) for r in expected.results]
    assert [index for index, _ in got] == [index for index, _ in want]
    for (_, score), (_, reference) in zip(got, want, strict=True):
        assert score == pytest.approx(reference, abs=TOLERANCE)


# --- cohere SDK ---------------------------------------------------------------------------------------------------


def test_cohere_v2_client_rerank(toy_gateway, grpc):
    co = cohere.ClientV2(api_key=API_KEY, base_url=toy_gateway.url)
    response = co.rerank(model="rank1", query=QUERY, documents=DOCUMENTS, top_n=3)
    expected = grpc.rerank(QUERY, DOCUMENTS, top_n=3)
    assert_same_ranking([(r.index, r.relevance_score) for r in response.results], expected)
    assert response.id and response.meta.api_version.version == "2"
    # Rank1's per-result fields come through as the SDK's extra fields.
    for result, reference in zip(response.results, expected.results, strict=True):
        assert (result.reasoning_tokens, result.forced, result.truncated) == (
            reference.reasoning_tokens, reference.forced, reference.truncated)
    assert response.meta.tokens.output_tokens == expected.usage.reasoning_tokens


def test_cohere_v2_32_documents_and_rank1_fields_through_additional_body_parameters(toy_gateway, grpc):
    co = cohere.ClientV2(api_key=API_KEY, base_url=toy_gateway.url)
    extensions = {"return_reasoning": True, "max_reasoning_tokens": 8, "instruction": "The word must appear."}
    response = co.rerank(model="rank1", query=QUERY_32, documents=DOCUMENTS_32,
                         request_options={"additional_body_parameters": extensions})
    expected = grpc.rerank(QUERY_32, DOCUMENTS_32, **extensions)
    assert len(response.results) == 32
    assert_same_ranking([(r.index, r.relevance_score) for r in response.results], expected)
    assert [r.reasoning for r in response.results] == [r.reasoning for r in expected.results]
    assert all(r.reasoning_tokens <= 8 for r in response.results)


def test_cohere_v1_client_objects_titles_and_return_documents(toy_gateway, grpc):
    co = cohere.Client(api_key=API_KEY, base_url=toy_gateway.url)
    documents = [{"title": f"passage {i}", "text": text, "source": "toy"} for i, text in enumerate(DOCUMENTS)]
    response = co.rerank(query=QUERY, documents=documents, top_n=4, return_documents=True)
    expected = grpc.rerank(QUERY, documents, top_n=4)  # the gRPC client scores "title text" too
    assert_same_ranking([(r.index, r.relevance_score) for r in response.results], expected)
    for result in response.results:
        assert result.document.text == DOCUMENTS[result.index]
        assert result.document.source == "toy"  # the object comes back as given


def test_cohere_v1_rank_fields(toy_gateway, grpc):
    co = cohere.Client(api_key=API_KEY, base_url=toy_gateway.url)
    documents = [{"body": text, "tag": "x"} for text in DOCUMENTS]
    response = co.rerank(query=QUERY, documents=documents, rank_fields=["body"])
    expected = grpc.rerank(QUERY, DOCUMENTS)
    assert_same_ranking([(r.index, r.relevance_score) for r in response.results], expected)


@pytest.mark.parametrize("route", ["/v1/rerank", "/v2/rerank", "/rerank"])
def test_jina_and_vllm_shapes(toy_gateway, grpc, route):
    """Jina's and vLLM's clients post {model, query, documents, top_n, return_documents} to these routes."""
    body = {"model": "jina-reranker-v2-base-multilingual", "query": QUERY, "documents": DOCUMENTS, "top_n": 2,
            "return_documents": True}
    response = httpx.post(toy_gateway.url + route, json=body, headers=AUTH, timeout=120)
    assert response.status_code == 200, response.text
    payload = response.json()
    assert set(payload) >= {"id", "model", "usage", "results"}
    assert payload["model"] == "rank1" and payload["usage"]["documents"] == len(DOCUMENTS)
    expected = grpc.rerank(QUERY, DOCUMENTS, top_n=2)
    assert_same_ranking([(r["index"], r["relevance_score"]) for r in payload["results"]], expected)
    assert [r["document"]["text"] for r in payload["results"]] == [DOCUMENTS[r.index] for r in expected.results]


def test_vllm_top_n_zero_means_all(toy_gateway):
    body = {"query": QUERY, "documents": DOCUMENTS, "top_n": 0}
    response = httpx.post(toy_gateway.url + "/v1/rerank", json=body, headers=AUTH, timeout=120)
    assert response.status_code == 200 and len(response.json()["results"]) == len(DOCUMENTS)


def test_max_tokens_per_doc_cuts_passages_with_the_models_tokenizer(toy_gateway, grpc, toy_model_dir):
    tokenizer = Tokenizer.from_file(str(toy_model_dir / "tokenizer.json"))
    documents = ["cat", " ".join(["river stone cloud tree"] * 10) + " cat"]
    co = cohere.ClientV2(api_key=API_KEY, base_url=toy_gateway.url)
    response = co.rerank(model="rank1", query=QUERY, documents=documents, max_tokens_per_doc=6)
    encodings = [tokenizer.encode(text, add_special_tokens=False) for text in documents]
    assert len(encodings[0].ids) <= 6 < len(encodings[1].ids)
    cut = [documents[0], documents[1][: encodings[1].offsets[5][1]]]
    expected = grpc.rerank(QUERY, cut)
    assert_same_ranking([(r.index, r.relevance_score) for r in response.results], expected)
    assert {r.index: r.truncated for r in response.results} == {0: False, 1: True}


# --- framework rerankers built on the cohere SDK -----------------------------------------------------------------


def test_langchain_cohere_rerank(toy_gateway, grpc):
    from langchain_cohere import CohereRerank
    from langchain_core.documents import Document

    reranker = CohereRerank(cohere_api_key=API_KEY, base_url=toy_gateway.url, model="rank1", top_n=3)
    documents = [Document(page_content=text, metadata={"n": i}) for i, text in enumerate(DOCUMENTS)]
    compressed = reranker.compress_documents(documents, QUERY)
    expected = grpc.rerank(QUERY, DOCUMENTS, top_n=3)
    assert_same_ranking([(d.metadata["n"], d.metadata["relevance_score"]) for d in compressed], expected)


def test_llama_index_cohere_rerank(toy_gateway, grpc):
    from llama_index.core.schema import NodeWithScore, TextNode
    from llama_index.postprocessor.cohere_rerank import CohereRerank

    reranker = CohereRerank(api_key=API_KEY, base_url=toy_gateway.url, model="rank1", top_n=3)
    nodes = [NodeWithScore(node=TextNode(text=text, id_=str(i)), score=0.0) for i, text in enumerate(DOCUMENTS)]
    reranked = reranker.postprocess_nodes(nodes, query_str=QUERY)
    expected = grpc.rerank(QUERY, DOCUMENTS, top_n=3)
    assert_same_ranking([(int(n.node.id_), n.score) for n in reranked], expected)


# --- TEI shape with plain httpx ----------------------------------------------------------------------------------


def test_tei_rerank(toy_gateway, grpc):
    body = {"query": QUERY, "texts": DOCUMENTS, "return_text": True, "truncate": True}
    response = httpx.post(toy_gateway.url + "/rerank", json=body, headers=AUTH, timeout=120)
    assert response.status_code == 200, response.text
    ranks = response.json()
    assert isinstance(ranks, list) and len(ranks) == len(DOCUMENTS)
    expected = grpc.rerank(QUERY, DOCUMENTS, truncate="END")
    assert_same_ranking([(r["index"], r["score"]) for r in ranks], expected)
    assert [r["text"] for r in ranks] == [DOCUMENTS[r["index"]] for r in ranks]
    assert {"reasoning_tokens", "forced", "truncated"} <= set(ranks[0]) and "reasoning" not in ranks[0]


def test_tei_raw_scores_are_log_odds_and_reasoning_is_optional(toy_gateway, grpc):
    body = {"query": QUERY, "texts": DOCUMENTS, "raw_scores": True, "return_reasoning": True,
            "max_reasoning_tokens": 8}
    ranks = httpx.post(toy_gateway.url + "/rerank", json=body, headers=AUTH, timeout=120).json()
    expected = grpc.rerank(QUERY, DOCUMENTS, return_reasoning=True, max_reasoning_tokens=8)
    for rank, reference in zip(ranks, expected.results, strict=True):
        assert rank["index"] == reference.index
        p = min(max(reference.score, 1e-12), 1 - 1e-12)
        assert rank["score"] == pytest.approx(math.log(p / (1 - p)), abs=1e-4)
        assert rank["reasoning"] == reference.reasoning and "text" not in rank


# --- operations --------------------------------------------------------------------------------------------------


def test_health_and_metrics(toy_gateway):
    health = httpx.get(toy_gateway.url + "/health", timeout=30)
    assert health.status_code == 200
    assert health.json() == {"status": "ready", "live": True, "ready": True, "model_ready": True}
    httpx.post(toy_gateway.url + "/v2/rerank", json={"query": QUERY, "documents": DOCUMENTS[:2]}, headers=AUTH,
               timeout=120).raise_for_status()
    text = httpx.get(toy_gateway.url + "/metrics", timeout=30).text
    assert 'rank1_gateway_requests_total{code="200",route="/v2/rerank"}' in text
    assert 'rank1_gateway_documents_total{route="/v2/rerank"}' in text
    assert 'rank1_gateway_request_duration_seconds_bucket{le="0.5",route="/v2/rerank"}' in text
    assert "rank1_gateway_rerank_requests_in_flight 0.0" in text


def test_openapi_documents_the_routes_and_rank1_fields(toy_gateway):
    spec = httpx.get(toy_gateway.url + "/openapi.json", timeout=30).json()
    assert {"/v1/rerank", "/v2/rerank", "/rerank", "/health", "/metrics"} <= set(spec["paths"])
    v2 = spec["components"]["schemas"]["CohereV2Request"]["properties"]
    assert {"query", "documents", "top_n", "max_tokens_per_doc", "max_reasoning_tokens", "return_reasoning",
            "instruction", "prompt", "rethink"} <= set(v2)
    assert httpx.get(toy_gateway.url + "/docs", timeout=30).status_code == 200
