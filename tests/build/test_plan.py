"""Command planning: every format x (Qwen2.5, Llama, Mistral) against the flags of TensorRT-LLM 1.2.1's recipes."""

from pathlib import Path

import pytest
from conftest import ARCH_MODELS

from rank1_build.catalog import catalog_spec
from rank1_build.errors import BuildRefusal
from rank1_build.formats import FORMATS, KVCache, Quant
from rank1_build.plan import (
    BuildRequest,
    Calibration,
    OutputLayout,
    Quantizer,
    Step,
    build_steps,
    checkpoint_step,
    download_step,
    engine_config_steps,
    engine_step,
    launch_step,
    uses_examples,
)
from rank1_build.sizing import EngineShape

EXAMPLE_DIRS = {"qwen2": "models/core/qwen", "llama": "models/core/llama", "mistral": "models/core/llama"}


def request_for(arch: str, quant: Quant, kv=..., tp: int = 1, **kwargs) -> BuildRequest:
    return BuildRequest(
        spec=catalog_spec(ARCH_MODELS[arch]), model_dir=Path("/models/hf"), quant=quant,
        kv_cache=FORMATS[quant].default_kv_cache if kv is ... else kv, tp_size=tp, shape=EngineShape(),
        layout=OutputLayout(Path("/out")), **kwargs,
    )


def value(argv, flag):
    assert argv.count(flag) == 1, f"{flag} should appear once in {argv}"
    return argv[argv.index(flag) + 1]


@pytest.mark.parametrize("arch", list(ARCH_MODELS))
@pytest.mark.parametrize("quant", list(Quant))
def test_checkpoint_step_follows_the_documented_recipe(arch, quant):
    argv = checkpoint_step(request_for(arch, quant, tp=2)).argv
    assert argv[0] == "python3"
    assert value(argv, "--model_dir") == "/models/hf"
    assert value(argv, "--output_dir") == "/out/checkpoint"
    assert value(argv, "--dtype") == "bfloat16"
    assert value(argv, "--tp_size") == "2"
    if quant in (Quant.FP8, Quant.INT4_AWQ):
        assert argv[1] == "/app/examples/quantization/quantize.py"
        assert value(argv, "--qformat") == {Quant.FP8: "fp8", Quant.INT4_AWQ: "int4_awq"}[quant]
        assert value(argv, "--calib_size") == {Quant.FP8: "512", Quant.INT4_AWQ: "32"}[quant]
    else:
        assert argv[1] == f"/app/examples/{EXAMPLE_DIRS[arch]}/convert_checkpoint.py"
        assert "--qformat" not in argv
    assert ("--kv_cache_dtype" in argv and value(argv, "--kv_cache_dtype") == "fp8") is (quant is Quant.FP8)
    assert (("--use_weight_only" in argv) and value(argv, "--weight_only_precision") == "int8") is (
        quant is Quant.INT8_WO)
    assert ("--smoothquant" in argv) is (quant is Quant.INT8_SQ)
    if quant is Quant.INT8_SQ:
        assert value(argv, "--smoothquant") == "0.5"
        assert {"--per_token", "--per_channel"} <= set(argv)
    assert (("--awq_block_size" in argv) and value(argv, "--awq_block_size") == "128") is (quant is Quant.INT4_AWQ)
    assert "--int8_kv_cache" not in argv


@pytest.mark.parametrize("arch", list(ARCH_MODELS))
@pytest.mark.parametrize("quant", list(Quant))
def test_engine_step_has_the_flags_rank1_needs(arch, quant):
    step = engine_step(request_for(arch, quant))
    argv = step.argv
    assert step.name == "trtllm-build" and argv[0] == "trtllm-build"
    assert value(argv, "--checkpoint_dir") == "/out/checkpoint"
    assert value(argv, "--output_dir") == "/out/engine"
    # The 16384-token context of one judgment; the answer step's input is all of it but the answer token.
    assert value(argv, "--max_seq_len") == "16384"
    assert value(argv, "--max_input_len") == "16383"
    assert value(argv, "--max_num_tokens") == "8192"
    assert value(argv, "--max_batch_size") == "64"
    assert value(argv, "--kv_cache_type") == "paged"
    assert value(argv, "--tokens_per_block") == "32"
    assert value(argv, "--use_paged_context_fmha") == "enable"
    assert value(argv, "--multiple_profiles") == "enable"
    assert "--gather_generation_logits" in argv
    assert "--gather_context_logits" not in argv and "--gather_all_token_logits" not in argv
    assert value(argv, "--logits_dtype") == "float32"
    assert value(argv, "--gemm_plugin") == ("disable" if quant is Quant.FP8 else "auto")
    # tensorrt_llm/builder.py build() turns FP8 context FMHA on for an FP8 KV cache with paged context FMHA on
    # SM 89+, whatever the flag says: the plan does not pass the no-op `--use_fp8_context_fmha disable`.
    assert "--use_fp8_context_fmha" not in argv


@pytest.mark.parametrize(
    ("quant", "kv", "expected"),
    [(Quant.BF16, KVCache.INT8, ["--int8_kv_cache"]), (Quant.INT8_WO, KVCache.INT8, ["--int8_kv_cache"]),
     (Quant.INT8_SQ, KVCache.INT8, ["--int8_kv_cache"]), (Quant.INT4_AWQ, KVCache.INT8, ["--kv_cache_dtype", "int8"]),
     (Quant.INT4_AWQ, KVCache.FP8, ["--kv_cache_dtype", "fp8"])],
)
def test_quantized_kv_caches(quant, kv, expected):
    argv = checkpoint_step(request_for("qwen2", quant, kv)).argv
    index = argv.index(expected[0])
    assert list(argv[index:index + len(expected)]) == expected
    assert "--use_fp8_context_fmha" not in engine_step(request_for("qwen2", quant, kv)).argv


