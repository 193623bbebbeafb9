"""Loading a checkpoint's tokenizer without importing torch.

``transformers.AutoTokenizer`` imports torch (its class resolution goes through ``PreTrainedConfig``, whose RoPE
helpers import torch when it is installed): about 300 MB of resident memory in every process that only templates
and tokenizes. ``TokenizersBackend`` (transformers 5; ``PreTrainedTokenizerFast`` before) does not import torch and
reads the same files AutoTokenizer does: ``tokenizer.json`` verbatim (pre-tokenizer, normalizer, post-processor
with any default BOS, added tokens) plus ``tokenizer_config.json`` (bos/eos/pad/unk, extra special tokens,
``add_bos_token``, the Mistral pre-tokenizer fix). It ignores the declared ``tokenizer_class``: for the Qwen2.5
``Qwen2Tokenizer`` that AutoTokenizer picks, the class rebuilds the same pipeline from the same vocabulary and merges
(tests/core/test_tokenizer_loading.py checks identical ids), and Llama-3.1's ``PreTrainedTokenizerFast`` already is
this class. A checkpoint without ``tokenizer.json``, or with its own tokenizer code, is loaded by AutoTokenizer
as before, and a log line says so.

After loading, the heap pages freed by parsing the ~10-20 MB JSON file are handed back to the OS (glibc's
``malloc_trim``): without it they stay resident, ~100 MB per process for the Qwen2.5 vocabulary.
"""

from __future__ import annotations

import ctypes
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

LOGGER = logging.getLogger("rank1_triton.tokenizer")
TOKENIZER_JSON = "tokenizer.json"


def _fast_tokenizer_class() -> type[PreTrainedTokenizerBase]:
    try:
        from transformers import TokenizersBackend
    except ImportError:  # transformers < 5
        from transformers import PreTrainedTokenizerFast as TokenizersBackend
    return TokenizersBackend


def _remote_tokenizer_code(directory: Path) -> bool:
    """Whether tokenizer_config.json maps AutoTokenizer to code shipped with the checkpoint."""
    config = directory / "tokenizer_config.json"
    if not config.is_file():
        return False
    try:
        auto_map = json.loads(config.read_text(encoding="utf-8")).get("auto_map")
    except (OSError, ValueError, AttributeError):
        return False
    return bool(auto_map) and (not isinstance(auto_map, dict) or "AutoTokenizer" in auto_map)


def release_freed_memory() -> None:
    """Return freed heap pages to the OS (glibc ``malloc_trim``; nothing happens where it does not exist)."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return
    trim.argtypes = [ctypes.c_size_t]
    trim(0)


def load_tokenizer(directory: str | Path) -> PreTrainedTokenizerBase:
    """The tokenizer saved in ``directory``, loaded from ``tokenizer.json`` without importing torch when it can be."""
    path = Path(directory)
    if (path / TOKENIZER_JSON).is_file() and not _remote_tokenizer_code(path):
        tokenizer = _fast_tokenizer_class().from_pretrained(str(path))
        LOGGER.info("tokenizer loaded from %s with %s (torch not imported)", path / TOKENIZER_JSON,
                    type(tokenizer).__name__)
    else:
        reason = "tokenizer code of its own" if (path / TOKENIZER_JSON).is_file() else f"no {TOKENIZER_JSON}"
        LOGGER.warning("%s has %s: loading it with transformers.AutoTokenizer, which imports torch "
                       "(~300 MB more resident memory in this process)", path, reason)
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(path))
    release_freed_memory()
    return tokenizer
