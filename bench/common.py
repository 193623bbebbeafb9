"""Shared pieces of the benchmarks: the tiny models, a Triton server on loopback, Triton statistics, machine facts."""

from __future__ import annotations

import os
import platform
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import tritonclient.grpc as grpcclient

from rank1_triton.contract import ENGINE_MODEL_NAME, ENTRY_MODEL_NAME
from rank1_triton.fixtures.cache import ensure_random_model, ensure_toy_model
from rank1_triton.launch.launcher import TritonServer
from rank1_triton.launch.local import torch_server
from rank1_triton.launch.values import TorchServingOptions

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO_ROOT / "bench" / "results"
ENTRY_MODEL = ENTRY_MODEL_NAME
ENGINE_MODEL = ENGINE_MODEL_NAME
BATCH_PARTS = ("compute_input", "compute_infer", "compute_output")

MODELS: dict[str, Callable[[], Path]] = {
    "toy": ensure_toy_model,  # trained tiny Qwen2: mostly natural `</think>` endings
    "random": lambda: ensure_random_model("qwen2"),  # random tiny Qwen2: every answer forced
}


@contextmanager
def triton_server(model_dir: Path, options: TorchServingOptions) -> Iterator[TritonServer]:
    """A tritonserver serving ``model_dir`` with the PyTorch engine on free loopback ports, stopped on exit."""
    with tempfile.TemporaryDirectory(prefix="rank1-bench-") as work:
        server = torch_server(model_dir, Path(work), options)
        server.start(timeout_s=300)
        try:
            yield server
        finally:
            server.stop()


@dataclass(frozen=True)
class Duration:
    """A cumulative Triton statistic: how many events and their total time."""

    count: int
    ns: int

    def __sub__(self, other: Duration) -> Duration:
        return Duration(self.count - other.count, self.ns - other.ns)

    @property
    def mean_ms(self) -> float:
        return self.ns / self.count / 1e6 if self.count else 0.0


@dataclass(frozen=True)
class ModelStats:
    """One model's cumulative statistics (``get_inference_statistics``): per request and per executed batch."""

    success: Duration
    queue: Duration
    compute_input: Duration
    compute_infer: Duration
    compute_output: Duration
    batch_compute: Duration  # executions and their total input + infer + output time (wall time of the model)
    batch_sizes: dict[int, int]  # batch size -> executions

    def __sub__(self, other: ModelStats) -> ModelStats:
        durations = (a - b for a, b in zip(self.durations(), other.durations(), strict=True))
        sizes = {size: count - other.batch_sizes.get(size, 0) for size, count in self.batch_sizes.items()}
        return ModelStats(*durations, batch_sizes={size: count for size, count in sizes.items() if count})

    def durations(self) -> tuple[Duration, ...]:
        return (self.success, self.queue, self.compute_input, self.compute_infer, self.compute_output,
                self.batch_compute)


def _duration(entry: dict) -> Duration:
    return Duration(int(entry.get("count", 0)), int(entry.get("ns", 0)))


def model_stats(client: grpcclient.InferenceServerClient, model: str) -> ModelStats:
    """The server's cumulative statistics for ``model`` (all versions)."""
    stats = client.get_inference_statistics(model_name=model, as_json=True)["model_stats"][0]
    inference = stats["inference_stats"]
    sizes: dict[int, int] = {}
    batch_ns = 0
    for batch in stats.get("batch_stats", []):
        sizes[int(batch["batch_size"])] = _duration(batch.get("compute_infer", {})).count
        batch_ns += sum(_duration(batch.get(part, {})).ns for part in BATCH_PARTS)
    return ModelStats(
        *(_duration(inference.get(part, {})) for part in
          ("success", "queue", "compute_input", "compute_infer", "compute_output")),
        batch_compute=Duration(sum(sizes.values()), batch_ns),
        batch_sizes=sizes,
    )


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or the platform's answer elsewhere)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def code_version() -> str:
    """The checkout's commit, marked ``+changes`` when the work tree differs from it."""
    def git(*args: str) -> str:
        run = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
        return run.stdout.strip() if run.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown commit"
    return commit + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def machine_line() -> str:
    """CPU, core count, load average, UTC time and code version: the context every printed table needs."""
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"{cpu_model()}, {os.cpu_count()} cores, load average {load} (1/5/15 min), {now}, code {code_version()}"
