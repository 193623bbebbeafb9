"""The client package's LangChain compressor and LlamaIndex postprocessor against the real toy server (gRPC)."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest
from gateway_helpers import DOCUMENTS, QUERY

from rank1_client import Rank1Client

OPTIONS = {"max_reasoning_tokens": 8, "instruction": "The word must appear."}


@pytest.fixture(scope="module")
def expected(toy_server):
    with Rank1Client(toy_server.grpc_url) as client:
        return client.rerank(QUERY, DOCUMENTS, top_n=3, return_reasoning=True, **OPTIONS)


def test_importing_the_client_imports_no_framework():
    code = ("import sys, rank1_client, rank1_client.integrations; "
            "assert not {'langchain_core', 'llama_index'} & {m.split('.')[0] for m in sys.modules}")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.server
def test_langchain_compressor(toy_server, expected):
    from langchain_core.documents import Document

    from rank1_client.integrations.langchain import Rank1DocumentCompressor

    reranker = Rank1DocumentCompressor(url=toy_server.grpc_url, top_n=3, **OPTIONS)
    documents = [Document(page_content=text, metadata={"n": i}, id=f"doc-{i}") for i, text in enumerate(DOCUMENTS)]
    for compressed in (reranker.compress_documents(documents, QUERY),
                       asyncio.run(reranker.acompress_documents(documents, QUERY))):
        assert [d.metadata["n"] for d in compressed] == [r.index for r in expected.results]
        for document, result in zip(compressed, expected.results, strict=True):
            assert document.id == f"doc-{result.index}" and document.page_content == DOCUMENTS[result.index]
            assert document.metadata["relevance_score"] == pytest.approx(result.score, abs=1e-6)
            assert document.metadata["rank1_reasoning"] == result.reasoning
            assert (document.metadata["rank1_reasoning_tokens"], document.metadata["rank1_forced"],
                    document.metadata["rank1_truncated"]) == (result.reasoning_tokens, result.forced, result.truncated)
    assert "relevance_score" not in documents[0].metadata, "the inputs are not modified"
    assert reranker.compress_documents([], QUERY) == []
    reranker.close()


@pytest.mark.server
def test_langchain_compressor_titles_from_metadata(toy_server):
    from langchain_core.documents import Document

    from rank1_client.integrations.langchain import Rank1DocumentCompressor

    documents = [Document(page_content=text, metadata={"title": f"t{i}"}) for i, text in enumerate(DOCUMENTS[:3])]
    compressed = Rank1DocumentCompressor(url=toy_server.grpc_url, top_n=None, title_key="title",
                               return_reasoning=False).compress_documents(documents, QUERY)
    with Rank1Client(toy_server.grpc_url) as client:
        reference = client.rerank(QUERY, [{"title": f"t{i}", "text": t} for i, t in enumerate(DOCUMENTS[:3])])
    expected = [r.score for r in reference.results]
    assert [d.metadata["relevance_score"] for d in compressed] == pytest.approx(expected, abs=1e-6)
    assert "rank1_reasoning" not in compressed[0].metadata


@pytest.mark.server
def test_llama_index_postprocessor(toy_server, expected):
    from llama_index.core.schema import MetadataMode, NodeWithScore, TextNode

    from rank1_client.integrations.llama_index import Rank1Rerank

    postprocessor = Rank1Rerank(url=toy_server.grpc_url, top_n=3, metadata_mode=MetadataMode.NONE, **OPTIONS)
    nodes = [NodeWithScore(node=TextNode(text=text, id_=str(i), metadata={"source": "toy"}), score=0.0)
             for i, text in enumerate(DOCUMENTS)]
    for reranked in (postprocessor.postprocess_nodes(nodes, query_str=QUERY),
                     asyncio.run(postprocessor.apostprocess_nodes(nodes, query_str=QUERY))):
        assert [int(n.node.id_) for n in reranked] == [r.index for r in expected.results]
        for node, result in zip(reranked, expected.results, strict=True):
            assert node.score == pytest.approx(result.score, abs=1e-6)
            assert node.node.metadata["relevance_score"] == node.score
            assert node.node.metadata["rank1_reasoning"] == result.reasoning
            assert node.node.metadata["rank1_forced"] is result.forced
            assert node.node.metadata["source"] == "toy"
            # Rank1's keys stay out of what the LLM sees.
            assert "rank1_reasoning" not in node.node.get_content(metadata_mode=MetadataMode.LLM)
            assert "source" in node.node.get_content(metadata_mode=MetadataMode.LLM)
    assert "relevance_score" not in nodes[0].node.metadata, "the inputs are not modified"
    postprocessor.close()
