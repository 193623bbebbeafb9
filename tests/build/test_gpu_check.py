"""build/gpu_check.py on CPU: its plan is made of commands rank1_build accepts, and its pass/fail arithmetic."""

import importlib.util
import shlex
import subprocess
import sys

import pytest
from conftest import ROOT

from rank1_build import cli

SCRIPT = ROOT / "build" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("gpu_check", None)


def planned(gpu_check, capsys, *args: str) -> list[str]:
    assert gpu_check.main(["--dry-run", *args]) == 0
    return capsys.readouterr().out.splitlines()


def test_the_plan_builds_and_serves_every_format_with_commands_rank1_build_accepts(gpu_check, capsys, tmp_path,
                                                                                     checkpoint_dir):
    model = checkpoint_dir("qwen2")
    lines = planned(gpu_check, capsys, "--model", str(model), "--gpu-cc", "9.0", "--workdir", str(tmp_path / "w"))
    commands = [shlex.split(line.removesuffix(" &")) for line in lines if not line.startswith("#")]
    builds = [argv for argv in commands if argv[3] == "build"]
    serves = [argv for argv in commands if argv[3] == "serve"]
    assert [argv[argv.index("--quant") + 1] for argv in builds] == ["bf16", "fp8"]
    assert len(serves) == 2
    for argv in builds:
        assert argv[1:3] == ["-m", "rank1_build"]
        out = argv[argv.index("--output") + 1]
        assert argv[argv.index("--serve-root") + 1] == out  # served from where it is written
        assert cli.main([*argv[3:], "--dry-run"]) == 0, argv
    capsys.readouterr()
    for argv in serves:
        parsed = cli.parser().parse_args(argv[3:])
        assert parsed.command == "serve" and parsed.grpc_port == 18001
    assert any("bf16: max |score diff| 0.05" in line for line in lines)
    assert any("fp8: max |score diff| 0.15" in line for line in lines)


def test_the_torch_only_plan_needs_no_tensorrt_llm(gpu_check, capsys):
    lines = planned(gpu_check, capsys, "--torch-only")
    assert not any("rank1_build" in line for line in lines)
    assert any("cuda-float32: max |score diff| 0.01" in line for line in lines)
    assert any("cuda-bfloat16" in line for line in lines)


def test_the_script_runs_as_a_file_without_a_gpu():
    result = subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--formats", "fp8", "--max-diff-fp8", "0.2"],
                            capture_output=True, text=True, check=True, cwd=ROOT)
    assert "fp8: max |score diff| 0.2" in result.stdout and "bf16" not in result.stdout
    bad = subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--formats", "int3"], capture_output=True,
                         text=True, cwd=ROOT)
    assert bad.returncode == 2 and "unknown int3" in bad.stderr


def test_pairs_with_forked_reasoning_count_against_the_rate_not_the_difference(gpu_check):
    Scored, Tolerance = gpu_check.Scored, gpu_check.Tolerance
    reference = [Scored(0.5, "a"), Scored(0.6, "b"), Scored(0.7, "c"), Scored(0.8, "d")]
    close = [Scored(0.52, "a"), Scored(0.59, "b"), Scored(0.1, "forked"), Scored(0.81, "d")]
    verdict = gpu_check.compare("bf16", reference, close, Tolerance(0.05, 0.75))
    assert verdict.passed and verdict.same == 0.75 and verdict.max_diff == pytest.approx(0.02)
    assert not gpu_check.compare("bf16", reference, close, Tolerance(0.01, 0.75)).passed
    assert not gpu_check.compare("bf16", reference, close, Tolerance(0.05, 0.9)).passed
    table = gpu_check.table("ref", reference + [Scored(0.5, "")] * 4, {"bf16": close + [Scored(0.5, "")] * 4})
    assert "0.1000 (-0.6000, no)" in table
