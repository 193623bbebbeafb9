"""Both engine-model configs keep the tensor contract the entry model uses; every config is valid Triton."""

from pathlib import Path

import pytest

from rank1_triton.contract import (
    DEFAULT_BLS_CONCURRENCY,
    DEFAULT_MAX_CONCURRENT_REQUESTS,
    ENGINE_INPUTS,
    ENGINE_OUTPUTS,
    ENTRY_INPUTS,
    ENTRY_MODEL_NAME,
    ENTRY_OUTPUTS,
    FUSED_ANSWER_INPUTS,
    FUSED_ANSWER_OUTPUTS,
    FUSED_ANSWER_STEP_PARAMETER,
    PYTHON_BACKEND_THREAD_POOL_FLAG,
    PYTHON_BACKEND_THREAD_POOL_SIZE,
    STOP_REQUEST_CONCURRENCY,
)
from rank1_triton.errors import TemplateError
from rank1_triton.launch.repository import assemble_repository, placeholders, templates_dir
from rank1_triton.launch.values import TorchServingOptions, dynamic_batching, torch_repository_values
from rank1_triton.triton_models.model_config import engine_capabilities, load_config

TEMPLATES = templates_dir()
ENGINE_CONFIGS = {"torch": TEMPLATES / "tensorrt_llm" / "config.pbtxt"}  # the GPU config: tests/build
DATA_TYPES = {1: "TYPE_BOOL", 8: "TYPE_INT32", 11: "TYPE_FP32", 13: "TYPE_STRING"}
# Placeholders that hold a config block, not a scalar: the static scheduler's, which has one.
PLAUSIBLE = {"dynamic_batching": dynamic_batching(TorchServingOptions(scheduler="static"))}


def filled(path: Path, tmp_path: Path) -> Path:
    """The template with every placeholder replaced by a plausible value, so protobuf can parse it."""
    text = path.read_text()
    for key in placeholders(text):
        text = text.replace("${" + key + "}", PLAUSIBLE.get(key, "TYPE_FP32" if "TYPE" in key else "1"))
    target = tmp_path / path.name
    target.write_text(text)
    return target


def tensors(config, kind: str) -> dict:
    return {t.name: (DATA_TYPES.get(t.data_type, str(t.data_type)), tuple(t.dims)) for t in getattr(config, kind)}


@pytest.mark.parametrize("engine", ENGINE_CONFIGS)
def test_engine_configs_keep_the_contract(engine, tmp_path):
    config = load_config(filled(ENGINE_CONFIGS[engine], tmp_path))
    assert config.name == "tensorrt_llm"
    inputs, outputs = tensors(config, "input"), tensors(config, "output")
    for spec in ENGINE_INPUTS:
        assert inputs.get(spec.name) == (spec.data_type, spec.dims), f"{engine}: input {spec.name}"
    for spec in ENGINE_OUTPUTS:
        assert outputs.get(spec.name) == (spec.data_type, spec.dims), f"{engine}: output {spec.name}"
    required = {t.name for t in config.input if not t.optional}
    assert required <= {s.name for s in ENGINE_INPUTS if not s.optional}, "the entry model sends every required input"


@pytest.mark.parametrize("fused", [True, False])
def test_the_torch_engine_advertises_the_answer_step_it_serves(fused, random_model_dir, tmp_path):
    values = torch_repository_values(random_model_dir, TorchServingOptions(fused_answer_step=fused))
    repository = assemble_repository(tmp_path / "repo", engine="torch", values=values)
    config = load_config(repository / "tensorrt_llm" / "config.pbtxt")
    assert {t.name for t in config.input} >= {s.name for s in FUSED_ANSWER_INPUTS}
    assert {t.name for t in config.output} >= {s.name for s in FUSED_ANSWER_OUTPUTS}
    assert config.parameters[FUSED_ANSWER_STEP_PARAMETER].string_value == str(fused).lower()
    assert engine_capabilities(repository / "tensorrt_llm" / "config.pbtxt").fused_answer_step is fused


