"""A deployment rehearsal on CPU: what `rank1_build build` writes is served by exactly the command the chart renders.

The build runs with the CPU engine (`--engine torch`) on the tiny random model into one folder; the chart is
rendered with that folder as `modelRepository.mountPath` (so the pod's mount path and the local folder are the
same path), the nvidia-pytriton tritonserver as `server.executable`, and local ports. The test then checks the
pod's mounts, runs the main container's command, args and env unchanged, reranks over gRPC, kills the engine's
process to check that the watchdog can reload it under the chart's flags, and compares the scores with the
in-process engine. It fails when the build's layout and the chart's flags disagree (a repository path, the
engine or tokenizer paths, a flag the server refuses, a model-control mode that forbids the reload).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from deploy_helpers import REPO, TRITON_251_SETS, expand_env_references, rendered_server
from triton_processes import is_ready, stub_pid

from rank1_client import Rank1Client
from rank1_triton.contract import ENGINE_MODEL_NAME
from rank1_triton.launch.launcher import free_ports
from rank1_triton.launch.tritonserver import find_tritonserver
from rank1_triton.reranker import ScoringOptions

pytestmark = pytest.mark.server
QUERY, DOCUMENTS = 'find "cat"', ["cat dog sun", "red blue moon", "the cat sat"]
BUDGET = 8


def build_cpu_output(model_dir: Path, out: Path) -> None:
    command = [sys.executable, "-m", "rank1_build", "build", "--engine", "torch", "--model", str(model_dir),
               "--output", str(out), "--serve-root", str(out)]
    run = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=600, check=False,
                         env={**os.environ, "PYTHONPATH": str(REPO / "build")})
    assert run.returncode == 0, run.stderr[-3000:]


def wait_until(condition, timeout_s: float, process: subprocess.Popen, log: Path) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        assert process.poll() is None, f"tritonserver exited:\n{log.read_text()[-4000:]}"
        if condition():
            return time.monotonic() - started
        time.sleep(0.3)
    raise AssertionError(f"not reached within {timeout_s} s:\n{log.read_text()[-4000:]}")


def test_the_chart_serves_the_cpu_build_output(tools, random_model_dir, reranker_for, tmp_path):
    out = tmp_path / "rank1-random-cpu"
    build_cpu_output(random_model_dir, out)
    install = find_tritonserver(tmp_path / "triton")  # the wheel's server and a backend folder with its stub
    ports = free_ports()
    env_sets = [f"server.env[{i}].name={name},server.env[{i}].value={value}"
                for i, (name, value) in enumerate(install.environment.items())]
    objects = tools.render(sets=(
        *TRITON_251_SETS, f"modelRepository.mountPath={out}", f"server.executable={install.binary}",
        f"server.ports.http={ports.http}", f"server.ports.grpc={ports.grpc}", f"server.ports.metrics={ports.metrics}",
        f"server.extraArgs={{--backend-directory={install.backend_directory}}}", "server.exitTimeoutSeconds=5",
        *env_sets,
    ))
    pod = rendered_server(objects)

    mounts = {mount["name"]: mount for mount in pod["volumeMounts"]}
    assert mounts["model-repository"]["mountPath"] == str(out) and mounts["model-repository"]["readOnly"]
    assert not mounts["model-repository"].get("subPath"), "the whole build output is mounted"

    env = {item["name"]: item.get("value", "") for item in pod["env"]}
    env["RANK1_MODEL_CONTROL_KEY"] = "rehearsal-pod-uid"  # the kubelet fills it from the pod's UID
    argv = [*pod["command"], *expand_env_references(pod["args"], env)]
    log = tmp_path / "tritonserver.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
                                   env={**os.environ, **env})
    try:
        print(f"\nstarted in {wait_until(lambda: is_ready(ports.http), 300, process, log):.1f} s: {' '.join(argv)}")
        with Rank1Client(f"localhost:{ports.grpc}", max_retries=5) as client:
            served = client.rerank(QUERY, DOCUMENTS, max_reasoning_tokens=BUDGET)
            os.kill(stub_pid(out / "repository" / ENGINE_MODEL_NAME), signal.SIGKILL)
            wait_until(lambda: not is_ready(ports.http), 60, process, log)
            recovered = wait_until(lambda: is_ready(ports.http), 120, process, log)
            print(f"engine reloaded under the chart's flags, ready again {recovered:.1f} s after not-ready")
            again = client.rerank(QUERY, DOCUMENTS, max_reasoning_tokens=BUDGET)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
    expected = reranker_for(random_model_dir).rerank(QUERY, DOCUMENTS,
                                                    options=ScoringOptions(max_reasoning_tokens=BUDGET))
    by_index = {result.index: result.score for result in served.results}
    assert [by_index[i] for i in range(len(DOCUMENTS))] == pytest.approx([r.score for r in expected], abs=1e-6)
    assert [r.score for r in again.results] == pytest.approx([r.score for r in served.results], abs=1e-6)
