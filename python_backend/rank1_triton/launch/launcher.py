"""Start tritonserver on a model repository, wait until it is ready, stop it cleanly."""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..contract import PYTHON_BACKEND_THREAD_POOL_FLAG
from ..errors import ServerStartError
from .tritonserver import TritonInstall, find_tritonserver

LOGGER = logging.getLogger("rank1_triton.launch")
# Header of the model-repository API's key (the Helm chart uses the same name).
MODEL_CONTROL_HEADER = "rank1-model-control"

@dataclass(frozen=True)
class Ports:
    """The three ports Triton listens on."""

    http: int = 8000
    grpc: int = 8001
    metrics: int = 8002


def free_port() -> int:
    """A port that is free on localhost right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def free_ports() -> Ports:
    """Three free ports (for tests and side-by-side servers)."""
    return Ports(free_port(), free_port(), free_port())


def _check_port(name: str, port: int) -> None:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            raise ServerStartError(f"{name} port {port} is busy: stop what uses it or pass --{name}-port") from None


def _answers(url: str) -> bool:
    """Whether ``url`` answers 200 now."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


class TritonServer:
    """A tritonserver process on ``repository``; use as a context manager or call start()/stop()."""

    def __init__(self, repository: Path, work_dir: Path, ports: Ports = Ports(), *, log_verbose: int = 0,
                 exit_timeout_s: int = 10, extra_args: Sequence[str] = (),
                 install: TritonInstall | None = None) -> None:
        self.repository = repository
        self.work_dir = work_dir
        self.ports = ports
        self.extra_args = list(extra_args)  # more tritonserver flags: TLS, restricted protocols, ...
        self.log_path = work_dir / "tritonserver.log"
        self._log_verbose = log_verbose
        self._exit_timeout_s = exit_timeout_s
        self._process: subprocess.Popen[bytes] | None = None
        self._install = install  # found on first use when None
        # Explicit model control opens Triton's load/unload API to clients; lock it with a key nobody is given
        # (the entry model's watchdog reloads through pb_utils, which the restriction does not cover).
        self._model_control_key = secrets.token_urlsafe(16)

    @property
    def grpc_url(self) -> str:
        """``host:port`` of the gRPC endpoint."""
        return f"localhost:{self.ports.grpc}"

    @property
    def metrics_url(self) -> str:
        """The Prometheus endpoint."""
        return f"http://localhost:{self.ports.metrics}/metrics"

    def install(self) -> TritonInstall:
        """The tritonserver to run (found once; in pytriton mode that copies the backend files)."""
        if self._install is None:
            self._install = find_tritonserver(self.work_dir)
        return self._install

    def command(self) -> list[str]:
        """The tritonserver command line (also what ``--dry-run`` prints)."""
        install = self.install()
        return [
            str(install.binary),
            f"--model-repository={self.repository}",
            f"--backend-directory={install.backend_directory}",
            f"--http-port={self.ports.http}",
            f"--grpc-port={self.ports.grpc}",
            f"--metrics-port={self.ports.metrics}",
            f"--exit-timeout-secs={self._exit_timeout_s}",
            f"--log-verbose={self._log_verbose}",
            PYTHON_BACKEND_THREAD_POOL_FLAG,
            "--strict-readiness=true",
            # Explicit mode lets the entry model's watchdog reload an engine model whose process died.
            "--model-control-mode=explicit",
            "--load-model=*",
            *self._model_repository_lock(),
            *self.extra_args,
        ]

    def _model_repository_lock(self) -> list[str]:
        if any("model-repository" in arg for arg in self.extra_args):
            return []  # the caller restricts it (tritonserver refuses a protocol in two restrictions)
        restriction = f"model-repository:{MODEL_CONTROL_HEADER}={self._model_control_key}"
        return [f"--grpc-restricted-protocol={restriction}", f"--http-restricted-api={restriction}"]

    def start(self, timeout_s: float = 300.0) -> None:
        """Start the server and block until every model is ready (or raise ServerStartError)."""
        for name, port in (("http", self.ports.http), ("grpc", self.ports.grpc), ("metrics", self.ports.metrics)):
            _check_port(name, port)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        environment = {**os.environ, **self.install().environment}
        command = self.command()
        LOGGER.info("starting %s", " ".join(command))
        # The child keeps its own copy of the descriptor; ours is closed as soon as the process has started.
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment,
                                             start_new_session=True)
        self._wait_ready(timeout_s)

    def _wait_ready(self, timeout_s: float) -> None:
        """Block until the models are ready and every endpoint answers.

        tritonserver opens its endpoints one after another (gRPC, HTTP, then metrics: ``StartEndpoints`` in the
        server's ``src/main.cc``), so a ready HTTP endpoint does not mean the metrics port listens yet.
        """
        deadline = time.monotonic() + timeout_s
        pending = [f"http://localhost:{self.ports.http}/v2/health/ready"]
        # tritonserver reads a boolean option as true/on/1 or false/off/0, any case (src/command_line_parser.cc).
        switched_off = {f"--allow-metrics={value}" for value in ("false", "off", "0")}
        if not switched_off & {arg.lower() for arg in self.extra_args}:
            pending.append(self.metrics_url)
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                raise ServerStartError(f"tritonserver exited while loading the models; log tail:\n{self.log_tail()}")
            while pending and _answers(pending[0]):
                pending.pop(0)
            if not pending:
                return
            time.sleep(0.5)
        self.stop()
        raise ServerStartError(f"tritonserver was not ready after {timeout_s:.0f} s ({pending[0]} did not answer); "
                               f"log tail:\n{self.log_tail()}")

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the server log."""
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM, wait, then SIGKILL the whole process group if it hangs."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            LOGGER.warning("tritonserver did not stop within %.0f s; killing it", timeout_s)
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def __enter__(self) -> TritonServer:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
