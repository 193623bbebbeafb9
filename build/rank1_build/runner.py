"""The runner: execute a build plan, or print it (``--dry-run``), then write the repository and ``build.json``.

Every build writes one folder that the Helm chart serves as it is (docs/engines.md, "The output folder")::

    OUT/build.json    what was built, ``serve_root`` (where OUT is mounted) and ``engine``
    OUT/commands.sh   every command, for inspection or a manual re-run
    OUT/engine/       TensorRT-LLM engines (``--engine torch``: a copy of the Hugging Face checkpoint)
    OUT/tokenizer/    the tokenizer files the entry model loads
    OUT/repository/   rank1/ and tensorrt_llm/, whose configs name SERVE_ROOT/engine and SERVE_ROOT/tokenizer
    OUT/checkpoint/, OUT/hf/   intermediates of a TensorRT-LLM build
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from .catalog import RANK1_CHECKPOINTS, catalog_spec
from .configs import ServingOptions, entry_values, write_repository
from .engine_config import (
    FillContext,
    check_template,
    describe,
    fill_argument,
    fill_template_path,
    fill_values,
    finish_config,
    project_parameters,
    project_parameters_text,
    read_template,
    template_path,
)
from .errors import BuildRefusal
from .formats import paged_context_fmha_lost
from .model import ModelSpec, inspect_model
from .pins import TRITON_IMAGE, TRITON_VERSION, TRTLLM_VERSION
from .plan import BuildRequest, OutputLayout, Step, build_steps, download_step, engine_config_steps, launch_step
from .plan import uses_examples as plan_uses_examples

if TYPE_CHECKING:
    from rank1_triton.launch.values import TorchServingOptions

Echo = Callable[[str], None]
Execute = Callable[[Step], None]

MANIFEST_FORMAT = 2
ENGINE_TRTLLM = "tensorrt-llm"
ENGINE_TORCH = "torch"
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


def is_hub_id(model: str) -> bool:
    """``org/name`` that is not a local directory."""
    return not Path(model).is_dir() and bool(_HUB_ID.match(model))


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


def preflight_container(examples_dir: str | None, backend_root: str) -> list[str]:
    """Check the container files a real TensorRT-LLM build uses, before anything runs; the template's keys.

    ``examples_dir`` None: the plan runs no example script (``--quantizer modelopt``).
    """
    if examples_dir is not None and not Path(examples_dir).is_dir():
        raise BuildRefusal(
            f"no {examples_dir}: --trtllm-examples must be TensorRT-LLM's examples folder (NVIDIA's 26.05 image has "
            "it at /app/examples: tensorrtllm_backend r26.05 dockerfile/Dockerfile.triton.trt_llm_backend). Run the "
            f"build inside {TRITON_IMAGE}, or pass --trtllm-examples"
        )
    fill = Path(fill_template_path(backend_root))
    if not fill.is_file():
        raise BuildRefusal(
            f"no {fill}: --trtllm-backend-root {backend_root} must be the TensorRT-LLM backend root of NVIDIA's "
            "container (26.05 copies triton_backend/tools to /app/tools: tensorrtllm_backend r26.05 "
            "dockerfile/Dockerfile.triton.trt_llm_backend)"
        )
    path, text = read_template(backend_root)
    return check_template(text, str(path))


def check_example_script(request: BuildRequest) -> None:
    """The exact example script of the plan must exist (known once the checkpoint's architecture is)."""
    script = plan_uses_examples(request)
    if script is not None and not Path(script).is_file():
        raise BuildRefusal(
            f"no {script}: --trtllm-examples {request.examples_dir} is not TensorRT-LLM {TRTLLM_VERSION}'s examples "
            "folder (NVIDIA's 26.05 image has it at /app/examples)"
        )


def copy_tokenizer(source: Path, destination: Path) -> None:
    """Copy the tokenizer files present in ``source``; BuildRefusal if there is no tokenizer at all."""
    names = [name for name in TOKENIZER_FILES if (source / name).is_file()]
    if not {"tokenizer.json", "tokenizer.model", "vocab.json", "tekken.json"} & set(names):
        raise BuildRefusal(f"{source}: no tokenizer files (tokenizer.json, tokenizer.model, vocab.json)")
    destination.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(source / name, destination / name)


def _serve_path(serve_root: Path, name: str) -> str:
    return str(Path(serve_root) / name)


def _commands_script(model: str, lines: Sequence[str], serve_note: str) -> str:
    return "\n".join([
        "#!/usr/bin/env bash",
        f"# Rank1 build of {model} with TensorRT-LLM {TRTLLM_VERSION}; run inside {TRITON_IMAGE} "
        f"(Triton {TRITON_VERSION}).",
        "# Written by `python -m rank1_build build`; the tool runs these itself unless --dry-run.",
        "set -euo pipefail",
        *lines,
        f"# {serve_note}",
        "",
    ])


def fill_context(request: BuildRequest, options: ServingOptions, serve_root: Path) -> FillContext:
    """What the engine config's values depend on."""
    return FillContext(engine_dir=_serve_path(serve_root, request.layout.engine.name), shape=request.shape,
                       options=options,
                       paged_context_fmha=paged_context_fmha_lost(request.quant, request.kv_cache) is None)


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
    template_keys: Sequence[str] | None = None,
) -> dict:
    """Print (and unless ``dry_run`` run) the plan, copy the tokenizer, fill the engine config, write build.json.

    ``download`` are the steps :func:`resolve_model` planned; a real run has already run (and printed) them.
    ``template_keys`` are the keys NVIDIA's template has (:func:`preflight_container`); a real run checks them
    itself when not given, a dry run fills every key of ``engine_config.KEYS``.
    """
    layout = request.layout
    execute = execute or run_step
    context = fill_context(request, options, serve_root)
    values = fill_values(context)
    extra = project_parameters(context)
    if not dry_run:
        check_example_script(request)
        if template_keys is None:
            template_keys = preflight_container(None, request.backend_root)
    chosen = {name: values[name] for name in values if template_keys is None or name in template_keys}
    config_steps = engine_config_steps(request, fill_argument(chosen))
    steps = build_steps(request)
    layout.root.mkdir(parents=True, exist_ok=True)

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

    entry = entry_values(tokenizer_dir=_serve_path(serve_root, layout.tokenizer.name), shape=request.shape,
                         options=options)
    echo(f"# repository {layout.repository}: rank1/ from model_repository/rank1/config.pbtxt; tensorrt_llm/ is "
         "NVIDIA's template filled by NVIDIA's fill_template.py (build/rank1_build/engine_config.py):")
    for step in config_steps:
        echo(step.shell())
    for line in describe(chosen, extra):
        echo(line)
    if not dry_run:
        write_repository(layout.repository, entry)
        for step in config_steps:
            execute(step)
        where = str(layout.engine_config)
        layout.engine_config.write_text(
            finish_config(layout.engine_config.read_text(encoding="utf-8"), chosen, context, where), encoding="utf-8")
    launch = launch_step(request.tp_size, Path(serve_root) / layout.repository.name)
    serve_note = (f"serve where {layout.root} is mounted at {serve_root}: python -m rank1_build serve {serve_root} "
                  f"(the image's default command), or NVIDIA's launcher: {launch.shell()}")
    echo(f"# {serve_note}")

    append = f"cat >> {layout.engine_config} <<'EOF'\n{project_parameters_text(extra).strip()}\nEOF"
    commands = [*download, *steps, *config_steps]
    lines = [*(step.shell() for step in [*download, *steps]), f"# {tokenizer_note}",
             *(step.shell() for step in config_steps), append]
    layout.commands.write_text(_commands_script(model, lines, serve_note), encoding="utf-8")

    manifest = {
        "format": MANIFEST_FORMAT,
        "engine": ENGINE_TRTLLM,
        "serve_root": str(serve_root),
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
        "engine_config": {"template": template_path(request.backend_root), "fill": chosen, "appended": extra,
                          "kv_cache_reuse": context.kv_cache_reuse, "chunked_context": context.chunked_context},
        "paths": {"engine": layout.engine.name, "tokenizer": layout.tokenizer.name,
                  "repository": layout.repository.name},
        "dry_run": dry_run,
        "commands": [step.shell() for step in commands],
    }
    layout.manifest.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def _copy_checkpoint(source: Path, destination: Path) -> None:
    """Copy a Hugging Face checkpoint folder (hidden entries such as .cache/ and .git/ left out)."""
    if source.resolve() == destination.resolve():
        return
    # copyfile: the copies get the umask's modes, not the source's (a checkpoint cache may hold 0600 files that a
    # pod running as another user could not read).
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns(".*"), dirs_exist_ok=True,
                    copy_function=shutil.copyfile)


