"""`python -m rank1_build build` and `serve`: dry runs, refusals, runs with stubbed commands, one layout to the pod."""

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, make_container, synthetic_template
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from rank1_build import cli, runner
from rank1_build.engine_config import REQUIRED_KEYS, parse_fill_argument
from rank1_build.errors import BuildRefusal
from rank1_build.serve import load_manifest, serve, tritonserver_argv
from rank1_triton.contract import FUSED_ANSWER_STEP_PARAMETER, MAX_CONTEXT_PARAMETER, PYTHON_BACKEND_THREAD_POOL_FLAG
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


def fill_of(commands: list[list[str]]) -> dict[str, str]:
    [fill] = [argv for argv in commands if argv[1].endswith("/tools/fill_template.py")]
    assert fill[:3] == ["python3", "/app/tools/fill_template.py", "-i"] or fill[2] == "-i"
    return parse_fill_argument(fill[4])


def parse(path: Path) -> model_config_pb2.ModelConfig:
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def test_dry_run_prints_every_command_and_the_template_fill(checkpoint_dir, tmp_path, capsys, no_execution):
    model = checkpoint_dir("qwen2")
    out = tmp_path / "out"
    assert build("--model", str(model), "--quant", "fp8", "--gpu-cc", "9.0", "--output", str(out), "--dry-run") == 0
    stdout = capsys.readouterr().out
    commands = printed_commands(stdout)
    assert [argv[0] for argv in commands] == ["python3", "trtllm-build", "cp", "python3"]
    assert commands[0][1] == "/app/examples/quantization/quantize.py"
    assert "--gather_generation_logits" in commands[1]
    assert "--use_fp8_context_fmha" not in commands[1]  # builder.py turns it on itself for FP8 KV + paged FMHA
    config = str(out / "repository" / "tensorrt_llm" / "config.pbtxt")
    assert commands[2] == ["cp", "/app/all_models/inflight_batcher_llm/tensorrt_llm/config.pbtxt", config]
    assert commands[3][:4] == ["python3", "/app/tools/fill_template.py", "-i", config]
    fill = fill_of(commands)
    assert set(REQUIRED_KEYS) <= set(fill)
    assert fill["engine_dir"] == "/models/engine"  # the chart's default mount point
    assert fill["logits_datatype"] == "TYPE_FP32"
    assert "#   guided_decoding_backend" in stdout and f"{MAX_CONTEXT_PARAMETER} = 16384" in stdout
    assert "python -m rank1_build serve /models" in stdout
    assert not any((out / name).exists() for name in ("checkpoint", "engine", "tokenizer", "repository"))

    manifest = json.loads((out / "build.json").read_text())
    assert (manifest["engine"], manifest["serve_root"]) == ("tensorrt-llm", "/models")
    assert (manifest["quant"], manifest["kv_cache"], manifest["tp_size"]) == ("fp8", "fp8", 1)
    assert manifest["dry_run"] is True
    assert manifest["tensorrt_llm"] == "1.2.1"
    assert manifest["container"] == "nvcr.io/nvidia/tritonserver:26.05-trtllm-python-py3"
    assert manifest["shape"]["max_seq_len"] == 16384
    assert manifest["commands"] == [shlex.join(argv) for argv in commands]
    assert manifest["engine_config"]["fill"] == fill
    assert manifest["paths"] == {"engine": "engine", "tokenizer": "tokenizer", "repository": "repository"}

    script = (out / "commands.sh").read_text()
    assert script.startswith("#!/usr/bin/env bash")
    assert all(shlex.join(argv) in script for argv in commands)
    assert f'key: "{FUSED_ANSWER_STEP_PARAMETER}"' in script  # the append, as a heredoc


@pytest.mark.parametrize("arch", ["qwen2", "llama", "mistral"])
@pytest.mark.parametrize(("quant", "tp"), [("bf16", 1), ("fp8", 1), ("int8-sq", 1), ("int8-wo", 1),
                                           ("int4-awq", 1), ("bf16", 2), ("fp8", 2)])
