"""The FastAPI application: three rerank routes, health, metrics, OpenAPI docs, and the error handlers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from rank1_client import AsyncRank1Client
from rank1_client.errors import Rank1Error

from . import __version__
from .errors import GatewayError, invalid
from .metrics import GatewayMetrics
from .middleware import GatewayMiddleware, KeyChecker
from .reranking import RerankClient, Reranker, load_tokenizer
from .schemas import (
    CohereRerankResponse,
    CohereV1Request,
    CohereV2Request,
    ErrorBody,
    Health,
    TeiRank,
    TeiRerankRequest,
)
from .settings import GatewaySettings

LOGGER = logging.getLogger("rank1_gateway")

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in {
        400: "Invalid input: malformed JSON, a wrong type, a value the server rejected (`field` names it)",
        401: "Missing or wrong API key",
        413: "Body over the gateway's limit",
        429: "The server's queue (or the gateway's request limit) is full; see Retry-After",
        502: "The Rank1 server failed or refused the gateway's credentials",
        503: "The Rank1 server is unreachable or not ready; see Retry-After",
        504: "The request passed the gateway's deadline",
    }.items()
}


def _location(loc: tuple[Any, ...]) -> tuple[str | None, str, bool]:
    """``("body", "documents", 3, "str")`` -> ``("documents", "documents[3]", True)``: the field, where in it,
    and whether the failure was against one member of a union (``str`` or an object)."""
    parts = [part for part in loc if part != "body"]
    if not parts:
        return None, "body", False
    text, union_member = str(parts[0]), False
    for part in parts[1:]:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in ("str", "int", "bool", "dict") or "[" in str(part) or str(part).startswith("function-"):
            union_member = True  # a type name such as "str" or "dict[str,any]", not a key of the request
        else:
            text += f".{part}"
    return str(parts[0]), text, union_member


def validation_error(error: RequestValidationError) -> GatewayError:
    """A 400 naming the first field pydantic rejected (malformed JSON names no field)."""
    first = error.errors()[0]
    if first.get("type") == "json_invalid":
        return invalid(None, f"body: not valid JSON ({first.get('ctx', {}).get('error', 'parse error')})")
    if first.get("loc") == ("body",):
        return invalid(None, "body: must be a JSON object")
    field, where, union_member = _location(tuple(first.get("loc", ())))
    message = first.get("msg", "invalid value")
    if first.get("type") == "missing":
        message = "required"
    elif union_member and field == "documents":
        message = "must be a string or an object with a string 'text' field"
    return invalid(field, f"{where}: {message}")


def create_app(settings: GatewaySettings, client: RerankClient | None = None,
               client_factory: Callable[[GatewaySettings], Any] | None = None) -> FastAPI:
    """The gateway app. ``client``: a ready client (tests); else one ``AsyncRank1Client`` is opened at startup
    (inside the server's event loop) and closed at shutdown."""
    metrics = GatewayMetrics()
    tokenizer = load_tokenizer(settings.tokenizer) if settings.tokenizer is not None else None
    state: dict[str, Any] = {}

    def make_client(s: GatewaySettings) -> AsyncRank1Client:
        return AsyncRank1Client(s.grpc_url, **s.client_arguments())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        own = client is None
        rerank_client = client if client is not None else (client_factory or make_client)(settings)
        state["reranker"] = Reranker(rerank_client, settings, metrics, tokenizer)
        state["client"] = rerank_client
        if not KeyChecker(settings.api_keys).enabled:
            LOGGER.warning("no API keys configured: every caller is accepted")
        try:
            yield
        finally:
            if own:
                await rerank_client.close()

    app = FastAPI(
        title="Rank1 rerank gateway",
        version=__version__,
        description="Cohere v1/v2 (also Jina's and vLLM's clients), TEI and vLLM rerank shapes over the Rank1 "
                    "Triton server. Rank1 fields (`max_reasoning_tokens`, `return_reasoning`, `instruction`, "
                    "`prompt`, `rethink`; per result `reasoning`, `reasoning_tokens`, `forced`, `truncated`) are "
                    "optional extensions. Authenticate with `Authorization: Bearer <key>`.",
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    app.state.settings = settings
    app.add_middleware(GatewayMiddleware, keys=KeyChecker(settings.api_keys),
                       max_body_bytes=settings.max_body_bytes, metrics=metrics)

    def reranker() -> Reranker:
        return state["reranker"]

    # --- errors: every answer is JSON with message/error/error_type/field, never a stack trace ------------------

    @app.exception_handler(GatewayError)
    async def gateway_error(_: Request, error: GatewayError) -> JSONResponse:
        return error.response()

    @app.exception_handler(RequestValidationError)
    async def request_validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
        return validation_error(error).response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        kinds = {404: "not_found", 405: "method_not_allowed"}
        return GatewayError(error.status_code, str(error.detail), error_type=kinds.get(error.status_code, "http"),
                            headers=error.headers).response()

    @app.exception_handler(Exception)
    async def unexpected_error(_: Request, error: Exception) -> JSONResponse:
        LOGGER.exception("unexpected error")
        return GatewayError(500, "internal error of the gateway (logged)", error_type="internal").response()

    # --- routes -------------------------------------------------------------------------------------------------

    async def cohere(route: str, version: str, body: CohereV1Request | CohereV2Request | TeiRerankRequest,
                     documents: list[Any], rank_fields: list[str] | None) -> dict[str, Any]:
        service = reranker()
        passages = service.passages(body.query, documents, body, rank_fields=rank_fields,
                                    max_tokens_per_doc=body.max_tokens_per_doc)
        response = await service.rerank(route, body.query, passages, body, top_n=body.top_n)
        return service.cohere_body(response, passages, version=version, return_documents=bool(body.return_documents),
                                   return_reasoning=body.return_reasoning)

    @app.post("/v2/rerank", tags=["rerank"], summary="Cohere v2 rerank", response_model=None,
              responses={200: {"model": CohereRerankResponse}, **ERROR_RESPONSES})
    async def rerank_v2(body: CohereV2Request) -> JSONResponse:
        return JSONResponse(await cohere("/v2/rerank", "2", body, body.documents, None))

    @app.post("/v1/rerank", tags=["rerank"], summary="Cohere v1 / Jina rerank", response_model=None,
              responses={200: {"model": CohereRerankResponse}, **ERROR_RESPONSES})
    async def rerank_v1(body: CohereV1Request) -> JSONResponse:
        return JSONResponse(await cohere("/v1/rerank", "1", body, body.documents, body.rank_fields))

    @app.post("/rerank", tags=["rerank"], summary="TEI rerank (or vLLM's /rerank with `documents`)",
              response_model=None, responses={200: {"model": list[TeiRank]}, **ERROR_RESPONSES})
    async def rerank_tei(body: TeiRerankRequest) -> JSONResponse:
        if (body.texts is None) == (body.documents is None):
            raise invalid("texts", "texts: give either `texts` (TEI) or `documents` (vLLM), not both or neither")
        if body.documents is not None:
            return JSONResponse(await cohere("/rerank", "2", body, body.documents, None))
        if body.truncation_direction.lower() != "right":
            raise invalid("truncation_direction", "truncation_direction: only Right is supported (Rank1 cuts the "
                                                  "end of a passage)")
        service = reranker()
        passages = service.passages(body.query, body.texts, body)
        truncate = None if body.truncate is None else ("END" if body.truncate else "NONE")
        response = await service.rerank("/rerank", body.query, passages, body, top_n=body.top_n, truncate=truncate)
        return JSONResponse(service.tei_body(response, passages, raw_scores=body.raw_scores,
                                             return_text=body.return_text, return_reasoning=body.return_reasoning))

    @app.get("/health", tags=["operations"], summary="Ready: the server and the Rank1 model are ready",
             response_model=Health, responses={503: {"model": Health}})
    async def health() -> JSONResponse:
        try:
            status = await state["client"].health(timeout=settings.health_timeout)
        except Rank1Error as error:
            LOGGER.debug("health check of %s failed: %s", settings.grpc_url, error)
            body = {"status": "not_ready", "live": False, "ready": False, "model_ready": False,
                    "message": "the Rank1 server cannot be reached"}
            return JSONResponse({**body, "error": "unhealthy", "error_type": "unhealthy"}, status_code=503)
        ready = status.live and status.ready and status.model_ready
        body = {"status": "ready" if ready else "not_ready", "live": status.live, "ready": status.ready,
                "model_ready": status.model_ready}
        if not ready:
            body.update(message="the Rank1 server or model is not ready", error="unhealthy", error_type="unhealthy")
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/health/live", tags=["operations"], summary="Live: the gateway process answers")
    async def live() -> dict[str, str]:
        return {"status": "live"}

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics", response_class=Response)
    async def prometheus() -> Response:
        return Response(metrics.exposition(), media_type=metrics.content_type)

    return app
