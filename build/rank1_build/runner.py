"""The runner: execute a build plan, or print it (``--dry-run``), then write the configs and ``build.json``."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

from .catalog import RANK1_CHECKPOINTS, catalog_spec
from .configs import ServingOptions, render_engine_config, repository_values, write_repository
from .errors import BuildRefusal
from .model import ModelSpec, inspect_model
from .pins import TRITON_IMAGE, TRTLLM_VERSION
from .plan import BuildRequest, OutputLayout, Step, build_steps, download_step, launch_step

Echo = Callable[[str], None]
Execute = Callable[[Step], None]

MANIFEST_FORMAT = 1
# Files the entry model's tokenizer may need (byte-level BPE for Qwen2.5 and Llama 3, SentencePiece/Tekken for
# Mistral); config.json lets AutoTokenizer resolve the tokenizer class.
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.json",
    "merges.txt", "tokenizer.model", "tekken.json", "chat_template.jinja", "generation_config.json", "config.json",
)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def run_step(step: Step) -> None:
    """Run one command; CalledProcessError if it fails."""
    subprocess.run(list(step.argv), check=True, env={**os.environ, **step.env})


def resolve_model(
    model: str, layout: OutputLayout, *, dry_run: bool, echo: Echo, execute: Execute | None = None
) -> tuple[ModelSpec, Path, list[Step]]:
    """The spec and local directory of ``--model``: a checkpoint directory, or a hub id to download.

    A dry run plans a hub id from the catalog of published Rank1 configs; a real run downloads the checkpoint and
    plans from its own config.json.
    """
    path = Path(model)
    if path.is_dir():
        return inspect_model(path), path, []
    if not _HUB_ID.match(model):
        raise BuildRefusal(f"--model {model}: no such directory, and not a Hugging Face hub id (org/name)")
    step = download_step(model, layout)
    if dry_run:
        return catalog_spec(model), layout.hf_dir, [step]
    echo(step.shell())
    (execute or run_step)(step)
    return inspect_model(layout.hf_dir), layout.hf_dir, [step]


def preflight_spec(model: str) -> ModelSpec | None:
    """The catalog spec of a published hub id, so that a real run can refuse before downloading it."""
    return catalog_spec(model) if model.lower() in RANK1_CHECKPOINTS and not Path(model).is_dir() else None


def copy_tokenizer(source: Path, destination: Path) -> None:
    """Copy the tokenizer files present in ``source``; BuildRefusal if there is no tokenizer at all."""
    names = [name for name in TOKENIZER_FILES if (source / name).is_file()]
    if not {"tokenizer.json", "tokenizer.model", "vocab.json", "tekken.json"} & set(names):
        raise BuildRefusal(f"{source}: no tokenizer files (tokenizer.json, tokenizer.model, vocab.json)")
    destination.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy2(source / name, destination / name)


def _commands_script(model: str, steps: Sequence[Step], tokenizer_note: str, launch: Step) -> str:
    lines = [
        "#!/usr/bin/env bash",
        f"# Rank1 engine build of {model} with TensorRT-LLM {TRTLLM_VERSION}; run inside {TRITON_IMAGE}.",
        "# Written by `python -m rank1_build build`; the tool runs these itself unless --dry-run.",
        "set -euo pipefail",
        *(step.shell() for step in steps),
        f"# {tokenizer_note}",
        "# Serve (or: python -m rank1_build serve <output directory>):",
        f"# {launch.shell()}",
        "",
    ]
    return "\n".join(lines)


def run_build(
    request: BuildRequest,
    options: ServingOptions,
    *,
    model: str,
    compute_capability: float,
    serve_root: Path,
    download: Sequence[Step] = (),
    dry_run: bool,
    echo: Echo = print,
    execute: Execute | None = None,
) -> dict:
    """Print (and unless ``dry_run`` run) the plan, copy the tokenizer, write the repository and build.json.

    ``download`` are the steps :func:`resolve_model` planned; a real run has already run (and printed) them.
    """
    layout = request.layout
    execute = execute or run_step
    layout.root.mkdir(parents=True, exist_ok=True)
    steps = build_steps(request)
    if dry_run:
        for step in download:
            echo(step.shell())
    for step in steps:
        echo(step.shell())
        if not dry_run:
            execute(step)
    tokenizer_note = f"tokenizer files are copied from {request.model_dir} to {layout.tokenizer}"
    echo(f"# {tokenizer_note}")
    if not dry_run:
        copy_tokenizer(request.model_dir, layout.tokenizer)

    values = repository_values(engine_dir=serve_root / layout.engine.name,
                               tokenizer_dir=serve_root / layout.tokenizer.name,
                               shape=request.shape, options=options)
    render_engine_config(values)  # fails early, naming any placeholder of the GPU config without a value
    write_repository(layout.repository, values)
    launch = launch_step(request.tp_size, layout.repository)
    layout.commands.write_text(_commands_script(model, [*download, *steps], tokenizer_note, launch), encoding="utf-8")
    echo(f"# serve: {launch.shell()}")

    manifest = {
        "format": MANIFEST_FORMAT,
        "model": model,
        "spec": asdict(request.spec),
        "quant": request.quant.value,
        "kv_cache": request.kv_cache.value if request.kv_cache else None,
        "tp_size": request.tp_size,
        "gpu_compute_capability": compute_capability,
        "quantizer": request.quantizer.value,
        "tensorrt_llm": TRTLLM_VERSION,
        "container": TRITON_IMAGE,
        "shape": {**asdict(request.shape), "max_input_len": request.shape.max_input_len,
                  "max_seq_len": request.shape.max_seq_len, "max_prompt_tokens": request.shape.max_prompt_tokens},
        "serving": options.to_dict(),
        "paths": {"engine": layout.engine.name, "tokenizer": layout.tokenizer.name},
        "dry_run": dry_run,
        "commands": [step.shell() for step in [*download, *steps]],
    }
    layout.manifest.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest
