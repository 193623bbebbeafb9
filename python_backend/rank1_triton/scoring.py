"""Rank1's scoring rules: when thinking ended, how a forced answer is built, and the two-way softmax."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from .prompts import THINK_END

SENTENCE_ENDS = (".", "!", "?")
# Text that may stand right before </think>. Byte-level BPE merges some of it with "</" (" </", ".</", "\n</"),
# so </think> has several token forms; each is an engine stop word. Other forms are caught by the text check.
THINK_END_CONTEXTS = ("", " ", "\n", "\n\n", ".", ". ", ".\n")


def relevance_score(true_logit: float, false_logit: float) -> float:
    """``e^lt / (e^lt + e^lf)``: the two-way softmax of the `` true`` and `` false`` logits."""
    margin = true_logit - false_logit
    if margin >= 0:
        return 1.0 / (1.0 + math.exp(-margin))
    odds = math.exp(margin)
    return odds / (1.0 + odds)


def strip_end_id(output_ids: Sequence[int], end_id: int) -> list[int]:
    """The generated ids without a trailing end-of-sequence token (engines differ in returning it)."""
    ids = list(output_ids)
    return ids[:-1] if ids and ids[-1] == end_id else ids


def ends_with(ids: Sequence[int], suffix: Sequence[int]) -> bool:
    """Whether ``ids`` ends with the token sequence ``suffix``."""
    return len(suffix) > 0 and len(ids) >= len(suffix) and list(ids[-len(suffix):]) == list(suffix)


def think_end_stop_words(encode: Callable[[str], list[int]]) -> list[list[int]]:
    """The token sequences of ``</think>`` after each of THINK_END_CONTEXTS (the engines' token-level stop words).

    ``encode`` tokenizes trusted text without special tokens. Where the context merges with ``</think>``'s first
    piece, the merged token belongs to the stop word.
    """
    words: list[list[int]] = []
    for context in THINK_END_CONTEXTS:
        ids, before = encode(context + THINK_END), encode(context) if context else []
        word = ids[len(before):] if ids[: len(before)] == before else ids
        if word and word not in words:
            words.append(word)
    return words


class ThinkEndFinder:
    """Where thinking ends by the official rule: the first token after which the decoded text ends with ``</think>``.

    This is a test on text, as vLLM's stop strings are, so it holds for any tokenization of ``</think>`` (one
    special token, or BPE pieces such as ``" </" "think" ">"``). Only tokens whose own text ends with ``>`` can
    complete it, so the rest are skipped with a cached per-token check.
    """

    def __init__(self, decode: Callable[[Sequence[int]], str]) -> None:
        self._decode = decode
        self._closes: dict[int, bool] = {}

    def position(self, ids: Sequence[int]) -> int | None:
        """The length of the shortest prefix of ``ids`` whose text ends with ``</think>``, or None."""
        for end in range(1, len(ids) + 1):
            if self._ends_at(ids, end):
                return end
        return None

    def ends_thinking(self, ids: Sequence[int]) -> bool:
        """Whether the text of ``ids`` ends with ``</think>`` (the incremental test: one call per new token)."""
        return bool(ids) and self._ends_at(ids, len(ids))

    def _ends_at(self, ids: Sequence[int], end: int) -> bool:
        token = ids[end - 1]
        if token not in self._closes:
            self._closes[token] = self._decode([token]).endswith(THINK_END[-1])
        window = len(THINK_END)  # every character of </think> takes at least one token
        return self._closes[token] and self._decode(ids[max(0, end - window):end]).endswith(THINK_END)


def trim_to_last_sentence(text: str) -> str:
    """Official ``_fix_incomplete_responses`` trimming: cut after the last ``.``, ``!`` or ``?``, then strip."""
    text = text.rstrip()
    if not text.endswith(SENTENCE_ENDS):
        last = max(text.rfind(mark) for mark in SENTENCE_ENDS)
        if last != -1:
            text = text[: last + 1]
    return text.strip()
