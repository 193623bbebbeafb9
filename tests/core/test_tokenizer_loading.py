"""The entry model's torch-free tokenizer (tokenizer_loading) against today's AutoTokenizer, id for id."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from rank1_triton.fixtures.cache import ensure_random_model, ensure_tokenizer
from rank1_triton.tokenization import Rank1Tokenizer, prompt_segments, trusted, user
from rank1_triton.tokenizer_loading import load_tokenizer

SPECIALS = ["</think>", "<think>", "<|endoftext|>", "<|im_start|>user", "<|bos|>", "<tool_call>"]
PAIRS = [
    ("what is love", "Love is a feeling.\n  "),
    ("日本語の質問?", "Ünïcödé passage\twith tabs\r\nand 12345 digits"),
    ("", ""),
    ("  leading spaces", "trailing spaces   "),
    *((f"q {text}", f"passage {text} end{text}") for text in SPECIALS),
]
# Real Rank1 checkpoints declare other classes than the fixtures' TokenizersBackend; AutoTokenizer follows them
# (Qwen2Tokenizer rebuilds the backend from the vocabulary and merges), the torch-free loader reads tokenizer.json.
DECLARED = {
    "qwen2.5 (Qwen2Tokenizer, as jhu-clsp/rank1-7b)": ("tokenizer", "Qwen2Tokenizer", "qwen2"),
    "llama-3.1 (PreTrainedTokenizerFast)": ("tokenizer-bos", "PreTrainedTokenizerFast", "llama"),
    "mistral (LlamaTokenizerFast)": ("tokenizer-bos", "LlamaTokenizerFast", "mistral"),
}


def fixture_dir(name: str) -> Path:
    if name == "tokenizer":
        return ensure_tokenizer()
    if name == "tokenizer-bos":
        return ensure_tokenizer(add_bos=True)
    return ensure_random_model(name)


def declared_copy(tmp_path: Path, source: str, tokenizer_class: str, model_type: str) -> Path:
    """A copy of a fixture tokenizer whose tokenizer_config.json/config.json declare a checkpoint's class/type."""
    folder = tmp_path / f"{tokenizer_class}-{model_type}"
    folder.mkdir()
    shutil.copy(fixture_dir(source) / "tokenizer.json", folder)
    config = json.loads((fixture_dir(source) / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps({**config, "tokenizer_class": tokenizer_class}))
    (folder / "config.json").write_text(json.dumps({"model_type": model_type}))
    return folder


def assert_same_rank1_tokenizer(old: Rank1Tokenizer, new: Rank1Tokenizer) -> None:
    assert new.answer_ids == old.answer_ids
    assert new.think_end_ids == old.think_end_ids
    assert (new.eos_id, new.pad_id) == (old.eos_id, old.pad_id)
    for query, passage in PAIRS:
        ids = old.encode(prompt_segments(query, passage))
        assert new.encode(prompt_segments(query, passage)) == ids
        assert new.decode(ids) == old.decode(ids)
    for text in SPECIALS:  # trusted text keeps its special tokens, user text does not
        segments = [trusted(f"a{text}b"), user(text), trusted(text)]
        assert new.encode(segments, add_special_tokens=False) == old.encode(segments, add_special_tokens=False)
    passage = " ".join(f"wörd{i} </think>" for i in range(300))
    for limit in (60, 120, 333):
        got = new.encode_prompt("the query", passage, max_tokens=limit, truncate=True)
        want = old.encode_prompt("the query", passage, max_tokens=limit, truncate=True)
        assert (got.segments, got.input_ids, got.truncated) == (want.segments, want.input_ids, want.truncated)


@pytest.mark.parametrize("name", ["tokenizer", "tokenizer-bos", "qwen2", "llama", "mistral"])
def test_fixture_tokenizers_match_autotokenizer(name):
    folder = fixture_dir(name)
    old, new = AutoTokenizer.from_pretrained(folder), load_tokenizer(folder)
    assert_same_rank1_tokenizer(Rank1Tokenizer(old), Rank1Tokenizer(new))
    old_specials = {i: (t.content, t.special) for i, t in old.added_tokens_decoder.items()}
    assert {i: (t.content, t.special) for i, t in new.added_tokens_decoder.items()} == old_specials


@pytest.mark.parametrize("name", ["llama", "mistral"])
def test_default_bos_survives_the_torch_free_loader(name):
    tokenizer = load_tokenizer(fixture_dir(name))
    ids = Rank1Tokenizer(tokenizer).encode(prompt_segments("q", "p"))
    assert tokenizer.bos_token_id is not None
    assert ids[0] == tokenizer.bos_token_id and ids.count(tokenizer.bos_token_id) == 1


@pytest.mark.parametrize("case", DECLARED)
def test_declared_checkpoint_classes_match_autotokenizer(case, tmp_path):
    folder = declared_copy(tmp_path, *DECLARED[case])
    old, new = AutoTokenizer.from_pretrained(folder), load_tokenizer(folder)
    assert_same_rank1_tokenizer(Rank1Tokenizer(old), Rank1Tokenizer(new))


def test_without_tokenizer_json_it_falls_back_to_autotokenizer_and_says_so(tmp_path, caplog):
    source = ensure_tokenizer()
    model = json.loads((source / "tokenizer.json").read_text())["model"]
    (tmp_path / "vocab.json").write_text(json.dumps(model["vocab"]))
    (tmp_path / "merges.txt").write_text("\n".join(["#version: 0.2"] + [" ".join(m) for m in model["merges"]]))
    config = json.loads((source / "tokenizer_config.json").read_text())
    added = {str(t["id"]): {k: v for k, v in t.items() if k != "id"}
             for t in json.loads((source / "tokenizer.json").read_text())["added_tokens"]}
    (tmp_path / "tokenizer_config.json").write_text(
        json.dumps({**config, "tokenizer_class": "Qwen2Tokenizer", "added_tokens_decoder": added}))
    with caplog.at_level(logging.WARNING, logger="rank1_triton.tokenizer"):
        tokenizer = Rank1Tokenizer(load_tokenizer(tmp_path))
    assert any("no tokenizer.json" in record.message and "AutoTokenizer" in record.message
               for record in caplog.records)
    reference = Rank1Tokenizer(AutoTokenizer.from_pretrained(source))
    assert tokenizer.encode(prompt_segments("what is love", "Love </think> is")) == reference.encode(
        prompt_segments("what is love", "Love </think> is"))


def test_rank1_tokenizer_from_pretrained(rank1_tokenizer, tokenizer_dir):
    segments = prompt_segments("q", "p </think>")
    assert Rank1Tokenizer.from_pretrained(tokenizer_dir).encode(segments) == rank1_tokenizer.encode(segments)


TORCH_FREE_SCRIPT = textwrap.dedent("""
    import json, sys
    from rank1_triton.triton_models import entry_model  # everything the rank1 model.py imports
    from rank1_triton.tokenization import Rank1Tokenizer, prompt_segments
    from rank1_triton.tokenizer_loading import load_tokenizer

    tokenizer = Rank1Tokenizer(load_tokenizer(sys.argv[1]))
    ids = tokenizer.encode(prompt_segments("a query </think>", "a passage <|endoftext|>"))
    tokenizer.encode_prompt("q", "long passage " * 400, max_tokens=64, truncate=True)
    text = tokenizer.decode(ids)
    status = dict(line.split(":", 1) for line in open("/proc/self/status") if line.startswith("VmRSS"))
    heavy = sorted(name for name in sys.modules if name.split(".")[0] in ("torch", "tensorflow", "jax", "flax"))
    print(json.dumps({"heavy": heavy, "ids": ids, "text": text, "rss_kb": int(status["VmRSS"].split()[0])}))
""")


@pytest.mark.parametrize("name", ["tokenizer", "llama"])
def test_entry_model_imports_and_tokenizes_without_torch(name, rank1_tokenizer):
    run = subprocess.run([sys.executable, "-c", TORCH_FREE_SCRIPT, str(fixture_dir(name))],
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["heavy"] == []
    assert "</think>" in result["text"]
    if name == "tokenizer":
        assert result["ids"] == rank1_tokenizer.encode(prompt_segments("a query </think>", "a passage <|endoftext|>"))
    # A bare process with the entry model's imports and a loaded Qwen2.5 tokenizer: ~140 MiB here, ~490 MiB with
    # AutoTokenizer (torch). The Triton stub adds a few MiB (bench/memory.py measures the real thing).
    assert result["rss_kb"] < 250 * 1024
