"""The asyncio client: the same surface as the blocking one, on ``tritonclient.grpc.aio``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import aclosing
from typing import TYPE_CHECKING, Literal, overload

import tritonclient.grpc.aio as grpcclient_aio

from ._base_client import BaseRank1Client, CallSettings, Timeout
from ._chunks import JobQueue, Outcome, QueryPlan
from ._constants import READINESS_CHECK_TIMEOUT
from ._protocol import ChunkRequest, RerankKwargs, ScoredChunk, read_result
from ._retry import acall_with_retries
from ._transport import ChannelPool, Lease, close_async_client, is_unknown_model, server_errors
from .errors import ClientClosedError, Rank1Error
from .types import NOT_GIVEN, Document, Health, RerankResponse

if TYPE_CHECKING:
    from typing_extensions import Unpack


def _cancel_requested() -> bool:
    """Whether the running task was asked to cancel (Python 3.11+ can tell; 3.10 assumes not)."""
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    return bool(cancelling()) if cancelling is not None else False


class AsyncRank1Client(BaseRank1Client):
    """Asyncio client of a Rank1 server (Triton, gRPC); mirrors :class:`Rank1Client`.

    Use it from one event loop. Cancelling the task that awaits a call cancels its gRPC requests.

    Example::

        async with AsyncRank1Client("localhost:8001") as client:
            response = await client.rerank("what do cats eat?", ["Cats are carnivores.", "Paris is in France."])
    """

    _channels: ChannelPool[grpcclient_aio.InferenceServerClient]

    def _channel_pool(self) -> ChannelPool[grpcclient_aio.InferenceServerClient]:
        # Channels open on first use, inside the running event loop that they then belong to.
        return ChannelPool(self._transport.async_client, close_async_client)

    async def rerank(
        self, query: str, documents: Sequence[Document], *, timeout: Timeout = NOT_GIVEN,
        **options: Unpack[RerankKwargs],
    ) -> RerankResponse:
        """Score every document against the query and return them best first.

        Arguments, result and errors as in :meth:`Rank1Client.rerank`.
        """
        plans, call = self._prepare([(query, documents)], timeout, options, per_query_ids=False)
        async with aclosing(self._as_completed(plans, call, self._concurrency(None))) as completed:
            async for _, response in completed:
                assert isinstance(response, RerankResponse)
                return response
        raise AssertionError("a query always completes or raises")

    @overload
    async def rerank_many(
        self, queries_with_documents: Iterable[tuple[str, Sequence[Document]]], *, timeout: Timeout = NOT_GIVEN,
        max_concurrency: int | None = None, return_exceptions: Literal[False] = ..., **options: Unpack[RerankKwargs],
    ) -> list[RerankResponse]: ...

    @overload
    async def rerank_many(
        self, queries_with_documents: Iterable[tuple[str, Sequence[Document]]], *, timeout: Timeout = NOT_GIVEN,
        max_concurrency: int | None = None, return_exceptions: bool, **options: Unpack[RerankKwargs],
    ) -> list[RerankResponse | Rank1Error]: ...

    async def rerank_many(
        self, queries_with_documents: Iterable[tuple[str, Sequence[Document]]], *, timeout: Timeout = NOT_GIVEN,
        max_concurrency: int | None = None, return_exceptions: bool = False, **options: Unpack[RerankKwargs],
    ) -> list[RerankResponse] | list[RerankResponse | Rank1Error]:
        """Rerank several queries with bounded concurrency; responses in the input order.

        As :meth:`Rank1Client.rerank_many` (``return_exceptions`` included).
        """
        plans, call = self._prepare(queries_with_documents, timeout, options, return_exceptions=return_exceptions)
        async with aclosing(self._as_completed(plans, call, self._concurrency(max_concurrency))) as completed:
            outcomes = {position: outcome async for position, outcome in completed}
        return [outcomes[position] for position in range(len(outcomes))]

    @overload
    def rerank_as_completed(
        self, queries_with_documents: Iterable[tuple[str, Sequence[Document]]], *, timeout: Timeout = NOT_GIVEN,
        max_concurrency: int | None = None, return_exceptions: Literal[False] = ..., **options: Unpack[RerankKwargs],
    ) -> AsyncIterator[tuple[int, RerankResponse]]: ...

    @overload
    def rerank_as_completed(
        self, queries_with_documents: Iterable[tuple[str, Sequence[Document]]], *, timeout: Timeout = NOT_GIVEN,
        max_concurrency: int | None = None, return_exceptions: bool, **options: Unpack[RerankKwargs],
    ) -> AsyncIterator[tuple[int, RerankResponse | Rank1Error]]: ...

    def rerank_as_completed(
        self, queries_with_documents: Iterable[tuple[str, Sequence[Document]]], *, timeout: Timeout = NOT_GIVEN,
        max_concurrency: int | None = None, return_exceptions: bool = False, **options: Unpack[RerankKwargs],
    ) -> AsyncIterator[tuple[int, RerankResponse]] | AsyncIterator[tuple[int, RerankResponse | Rank1Error]]:
        """Yield ``(position, response)`` as each query completes; as :meth:`Rank1Client.rerank_as_completed`.

        Close the iterator (``contextlib.aclosing``) when leaving the loop early: that cancels the requests
        still in flight.
        """
        plans, call = self._prepare(queries_with_documents, timeout, options, return_exceptions=return_exceptions)
        return self._as_completed(plans, call, self._concurrency(max_concurrency))

    async def _as_completed(
        self, plans: Iterator[QueryPlan], call: CallSettings, limit: int
    ) -> AsyncIterator[tuple[int, Outcome]]:
        """Keep up to ``limit`` chunk requests in flight; yield each query as soon as all its chunks are scored
        (or, with ``return_exceptions``, one failed)."""
        queue = JobQueue(plans)
        in_flight: dict[asyncio.Task[ScoredChunk], tuple[QueryPlan, ChunkRequest]] = {}
        failure: BaseException | None = None
        try:
            while True:
                while failure is None and len(in_flight) < limit and (job := queue.next_job()) is not None:
                    plan, request = job
                    in_flight[asyncio.ensure_future(self._score(request, call))] = (plan, request)
                for position, outcome in queue.pop_done():  # before raising: finished queries still count
                    if isinstance(outcome, Rank1Error) and not call.return_exceptions:
                        failure = failure or outcome
                    else:
                        yield position, outcome
                if failure is not None:
                    raise failure
                if not in_flight:
                    return
                done, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    plan, request = in_flight.pop(task)
                    if task.cancelled():
                        continue
                    error = task.exception()
                    if error is None:
                        queue.record(plan, task.result())
                    elif isinstance(error, Rank1Error):
                        queue.fail(plan, request, error)
                        if not call.return_exceptions:
                            failure = failure or plan.error
                        for other, (other_plan, _) in in_flight.items():  # the query failed: stop its others
                            if other_plan is plan:
                                other.cancel()
                    else:
                        failure = failure or error
        finally:
            for task in in_flight:
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)

    async def _score(self, request: ChunkRequest, call: CallSettings) -> ScoredChunk:
        failed: list[Lease[grpcclient_aio.InferenceServerClient]] = []

        async def attempt() -> ScoredChunk:
            lease = self._channels.acquire()
            try:
                with server_errors(self.url):
                    result = await lease.client.infer(**self._infer_arguments(request, call))
            except asyncio.CancelledError:
                if lease.closed and not _cancel_requested():  # close() cut the call, nobody cancelled the task
                    raise ClientClosedError(f"{self.url}: the client was closed during the call") from None
                raise
            except Rank1Error as error:
                failed[:] = [lease]
                if is_unknown_model(error):
                    ready = await self._server_ready(lease.client, call)
                    raise self._unknown_model(error, ready) from error.__cause__
                raise
            finally:
                self._channels.release(lease)
            return read_result(request, result)

        def reconnect(_: Rank1Error) -> None:
            if failed:
                self._channels.reconnect(failed[0])

        try:
            return await acall_with_retries(call.retry, attempt, deadline=call.deadline, reconnect=reconnect)
        except Rank1Error as error:
            error._concerning(request_id=request.request_id, query=request.query,
                              document_indices=request.document_indices)
            raise

    async def _server_ready(self, client: grpcclient_aio.InferenceServerClient, call: CallSettings) -> bool | None:
        try:
            with server_errors(self.url):
                return bool(await client.is_server_ready(
                    headers=call.metadata, client_timeout=call.deadline.cap(READINESS_CHECK_TIMEOUT)))
        except Rank1Error:
            return None

    async def health(self, *, timeout: Timeout = NOT_GIVEN) -> Health:
        """As :meth:`Rank1Client.health`."""
        deadline, headers = self._health_settings(timeout)
        lease = self._channels.acquire()
        client = lease.client
        try:
            with server_errors(self.url):
                return Health(
                    live=await client.is_server_live(headers=headers, client_timeout=deadline.cap(None)),
                    ready=await client.is_server_ready(headers=headers, client_timeout=deadline.cap(None)),
                    model_ready=await client.is_model_ready(self._model_name, headers=headers,
                                                            client_timeout=deadline.cap(None)),
                )
        finally:
            self._channels.release(lease)

    async def ready(self, *, timeout: Timeout = NOT_GIVEN) -> bool:
        """Whether the server and the Rank1 model are ready to serve requests."""
        health = await self.health(timeout=timeout)
        return health.ready and health.model_ready

    async def close(self) -> None:
        """Close the channel (a later call opens a new one)."""
        for client in self._channels.close_all():
            await client.close()

    async def __aenter__(self) -> AsyncRank1Client:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()
