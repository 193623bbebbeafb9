"""Client of the Rank1 reasoning reranker served by Triton Inference Server (gRPC).

``Rank1Client`` (blocking) and ``AsyncRank1Client`` (asyncio) have the same methods: ``rerank``,
``rerank_many``, ``rerank_as_completed``, ``health``, ``ready`` and ``close``. Errors are the classes of
:mod:`rank1_client.errors`; defaults live in ``rank1_client._constants``. ``rank1_client.evaluate`` (extra
``rank1-client[evaluate]``) reranks a first-stage run and measures it against relevance judgments.
"""

from __future__ import annotations

from ._async_client import AsyncRank1Client
from ._client import Rank1Client
from ._protocol import RerankKwargs
from ._transport import KeepAlive
from .errors import (
    AuthenticationError,
    ClientClosedError,
    ConfigurationError,
    InsecureTransportWarning,
    InvalidRequestError,
    ModelNotFoundError,
    Rank1ConnectionError,
    Rank1Error,
    Rank1TimeoutError,
    ServerError,
    ServerOverloadedError,
)
from .types import NOT_GIVEN, Document, Health, NotGiven, RerankResponse, RerankResult, Usage

__version__ = "0.1.0"

__all__ = [
    "NOT_GIVEN",
    "AsyncRank1Client",
    "AuthenticationError",
    "ClientClosedError",
    "ConfigurationError",
    "Document",
    "Health",
    "InsecureTransportWarning",
    "InvalidRequestError",
    "KeepAlive",
    "ModelNotFoundError",
    "NotGiven",
    "Rank1Client",
    "Rank1ConnectionError",
    "Rank1Error",
    "Rank1TimeoutError",
    "RerankKwargs",
    "RerankResponse",
    "RerankResult",
    "ServerError",
    "ServerOverloadedError",
    "Usage",
    "__version__",
]
