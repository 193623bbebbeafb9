"""Finding a tritonserver binary and the environment it needs (system install or the nvidia-pytriton wheel)."""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

SYSTEM_BACKENDS = Path("/opt/tritonserver/backends")


@dataclass(frozen=True)
class TritonInstall:
    """A tritonserver binary, its backend folder and extra environment."""

    binary: Path
    backend_directory: Path
    environment: dict[str, str] = field(default_factory=dict)


def _pytriton_root() -> Path:
    try:
        import pytriton
    except ImportError as error:
        raise FileNotFoundError(
            "no tritonserver on PATH and the nvidia-pytriton wheel is not installed: "
            "run `pip install nvidia-pytriton==0.7.0` (it ships tritonserver 2.51) or use NVIDIA's Triton container"
        ) from error
    return Path(pytriton.__file__).parent / "tritonserver"


def _python_backend_folder(pytriton_server: Path, work_dir: Path) -> Path:
    """A backend folder holding the Python backend and the stub built for the running interpreter."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = pytriton_server / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.is_file():
        raise FileNotFoundError(f"nvidia-pytriton has no Python backend stub for Python {version} ({stub})")
    target = work_dir / "backends" / "python"
    target.mkdir(parents=True, exist_ok=True)
    for source in [*sorted((pytriton_server / "backends" / "python").glob("*.*")), stub]:
        if source.is_file():
            shutil.copy2(source, target / source.name)
    return target.parent


def python_environment() -> dict[str, str]:
    """Put the running interpreter first on PATH: the backend stub takes its site-packages from there.

    The stub ignores PYTHONPATH, so ``rank1_triton`` must be installed in that environment
    (``pip install -e ./python_backend``).
    """
    return {"PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}


def find_tritonserver(work_dir: Path) -> TritonInstall:
    """The system tritonserver (NVIDIA's containers) if on PATH, else the one in the nvidia-pytriton wheel."""
    environment = python_environment()
    system = shutil.which("tritonserver")
    if system and SYSTEM_BACKENDS.is_dir():
        return TritonInstall(Path(system), SYSTEM_BACKENDS, environment)
    server = _pytriton_root()
    libraries = [sysconfig.get_config_var("LIBDIR"), str(server.parents[1] / "nvidia_pytriton.libs")]
    if os.environ.get("LD_LIBRARY_PATH"):
        libraries.append(os.environ["LD_LIBRARY_PATH"])
    environment["LD_LIBRARY_PATH"] = os.pathsep.join(libraries)
    return TritonInstall(server / "bin" / "tritonserver", _python_backend_folder(server, work_dir), environment)
