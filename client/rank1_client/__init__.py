"""Client of the Rank1 reasoning reranker served by Triton Inference Server (gRPC).

``Rank1Client`` (blocking) and ``AsyncRank1Client`` (asyncio) have the same methods: ``rerank``,
``rerank_many``, ``rerank_as_completed``, ``health``, ``ready`` and ``close``. Errors are the classes of
:mod:`rank1_client.errors`; defaults live in ``rank1_client._constants``.
"""

from __future__ import annotations

from ._async_client import AsyncRank1Client
from ._client import Rank1Client
from ._transport import KeepAlive
from .errors import (
    AuthenticationError,
    InvalidRequestError,
    Rank1ConnectionError,
    Rank1Error,
    Rank1TimeoutError,
    ServerError,
    ServerOverloadedError,
)
from .types import Document, Health, RerankResponse, RerankResult, Usage

__version__ = "0.1.0"

__all__ = [
    "AsyncRank1Client",
    "AuthenticationError",
    "Document",
    "Health",
    "InvalidRequestError",
    "KeepAlive",
    "Rank1Client",
    "Rank1ConnectionError",
    "Rank1Error",
    "Rank1TimeoutError",
    "RerankResponse",
    "RerankResult",
    "ServerError",
    "ServerOverloadedError",
    "Usage",
    "__version__",
]