@pytest.mark.parametrize(
    ("quant", "kv", "calibrates"),
    [(Quant.BF16, None, False), (Quant.INT8_WO, None, False), (Quant.BF16, KVCache.INT8, True),
     (Quant.INT8_SQ, None, True), (Quant.FP8, KVCache.FP8, True), (Quant.INT4_AWQ, None, True)],
)
def test_calibration_dataset_goes_only_to_calibrating_steps(quant, kv, calibrates):
    argv = checkpoint_step(request_for("llama", quant, kv, calibration=Calibration(dataset="/data/rank1-calib"))).argv
    assert ("--calib_dataset" in argv) is calibrates
    if calibrates:
        assert value(argv, "--calib_dataset") == "/data/rank1-calib"


def test_modelopt_quantizer_runs_this_package_in_the_quantization_environment():
    request = request_for("mistral", Quant.INT8_SQ, KVCache.INT8, tp=2, quantizer=Quantizer.MODELOPT,
                          calibration=Calibration(texts=Path("/data/calib.jsonl")),
                          quantize_python="/venv/bin/python")
    step = checkpoint_step(request)
    assert step.argv[:4] == ("/venv/bin/python", "-m", "rank1_build", "quantize")
    assert value(step.argv, "--qformat") == "int8-sq"
    assert value(step.argv, "--kv-cache") == "int8"
    assert value(step.argv, "--tp-size") == "2"
    assert value(step.argv, "--calib-texts") == "/data/calib.jsonl"
    assert value(step.argv, "--calib-size") == "512"
    assert value(step.argv, "--device") == "cuda"
    assert step.env["PYTHONPATH"].endswith("build")
    assert step.shell().startswith("PYTHONPATH=")


def test_modelopt_quantizer_refusals():
    with pytest.raises(BuildRefusal, match="needs no calibration"):
        checkpoint_step(request_for("qwen2", Quant.INT8_WO, quantizer=Quantizer.MODELOPT))
    with pytest.raises(BuildRefusal, match="needs --calib-texts"):
        checkpoint_step(request_for("qwen2", Quant.FP8, quantizer=Quantizer.MODELOPT))
    with pytest.raises(BuildRefusal, match="--calib-dataset is for NVIDIA's scripts"):
        checkpoint_step(request_for("qwen2", Quant.FP8, quantizer=Quantizer.MODELOPT,
                                    calibration=Calibration(dataset="cnn", texts=Path("/t.jsonl"))))
    with pytest.raises(BuildRefusal, match="--calib-texts is for --quantizer modelopt"):
        checkpoint_step(request_for("qwen2", Quant.FP8, calibration=Calibration(texts=Path("/t.jsonl"))))


def test_engine_limits_follow_the_requested_shape():
    request = request_for("qwen2", Quant.BF16)
    request = BuildRequest(**{**request.__dict__, "shape": EngineShape(6144, 3072, 16, 4096)})
    argv = engine_step(request).argv
    assert (value(argv, "--max_seq_len"), value(argv, "--max_input_len")) == ("6144", "6143")
    assert (value(argv, "--max_batch_size"), value(argv, "--max_num_tokens")) == ("16", "4096")


def test_engine_config_steps_copy_nvidias_template_and_fill_it_in_place():
    request = request_for("qwen2", Quant.BF16, backend_root="/opt/app")
    copy, fill = engine_config_steps(request, "triton_backend:tensorrtllm")
    config = "/out/repository/tensorrt_llm/config.pbtxt"
    assert copy.argv == ("cp", "/opt/app/all_models/inflight_batcher_llm/tensorrt_llm/config.pbtxt", config)
    assert fill.argv == ("python3", "/opt/app/tools/fill_template.py", "-i", config, "triton_backend:tensorrtllm")
    assert uses_examples(request) == "/app/examples/models/core/qwen/convert_checkpoint.py"
    assert uses_examples(request_for("qwen2", Quant.FP8)) == "/app/examples/quantization/quantize.py"
    modelopt = request_for("qwen2", Quant.FP8, quantizer=Quantizer.MODELOPT,
                           calibration=Calibration(texts=Path("/c.jsonl")))
    assert uses_examples(modelopt) is None


def test_build_steps_and_launch():
    steps = build_steps(request_for("qwen2", Quant.FP8))
    assert [step.name for step in steps] == ["quantize", "trtllm-build"]
    launch = launch_step(4, Path("/out/repository")).argv
    assert launch[:2] == ("python3", "/app/scripts/launch_triton_server.py")
    assert value(launch, "--world_size") == "4"
    assert value(launch, "--model_repo") == "/out/repository"
    assert value(launch, "--tensorrt_llm_model_name") == "tensorrt_llm"
    assert download_step("jhu-clsp/rank1-7b", OutputLayout(Path("/out"))).argv == (
        "hf", "download", "jhu-clsp/rank1-7b", "--local-dir", "/out/hf")


def test_shell_lines_quote_arguments():
    step = Step("x", ("python3", "/path with space/s.py", "--flag"), {"A": "b c"})
    assert step.shell() == "A='b c' python3 '/path with space/s.py' --flag"
