"""The blocking client."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any, Literal, overload

import tritonclient.grpc as grpcclient

from ._base_client import BaseRank1Client, CallSettings, Timeout
from ._chunks import JobQueue, Outcome, QueryPlan
from ._constants import READINESS_CHECK_TIMEOUT
from ._protocol import ChunkRequest, RerankKwargs, ScoredChunk, read_result
from ._retry import call_with_retries
from ._transport import ChannelPool, Lease, is_unknown_model, server_errors
from .errors import Rank1Error
from .types import NOT_GIVEN, Document, Health, RerankResponse

if TYPE_CHECKING:
    from typing_extensions import Unpack


class CallCancelled(Exception):
    """Raised inside a worker whose request was cancelled (another request of the call failed, the caller left
    ``rerank_as_completed``); never reaches the caller."""


class CancelToken:
    """Cancels one chunk's work: the gRPC call in flight (tritonclient's ``CallContext``) or the wait before its
    next retry."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._call: Any = None

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def cancel(self) -> None:
        with self._lock:
            self._event.set()
            call = self._call
        if call is not None:
            call.cancel()

    def attach(self, call: Any) -> None:
        with self._lock:
            self._call = call
            cancelled = self._event.is_set()
        if cancelled:
            call.cancel()

    def detach(self) -> None:
        with self._lock:
            self._call = None

    def sleep(self, seconds: float) -> None:
        """Wait before a retry; raise :class:`CallCancelled` as soon as the token is cancelled."""
        if self._event.wait(seconds):
            raise CallCancelled


