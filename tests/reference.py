"""A plain per-pair implementation of the official Rank1 semantics, independent of the library's engine.

It works on strings like the official code: the prompt is one string tokenized whole, thinking is a
greedy loop recomputing the full sequence each step (no KV cache, no batching, no padding), thinking ends
when the decoded text ends with ``</think>``, at end-of-sequence, or when the budget is spent; the forced
answer re-tokenizes ``prompt + "\\n" + trimmed + "\\n</think>"``; rethink cuts at ``</think>`` and appends
``"\\nWait"``. Only for tests: it is slow by design.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

TEMPLATE = (
    "Determine if the following passage is relevant to the query. Answer only with 'true' or 'false'.\n"
    "Query: {query}\nPassage: {passage}\n<think>"
)


@dataclass
class ReferenceScore:
    score: float
    reasoning: str
    reasoning_tokens: int
    forced: bool


def reference_prompt(
    query: str, passage: str, instruction: str | None = None, dataset_prompt: str | None = None
) -> str:
    if instruction is not None:
        query = f"{query} {instruction}".strip() if query.strip() != instruction.strip() else query.strip()
    if dataset_prompt is not None:
        query = dataset_prompt.replace("FILL_QUERY_HERE", query)
    return TEMPLATE.format(query=query, passage=passage)


def _last_logits(model, tokenizer, ids: list[int]) -> torch.Tensor:
    with torch.inference_mode():
        return model(torch.tensor([ids]), logits_to_keep=1).logits[0, -1].float()


def _score(model, tokenizer, ids: list[int]) -> float:
    true_id = tokenizer(" true", add_special_tokens=False).input_ids[0]
    false_id = tokenizer(" false", add_special_tokens=False).input_ids[0]
    logits = _last_logits(model, tokenizer, ids)
    lt, lf = float(logits[true_id]), float(logits[false_id])
    return math.exp(lt) / (math.exp(lt) + math.exp(lf))


def _think(model, tokenizer, prompt_text: str, budget: int) -> tuple[list[int], list[int], bool]:
    """Greedy thinking; returns (prompt ids, generated ids without EOS, whether it ended with </think>)."""
    ids = tokenizer(prompt_text).input_ids
    generated: list[int] = []
    for _ in range(budget):
        next_id = int(_last_logits(model, tokenizer, ids + generated).argmax())
        if next_id == tokenizer.eos_token_id:
            return ids, generated, False
        generated.append(next_id)
        if tokenizer.decode(generated, skip_special_tokens=False).endswith("</think>"):
            return ids, generated, True
    return ids, generated, False


def reference_score(model, tokenizer, prompt_text: str, budget: int, rethink: int = 0) -> ReferenceScore:
    """Score one prompt the official way (with the documented fixes)."""
    current_prompt, tokens, reasoning_so_far = prompt_text, 0, ""
    for round_index in range(rethink + 1):
        prompt_ids, generated, natural = _think(model, tokenizer, current_prompt, budget)
        tokens += len(generated)
        text = tokenizer.decode(generated, skip_special_tokens=False)
        if natural:
            score = _score(model, tokenizer, prompt_ids + generated)
            full = current_prompt + text
        else:
            trimmed = text.rstrip()
            if not trimmed.endswith((".", "!", "?")):
                last = max(trimmed.rfind("."), trimmed.rfind("!"), trimmed.rfind("?"))
                if last != -1:
                    trimmed = trimmed[: last + 1]
            full = f"{current_prompt}\n{trimmed.strip()}\n</think>"
            score = _score(model, tokenizer, tokenizer(full).input_ids)
        reasoning_so_far = full[len(prompt_text):]
        if round_index < rethink:
            current_prompt = full[: -len("</think>")] + "\nWait"
    return ReferenceScore(score, reasoning_so_far, tokens, not natural)
