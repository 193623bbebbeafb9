"""Model inspection: config.json fields, parameter counts against the model cards, unreadable configs."""

import json

import pytest
from conftest import ARCH_MODELS, write_checkpoint

from rank1_build.catalog import RANK1_CHECKPOINTS, catalog_spec
from rank1_build.errors import BuildRefusal
from rank1_build.model import inspect_model


@pytest.mark.parametrize(
    ("arch", "architecture", "heads", "kv_heads", "head_dim", "layers", "vocab"),
    [
        ("qwen2", "Qwen2ForCausalLM", 28, 4, 128, 28, 152064),
        ("llama", "LlamaForCausalLM", 32, 8, 128, 32, 128256),
        # Mistral-Small-2501 sets head_dim 128 although hidden_size / heads = 160.
        ("mistral", "MistralForCausalLM", 32, 8, 128, 40, 131072),
    ],
)
def test_reads_the_shapes_of_each_family(checkpoint_dir, arch, architecture, heads, kv_heads, head_dim, layers, vocab):
    spec = inspect_model(checkpoint_dir(arch))
    assert (spec.architecture, spec.num_heads, spec.num_kv_heads, spec.head_dim) == (
        architecture, heads, kv_heads, head_dim)
    assert (spec.num_layers, spec.vocab_size) == (layers, vocab)
    assert spec.attention_bias is (arch == "qwen2")
    assert not spec.quantized


def test_head_dim_defaults_to_hidden_over_heads(tmp_path):
    config = {"architectures": ["Qwen2ForCausalLM"], "hidden_size": 128, "intermediate_size": 256,
              "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 151936,
              "max_position_embeddings": 4096}
    spec = inspect_model(write_checkpoint(tmp_path / "tiny", config))
    assert spec.head_dim == 32
    config.pop("num_key_value_heads")
    assert inspect_model(write_checkpoint(tmp_path / "mha", config)).num_kv_heads == 4


# Model-card sizes (billions): Qwen2.5 0.49/1.54/3.09/7.61/14.7/32.5, Mistral-Small-2501 23.6, Llama-3.1-8B 8.03.
@pytest.mark.parametrize(
    ("model_id", "billions"),
    [("jhu-clsp/rank1-0.5b", 0.49), ("jhu-clsp/rank1-1.5b", 1.54), ("jhu-clsp/rank1-3b", 3.09),
     ("jhu-clsp/rank1-7b", 7.61), ("jhu-clsp/rank1-14b", 14.7), ("jhu-clsp/rank1-32b", 32.5),
     ("jhu-clsp/rank1-mistral-2501-24b", 23.6), ("jhu-clsp/rank1-llama3-8b", 8.03)],
)
def test_parameter_counts_match_the_model_cards(model_id, billions):
    total = catalog_spec(model_id).parameter_counts().total
    assert total / 1e9 == pytest.approx(billions, rel=0.01)


def test_tied_embeddings_are_counted_once():
    counts = catalog_spec("jhu-clsp/rank1-0.5b").parameter_counts()
    assert counts.lm_head == 0
    assert counts.embedding == 151936 * 896


def test_catalog_lists_every_published_size():
    assert set(ARCH_MODELS.values()) <= set(RANK1_CHECKPOINTS)
    assert len(RANK1_CHECKPOINTS) == 8
    with pytest.raises(BuildRefusal, match="not a published Rank1 checkpoint"):
        catalog_spec("someone/rank1-7b-finetune")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"architectures": ["A", "B"]}, "exactly one architecture"),
        ({"num_hidden_layers": None}, "num_hidden_layers"),
        ({"num_attention_heads": 28, "num_key_value_heads": 5}, "not a multiple of num_key_value_heads"),
        ({"hidden_size": 100, "num_attention_heads": 7, "num_key_value_heads": 7}, "not a multiple"),
        ({"vocab_size": -3}, "positive integer"),
    ],
)
def test_refuses_configs_it_cannot_read(tmp_path, change, message):
    config = {**RANK1_CHECKPOINTS["jhu-clsp/rank1-7b"], **change}
    config = {key: value for key, value in config.items() if value is not None}
    with pytest.raises(BuildRefusal, match=message):
        inspect_model(write_checkpoint(tmp_path / "bad", config))


def test_refuses_a_directory_without_config_or_with_broken_json(tmp_path):
    with pytest.raises(BuildRefusal, match=r"no config\.json"):
        inspect_model(tmp_path)
    (tmp_path / "config.json").write_text("{", encoding="utf-8")
    with pytest.raises(BuildRefusal, match="not valid JSON"):
        inspect_model(tmp_path)


def test_flags_already_quantized_checkpoints(tmp_path):
    config = {**RANK1_CHECKPOINTS["jhu-clsp/rank1-7b"], "quantization_config": {"quant_method": "awq"}}
    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    assert inspect_model(tmp_path).quantized
