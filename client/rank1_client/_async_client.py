"""The asyncio client: the same surface as the blocking one, on ``tritonclient.grpc.aio``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import aclosing
from typing import TYPE_CHECKING

import tritonclient.grpc.aio as grpcclient_aio

from ._base_client import BaseRank1Client
from ._chunks import JobQueue, QueryPlan
from ._protocol import ChunkRequest, RerankKwargs, RerankOptions, ScoredChunk, read_result
from ._retry import acall_with_retries
from ._transport import server_errors
from .types import Document, Health, RerankResponse

if TYPE_CHECKING:
    from typing_extensions import Unpack


class AsyncRank1Client(BaseRank1Client):
    """Asyncio client of a Rank1 server (Triton, gRPC); mirrors :class:`Rank1Client`.

    Use it from one event loop. Cancelling the task that awaits a call cancels its gRPC requests.

    Example::

        async with AsyncRank1Client("localhost:8001") as client:
            response = await client.rerank("what do cats eat?", ["Cats are carnivores.", "Paris is in France."])
    """

    _client: grpcclient_aio.InferenceServerClient | None = None

    def _grpc(self) -> grpcclient_aio.InferenceServerClient:
        # Opened on first use, inside the running event loop that the channel then belongs to.
        if self._client is None:
            self._client = self._transport.async_client()
        return self._client

    async def rerank(
        self, query: str, documents: Sequence[Document], *, timeout: float | None = None,
        **options: Unpack[RerankKwargs],
    ) -> RerankResponse:
        """Score every document against the query and return them best first.

        Arguments, result and errors as in :meth:`Rank1Client.rerank`.
        """
        plans = self._plans([(query, documents)], RerankOptions(**options))
        async with aclosing(self._as_completed(plans, timeout, self._concurrency(None))) as completed:
            async for _, response in completed:
                return response
        raise AssertionError("a query always completes or raises")

    async def rerank_many(
        self, queries_with_documents: Iterable[tuple[str, Sequence[Document]]], *, timeout: float | None = None,
        max_concurrency: int | None = None, **options: Unpack[RerankKwargs],
    ) -> list[RerankResponse]:
        """Rerank several queries with bounded concurrency; responses in the input order.

        As :meth:`Rank1Client.rerank_many`.
        """
        plans = self._plans(queries_with_documents, RerankOptions(**options))
        responses = {position: response async for position, response
                     in self._as_completed(plans, timeout, self._concurrency(max_concurrency))}
        return [responses[position] for position in range(len(responses))]

    def rerank_as_completed(
        self, queries_with_documents: Iterable[tuple[str, Sequence[Document]]], *, timeout: float | None = None,
        max_concurrency: int | None = None, **options: Unpack[RerankKwargs],
    ) -> AsyncIterator[tuple[int, RerankResponse]]:
        """Yield ``(position, response)`` as each query completes; as :meth:`Rank1Client.rerank_as_completed`.

        Close the iterator (``contextlib.aclosing``) when leaving the loop early: that cancels the requests
        still in flight.
        """
        plans = self._plans(queries_with_documents, RerankOptions(**options))
        return self._as_completed(plans, timeout, self._concurrency(max_concurrency))

    async def _as_completed(
        self, plans: Iterator[QueryPlan], timeout: float | None, limit: int
    ) -> AsyncIterator[tuple[int, RerankResponse]]:
        """Keep up to ``limit`` chunk requests in flight; yield each query as soon as all its chunks are scored."""
        queue = JobQueue(plans)
        in_flight: dict[asyncio.Task[ScoredChunk], QueryPlan] = {}
        failure: BaseException | None = None
        try:
            while True:
                while failure is None and len(in_flight) < limit and (job := queue.next_job()) is not None:
                    plan, request = job
                    in_flight[asyncio.ensure_future(self._score(request, timeout))] = plan
                for item in queue.pop_complete():  # before raising: queries finished with the failed one still count
                    yield item
                if failure is not None:
                    raise failure
                if not in_flight:
                    return
                done, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    plan = in_flight.pop(task)
                    if task.exception() is None:
                        queue.record(plan, task.result())
                    elif failure is None:
                        failure = task.exception()
        finally:
            for task in in_flight:
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)

    async def _score(self, request: ChunkRequest, timeout: float | None) -> ScoredChunk:
        async def attempt() -> ScoredChunk:
            with server_errors(self.url):
                result = await self._grpc().infer(**self._infer_arguments(request, timeout))
            return read_result(request, result)

        return await acall_with_retries(self._retry, attempt)

    async def health(self, *, timeout: float | None = None) -> Health:
        """As :meth:`Rank1Client.health`."""
        client, arguments = self._grpc(), self._health_arguments(timeout)
        with server_errors(self.url):
            return Health(
                live=await client.is_server_live(**arguments),
                ready=await client.is_server_ready(**arguments),
                model_ready=await client.is_model_ready(self._model_name, **arguments),
            )

    async def ready(self, *, timeout: float | None = None) -> bool:
        """Whether the server and the Rank1 model are ready to serve requests."""
        health = await self.health(timeout=timeout)
        return health.ready and health.model_ready

    async def close(self) -> None:
        """Close the channel (a later call opens a new one)."""
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def __aenter__(self) -> AsyncRank1Client:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()
