"""Each benchmark script runs to the end on tiny inputs and prints its table last (no timing assertions)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run_bench(script: str, *args: str) -> list[str]:
    """Run ``bench/<script>`` with the test interpreter; return its output lines (fails on a non-zero exit)."""
    environment = {**os.environ, "PYTHONPATH": str(REPO / "python_backend")}
    run = subprocess.run([sys.executable, str(REPO / "bench" / script), *args], cwd=REPO, env=environment,
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, f"{script} failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    return run.stdout.strip().splitlines()


def table_rows(lines: list[str]) -> list[list[str]]:
    """The cells of the last Markdown table, which must end the output."""
    assert lines[-1].startswith("|"), f"the output does not end with a table:\n{lines[-5:]}"
    start = len(lines)
    while start > 0 and lines[start - 1].startswith("|"):
        start -= 1
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[start + 2:]]


def test_engine_bench(random_model_dir):
    rows = table_rows(run_bench("engine.py", "--models", "random", "--sizes", "2", "--repeats", "1", "--budget", "4"))
    assert [row[:2] for row in rows] == [["random", "2"]]


def test_answer_step_bench(toy_model_dir):
    rows = table_rows(run_bench("answer_step.py", "--docs", "2", "--repeats", "1", "--budget", "4"))
    assert [row[0] for row in rows] == ["2"] and float(rows[0][3]) > 0


def test_gpu_bench_cpu_smoke():
    rows = table_rows(run_bench("gpu.py", "--device", "cpu", "--tiny", "--batches", "1", "2", "--prompt", "8",
                                "--steps", "3", "--repeats", "1", "--copy-mb", "16", "--dtype", "float32"))
    assert [row[:2] for row in rows] == [["tiny", "1"], ["tiny", "2"]]
    assert len(rows[0]) == 9 and rows[0][-1] == "1.00"  # in-flight tok/s and the step ratio (1-row step: 1)


@pytest.mark.server
def test_overhead_bench(random_model_dir):
    rows = table_rows(run_bench("overhead.py", "--models", "random", "--docs", "2", "--budget", "4",
                                "--repeats", "1", "--entry-instances", "1"))
    assert len(rows) == 1 and rows[0][0] == "random"
    assert float(rows[0][-1]) < 1e-4  # in-process and served scores agree


@pytest.mark.server
def test_load_bench(random_server, tmp_path):
    lines = run_bench("load.py", "--url", random_server.grpc_url, "--concurrency", "1", "--requests", "2",
                      "--docs", "2", "--budget", "4", "--out", str(tmp_path / "load"))
    tools = {row[0] for row in table_rows(lines)}
    perf_analyzer_missing = any(line.startswith("perf_analyzer unavailable") for line in lines)
    assert tools == ({"AsyncRank1Client"} if perf_analyzer_missing else {"AsyncRank1Client", "perf_analyzer"})
    assert (tmp_path / "load.csv").is_file()


@pytest.mark.server
def test_scheduler_bench(random_model_dir, toy_model_dir):
    lines = run_bench("scheduler.py", "--clients", "2", "--requests-per-client", "1", "--repeats", "1",
                      "--large-docs", "2", "--large-budget", "8", "--abandoned-docs", "4", "--abandoned-budget", "4",
                      "--budgets", "2", "4")
    rows = table_rows(lines)
    assert [row[0] for row in rows][-1].startswith("ratio shared / per document")
    assert any(line.startswith("| head-of-line ratio") for line in lines)
    assert any(line.startswith("| its floor here: one decode step with 3 rows") for line in lines)
    assert any(line.startswith("| 2 |") for line in lines)  # the load sweep's one level
