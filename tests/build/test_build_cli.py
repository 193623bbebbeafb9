"""`python -m rank1_build build` and `serve`: dry runs, refusals, a run with stubbed commands, the launch line."""

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from rank1_build import cli, runner
from rank1_build.errors import BuildRefusal
from rank1_build.serve import load_manifest, serve, tritonserver_argv
from rank1_triton.launch.launcher import Ports


@pytest.fixture
def no_execution(monkeypatch):
    def refuse(step):
        raise AssertionError(f"a dry run executed {step.argv}")

    monkeypatch.setattr(runner, "run_step", refuse)


def build(*args: str) -> int:
    return cli.main(["build", *args])


def printed_commands(output: str) -> list[list[str]]:
    return [shlex.split(line) for line in output.splitlines() if line and not line.startswith("#")]


def test_dry_run_prints_every_command_and_writes_the_configs(checkpoint_dir, tmp_path, capsys, recorded_assembly,
                                                            no_execution):
    model = checkpoint_dir("qwen2")
    out = tmp_path / "out"
    assert build("--model", str(model), "--quant", "fp8", "--gpu-cc", "9.0", "--output", str(out), "--dry-run") == 0
    stdout = capsys.readouterr().out
    commands = printed_commands(stdout)
    assert [argv[0] for argv in commands] == ["python3", "trtllm-build"]
    assert commands[0][1] == "/app/examples/quantization/quantize.py"
    assert "--gather_generation_logits" in commands[1]
    assert f"# serve: python3 /app/scripts/launch_triton_server.py --world_size 1 --model_repo {out}/repository" in (
        stdout)
    assert not (out / "checkpoint").exists() and not (out / "engine").exists() and not (out / "tokenizer").exists()

    manifest = json.loads((out / "build.json").read_text())
    assert (manifest["quant"], manifest["kv_cache"], manifest["tp_size"]) == ("fp8", "fp8", 1)
    assert manifest["dry_run"] is True
    assert manifest["tensorrt_llm"] == "1.2.1"
    assert manifest["container"] == "nvcr.io/nvidia/tritonserver:26.05-trtllm-python-py3"
    assert manifest["shape"]["max_seq_len"] == 16384
    assert manifest["commands"] == [shlex.join(argv) for argv in commands]

    script = (out / "commands.sh").read_text()
    assert script.startswith("#!/usr/bin/env bash")
    assert all(shlex.join(argv) in script for argv in commands)

    [assembly] = recorded_assembly
    assert assembly["out_dir"] == out / "repository"
    assert assembly["values"]["engine_dir"] == str(out / "engine")
    assert assembly["values"]["tokenizer_dir"] == str(out / "tokenizer")
    assert "inflight_fused_batching" in (out / "repository" / "tensorrt_llm" / "config.pbtxt").read_text()


def test_dry_run_of_a_hub_id_plans_the_download(tmp_path, capsys, recorded_assembly, no_execution):
    out = tmp_path / "out"
    assert build("--model", "jhu-clsp/rank1-mistral-2501-24b", "--quant", "int8-sq", "--kv-cache", "int8",
                 "--tp-size", "2", "--gpu-cc", "8.0", "--output", str(out), "--dry-run") == 0
    captured = capsys.readouterr()
    commands = printed_commands(captured.out)
    assert commands[0] == ["hf", "download", "jhu-clsp/rank1-mistral-2501-24b", "--local-dir", str(out / "hf")]
    convert = commands[1]
    assert convert[1] == "/app/examples/models/core/llama/convert_checkpoint.py"
    assert convert[convert.index("--model_dir") + 1] == str(out / "hf")
    assert {"--int8_kv_cache", "--per_token", "--per_channel"} <= set(convert)
    assert convert[convert.index("--tp_size") + 1] == "2"
    assert "--world_size 2" in captured.out
    assert "rank1-32b" in captured.err  # the TP corruption warning