def test_dry_run_of_every_format_and_family_prints_the_full_fill(checkpoint_dir, tmp_path, capsys, no_execution,
                                                                  arch, quant, tp):
    out = tmp_path / "out"
    assert build("--model", str(checkpoint_dir(arch)), "--quant", quant, "--gpu-cc", "9.0", "--tp-size", str(tp),
                 "--output", str(out), "--dry-run") == 0
    commands = printed_commands(capsys.readouterr().out)
    fill = fill_of(commands)
    assert set(REQUIRED_KEYS) <= set(fill)
    assert (fill["enable_kv_cache_reuse"], fill["enable_chunked_context"]) == ("true", "true")
    manifest = json.loads((out / "build.json").read_text())
    assert manifest["quant"] == quant and manifest["tp_size"] == tp
    assert manifest["kv_cache"] == ("fp8" if quant == "fp8" else None)
    assert manifest["spec"]["architecture"] == {"qwen2": "Qwen2ForCausalLM", "llama": "LlamaForCausalLM",
                                                "mistral": "MistralForCausalLM"}[arch]
    assert manifest["commands"] == [shlex.join(argv) for argv in commands]
    engine_argv = next(argv for argv in commands if argv[0] == "trtllm-build")
    assert engine_argv[engine_argv.index("--max_seq_len") + 1] == str(manifest["shape"]["max_seq_len"])
    assert manifest["engine_config"]["appended"][MAX_CONTEXT_PARAMETER] == str(manifest["shape"]["max_seq_len"])


def test_dry_run_of_a_hub_id_plans_the_download(tmp_path, capsys, no_execution):
    out = tmp_path / "out"
    assert build("--model", "jhu-clsp/rank1-mistral-2501-24b", "--quant", "int8-sq", "--tp-size", "2",
                 "--gpu-cc", "8.0", "--output", str(out), "--dry-run") == 0
    captured = capsys.readouterr()
    commands = printed_commands(captured.out)
    assert commands[0] == ["hf", "download", "jhu-clsp/rank1-mistral-2501-24b", "--local-dir", str(out / "hf")]
    convert = commands[1]
    assert convert[1] == "/app/examples/models/core/llama/convert_checkpoint.py"
    assert convert[convert.index("--model_dir") + 1] == str(out / "hf")
    assert {"--per_token", "--per_channel"} <= set(convert)
    assert convert[convert.index("--tp_size") + 1] == "2"
    assert "--world_size 2" in captured.out
    assert "rank1-32b" in captured.err  # the TP corruption warning


