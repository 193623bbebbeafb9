"""Rerankers for RAG frameworks, calling the Rank1 server over gRPC with this package's client.

Each module imports its framework when it is imported itself, never from ``import rank1_client``:

* :mod:`rank1_client.integrations.langchain` — ``Rank1DocumentCompressor``, a LangChain ``BaseDocumentCompressor``
  (``pip install 'rank1-client[langchain]'``).
* :mod:`rank1_client.integrations.llama_index` — ``Rank1Rerank``, a LlamaIndex node postprocessor
  (``pip install 'rank1-client[llama-index]'``).

Both put the score and Rank1's reasoning and flags into each document's metadata under the keys of
:data:`METADATA_KEYS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..types import RerankResult

SCORE_KEY = "relevance_score"
"""The score's metadata key: the one LangChain's and LlamaIndex's Cohere rerankers use."""

METADATA_KEYS = (SCORE_KEY, "rank1_reasoning", "rank1_reasoning_tokens", "rank1_forced", "rank1_truncated")
"""Metadata added to each returned document (``rank1_reasoning`` only with ``return_reasoning``)."""


def result_metadata(result: RerankResult) -> dict[str, Any]:
    """The metadata of one scored document."""
    metadata: dict[str, Any] = {
        SCORE_KEY: result.score,
        "rank1_reasoning_tokens": result.reasoning_tokens,
        "rank1_forced": result.forced,
        "rank1_truncated": result.truncated,
    }
    if result.reasoning is not None:
        metadata["rank1_reasoning"] = result.reasoning
    return metadata


def rerank_options(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The rerank keywords of an integration's settings (``None`` leaves the server's, or for ``timeout`` the
    client's, default: the client reads an explicit ``timeout=None`` as "no deadline")."""
    names = ("top_n", "instruction", "prompt", "max_reasoning_tokens", "rethink", "return_reasoning", "timeout")
    return {name: settings[name] for name in names if settings.get(name) is not None}


def missing(framework: str, extra: str) -> ImportError:
    return ImportError(f"rank1_client.integrations needs {framework} for this module: "
                       f"pip install 'rank1-client[{extra}]'")
