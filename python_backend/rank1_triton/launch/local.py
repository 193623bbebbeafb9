"""Serve a checkpoint with the PyTorch engine: assemble its repository and start tritonserver."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .launcher import Ports, TritonServer, free_ports
from .repository import assemble_repository
from .values import TorchServingOptions, torch_repository_values


def torch_server(
    model_dir: Path,
    work_dir: Path,
    options: TorchServingOptions | None = None,
    *,
    ports: Ports | None = None,
    extra_args: Sequence[str] = (),
) -> TritonServer:
    """A (not yet started) server for ``model_dir``; its repository is assembled under ``work_dir``."""
    repository = assemble_repository(work_dir / "model_repository", engine="torch",
                                     values=torch_repository_values(model_dir, options or TorchServingOptions()))
    return TritonServer(repository, work_dir, ports or free_ports(), extra_args=extra_args)