def test_serve_root_moves_the_paths_in_the_configs(checkpoint_dir, tmp_path, capsys, no_execution):
    assert build("--model", str(checkpoint_dir("llama")), "--quant", "int4-awq", "--gpu-cc", "8.6",
                 "--output", str(tmp_path / "out"), "--serve-root", "/mnt/models", "--dry-run") == 0
    assert fill_of(printed_commands(capsys.readouterr().out))["engine_dir"] == "/mnt/models/engine"
    assert json.loads((tmp_path / "out" / "build.json").read_text())["serve_root"] == "/mnt/models"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--quant", "fp8", "--gpu-cc", "8.6"], "compute capability 8.9 or newer"),
        (["--quant", "bf16", "--gpu-cc", "9.0", "--tp-size", "3"], "does not divide the 28 attention heads"),
        (["--quant", "bf16", "--gpu-cc", "9.0", "--kv-cache", "fp8"], "not a documented recipe"),
        (["--quant", "bf16", "--gpu-cc", "9.0", "--kv-cache-free-gpu-mem-fraction", "1.5"],
         "kv_cache_free_gpu_mem_fraction"),
        # Engines without paged context FMHA: no KV reuse, no chunked context (tensorrt_llm/builder.py build()).
        (["--quant", "int8-sq", "--kv-cache", "int8", "--gpu-cc", "9.0"],
         "Paged Context FMHA is disabled because it doesn't work with int8 kv cache"),
        (["--quant", "bf16", "--kv-cache", "int8", "--gpu-cc", "8.0"], "--no-kv-cache-reuse"),
        (["--quant", "int8-wo", "--kv-cache", "int8", "--gpu-cc", "8.6"], "fixExecutorConfig"),
        (["--quant", "int4-awq", "--kv-cache", "fp8", "--gpu-cc", "9.0"],
         "FP8 Paged Context FMHA is disabled because FP8 context FMHA is disabled"),
        (["--quant", "int8-wo", "--kv-cache", "int8", "--gpu-cc", "8.0", "--no-kv-cache-reuse"],
         "pass --max-num-tokens 16384"),
        # Blackwell (SM 10.x): trtllm-build raises for INT8/INT4 weights, the INT8 KV cache and SmoothQuant.
        (["--quant", "int8-sq", "--gpu-cc", "10.0"], "SmoothQuant is not supported on SM>=100"),
        (["--quant", "int8-wo", "--gpu-cc", "10.0"], "INT8/INT4 quantization is not supported on SM>=100"),
        (["--quant", "int4-awq", "--gpu-cc", "10.3"], "INT8/INT4 quantization is not supported on SM>=100"),
        (["--quant", "bf16", "--kv-cache", "int8", "--gpu-cc", "10.0", "--no-kv-cache-reuse",
          "--max-num-tokens", "16384"], "INT8/INT4 quantization is not supported on SM>=100"),
        # What the project's options cannot express through NVIDIA's template or fill_template.py.
        (["--quant", "fp8", "--gpu-cc", "9.0", "--queue-timeout-us", "5"], "sets no queue timeout"),
        (["--quant", "bf16", "--gpu-cc", "9.0", "--serve-root", "models"], "must be an absolute path"),
        (["--quant", "bf16", "--gpu-cc", "9.0", "--serve-root", "/mnt/a:b"], "fill_template.py splits its argument"),
        (["--quant", "bf16", "--gpu-cc", "9.0", "--serve-root", "/mnt/a,b"], "cannot carry a comma"),
        (["--quant", "bf16", "--gpu-cc", "9.0", "--device", "cuda"], "an option of --engine torch"),
        (["--gpu-cc", "9.0"], "needs --quant"),
        (["--quant", "none", "--gpu-cc", "9.0"], "--quant none is for --engine torch"),
    ],
)
def test_refusals_exit_2_with_their_reason_before_writing_anything(checkpoint_dir, tmp_path, capsys, args, message,
                                                                   no_execution):
    out = tmp_path / "out"
    assert build("--model", str(checkpoint_dir("qwen2")), *args, "--output", str(out), "--dry-run") == 2
    err = capsys.readouterr().err
    assert err.startswith("refused: ") and message in err
    assert not (out / "build.json").exists()


@pytest.mark.parametrize(("quant", "kv", "cc"), [("int8-wo", "int8", "8.0"), ("int8-sq", "int8", "8.6"),
                                                 ("bf16", "int8", "9.0"), ("int4-awq", "fp8", "9.0")])
def test_the_kv_reuse_opt_out_builds_and_says_so_in_the_config(checkpoint_dir, tmp_path, capsys, no_execution,
                                                               quant, kv, cc):
    out = tmp_path / "out"
    assert build("--model", str(checkpoint_dir("qwen2")), "--quant", quant, "--kv-cache", kv, "--gpu-cc", cc,
                 "--no-kv-cache-reuse", "--max-num-tokens", "16384", "--output", str(out), "--dry-run") == 0
    captured = capsys.readouterr()
    fill = fill_of(printed_commands(captured.out))
    assert (fill["enable_kv_cache_reuse"], fill["enable_chunked_context"]) == ("false", "false")
    assert "prefills prompt + reasoning again" in captured.err
    manifest = json.loads((out / "build.json").read_text())
    assert manifest["serving"]["enable_kv_cache_reuse"] is False
    assert manifest["engine_config"]["chunked_context"] is False


@pytest.mark.parametrize("quant", ["fp8", "bf16"])
def test_blackwell_builds_fp8_and_bf16(checkpoint_dir, tmp_path, no_execution, quant):
    assert build("--model", str(checkpoint_dir()), "--quant", quant, "--gpu-cc", "10.0",
                 "--output", str(tmp_path / "out"), "--dry-run") == 0


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


