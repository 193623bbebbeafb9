"""LangChain: ``Rank1DocumentCompressor``, a document compressor that reranks with the Rank1 server (gRPC).

Example::

    from langchain_classic.retrievers import ContextualCompressionRetriever  # or langchain.retrievers
    from rank1_client.integrations.langchain import Rank1DocumentCompressor

    reranker = Rank1DocumentCompressor(url="localhost:8001", top_n=3, max_reasoning_tokens=1024)
    documents = reranker.compress_documents(retrieved_documents, "how do vaccines work")
    documents[0].metadata["relevance_score"], documents[0].metadata["rank1_reasoning"]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import AsyncRank1Client, Rank1Client
from .._constants import DEFAULT_URL
from ..types import Document as Rank1Document
from ..types import RerankResponse
from . import missing, rerank_options, result_metadata

try:
    from langchain_core.callbacks import Callbacks
    from langchain_core.documents import BaseDocumentCompressor, Document
    from pydantic import ConfigDict, Field, PrivateAttr
except ImportError as error:  # pragma: no cover - depends on the environment
    raise missing("langchain-core", "langchain") from error


class Rank1DocumentCompressor(BaseDocumentCompressor):
    """Reranks LangChain documents with Rank1 and keeps the best ``top_n``.

    Each returned document is a copy with ``relevance_score``, ``rank1_reasoning_tokens``, ``rank1_forced``,
    ``rank1_truncated`` (and ``rank1_reasoning`` with ``return_reasoning``) added to its metadata.

    Attributes:
        url: ``host:port`` of the server's gRPC endpoint.
        top_n: Documents to keep (``None``: all), best first.
        max_reasoning_tokens, instruction, prompt, rethink, return_reasoning: As ``Rank1Client.rerank``.
        title_key: A metadata key whose value is sent as the document's title (scored as ``"title text"``).
        timeout: Deadline of each request in seconds (``None``: the client's default).
        client_options: Further ``Rank1Client`` arguments (``ssl``, ``root_certificates``, ``api_key``, ...).
    """

    url: str = DEFAULT_URL
    top_n: int | None = 3
    max_reasoning_tokens: int | None = None
    instruction: str | None = None
    prompt: str | None = None
    rethink: int | None = None
    return_reasoning: bool = True
    title_key: str | None = None
    timeout: float | None = None
    client_options: dict[str, Any] = Field(default_factory=dict)

    model_config = ConfigDict(extra="forbid")
    _client: Rank1Client | None = PrivateAttr(default=None)

    def _documents(self, documents: Sequence[Document]) -> list[Rank1Document]:
        if self.title_key is None:
            return [document.page_content for document in documents]
        return [{"title": document.metadata[self.title_key], "text": document.page_content}
                if document.metadata.get(self.title_key) is not None else document.page_content
                for document in documents]

    def _annotated(self, documents: Sequence[Document], response: RerankResponse) -> list[Document]:
        annotated = []
        for result in response.results:
            original = documents[result.index]
            annotated.append(Document(page_content=original.page_content, id=original.id,
                                      metadata={**original.metadata, **result_metadata(result)}))
        return annotated

    def compress_documents(self, documents: Sequence[Document], query: str,
                           callbacks: Callbacks | None = None) -> Sequence[Document]:
        """Rerank ``documents`` for ``query``; the best ``top_n`` come back, annotated."""
        if not documents:
            return []
        if self._client is None:
            self._client = Rank1Client(self.url, **self.client_options)
        response = self._client.rerank(query, self._documents(documents),
                                       **rerank_options(self.__dict__))
        return self._annotated(documents, response)

    async def acompress_documents(self, documents: Sequence[Document], query: str,
                                  callbacks: Callbacks | None = None) -> Sequence[Document]:
        """As :meth:`compress_documents`, on the asyncio client (a channel for the call's event loop)."""
        if not documents:
            return []
        async with AsyncRank1Client(self.url, **self.client_options) as client:
            response = await client.rerank(query, self._documents(documents),
                                           **rerank_options(self.__dict__))
        return self._annotated(documents, response)

    def close(self) -> None:
        """Close the blocking client's channel (a later call opens a new one)."""
        client, self._client = self._client, None
        if client is not None:
            client.close()
