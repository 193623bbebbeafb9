"""HTTP rerank gateway for the Rank1 Triton server: Cohere v1/v2 (Jina, vLLM) and TEI shapes over gRPC.

``create_app(settings)`` builds the FastAPI app; ``rank1-gateway`` (:mod:`rank1_gateway.cli`) serves it with
uvicorn; :class:`rank1_gateway.server.BackgroundGateway` runs it in a thread (tests, benchmarks, quick start).
"""

from __future__ import annotations

__version__ = "0.1.0"

from .app import create_app
from .settings import GatewaySettings, settings_from

__all__ = ["GatewaySettings", "__version__", "create_app", "settings_from"]