def run_torch_build(
    model: str,
    layout: OutputLayout,
    options: TorchServingOptions,
    *,
    serve_root: Path,
    quant: str,
    dry_run: bool,
    echo: Echo = print,
    execute: Execute | None = None,
) -> dict:
    """``--engine torch``: the same layout with the PyTorch engine model (no GPU, no quantization).

    ``engine/`` is the checkpoint itself (downloaded there for a hub id, copied for a folder); the repository is
    rank1_triton's torch assembly with ``model_dir`` = SERVE_ROOT/engine and ``tokenizer_dir`` = SERVE_ROOT/tokenizer.
    """
    from rank1_triton.launch.repository import assemble_repository

    execute = execute or run_step
    hub = is_hub_id(model)
    if not hub and not Path(model).is_dir():
        raise BuildRefusal(f"--model {model}: no such directory, and not a Hugging Face hub id (org/name)")
    layout.root.mkdir(parents=True, exist_ok=True)
    download = Step("download", ("hf", "download", model, "--local-dir", str(layout.engine))) if hub else None
    lines = [download.shell()] if download else [
        f"# copy the checkpoint {Path(model).resolve()} to {layout.engine} (hidden entries left out)"]
    lines += [f"# tokenizer files are copied from {layout.engine} to {layout.tokenizer}",
              f"# repository {layout.repository}: model_repository/ for the PyTorch engine, model_dir = "
              f"{_serve_path(serve_root, 'engine')}, tokenizer_dir = {_serve_path(serve_root, 'tokenizer')}, "
              f"dtype {options.dtype}, device {options.device}"]
    for line in lines:
        echo(line)
    spec = None
    if not dry_run:
        if download:
            execute(download)
        else:
            _copy_checkpoint(Path(model), layout.engine)
        spec = inspect_model(layout.engine)
        copy_tokenizer(layout.engine, layout.tokenizer)
        from rank1_triton.launch.values import torch_repository_values

        values = torch_repository_values(layout.engine, options,
                                         serve_model_dir=_serve_path(serve_root, layout.engine.name),
                                         serve_tokenizer_dir=_serve_path(serve_root, layout.tokenizer.name))
        assemble_repository(layout.repository, engine=ENGINE_TORCH, values=values)
    elif not hub:
        spec = inspect_model(Path(model))
    serve_note = (f"Serve: python -m rank1_build serve {layout.root}, or rank1-triton serve-repository "
                  f"--model-repository {layout.repository} (where the folder is mounted at {serve_root})")
    echo(f"# {serve_note}")
    layout.commands.write_text(_commands_script(model, lines, serve_note), encoding="utf-8")
    manifest = {
        "format": MANIFEST_FORMAT,
        "engine": ENGINE_TORCH,
        "serve_root": str(serve_root),
        "model": model,
        "spec": asdict(spec) if spec else None,
        "quant": quant,
        "tp_size": 1,
        "torch": asdict(options),
        "paths": {"engine": layout.engine.name, "tokenizer": layout.tokenizer.name,
                  "repository": layout.repository.name},
        "dry_run": dry_run,
        "commands": [download.shell()] if download else [],
    }
    layout.manifest.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest
