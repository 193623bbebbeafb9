"""Looking at a running tritonserver from outside: readiness over HTTP, and the PID of a model's stub process."""

from __future__ import annotations

import urllib.request
from pathlib import Path


def is_ready(http_port: int) -> bool:
    """Whether ``/v2/health/ready`` answers 200 (every model loaded and ready, under --strict-readiness)."""
    try:
        with urllib.request.urlopen(f"http://localhost:{http_port}/v2/health/ready", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def stub_pid(model_dir: Path) -> int:
    """The PID of the Python-backend stub serving the model in ``model_dir`` (its command line holds that path)."""
    marker = str(model_dir)
    stubs = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().decode(errors="replace").split("\0")
        except OSError:  # the process ended while we looked
            continue
        if args and args[0].endswith("triton_python_backend_stub") and any(marker in arg for arg in args):
            stubs.append(int(cmdline.parent.name))
    assert len(stubs) == 1, f"expected one stub under {marker}, found {stubs}"
    return stubs[0]
