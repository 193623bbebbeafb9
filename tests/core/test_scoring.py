"""Scoring rules: two-way softmax, stop detection, official trimming of forced answers."""

import math

import pytest

from rank1_triton.scoring import (
    ThinkEndFinder,
    relevance_score,
    strip_end_id,
    think_end_stop_words,
    trim_to_last_sentence,
)


@pytest.mark.parametrize(("lt", "lf"), [(0.0, 0.0), (2.5, -1.0), (-3.0, 4.0), (12.25, 12.0)])
def test_relevance_score_is_the_two_way_softmax(lt, lf):
    assert relevance_score(lt, lf) == pytest.approx(math.exp(lt) / (math.exp(lt) + math.exp(lf)), abs=1e-15)


def test_relevance_score_is_stable_for_extreme_logits():
    assert relevance_score(1000.0, -1000.0) == 1.0
    assert relevance_score(-1000.0, 1000.0) == 0.0
    assert relevance_score(800.0, 800.0) == 0.5


def test_thinking_ends_where_the_text_first_ends_with_the_closing_tag(hf_tokenizer):
    finder = ThinkEndFinder(lambda ids: hf_tokenizer.decode(ids, skip_special_tokens=False))
    special = hf_tokenizer.convert_tokens_to_ids("</think>")
    words = hf_tokenizer(" so yes", add_special_tokens=False).input_ids
    assert finder.position([*words, special]) == len(words) + 1
    assert finder.position([*words, special, *words]) == len(words) + 1, "text after </think> is not reasoning"
    assert finder.position(words) is None and finder.position([]) is None
    pieces = hf_tokenizer(" so yes </", add_special_tokens=False).input_ids + \
        hf_tokenizer("think>", add_special_tokens=False).input_ids
    assert special not in pieces and finder.position(pieces) == len(pieces), "BPE pieces close thinking too"
    # " </" "think" ">>": no token boundary where the text ends with </think> (the reference's rule, per step).
    merged = hf_tokenizer(" so yes </think>>", add_special_tokens=False, split_special_tokens=True).input_ids
    assert finder.position(merged) is None


def test_stop_words_cover_the_closing_tag_after_a_space(hf_tokenizer):
    def encode(text: str) -> list[int]:
        return hf_tokenizer(text, add_special_tokens=False, split_special_tokens=True).input_ids

    words = think_end_stop_words(encode)
    assert words[0] == encode("</think>") and encode(" </think>") in words
    assert len(words) == len({tuple(w) for w in words})


def test_strip_end_id_only_removes_a_trailing_end():
    assert strip_end_id([1, 2, 9], 9) == [1, 2]
    assert strip_end_id([9, 1], 9) == [9, 1]
    assert strip_end_id([], 9) == []


@pytest.mark.parametrize(
    ("text", "trimmed"),
    [
        ("The passage is relevant. It also says", "The passage is relevant."),
        ("Is it? Maybe! Then", "Is it? Maybe!"),
        ("Ends cleanly.   ", "Ends cleanly."),
        ("no punctuation at all", "no punctuation at all"),
        ("  spaced start. tail", "spaced start."),
        ("3.14 is pi and", "3."),
        ("", ""),
    ],
)
def test_trim_to_last_sentence_follows_the_official_rule(text, trimmed):
    assert trim_to_last_sentence(text) == trimmed
