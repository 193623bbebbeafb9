"""The gateway in front of the session's toy tritonserver (tests/conftest.py ``toy_server``).

``toy_gateway`` runs uvicorn in a thread of the test process on a free loopback port, with one caller key, the toy
model's tokenizer (for ``max_tokens_per_doc``) and small limits that the error tests reach.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from gateway_helpers import API_KEY, LIMITS
from rank1_gateway import GatewaySettings
from rank1_gateway.server import BackgroundGateway


@pytest.fixture(scope="session")
def gateway_settings(toy_server, toy_model_dir) -> GatewaySettings:
    return GatewaySettings(grpc_url=toy_server.grpc_url, api_keys=(API_KEY,), tokenizer=toy_model_dir, **LIMITS)


@pytest.fixture(scope="session")
def toy_gateway(gateway_settings) -> Iterator[BackgroundGateway]:
    with BackgroundGateway(gateway_settings) as gateway:
        yield gateway


@pytest.fixture
def gateway_with() -> Callable[..., BackgroundGateway]:
    """A context manager: a gateway with the given settings (and optionally a stand-in client)."""

    @contextmanager
    def start(settings: GatewaySettings | None = None, **arguments) -> Iterator[BackgroundGateway]:
        with BackgroundGateway(settings or GatewaySettings(), **arguments) as gateway:
            yield gateway

    return start