def test_only_the_static_scheduler_gets_triton_s_dynamic_batcher(random_model_dir, tmp_path):
    """The in-flight engine model takes requests as they come (Triton's default scheduler); its queue bound is a
    parameter. The static one keeps the batcher, its delay and its queue policy."""
    for scheduler, delay in (("inflight", 0), ("static", 40000)):
        options = TorchServingOptions(scheduler=scheduler, max_queue_delay_microseconds=delay, max_queue_size=9)
        repository = assemble_repository(tmp_path / scheduler, engine="torch",
                                         values=torch_repository_values(random_model_dir, options))
        config = load_config(repository / "tensorrt_llm" / "config.pbtxt")
        assert config.parameters["max_queue_size"].string_value == "9"
        assert config.HasField("dynamic_batching") is (scheduler == "static")
        if scheduler == "static":
            assert config.dynamic_batching.max_queue_delay_microseconds == delay
            assert config.dynamic_batching.default_queue_policy.max_queue_size == 9
    with pytest.raises(ValueError, match="in-flight scheduler has none"):
        TorchServingOptions(max_queue_delay_microseconds=40000)


def test_entry_config_declares_the_contract(tmp_path):
    config = load_config(filled(TEMPLATES / ENTRY_MODEL_NAME / "config.pbtxt", tmp_path))
    assert config.name == ENTRY_MODEL_NAME
    assert tensors(config, "input") == {spec.name: (spec.data_type, spec.dims) for spec in ENTRY_INPUTS}
    assert tensors(config, "output") == {spec.name: (spec.data_type, spec.dims) for spec in ENTRY_OUTPUTS}
    assert {t.name for t in config.input if t.optional} == {s.name for s in ENTRY_INPUTS if s.optional}


def test_the_entry_instance_fits_the_python_backend_thread_pool(tmp_path):
    """Every BLS call, stop request and response of one entry instance needs a thread of the pool at once."""
    config = load_config(filled(TEMPLATES / ENTRY_MODEL_NAME / "config.pbtxt", tmp_path))
    bls = int(config.parameters["bls_concurrency"].string_value)
    requests = int(config.parameters["max_concurrent_requests"].string_value)
    assert (bls, requests) == (DEFAULT_BLS_CONCURRENCY, DEFAULT_MAX_CONCURRENT_REQUESTS)
    assert bls + STOP_REQUEST_CONCURRENCY + requests <= PYTHON_BACKEND_THREAD_POOL_SIZE
    assert PYTHON_BACKEND_THREAD_POOL_FLAG.endswith(f"thread-pool-size={PYTHON_BACKEND_THREAD_POOL_SIZE}")


def torch_template_keys() -> set[str]:
    return {key for path in TEMPLATES.glob("*/config.pbtxt") for key in placeholders(path.read_text())}


def test_assembly_fills_everything_and_reads_back_capabilities(tmp_path):
    values = {**dict.fromkeys(torch_template_keys(), "7"), **PLAUSIBLE}
    values.update(tokenizer_dir="/models/tok", model_dir="/models/m", dtype="float32", device="cpu",
                  engine_model_name="tensorrt_llm", fused_answer_step="true")
    repository = assemble_repository(tmp_path / "repo", engine="torch", values=values)
    assert not (repository / "tensorrt_llm" / "config.tensorrtllm.pbtxt").exists()
    for config in repository.glob("*/config.pbtxt"):
        assert "${" not in config.read_text()
        load_config(config)
    capabilities = engine_capabilities(repository / "tensorrt_llm" / "config.pbtxt")
    assert capabilities.fused_answer_step and capabilities.max_context_tokens == 7
    assert capabilities.max_batch_size == 7  # the entry model keeps at most this many documents at the engine


def test_assembly_refuses_missing_and_unknown_values(tmp_path):
    with pytest.raises(TemplateError, match="needs values for"):
        assemble_repository(tmp_path / "a", engine="torch", values={})
    values = dict.fromkeys(torch_template_keys(), "1")
    with pytest.raises(TemplateError, match="no template uses: bogus"):
        assemble_repository(tmp_path / "b", engine="torch", values={**values, "bogus": "1"})
