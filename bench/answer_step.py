"""When the one-token answer requests go out: per round (after every document's thinking) vs per document.

On TensorRT-LLM the natural answer is a second request over prompt + reasoning, cheap only while the KV blocks
of that document's thinking are still cached; so the entry model sends each document's answer as soon as its
own thinking ends (``Rank1Reranker.ascore``) instead of after the slowest document of the round
(``Rank1Reranker.score_steps``, the former behaviour). This measures what that costs on the CPU engine, where
there is no KV reuse: one server whose engine model behaves as TensorRT-LLM's (no fused answer step), and the
same reranker logic driven both ways from here, each engine request a gRPC call to ``tensorrt_llm`` (the hop the
entry model makes over BLS). Runs alternate so load changes hit both; the ratio is of medians from one run.

    python bench/answer_step.py                     # toy model, 8 and 32 documents, budget 32
    python bench/answer_step.py --docs 8 --repeats 3
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Sequence

import tritonclient.grpc.aio as grpcclient_aio
from common import ENGINE_MODEL, MODELS, machine_line, triton_server
from transformers import AutoTokenizer

from rank1_triton.contract import ENGINE_OUTPUTS, names
from rank1_triton.engines.base import EngineCapabilities, GenerationRequest, GenerationResult
from rank1_triton.engines.tensors import parse_result, request_tensors
from rank1_triton.fixtures.toy_task import make_ranking_queries
from rank1_triton.launch.values import TorchServingOptions
from rank1_triton.reranker import DocumentScore, Rank1Reranker, ScoringOptions
from rank1_triton.tokenization import Rank1Tokenizer

# The engine model's own context; the reranker only reads the capabilities from its engine.
CONTEXT_TOKENS = 4096


class GrpcEngine:
    """The engine model over gRPC, one call per generation request (what BLS does inside Triton)."""

    def __init__(self, client: grpcclient_aio.InferenceServerClient) -> None:
        self._client = client
        self.capabilities = EngineCapabilities(fused_answer_step=False, max_context_tokens=CONTEXT_TOKENS)

    async def generate_one(self, request: GenerationRequest) -> GenerationResult:
        inputs = []
        for name, value in request_tensors(request).items():
            tensor = grpcclient_aio.InferInput(name, list(value.shape), "BOOL" if value.dtype == bool else "INT32")
            tensor.set_data_from_numpy(value)
            inputs.append(tensor)
        output_ids, sequence_length, generation_logits = names(ENGINE_OUTPUTS)  # no fused answer step here
        wanted = [output_ids, sequence_length, *([generation_logits] if request.return_generation_logits else [])]
        result = await self._client.infer(ENGINE_MODEL, inputs,
                                          outputs=[grpcclient_aio.InferRequestedOutput(name) for name in wanted])
        return parse_result({name: result.as_numpy(name) for name in wanted})

    async def generate_round(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        return list(await asyncio.gather(*(self.generate_one(r) for r in requests)))


async def per_round(reranker: Rank1Reranker, engine: GrpcEngine, prompts, options) -> list[DocumentScore]:
    """The former schedule: each round's requests together; answers wait for the slowest thinking."""
    steps = reranker.score_steps(prompts, options)
    requests = next(steps)
    while True:
        try:
            requests = steps.send(await engine.generate_round(requests))
        except StopIteration as done:
            return done.value


async def per_document(reranker: Rank1Reranker, engine: GrpcEngine, prompts, options) -> list[DocumentScore]:
    """The entry model's schedule: each document's answer as soon as its thinking ends."""
    return await reranker.ascore(prompts, options, engine.generate_one)


SCHEDULES = {"per round": per_round, "per document": per_document}


async def measure(url: str, tokenizer: Rank1Tokenizer, docs: int, budget: int,
                  repeats: int) -> dict[str, list[float]]:
    query, passages, _ = make_ranking_queries(1, docs, seed=5)[0]
    options = ScoringOptions(max_reasoning_tokens=budget)
    times: dict[str, list[float]] = {name: [] for name in SCHEDULES}
    async with grpcclient_aio.InferenceServerClient(url) as client:
        engine = GrpcEngine(client)
        reranker = Rank1Reranker(engine, tokenizer)
        prompts = reranker.encode(query, passages, options=options)
        reference = None
        for repeat in range(repeats + 1):  # the first pass warms up and is not counted
            names = list(SCHEDULES) if repeat % 2 else list(reversed(SCHEDULES))
            for name in names:
                started = time.perf_counter()
                scores = await SCHEDULES[name](reranker, engine, prompts, options)
                elapsed = time.perf_counter() - started
                reference = reference or [s.score for s in scores]
                # Batches differ between runs (padding), so scores agree to float noise, not bit for bit.
                drift = max(abs(s.score - r) for s, r in zip(scores, reference, strict=True))
                assert drift < 1e-5, f"the schedules disagree by {drift}"
                if repeat:
                    times[name].append(elapsed)
    return times


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(MODELS), default="toy")
    parser.add_argument("--docs", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--budget", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    model_dir = MODELS[args.model]()
    tokenizer = Rank1Tokenizer(AutoTokenizer.from_pretrained(model_dir))
    options = TorchServingOptions(fused_answer_step=False, max_context_tokens=CONTEXT_TOKENS)
    print(machine_line())
    print(f"model {args.model}, budget {args.budget}, engine model without fused answer step (TensorRT-LLM mode)")
    rows = []
    with triton_server(model_dir, options) as server:
        for docs in args.docs:
            times = asyncio.run(measure(server.grpc_url, tokenizer, docs, args.budget, args.repeats))
            rounds, documents = (statistics.median(times[name]) for name in SCHEDULES)
            rows.append(f"| {docs} | {rounds:.3f} | {documents:.3f} | {documents / rounds:.3f} |")
    print("| documents | per round (s, median) | per document (s, median) | per document / per round |")
    print("|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
