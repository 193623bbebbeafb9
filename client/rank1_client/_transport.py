"""The gRPC connection: channel options, TLS, metadata headers, channels that can be replaced, and the translation
of server errors."""

from __future__ import annotations

import asyncio
import re
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import grpc
import tritonclient.grpc as grpcclient
import tritonclient.grpc.aio as grpcclient_aio
from tritonclient.utils import InferenceServerException

from ._constants import MAX_GRPC_MESSAGE_BYTES, RESTRICTED_PROTOCOL_HEADER_PREFIX, SUBCHANNEL_POOL_OPTION
from .errors import (
    AuthenticationError,
    ClientClosedError,
    ConfigurationError,
    InsecureTransportWarning,
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
# The client rejected the server's certificate: not signed by a trusted CA, or not for this host name (a server that
# rejects a client certificate just closes the socket).
TLS_FAILURE_MARKERS = ("handshake failed", "hostname verification check failed", "certificate_verify_failed")
# Triton's answer for a model it does not serve: a mistyped name, or (Triton 2.51) any model of a draining server.
UNKNOWN_MODEL_MARKER = "unknown model"
# gRPC's words for a call on (or cut by) a channel that this process closed.
CLOSED_CHANNEL_MARKERS = ("closed channel", "channel closed", "channel is closed")
# Triton core prefixes some messages with the request id: "[request id: <id_unknown>] unexpected shape ...".
REQUEST_ID_PREFIX = re.compile(r"^\[request id: [^\]]*\]\s*")
# The entry model's own messages name the field first ("prompt: unknown dataset prompt ..."); Triton core's name the
# input in quotes ("unexpected shape for input 'query' for model 'rank1'").
FIELD_PREFIX = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*):\s")
QUOTED_INPUT = re.compile(r"\binput '([A-Za-z_][A-Za-z0-9_]*)'")


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


def _read(path: str | Path | None, setting: str) -> bytes | None:
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise ConfigurationError(f"{setting}: cannot read {path}: {error.strerror or error}", field=setting) from None


ChannelOptions = Mapping[str, Any] | Sequence[tuple[str, Any]]


def _channel_option_pairs(options: ChannelOptions | None) -> tuple[tuple[str, Any], ...]:
    if options is None:
        return ()
    pairs = tuple(options.items()) if isinstance(options, Mapping) else tuple(tuple(pair) for pair in options)
    for pair in pairs:
        if len(pair) != 2 or not isinstance(pair[0], str):
            raise ValueError(f"channel_options: expected (name, value) pairs, got {pair!r}")
    return pairs  # type: ignore[return-value]


def _is_loopback(url: str) -> bool:
    host = url.rsplit(":", 1)[0].strip("[]").lower() if ":" in url else url.lower()
    host = host.removeprefix("dns:///").removeprefix("ipv4:").removeprefix("ipv6:")
    return host in ("localhost", "::1") or host.startswith("127.") or host.startswith("unix:")


