"""The exceptions the client raises; catch these, never ``tritonclient``'s ``InferenceServerException``.

::

    Rank1Error
    ├── Rank1ConnectionError        server unreachable, shutting down, or model not loaded (retried)
    │   └── Rank1TimeoutError       the request's deadline passed (not retried)
    ├── InvalidRequestError         the server (or the client) rejected a field (not retried)
    ├── AuthenticationError         missing or wrong API key, untrusted server certificate (not retried)
    ├── ServerOverloadedError       the engine's queue is full (retried)
    └── ServerError                 any other server-side failure (not retried)
"""

from __future__ import annotations


class Rank1Error(Exception):
    """Base class of every error of the Rank1 client.

    Attributes:
        message: What went wrong, in the server's words where the server answered.
        status: The gRPC status name (``"UNAVAILABLE"``, ``"INVALID_ARGUMENT"``, …), or ``None`` for errors
            raised before anything was sent.
    """

    def __init__(self, message: str, *, status: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def __str__(self) -> str:
        return f"[{self.status}] {self.message}" if self.status else self.message


class Rank1ConnectionError(Rank1Error):
    """The server could not be reached, is shutting down, or does not serve the model right now."""


class Rank1TimeoutError(Rank1ConnectionError):
    """The request did not finish within its deadline (``timeout``)."""


class InvalidRequestError(Rank1Error, ValueError):
    """A request field was rejected. ``field`` names it (``"documents"``, ``"top_n"``, …) when known."""

    def __init__(self, message: str, *, status: str | None = None, field: str | None = None) -> None:
        super().__init__(message, status=status)
        self.field = field


class AuthenticationError(Rank1Error):
    """Credentials were missing or not accepted: the API key of a restricted protocol, or the TLS handshake
    failed because the server's certificate is not trusted (check ``root_certificates``)."""


class ServerOverloadedError(Rank1Error):
    """The server's engine queue is full (Triton's "Exceeds maximum queue size", TensorRT-LLM's "Maximum queue size
    of N has been reached"); retrying later helps."""


class ServerError(Rank1Error):
    """The server failed to process a valid request."""