class Rank1Client(BaseRank1Client):
    """Blocking client of a Rank1 server (Triton, gRPC). Safe to share between threads.

    Example::

        with Rank1Client("localhost:8001") as client:
            response = client.rerank("what do cats eat?", ["Cats are carnivores.", "Paris is in France."])
            for result in response.results:
                print(result.index, result.score)
    """

    _channels: ChannelPool[grpcclient.InferenceServerClient]

    def _channel_pool(self) -> ChannelPool[grpcclient.InferenceServerClient]:
        return ChannelPool(self._transport.sync_client, lambda client: client.close())

    def rerank(
        self, query: str, documents: Sequence[Document], *, timeout: Timeout = NOT_GIVEN,
        **options: Unpack[RerankKwargs],
    ) -> RerankResponse:
        """Score every document against the query and return them best first.

        Lists longer than ``chunk_size`` are sent as several concurrent requests and merged; the ranking is the
        same as from one request. An empty list returns an empty response without calling the server. When one
        request fails, the others still in flight are cancelled.

        Args:
            query: The search query.
            documents: Strings, or mappings with a string ``text`` and an optional string ``title`` (scored as
                ``"{title} {text}"``).
            top_n: Return only the best ``top_n`` results (usage still counts every document).
            instruction: Extra relevance instruction appended to the query (Rank1's ``instruction`` input).
            prompt: A dataset prompt name known to the server, or a custom prompt containing ``FILL_QUERY_HERE``.
            max_reasoning_tokens: Thinking budget per document; the answer is forced when it runs out.
            rethink: Times the model is asked to think again after its first answer.
            return_reasoning: Include each document's reasoning text.
            return_documents: Include the documents as given in the results.
            truncate: ``"END"`` cuts over-long passages (server default), ``"NONE"`` rejects them.
            timeout: Deadline in seconds of each request to the server; ``None`` for none; left out: the
                client's ``timeout``.
            deadline: Bound in seconds of the whole call (every chunk and retry); left out: the client's.
            request_id: Sent as Triton's request id with every request (server logs, error messages) and
                returned as ``response.request_id`` and ``error.request_id``; a random one when left out.
            extra_headers: gRPC metadata for this call only, e.g. ``{"traceparent": "00-..."}``.
            max_retries: Retries of a failed request for this call (default: the client's).
            priority: Triton's request priority (1 is the highest level; 0 or left out: the model's default).

        Raises:
            InvalidRequestError: A field was rejected (by the client, or by the server in its words).
            AuthenticationError: The API key was missing or wrong, or the server's certificate is not trusted.
            ModelNotFoundError: The server serves no model named ``model_name``.
            ServerOverloadedError: The queue stayed full (or the gateway kept rate-limiting) through every retry.
            Rank1TimeoutError: A request passed its ``timeout``, or the call its ``deadline``.
            Rank1ConnectionError: The server could not be reached through every retry (also: a server that
                refuses this client's certificate closes the connection).
            ServerError: The server failed.
        """
        plans, call = self._prepare([(query, documents)], timeout, options, per_query_ids=False)
        outcome = next(self._as_completed(plans, call, self._concurrency(None)))[1]
        assert isinstance(outcome, RerankResponse)
        return outcome

    @overload
    def rerank_many(
        self, queries_with_documents: Iterable[tuple[str, Sequence[Document]]], *, timeout: Timeout = NOT_GIVEN,
        max_concurrency: int | None = None, return_exceptions: Literal[False] = ..., **options: Unpack[RerankKwargs],
    ) -> list[RerankResponse]: ...

    @overload
    def rerank_many(
        self, queries_with_documents: Iterable[tuple[str, Sequence[Document]]], *, timeout: Timeout = NOT_GIVEN,
        max_concurrency: int | None = None, return_exceptions: bool, **options: Unpack[RerankKwargs],
    ) -> list[RerankResponse | Rank1Error]: ...

    def rerank_many(
        self, queries_with_documents: Iterable[tuple[str, Sequence[Document]]], *, timeout: Timeout = NOT_GIVEN,
        max_concurrency: int | None = None, return_exceptions: bool = False, **options: Unpack[RerankKwargs],
    ) -> list[RerankResponse] | list[RerankResponse | Rank1Error]:
        """Rerank several queries, each with its own documents; responses come back in the input order.

        All requests (chunks of all queries) share one bound of ``max_concurrency`` in flight (default: the
        client's). The first error cancels the requests in flight and is raised; with ``return_exceptions=True``
        a failed query's place holds its :class:`~rank1_client.errors.Rank1Error` instead and the others go on.
        Request ids are ``<request_id>-<position>``. Other arguments as in :meth:`rerank`.
        """
        plans, call = self._prepare(queries_with_documents, timeout, options, return_exceptions=return_exceptions)
        outcomes = dict(self._as_completed(plans, call, self._concurrency(max_concurrency)))
        return [outcomes[position] for position in range(len(outcomes))]

    @overload
    def rerank_as_completed(
        self, queries_with_documents: Iterable[tuple[str, Sequence[Document]]], *, timeout: Timeout = NOT_GIVEN,
        max_concurrency: int | None = None, return_exceptions: Literal[False] = ..., **options: Unpack[RerankKwargs],
    ) -> Iterator[tuple[int, RerankResponse]]: ...

    @overload
    def rerank_as_completed(
        self, queries_with_documents: Iterable[tuple[str, Sequence[Document]]], *, timeout: Timeout = NOT_GIVEN,
        max_concurrency: int | None = None, return_exceptions: bool, **options: Unpack[RerankKwargs],
    ) -> Iterator[tuple[int, RerankResponse | Rank1Error]]: ...

    def rerank_as_completed(
        self, queries_with_documents: Iterable[tuple[str, Sequence[Document]]], *, timeout: Timeout = NOT_GIVEN,
        max_concurrency: int | None = None, return_exceptions: bool = False, **options: Unpack[RerankKwargs],
    ) -> Iterator[tuple[int, RerankResponse]] | Iterator[tuple[int, RerankResponse | Rank1Error]]:
        """Like :meth:`rerank_many`, but yield ``(position, response)`` as soon as each query is complete.

        Queries are read from the iterable only as capacity frees up, so a long stream (a whole run file) never
        sits in memory at once. Requests go out in query order, so queries tend to complete in order. Leaving the
        loop early (``break``, an exception) cancels the requests still in flight; if you keep a reference to the
        iterator, ``close()`` it. With ``return_exceptions=True`` a failed query yields ``(position, error)``.
        """
        plans, call = self._prepare(queries_with_documents, timeout, options, return_exceptions=return_exceptions)
        return self._as_completed(plans, call, self._concurrency(max_concurrency))

    def _as_completed(
        self, plans: Iterator[QueryPlan], call: CallSettings, limit: int
    ) -> Iterator[tuple[int, Outcome]]:
        """Keep up to ``limit`` chunk requests in flight; yield each query as soon as all its chunks are scored
        (or, with ``return_exceptions``, one failed). Whatever ends the iteration cancels what is in flight."""
        queue = JobQueue(plans)
        pool = ThreadPoolExecutor(max_workers=limit, thread_name_prefix="rank1-client")
        in_flight: dict[Future[ScoredChunk], tuple[QueryPlan, ChunkRequest, CancelToken]] = {}
        failure: BaseException | None = None
        try:
            while True:
                while failure is None and len(in_flight) < limit and (job := queue.next_job()) is not None:
                    plan, request = job
                    token = CancelToken()
                    in_flight[pool.submit(self._score, request, call, token)] = (plan, request, token)
                for position, outcome in queue.pop_done():  # before raising: finished queries still count
                    if isinstance(outcome, Rank1Error) and not call.return_exceptions:
                        failure = failure or outcome
                    else:
                        yield position, outcome
                if failure is not None:
                    raise failure
                if not in_flight:
                    return
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    plan, request, _token = in_flight.pop(future)
                    error = future.exception()
                    if error is None:
                        queue.record(plan, future.result())
                    elif isinstance(error, Rank1Error):
                        queue.fail(plan, request, error)
                        if not call.return_exceptions:
                            failure = failure or plan.error
                        for other_plan, _, other_token in in_flight.values():  # the query failed: stop its others
                            if other_plan is plan:
                                other_token.cancel()
                    elif not isinstance(error, CallCancelled):
                        failure = failure or error
                if failure is not None:
                    for _, _, token in in_flight.values():
                        token.cancel()
        finally:
            for _, _, token in in_flight.values():
                token.cancel()
            pool.shutdown(wait=False, cancel_futures=True)

    def _score(self, request: ChunkRequest, call: CallSettings, token: CancelToken) -> ScoredChunk:
        failed: list[Lease[grpcclient.InferenceServerClient]] = []

        def attempt() -> ScoredChunk:
            if token.cancelled:
                raise CallCancelled
            lease = self._channels.acquire()
            try:
                result = self._infer(lease.client, request, call, token)
            except Rank1Error as error:
                failed[:] = [lease]
                if is_unknown_model(error):
                    raise self._unknown_model(error, self._server_ready(lease.client, call)) from error.__cause__
                raise
            finally:
                self._channels.release(lease)
            return read_result(request, result)

        def reconnect(_: Rank1Error) -> None:
            if failed:
                self._channels.reconnect(failed[0])

        try:
            return call_with_retries(call.retry, attempt, deadline=call.deadline, sleep=token.sleep,
                                     reconnect=reconnect)
        except Rank1Error as error:
            error._concerning(request_id=request.request_id, query=request.query,
                              document_indices=request.document_indices)
            raise

    def _infer(self, client: grpcclient.InferenceServerClient, request: ChunkRequest, call: CallSettings,
               token: CancelToken) -> grpcclient.InferResult:
        """One request through ``async_infer``, so that ``token`` can cancel it while it runs."""
        finished = threading.Event()
        outcome: list[Any] = []

        def callback(result: Any, error: Any) -> None:
            outcome.append((result, error))
            finished.set()

        with server_errors(self.url):
            arguments = self._infer_arguments(request, call)
            token.attach(client.async_infer(callback=callback, **arguments))
            try:
                finished.wait()
            finally:
                token.detach()
            if token.cancelled:
                raise CallCancelled
            result, error = outcome[0]
            if error is not None:
                raise error
        return result

    def _server_ready(self, client: grpcclient.InferenceServerClient, call: CallSettings) -> bool | None:
        """Whether the server says it is ready, or ``None`` when it does not answer."""
        try:
            with server_errors(self.url):
                return bool(client.is_server_ready(headers=call.metadata,
                                                   client_timeout=call.deadline.cap(READINESS_CHECK_TIMEOUT)))
        except Rank1Error:
            return None

    def health(self, *, timeout: Timeout = NOT_GIVEN) -> Health:
        """Ask the server whether it is live and ready, and whether the Rank1 model is ready (no retries).

        ``timeout`` bounds the whole check (its three calls together): 10 s when left out, ``None`` for none.
        Raises the client's errors when the server cannot be reached or refuses the call.
        """
        deadline, headers = self._health_settings(timeout)
        lease = self._channels.acquire()
        client = lease.client
        try:
            with server_errors(self.url):
                return Health(
                    live=client.is_server_live(headers=headers, client_timeout=deadline.cap(None)),
                    ready=client.is_server_ready(headers=headers, client_timeout=deadline.cap(None)),
                    model_ready=client.is_model_ready(self._model_name, headers=headers,
                                                      client_timeout=deadline.cap(None)),
                )
        finally:
            self._channels.release(lease)

    def ready(self, *, timeout: Timeout = NOT_GIVEN) -> bool:
        """Whether the server and the Rank1 model are ready to serve requests."""
        health = self.health(timeout=timeout)
        return health.ready and health.model_ready

    def close(self) -> None:
        """Close the channel (a later call opens a new one); calls still running raise ``ClientClosedError``."""
        for client in self._channels.close_all():
            client.close()

    def __enter__(self) -> Rank1Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