@dataclass(frozen=True, repr=False)
class TransportConfig:
    """Everything needed to open a channel to the server and to address it.

    TLS is used when ``ssl`` is set or any certificate path is given; ``client_certificate`` and ``client_key``
    (both PEM) enable mutual TLS. ``api_key`` is sent as ``triton-grpc-protocol-<api_key_name>``, the metadata
    Triton checks for ``--grpc-restricted-protocol=<protocols>:<api_key_name>=<key>``. ``channel_options`` are
    gRPC channel arguments added to (and overriding) the client's own, e.g. ``{"grpc.lb_policy_name":
    "round_robin"}`` or ``{"grpc.ssl_target_name_override": "rank1.internal"}``.

    The repr shows neither the API key nor header values.
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
    channel_options: ChannelOptions | None = None

    def __post_init__(self) -> None:
        if (self.client_certificate is None) != (self.client_key is None):
            raise ValueError("mutual TLS needs both client_certificate and client_key")
        if self.compression is not None and self.compression not in COMPRESSION_ALGORITHMS:
            raise ValueError(f"compression must be one of {', '.join(COMPRESSION_ALGORITHMS)} or None")
        if self.api_key is not None and not self.api_key_name:
            raise ValueError("api_key needs an api_key_name (the <key> of --grpc-restricted-protocol)")
        object.__setattr__(self, "channel_options", _channel_option_pairs(self.channel_options))

    def __repr__(self) -> str:
        key = "'***'" if self.api_key is not None else "None"
        return (f"TransportConfig(url={self.url!r}, tls={self.uses_tls}, api_key={key}, "
                f"headers={sorted(self.headers)!r}, compression={self.compression!r})")

    @property
    def uses_tls(self) -> bool:
        """Whether the channel is encrypted."""
        return self.ssl or self.root_certificates is not None or self.client_certificate is not None

    def warn_if_insecure(self, stacklevel: int = 2) -> None:
        """Warn (:class:`InsecureTransportWarning`) when an API key would travel unencrypted to another host."""
        if self.api_key is not None and not self.uses_tls and not _is_loopback(self.url):
            warnings.warn(
                f"an API key is sent to {self.url} without TLS, readable by anyone on the network; "
                "pass ssl=True or root_certificates=...", InsecureTransportWarning, stacklevel=stacklevel + 1,
            )

    def credentials(self) -> grpc.ChannelCredentials | None:
        """TLS credentials (system roots unless ``root_certificates`` is given), or ``None`` for plaintext.

        The files are read each time a channel opens, so renewed certificates are picked up on reconnect.
        """
        if not self.uses_tls:
            return None
        return grpc.ssl_channel_credentials(
            root_certificates=_read(self.root_certificates, "root_certificates"),
            private_key=_read(self.client_key, "client_key"),
            certificate_chain=_read(self.client_certificate, "client_certificate"),
        )

    def channel_args(self) -> list[tuple[str, Any]]:
        """gRPC channel options: unlimited message sizes, a connection of its own, keepalive when configured, then
        ``channel_options`` (a name given there replaces the client's value)."""
        args: list[tuple[str, Any]] = [
            ("grpc.max_send_message_length", MAX_GRPC_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_GRPC_MESSAGE_BYTES),
            SUBCHANNEL_POOL_OPTION,
        ]
        if self.keepalive is not None:
            args += [
                ("grpc.keepalive_time_ms", int(self.keepalive.time_s * 1000)),
                ("grpc.keepalive_timeout_ms", int(self.keepalive.timeout_s * 1000)),
                ("grpc.keepalive_permit_without_calls", int(self.keepalive.permit_without_calls)),
                ("grpc.http2.max_pings_without_data", self.keepalive.max_pings_without_data),
            ]
        overridden = {name for name, _ in self.channel_options}  # type: ignore[union-attr]
        return [arg for arg in args if arg[0] not in overridden] + list(self.channel_options)  # type: ignore[arg-type]

    def metadata(self, extra_headers: Mapping[str, str] | None = None) -> dict[str, str]:
        """Headers sent with every call (gRPC metadata keys are lower case); ``extra_headers`` (one call's, e.g.
        ``traceparent``) are added last."""
        headers = {name.lower(): value for name, value in self.headers.items()}
        if self.api_key is not None:
            headers[RESTRICTED_PROTOCOL_HEADER_PREFIX + self.api_key_name.lower()] = self.api_key
        for name, value in (extra_headers or {}).items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise InvalidRequestError(f"extra_headers: names and values must be strings, got {name!r}: "
                                          f"{value!r}", field="extra_headers")
            headers[name.lower()] = value
        return headers

    def sync_client(self) -> grpcclient.InferenceServerClient:
        """A blocking tritonclient on a new channel (thread-safe for unary calls)."""
        return grpcclient.InferenceServerClient(self.url, creds=self.credentials(), channel_args=self.channel_args())

    def async_client(self) -> grpcclient_aio.InferenceServerClient:
        """An asyncio tritonclient on a new channel; create it inside the event loop that uses it."""
        return grpcclient_aio.InferenceServerClient(
            self.url, creds=self.credentials(), channel_args=self.channel_args()
        )


def invalid_field(message: str) -> str | None:
    """The field an ``INVALID_ARGUMENT`` message is about, or ``None`` (Triton's request-id prefix is skipped)."""
    message = REQUEST_ID_PREFIX.sub("", message)
    if match := FIELD_PREFIX.match(message):
        return match.group(1)
    if match := QUOTED_INPUT.search(message):
        return match.group(1)
    return None


def is_unknown_model(error: Rank1Error) -> bool:
    """Whether ``error`` is Triton's ``NOT_FOUND`` "Request for unknown model" (a typo, or a draining server)."""
    return error.status == "NOT_FOUND" and UNKNOWN_MODEL_MARKER in error.message.lower()


def translate_error(error: InferenceServerException, url: str) -> Rank1Error:
    """The client's exception for a tritonclient exception (status names as in ``grpc.StatusCode``)."""
    status = (error.status() or "").removeprefix("StatusCode.") or None
    message = error.message() or str(error)
    lowered = message.lower()
    if status == "INVALID_ARGUMENT":
        return InvalidRequestError(message, status=status, field=invalid_field(message))
    if status == "DEADLINE_EXCEEDED":
        return Rank1TimeoutError(message, status=status)
    if status == "CANCELLED" and any(marker in lowered for marker in CLOSED_CHANNEL_MARKERS):
        return ClientClosedError(f"{url}: the client was closed during the call ({message})", status=status)
    if status in ("UNAUTHENTICATED", "PERMISSION_DENIED") or RESTRICTED_MARKER in message:
        return AuthenticationError(message, status=status)
    if any(marker in lowered for marker in TLS_FAILURE_MARKERS):
        return AuthenticationError(f"{url}: {message}", status=status)
    if status == "RESOURCE_EXHAUSTED" or any(marker in message for marker in QUEUE_FULL_MARKERS):
        return ServerOverloadedError(message, status=status)
    if status in ("UNAVAILABLE", "NOT_FOUND"):
        return Rank1ConnectionError(f"{url}: {message}", status=status)
    return ServerError(message, status=status)


@contextmanager
def server_errors(url: str) -> Iterator[None]:
    """Re-raise tritonclient exceptions, and gRPC's complaints about a closed channel, as the client's own."""
    try:
        yield
    except InferenceServerException as error:
        raise translate_error(error, url) from error
    except grpc.aio.UsageError as error:
        raise ClientClosedError(f"{url}: the client was closed during the call ({error})") from error
    except ValueError as error:  # grpc: "Cannot invoke RPC on closed channel!"
        if isinstance(error, Rank1Error) or not any(m in str(error).lower() for m in CLOSED_CHANNEL_MARKERS):
            raise
        raise ClientClosedError(f"{url}: the client was closed during the call ({error})") from error


C = TypeVar("C")


class Lease(Generic[C]):
    """One channel (a tritonclient) and how many attempts use it; a retired lease closes when its last user ends."""

    def __init__(self, client: C) -> None:
        self.client = client
        self.users = 0
        self.retired = False
        self.closed = False  # by ChannelPool.close_all: calls still running on it are being cut


class ChannelPool(Generic[C]):
    """The client's current channel, opened on first use and replaced after a connection failure.

    ``acquire`` hands out the current channel (opening one if needed); ``reconnect(lease)`` retires a channel that
    failed, so the next attempt opens a new connection (during a pod drain: to another pod), while the calls still
    running on the old channel finish there; ``close`` closes every channel at once. The blocking client shares a
    pool between threads (``lock``); the asyncio client uses it from one event loop.
    """

    def __init__(self, open_client: Callable[[], C], close_client: Callable[[C], Any],
                 lock: threading.Lock | None = None) -> None:
        self._open = open_client
        self._close = close_client
        self._lock = lock or threading.Lock()
        self._current: Lease[C] | None = None
        self._open_leases: set[Lease[C]] = set()

    def acquire(self) -> Lease[C]:
        with self._lock:
            if self._current is None:
                self._current = Lease(self._open())
                self._open_leases.add(self._current)
            self._current.users += 1
            return self._current

    def release(self, lease: Lease[C]) -> None:
        with self._lock:
            lease.users -= 1
            close = lease.retired and lease.users == 0 and lease in self._open_leases
            if close:
                self._open_leases.discard(lease)
        if close:
            self._close(lease.client)

    def reconnect(self, lease: Lease[C]) -> None:
        """Stop handing out ``lease``'s channel (a no-op when another attempt already replaced it)."""
        with self._lock:
            if self._current is lease:
                self._current = None
            lease.retired = True
            close = lease.users == 0 and lease in self._open_leases
            if close:
                self._open_leases.discard(lease)
        if close:
            self._close(lease.client)

    def close_all(self) -> list[C]:
        """Forget every channel and return them, for the caller to close."""
        with self._lock:
            leases, self._open_leases, self._current = self._open_leases, set(), None
            for lease in leases:
                lease.retired = lease.closed = True
        return [lease.client for lease in leases]


def close_async_client(client: grpcclient_aio.InferenceServerClient) -> None:
    """Close an asyncio channel in the background (from code that cannot await)."""
    task = asyncio.ensure_future(client.close())
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)


_BACKGROUND: set[asyncio.Future[Any]] = set()
