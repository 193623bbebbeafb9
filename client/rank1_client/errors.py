"""The exceptions the client raises; catch these, never ``tritonclient``'s ``InferenceServerException``.

::

    Rank1Error
    ├── Rank1ConnectionError        server unreachable or draining (retried on a new channel)
    │   ├── Rank1TimeoutError       a request's or the call's deadline passed (not retried)
    │   └── ClientClosedError       the client was closed while the call ran (not retried)
    ├── ModelNotFoundError          the server serves no model of that name (not retried)
    ├── InvalidRequestError         the server (or the client) rejected a field (not retried)
    ├── AuthenticationError         missing or wrong API key, untrusted server certificate (not retried)
    ├── ConfigurationError          the client's own settings are unusable, e.g. a missing certificate file
    ├── ServerOverloadedError       the engine's queue is full, or a gateway rate-limits (retried)
    └── ServerError                 any other server-side failure (not retried)

Every error carries what it concerns: ``request_id``, ``query``, ``position`` (of the query in ``rerank_many``),
``document_index`` (one rejected document) or ``document_indices`` (the documents of the failed request).
"""

from __future__ import annotations


class Rank1Error(Exception):
    """Base class of every error of the Rank1 client.

    Attributes:
        message: What went wrong, in the server's words where the server answered.
        status: The gRPC status name (``"UNAVAILABLE"``, ``"INVALID_ARGUMENT"``, …), or ``None`` for errors
            raised before anything was sent.
        request_id: The request id the failed request carried (``None`` before the call was planned).
        query: The query of the failed request.
        position: Position of that query in the input of ``rerank_many``/``rerank_as_completed`` (0 in ``rerank``).
        document_index: The one document the error is about (e.g. a document without text), if any.
        document_indices: Indices (in the query's document list) of the documents of the failed request.
    """

    def __init__(self, message: str, *, status: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.request_id: str | None = None
        self.query: str | None = None
        self.position: int | None = None
        self.document_index: int | None = None
        self.document_indices: range | None = None

    def __str__(self) -> str:
        return f"[{self.status}] {self.message}" if self.status else self.message

    def _concerning(self, *, request_id: str | None = None, query: str | None = None, position: int | None = None,
                    document_indices: range | None = None) -> Rank1Error:
        """Fill in what the error concerns (keeps what is already set); returns ``self``."""
        if self.request_id is None:
            self.request_id = request_id
        if self.query is None:
            self.query = query
        if self.position is None:
            self.position = position
        if self.document_indices is None:
            self.document_indices = document_indices
        return self


class Rank1ConnectionError(Rank1Error):
    """The server could not be reached, is shutting down, or does not serve the model right now."""


class Rank1TimeoutError(Rank1ConnectionError):
    """A request did not finish within its deadline (``timeout``), or the whole call ran past ``deadline``."""


class ClientClosedError(Rank1ConnectionError):
    """``close()`` was called (from another thread or task) while the call was running."""


class ModelNotFoundError(Rank1Error):
    """The server does not serve a model of this name (check ``model_name``); never retried."""


class InvalidRequestError(Rank1Error, ValueError):
    """A request field was rejected. ``field`` names it (``"documents"``, ``"top_n"``, …) when known."""

    def __init__(self, message: str, *, status: str | None = None, field: str | None = None,
                 document_index: int | None = None) -> None:
        super().__init__(message, status=status)
        self.field = field
        self.document_index = document_index


class AuthenticationError(Rank1Error):
    """The API key of a restricted protocol was missing or not accepted, or the TLS handshake failed because the
    server's certificate is not trusted (check ``root_certificates``).

    A server that rejects a *client* certificate (mutual TLS) just closes the connection: that surfaces as a
    :class:`Rank1ConnectionError` (retried), not as this error.
    """


class ConfigurationError(Rank1Error, ValueError):
    """The client's settings cannot be used (a certificate or key file is missing or unreadable). ``field`` names
    the setting."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ServerOverloadedError(Rank1Error):
    """The server's engine queue is full (Triton's "Exceeds maximum queue size", TensorRT-LLM's "Maximum queue size
    of N has been reached"), or a gateway in front of it rate-limits (``RESOURCE_EXHAUSTED``); retrying later
    helps."""


class ServerError(Rank1Error):
    """The server failed to process a valid request."""


class InsecureTransportWarning(UserWarning):
    """An API key is configured on a plaintext (non-TLS) channel: anyone on the path can read it."""
