"""Fill the ``model_repository/`` templates into a runnable Triton model repository."""

from __future__ import annotations

import os
import re
import shutil
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from ..contract import ENGINE_MODEL_NAME, ENTRY_MODEL_NAME
from ..errors import TemplateError

EngineKind = Literal["torch", "tensorrt-llm"]
GPU_ENGINE_CONFIG = "config.tensorrtllm.pbtxt"
_PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


def templates_dir() -> Path:
    """The ``model_repository/`` templates: ``RANK1_TRITON_TEMPLATES``, the source checkout, or the image's copy."""
    if "RANK1_TRITON_TEMPLATES" in os.environ:
        return Path(os.environ["RANK1_TRITON_TEMPLATES"])
    checkout = Path(__file__).resolve().parents[3] / "model_repository"
    return checkout if checkout.is_dir() else Path("/opt/rank1-triton/model_repository")


def placeholders(text: str) -> set[str]:
    """The ``${name}`` fields of a config template."""
    return set(_PLACEHOLDER.findall(text))


def assemble_repository(
    out_dir: Path,
    *,
    engine: EngineKind,
    values: Mapping[str, str],
    templates: Path | None = None,
) -> Path:
    """Copy the templates to ``out_dir`` with every ``${key}`` filled from ``values``.

    ``engine="tensorrt-llm"`` makes ``config.tensorrtllm.pbtxt`` the engine model's config (C++ backend, no
    Python code); ``"torch"`` keeps the Python-backend engine. A value that no template uses, or a template
    field without a value, is an error.
    """
    source = templates or templates_dir()
    if not (source / ENTRY_MODEL_NAME / "config.pbtxt").is_file():
        raise FileNotFoundError(f"{source} holds no model repository templates (rank1/config.pbtxt missing)")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    shutil.copytree(source, out_dir, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    engine_dir = out_dir / ENGINE_MODEL_NAME
    gpu_config = engine_dir / GPU_ENGINE_CONFIG
    if engine == "tensorrt-llm":
        gpu_config.replace(engine_dir / "config.pbtxt")
        shutil.rmtree(engine_dir / "1", ignore_errors=True)
        (engine_dir / "1").mkdir()  # the C++ backend reads the engine from gpt_model_path
    else:
        gpu_config.unlink(missing_ok=True)
    configs = sorted(out_dir.glob("*/config.pbtxt"))
    used: set[str] = set()
    for config in configs:
        text = config.read_text(encoding="utf-8")
        fields = placeholders(text)
        missing = sorted(fields - set(values))
        if missing:
            raise TemplateError(f"{config.relative_to(out_dir)} needs values for: {', '.join(missing)}")
        used |= fields
        config.write_text(string.Template(text).substitute(values), encoding="utf-8")
    unused = sorted(set(values) - used)
    if unused:
        raise TemplateError(f"no template uses: {', '.join(unused)}")
    return out_dir
