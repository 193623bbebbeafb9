"""The engine model's config: NVIDIA's template filled with fill_template.py's syntax, checked, then extended."""

from pathlib import Path

import pytest
from conftest import synthetic_template
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from rank1_build.configs import ServingOptions
from rank1_build.engine_config import (
    KEY_NAMES,
    KEYS,
    REQUIRED_KEYS,
    REQUIRED_PARAMETERS,
    FillContext,
    check_template,
    check_value,
    fill_argument,
    fill_values,
    filled_parameters,
    finish_config,
    parse_fill_argument,
    project_parameters,
    render_like_fill_template,
    template_placeholders,
)
from rank1_build.errors import BuildRefusal
from rank1_build.sizing import EngineShape
from rank1_triton.contract import ENGINE_INPUTS, ENGINE_OUTPUTS, FUSED_ANSWER_STEP_PARAMETER, MAX_CONTEXT_PARAMETER

# The ${...} placeholders of NVIDIA's triton_backend/all_models/inflight_batcher_llm/tensorrt_llm/config.pbtxt as
# read from NVIDIA/TensorRT-LLM (stored version 0c8de69a, the r26.05 era), in order of appearance.
NVIDIA_TEMPLATE_KEYS = (
    "triton_backend", "triton_max_batch_size", "decoupled_mode", "max_queue_delay_microseconds", "max_queue_size",
    "encoder_input_features_data_type", "logits_datatype", "prompt_embedding_table_data_type", "max_beam_width",
    "batching_strategy", "engine_dir", "encoder_engine_dir", "max_tokens_in_paged_kv_cache",
    "max_attention_window_size", "sink_token_length", "batch_scheduler_policy", "kv_cache_free_gpu_mem_fraction",
    "cross_kv_cache_fraction", "kv_cache_host_memory_bytes", "kv_cache_onboard_blocks", "enable_trt_overlap",
    "exclude_input_in_output", "cancellation_check_period_ms", "stats_check_period_ms", "iter_stats_max_iterations",
    "request_stats_max_iterations", "enable_kv_cache_reuse", "normalize_log_probs", "enable_chunked_context",
    "gpu_device_ids", "participant_ids", "num_nodes", "lora_cache_optimal_adapter_size",
    "lora_cache_max_adapter_size", "lora_cache_gpu_memory_fraction", "lora_cache_host_memory_bytes",
    "lora_prefetch_dir", "decoding_mode", "lookahead_window_size", "lookahead_ngram_size",
    "lookahead_verification_set_size", "medusa_choices", "eagle_choices", "gpu_weights_percent",
    "enable_context_fmha_fp32_acc", "multi_block_mode", "cuda_graph_mode", "cuda_graph_cache_size",
    "speculative_decoding_fast_logits", "tokenizer_dir", "guided_decoding_backend", "xgrammar_tokenizer_info_path",
)
GUIDED_DECODING = ("tokenizer_dir", "xgrammar_tokenizer_info_path", "guided_decoding_backend")
NVIDIA_FILES = ("model_instance_state.cc", "model_state.cc", "template", "fill_template.py", "docs/model_config.md")


def context(**options) -> FillContext:
    paged = options.pop("paged_context_fmha", True)
    return FillContext(engine_dir="/models/engine", shape=EngineShape(), options=ServingOptions(**options),
                       paged_context_fmha=paged)


def parse(text: str) -> model_config_pb2.ModelConfig:
    return text_format.Parse(text, model_config_pb2.ModelConfig())


def test_every_key_of_nvidias_template_has_a_value_rule_and_a_source():
    assert set(KEY_NAMES) == set(NVIDIA_TEMPLATE_KEYS)
    assert len(KEY_NAMES) == len(set(KEY_NAMES))
    values = fill_values(context())
    assert list(values) == list(KEY_NAMES)
    for key in KEYS:
        assert key.rule and any(name in key.source for name in NVIDIA_FILES), key.name
    non_string = {"triton_backend", "triton_max_batch_size", "decoupled_mode", "max_queue_delay_microseconds",
                  "max_queue_size", "logits_datatype", "encoder_input_features_data_type",
                  "prompt_embedding_table_data_type"}
    assert all(values[name] for name in non_string), "fields that are not strings must never be empty"
    assert values["logits_datatype"] == "TYPE_FP32"
    assert values["triton_backend"] == "tensorrtllm"
    assert values["decoupled_mode"] == "false"
    assert values["batching_strategy"] == "inflight_fused_batching"
    assert values["engine_dir"] == "/models/engine"
    assert values["triton_max_batch_size"] == "64"
    assert (values["enable_kv_cache_reuse"], values["enable_chunked_context"]) == ("true", "true")


def test_the_three_guided_decoding_keys_are_always_filled():
    assert set(GUIDED_DECODING) <= set(REQUIRED_KEYS)
    parsed = parse_fill_argument(fill_argument(fill_values(context())))
    for name in GUIDED_DECODING:
        assert parsed[name] == "", name  # present (GetParameter has no default), empty (guided decoding off)
    assert {REQUIRED_PARAMETERS[name] for name in GUIDED_DECODING} == set(GUIDED_DECODING)


def test_the_argument_is_exactly_fill_templates_syntax():
    values = fill_values(context())
    argument = fill_argument(values)
    items = argument.split(",")
    assert [item.split(":", 1)[0] for item in items] == list(KEY_NAMES)
    assert all(item.count(":") == 1 for item in items)
    assert "\\" not in argument and " " not in argument
    assert parse_fill_argument(argument) == values
    assert fill_argument(values, keys=["engine_dir", "triton_backend"]) == "triton_backend:tensorrtllm,engine_dir:" \
                                                                           "/models/engine"


