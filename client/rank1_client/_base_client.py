"""Settings and request building shared by the blocking and the asyncio client."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ._chunks import QueryPlan, plan_queries
from ._constants import (
    DEFAULT_API_KEY_NAME,
    DEFAULT_CHUNK_SIZE,
    DEFAULT_HEALTH_TIMEOUT,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MODEL_NAME,
    DEFAULT_TIMEOUT,
    DEFAULT_URL,
    INITIAL_RETRY_DELAY,
    MAX_RETRY_DELAY,
)
from ._protocol import ChunkRequest, RerankOptions
from ._retry import RetryPolicy
from ._transport import KeepAlive, TransportConfig
from .types import Document


def _at_least_one(name: str, value: int) -> int:
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return value


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
        timeout: float | None = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        initial_retry_delay: float = INITIAL_RETRY_DELAY,
        max_retry_delay: float = MAX_RETRY_DELAY,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        model_name: str = DEFAULT_MODEL_NAME,
    ) -> None:
        """Configure a client; no connection is made until the first call.

        Args:
            url: ``host:port`` of the server's gRPC endpoint.
            ssl: Use TLS (implied by any certificate argument). Without ``root_certificates`` the system's
                trusted roots verify the server.
            root_certificates: PEM file of the CA that signed the server's certificate.
            client_certificate: PEM certificate chain of this client, for mutual TLS (with ``client_key``).
            client_key: PEM private key of ``client_certificate``.
            api_key: Key of the server's restricted protocols (``--grpc-restricted-protocol``), sent as the
                metadata ``triton-grpc-protocol-<api_key_name>``.
            api_key_name: The ``<key>`` part of the server's ``--grpc-restricted-protocol=<protocols>:<key>=<value>``.
            headers: Extra gRPC metadata sent with every call (e.g. for a gateway).
            keepalive: gRPC keepalive settings; ``None`` sends no pings.
            compression: ``"gzip"`` or ``"deflate"`` to compress requests; ``None`` for none.
            timeout: Default deadline in seconds of each request to the server (``None``: no deadline).
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
            keepalive=keepalive, compression=compression,
        )
        self._retry = RetryPolicy(max_retries, initial_retry_delay, max_retry_delay)
        self._timeout = timeout
        self._chunk_size = _at_least_one("chunk_size", chunk_size)
        self._max_concurrency = _at_least_one("max_concurrency", max_concurrency)
        self._model_name = model_name

    @property
    def url(self) -> str:
        """The server's gRPC endpoint."""
        return self._transport.url

    @property
    def model_name(self) -> str:
        """The entry model this client calls."""
        return self._model_name

    def _plans(self, queries_with_documents: Iterable[tuple[str, Sequence[Document]]],
               options: RerankOptions) -> Iterator[QueryPlan]:
        return plan_queries(queries_with_documents, options, self._chunk_size)

    def _concurrency(self, max_concurrency: int | None) -> int:
        return self._max_concurrency if max_concurrency is None else _at_least_one("max_concurrency", max_concurrency)

    def _infer_arguments(self, request: ChunkRequest, timeout: float | None) -> dict[str, Any]:
        return {
            "model_name": self._model_name,
            "inputs": request.inputs(),
            "outputs": request.outputs(),
            "parameters": request.options.parameters(),
            "client_timeout": self._timeout if timeout is None else timeout,
            "headers": self._transport.metadata(),
            "compression_algorithm": self._transport.compression,
        }

    def _health_arguments(self, timeout: float | None) -> dict[str, Any]:
        return {
            "headers": self._transport.metadata(),
            "client_timeout": DEFAULT_HEALTH_TIMEOUT if timeout is None else timeout,
        }
