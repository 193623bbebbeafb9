"""Serve a build folder: its ``repository/`` as built, or moved to where the folder is mounted; exec the server.

``build.json`` records ``serve_root``, the mount point the configs' absolute paths were written for. Mounted
there (the Helm chart mounts the folder at ``modelRepository.mountPath``, ``/models`` by default, and passes
``--model-repository=/models/repository``), the folder's ``repository/`` is served as it is; mounted elsewhere,
the repository is copied to ``--workdir`` with those paths moved to the actual mount.

TensorRT-LLM engines run with the process layout of NVIDIA's ``triton_backend/scripts/launch_triton_server.py``:
one tritonserver per TP rank under ``mpirun``; rank 0 loads every model, the other ranks load only
``tensorrt_llm`` (the C++ backend's leader/worker mode). Unlike that script, which starts ``mpirun`` in the
background and exits, this replaces the current process with ``mpirun`` so that a container's main process stays
up while the server runs. ``--engine torch`` builds run one tritonserver (rank1_triton's launcher command line).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from rank1_triton.contract import ENGINE_MODEL_NAME, PYTHON_BACKEND_THREAD_POOL_FLAG
from rank1_triton.launch.launcher import MODEL_CONTROL_HEADER, Ports

from .errors import BuildRefusal
from .pins import TRITONSERVER
from .runner import ENGINE_TORCH, ENGINE_TRTLLM, MANIFEST_FORMAT


def load_manifest(root: Path) -> dict:
    """``root/build.json`` of a finished (not dry-run) build; BuildRefusal otherwise."""
    path = root / "build.json"
    if not path.is_file():
        raise BuildRefusal(f"{root}: no build.json; mount the --output folder of `python -m rank1_build build`")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("format") != MANIFEST_FORMAT:
        raise BuildRefusal(f"{path}: manifest format {manifest.get('format')!r}, expected {MANIFEST_FORMAT}; "
                           "rebuild the folder with this version of rank1_build")
    if manifest["dry_run"]:
        raise BuildRefusal(f"{path}: written by a dry run; there is no engine to serve")
    if manifest.get("engine") not in (ENGINE_TRTLLM, ENGINE_TORCH):
        raise BuildRefusal(f"{path}: unknown engine {manifest.get('engine')!r}")
    return manifest


def served_repository(root: Path, workdir: Path, manifest: dict) -> Path:
    """The repository to serve: the built one when ``root`` is its serve_root, else a moved copy in ``workdir``."""
    from rank1_triton.launch.repository import relocate_repository

    built = root / manifest["paths"]["repository"]
    if Path(manifest["serve_root"]).resolve() == root.resolve():
        return built
    return relocate_repository(built, workdir / "repository", manifest["serve_root"], str(root))


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
        # Explicit model control everywhere: rank 0 loads every model (the entry model's watchdog may reload the
        # engine model, which needs this mode), the other ranks only the engine model (leader/worker mode).
        argv += ["--model-control-mode=explicit", f"--load-model={ENGINE_MODEL_NAME if rank else '*'}"]
        if not rank:
            argv.append(PYTHON_BACKEND_THREAD_POOL_FLAG)  # the entry model's BLS calls (ranks > 0 run no Python)
            # Explicit mode opens the load/unload API to clients: lock it with a key nobody is given.
            lock = f"model-repository:{MODEL_CONTROL_HEADER}={secrets.token_urlsafe(16)}"
            argv += ["--strict-readiness=true", f"--grpc-restricted-protocol={lock}", f"--http-restricted-api={lock}"]
    return argv


def torch_server_command(repository: Path, workdir: Path, ports: Ports) -> tuple[list[str], dict[str, str]]:
    """rank1_triton's tritonserver command line and environment for a PyTorch-engine repository."""
    from rank1_triton.launch.launcher import TritonServer

    server = TritonServer(repository, workdir, ports)
    return server.command(), server.install().environment


def serve(
    root: Path, workdir: Path, *, ports: Ports = Ports(), dry_run: bool = False,
    echo: Callable[[str], None] = print,
) -> list[str]:
    """Serve the build folder ``root`` (exec the server; print the command if dry_run)."""
    root = root.resolve()
    manifest = load_manifest(root)
    repository = served_repository(root, workdir, manifest)
    if manifest["engine"] == ENGINE_TORCH:
        argv, environment = torch_server_command(repository, workdir, ports)
    else:
        argv, environment = tritonserver_argv(repository, manifest["tp_size"], ports), {}
    echo(" ".join(argv))
    if not dry_run:
        os.execvpe(argv[0], argv, {**os.environ, **environment})
    return argv
