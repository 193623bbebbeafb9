"""Serve a built engine folder: assemble its repository where it is mounted, then run tritonserver in the foreground.

The process layout is that of NVIDIA's ``triton_backend/scripts/launch_triton_server.py``: one tritonserver per
TP rank under ``mpirun``; rank 0 loads every model, the other ranks load only ``tensorrt_llm`` (the C++ backend's
leader/worker mode). Unlike that script, which starts ``mpirun`` in the background and exits, this replaces the
current process with ``mpirun`` so that a container's main process stays up while the server runs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

from rank1_triton.contract import ENGINE_MODEL_NAME
from rank1_triton.launch.launcher import Ports

from .configs import ServingOptions, repository_values, write_repository
from .errors import BuildRefusal
from .pins import TRITONSERVER
from .runner import MANIFEST_FORMAT
from .sizing import EngineShape


def load_manifest(root: Path) -> dict:
    """``root/build.json`` of a finished (not dry-run) build; BuildRefusal otherwise."""
    path = root / "build.json"
    if not path.is_file():
        raise BuildRefusal(f"{root}: no build.json; mount the --output folder of `python -m rank1_build build`")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("format") != MANIFEST_FORMAT:
        raise BuildRefusal(f"{path}: manifest format {manifest.get('format')!r}, expected {MANIFEST_FORMAT}")
    if manifest["dry_run"]:
        raise BuildRefusal(f"{path}: written by a dry run; there is no engine to serve")
    return manifest


def serve_values(root: Path, manifest: dict) -> dict[str, str]:
    """The repository values of the manifest's build, with paths under ``root`` (where the folder is mounted)."""
    shape = EngineShape(**{f.name: manifest["shape"][f.name] for f in fields(EngineShape)})
    return repository_values(
        engine_dir=root / manifest["paths"]["engine"],
        tokenizer_dir=root / manifest["paths"]["tokenizer"],
        shape=shape,
        options=ServingOptions(**manifest["serving"]),
    )


def tritonserver_argv(repository: Path, world_size: int, ports: Ports = Ports(),
                      tritonserver: str = TRITONSERVER) -> list[str]:
    """``mpirun`` with one tritonserver per rank (every rank gets the same ports; only rank 0 opens them)."""
    argv = ["mpirun", "--allow-run-as-root"]
    for rank in range(world_size):
        if rank:
            argv.append(":")
        argv += ["-n", "1", tritonserver, f"--model-repository={repository}", f"--http-port={ports.http}",
                 f"--grpc-port={ports.grpc}", f"--metrics-port={ports.metrics}", "--disable-auto-complete-config",
                 f"--backend-config=python,shm-region-prefix-name=prefix{rank}_"]
        if rank:
            argv += ["--model-control-mode=explicit", f"--load-model={ENGINE_MODEL_NAME}"]
    return argv


def serve(
    root: Path, workdir: Path, *, ports: Ports = Ports(), dry_run: bool = False,
    echo: Callable[[str], None] = print,
) -> list[str]:
    """Assemble ``workdir/repository`` for the engine folder ``root`` and exec the server (print it if dry_run)."""
    root = root.resolve()
    manifest = load_manifest(root)
    repository = write_repository(workdir / "repository", serve_values(root, manifest))
    argv = tritonserver_argv(repository, manifest["tp_size"], ports)
    echo(" ".join(argv))
    if not dry_run:
        os.execvp(argv[0], argv)
    return argv
