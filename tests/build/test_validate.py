"""Refusals: GPU generation, architecture and format, KV pairing, paged context FMHA, Blackwell, TP, limits."""

import re

import pytest

from rank1_build.catalog import catalog_spec
from rank1_build.errors import BuildRefusal
from rank1_build.formats import FORMATS, KVCache, Quant, paged_context_fmha_lost, runs_on
from rank1_build.model import spec_from_config
from rank1_build.sizing import EngineShape
from rank1_build.validate import (
    TP_REPORT_WARNING,
    check_blackwell,
    check_format,
    check_gpu,
    check_kv_reuse,
    check_tensor_parallel,
    validate,
)

SEVEN_B = catalog_spec("jhu-clsp/rank1-7b")
DEFAULT = EngineShape()


@pytest.mark.parametrize("cc", [8.0, 8.6])
@pytest.mark.parametrize(("quant", "kv"), [(Quant.FP8, KVCache.FP8), (Quant.INT4_AWQ, KVCache.FP8)])
def test_fp8_is_refused_below_ada(cc, quant, kv):
    with pytest.raises(BuildRefusal, match=r"compute capability 8\.9 or newer"):
        validate(SEVEN_B, quant, kv, 1, cc, DEFAULT)


@pytest.mark.parametrize("cc", [8.9, 9.0, 10.0, 12.0])
def test_fp8_is_accepted_from_ada_on(cc):
    assert validate(SEVEN_B, Quant.FP8, KVCache.FP8, 1, cc, DEFAULT) == []


@pytest.mark.parametrize("quant", [Quant.BF16, Quant.INT8_SQ, Quant.INT8_WO, Quant.INT4_AWQ])
def test_integer_and_bf16_formats_run_on_ampere(quant):
    validate(SEVEN_B, quant, None, 1, 8.0, DEFAULT)
    # The INT8 KV cache builds only with the KV-reuse opt-out and a prefill that fits --max_num_tokens.
    validate(SEVEN_B, quant, KVCache.INT8, 1, 8.6, EngineShape(max_num_tokens=16384), kv_cache_reuse=False)


@pytest.mark.parametrize(("quant", "kv"), [(Quant.BF16, KVCache.INT8), (Quant.INT8_SQ, KVCache.INT8),
                                           (Quant.INT8_WO, KVCache.INT8), (Quant.INT4_AWQ, KVCache.INT8),
                                           (Quant.INT4_AWQ, KVCache.FP8)])
def test_kv_caches_that_cost_paged_context_fmha_are_refused_unless_opted_out(quant, kv):
    with pytest.raises(BuildRefusal, match=r"paged context FMHA off.*fixExecutorConfig.*--no-kv-cache-reuse"):
        check_kv_reuse(quant, kv, DEFAULT, kv_cache_reuse=True)
    with pytest.raises(BuildRefusal, match=r"without chunked context.*--max-num-tokens 16384"):
        check_kv_reuse(quant, kv, DEFAULT, kv_cache_reuse=False)
    check_kv_reuse(quant, kv, EngineShape(max_num_tokens=16384), kv_cache_reuse=False)
    assert paged_context_fmha_lost(quant, kv)


@pytest.mark.parametrize(("quant", "kv"), [(Quant.FP8, KVCache.FP8), (Quant.BF16, None), (Quant.INT8_SQ, None),
                                           (Quant.INT8_WO, None), (Quant.INT4_AWQ, None)])
def test_formats_that_keep_paged_context_fmha_pass(quant, kv):
    assert paged_context_fmha_lost(quant, kv) is None
    check_kv_reuse(quant, kv, DEFAULT, kv_cache_reuse=True)


@pytest.mark.parametrize("cc", [10.0, 10.3, 11.0])
@pytest.mark.parametrize(("quant", "kv", "message"), [
    (Quant.INT8_WO, None, "INT8/INT4 quantization is not supported on SM>=100."),
    (Quant.INT4_AWQ, None, "INT8/INT4 quantization is not supported on SM>=100."),
    (Quant.BF16, KVCache.INT8, "INT8/INT4 quantization is not supported on SM>=100."),
    (Quant.INT8_SQ, None, "SmoothQuant is not supported on SM>=100."),
])
def test_blackwell_refuses_what_trtllm_build_refuses(cc, quant, kv, message):
    with pytest.raises(BuildRefusal, match=re.escape(message)):
        check_blackwell(quant, kv, cc)
    assert not runs_on(quant, kv, cc)


@pytest.mark.parametrize("cc", [9.0, 12.0])
def test_the_sm100_check_covers_sm_10_and_11_only(cc):
    check_blackwell(Quant.INT8_SQ, None, cc)
    check_blackwell(Quant.INT4_AWQ, None, cc)


def test_pre_ampere_gpus_are_refused():
    with pytest.raises(BuildRefusal, match=r"from Ampere \(8\.0\)"):
        check_gpu(Quant.BF16, None, 7.5)


@pytest.mark.parametrize("architecture", ["Qwen3ForCausalLM", "Gemma2ForCausalLM"])
@pytest.mark.parametrize("quant", list(Quant))
def test_architectures_without_a_recipe_are_refused_for_every_format(architecture, quant):
    spec = spec_from_config("x", {"architectures": [architecture], "hidden_size": 4096, "num_hidden_layers": 2,
                                  "num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 8192,
                                  "vocab_size": 1000, "max_position_embeddings": 40960})
    with pytest.raises(BuildRefusal, match=f"{architecture} has no TensorRT engine recipe"):
        check_format(spec, quant, FORMATS[quant].default_kv_cache)