def container_args(root: Path) -> list[str]:
    return ["--trtllm-backend-root", str(root), "--trtllm-examples", str(root / "examples")]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda root: None, "--trtllm-examples must be TensorRT-LLM's examples folder"),
        (lambda root: make_container(root) and (root / "tools" / "fill_template.py").unlink(),
         "--trtllm-backend-root"),
        (lambda root: make_container(root) and (root / "all_models").rename(root / "moved"), "--trtllm-backend-root"),
        (lambda root: make_container(root, synthetic_template(drop=("guided_decoding_backend",))),
         "NVIDIA's template changed"),
        (lambda root: make_container(root, synthetic_template(extra=("new_knob",))), "does not know how to fill"),
    ],
)
def test_a_real_build_checks_the_container_before_anything_runs(checkpoint_dir, tmp_path, capsys, no_execution,
                                                                setup, message):
    root = tmp_path / "app"
    setup(root)
    assert build("--model", str(checkpoint_dir()), "--quant", "bf16", "--gpu-cc", "9.0", *container_args(root),
                 "--output", str(tmp_path / "out")) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out" / "build.json").exists()


def test_the_default_container_paths_are_checked_too(checkpoint_dir, tmp_path, capsys, no_execution):
    if Path("/app/examples").is_dir():
        pytest.skip("this machine has NVIDIA's /app")
    assert build("--model", str(checkpoint_dir()), "--quant", "bf16", "--gpu-cc", "9.0",
                 "--output", str(tmp_path / "out")) == 2
    assert "no /app/examples: --trtllm-examples" in capsys.readouterr().err


def run_stubbed_build(checkpoint_dir, tmp_path, monkeypatch, container, *args: str,
                      arch: str = "qwen2") -> tuple[Path, list[tuple[str, ...]]]:
    """A real (not dry) build: NVIDIA's tools are recorded instead of run, the template fill runs for real."""
    executed: list[tuple[str, ...]] = []
    real_run = runner.run_step

    def fake_run(step):
        executed.append(step.argv)
        if step.name in ("install-template", "fill-template"):
            real_run(step)
        if step.name == "trtllm-build":
            (tmp_path / "out" / "engine").mkdir(parents=True)

    monkeypatch.setattr(runner, "run_step", fake_run)
    out = tmp_path / "out"
    assert build("--model", str(checkpoint_dir(arch)), "--output", str(out), *container_args(container), *args) == 0
    return out, executed


def test_a_real_run_fills_nvidias_template_with_nvidias_tool(checkpoint_dir, tmp_path, monkeypatch, container):
    out, executed = run_stubbed_build(checkpoint_dir, tmp_path, monkeypatch, container, "--quant", "int8-wo",
                                      "--gpu-cc", "8.0")
    assert [argv[0] for argv in executed] == ["python3", "trtllm-build", "cp", "python3"]
    assert "--use_weight_only" in executed[0]
    assert executed[3][1] == str(container / "tools" / "fill_template.py")
    assert sorted(p.name for p in (out / "tokenizer").iterdir()) == ["config.json", "tokenizer.json",
                                                                   "tokenizer_config.json"]
    manifest = json.loads((out / "build.json").read_text())
    assert manifest["dry_run"] is False and manifest["serve_root"] == "/models"

    repository = out / "repository"
    assert sorted(p.name for p in repository.iterdir()) == ["rank1", "tensorrt_llm"]
    assert not list((repository / "tensorrt_llm" / "1").iterdir())
    engine_text = (repository / "tensorrt_llm" / "config.pbtxt").read_text()
    assert "${" not in engine_text
    engine = parse(repository / "tensorrt_llm" / "config.pbtxt")
    assert engine.backend == "tensorrtllm"
    params = {key: value.string_value for key, value in engine.parameters.items()}
    assert params["gpt_model_path"] == "/models/engine"
    assert params["enable_kv_cache_reuse"] == params["enable_chunked_context"] == "true"
    assert params["guided_decoding_backend"] == params["xgrammar_tokenizer_info_path"] == ""
    assert (params[FUSED_ANSWER_STEP_PARAMETER], params[MAX_CONTEXT_PARAMETER]) == ("false", "16384")
    entry = parse(repository / "rank1" / "config.pbtxt")
    assert entry.parameters["tokenizer_dir"].string_value == "/models/tokenizer"
    assert entry.parameters["engine_model_name"].string_value == "tensorrt_llm"


