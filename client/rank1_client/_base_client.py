"""Settings and request building shared by the blocking and the asyncio client."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._chunks import QueryPlan, plan_queries
from ._constants import (
    DEFAULT_API_KEY_NAME,
    DEFAULT_CHUNK_SIZE,
    DEFAULT_DEADLINE,
    DEFAULT_HEALTH_TIMEOUT,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MODEL_NAME,
    DEFAULT_TIMEOUT,
    DEFAULT_URL,
    INITIAL_RETRY_DELAY,
    MAX_RETRY_DELAY,
)
from ._protocol import ChunkRequest, RerankKwargs, check_int, check_text, split_options
from ._retry import Deadline, RetryPolicy, UnverifiedUnknownModel
from ._transport import ChannelOptions, KeepAlive, TransportConfig
from .errors import ModelNotFoundError, Rank1Error
from .types import NOT_GIVEN, Document, NotGiven

Timeout = float | None | NotGiven
"""A call's ``timeout=``: seconds, ``None`` for no deadline, or ``NOT_GIVEN`` for the client's setting."""

CALL_OPTIONS = ("deadline", "request_id", "extra_headers", "max_retries", "priority")


def _at_least_one(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer of at least 1, got {value!r}")
    return value


def _seconds(name: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"{name} must be a positive number of seconds or None, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class CallSettings:
    """How one client call sends its requests: deadlines, retries, metadata, priority and request ids."""

    timeout: float | None
    deadline: Deadline
    retry: RetryPolicy
    metadata: dict[str, str]
    priority: int
    request_id: str
    per_query_ids: bool
    return_exceptions: bool = False

    def request_id_for(self, position: int) -> str:
        """The id every request of query ``position`` carries: the call's id, with ``-<position>`` appended for
        the queries of ``rerank_many`` and ``rerank_as_completed``."""
        return f"{self.request_id}-{position}" if self.per_query_ids else self.request_id


class BaseRank1Client:
    """The constructor and helpers of :class:`Rank1Client` and :class:`AsyncRank1Client`."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        ssl: bool = False,
        root_certificates: str | Path | None = None,
        client_certificate: str | Path | None = None,
        client_key: str | Path | None = None,
        api_key: str | None = None,
        api_key_name: str = DEFAULT_API_KEY_NAME,
        headers: Mapping[str, str] | None = None,
        keepalive: KeepAlive | None = None,
        compression: str | None = None,
        channel_options: ChannelOptions | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        deadline: float | None = DEFAULT_DEADLINE,
        max_retries: int = DEFAULT_MAX_RETRIES,
        initial_retry_delay: float = INITIAL_RETRY_DELAY,
        max_retry_delay: float = MAX_RETRY_DELAY,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        model_name: str = DEFAULT_MODEL_NAME,
    ) -> None:
        """Configure a client; no connection is made until the first call.

        Args:
            url: ``host:port`` of the server's gRPC endpoint (any gRPC target, e.g. ``dns:///rank1:8001``).
            ssl: Use TLS (implied by any certificate argument). Without ``root_certificates`` the system's
                trusted roots verify the server.
            root_certificates: PEM file of the CA that signed the server's certificate.
            client_certificate: PEM certificate chain of this client, for mutual TLS (with ``client_key``).
            client_key: PEM private key of ``client_certificate``.
            api_key: Key of the server's restricted protocols (``--grpc-restricted-protocol``), sent as the
                metadata ``triton-grpc-protocol-<api_key_name>``. Without TLS to a host other than this one, an
                :class:`~rank1_client.errors.InsecureTransportWarning` is issued.
            api_key_name: The ``<key>`` part of the server's ``--grpc-restricted-protocol=<protocols>:<key>=<value>``.
            headers: Extra gRPC metadata sent with every call (e.g. for a gateway).
            keepalive: gRPC keepalive settings; ``None`` sends no pings.
            compression: ``"gzip"`` or ``"deflate"`` to compress requests; ``None`` for none.
            channel_options: gRPC channel arguments, a mapping or ``(name, value)`` pairs, e.g.
                ``{"grpc.lb_policy_name": "round_robin"}``; they override the client's own.
            timeout: Default deadline in seconds of each request to the server (``None``: no deadline).
            deadline: Default bound in seconds of a whole call, all its requests and retries (``None``: none).
            max_retries: Retries of a request after a transient failure (0 disables retries).
            initial_retry_delay: Seconds before the first retry; doubles for each further retry.
            max_retry_delay: Upper bound of the delay between retries.
            chunk_size: Documents per request; must not exceed the server's ``max_documents``.
            max_concurrency: Default number of requests one call keeps in flight.
            model_name: The served entry model.
        """
        self._transport = TransportConfig(
            url=url, ssl=ssl, root_certificates=root_certificates, client_certificate=client_certificate,
            client_key=client_key, api_key=api_key, api_key_name=api_key_name, headers=dict(headers or {}),
            keepalive=keepalive, compression=compression, channel_options=channel_options,
        )
        self._transport.warn_if_insecure(stacklevel=3)
        self._retry = RetryPolicy(max_retries, initial_retry_delay, max_retry_delay)
        self._timeout = _seconds("timeout", timeout)
        self._deadline = _seconds("deadline", deadline)
        self._chunk_size = _at_least_one("chunk_size", chunk_size)
        self._max_concurrency = _at_least_one("max_concurrency", max_concurrency)
        self._model_name = model_name
        self._channels = self._channel_pool()

    def _channel_pool(self) -> Any:
        """The pool of channels of this kind of client (blocking or asyncio)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        api_key = ", api_key='***'" if self._transport.api_key is not None else ""
        return (f"{type(self).__name__}(url={self.url!r}, model_name={self._model_name!r}, "
                f"tls={self._transport.uses_tls}{api_key})")

    @property
    def url(self) -> str:
        """The server's gRPC endpoint."""
        return self._transport.url

    @property
    def model_name(self) -> str:
        """The entry model this client calls."""
        return self._model_name

    def _settings(self, timeout: Timeout, call_options: Mapping[str, Any], *, per_query_ids: bool,
                  return_exceptions: bool = False) -> CallSettings:
        unknown = set(call_options) - set(CALL_OPTIONS)
        if unknown:
            raise TypeError(f"unexpected keyword argument {sorted(unknown)[0]!r}")
        deadline = call_options.get("deadline", NOT_GIVEN)
        max_retries = check_int("max_retries", call_options.get("max_retries"), minimum=0)
        request_id = call_options.get("request_id")
        if request_id is None:
            request_id = uuid.uuid4().hex
        return CallSettings(
            timeout=self._timeout if timeout is NOT_GIVEN else _seconds("timeout", timeout),
            deadline=Deadline.after(self._deadline if deadline is NOT_GIVEN else _seconds("deadline", deadline)),
            retry=self._retry if max_retries is None else dataclasses.replace(self._retry, max_retries=max_retries),
            metadata=self._transport.metadata(call_options.get("extra_headers")),
            priority=check_int("priority", call_options.get("priority"), minimum=0) or 0,
            request_id=check_text("request_id", request_id),
            per_query_ids=per_query_ids,
            return_exceptions=return_exceptions,
        )

    def _prepare(
        self, queries_with_documents: Iterable[tuple[str, Sequence[Document]]], timeout: Timeout,
        options: RerankKwargs, *, per_query_ids: bool = True, return_exceptions: bool = False,
    ) -> tuple[Iterator[QueryPlan], CallSettings]:
        """Check every option (before anything is sent) and plan the queries lazily."""
        scoring, call_options = split_options(options)
        call = self._settings(timeout, call_options, per_query_ids=per_query_ids,
                              return_exceptions=return_exceptions)
        return plan_queries(queries_with_documents, scoring, self._chunk_size, call.request_id_for), call

    def _concurrency(self, max_concurrency: int | None) -> int:
        return self._max_concurrency if max_concurrency is None else _at_least_one("max_concurrency", max_concurrency)

    def _infer_arguments(self, request: ChunkRequest, call: CallSettings) -> dict[str, Any]:
        return {
            "model_name": self._model_name,
            "inputs": request.inputs(),
            "outputs": request.outputs(),
            "parameters": request.options.parameters(),
            "request_id": request.request_id,
            "priority": call.priority,
            "client_timeout": call.deadline.cap(call.timeout),
            "headers": call.metadata,
            "compression_algorithm": self._transport.compression,
        }

    def _health_settings(self, timeout: Timeout) -> tuple[Deadline, dict[str, str]]:
        seconds = DEFAULT_HEALTH_TIMEOUT if timeout is NOT_GIVEN else _seconds("timeout", timeout)
        return Deadline.after(seconds), self._transport.metadata()

    def _unknown_model(self, error: Rank1Error, server_ready: bool | None) -> Rank1Error:
        """What a ``NOT_FOUND`` "unknown model" means, given whether the server says it is ready (``None``: it did
        not answer): a ready server lacks the model (mistyped), a not-ready one is draining or still loading.

        Readiness rather than the model index: deployments lock Triton's model-repository API (explicit model
        control opens load/unload to clients), and the index belongs to it."""
        if server_ready is None:
            unverified = UnverifiedUnknownModel(error.message, status=error.status)
            unverified.__cause__ = error.__cause__
            return unverified
        if not server_ready:
            return error  # shutting down (draining) or still loading its models: retried
        return ModelNotFoundError(
            f"{self.url}: the server is ready but serves no model named {self._model_name!r}; check model_name",
            status=error.status)
