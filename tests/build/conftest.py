"""Fixtures of the build-tool tests: import paths, Rank1-shaped checkpoint directories, a recording assembler."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
for _path in (ROOT / "build", ROOT / "python_backend"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from rank1_build.catalog import RANK1_CHECKPOINTS  # noqa: E402

# One published checkpoint per architecture family: Qwen2.5, Llama 3.1, Mistral-Small-2501.
ARCH_MODELS = {
    "qwen2": "jhu-clsp/rank1-7b",
    "llama": "jhu-clsp/rank1-llama3-8b",
    "mistral": "jhu-clsp/rank1-mistral-2501-24b",
}


def write_checkpoint(directory: Path, config: dict) -> Path:
    """A checkpoint directory with config.json and tokenizer files (no weights: only dry runs read it)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config), encoding="utf-8")
    (directory / "tokenizer.json").write_text('{"model": {"type": "BPE"}}', encoding="utf-8")
    (directory / "tokenizer_config.json").write_text("{}", encoding="utf-8")
    (directory / "model.safetensors").write_bytes(b"weights are not copied")
    return directory


@pytest.fixture
def checkpoint_dir(tmp_path: Path):
    """Factory: a local checkpoint with the config of a published Rank1 model (``arch`` key of ARCH_MODELS)."""

    def make(arch: str = "qwen2", **overrides) -> Path:
        config = {**RANK1_CHECKPOINTS[ARCH_MODELS[arch]], **overrides}
        return write_checkpoint(tmp_path / f"hf-{arch}", config)

    return make


@pytest.fixture
def recorded_assembly(monkeypatch):
    """Replace rank1_triton's assembler with a recorder that writes the filled GPU engine config."""
    from rank1_build import configs

    calls: list[dict] = []

    def fake_write_repository(out_dir: Path, values) -> Path:
        calls.append({"out_dir": out_dir, "values": dict(values)})
        target = out_dir / "tensorrt_llm"
        target.mkdir(parents=True, exist_ok=True)
        (target / "config.pbtxt").write_text(configs.render_engine_config(values), encoding="utf-8")
        return out_dir

    monkeypatch.setattr("rank1_build.runner.write_repository", fake_write_repository)
    monkeypatch.setattr("rank1_build.serve.write_repository", fake_write_repository)
    return calls
