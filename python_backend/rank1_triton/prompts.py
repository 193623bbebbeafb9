"""Rank1's prompt template and the official dataset prompts.

The dataset prompts are the table of ``prompts.py`` in github.com/orionw/rank1 (commit 30585c2, MIT licence),
reproduced verbatim (whitespace included) because Rank1's published numbers depend on them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .errors import RequestError

QUERY_PLACEHOLDER = "FILL_QUERY_HERE"
THINK_START = "<think>"
THINK_END = "</think>"
RETHINK_TEXT = "\nWait"

# The official prompt; {query} and {passage} are the only fields, and the template ends with THINK_START.
PROMPT_TEMPLATE = (
    "Determine if the following passage is relevant to the query. "
    "Answer only with 'true' or 'false'.\n"
    "Query: {query}\nPassage: {passage}\n" + THINK_START
)

_OFFICIAL_PROMPTS = {
    'SciFact': 'Claim: FILL_QUERY_HERE\n\nA relevant passage would provide evidence that either **supports** or **refutes** this claim. A passage with any information on any related subpart should be relevant.',
    'ClimateFEVER': 'I am looking to write an essay for and need to find evidence the supports or contradict this statement:\n\nFILL_QUERY_HERE\n\nIf the passage provides information that supports or contradicts it in any way it is relevant so I can cite it.\n\n',
    'TRECCOVID': 'FILL_QUERY_HERE If the article answers any part of the question it is relevant.',
    'ArguAna': 'I am looking to write an essay and need to find counterarguments against this statement:\n\nFILL_QUERY_HERE\n\nDoes this passage have any counterargument or evidence that could be used to help me?\n\n',
    'DBPedia': 'I am looking to write an essay on this topic and need as much related background information to help me. The topic is:\n\nFILL_QUERY_HERE\n\nIf the passage provides any background information that could be connected it is relevant.\n\n',
    'FiQA2018': 'FILL_QUERY_HERE Find a passage that would be a good answer from StackExchange.',
    'NFCorpus': 'Topic: FILL_QUERY_HERE\n\nGiven the above topic, I need to learn about all aspects of it. It does not need to be directly relevant, only tangentially informational. Please mark as relevant any passages with even weak connections. I need to learn fast for my job, which means I need to understand each part individually.\n\nAgain remember, any connection means relevant even if indirect. So if it is not addressed, that is okay -- it does not need to be explicitly. \n\nFind me passages with any type of connection, including weak connections!!!!',
    'Touche2020': 'I am looking to write an essay and need to find arguments for or against this statement:\n\nFILL_QUERY_HERE\n\nDoes this passage have any argument or evidence that could be used to help me?\n\n',
    'SCIDOCS': 'papers that could be cited in FILL_QUERY_HERE. Anything with even indirect relevance should be relevant. This includes papers in the same broader field of science',
    'BrightRetrieval_aops': 'Find different but similar math problems to FILL_QUERY_HERE\n\nA document is relevant if it uses the same class of functions and shares **any** overlapping techniques.',
    'BrightRetrieval_theoremqa_questions': 'Find a passage which uses the same mathematical process as this one: FILL_QUERY_HERE',
    'BrightRetrieval_leetcode': 'I am looking to find different problems that share similar data structures (of any kind) or algorithms (e.g. DFS, DP, sorting, traversals, etc.). I am looking for problems that share one or both of these similarities to this:\n    \nFILL_QUERY_HERE\n\nDoes this passage share any similarities? e.g. if there was a textbook on leetcode problems, this would be in the same book even though it could be in a different chapter. \n\n\n',
    'BrightRetrieval_pony': 'I will use the programming language pony. Problem: FILL_QUERY_HERE\n\nBut to solve the problem above, I need to know things about pony. A passage is relevant if it contains docs that match **any** part (even basic parts) of the code I will have to write for the above program.',
    'BrightRetrieval': 'Can you find background information about the concepts used to answer the question:\n\nFILL_QUERY_HERE\n\nA passage is relevant if it contains background information about a **sub-concept** that someone might cite/link to when answering the above question.',
}
# The official table reuses the theoremqa_questions prompt for theoremqa_theorems.
DATASET_PROMPTS: Mapping[str, str] = {
    **_OFFICIAL_PROMPTS,
    "BrightRetrieval_theoremqa_theorems": _OFFICIAL_PROMPTS["BrightRetrieval_theoremqa_questions"],
}


def template_pieces() -> tuple[str, str, str]:
    """The template text before the query, between query and passage, and after the passage."""
    head, rest = PROMPT_TEMPLATE.split("{query}")
    middle, tail = rest.split("{passage}")
    return head, middle, tail


def dataset_prompt(task: str, subtask: str | None = None) -> str | None:
    """The official prompt for ``task`` (and ``subtask``): ``task_subtask`` first, then ``task``; None if neither."""
    if subtask is not None and f"{task}_{subtask}" in DATASET_PROMPTS:
        return DATASET_PROMPTS[f"{task}_{subtask}"]
    return DATASET_PROMPTS.get(task)


def resolve_prompt(prompt: str | None) -> str | None:
    """Turn a request's ``prompt`` into a template containing FILL_QUERY_HERE (or None for the raw query).

    Accepts a dataset name from the official table (``SciFact``, ``BrightRetrieval_aops``, and
    ``Task_subtask`` names that fall back to ``Task``, e.g. ``BrightRetrieval_biology``) or a custom
    prompt string that contains FILL_QUERY_HERE.
    """
    if prompt is None or prompt == "":
        return None
    if QUERY_PLACEHOLDER in prompt:
        return prompt
    task, _, subtask = prompt.partition("_")
    template = dataset_prompt(task, subtask or None)
    if template is not None:
        return template
    if any(ch.isspace() for ch in prompt.strip()):
        raise RequestError("prompt", f"a custom prompt must contain {QUERY_PLACEHOLDER}")
    known = ", ".join(sorted(DATASET_PROMPTS))
    raise RequestError(
        "prompt",
        f"unknown dataset prompt {prompt!r}; use one of {known}, "
        f"or a custom prompt containing {QUERY_PLACEHOLDER}",
    )


def compose_query(query: str, instruction: str | None = None, prompt: str | None = None) -> str:
    """The text that fills ``Query:`` — instruction appended, then the dataset/custom prompt applied."""
    if instruction is not None:
        query = f"{query} {instruction}".strip() if query.strip() != instruction.strip() else query.strip()
    template = resolve_prompt(prompt)
    return template.replace(QUERY_PLACEHOLDER, query) if template else query


@dataclass(frozen=True)
class Passage:
    """A passage given as a string or as ``{title, text}``."""

    text: str
    title: str | None = None

    def render(self) -> str:
        """``f"{title} {text}"`` when a title is given, else the text (as the official code does)."""
        return f"{self.title} {self.text}" if self.title is not None else self.text


def passage_from(document: str | Mapping[str, str]) -> Passage:
    """Accept a plain string or a mapping with ``text`` and optional ``title``."""
    if isinstance(document, str):
        return Passage(document)
    if "text" not in document:
        raise RequestError("documents", "a document given as an object needs a 'text' field")
    title = document.get("title")
    return Passage(str(document["text"]), None if title is None else str(title))


def render_prompt(query_text: str, passage_text: str) -> str:
    """The full Rank1 prompt, ending with ``<think>`` (the text that ``tokenization.prompt_segments`` splits)."""
    head, middle, tail = template_pieces()
    return head + query_text + middle + passage_text + tail
