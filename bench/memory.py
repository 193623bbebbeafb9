"""Resident memory of a served repository, per process: the tokenizer loaded the old way (transformers) vs now.

What is measured: real tritonservers (PyTorch engine, serving defaults but the ``rank1`` count and default budget),
started one after the other on loopback. For each server the RSS of tritonserver and of every Python backend stub
(told apart by the model folder of the ``model.py`` in its command line, /proc/<pid>/cmdline) is read at idle, sampled
every 0.2 s during a short load sweep (AsyncRank1Client: one request per instance as warm-up, then concurrency
1/2/4/8), and read again after it. RSS comes from psutil when installed, else from VmRSS in /proc/<pid>/status.
Where Linux provides them, two more columns: the peak since the process started (VmHWM, reached while loading:
the tokenizer JSON and the checkpoint are parsed then), and PSS at idle (/proc/<pid>/smaps_rollup: shared pages
split between the processes sharing them; the RSS sum counts libpython, libtorch, ... once per process).

The two variants differ in one line only, so the difference is the import path and nothing else:

* ``before`` — the assembled repository's ``rank1/1/model.py`` is replaced by one that loads the tokenizer with
  ``transformers.AutoTokenizer.from_pretrained`` (which imports torch), as the entry model did before issue #15;
* ``after`` — the repository exactly as ``rank1-triton serve`` assembles it (``tokenizer_loading.load_tokenizer``).

The engine stub (``tensorrt_llm``) and tritonserver are the same code in both. The model's weight size (bytes of
its ``*.safetensors`` files) is printed beside the table. Ends with a Markdown table; the throughput of each sweep
is printed before it (evidence for choosing the ``rank1`` instance count).

    python bench/memory.py                                             # toy model, before vs after, 4 instances
    python bench/memory.py --variants after --entry-instances 1 2 4    # instance-count sweep
    python bench/memory.py --quick                                     # smoke: random model, 1 instance, 1 request
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from common import ENGINE_MODEL, ENTRY_MODEL, MODELS, machine_line
from load import Level, client_level

from rank1_triton.fixtures.toy_task import make_ranking_queries
from rank1_triton.launch.launcher import TritonServer
from rank1_triton.launch.local import torch_server
from rank1_triton.launch.values import TorchServingOptions

MIB = 1024 * 1024
STUB = "triton_python_backend_stub"
SERVER = "tritonserver"
PROCESS_ORDER = (SERVER, ENGINE_MODEL, ENTRY_MODEL)

# The entry model as it was before issue #15: same code, tokenizer loaded by AutoTokenizer (which imports torch).
BEFORE_MODEL_PY = '''"""rank1 with the tokenizer loaded the old way (bench/memory.py's ``before`` variant)."""

import triton_python_backend_utils as pb_utils
from transformers import AutoTokenizer

from rank1_triton.triton_models import entry_model

entry_model.load_tokenizer = AutoTokenizer.from_pretrained


class TritonPythonModel(entry_model.Rank1EntryModel):
    def __init__(self) -> None:
        super().__init__(pb_utils)
'''

try:
    import psutil
except ImportError:
    psutil = None


def rss_bytes(pid: int) -> int | None:
    """Resident set size of ``pid`` (psutil, else VmRSS of /proc/<pid>/status); None once it has exited."""
    if psutil is not None:
        try:
            return int(psutil.Process(pid).memory_info().rss)
        except psutil.Error:
            return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def proc_field(pid: int, file: str, key: str) -> int | None:
    """A ``key: <n> kB`` line of /proc/<pid>/<file> in bytes, else None."""
    try:
        for line in Path(f"/proc/{pid}/{file}").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def pss_bytes(pid: int) -> int | None:
    """Proportional set size from /proc/<pid>/smaps_rollup (Linux ≥ 4.14), else None."""
    return proc_field(pid, "smaps_rollup", "Pss:")


def peak_bytes(pid: int) -> int | None:
    """The largest RSS since the process started (VmHWM), else None."""
    return proc_field(pid, "status", "VmHWM:")


def command_line(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def server_processes(repository: Path) -> dict[int, str]:
    """pid -> role of tritonserver serving ``repository`` and of each of its stubs (role = the stub's model name)."""
    roles: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        argv = command_line(int(entry.name))
        if not argv:
            continue
        if Path(argv[0]).name == SERVER and f"--model-repository={repository}" in argv:
            roles[int(entry.name)] = SERVER
        elif Path(argv[0]).name == STUB and len(argv) > 1 and Path(argv[1]).is_relative_to(repository):
            roles[int(entry.name)] = Path(argv[1]).parents[1].name  # <repository>/<model>/<version>/model.py
    return roles


def weight_bytes(model_dir: Path) -> int:
    return sum(path.stat().st_size for path in model_dir.glob("*.safetensors"))


@dataclass
class Snapshot:
    """Per process: RSS at idle, the largest RSS sampled under load, RSS after the load, peak, PSS at idle."""

    roles: dict[int, str]
    idle: dict[int, int] = field(default_factory=dict)
    load_max: dict[int, int] = field(default_factory=dict)
    after: dict[int, int] = field(default_factory=dict)
    peak: dict[int, int] = field(default_factory=dict)
    idle_pss: dict[int, int] = field(default_factory=dict)

    def columns(self) -> tuple[dict[int, int], ...]:
        return self.idle, self.load_max, self.after, self.peak, self.idle_pss


def read_all(pids: list[int], reader: Callable[[int], int | None]) -> dict[int, int]:
    values = {pid: reader(pid) for pid in pids}
    return {pid: value for pid, value in values.items() if value is not None}


class Sampler:
    """Samples the RSS of ``pids`` every ``interval_s`` in a thread, keeping each one's maximum."""

    def __init__(self, pids: list[int], interval_s: float = 0.2) -> None:
        self.pids, self.interval_s = pids, interval_s
        self.maximum: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid, value in read_all(self.pids, rss_bytes).items():
                self.maximum[pid] = max(value, self.maximum.get(pid, 0))
            self._stop.wait(self.interval_s)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass(frozen=True)
class Run:
    variant: str
    instances: int
    snapshot: Snapshot
    levels: list[Level]


def settle(seconds: float) -> None:
    """Let the stubs finish their start-up work (watchdog canaries, lazy imports) before an idle reading."""
    time.sleep(seconds)


def measure(variant: str, instances: int, model_dir: Path, args: argparse.Namespace) -> Run:
    requests = [(q, docs) for q, docs, _ in make_ranking_queries(16, args.docs, seed=23)]
    options = TorchServingOptions(entry_instances=instances, default_max_reasoning_tokens=args.budget)
    with tempfile.TemporaryDirectory(prefix="rank1-memory-") as work:
        server: TritonServer = torch_server(model_dir, Path(work), options)
        if variant == "before":
            model_py = server.repository / ENTRY_MODEL / "1" / "model.py"
            model_py.unlink()
            model_py.write_text(BEFORE_MODEL_PY)
        server.start(timeout_s=300)
        try:
            roles = server_processes(server.repository)
            expected = 2 + instances
            if len(roles) != expected:
                raise RuntimeError(f"found {len(roles)} server processes, expected {expected}: {roles}")
            pids = sorted(roles)
            snapshot = Snapshot(roles)
            settle(args.settle)
            snapshot.idle = read_all(pids, rss_bytes)
            snapshot.idle_pss = read_all(pids, pss_bytes)
            levels: list[Level] = []
            with Sampler(pids) as sampler:
                asyncio.run(client_level(server.grpc_url, requests, instances, instances, args.budget))  # warm-up
                for concurrency in args.concurrency:
                    count = max(args.requests, 2 * concurrency)
                    level = asyncio.run(client_level(server.grpc_url, requests, concurrency, count, args.budget))
                    levels.append(level)
                    print(f"{variant:>6} {instances} instances c={concurrency:<2} {level.docs_per_s:6.1f} docs/s "
                          f"p50 {level.p50_ms:6.0f} ms", flush=True)
            snapshot.load_max = sampler.maximum
            settle(args.settle)
            snapshot.after = read_all(pids, rss_bytes)
            snapshot.peak = read_all(pids, peak_bytes)
        finally:
            server.stop()
    return Run(variant, instances, snapshot, levels)


def mib(value: float | None) -> str:
    return "–" if value is None else f"{value / MIB:.0f}"


def rows(run: Run) -> list[list[str]]:
    """Per role (the largest process of the role, and how many there are), then the whole server."""
    snapshot = run.snapshot
    by_role: dict[str, list[int]] = {}
    for pid, role in snapshot.roles.items():
        by_role.setdefault(role, []).append(pid)
    out = []

    def largest(values: dict[int, int], pids: list[int]) -> int | None:
        found = [values[pid] for pid in pids if pid in values]
        return max(found) if found else None

    def total(values: dict[int, int]) -> int | None:
        return sum(values.values()) if len(values) == len(snapshot.roles) else None

    for role in sorted(by_role, key=lambda name: (*PROCESS_ORDER, name).index(name)):
        pids = by_role[role]
        label = role if len(pids) == 1 else f"{role} (largest of {len(pids)})"
        out.append([run.variant, str(run.instances), label,
                    *(mib(largest(values, pids)) for values in snapshot.columns())])
    out.append([run.variant, str(run.instances), f"**total ({len(snapshot.roles)} processes)**",
                *(f"**{mib(total(values))}**" for values in snapshot.columns())])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(MODELS), default="toy")
    parser.add_argument("--variants", nargs="+", choices=["before", "after"], default=["before", "after"])
    parser.add_argument("--entry-instances", type=int, nargs="+", default=[TorchServingOptions.entry_instances],
                        help="rank1 instance counts to serve (default %(default)s)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8], help="load sweep levels")
    parser.add_argument("--requests", type=int, default=4, help="requests per level (at least 2 per client)")
    parser.add_argument("--docs", type=int, default=8, help="documents per request")
    parser.add_argument("--budget", type=int, default=16, help="max_reasoning_tokens")
    parser.add_argument("--settle", type=float, default=6.0,
                        help="seconds to wait before the idle readings (past the first 5 s watchdog canary)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: random model, 1 instance, 1 level of 1 request, 2 docs, budget 4")
    args = parser.parse_args()
    if args.quick:
        args.model, args.entry_instances, args.concurrency = "random", [1], [1]
        args.requests, args.docs, args.budget, args.settle = 1, 2, 4, 1.0

    model_dir = MODELS[args.model]()
    runs = [measure(variant, instances, model_dir, args)
            for instances in args.entry_instances for variant in args.variants]

    print(f"\nCPU ({machine_line()}); RSS from {'psutil' if psutil else '/proc/<pid>/status VmRSS'}")
    print(f"\nThroughput of each sweep ({args.docs} docs/request, budget {args.budget}, docs/s):\n")
    print("| variant | rank1 instances | " + " | ".join(f"c={c}" for c in args.concurrency) + " |")
    print("|---|---|" + "---|" * len(args.concurrency))
    for run in runs:
        print(f"| {run.variant} | {run.instances} | " + " | ".join(f"{level.docs_per_s:.1f}" for level in run.levels)
              + " |")
    weights = weight_bytes(model_dir)
    print(f"\nModel {args.model} ({model_dir.name}): weights {weights / MIB:.0f} MiB ({weights:,} bytes of "
          "safetensors). MiB per process; the rank1 row shows the largest instance.\n")
    print("| variant | rank1 instances | process | idle RSS | max RSS under load | RSS after load | peak RSS (VmHWM) "
          "| idle PSS |")
    print("|---|---|---|---|---|---|---|---|")
    for run in runs:
        for row in rows(run):
            print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
