"""Shared fixtures: the real Qwen2.5 tokenizer, tiny random models, the trained toy model, engines.

torch, transformers and rank1_triton are imported by the fixtures that need them, not here, so that the client's
tests also run in an environment with the client alone (``.venv-client``: no torch, no server library).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

# Fixtures are cached in the repository (git-ignored), as scripts/test.sh and scripts/quickstart.sh set it; set
# before the fixture modules are imported, and inherited by the tritonservers the tests start.
os.environ.setdefault("RANK1_TRITON_CACHE", str(Path(__file__).resolve().parents[1] / ".cache" / "rank1-triton"))

import pytest

if TYPE_CHECKING:
    from rank1_triton.engines.torch_engine import TorchEngine
    from rank1_triton.launch.launcher import TritonServer
    from rank1_triton.launch.values import TorchServingOptions
    from rank1_triton.reranker import Rank1Reranker
    from rank1_triton.tokenization import Rank1Tokenizer

_torch_threads_set = False


def _one_torch_thread() -> None:
    """Two busy processes with two threads each slow each other down badly on these 2-core machines: once torch
    is loaded (by a test module, a fixture or a test), it gets one thread."""
    global _torch_threads_set
    torch = sys.modules.get("torch")
    if torch is not None and not _torch_threads_set:
        torch.set_num_threads(1)
        _torch_threads_set = True


def _torch():
    import torch

    _one_torch_thread()
    return torch


def pytest_collection_finish(session) -> None:
    _one_torch_thread()


def pytest_runtest_setup(item) -> None:
    _one_torch_thread()


def _auto_tokenizer():
    from transformers import AutoTokenizer

    _one_torch_thread()
    return AutoTokenizer


def _cache():
    pytest.importorskip("rank1_triton", reason="needs the server library (rank1-triton)")
    from rank1_triton.fixtures import cache

    return cache


@pytest.fixture(scope="session")
def tokenizer_dir() -> Path:
    return _cache().ensure_tokenizer()


@pytest.fixture(scope="session")
def hf_tokenizer(tokenizer_dir):
    return _auto_tokenizer().from_pretrained(tokenizer_dir)


@pytest.fixture(scope="session")
def rank1_tokenizer(hf_tokenizer) -> Rank1Tokenizer:
    from rank1_triton.tokenization import Rank1Tokenizer

    return Rank1Tokenizer(hf_tokenizer)


@pytest.fixture(scope="session")
def random_model_dir() -> Path:
    return _cache().ensure_random_model("qwen2")


@pytest.fixture(scope="session")
def toy_model_dir() -> Path:
    return _cache().ensure_toy_model()


@pytest.fixture(scope="session", params=["random", "toy"])
def model_dir(request, random_model_dir) -> Path:
    """Each tiny model in turn: random (always forced) and trained toy (mostly natural)."""
    return random_model_dir if request.param == "random" else request.getfixturevalue("toy_model_dir")


@pytest.fixture(scope="session")
def hf_model_cache():
    cache: dict[Path, object] = {}

    def load(path: Path):
        if path not in cache:
            from transformers import AutoModelForCausalLM

            cache[path] = AutoModelForCausalLM.from_pretrained(path, dtype=_torch().float32).eval()
        return cache[path]

    return load


@pytest.fixture(scope="session")
def engine_cache():
    cache: dict[tuple[Path, bool], TorchEngine] = {}

    def load(path: Path, fused_answer_step: bool = True) -> TorchEngine:
        from rank1_triton.engines.torch_engine import TorchEngine

        _torch()
        key = (path, fused_answer_step)
        if key not in cache:
            cache[key] = TorchEngine(path, fused_answer_step=fused_answer_step)
        return cache[key]

    return load


@pytest.fixture(scope="session")
def reranker_for(engine_cache):
    def make(path: Path, fused_answer_step: bool = True) -> Rank1Reranker:
        from rank1_triton.reranker import Rank1Reranker
        from rank1_triton.tokenization import Rank1Tokenizer

        return Rank1Reranker(engine_cache(path, fused_answer_step),
                             Rank1Tokenizer(_auto_tokenizer().from_pretrained(path)))

    return make


# The two ways an engine delivers the answer logits: the PyTorch engine's fused step, and TensorRT-LLM's (a second,
# one-token request with return_generation_logits), which the PyTorch engine also offers so CPU tests cover it.
ANSWER_STEPS = {"fused": True, "one-token": False}


@pytest.fixture(params=list(ANSWER_STEPS))
def fused_answer_step(request) -> bool:
    """Each answer path in turn."""
    return ANSWER_STEPS[request.param]


@pytest.fixture(scope="session")
def random_llama_tokenizer():
    return _auto_tokenizer().from_pretrained(_cache().ensure_random_model("llama"))


# Real tritonserver processes (from the nvidia-pytriton wheel) serving the tiny models, shared by the session.
SERVER_OPTIONS_VALUES = {"max_documents": 16, "default_max_reasoning_tokens": 16, "entry_instances": 2}


def server_options(**changes) -> TorchServingOptions:
    """The options of the shared servers, with ``changes``."""
    from rank1_triton.launch.values import TorchServingOptions

    return TorchServingOptions(**{**SERVER_OPTIONS_VALUES, **changes})


def start_server(model_dir: Path, work_dir: Path, options: TorchServingOptions | None = None) -> TritonServer:
    from rank1_triton.launch.local import torch_server

    server = torch_server(model_dir, work_dir, options if options is not None else server_options())
    server.start(timeout_s=300)
    return server


def _session_server(request, model: str, *, fused_answer_step: bool):
    """A server for the session's ``model`` fixture, stopped at the session's end."""
    work_dir = request.getfixturevalue("tmp_path_factory").mktemp(request.fixturename)
    server = start_server(request.getfixturevalue(f"{model}_model_dir"), work_dir,
                          server_options(fused_answer_step=fused_answer_step))
    request.addfinalizer(server.stop)
    return server


@pytest.fixture(scope="session")
def random_server(request):
    return _session_server(request, "random", fused_answer_step=True)


@pytest.fixture(scope="session")
def toy_server(request):
    return _session_server(request, "toy", fused_answer_step=True)


@pytest.fixture(scope="session")
def toy_trtllm_server(request):
    """The toy model behind an engine model that behaves as TensorRT-LLM's (no fused answer step)."""
    return _session_server(request, "toy", fused_answer_step=False)


@pytest.fixture(scope="session")
def random_trtllm_server(request):
    return _session_server(request, "random", fused_answer_step=False)
