"""The quality gate end to end: the toy model served in fp32 and bf16 passes; a broken candidate fails."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from rank1_build.gate import DevQuery, run_gate
from rank1_triton.fixtures.toy_task import make_ranking_queries
from rank1_triton.launch.local import torch_server
from rank1_triton.launch.values import TorchServingOptions

pytestmark = pytest.mark.server
GATE_OPTIONS = TorchServingOptions(max_documents=16, default_max_reasoning_tokens=32, entry_instances=1)
DEV = [
    DevQuery(f"q{i}", query, tuple(documents), tuple(int(label) for label in labels))
    for i, (query, documents, labels) in enumerate(make_ranking_queries(4, 12, seed=31))
]


@pytest.fixture(scope="module")
def toy_servers(toy_model_dir, tmp_path_factory):
    servers = {}
    try:
        for dtype in ("float32", "bfloat16"):
            options = dataclasses.replace(GATE_OPTIONS, dtype=dtype)
            servers[dtype] = torch_server(toy_model_dir, tmp_path_factory.mktemp(f"gate-{dtype}"), options)
            servers[dtype].start(timeout_s=300)
        yield servers
    finally:
        for server in servers.values():
            server.stop()


def test_bf16_passes_against_fp32(toy_servers):
    report = run_gate(toy_servers["float32"].grpc_url, toy_servers["bfloat16"].grpc_url, DEV)
    print(f"fp32 vs bf16: spearman {report.mean_spearman:.3f}, top-10 overlap {report.mean_top10_overlap:.3f}, "
          f"nDCG@10 {report.ndcg10_baseline:.3f} -> {report.ndcg10_candidate:.3f}")
    assert report.passed, report.failures
    assert report.ndcg10_baseline >= 0.9


def test_random_model_fails_and_the_cli_exits_non_zero(toy_servers, random_server, tmp_path):
    report = run_gate(toy_servers["float32"].grpc_url, random_server.grpc_url, DEV)
    assert not report.passed and report.failures
    dev_file = tmp_path / "dev.jsonl"
    dev_file.write_text("".join(
        json.dumps({"query_id": q.query_id, "query": q.query, "documents": list(q.documents),
                    "relevance": list(q.relevance or ())}) + "\n" for q in DEV
    ))
    command = [sys.executable, "-m", "rank1_build", "compare", "--dev-set", str(dev_file),
               "--baseline", toy_servers["float32"].grpc_url]
    same = subprocess.run([*command, "--candidate", toy_servers["bfloat16"].grpc_url], capture_output=True, text=True)
    broken = subprocess.run([*command, "--candidate", random_server.grpc_url], capture_output=True, text=True)
    assert same.returncode == 0, same.stdout + same.stderr
    assert broken.returncode == 1, broken.stdout + broken.stderr
