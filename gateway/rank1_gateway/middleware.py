"""What runs before any route: metrics of every answer, the callers' keys, and the body-size limit.

A plain ASGI middleware, so a refused request costs no JSON parsing: the key is checked before the body is read,
and a body is read only up to the limit.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import GatewayError
from .metrics import GatewayMetrics

# Health, metrics and the API documentation need no key (Kubernetes probes and Prometheus send none).
OPEN_PATHS = frozenset({"/health", "/health/live", "/metrics", "/docs", "/docs/oauth2-redirect", "/redoc",
                        "/openapi.json"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class KeyChecker:
    """Checks ``Authorization: Bearer <key>`` against the configured keys in constant time.

    Keys are compared as SHA-256 digests with :func:`hmac.compare_digest`, against every key (no early exit), so
    neither a key's length nor which key matched shows in the timing.
    """

    def __init__(self, keys: Iterable[str]) -> None:
        self._digests = [hashlib.sha256(key.encode("utf-8")).digest() for key in keys]

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    def check(self, authorization: str | None) -> None:
        """Raise a 401 ``GatewayError`` unless the header carries an accepted key."""
        if not self._digests:
            return
        challenge = {"WWW-Authenticate": "Bearer"}
        scheme, _, token = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise GatewayError(401, "missing API key: send the header 'Authorization: Bearer <key>'",
                               error_type="authentication", field="Authorization", headers=challenge)
        candidate = hashlib.sha256(token.strip().encode("utf-8")).digest()
        matched = False
        for digest in self._digests:
            matched |= hmac.compare_digest(candidate, digest)
        if not matched:
            raise GatewayError(401, "API key not accepted", error_type="authentication", field="Authorization",
                               headers=challenge)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


class GatewayMiddleware:
    """Times and counts every answer; refuses unknown callers (401) and oversized bodies (413) up front."""

    def __init__(self, app: ASGIApp, *, keys: KeyChecker, max_body_bytes: int, metrics: GatewayMetrics) -> None:
        self.app = app
        self.keys = keys
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def send_counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self._handle(scope, receive, send_counted)
        finally:
            self.metrics.observe(scope["path"], status["code"], time.perf_counter() - started)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            if scope["path"] not in OPEN_PATHS:
                self.keys.check(_header(scope, b"authorization"))
            if scope["method"] in BODY_METHODS:
                receive = await self._limited_body(scope, receive)
        except GatewayError as error:
            await error.response()(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _limited_body(self, scope: Scope, receive: Receive) -> Receive:
        """Read the whole body (at most the limit) and hand it on; 413 past the limit."""
        too_large = GatewayError(
            413, f"request body: larger than this gateway's limit of {self.max_body_bytes} bytes",
            error_type="payload_too_large", field="body")
        declared = _header(scope, b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                raise GatewayError(400, "Content-Length: not a number", error_type="validation",
                                   field="Content-Length") from None
            if length > self.max_body_bytes:
                raise too_large
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            body += message.get("body", b"")
            if len(body) > self.max_body_bytes:
                raise too_large
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        return replay