def test_the_modelopt_quantizer_needs_no_examples_folder(checkpoint_dir, tmp_path, monkeypatch, container):
    import shutil

    shutil.rmtree(container / "examples")
    calib = tmp_path / "calib.jsonl"
    calib.write_text('{"text": "x"}\n')
    _, executed = run_stubbed_build(checkpoint_dir, tmp_path, monkeypatch, container, "--quant", "fp8",
                                    "--gpu-cc", "9.0", "--quantizer", "modelopt", "--calib-texts", str(calib))
    assert executed[0][1:4] == ("-m", "rank1_build", "quantize")


def test_a_failing_command_exits_1(checkpoint_dir, tmp_path, monkeypatch, capsys, container):
    def fail(step):
        raise subprocess.CalledProcessError(3, list(step.argv))

    monkeypatch.setattr(runner, "run_step", fail)
    assert build("--model", str(checkpoint_dir()), "--quant", "bf16", "--gpu-cc", "9.0", *container_args(container),
                 "--output", str(tmp_path / "out")) == 1
    assert "exited with 3" in capsys.readouterr().err


def test_serve_uses_the_built_repository_where_the_folder_is_mounted_at_its_serve_root(
        checkpoint_dir, tmp_path, monkeypatch, capsys, container):
    out = tmp_path / "out"
    run_stubbed_build(checkpoint_dir, tmp_path, monkeypatch, container, "--quant", "fp8", "--gpu-cc", "9.0",
                      "--tp-size", "2", "--serve-root", str(out))
    argv = serve(out, tmp_path / "work", ports=Ports(9000, 9001, 9002), dry_run=True)
    assert without_keys(argv) == without_keys(tritonserver_argv(out / "repository", 2, Ports(9000, 9001, 9002)))
    assert not (tmp_path / "work").exists()
    assert capsys.readouterr().out.strip().endswith(" ".join(argv[-3:]))


def test_serve_moves_the_paths_when_the_folder_is_mounted_elsewhere(checkpoint_dir, tmp_path, monkeypatch,
                                                                    container):
    out, _ = run_stubbed_build(checkpoint_dir, tmp_path, monkeypatch, container, "--quant", "bf16", "--gpu-cc", "9.0")
    mounted = tmp_path / "engines"
    out.rename(mounted)
    argv = serve(mounted, tmp_path / "work", dry_run=True)
    moved = tmp_path / "work" / "repository"
    assert f"--model-repository={moved}" in argv
    engine = parse(moved / "tensorrt_llm" / "config.pbtxt")
    assert engine.parameters["gpt_model_path"].string_value == str(mounted / "engine")
    assert parse(moved / "rank1" / "config.pbtxt").parameters["tokenizer_dir"].string_value == str(
        mounted / "tokenizer")
    # The build folder itself is left as built (read-only mounts).
    assert parse(mounted / "repository" / "tensorrt_llm" / "config.pbtxt").parameters[
        "gpt_model_path"].string_value == "/models/engine"


def without_keys(argv: list[str]) -> list[str]:
    """The command with the model-repository API's key (random per start) blanked."""
    return [re.sub(r"(rank1-model-control=)\S+", r"\1KEY", arg) for arg in argv]


def test_launch_line_mirrors_nvidias_launcher():
    argv = tritonserver_argv(Path("/r"), 2)
    ranks = " ".join(argv).split(" : ")
    assert ranks[0].startswith("mpirun --allow-run-as-root -n 1 /opt/tritonserver/bin/tritonserver")
    for rank, line in enumerate(ranks):
        assert "--model-repository=/r" in line
        assert f"--backend-config=python,shm-region-prefix-name=prefix{rank}_" in line
        assert "--disable-auto-complete-config" in line
        assert "--model-control-mode=explicit" in line  # the entry model's watchdog reloads the engine model
        assert ("--load-model=tensorrt_llm" in line) is (rank == 1)
        assert ("--load-model=*" in line and "--strict-readiness=true" in line) is (rank == 0)
        assert ("--http-restricted-api=model-repository:rank1-model-control=" in line) is (rank == 0)
        assert (PYTHON_BACKEND_THREAD_POOL_FLAG in line) is (rank == 0)  # the entry model's BLS calls
    assert tritonserver_argv(Path("/r"), 1).count(":") == 0


