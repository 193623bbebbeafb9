"""Prompt templating, dataset prompts, instructions and passages (rules of rank1.py / prompts.py)."""

import pytest

from rank1_triton.errors import RequestError
from rank1_triton.prompts import (
    DATASET_PROMPTS,
    Passage,
    compose_query,
    dataset_prompt,
    passage_from,
    render_prompt,
    resolve_prompt,
)


def test_template_is_the_official_one():
    assert render_prompt("Q?", "P.") == (
        "Determine if the following passage is relevant to the query. Answer only with 'true' or 'false'.\n"
        "Query: Q?\nPassage: P.\n<think>"
    )


def test_table_has_every_official_dataset_key():
    expected = {
        "SciFact", "ClimateFEVER", "TRECCOVID", "ArguAna", "DBPedia", "FiQA2018", "NFCorpus", "Touche2020",
        "SCIDOCS", "BrightRetrieval", "BrightRetrieval_aops", "BrightRetrieval_theoremqa_questions",
        "BrightRetrieval_theoremqa_theorems", "BrightRetrieval_leetcode", "BrightRetrieval_pony",
    }
    assert set(DATASET_PROMPTS) == expected
    assert all(p.count("FILL_QUERY_HERE") == 1 for p in DATASET_PROMPTS.values())


def test_prompts_keep_their_exact_whitespace():
    trec_covid = "FILL_QUERY_HERE If the article answers any part of the question it is relevant."
    assert DATASET_PROMPTS["TRECCOVID"] == trec_covid
    assert "explicitly. \n\nFind me passages" in DATASET_PROMPTS["NFCorpus"]
    assert "similarities to this:\n    \nFILL_QUERY_HERE" in DATASET_PROMPTS["BrightRetrieval_leetcode"]
    assert DATASET_PROMPTS["BrightRetrieval_leetcode"].endswith("different chapter. \n\n\n")


def test_lookup_prefers_task_subtask_then_task():
    assert dataset_prompt("BrightRetrieval", "aops") is DATASET_PROMPTS["BrightRetrieval_aops"]
    assert dataset_prompt("BrightRetrieval", "biology") is DATASET_PROMPTS["BrightRetrieval"]
    assert dataset_prompt("SciFact") is DATASET_PROMPTS["SciFact"]
    assert dataset_prompt("NevIR") is None
    assert resolve_prompt("BrightRetrieval_biology") is DATASET_PROMPTS["BrightRetrieval"]
    assert resolve_prompt("BrightRetrieval_pony") is DATASET_PROMPTS["BrightRetrieval_pony"]


def test_dataset_prompt_fills_the_query():
    composed = compose_query("vitamin C cures colds", prompt="SciFact")
    assert composed.startswith("Claim: vitamin C cures colds\n\nA relevant")
    assert compose_query("covid origin", prompt="TRECCOVID") == (
        "covid origin If the article answers any part of the question it is relevant."
    )


def test_custom_prompt_must_hold_the_placeholder():
    assert compose_query("x", prompt="Look for FILL_QUERY_HERE please") == "Look for x please"
    with pytest.raises(RequestError, match=r"^prompt: a custom prompt must contain FILL_QUERY_HERE"):
        resolve_prompt("Find passages about the query")


def test_unknown_prompt_name_is_refused_with_the_known_names():
    with pytest.raises(RequestError, match=r"^prompt: unknown dataset prompt 'MSMARCO'.*SciFact") as err:
        resolve_prompt("MSMARCO")
    assert err.value.field == "prompt"


def test_instruction_is_appended_unless_equal_to_the_query():
    assert compose_query("cats", "only pets") == "cats only pets"
    assert compose_query(" cats ", " cats") == "cats"
    assert compose_query("cats", "") == "cats"
    assert compose_query("cats ", None) == "cats "


def test_instruction_goes_inside_the_dataset_prompt():
    expected = "q be strict Find a passage that would be a good answer from StackExchange."
    assert compose_query("q", "be strict", "FiQA2018") == expected


def test_passages_as_strings_or_title_text():
    assert passage_from("plain").render() == "plain"
    assert passage_from({"title": "T", "text": "body"}).render() == "T body"
    assert passage_from({"text": "body"}).render() == "body"
    assert Passage("x", "").render() == " x"
    with pytest.raises(RequestError, match=r"^documents: .*'text'"):
        passage_from({"title": "no text"})
