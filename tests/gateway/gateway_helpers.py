"""Shared pieces of the gateway tests: the caller key, limits, toy requests, and a stand-in gRPC client."""

from __future__ import annotations

import dataclasses

from rank1_gateway import GatewaySettings

from rank1_client import Health, RerankResponse, RerankResult, Usage
from rank1_client.errors import Rank1Error
from rank1_triton.fixtures.toy_task import make_ranking_queries

API_KEY = "gateway-test-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
LIMITS = {"max_documents": 40, "max_text_chars": 2000, "max_body_bytes": 128 * 1024}
# Two toy ranking sets: 6 documents (the SDK tests) and 32 (more than two gRPC chunks of 16).
(QUERY, DOCUMENTS, _), (QUERY_32, DOCUMENTS_32, _) = make_ranking_queries(1, 6, seed=11) + make_ranking_queries(
    1, 32, seed=12)


class StubClient:
    """Stands in for ``AsyncRank1Client``: scores 1/(i+2) for document i, or raises ``error``."""

    def __init__(self, error: Rank1Error | None = None, health: Health | Rank1Error | None = None) -> None:
        self.error = error
        self.health_answer = health if health is not None else Health(True, True, True)
        self.calls: list[tuple[str, list, dict]] = []

    async def rerank(self, query, documents, **options) -> RerankResponse:
        self.calls.append((query, list(documents), options))
        if self.error is not None:
            raise self.error
        results = [RerankResult(index=i, score=1 / (i + 2), reasoning_tokens=2, forced=i % 2 == 1, truncated=False,
                                reasoning="because" if options.get("return_reasoning") else None)
                   for i in range(len(documents))]
        return RerankResponse(results=results[: options.get("top_n")], usage=Usage(len(documents),
                                                                                     2 * len(documents)))

    async def health(self, timeout=None) -> Health:
        if isinstance(self.health_answer, Rank1Error):
            raise self.health_answer
        return self.health_answer

    async def close(self) -> None:
        pass


def replace(settings: GatewaySettings, **changes) -> GatewaySettings:
    return dataclasses.replace(settings, **changes)