def test_serve_root_moves_the_paths_in_the_configs(checkpoint_dir, tmp_path, recorded_assembly, no_execution):
    build("--model", str(checkpoint_dir("llama")), "--quant", "int4-awq", "--gpu-cc", "8.6",
          "--output", str(tmp_path / "out"), "--serve-root", "/engines", "--dry-run")
    assert recorded_assembly[0]["values"]["engine_dir"] == "/engines/engine"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--quant", "fp8", "--gpu-cc", "8.6"], "compute capability 8.9 or newer"),
        (["--quant", "bf16", "--gpu-cc", "9.0", "--tp-size", "3"], "does not divide the 28 attention heads"),
        (["--quant", "bf16", "--gpu-cc", "9.0", "--kv-cache", "fp8"], "not a documented recipe"),
        (["--quant", "bf16", "--gpu-cc", "9.0", "--scheduler-policy", "max_utilization",
          "--kv-cache-free-gpu-mem-fraction", "1.5"], "kv_cache_free_gpu_mem_fraction"),
    ],
)
def test_refusals_exit_2_before_writing_anything(checkpoint_dir, tmp_path, capsys, args, message, no_execution):
    out = tmp_path / "out"
    assert build("--model", str(checkpoint_dir("qwen2")), *args, "--output", str(out), "--dry-run") == 2
    assert message in capsys.readouterr().err
    assert not (out / "build.json").exists()


def test_unknown_models_are_refused(tmp_path, capsys, no_execution):
    assert build("--model", "someone/other-model", "--quant", "bf16", "--gpu-cc", "9.0",
                 "--output", str(tmp_path), "--dry-run") == 2
    assert "not a published Rank1 checkpoint" in capsys.readouterr().err
    assert build("--model", "./no/such/dir", "--quant", "bf16", "--gpu-cc", "9.0",
                 "--output", str(tmp_path), "--dry-run") == 2
    assert "no such directory" in capsys.readouterr().err


def test_a_missing_gpu_needs_gpu_cc(checkpoint_dir, tmp_path, capsys, monkeypatch, no_execution):
    monkeypatch.setattr(cli, "detect_compute_capability", lambda: None)
    assert build("--model", str(checkpoint_dir()), "--quant", "bf16", "--output", str(tmp_path), "--dry-run") == 2
    assert "pass --gpu-cc" in capsys.readouterr().err


def run_stubbed_build(checkpoint_dir, tmp_path, monkeypatch, *args: str) -> tuple[Path, list[tuple[str, ...]]]:
    """A real (not dry) build whose commands are recorded instead of run."""
    executed: list[tuple[str, ...]] = []

    def fake_run(step):
        executed.append(step.argv)
        if step.name == "trtllm-build":
            (tmp_path / "out" / "engine").mkdir(parents=True)

    monkeypatch.setattr(runner, "run_step", fake_run)
    out = tmp_path / "out"
    assert build("--model", str(checkpoint_dir("qwen2")), "--output", str(out), *args) == 0
    return out, executed


def test_a_real_run_executes_the_plan_and_copies_the_tokenizer(checkpoint_dir, tmp_path, monkeypatch,
                                                               recorded_assembly):
    out, executed = run_stubbed_build(checkpoint_dir, tmp_path, monkeypatch, "--quant", "int8-wo", "--gpu-cc", "8.0")
    assert [argv[0] for argv in executed] == ["python3", "trtllm-build"]
    assert "--use_weight_only" in executed[0]
    assert sorted(p.name for p in (out / "tokenizer").iterdir()) == ["config.json", "tokenizer.json",
                                                                   "tokenizer_config.json"]
    assert json.loads((out / "build.json").read_text())["dry_run"] is False


def test_a_failing_command_exits_1(checkpoint_dir, tmp_path, monkeypatch, capsys):
    def fail(step):
        raise subprocess.CalledProcessError(3, list(step.argv))

    monkeypatch.setattr(runner, "run_step", fail)
    assert build("--model", str(checkpoint_dir()), "--quant", "bf16", "--gpu-cc", "9.0",
                 "--output", str(tmp_path / "out")) == 1
    assert "exited with 3" in capsys.readouterr().err


def test_serve_assembles_under_the_mount_point_and_launches_one_server_per_rank(
        checkpoint_dir, tmp_path, monkeypatch, recorded_assembly, capsys):
    out, _ = run_stubbed_build(checkpoint_dir, tmp_path, monkeypatch, "--quant", "fp8", "--gpu-cc", "9.0",
                               "--tp-size", "2")
    mounted = tmp_path / "engines"
    out.rename(mounted)
    argv = serve(mounted, tmp_path / "work", ports=Ports(9000, 9001, 9002), dry_run=True)
    values = recorded_assembly[-1]["values"]
    assert values["engine_dir"] == str(mounted / "engine")
    assert values["tokenizer_dir"] == str(mounted / "tokenizer")
    assert argv == tritonserver_argv(tmp_path / "work" / "repository", 2, Ports(9000, 9001, 9002))
    assert capsys.readouterr().out.strip().endswith(" ".join(argv[-3:]))


