"""The GPU engine model's config: fills, parses as a Triton ModelConfig, keeps the entry model's tensor contract."""

import re
from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from rank1_build.configs import (
    ENGINE_TEMPLATE,
    ServingOptions,
    model_repository_dir,
    render_engine_config,
    repository_values,
)
from rank1_build.sizing import EngineShape
from rank1_triton.contract import ENGINE_INPUTS, ENGINE_OUTPUTS
from rank1_triton.launch.repository import placeholders

# Placeholders of model_repository/rank1/config.pbtxt (the entry model's template).
ENTRY_PLACEHOLDERS = {"tokenizer_dir", "engine_model_name", "max_context_tokens", "max_documents",
                      "default_max_reasoning_tokens", "rank1_instance_count"}
RAGGED = {"input_ids", "stop_words_list"}


def values(**options):
    return repository_values(engine_dir=Path("/engines/engine"), tokenizer_dir=Path("/engines/tokenizer"),
                             shape=EngineShape(), options=ServingOptions(**options))


def parse(text: str) -> model_config_pb2.ModelConfig:
    return text_format.Parse(text, model_config_pb2.ModelConfig())


def parameters(config) -> dict[str, str]:
    return {key: param.string_value for key, param in config.parameters.items()}


def type_name(data_type: int) -> str:
    return model_config_pb2.DataType.Name(data_type)


def test_filled_config_is_a_valid_triton_model_config_for_the_cpp_backend():
    config = parse(render_engine_config(values()))
    assert config.name == "tensorrt_llm"
    assert config.backend == "tensorrtllm"
    assert config.max_batch_size == 64
    assert not config.model_transaction_policy.decoupled
    assert [group.kind for group in config.instance_group] == [model_config_pb2.ModelInstanceGroup.KIND_CPU]
    params = parameters(config)
    assert params["gpt_model_type"] == "inflight_fused_batching"
    assert params["gpt_model_path"] == "/engines/engine"
    assert params["enable_kv_cache_reuse"] == "true"
    assert params["enable_chunked_context"] == "true"
    assert params["max_beam_width"] == "1"
    assert params["rank1_fused_answer_step"] == "false"
    assert params["rank1_max_context_tokens"] == "16384"


def test_queue_and_scheduler_settings_are_filled():
    config = parse(render_engine_config(values(max_queue_size=256, max_queue_delay_microseconds=500,
                                               queue_timeout_microseconds=7000,
                                               batch_scheduler_policy="guaranteed_no_evict",
                                               kv_cache_free_gpu_mem_fraction=0.85)))
    policy = config.dynamic_batching.default_queue_policy
    assert (policy.max_queue_size, policy.default_timeout_microseconds) == (256, 7000)
    assert policy.timeout_action == model_config_pb2.ModelQueuePolicy.REJECT
    assert config.dynamic_batching.max_queue_delay_microseconds == 500
    params = parameters(config)
    assert params["batch_scheduler_policy"] == "guaranteed_no_evict"
    assert params["kv_cache_free_gpu_mem_fraction"] == "0.85"


def test_contract_tensors_are_exactly_the_entry_models():
    config = parse(render_engine_config(values()))
    inputs = {tensor.name: tensor for tensor in config.input}
    assert list(inputs) == [spec.name for spec in ENGINE_INPUTS]
    for spec in ENGINE_INPUTS:
        tensor = inputs[spec.name]
        assert type_name(tensor.data_type) == spec.data_type
        assert tuple(tensor.dims) == spec.dims
        assert tensor.optional == spec.optional
        assert tensor.allow_ragged_batch == (spec.name in RAGGED)
        assert tensor.HasField("reshape") == (spec.dims == (1,))
        assert list(tensor.reshape.shape) == []
    outputs = {tensor.name: tensor for tensor in config.output}
    assert list(outputs) == [spec.name for spec in ENGINE_OUTPUTS]
    for spec in ENGINE_OUTPUTS:
        assert type_name(outputs[spec.name].data_type) == spec.data_type
        assert tuple(outputs[spec.name].dims) == spec.dims
    assert type_name(outputs["generation_logits"].data_type) == "TYPE_FP32"


def test_values_cover_both_templates_and_nothing_else():
    engine_text = (model_repository_dir() / ENGINE_TEMPLATE).read_text(encoding="utf-8")
    assert set(values()) == placeholders(engine_text) | ENTRY_PLACEHOLDERS
    entry_template = model_repository_dir() / "rank1" / "config.pbtxt"
    if entry_template.is_file():
        assert placeholders(entry_template.read_text(encoding="utf-8")) <= set(values())


def test_gpu_and_cpu_engine_configs_declare_the_same_contract_tensors():
    cpu_template = model_repository_dir() / "tensorrt_llm" / "config.pbtxt"
    if not cpu_template.is_file():
        pytest.skip("model_repository/tensorrt_llm/config.pbtxt (the PyTorch engine's config) is not written yet")
    # Placeholders of the CPU template are filled with 1 (valid in numeric and string fields alike).
    cpu = parse(re.sub(r"\$\{\w+\}", "1", cpu_template.read_text(encoding="utf-8")))
    gpu = parse(render_engine_config(values()))
    names = {spec.name for spec in (*ENGINE_INPUTS, *ENGINE_OUTPUTS)}

    def contract_part(config):
        tensors = [*config.input, *config.output]
        return {t.name: text_format.MessageToString(t, as_one_line=True) for t in tensors if t.name in names}

    assert contract_part(cpu) == contract_part(gpu)


def test_entry_values_describe_the_engine():
    filled = values(max_documents=50, rank1_instance_count=2)
    assert ServingOptions().max_queue_size > 0  # bounded by default: overload is rejected, not buffered
    assert filled["engine_model_name"] == "tensorrt_llm"
    assert filled["max_context_tokens"] == "16384"
    assert filled["default_max_reasoning_tokens"] == "8192"
    assert (filled["max_documents"], filled["rank1_instance_count"]) == ("50", "2")
    assert filled["tokenizer_dir"] == "/engines/tokenizer"


def test_missing_values_are_named():
    partial = values()
    del partial["engine_dir"], partial["max_queue_size"]
    with pytest.raises(ValueError, match="no value for engine_dir, max_queue_size"):
        render_engine_config(partial)


@pytest.mark.parametrize(
    "options",
    [{"batch_scheduler_policy": "fifo"}, {"kv_cache_free_gpu_mem_fraction": 0.0}, {"max_documents": 0},
     {"max_queue_size": -1}, {"queue_timeout_microseconds": -5}],
)
def test_serving_options_are_checked(options):
    with pytest.raises(ValueError):
        ServingOptions(**options)
