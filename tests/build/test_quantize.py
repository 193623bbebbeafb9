"""ModelOpt quantization for real, on CPU, in the quantization environment (.venv-quantize).

A tiny seeded Qwen2 is quantized to FP8 (+FP8 KV, TP 2), INT8 SmoothQuant (+INT8 KV, calibrated on text) and
INT4 AWQ by `python -m rank1_build quantize` running in .venv-quantize (nvidia-modelopt 0.47.0, transformers<5.15);
the exported TensorRT-LLM checkpoints are then read here with safetensors.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import torch
from conftest import ROOT
from safetensors import safe_open

pytestmark = pytest.mark.slow  # about a minute and a half: three ModelOpt runs on one CPU thread

VENV = ROOT / ".venv-quantize"
PYTHON = VENV / "bin" / "python"
HIDDEN, INTERMEDIATE, HEADS, KV_HEADS, HEAD_DIM, VOCAB = 128, 256, 4, 2, 32, 151936
QKV_OUT = (HEADS + 2 * KV_HEADS) * HEAD_DIM
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "build")}

TINY_MODEL = f"""
import sys, torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM
torch.manual_seed(0)
config = Qwen2Config(vocab_size={VOCAB}, hidden_size={HIDDEN}, intermediate_size={INTERMEDIATE}, num_hidden_layers=2,
                     num_attention_heads={HEADS}, num_key_value_heads={KV_HEADS}, max_position_embeddings=4096,
                     tie_word_embeddings=False)
