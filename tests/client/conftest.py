"""Servers and throw-away certificates for the client tests.

Three real servers, each shared by the whole session and started on first use (about 30 s each):
``plain_server`` (random model, 1,000 documents per request, budget 2), ``guarded_server`` (TLS, the
inference protocol restricted by an API key, an engine queue of 2) and ``mtls_server`` (mutual TLS). They need the
server library (rank1-triton) and torch; in the client-only environment (``.venv-client``) the tests that use them
are skipped. ``fake_server`` (an in-process fake of Triton's gRPC service, :mod:`fake_triton`) needs neither.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fake_triton import FakeServer

if TYPE_CHECKING:
    from rank1_triton.launch.launcher import TritonServer
    from rank1_triton.launch.values import TorchServingOptions

GUARDED_QUEUE_SIZE = 2


def serving_options(**values) -> TorchServingOptions:
    pytest.importorskip("rank1_triton", reason="needs the server library (rank1-triton)")
    from rank1_triton.launch.values import TorchServingOptions

    return TorchServingOptions(**values)


def start_server(model_dir: Path, work_dir: Path, options: TorchServingOptions,
                 flags: list[str] | None = None) -> TritonServer:
    from rank1_triton.launch.local import torch_server

    server = torch_server(model_dir, work_dir, options, extra_args=flags or [])
    server.start(timeout_s=300)
    return server


@dataclass(frozen=True)
class Certificates:
    """A throw-away CA with a server certificate (localhost) and a client certificate, all PEM."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certificates(directory: Path) -> Certificates:
    """Make a CA and two certificates it signs (P-256 keys, valid for a day) with the openssl CLI."""
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.crt", "-days", "1",
             "-subj", "/CN=rank1 test CA", cwd=directory)
    extensions = {
        "server": "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        "client": "extendedKeyUsage=clientAuth\n",
    }
    for name, extension in extensions.items():
        (directory / f"{name}.ext").write_text(extension)
        _openssl("req", *key, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN=rank1 test {name}",
                 cwd=directory)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.crt", "-days", "1", "-extfile", f"{name}.ext", cwd=directory)
    return Certificates(directory / "ca.crt", directory / "server.crt", directory / "server.key",
                        directory / "client.crt", directory / "client.key")


@dataclass(frozen=True)
class ApiKey:
    """The guarded server's restricted-protocol key: ``--grpc-restricted-protocol=inference:<name>=<value>``."""

    name: str
    value: str

    @property
    def metadata(self) -> dict[str, str]:
        """The gRPC metadata Triton checks."""
        return {f"triton-grpc-protocol-{self.name}": self.value}


@pytest.fixture(scope="session")
def api_key() -> ApiKey:
    return ApiKey("rank1-api-key", "s3cret-test-key")


@pytest.fixture(scope="session")
def certificates(tmp_path_factory) -> Certificates:
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    return make_certificates(tmp_path_factory.mktemp("certificates"))


@pytest.fixture
def fake_server():
    """A fresh in-process fake Triton (plaintext) for one test."""
    server = FakeServer()
    yield server
    server.stop()


@pytest.fixture
def fake_tls_server(certificates):
    """A fresh in-process fake Triton behind TLS (the test CA's localhost certificate)."""
    server = FakeServer(certificates.server_cert, certificates.server_key)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def plain_server(random_model_dir, tmp_path_factory):
    options = serving_options(max_documents=1000, default_max_reasoning_tokens=2)
    server = start_server(random_model_dir, tmp_path_factory.mktemp("plain-server"), options)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def guarded_server(random_model_dir, certificates, api_key, tmp_path_factory):
    # One sequence at a time, so that a few concurrent engine requests fill the queue behind it.
    options = serving_options(max_documents=16, default_max_reasoning_tokens=2, max_queue_size=GUARDED_QUEUE_SIZE,
                              max_batch_size=1)
    flags = [
        "--grpc-use-ssl=true",
        f"--grpc-server-cert={certificates.server_cert}",
        f"--grpc-server-key={certificates.server_key}",
        f"--grpc-restricted-protocol=inference:{api_key.name}={api_key.value}",
    ]
    server = start_server(random_model_dir, tmp_path_factory.mktemp("guarded-server"), options, flags)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mtls_server(random_model_dir, certificates, tmp_path_factory):
    options = serving_options(max_documents=16, default_max_reasoning_tokens=2)
    flags = [
        "--grpc-use-ssl-mutual=true",
        f"--grpc-server-cert={certificates.server_cert}",
        f"--grpc-server-key={certificates.server_key}",
        f"--grpc-root-cert={certificates.ca}",
    ]
    server = start_server(random_model_dir, tmp_path_factory.mktemp("mtls-server"), options, flags)
    yield server
    server.stop()
