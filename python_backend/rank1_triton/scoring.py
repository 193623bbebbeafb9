"""Rank1's scoring rules: when thinking ended, how a forced answer is built, and the two-way softmax."""

from __future__ import annotations

import math
from collections.abc import Sequence
from enum import Enum

SENTENCE_ENDS = (".", "!", "?")


class Ending(str, Enum):
    """How a thinking phase ended."""

    NATURAL = "natural"  # the model wrote </think>: the answer is read right after it
    FORCED = "forced"  # budget spent or end-of-sequence first: the answer is forced after a trimmed text


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


def thinking_ending(output_ids: Sequence[int], think_end_ids: Sequence[int]) -> Ending:
    """NATURAL when the generation (end-of-sequence removed) ends with ``</think>``, else FORCED."""
    return Ending.NATURAL if ends_with(output_ids, think_end_ids) else Ending.FORCED


def trim_to_last_sentence(text: str) -> str:
    """Official ``_fix_incomplete_responses`` trimming: cut after the last ``.``, ``!`` or ``?``, then strip."""
    text = text.rstrip()
    if not text.endswith(SENTENCE_ENDS):
        last = max(text.rfind(mark) for mark in SENTENCE_ENDS)
        if last != -1:
            text = text[: last + 1]
    return text.strip()
