"""Run the gateway in a background thread of this process (tests, benchmarks, the quick start)."""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from typing import Any

import uvicorn

from .app import create_app
from .settings import GatewaySettings


def free_port() -> int:
    """A free TCP port on localhost right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class BackgroundGateway:
    """uvicorn serving :func:`create_app` on loopback in a daemon thread; a context manager.

    Example::

        with BackgroundGateway(GatewaySettings(grpc_url="localhost:8001")) as gateway:
            httpx.post(f"{gateway.url}/v2/rerank", json={...})
    """

    def __init__(self, settings: GatewaySettings, *, port: int | None = None, **app_arguments: Any) -> None:
        """``port``: where to listen (default: a free port, whatever ``settings.port`` says)."""
        settings = dataclasses.replace(settings, port=port or free_port())
        self.settings = settings
        self.app = create_app(settings, **app_arguments)
        config = uvicorn.Config(self.app, host=settings.host, port=settings.port, log_level="warning",
                                lifespan="on", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="rank1-gateway", daemon=True)

    @property
    def url(self) -> str:
        """The gateway's base URL."""
        return f"http://{self.settings.host}:{self.settings.port}"

    def start(self, timeout_s: float = 30.0) -> BackgroundGateway:
        """Start serving in a daemon thread; return once it answers (or raise after ``timeout_s``)."""
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the gateway did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask uvicorn to exit and wait for the thread."""
        self._server.should_exit = True
        self._thread.join(timeout_s)

    def __enter__(self) -> BackgroundGateway:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
