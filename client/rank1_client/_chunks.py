"""Split document lists into server-sized requests and merge the scored chunks back into one ranking."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from ._protocol import ChunkRequest, RerankOptions, ScoredChunk, check_text, render_document
from .errors import InvalidRequestError, Rank1Error
from .types import Document, RerankResponse, RerankResult, Usage

Outcome = RerankResponse | Rank1Error
"""What one query ends with: its response, or the error that failed it."""


@dataclass
class QueryPlan:
    """The requests of one query and the chunks scored so far (or the error that failed it)."""

    position: int
    documents: Sequence[Document]
    options: RerankOptions
    requests: list[ChunkRequest]
    scored: list[ScoredChunk] = field(default_factory=list)
    query: str | None = None
    request_id: str | None = None
    error: Rank1Error | None = None

    @property
    def complete(self) -> bool:
        """Every chunk of this query is scored."""
        return len(self.scored) == len(self.requests)

    def fail(self, error: Rank1Error) -> Rank1Error:
        """Mark the query failed by ``error`` (the first error counts) and fill in what the error concerns."""
        error._concerning(request_id=self.request_id, query=self.query, position=self.position)
        if self.error is None:
            self.error = error
        return self.error


def plan_query(position: int, query: str, documents: Sequence[Document], options: RerankOptions,
               chunk_size: int, request_id: str = "") -> QueryPlan:
    """Check and render the documents and cut them into requests of at most ``chunk_size`` documents."""
    if chunk_size < 1:
        raise InvalidRequestError(f"chunk_size: must be at least 1, got {chunk_size}", field="chunk_size")
    check_text("query", query)
    if isinstance(documents, (str, bytes)) or not isinstance(documents, Iterable):
        raise InvalidRequestError("documents: must be a list of documents, not a single string", field="documents")
    documents = documents if isinstance(documents, Sequence) else list(documents)
    texts = [render_document(document, index) for index, document in enumerate(documents)]
    requests = [
        ChunkRequest(query, texts[start:start + chunk_size], start, options, request_id)
        for start in range(0, len(texts), chunk_size)
    ]
    return QueryPlan(position, documents, options, requests, query=query, request_id=request_id)


def plan_queries(queries_with_documents: Iterable[tuple[str, Sequence[Document]]], options: RerankOptions,
                 chunk_size: int, request_id: Callable[[int], str] = lambda _: "") -> Iterator[QueryPlan]:
    """One plan per ``(query, documents)`` pair, in the given order, made when the caller gets to it.

    A pair that cannot be sent (a document without text, a query that is not a string) gives a plan that has
    already failed, so ``return_exceptions=True`` reports it like a query the server refused.
    """
    if isinstance(queries_with_documents, (str, bytes)):
        raise InvalidRequestError("queries_with_documents: must be an iterable of (query, documents) pairs",
                                  field="queries_with_documents")
    for position, pair in enumerate(queries_with_documents):
        rid = request_id(position)
        try:
            try:
                query, documents = pair
            except (TypeError, ValueError):
                raise InvalidRequestError(
                    f"queries_with_documents: element {position} must be a (query, documents) pair",
                    field="queries_with_documents") from None
            yield plan_query(position, query, documents, options, chunk_size, rid)
        except Rank1Error as error:
            query = pair[0] if isinstance(pair, tuple) and pair and isinstance(pair[0], str) else None
            plan = QueryPlan(position, [], options, [], query=query, request_id=rid)
            plan.fail(error)
            yield plan


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
    return RerankResponse(results=results[:options.top_n], usage=usage, request_id=plan.request_id or None)


class JobQueue:
    """Hands out the requests of the plans in query order, pulling plans only when needed, and collects the
    scored chunks until a query is complete (or failed). Shared by the blocking and the asyncio client."""

    def __init__(self, plans: Iterable[QueryPlan]) -> None:
        self._plans = iter(plans)
        self._jobs: deque[tuple[QueryPlan, ChunkRequest]] = deque()
        self._done: list[QueryPlan] = []

    def next_job(self) -> tuple[QueryPlan, ChunkRequest] | None:
        """The next request to send with its plan, or ``None`` when every request was handed out."""
        while not self._jobs:
            plan = next(self._plans, None)
            if plan is None:
                return None
            if plan.error is not None or plan.complete:  # refused before sending, or no documents
                self._done.append(plan)
                continue
            self._jobs.extend((plan, request) for request in plan.requests)
        return self._jobs.popleft()

    def record(self, plan: QueryPlan, chunk: ScoredChunk) -> None:
        """Store a scored chunk of ``plan`` (dropped when the plan failed meanwhile)."""
        if plan.error is not None:
            return
        plan.scored.append(chunk)
        if plan.complete:
            self._done.append(plan)

    def fail(self, plan: QueryPlan, request: ChunkRequest, error: Rank1Error) -> None:
        """Fail ``plan`` by ``error`` of one of its requests; its requests not yet sent are dropped."""
        if plan.error is not None:
            return
        error._concerning(document_indices=request.document_indices)
        plan.fail(error)
        self._jobs = deque(job for job in self._jobs if job[0] is not plan)
        self._done.append(plan)

    def pop_done(self) -> list[tuple[int, Outcome]]:
        """``(position, response or error)`` of the queries finished since the last call."""
        done, self._done = self._done, []
        return [(plan.position, plan.error if plan.error is not None else merge(plan)) for plan in done]
