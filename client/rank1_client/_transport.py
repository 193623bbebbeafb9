"""The gRPC connection: channel options, TLS, metadata headers, and the translation of server errors."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import tritonclient.grpc as grpcclient
import tritonclient.grpc.aio as grpcclient_aio
from tritonclient.utils import InferenceServerException

from ._constants import MAX_GRPC_MESSAGE_BYTES, RESTRICTED_PROTOCOL_HEADER_PREFIX
from .errors import (
    AuthenticationError,
    InvalidRequestError,
    Rank1ConnectionError,
    Rank1Error,
    Rank1TimeoutError,
    ServerError,
    ServerOverloadedError,
)

COMPRESSION_ALGORITHMS = ("gzip", "deflate")
# Queue full: Triton's queue policy, and TensorRT-LLM's executor ("Maximum queue size of N has been reached, please
# try again later", which the C++ backend returns as INTERNAL when a client calls tensorrt_llm directly).
QUEUE_FULL_MARKERS = ("Exceeds maximum queue size", "has been reached, please try again later")
RESTRICTED_MARKER = "This protocol is restricted"
# The client rejected the server's certificate (a server that rejects a client certificate just closes the socket).
TLS_HANDSHAKE_MARKER = "handshake failed"


@dataclass(frozen=True)
class KeepAlive:
    """gRPC keepalive pings, to keep idle connections through proxies and notice dead peers.

    ``time_s`` must not be shorter than the server's ``--grpc-keepalive-min-time`` (Triton's default: 300 s
    without calls in flight), or the server closes the connection for pinging too often.
    """

    time_s: float
    timeout_s: float = 20.0
    permit_without_calls: bool = False
    max_pings_without_data: int = 2


def _read(path: str | Path | None) -> bytes | None:
    return None if path is None else Path(path).read_bytes()


@dataclass(frozen=True)
class TransportConfig:
    """Everything needed to open a channel to the server and to address it.

    TLS is used when ``ssl`` is set or any certificate path is given; ``client_certificate`` and ``client_key``
    (both PEM) enable mutual TLS. ``api_key`` is sent as ``triton-grpc-protocol-<api_key_name>``, the metadata
    Triton checks for ``--grpc-restricted-protocol=<protocols>:<api_key_name>=<key>``.
    """

    url: str
    ssl: bool = False
    root_certificates: str | Path | None = None
    client_certificate: str | Path | None = None
    client_key: str | Path | None = None
    api_key: str | None = None
    api_key_name: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    keepalive: KeepAlive | None = None
    compression: str | None = None

    def __post_init__(self) -> None:
        if (self.client_certificate is None) != (self.client_key is None):
            raise ValueError("mutual TLS needs both client_certificate and client_key")
        if self.compression is not None and self.compression not in COMPRESSION_ALGORITHMS:
            raise ValueError(f"compression must be one of {', '.join(COMPRESSION_ALGORITHMS)} or None")
        if self.api_key is not None and not self.api_key_name:
            raise ValueError("api_key needs an api_key_name (the <key> of --grpc-restricted-protocol)")

    @property
    def uses_tls(self) -> bool:
        """Whether the channel is encrypted."""
        return self.ssl or self.root_certificates is not None or self.client_certificate is not None

    def credentials(self) -> grpc.ChannelCredentials | None:
        """TLS credentials (system roots unless ``root_certificates`` is given), or ``None`` for plaintext."""
        if not self.uses_tls:
            return None
        return grpc.ssl_channel_credentials(
            root_certificates=_read(self.root_certificates),
            private_key=_read(self.client_key),
            certificate_chain=_read(self.client_certificate),
        )

    def channel_args(self) -> list[tuple[str, int]]:
        """gRPC channel options: unlimited message sizes, and keepalive when configured."""
        args = [
            ("grpc.max_send_message_length", MAX_GRPC_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_GRPC_MESSAGE_BYTES),
        ]
        if self.keepalive is not None:
            args += [
                ("grpc.keepalive_time_ms", int(self.keepalive.time_s * 1000)),
                ("grpc.keepalive_timeout_ms", int(self.keepalive.timeout_s * 1000)),
                ("grpc.keepalive_permit_without_calls", int(self.keepalive.permit_without_calls)),
                ("grpc.http2.max_pings_without_data", self.keepalive.max_pings_without_data),
            ]
        return args

    def metadata(self) -> dict[str, str]:
        """Headers sent with every call (gRPC metadata keys are lower case)."""
        headers = {name.lower(): value for name, value in self.headers.items()}
        if self.api_key is not None:
            headers[RESTRICTED_PROTOCOL_HEADER_PREFIX + self.api_key_name.lower()] = self.api_key
        return headers

    def sync_client(self) -> grpcclient.InferenceServerClient:
        """A blocking tritonclient on a new channel (thread-safe for unary calls)."""
        return grpcclient.InferenceServerClient(self.url, creds=self.credentials(), channel_args=self.channel_args())

    def async_client(self) -> grpcclient_aio.InferenceServerClient:
        """An asyncio tritonclient on a new channel; create it inside the event loop that uses it."""
        return grpcclient_aio.InferenceServerClient(
            self.url, creds=self.credentials(), channel_args=self.channel_args()
        )


def translate_error(error: InferenceServerException, url: str) -> Rank1Error:
    """The client's exception for a tritonclient exception (status names as in ``grpc.StatusCode``)."""
    status = (error.status() or "").removeprefix("StatusCode.") or None
    message = error.message() or str(error)
    if status == "INVALID_ARGUMENT":
        field_name = message.split(":", 1)[0] if ":" in message else None
        return InvalidRequestError(message, status=status, field=field_name)
    if status == "DEADLINE_EXCEEDED":
        return Rank1TimeoutError(message, status=status)
    if status in ("UNAUTHENTICATED", "PERMISSION_DENIED") or RESTRICTED_MARKER in message:
        return AuthenticationError(message, status=status)
    if TLS_HANDSHAKE_MARKER in message.lower():
        return AuthenticationError(f"{url}: {message}", status=status)
    if any(marker in message for marker in QUEUE_FULL_MARKERS):
        return ServerOverloadedError(message, status=status)
    if status in ("UNAVAILABLE", "NOT_FOUND"):
        return Rank1ConnectionError(f"{url}: {message}", status=status)
    return ServerError(message, status=status)


@contextmanager
def server_errors(url: str) -> Iterator[None]:
    """Re-raise tritonclient exceptions as the client's own."""
    try:
        yield
    except InferenceServerException as error:
        raise translate_error(error, url) from error
