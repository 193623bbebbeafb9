"""bench/memory.py in its quickest mode: both variants are measured in one run and printed side by side."""

from __future__ import annotations

import pytest
from test_bench_smoke import run_bench, table_rows


@pytest.mark.server
def test_memory_bench_prints_before_and_after(random_model_dir):
    rows = table_rows(run_bench("memory.py", "--quick"))
    processes = {(row[0], row[2]) for row in rows}
    for variant in ("before", "after"):
        assert {(variant, "tritonserver"), (variant, "tensorrt_llm"), (variant, "rank1")} <= processes
    idle = {(row[0], row[2]): float(row[3].strip("*")) for row in rows}
    assert idle[("after", "rank1")] < idle[("before", "rank1")]  # the entry stub no longer imports torch
