"""bench/gateway.py runs to the end on tiny inputs and prints its table last (no timing assertions)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.server
def test_gateway_bench(toy_server):
    environment = {**os.environ, "PYTHONPATH": str(REPO / "python_backend")}
    run = subprocess.run([sys.executable, str(REPO / "bench" / "gateway.py"), "--url", toy_server.grpc_url,
                          "--docs", "2", "--budget", "4", "--sequential", "1", "--concurrency", "2", "--rounds", "1",
                          "--http-overhead", "5"],
                         cwd=REPO, env=environment, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, f"{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    rows = [line for line in run.stdout.strip().splitlines() if line.startswith("| ")][1:]
    assert [row.split("|")[2].strip() for row in rows] == ["gRPC", "gateway", "gRPC", "gateway"]
    for row in rows[1::2]:
        ratio, diff = (cell.strip() for cell in row.strip("|").split("|")[-2:])
        assert ratio.strip("*") and float(diff) < 1e-5  # the gateway's scores are the gRPC client's
