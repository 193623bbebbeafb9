"""Split document lists into server-sized requests and merge the scored chunks back into one ranking."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from ._protocol import ChunkRequest, RerankOptions, ScoredChunk, render_document
from .errors import InvalidRequestError
from .types import Document, RerankResponse, RerankResult, Usage


@dataclass
class QueryPlan:
    """The requests of one query and the chunks scored so far."""

    position: int
    documents: Sequence[Document]
    options: RerankOptions
    requests: list[ChunkRequest]
    scored: list[ScoredChunk] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every chunk of this query is scored."""
        return len(self.scored) == len(self.requests)


def plan_query(position: int, query: str, documents: Sequence[Document], options: RerankOptions,
               chunk_size: int) -> QueryPlan:
    """Render the documents and cut them into requests of at most ``chunk_size`` documents."""
    if chunk_size < 1:
        raise InvalidRequestError(f"chunk_size: must be at least 1, got {chunk_size}", field="chunk_size")
    if isinstance(documents, (str, bytes)):
        raise InvalidRequestError("documents: must be a list of documents, not a single string", field="documents")
    texts = [render_document(document, index) for index, document in enumerate(documents)]
    requests = [
        ChunkRequest(query, texts[start:start + chunk_size], start, options)
        for start in range(0, len(texts), chunk_size)
    ]
    return QueryPlan(position, documents, options, requests)


def plan_queries(queries_with_documents: Iterable[tuple[str, Sequence[Document]]], options: RerankOptions,
                 chunk_size: int) -> Iterator[QueryPlan]:
    """One plan per ``(query, documents)`` pair, in the given order, made when the caller gets to it."""
    for position, (query, documents) in enumerate(queries_with_documents):
        yield plan_query(position, query, documents, options, chunk_size)


def merge(plan: QueryPlan) -> RerankResponse:
    """All documents of a complete plan, best first (ties keep input order), cut to ``top_n``."""
    options = plan.options
    results = []
    for chunk in plan.scored:
        for i, score in enumerate(chunk.scores):
            index = chunk.offset + i
            results.append(RerankResult(
                index=index,
                score=score,
                reasoning_tokens=chunk.reasoning_tokens[i],
                forced=chunk.forced[i],
                truncated=chunk.truncated[i],
                document=plan.documents[index] if options.return_documents else None,
                reasoning=chunk.reasoning[i] if chunk.reasoning is not None else None,
            ))
    usage = Usage(documents=len(results), reasoning_tokens=sum(r.reasoning_tokens for r in results))
    results.sort(key=lambda r: (-r.score, r.index))
    return RerankResponse(results=results[:options.top_n], usage=usage)


class JobQueue:
    """Hands out the requests of the plans in query order, pulling plans only when needed, and collects the
    scored chunks until a query is complete. Shared by the blocking and the asyncio client."""

    def __init__(self, plans: Iterable[QueryPlan]) -> None:
        self._plans = iter(plans)
        self._jobs: deque[tuple[QueryPlan, ChunkRequest]] = deque()
        self._complete: list[QueryPlan] = []

    def next_job(self) -> tuple[QueryPlan, ChunkRequest] | None:
        """The next request to send with its plan, or ``None`` when every request was handed out."""
        while not self._jobs:
            plan = next(self._plans, None)
            if plan is None:
                return None
            if plan.complete:  # no documents: nothing to send
                self._complete.append(plan)
            self._jobs.extend((plan, request) for request in plan.requests)
        return self._jobs.popleft()

    def record(self, plan: QueryPlan, chunk: ScoredChunk) -> None:
        """Store a scored chunk of ``plan``."""
        plan.scored.append(chunk)
        if plan.complete:
            self._complete.append(plan)

    def pop_complete(self) -> list[tuple[int, RerankResponse]]:
        """``(position, response)`` of the queries completed since the last call."""
        complete, self._complete = self._complete, []
        return [(plan.position, merge(plan)) for plan in complete]