Qwen2ForCausalLM(config).save_pretrained(sys.argv[1])
words = "query passage relevant true false think the a of is to reasoning document".split()
vocab = {{"[UNK]": 0, **{{word: index + 1 for index, word in enumerate(words)}}}}
backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
backend.pre_tokenizer = pre_tokenizers.Whitespace()
PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]").save_pretrained(sys.argv[1])
"""


def _usable() -> bool:
    check = "import importlib.util as u, sys; sys.exit(not all(u.find_spec(m) for m in ('modelopt', 'transformers')))"
    return PYTHON.is_file() and subprocess.run([str(PYTHON), "-c", check], check=False).returncode == 0


@pytest.fixture(scope="module")
def quantize_python() -> Path:
    if not _usable():
        result = subprocess.run([str(ROOT / "build" / "install_quantize_env.sh")], capture_output=True, text=True,
                                check=False)
        if result.returncode != 0 or not _usable():
            pytest.skip(f".venv-quantize is absent and could not be created: {result.stderr.strip()[-500:]}")
    return PYTHON


@pytest.fixture(scope="module")
def tiny_model(quantize_python, tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("tiny-qwen2")
    subprocess.run([str(quantize_python), "-c", TINY_MODEL, str(directory)], check=True, env=ENV, timeout=600)
    return directory


def quantize(python: Path, model: Path, output: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(python), "-m", "rank1_build", "quantize", "--model", str(model), "--output", str(output),
         "--calib-size", "8", "--calib-max-length", "32", *args],
        capture_output=True, text=True, env=ENV, timeout=900, check=False,
    )


@pytest.fixture(scope="module")
def checkpoints(quantize_python, tiny_model, tmp_path_factory) -> dict[str, Path]:
    calib = tmp_path_factory.mktemp("calib") / "texts.jsonl"
    calib.write_text("\n".join(json.dumps({"text": f"query {i} passage the document is relevant reasoning true"})
                               for i in range(8)) + "\n", encoding="utf-8")
    runs = {
        "fp8-tp2": ["--qformat", "fp8", "--tp-size", "2", "--calib-random-tokens"],
        "int8-sq": ["--qformat", "int8-sq", "--kv-cache", "int8", "--calib-texts", str(calib)],
        "int4-awq": ["--qformat", "int4-awq", "--calib-random-tokens"],
    }
    outputs = {}
    for name, args in runs.items():
        output = tmp_path_factory.mktemp(name)
        result = quantize(quantize_python, tiny_model, output, *args)
        assert result.returncode == 0, result.stderr[-3000:]
        summary = json.loads(result.stdout.strip().splitlines()[-1])
        assert summary["quantization"] == json.loads((output / "config.json").read_text())["quantization"]
        outputs[name] = output
    return outputs


def tensors(path: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(path), framework="pt") as handle:
        return {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 (safe_open is not a dict)


def config_of(directory: Path) -> dict:
    return json.loads((directory / "config.json").read_text())


def test_fp8_with_fp8_kv_cache_sharded_for_two_gpus(checkpoints):
    directory = checkpoints["fp8-tp2"]
    config = config_of(directory)
    assert config["architecture"] == "Qwen2ForCausalLM"
    assert config["dtype"] == "bfloat16"
    assert config["quantization"]["quant_algo"] == "FP8"
    assert config["quantization"]["kv_cache_quant_algo"] == "FP8"
    assert "lm_head" in config["quantization"]["exclude_modules"]
    assert (config["mapping"]["world_size"], config["mapping"]["tp_size"]) == (2, 2)
    assert (config["num_attention_heads"], config["num_key_value_heads"]) == (HEADS, KV_HEADS)
    for rank in (0, 1):
        weights = tensors(directory / f"rank{rank}.safetensors")
        layer = "transformer.layers.0"
        qkv = weights[f"{layer}.attention.qkv.weight"]
        assert (qkv.dtype, tuple(qkv.shape)) == (torch.float8_e4m3fn, (QKV_OUT // 2, HIDDEN))
        dense = weights[f"{layer}.attention.dense.weight"]
        assert (dense.dtype, tuple(dense.shape)) == (torch.float8_e4m3fn, (HIDDEN, HEADS * HEAD_DIM // 2))
        assert weights[f"{layer}.mlp.fc.weight"].dtype == torch.float8_e4m3fn
        for name in ("attention.qkv.weights_scaling_factor", "attention.qkv.activation_scaling_factor",
                     "attention.kv_cache_scaling_factor", "mlp.proj.weights_scaling_factor"):
            scale = weights[f"{layer}.{name}"]
            assert scale.dtype == torch.float32 and scale.numel() == 1 and float(scale) > 0
        lm_head = weights["lm_head.weight"]
        assert (lm_head.dtype, tuple(lm_head.shape)) == (torch.bfloat16, (VOCAB // 2, HIDDEN))
    assert not (directory / "rank2.safetensors").exists()


def test_int8_smoothquant_with_int8_kv_cache_calibrated_on_text(checkpoints):
    directory = checkpoints["int8-sq"]
    config = config_of(directory)
    assert config["quantization"]["quant_algo"] == "W8A8_SQ_PER_CHANNEL"
    assert config["quantization"]["kv_cache_quant_algo"] == "INT8"
    assert (config["mapping"]["world_size"], config["mapping"]["tp_size"]) == (1, 1)
    weights = tensors(directory / "rank0.safetensors")
    layer = "transformer.layers.1"
    qkv = weights[f"{layer}.attention.qkv.weight"]
    assert (qkv.dtype, tuple(qkv.shape)) == (torch.int8, (QKV_OUT, HIDDEN))
    per_channel = weights[f"{layer}.attention.qkv.weights_scaling_factor"]
    assert (per_channel.dtype, tuple(per_channel.shape)) == (torch.float32, (QKV_OUT,))
    smoothing = weights[f"{layer}.mlp.proj.prequant_scaling_factor"]
    assert tuple(smoothing.shape) == (INTERMEDIATE,)
    assert f"{layer}.attention.kv_cache_scaling_factor" in weights
    assert weights["lm_head.weight"].dtype == torch.bfloat16


def test_int4_awq_packs_two_weights_per_byte_with_group_scales(checkpoints):
    directory = checkpoints["int4-awq"]
    config = config_of(directory)
    assert config["quantization"]["quant_algo"] == "W4A16_AWQ"
    assert config["quantization"]["group_size"] == 128
    assert config["quantization"]["kv_cache_quant_algo"] is None
    weights = tensors(directory / "rank0.safetensors")
    for name, out_features, in_features in (("attention.qkv", QKV_OUT, HIDDEN), ("mlp.fc", INTERMEDIATE, HIDDEN),
                                            ("mlp.proj", HIDDEN, INTERMEDIATE)):
        packed = weights[f"transformer.layers.0.{name}.weight"]
        assert packed.dtype == torch.int8
        assert packed.numel() * 2 == out_features * in_features
        scales = weights[f"transformer.layers.0.{name}.weights_scaling_factor"]
        assert tuple(scales.shape) == (out_features, in_features // 128)
        assert weights[f"transformer.layers.0.{name}.prequant_scaling_factor"].shape == (in_features,)


def test_quantize_refuses_awq_groups_split_across_ranks(quantize_python, tiny_model, tmp_path):
    result = quantize(quantize_python, tiny_model, tmp_path / "x", "--qformat", "int4-awq", "--tp-size", "2",
                      "--calib-random-tokens")
    assert result.returncode == 2
    assert "not a multiple of the AWQ group size 128" in result.stderr
    assert not (tmp_path / "x").exists()
