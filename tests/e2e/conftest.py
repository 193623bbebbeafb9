"""Real tritonserver processes (from the nvidia-pytriton wheel) serving the tiny models over gRPC."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from rank1_triton.serve.launcher import TritonServer
from rank1_triton.serve.local import torch_server
from rank1_triton.serve.values import TorchServingOptions

E2E_OPTIONS = TorchServingOptions(max_documents=16, default_max_reasoning_tokens=16, entry_instances=2)


def start_server(model_dir: Path, work_dir: Path, options: TorchServingOptions = E2E_OPTIONS) -> TritonServer:
    server = torch_server(model_dir, work_dir, options)
    server.start(timeout_s=300)
    return server


@pytest.fixture(scope="session")
def random_server(random_model_dir, tmp_path_factory):
    server = start_server(random_model_dir, tmp_path_factory.mktemp("random-server"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def toy_server(toy_model_dir, tmp_path_factory):
    server = start_server(toy_model_dir, tmp_path_factory.mktemp("toy-server"), replace(E2E_OPTIONS))
    yield server
    server.stop()
