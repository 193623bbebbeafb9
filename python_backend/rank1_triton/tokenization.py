"""Tokenization that never turns user text into special tokens, and passage truncation.

Rank1's official code tokenizes the whole prompt string, so a passage containing ``</think>`` or
``<|endoftext|>`` would become those special tokens. Here a prompt is a list of segments: template and
model-generated text are *trusted* (special tokens in them are recognised, as the official code does),
user text is not. The result equals what the tokenizer gives for the joined string whenever the user
text holds no special-token strings, because Hugging Face tokenizers also split text at special tokens
and encode the pieces in between independently.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import PromptTooLongError
from .prompts import THINK_END, template_pieces

if TYPE_CHECKING:  # importing transformers is left to whoever builds the tokenizer (see tokenizer_loading)
    from transformers import PreTrainedTokenizerBase


@dataclass(frozen=True)
class Segment:
    """A piece of prompt text; ``trusted`` text may contain special tokens, user text never does."""

    text: str
    trusted: bool


def user(text: str) -> Segment:
    """A segment of user-supplied text (query, passage, instruction)."""
    return Segment(text, trusted=False)


def trusted(text: str) -> Segment:
    """A segment of template or model-generated text."""
    return Segment(text, trusted=True)


def prompt_segments(query_text: str, passage_text: str) -> list[Segment]:
    """The Rank1 prompt as segments: template trusted, query and passage not."""
    head, middle, tail = template_pieces()
    return [trusted(head), user(query_text), trusted(middle), user(passage_text), trusted(tail)]


@dataclass(frozen=True)
class EncodedPrompt:
    """A tokenized prompt: its segments (the passage possibly truncated), its ids, and whether it was truncated."""

    segments: list[Segment]
    input_ids: list[int]
    truncated: bool


class Rank1Tokenizer:
    """Wraps a Hugging Face tokenizer with Rank1's tokenization rules.

    Any transformers fast tokenizer works (``AutoTokenizer.from_pretrained(...)``); ``from_pretrained`` loads one
    without importing torch (``tokenizer_loading.load_tokenizer``), as the ``rank1`` Triton model does.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self.tokenizer = tokenizer
        self.true_id = self._single_token(" true")
        self.false_id = self._single_token(" false")
        specials = sorted(
            (t.content for t in tokenizer.added_tokens_decoder.values() if t.special), key=len, reverse=True
        )
        self._special_pattern = re.compile("|".join(map(re.escape, specials))) if specials else None
        self._prefix_ids, self._suffix_ids = self._default_special_ids()
        self.think_end_ids = self.encode([trusted(THINK_END)], add_special_tokens=False)
        if tokenizer.eos_token_id is None:
            raise ValueError("the tokenizer has no eos_token_id")
        self.eos_id = int(tokenizer.eos_token_id)
        self.pad_id = int(tokenizer.pad_token_id) if tokenizer.pad_token_id is not None else self.eos_id

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> Rank1Tokenizer:
        """The Rank1 tokenizer of the checkpoint (or tokenizer folder) ``directory``, loaded without torch."""
        from .tokenizer_loading import load_tokenizer

        return cls(load_tokenizer(directory))

    def _single_token(self, text: str) -> int:
        ids = self.tokenizer(text, add_special_tokens=False).input_ids
        if len(ids) != 1:
            raise ValueError(f"{text!r} is not a single token for this tokenizer: {ids}")
        return int(ids[0])

    def _default_special_ids(self) -> tuple[list[int], list[int]]:
        """The ids the tokenizer adds around text by default (e.g. Llama's BOS), found by a probe."""
        bare = self.tokenizer("a", add_special_tokens=False).input_ids
        full = self.tokenizer("a").input_ids
        start = full.index(bare[0])
        return list(full[:start]), list(full[start + len(bare):])

    @property
    def answer_ids(self) -> tuple[int, int]:
        """Token ids of `` true`` and `` false``, read from the tokenizer."""
        return self.true_id, self.false_id

    def encode(self, segments: Sequence[Segment], *, add_special_tokens: bool = True) -> list[int]:
        """Token ids of the joined segments; special tokens are recognised in trusted text only."""
        ids: list[int] = list(self._prefix_ids) if add_special_tokens else []
        plain: list[str] = []
        for segment in segments:
            if not segment.trusted or self._special_pattern is None:
                plain.append(segment.text)
                continue
            position = 0
            for match in self._special_pattern.finditer(segment.text):
                plain.append(segment.text[position:match.start()])
                ids.extend(self._encode_plain("".join(plain)))
                plain = []
                ids.append(int(self.tokenizer.convert_tokens_to_ids(match.group())))
                position = match.end()
            plain.append(segment.text[position:])
        ids.extend(self._encode_plain("".join(plain)))
        if add_special_tokens:
            ids.extend(self._suffix_ids)
        return ids

    def _encode_plain(self, text: str) -> list[int]:
        if not text:
            return []
        return list(self.tokenizer(text, add_special_tokens=False, split_special_tokens=True).input_ids)

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids`` with special tokens kept (``</think>`` stays visible)."""
        return self.tokenizer.decode(list(ids), skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def encode_prompt(self, query_text: str, passage_text: str, *, max_tokens: int, truncate: bool) -> EncodedPrompt:
        """Tokenize the Rank1 prompt so it has at most ``max_tokens`` tokens, cutting only the passage.

        Raises PromptTooLongError naming ``documents`` when truncation is off and the prompt is too long,
        and naming ``query`` when even an empty passage does not fit.
        """
        segments = prompt_segments(query_text, passage_text)
        ids = self.encode(segments)
        if len(ids) <= max_tokens:
            return EncodedPrompt(segments, ids, truncated=False)
        if not truncate:
            raise PromptTooLongError(
                "documents",
                f"the prompt has {len(ids)} tokens, over the {max_tokens} that fit with the reasoning budget; "
                "shorten the passage, lower max_reasoning_tokens, or allow truncate=END",
            )
        empty = self.encode(prompt_segments(query_text, ""))
        if len(empty) > max_tokens:
            raise PromptTooLongError(
                "query",
                f"the query alone makes a {len(empty)}-token prompt, over the {max_tokens} that fit "
                "with the reasoning budget; shorten the query or lower max_reasoning_tokens",
            )
        return self._truncate_passage(query_text, passage_text, max_tokens, excess=len(ids) - max_tokens)

    def _truncate_passage(self, query_text: str, passage_text: str, max_tokens: int, excess: int) -> EncodedPrompt:
        """Cut the passage at a token boundary, re-tokenizing until the whole prompt fits."""
        offsets = self.tokenizer(
            passage_text, add_special_tokens=False, split_special_tokens=True, return_offsets_mapping=True
        ).offset_mapping

        def encode_kept(keep: int) -> EncodedPrompt:
            cut = passage_text[: offsets[keep - 1][1]] if keep > 0 else ""
            segments = prompt_segments(query_text, cut)
            return EncodedPrompt(segments, self.encode(segments), truncated=True)

        # Token counts are nearly additive: start from the estimate, step down until the prompt fits,
        # then up while one more passage token still fits (merges at the cut can save a token).
        keep = max(len(offsets) - excess, 0)
        best = encode_kept(keep)
        while len(best.input_ids) > max_tokens:
            keep = max(keep - max(len(best.input_ids) - max_tokens, 1), 0)
            best = encode_kept(keep)
        while keep + 1 < len(offsets):
            longer = encode_kept(keep + 1)
            if len(longer.input_ids) > max_tokens:
                break
            keep, best = keep + 1, longer
        return best
