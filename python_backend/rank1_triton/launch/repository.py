"""Fill the ``model_repository/`` templates into a runnable Triton model repository, or move a built one."""

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
# A ${name} field of a model-config template (the syntax of NVIDIA's fill_template.py, string.Template).
PLACEHOLDER_PATTERN = re.compile(r"\$\{(\w+)\}")


def templates_dir() -> Path:
    """The ``model_repository/`` templates: ``RANK1_TRITON_TEMPLATES``, the source checkout, or the image's copy."""
    if "RANK1_TRITON_TEMPLATES" in os.environ:
        return Path(os.environ["RANK1_TRITON_TEMPLATES"])
    checkout = Path(__file__).resolve().parents[3] / "model_repository"
    return checkout if checkout.is_dir() else Path("/opt/rank1-triton/model_repository")


def placeholders(text: str) -> set[str]:
    """The ``${name}`` fields of a config template."""
    return set(PLACEHOLDER_PATTERN.findall(text))


def assemble_repository(
    out_dir: Path,
    *,
    engine: EngineKind,
    values: Mapping[str, str],
    templates: Path | None = None,
    engine_config: str | None = None,
) -> Path:
    """Copy the templates to ``out_dir`` with every ``${key}`` filled from ``values``.

    ``engine="torch"`` keeps the Python-backend engine model of ``tensorrt_llm/config.pbtxt``. For
    ``"tensorrt-llm"`` the engine model is NVIDIA's C++ ``tensorrtllm`` backend: its config is NVIDIA's own
    template filled by NVIDIA's ``fill_template.py`` (``build/rank1_build/engine_config.py``), passed here as
    ``engine_config`` (written as is), or left for that fill step when None; ``tensorrt_llm/1/`` stays empty (the
    backend reads the engine from ``gpt_model_path``) and ``values`` fill only the entry model. A value that no
    filled template uses, or a template field without a value, is an error.
    """
    source = templates or templates_dir()
    if not (source / ENTRY_MODEL_NAME / "config.pbtxt").is_file():
        raise FileNotFoundError(f"{source} holds no model repository templates (rank1/config.pbtxt missing)")
    if engine not in ("torch", "tensorrt-llm"):
        raise ValueError(f"engine must be 'torch' or 'tensorrt-llm', got {engine!r}")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    shutil.copytree(source, out_dir, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    engine_dir = out_dir / ENGINE_MODEL_NAME
    if engine == "tensorrt-llm":
        shutil.rmtree(engine_dir, ignore_errors=True)
        (engine_dir / "1").mkdir(parents=True)
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
    if engine_config is not None:
        if engine != "tensorrt-llm":
            raise ValueError("engine_config is the filled config of the C++ backend (engine='tensorrt-llm')")
        (engine_dir / "config.pbtxt").write_text(engine_config, encoding="utf-8")
    return out_dir


def relocate_repository(source: Path, out_dir: Path, old_root: str, new_root: str) -> Path:
    """Copy a built repository to ``out_dir``, pointing every string parameter under ``old_root`` at ``new_root``.

    A build writes absolute paths (``old_root/engine``, ``old_root/tokenizer``) for the mount point it was told
    (``--serve-root``); this serves the same folder mounted elsewhere without rebuilding anything.
    """
    if not (source / ENTRY_MODEL_NAME / "config.pbtxt").is_file():
        raise FileNotFoundError(f"{source} is not a built model repository ({ENTRY_MODEL_NAME}/config.pbtxt missing)")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    shutil.copytree(source, out_dir, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    old, new = old_root.rstrip("/") or "/", new_root.rstrip("/") or "/"
    pattern = re.compile(r'(string_value:\s*")' + re.escape(old) + r'(?=/|")')
    for config in out_dir.glob("*/config.pbtxt"):
        text = config.read_text(encoding="utf-8")
        config.write_text(pattern.sub(lambda match: match.group(1) + new, text), encoding="utf-8")
    return out_dir