@pytest.mark.parametrize("value", ["/a,b", "/mnt:models", "C:\\models", '/"q"', "/a\nb", "/${x}"])
def test_values_fill_template_cannot_carry_are_refused(value):
    with pytest.raises(BuildRefusal, match=r"fill_template\.py splits its argument"):
        check_value("engine_dir", value)
    with pytest.raises(BuildRefusal):
        fill_values(FillContext(engine_dir=value, shape=EngineShape(), options=ServingOptions()))


def test_escapes_parse_like_fill_template():
    assert parse_fill_argument(r"gpu_device_ids:0\,1,a:b") == {"gpu_device_ids": "0,1", "a": "b"}
    with pytest.raises(ValueError, match="exactly one ':'"):
        parse_fill_argument("engine_dir:/a:b")


def test_a_fill_of_a_template_shaped_like_nvidias_parses_as_a_triton_model_config():
    fill = context()
    values = fill_values(fill)
    template = synthetic_template()
    assert set(template_placeholders(template)) == set(KEY_NAMES)
    keys = check_template(template, "synthetic")
    rendered = render_like_fill_template(template, fill_argument(values, keys))
    finished = finish_config(rendered, values, fill, "synthetic")
    assert "${" not in finished
    config = parse(finished)
    assert (config.name, config.backend, config.max_batch_size) == ("tensorrt_llm", "tensorrtllm", 64)
    assert not config.model_transaction_policy.decoupled
    assert list(config.dynamic_batching.preferred_batch_size) == [64]
    assert config.dynamic_batching.default_queue_policy.max_queue_size == 4096
    outputs = {t.name: model_config_pb2.DataType.Name(t.data_type) for t in config.output}
    assert outputs["generation_logits"] == "TYPE_FP32"
    inputs = {t.name: model_config_pb2.DataType.Name(t.data_type) for t in config.input}
    assert inputs["prompt_embedding_table"] == "TYPE_BF16"
    assert {spec.name for spec in ENGINE_INPUTS} <= set(inputs)
    assert {spec.name for spec in ENGINE_OUTPUTS} <= set(outputs)
    params = {key: value.string_value for key, value in config.parameters.items()}
    assert params["gpt_model_path"] == "/models/engine"
    assert params["gpt_model_type"] == "inflight_fused_batching"
    for name in GUIDED_DECODING:
        assert name in params and params[name] == ""
    assert params[FUSED_ANSWER_STEP_PARAMETER] == "false"
    assert params[MAX_CONTEXT_PARAMETER] == "16384"
    assert filled_parameters(finished) == params


def test_a_changed_template_is_refused_with_what_changed():
    with pytest.raises(BuildRefusal, match=r"no \$\{xgrammar_tokenizer_info_path\}.*update KEYS"):
        check_template(synthetic_template(drop=("xgrammar_tokenizer_info_path",)), "t")
    with pytest.raises(BuildRefusal, match=r"has \$\{new_knob\}, which rank1_build does not know"):
        check_template(synthetic_template(extra=("new_knob",)), "t")
    # An optional key NVIDIA dropped is simply not passed (fill_template.py asserts every key is in the file).
    keys = check_template(synthetic_template(drop=("medusa_choices",)), "t")
    assert "medusa_choices" not in keys and "engine_dir" in keys


def test_the_filled_config_is_checked_before_the_project_parameters_are_appended():
    fill = context()
    values = fill_values(fill)
    template = synthetic_template()
    with pytest.raises(BuildRefusal, match=r"left .*\$\{engine_dir\}.* unfilled"):
        finish_config(render_like_fill_template(template, "triton_backend:tensorrtllm"), values, fill, "t")
    wrong = render_like_fill_template(template, fill_argument({**values, "enable_kv_cache_reuse": "false"}))
    with pytest.raises(BuildRefusal, match="enable_kv_cache_reuse"):
        finish_config(wrong, values, fill, "t")
    clash = render_like_fill_template(template, fill_argument(values)) + (
        f'parameters: {{ key: "{MAX_CONTEXT_PARAMETER}" value: {{ string_value: "1" }} }}\n')
    with pytest.raises(BuildRefusal, match="already set by NVIDIA's template"):
        finish_config(clash, values, fill, "t")


def test_kv_reuse_and_chunked_context_follow_paged_context_fmha_and_the_opt_out():
    lost = fill_values(context(paged_context_fmha=False, enable_kv_cache_reuse=False))
    assert (lost["enable_kv_cache_reuse"], lost["enable_chunked_context"]) == ("false", "false")
    opted_out = fill_values(context(enable_kv_cache_reuse=False))
    assert (opted_out["enable_kv_cache_reuse"], opted_out["enable_chunked_context"]) == ("false", "true")
    assert project_parameters(context())[MAX_CONTEXT_PARAMETER] == "16384"


def test_serving_options_reach_the_values():
    values = fill_values(context(max_queue_size=256, max_queue_delay_microseconds=500,
                                 batch_scheduler_policy="guaranteed_no_evict", kv_cache_free_gpu_mem_fraction=0.85))
    assert (values["max_queue_size"], values["max_queue_delay_microseconds"]) == ("256", "500")
    assert (values["batch_scheduler_policy"], values["kv_cache_free_gpu_mem_fraction"]) == ("guaranteed_no_evict",
                                                                                             "0.85")


def test_the_list_of_keys_lives_in_one_module():
    build = Path(__file__).resolve().parents[2] / "build" / "rank1_build"
    for path in build.glob("*.py"):
        if path.name != "engine_config.py":
            assert "guided_decoding_backend" not in path.read_text(encoding="utf-8"), path.name
