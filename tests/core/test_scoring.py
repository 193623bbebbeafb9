"""Scoring rules: two-way softmax, stop detection, official trimming of forced answers."""

import math

import pytest

from rank1_triton.scoring import Ending, relevance_score, strip_end_id, thinking_ending, trim_to_last_sentence


@pytest.mark.parametrize(("lt", "lf"), [(0.0, 0.0), (2.5, -1.0), (-3.0, 4.0), (12.25, 12.0)])
def test_relevance_score_is_the_two_way_softmax(lt, lf):
    assert relevance_score(lt, lf) == pytest.approx(math.exp(lt) / (math.exp(lt) + math.exp(lf)), abs=1e-15)


def test_relevance_score_is_stable_for_extreme_logits():
    assert relevance_score(1000.0, -1000.0) == 1.0
    assert relevance_score(-1000.0, 1000.0) == 0.0
    assert relevance_score(800.0, 800.0) == 0.5


def test_thinking_ends_naturally_only_on_the_stop_sequence():
    assert thinking_ending([5, 6, 151666], [151666]) is Ending.NATURAL
    assert thinking_ending([5, 151666, 6], [151666]) is Ending.FORCED
    assert thinking_ending([], [151666]) is Ending.FORCED
    assert thinking_ending([1, 522, 26865, 29], [522, 26865, 29]) is Ending.NATURAL


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
