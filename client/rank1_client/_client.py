"""The blocking client."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, ClassVar

import tritonclient.grpc as grpcclient

from ._base_client import BaseRank1Client
from ._chunks import JobQueue, QueryPlan
from ._protocol import ChunkRequest, RerankKwargs, RerankOptions, ScoredChunk, read_result
from ._retry import call_with_retries
from ._transport import server_errors
from .types import Document, Health, RerankResponse

if TYPE_CHECKING:
    from typing_extensions import Unpack


class Rank1Client(BaseRank1Client):
    """Blocking client of a Rank1 server (Triton, gRPC). Safe to share between threads.

    Example::

        with Rank1Client("localhost:8001") as client:
            response = client.rerank("what do cats eat?", ["Cats are carnivores.", "Paris is in France."])
            for result in response.results:
                print(result.index, result.score)
    """

    _client: grpcclient.InferenceServerClient | None = None
    # Guards opening and closing the channel (on first use, from any thread); rare and quick, so one per class.
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def _grpc(self) -> grpcclient.InferenceServerClient:
        with self._lock:
            if self._client is None:
                self._client = self._transport.sync_client()
            return self._client

    def rerank(
        self, query: str, documents: Sequence[Document], *, timeout: float | None = None,
        **options: Unpack[RerankKwargs],
    ) -> RerankResponse:
        """Score every document against the query and return them best first.

        Lists longer than ``chunk_size`` are sent as several concurrent requests and merged; the ranking is the
        same as from one request. An empty list returns an empty response without calling the server.

        Args:
            query: The search query.
            documents: Strings, or mappings with ``text`` and optional ``title`` (scored as ``"{title} {text}"``).
            top_n: Return only the best ``top_n`` results (usage still counts every document).
            instruction: Extra relevance instruction appended to the query (Rank1's ``instruction`` input).
            prompt: A dataset prompt name known to the server, or a custom prompt containing ``FILL_QUERY_HERE``.
            max_reasoning_tokens: Thinking budget per document; the answer is forced when it runs out.
            rethink: Times the model is asked to think again after its first answer.
            return_reasoning: Include each document's reasoning text.
            return_documents: Include the documents as given in the results.
            truncate: ``"END"`` cuts over-long passages (server default), ``"NONE"`` rejects them.
            timeout: Deadline in seconds of each request to the server; defaults to the client's ``timeout``.

        Raises:
            InvalidRequestError: A field was rejected (the message is the server's).
            AuthenticationError: The API key or client certificate was missing or wrong.
            ServerOverloadedError: The queue stayed full through every retry.
            Rank1TimeoutError: A request passed its deadline.
            Rank1ConnectionError: The server could not be reached through every retry.
            ServerError: The server failed.
        """
        plans = self._plans([(query, documents)], RerankOptions(**options))
        return next(self._as_completed(plans, timeout, self._concurrency(None)))[1]

    def rerank_many(
        self, queries_with_documents: Iterable[tuple[str, Sequence[Document]]], *, timeout: float | None = None,
        max_concurrency: int | None = None, **options: Unpack[RerankKwargs],
    ) -> list[RerankResponse]:
        """Rerank several queries, each with its own documents; responses come back in the input order.

        All requests (chunks of all queries) share one bound of ``max_concurrency`` in flight (default: the
        client's). The first error stops the call and is raised. Other arguments as in :meth:`rerank`.
        """
        plans = self._plans(queries_with_documents, RerankOptions(**options))
        responses = dict(self._as_completed(plans, timeout, self._concurrency(max_concurrency)))
        return [responses[position] for position in range(len(responses))]

    def rerank_as_completed(
        self, queries_with_documents: Iterable[tuple[str, Sequence[Document]]], *, timeout: float | None = None,
        max_concurrency: int | None = None, **options: Unpack[RerankKwargs],
    ) -> Iterator[tuple[int, RerankResponse]]:
        """Like :meth:`rerank_many`, but yield ``(position, response)`` as soon as each query is complete.

        Queries are read from the iterable only as capacity frees up, so a long stream (a whole run file) never
        sits in memory at once. Requests go out in query order, so queries tend to complete in order.
        """
        plans = self._plans(queries_with_documents, RerankOptions(**options))
        return self._as_completed(plans, timeout, self._concurrency(max_concurrency))

    def _as_completed(
        self, plans: Iterator[QueryPlan], timeout: float | None, limit: int
    ) -> Iterator[tuple[int, RerankResponse]]:
        """Keep up to ``limit`` chunk requests in flight; yield each query as soon as all its chunks are scored."""
        queue = JobQueue(plans)
        pool = ThreadPoolExecutor(max_workers=limit, thread_name_prefix="rank1-client")
        in_flight: dict[Future[ScoredChunk], QueryPlan] = {}
        failure: BaseException | None = None
        try:
            while True:
                while failure is None and len(in_flight) < limit and (job := queue.next_job()) is not None:
                    plan, request = job
                    in_flight[pool.submit(self._score, request, timeout)] = plan
                yield from queue.pop_complete()  # before raising: queries finished with the failed one still count
                if failure is not None:
                    raise failure
                if not in_flight:
                    return
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    plan = in_flight.pop(future)
                    if future.exception() is None:
                        queue.record(plan, future.result())
                    elif failure is None:
                        failure = future.exception()
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _score(self, request: ChunkRequest, timeout: float | None) -> ScoredChunk:
        def attempt() -> ScoredChunk:
            with server_errors(self.url):
                result = self._grpc().infer(**self._infer_arguments(request, timeout))
            return read_result(request, result)

        return call_with_retries(self._retry, attempt)

    def health(self, *, timeout: float | None = None) -> Health:
        """Ask the server whether it is live and ready, and whether the Rank1 model is ready (no retries).

        Raises the client's errors when the server cannot be reached or refuses the call.
        """
        client, arguments = self._grpc(), self._health_arguments(timeout)
        with server_errors(self.url):
            return Health(
                live=client.is_server_live(**arguments),
                ready=client.is_server_ready(**arguments),
                model_ready=client.is_model_ready(self._model_name, **arguments),
            )

    def ready(self, *, timeout: float | None = None) -> bool:
        """Whether the server and the Rank1 model are ready to serve requests."""
        health = self.health(timeout=timeout)
        return health.ready and health.model_ready

    def close(self) -> None:
        """Close the channel (a later call opens a new one)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def __enter__(self) -> Rank1Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
