"""LlamaIndex: ``Rank1Rerank``, a node postprocessor that reranks with the Rank1 server (gRPC).

Example::

    from rank1_client.integrations.llama_index import Rank1Rerank

    query_engine = index.as_query_engine(similarity_top_k=20,
                                         node_postprocessors=[Rank1Rerank(url="localhost:8001", top_n=3)])
"""

from __future__ import annotations

from typing import Any

from .. import AsyncRank1Client, Rank1Client
from .._constants import DEFAULT_URL
from ..types import RerankResponse
from . import METADATA_KEYS, missing, rerank_options, result_metadata

try:
    from llama_index.core.bridge.pydantic import Field, PrivateAttr
    from llama_index.core.postprocessor.types import BaseNodePostprocessor
    from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle
except ImportError as error:  # pragma: no cover - depends on the environment
    raise missing("llama-index-core", "llama-index") from error


class Rank1Rerank(BaseNodePostprocessor):
    """Reranks nodes with Rank1 and keeps the best ``top_n``; ``NodeWithScore.score`` is Rank1's score.

    Each returned node is a copy whose metadata holds ``relevance_score``, ``rank1_reasoning_tokens``,
    ``rank1_forced``, ``rank1_truncated`` (and ``rank1_reasoning`` with ``return_reasoning``); those keys are
    excluded from the text the LLM and embedders see. The scored text is the node's content in ``metadata_mode``
    (``EMBED`` by default, as LlamaIndex's Cohere reranker).
    """

    url: str = Field(default=DEFAULT_URL, description="host:port of the server's gRPC endpoint")
    top_n: int | None = Field(default=3, description="nodes to keep, best first (None: all)")
    max_reasoning_tokens: int | None = None
    instruction: str | None = None
    prompt: str | None = None
    rethink: int | None = None
    return_reasoning: bool = True
    metadata_mode: MetadataMode = MetadataMode.EMBED
    timeout: float | None = None
    client_options: dict[str, Any] = Field(default_factory=dict, description="further Rank1Client arguments")

    _client: Rank1Client | None = PrivateAttr(default=None)

    @classmethod
    def class_name(cls) -> str:
        return "Rank1Rerank"

    def _texts(self, nodes: list[NodeWithScore]) -> list[str]:
        return [node.node.get_content(metadata_mode=self.metadata_mode) for node in nodes]

    @staticmethod
    def _annotated(nodes: list[NodeWithScore], response: RerankResponse) -> list[NodeWithScore]:
        annotated = []
        for result in response.results:
            node = nodes[result.index].node.model_copy()
            node.metadata = {**node.metadata, **result_metadata(result)}
            for excluded in ("excluded_llm_metadata_keys", "excluded_embed_metadata_keys"):
                keys = list(getattr(node, excluded))
                setattr(node, excluded, keys + [key for key in METADATA_KEYS if key not in keys])
            annotated.append(NodeWithScore(node=node, score=result.score))
        return annotated

    def _postprocess_nodes(self, nodes: list[NodeWithScore],
                           query_bundle: QueryBundle | None = None) -> list[NodeWithScore]:
        if query_bundle is None:
            raise ValueError("Rank1Rerank needs the query (query_bundle or query_str)")
        if not nodes:
            return []
        if self._client is None:
            self._client = Rank1Client(self.url, **self.client_options)
        response = self._client.rerank(query_bundle.query_str, self._texts(nodes),
                                       **rerank_options(self.__dict__))
        return self._annotated(nodes, response)

    async def _apostprocess_nodes(self, nodes: list[NodeWithScore],
                                  query_bundle: QueryBundle | None = None) -> list[NodeWithScore]:
        if query_bundle is None:
            raise ValueError("Rank1Rerank needs the query (query_bundle or query_str)")
        if not nodes:
            return []
        async with AsyncRank1Client(self.url, **self.client_options) as client:
            response = await client.rerank(query_bundle.query_str, self._texts(nodes),
                                           **rerank_options(self.__dict__))
        return self._annotated(nodes, response)

    def close(self) -> None:
        """Close the blocking client's channel."""
        client, self._client = self._client, None
        if client is not None:
            client.close()