@pytest.mark.parametrize(
    ("quant", "kv"),
    [(Quant.BF16, KVCache.FP8), (Quant.FP8, KVCache.INT8), (Quant.FP8, None), (Quant.INT8_WO, KVCache.FP8),
     (Quant.INT8_SQ, KVCache.FP8)],
)
def test_undocumented_kv_cache_pairings_are_refused(quant, kv):
    with pytest.raises(BuildRefusal, match="not a documented recipe"):
        check_format(SEVEN_B, quant, kv)


def test_already_quantized_checkpoints_are_refused():
    config = {"architectures": ["Qwen2ForCausalLM"], "hidden_size": 3584, "num_hidden_layers": 28,
              "num_attention_heads": 28, "num_key_value_heads": 4, "intermediate_size": 18944, "vocab_size": 152064,
              "max_position_embeddings": 32768, "quantization_config": {"quant_method": "awq", "bits": 4}}
    with pytest.raises(BuildRefusal, match="already quantized"):
        check_format(spec_from_config("jhu-clsp/rank1-7b-awq", config), Quant.INT4_AWQ, None)


@pytest.mark.parametrize(("tp", "what"), [(3, "28 attention heads"), (8, "28 attention heads")])
def test_tp_must_divide_the_attention_heads(tp, what):
    with pytest.raises(BuildRefusal, match=f"--tp-size {tp} does not divide the {what}"):
        check_tensor_parallel(SEVEN_B, Quant.BF16, tp)


def test_tp_must_divide_the_kv_heads():
    spec = catalog_spec("jhu-clsp/rank1-3b")  # 16 heads, 2 KV heads
    check_tensor_parallel(spec, Quant.BF16, 2)
    with pytest.raises(BuildRefusal, match="does not divide the 2 KV heads"):
        check_tensor_parallel(spec, Quant.BF16, 4)


@pytest.mark.parametrize("tp", [2, 4])
def test_tp_that_divides_both_is_accepted_with_the_corruption_warning(tp):
    assert validate(SEVEN_B, Quant.FP8, KVCache.FP8, tp, 9.0, DEFAULT) == [TP_REPORT_WARNING]
    assert "rank1-32b" in TP_REPORT_WARNING


def test_tp_size_below_one_is_refused():
    with pytest.raises(BuildRefusal, match="must be 1 or more"):
        check_tensor_parallel(SEVEN_B, Quant.BF16, 0)


def test_awq_needs_whole_groups_per_rank():
    # Qwen2.5-0.5B: 14 heads x 64 = 896 attention width; 448 per rank at TP 2 is not a multiple of 128.
    small = catalog_spec("jhu-clsp/rank1-0.5b")
    check_tensor_parallel(small, Quant.INT4_AWQ, 1)
    check_tensor_parallel(small, Quant.BF16, 2)
    with pytest.raises(BuildRefusal, match="448, not a multiple of the AWQ group size 128"):
        check_tensor_parallel(small, Quant.INT4_AWQ, 2)
    check_tensor_parallel(catalog_spec("jhu-clsp/rank1-32b"), Quant.INT4_AWQ, 8)


def test_engine_context_must_fit_the_model_positions():
    llama3 = spec_from_config("meta-llama/Meta-Llama-3-8B", {
        "architectures": ["LlamaForCausalLM"], "hidden_size": 4096, "num_hidden_layers": 32,
        "num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 128256,
        "max_position_embeddings": 8192})
    with pytest.raises(BuildRefusal, match="16384 exceeds max_position_embeddings 8192"):
        validate(llama3, Quant.BF16, None, 1, 9.0, DEFAULT)
    assert validate(llama3, Quant.BF16, None, 1, 9.0, EngineShape(8192, 4096)) == []


def test_reasoning_budget_and_prompt_room():
    assert EngineShape().max_prompt_tokens == 16384 - 8192 - 8
    with pytest.raises(BuildRefusal, match="leaves no prompt room"):
        validate(SEVEN_B, Quant.BF16, None, 1, 9.0, EngineShape(8200, 8192))
    [warning] = validate(SEVEN_B, Quant.BF16, None, 1, 9.0, EngineShape(12296, 8192))
    assert "half the context (6148 tokens)" in warning


@pytest.mark.parametrize(
    "shape",
    [EngineShape(max_batch_size=64, max_num_tokens=32), EngineShape(max_num_tokens=8200),
     EngineShape(max_batch_size=0), EngineShape(max_reasoning_tokens=0)],
)
def test_unusable_engine_limits_are_refused(shape):
    with pytest.raises(BuildRefusal):
        validate(SEVEN_B, Quant.BF16, None, 1, 9.0, shape)


def test_formats_missing_from_an_architectures_matrix_are_refused(monkeypatch):
    # The three Rank1 architectures support every format in 1.2.1; a row like the Qwen README's Qwen3 entries
    # (FP16/BF16 and FP8 only) must refuse the others.
    from rank1_build import formats
    from rank1_build import validate as validate_module

    restricted = formats.ArchitectureSupport("models/core/qwen", "qwen", frozenset({Quant.BF16, Quant.FP8}),
                                             "examples/models/core/qwen/README.md")
    monkeypatch.setitem(validate_module.SUPPORTED_ARCHITECTURES, "Qwen2ForCausalLM", restricted)
    check_format(SEVEN_B, Quant.FP8, KVCache.FP8)
    with pytest.raises(BuildRefusal, match=r"does not support int8-sq in TensorRT-LLM 1\.2\.1"):
        check_format(SEVEN_B, Quant.INT8_SQ, None)
