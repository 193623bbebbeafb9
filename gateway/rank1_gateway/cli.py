"""``rank1-gateway``: serve the HTTP rerank API with uvicorn until SIGINT / SIGTERM."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import uvicorn

from .app import create_app
from .settings import settings_from


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``rank1-gateway``: read the settings, serve until stopped."""
    settings = settings_from(argv)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(settings)
    logging.getLogger("rank1_gateway").info("serving http://%s:%d over %s (%d caller keys)", settings.host,
                                            settings.port, settings.grpc_url, len(settings.api_keys))
    # uvicorn stops accepting on SIGTERM and lets requests in flight finish (up to the graceful timeout).
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level,
                timeout_graceful_shutdown=max(1, round(settings.timeout)), proxy_headers=False, server_header=False)
    return 0
