"""The gateway's error answers: one JSON shape for every route, and the status of each client exception.

Body: ``{"message", "error", "error_type", "field"}`` — ``message`` is what Cohere's SDK and OpenAI-style
clients read, ``error``/``error_type`` are TEI's, ``field`` names the request field at fault (or is null).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import JSONResponse

from rank1_client.errors import (
    AuthenticationError,
    InvalidRequestError,
    Rank1ConnectionError,
    Rank1Error,
    Rank1TimeoutError,
    ServerOverloadedError,
)


class GatewayError(Exception):
    """An answer other than 200: status, message, error type and the field at fault."""

    def __init__(self, status: int, message: str, *, error_type: str, field: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type
        self.field = field
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """The JSON error body: ``message``, ``error``, ``error_type``, ``field``."""
        return {"message": self.message, "error": self.message, "error_type": self.error_type, "field": self.field}

    def response(self) -> JSONResponse:
        """The HTTP response (status, body, ``Retry-After`` when set)."""
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def invalid(field: str | None, message: str) -> GatewayError:
    """400: the request is wrong; ``message`` should start with the field's name."""
    return GatewayError(400, message, error_type="validation", field=field)


def from_client_error(error: Rank1Error, retry_after_s: int) -> GatewayError:
    """The HTTP answer for an exception of the gRPC client.

    400 INVALID_ARGUMENT (the server's words, its field), 429 queue full and 503 unreachable / not ready (both with
    ``Retry-After``), 504 deadline, 502 for the gateway's own credentials being refused and for other server faults:
    those are not the caller's doing, and their details stay in the gateway's log.
    """
    retry = {"Retry-After": str(retry_after_s)}
    if isinstance(error, InvalidRequestError):
        return invalid(error.field, error.message)
    if isinstance(error, ServerOverloadedError):
        return GatewayError(429, "the Rank1 server is overloaded (its queue is full); retry later",
                            error_type="overloaded", headers=retry)
    if isinstance(error, Rank1TimeoutError):
        return GatewayError(504, "the request did not finish within the gateway's deadline", error_type="timeout")
    if isinstance(error, Rank1ConnectionError):
        return GatewayError(503, "the Rank1 server is unreachable or not ready; retry later",
                            error_type="unhealthy", headers=retry)
    if isinstance(error, AuthenticationError):
        return GatewayError(502, "the Rank1 server refused the gateway's credentials", error_type="backend")
    return GatewayError(502, "the Rank1 server failed to process the request", error_type="backend")
