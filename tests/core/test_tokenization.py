"""Tokenization rules: special tokens only from the template, default BOS, passage truncation.

Each rule is checked on both ways of loading the tokenizer: transformers' AutoTokenizer (the in-process API, the
reference the tests compare with) and the torch-free loader of the ``rank1`` Triton model (tokenizer_loading).
"""

import pytest

from rank1_triton.errors import PromptTooLongError, RequestError
from rank1_triton.fixtures.cache import ensure_random_model
from rank1_triton.prompts import render_prompt
from rank1_triton.tokenization import Rank1Tokenizer, prompt_segments, trusted, user
from rank1_triton.tokenizer_loading import load_tokenizer

THINK, THINK_END, EOS = 151665, 151666, 151643
LOADERS = ["AutoTokenizer", "torch-free"]


@pytest.fixture(scope="module", params=LOADERS)
def rank1_tokenizer(request, hf_tokenizer, tokenizer_dir) -> Rank1Tokenizer:
    """The session's Rank1Tokenizer over AutoTokenizer, then one over the entry model's loader."""
    return Rank1Tokenizer(hf_tokenizer if request.param == "AutoTokenizer" else load_tokenizer(tokenizer_dir))


@pytest.fixture(scope="module", params=LOADERS)
def bos_tokenizer(request, random_llama_tokenizer):
    """The Llama fixture's BOS-adding tokenizer, loaded each way."""
    return random_llama_tokenizer if request.param == "AutoTokenizer" else load_tokenizer(ensure_random_model("llama"))


def test_answer_and_stop_ids_come_from_the_tokenizer(rank1_tokenizer):
    assert rank1_tokenizer.answer_ids == (830, 895)
    assert rank1_tokenizer.think_end_ids == [THINK_END]
    assert rank1_tokenizer.eos_id == EOS


def test_template_think_is_the_special_token(rank1_tokenizer):
    ids = rank1_tokenizer.encode(prompt_segments("a query", "a passage"))
    assert ids[-1] == THINK
    assert ids.count(THINK) == 1


@pytest.mark.parametrize(
    ("query", "passage"),
    [("what is love", "Love is a feeling.\n  "), ("日本語の質問?", "Ünïcödé passage\twith tabs\r\nand 12345 digits")],
)
def test_plain_text_tokenizes_like_the_whole_prompt_string(rank1_tokenizer, hf_tokenizer, query, passage):
    expected = hf_tokenizer(render_prompt(query, passage)).input_ids
    assert rank1_tokenizer.encode(prompt_segments(query, passage)) == expected


@pytest.mark.parametrize("text", ["</think>", "<|endoftext|>", "<think>", "<|im_start|>user"])
def test_user_text_never_becomes_special_tokens(rank1_tokenizer, hf_tokenizer, text):
    ids = rank1_tokenizer.encode(prompt_segments(f"q {text}", f"passage {text} end"))
    special_ids = {i for i, token in hf_tokenizer.added_tokens_decoder.items() if token.special}
    assert [t for t in ids if t in special_ids] == [THINK]
    # the official code (whole-string tokenization) would have injected them:
    assert set(hf_tokenizer(render_prompt(f"q {text}", "p")).input_ids[:-1]) & special_ids


def test_trusted_text_keeps_its_special_tokens(rank1_tokenizer):
    ids = rank1_tokenizer.encode([trusted("a</think>b"), user("</think>")], add_special_tokens=False)
    assert ids.count(THINK_END) == 1


def test_default_bos_is_added_once(bos_tokenizer, random_llama_tokenizer):
    tokenizer = Rank1Tokenizer(bos_tokenizer)
    bos = random_llama_tokenizer.bos_token_id
    ids = tokenizer.encode(prompt_segments("q", "p"))
    assert ids[0] == bos and ids.count(bos) == 1
    assert ids == random_llama_tokenizer(render_prompt("q", "p")).input_ids


def test_short_prompt_is_not_truncated(rank1_tokenizer):
    encoded = rank1_tokenizer.encode_prompt("q", "short passage", max_tokens=100, truncate=True)
    assert not encoded.truncated
    assert encoded.segments[3].text == "short passage"


def test_long_passage_is_cut_to_the_largest_prefix_that_fits(rank1_tokenizer):
    passage = " ".join(f"word{i}" for i in range(400))
    encoded = rank1_tokenizer.encode_prompt("the query", passage, max_tokens=120, truncate=True)
    kept = encoded.segments[3].text
    assert encoded.truncated and len(encoded.input_ids) <= 120
    assert passage.startswith(kept) and len(kept) < len(passage)
    assert "the query" in rank1_tokenizer.decode(encoded.input_ids)
    assert encoded.input_ids[-1] == THINK  # the template tail survives
    one_more = passage[: passage.index(" ", len(kept) + 1)]
    assert len(rank1_tokenizer.encode(prompt_segments("the query", one_more))) > 120


def test_truncation_off_refuses_naming_documents(rank1_tokenizer):
    with pytest.raises(PromptTooLongError, match=r"^documents: the prompt has \d+ tokens, over the 50"):
        rank1_tokenizer.encode_prompt("q", "long " * 200, max_tokens=50, truncate=False)


def test_query_that_cannot_fit_is_refused_naming_query(rank1_tokenizer):
    with pytest.raises(RequestError, match=r"^query: the query alone makes a \d+-token prompt") as error:
        rank1_tokenizer.encode_prompt("very long query " * 50, "p", max_tokens=60, truncate=True)
    assert error.value.field == "query"