def test_serve_refuses_dry_runs_and_empty_folders(checkpoint_dir, tmp_path, no_execution):
    with pytest.raises(BuildRefusal, match=r"no build\.json"):
        load_manifest(tmp_path)
    build("--model", str(checkpoint_dir()), "--quant", "bf16", "--gpu-cc", "9.0", "--output", str(tmp_path / "o"),
          "--dry-run")
    with pytest.raises(BuildRefusal, match="dry run"):
        load_manifest(tmp_path / "o")
    manifest = tmp_path / "o" / "build.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "format": 1}))
    with pytest.raises(BuildRefusal, match="rebuild the folder"):
        load_manifest(tmp_path / "o")


def test_module_entry_point_and_tables(capsys):
    result = subprocess.run([sys.executable, "-m", "rank1_build", "build", "--help"], capture_output=True, text=True,
                            cwd=ROOT / "build", check=True)
    for flag in ("--dry-run", "--tp-size", "--engine", "--serve-root", "--trtllm-backend-root", "--no-kv-cache-reuse"):
        assert flag in result.stdout
    assert cli.main(["tables"]) == 0
    assert "| rank1-32b | Qwen2.5 |" in capsys.readouterr().out


# Installed before anything else runs: any import of numpy fails.
NUMPY_BLOCKER = """
import sys
class _NoNumpy:
    def find_spec(self, name, path=None, target=None):
        if name == "numpy" or name.startswith("numpy."):
            raise ImportError("numpy is blocked in this test")
sys.meta_path.insert(0, _NoNumpy())
from rank1_build.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("quant", ["fp8", "int4-awq"])
def test_the_dry_run_needs_no_numpy(checkpoint_dir, tmp_path, quant):
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "build"), str(ROOT / "python_backend")])}
    for args in (["--model", str(checkpoint_dir()), "--quant", quant, "--gpu-cc", "9.0"],
                 ["--model", "jhu-clsp/rank1-7b", "--quant", quant, "--gpu-cc", "9.0", "--tp-size", "2"]):
        result = subprocess.run([sys.executable, "-c", NUMPY_BLOCKER, "build", *args, "--output",
                                 str(tmp_path / "out"), "--dry-run"], capture_output=True, text=True, env=environment)
        assert result.returncode == 0, result.stderr
        assert "/tools/fill_template.py -i" in result.stdout
    blocked = subprocess.run([sys.executable, "-c", NUMPY_BLOCKER.replace("from rank1_build", "import numpy\nfrom "
                                                                          "rank1_build")],
                             capture_output=True, text=True, env=environment)
    assert "numpy is blocked" in blocked.stderr  # the blocker works


# --- --engine torch: the same layout with the PyTorch engine (CI's deployment rehearsal) ---------------------------

def test_a_torch_dry_run_writes_only_the_plan(checkpoint_dir, tmp_path, capsys, no_execution):
    out = tmp_path / "out"
    assert build("--engine", "torch", "--model", str(checkpoint_dir()), "--output", str(out), "--dry-run") == 0
    stdout = capsys.readouterr().out
    assert f"to {out / 'engine'}" in stdout and "model_dir = /models/engine" in stdout
    manifest = json.loads((out / "build.json").read_text())
    assert (manifest["engine"], manifest["serve_root"], manifest["quant"], manifest["dry_run"]) == (
        "torch", "/models", "none", True)
    assert manifest["torch"]["dtype"] == "float32" and manifest["torch"]["device"] == "cpu"
    assert not any((out / name).exists() for name in ("engine", "tokenizer", "repository"))


def test_a_torch_dry_run_of_a_hub_id_downloads_into_engine(tmp_path, capsys, no_execution):
    out = tmp_path / "out"
    assert build("--engine", "torch", "--model", "jhu-clsp/rank1-0.5b", "--quant", "bf16", "--device", "cuda",
                 "--output", str(out), "--dry-run") == 0
    assert printed_commands(capsys.readouterr().out) == [
        ["hf", "download", "jhu-clsp/rank1-0.5b", "--local-dir", str(out / "engine")]]
    torch = json.loads((out / "build.json").read_text())["torch"]
    assert (torch["dtype"], torch["device"]) == ("bfloat16", "cuda")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--quant", "fp8"], "runs the Hugging Face checkpoint unquantized"),
        (["--quant", "int4-awq"], "need --engine tensorrt-llm"),
        (["--tp-size", "2"], "--tp-size: an option of --engine tensorrt-llm"),
        (["--kv-cache", "int8"], "--kv-cache: an option of --engine tensorrt-llm"),
        (["--gpu-cc", "9.0"], "--gpu-cc: an option"),
        (["--no-kv-cache-reuse"], "--no-kv-cache-reuse: an option"),
        (["--quant", "bf16", "--dtype", "float32"], "pick one"),
        (["--num-threads", "0"], "must be 1 or more"),
        (["--serve-root", "rel"], "must be an absolute path"),
    ],
)
def test_torch_refusals(checkpoint_dir, tmp_path, capsys, no_execution, args, message):
    out = tmp_path / "out"
    assert build("--engine", "torch", "--model", str(checkpoint_dir()), *args, "--output", str(out), "--dry-run") == 2
    assert message in capsys.readouterr().err
    assert not (out / "build.json").exists()


def test_a_torch_build_writes_the_layout_the_chart_serves(random_model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert build("--engine", "torch", "--model", str(random_model_dir), "--output", str(out),
                 "--serve-root", str(out), "--max-reasoning-tokens", "64") == 0
    assert (out / "engine" / "model.safetensors").is_file() and (out / "engine" / "config.json").is_file()
    assert (out / "tokenizer" / "tokenizer.json").is_file()
    repository = out / "repository"
    engine = parse(repository / "tensorrt_llm" / "config.pbtxt")
    assert engine.backend == "python"
    assert engine.parameters["model_dir"].string_value == str(out / "engine")
    assert engine.parameters["dtype"].string_value == "float32"
    assert engine.parameters[MAX_CONTEXT_PARAMETER].string_value == "4096"  # clamped to the model's positions
    entry = parse(repository / "rank1" / "config.pbtxt")
    assert entry.parameters["tokenizer_dir"].string_value == str(out / "tokenizer")
    assert entry.parameters["default_max_reasoning_tokens"].string_value == "64"
    manifest = json.loads((out / "build.json").read_text())
    assert (manifest["engine"], manifest["serve_root"], manifest["dry_run"]) == ("torch", str(out), False)
    capsys.readouterr()
    argv = serve(out, tmp_path / "work", ports=Ports(9100, 9101, 9102), dry_run=True)
    assert f"--model-repository={repository}" in argv and "--grpc-port=9101" in argv
    assert "mpirun" not in argv


@pytest.mark.server
def test_tritonserver_serves_a_torch_build_folder_as_built(random_model_dir, tmp_path):
    import numpy as np
    import tritonclient.grpc as grpcclient

    from rank1_triton.launch.launcher import TritonServer, free_ports

    out = tmp_path / "out"
    assert build("--engine", "torch", "--model", str(random_model_dir), "--output", str(out),
                 "--serve-root", str(out), "--rank1-instances", "1") == 0
    server = TritonServer(out / "repository", tmp_path / "work", free_ports())
    server.start(timeout_s=300)
    try:
        client = grpcclient.InferenceServerClient(server.grpc_url)
        inputs = []
        for name, items in (("query", ["what causes the seasons"]), ("documents", ["axial tilt", "stocks"])):
            array = np.array([item.encode() for item in items], dtype=np.object_)
            tensor = grpcclient.InferInput(name, list(array.shape), "BYTES")
            tensor.set_data_from_numpy(array)
            inputs.append(tensor)
        result = client.infer("rank1", inputs, parameters={"max_reasoning_tokens": 4})
        scores = result.as_numpy("scores")
        assert scores.shape == (2,) and all(0.0 <= score <= 1.0 for score in scores)
    finally:
        server.stop()