def test_launch_line_mirrors_nvidias_launcher():
    argv = tritonserver_argv(Path("/r"), 2)
    ranks = " ".join(argv).split(" : ")
    assert ranks[0].startswith("mpirun --allow-run-as-root -n 1 /opt/tritonserver/bin/tritonserver")
    for rank, line in enumerate(ranks):
        assert "--model-repository=/r" in line
        assert f"--backend-config=python,shm-region-prefix-name=prefix{rank}_" in line
        assert "--disable-auto-complete-config" in line
        assert ("--load-model=tensorrt_llm" in line) is (rank == 1)
    assert tritonserver_argv(Path("/r"), 1).count(":") == 0


def test_serve_refuses_dry_runs_and_empty_folders(checkpoint_dir, tmp_path, recorded_assembly, no_execution):
    with pytest.raises(BuildRefusal, match=r"no build\.json"):
        load_manifest(tmp_path)
    build("--model", str(checkpoint_dir()), "--quant", "bf16", "--gpu-cc", "9.0", "--output", str(tmp_path / "o"),
          "--dry-run")
    with pytest.raises(BuildRefusal, match="dry run"):
        load_manifest(tmp_path / "o")


def test_module_entry_point_and_tables(capsys):
    result = subprocess.run([sys.executable, "-m", "rank1_build", "build", "--help"], capture_output=True, text=True,
                            cwd=ROOT / "build", check=True)
    assert "--dry-run" in result.stdout and "--tp-size" in result.stdout
    assert cli.main(["tables"]) == 0
    assert "| rank1-32b | Qwen2.5 |" in capsys.readouterr().out


def test_dry_run_assembles_a_parseable_repository_with_rank1_tritons_assembler(checkpoint_dir, tmp_path,
                                                                               no_execution):
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    out = tmp_path / "out"
    assert build("--model", str(checkpoint_dir("mistral")), "--quant", "int4-awq", "--kv-cache", "int8",
                 "--gpu-cc", "8.6", "--output", str(out), "--serve-root", "/engines", "--dry-run") == 0
    repository = out / "repository"
    configs = {path.parent.name: path.read_text() for path in repository.glob("*/config.pbtxt")}
    assert set(configs) == {"rank1", "tensorrt_llm"}
    assert not list(repository.glob("*/config.tensorrtllm.pbtxt"))
    for text in configs.values():
        assert "${" not in text
    engine = text_format.Parse(configs["tensorrt_llm"], model_config_pb2.ModelConfig())
    assert engine.backend == "tensorrtllm"
    assert engine.parameters["gpt_model_path"].string_value == "/engines/engine"
    entry = text_format.Parse(configs["rank1"], model_config_pb2.ModelConfig())
    assert entry.parameters["tokenizer_dir"].string_value == "/engines/tokenizer"
    assert entry.parameters["engine_model_name"].string_value == "tensorrt_llm"
    assert not list((repository / "tensorrt_llm" / "1").iterdir())


@pytest.mark.parametrize("arch", ["qwen2", "llama", "mistral"])
@pytest.mark.parametrize("quant", ["bf16", "fp8", "int8-sq", "int8-wo", "int4-awq"])
def test_dry_run_of_every_format_and_family_writes_a_consistent_build(checkpoint_dir, tmp_path, capsys,
                                                                      recorded_assembly, no_execution, arch, quant):
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    out = tmp_path / "out"
    assert build("--model", str(checkpoint_dir(arch)), "--quant", quant, "--gpu-cc", "9.0", "--output", str(out),
                 "--dry-run") == 0
    commands = printed_commands(capsys.readouterr().out)
    manifest = json.loads((out / "build.json").read_text())
    assert manifest["quant"] == quant
    assert manifest["kv_cache"] == ("fp8" if quant == "fp8" else None)
    assert manifest["spec"]["architecture"] == {"qwen2": "Qwen2ForCausalLM", "llama": "LlamaForCausalLM",
                                                "mistral": "MistralForCausalLM"}[arch]
    assert manifest["commands"] == [shlex.join(argv) for argv in commands]
    config = text_format.Parse((out / "repository" / "tensorrt_llm" / "config.pbtxt").read_text(),
                               model_config_pb2.ModelConfig())
    assert config.backend == "tensorrtllm"
    assert config.parameters["gpt_model_path"].string_value == str(out / "engine")
    assert config.parameters["rank1_max_context_tokens"].string_value == str(manifest["shape"]["max_seq_len"])
    engine_argv = commands[-1]
    assert engine_argv[engine_argv.index("--max_seq_len") + 1] == str(manifest["shape"]["max_seq_len"])
