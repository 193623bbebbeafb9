"""The ``rank1`` command-line tool: ``rerank``, ``rerank-run``, ``evaluate`` and ``health``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

from . import __version__
from ._client import Rank1Client
from ._constants import (
    DEFAULT_API_KEY_NAME,
    DEFAULT_CHUNK_SIZE,
    DEFAULT_HEALTH_TIMEOUT,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MODEL_NAME,
    DEFAULT_TIMEOUT,
    DEFAULT_URL,
)
from ._files import InputDocument, ResumableRun, read_corpus, read_documents, read_queries, read_run
from ._protocol import TRUNCATE_MODES, render_document
from .errors import Rank1Error
from .types import Document, RerankResponse

REASONING_WIDTH = 100
TEXT_WIDTH = 60


def _header(text: str) -> tuple[str, str]:
    name, separator, value = text.partition("=")
    if not separator or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), value


def _connection_options() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("connection")
    group.add_argument("--url", default=os.environ.get("RANK1_URL", DEFAULT_URL),
                       help="gRPC endpoint host:port (env RANK1_URL; default %(default)s)")
    group.add_argument("--ssl", action="store_true", help="use TLS (implied by the certificate options)")
    group.add_argument("--root-cert", type=Path, help="PEM file of the CA that signed the server's certificate")
    group.add_argument("--client-cert", type=Path, help="PEM client certificate, for mutual TLS")
    group.add_argument("--client-key", type=Path, help="PEM key of --client-cert")
    group.add_argument("--api-key", default=os.environ.get("RANK1_API_KEY"),
                       help="key of the server's restricted protocols (env RANK1_API_KEY)")
    group.add_argument("--api-key-name", default=DEFAULT_API_KEY_NAME,
                       help="<key> of --grpc-restricted-protocol; sent as triton-grpc-protocol-<key> "
                            "(default %(default)s)")
    group.add_argument("--header", action="append", default=[], metavar="NAME=VALUE", type=_header,
                       help="extra gRPC metadata on every call, e.g. for a gateway (repeatable)")
    group.add_argument("--timeout", type=float,
                       help=f"deadline of each request in seconds (default {DEFAULT_TIMEOUT:g}; "
                            f"health: {DEFAULT_HEALTH_TIMEOUT:g} for the whole check)")
    group.add_argument("--max-retries", type=int, default=DEFAULT_MAX_RETRIES,
                       help="retries after transient failures (default %(default)s)")
    group.add_argument("--model", default=DEFAULT_MODEL_NAME, help="entry model name (default %(default)s)")
    return parser


def _scoring_options(budget: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("scoring")
    if budget:
        group.add_argument("--max-reasoning-tokens", type=int, help="thinking budget per document (server default)")
    group.add_argument("--instruction", help="relevance instruction appended to the query")
    group.add_argument("--prompt", help="dataset prompt name, or a custom prompt containing FILL_QUERY_HERE")
    group.add_argument("--rethink", type=int, help="times the model is asked to think again after answering")
    group.add_argument("--truncate", choices=TRUNCATE_MODES,
                       help="END cuts over-long passages (server default), NONE refuses them")
    group.add_argument("--priority", type=int, help="Triton request priority (1 = highest; default: the model's)")
    group.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE,
                       help="documents per request (at most the server's max_documents; default %(default)s)")
    group.add_argument("--concurrency", type=int, default=DEFAULT_MAX_CONCURRENCY,
                       help="requests in flight (default %(default)s)")
    return parser


def _scoring(args: argparse.Namespace) -> dict:
    """The rerank keywords of the scoring options that were given."""
    names = ("instruction", "prompt", "rethink", "truncate", "priority", "max_reasoning_tokens")
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``rank1``."""
    parser = argparse.ArgumentParser(prog="rank1", description="Rerank with a Rank1 server (Triton, gRPC).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__} (rank1-client)")
    commands = parser.add_subparsers(dest="command", required=True)
    connection, scoring = _connection_options(), _scoring_options()

    rerank = commands.add_parser("rerank", parents=[connection, scoring], help="rerank documents for one query")
    rerank.add_argument("--query", required=True)
    rerank.add_argument("--documents", required=True, type=Path,
                        help="JSON lines: a string, or an object with 'text' and optional 'title' and 'id'")
    rerank.add_argument("--top-n", type=int, help="show only the best N")
    rerank.add_argument("--reasoning", action="store_true", help="ask for and show the model's reasoning")
    rerank.add_argument("--json", action="store_true", help="print JSON instead of a table")

    run = commands.add_parser("rerank-run", parents=[connection, scoring],
                              help="rerank the top-k documents of each query of a first-stage run")
    run.add_argument("--queries", required=True, type=Path, help='JSON lines {"_id", "text"} (BEIR layout)')
    run.add_argument("--corpus", required=True, type=Path, help='JSON lines {"_id", "title"?, "text"} (BEIR layout)')
    run.add_argument("--run", required=True, type=Path,
                     help="first-stage run: TREC lines 'qid Q0 docid rank score tag' or JSON {qid: {docid: score}}")
    run.add_argument("--top-k", type=int, default=100, help="documents reranked per query (default %(default)s)")
    run.add_argument("--out", required=True, type=Path, help="output TREC run; resumed if it exists")
    run.add_argument("--tag", default="rank1", help="run tag of the output (default %(default)s)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--skip-failed", action="store_true",
                     help="skip queries the server refuses or that fail, log them, and finish the run")
    run.add_argument("--failures", type=Path,
                     help="where --skip-failed logs failed queries, JSON lines (default: <out>.failures.jsonl)")

    evaluate = commands.add_parser(
        "evaluate", parents=[connection, _scoring_options(budget=False)],
        help="rerank a first-stage run and measure it against relevance judgments (nDCG@10, MAP, recall, MRR)",
        description="Rerank the top-k of a first-stage run at one or several reasoning budgets and measure each "
                    "run with ir-measures (pip install 'rank1-client[evaluate]'). Scored pairs are cached in the "
                    "report folder: rerunning an interrupted evaluation continues where it stopped.")
    evaluate.add_argument("--run", type=Path, help="first-stage run: TREC or JSON {qid: {docid: score}}")
    evaluate.add_argument("--qrels", type=Path, help="relevance judgments: TREC qrels or BEIR qrels TSV")
    evaluate.add_argument("--queries", type=Path, help="queries: BEIR JSON lines or TSV id<TAB>text")
    evaluate.add_argument("--corpus", type=Path,
                          help="corpus: BEIR JSON lines, or TSV id<TAB>text / id<TAB>title<TAB>text")
    evaluate.add_argument("--dataset", help="an ir_datasets id (e.g. msmarco-passage/trec-dl-2019/judged) instead of "
                                            "the files (needs ir_datasets and internet access); files given replace "
                                            "its parts")
    evaluate.add_argument("--top-k", type=int, default=100, help="documents reranked per query (default %(default)s)")
    evaluate.add_argument("--budgets", nargs="+", type=_budget, default=[None], metavar="TOKENS",
                          help="reasoning budgets (max_reasoning_tokens) to sweep; 'default' for the server's")
    evaluate.add_argument("--out", required=True, type=Path, help="report folder")
    evaluate.add_argument("--cache", type=Path, help="scored-pair cache (default: <out>/cache.sqlite)")
    evaluate.add_argument("--model-id", help="names the served model in the cache keys (default: --model); give "
                                             "each checkpoint or quantization its own")
    evaluate.add_argument("--skip-failed", action="store_true",
                          help="finish even if queries fail (they keep their first-stage order)")
    evaluate.add_argument("--no-plots", action="store_true", help="do not draw the PNG plots")
    evaluate.add_argument("--no-progress", action="store_true", help="no progress bar")

    commands.add_parser("health", parents=[connection], help="check that the server and the model are ready")
    return parser


def _budget(text: str) -> int | None:
    if text.lower() in ("default", "none"):
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of tokens or 'default', got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"a budget must be at least 1, got {value}")
    return value


def _client(args: argparse.Namespace) -> Rank1Client:
    optional = {"chunk_size": args.chunk_size, "max_concurrency": args.concurrency} if "chunk_size" in args else {}
    if args.timeout is not None:
        optional["timeout"] = args.timeout
    return Rank1Client(
        args.url, ssl=args.ssl, root_certificates=args.root_cert, client_certificate=args.client_cert,
        client_key=args.client_key, api_key=args.api_key, api_key_name=args.api_key_name, headers=dict(args.header),
        max_retries=args.max_retries, model_name=args.model, **optional,
    )


def _first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0][:REASONING_WIDTH] if lines else ""


def _label(item: InputDocument, index: int) -> str:
    return item.id if item.id is not None else f"#{index}"


def _table(response: RerankResponse, documents: Sequence[InputDocument], reasoning: bool) -> str:
    last = "reasoning" if reasoning else "text"
    rows = [("rank", "score", "doc", "tokens", last)]
    for rank, result in enumerate(response.results, 1):
        item = documents[result.index]
        text = render_document(item.document, result.index)
        detail = _first_line(result.reasoning) if reasoning else " ".join(text.split())[:TEXT_WIDTH]
        tokens = f"{result.reasoning_tokens}{'*' if result.forced else ''}"
        rows.append((str(rank), f"{result.score:.4f}", _label(item, result.index), tokens, detail))
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    lines = [
        "  ".join([row[0].rjust(widths[0]), row[1].ljust(widths[1]), row[2].ljust(widths[2]),
                   row[3].rjust(widths[3]), row[4]]).rstrip()
        for row in rows
    ]
    usage = response.usage
    lines.append(f"{usage.documents} documents scored, {usage.reasoning_tokens} reasoning tokens"
                 " (* = budget ran out, answer forced)")
    return "\n".join(lines)


def _json(response: RerankResponse, documents: Sequence[InputDocument]) -> str:
    results = []
    for rank, result in enumerate(response.results, 1):
        record = {"rank": rank, "id": documents[result.index].id, **asdict(result)}
        record.pop("document")
        if record["reasoning"] is None:
            record.pop("reasoning")
        results.append(record)
    return json.dumps({"results": results, "usage": asdict(response.usage)}, ensure_ascii=False, indent=2)


def _rerank(args: argparse.Namespace) -> int:
    documents = read_documents(args.documents)
    with _client(args) as client:
        response = client.rerank(
            args.query, [item.document for item in documents], top_n=args.top_n, return_reasoning=args.reasoning,
            **_scoring(args),
        )
    print(_json(response, documents) if args.json else _table(response, documents, args.reasoning))
    return 0


def _candidates(run: dict[str, list[str]], queries: dict[str, str],
                corpus: dict[str, Document]) -> tuple[dict[str, list[str]], int, int]:
    """Each query's run documents found in the corpus, and how many queries and documents were skipped."""
    with_text = {qid: docids for qid, docids in run.items() if qid in queries}
    found = {qid: [docid for docid in docids if docid in corpus] for qid, docids in with_text.items()}
    skipped_documents = sum(len(docids) - len(found[qid]) for qid, docids in with_text.items())
    return {qid: docids for qid, docids in found.items() if docids}, len(run) - len(with_text), skipped_documents


def _failure_record(qid: str, error: Rank1Error) -> str:
    record = {"qid": qid, "error": str(error), "type": type(error).__name__, "status": error.status,
              "field": getattr(error, "field", None), "request_id": error.request_id}
    return json.dumps(record, ensure_ascii=False) + "\n"


def _rerank_run(args: argparse.Namespace) -> int:
    run = read_run(args.run, args.top_k)
    queries = read_queries(args.queries)
    corpus = read_corpus(args.corpus, {docid for docids in run.values() for docid in docids})
    candidates, skipped_queries, skipped_documents = _candidates(run, queries, corpus)
    if skipped_queries or skipped_documents:
        print(f"rank1: skipping {skipped_queries} run queries without query text and {skipped_documents} "
              "documents missing from the corpus", file=sys.stderr)
    failures_path = args.failures or args.out.with_name(args.out.name + ".failures.jsonl")
    failed: list[str] = []
    with ResumableRun(args.out, {qid: len(docids) for qid, docids in candidates.items()}) as output, \
            _client(args) as client:
        todo = [qid for qid in candidates if qid not in output.complete]
        dropped = f"; dropped {output.dropped_lines} lines of unfinished queries" if output.dropped_lines else ""
        print(f"rank1: {len(candidates)} queries, {len(output.complete)} already in {args.out}, "
              f"{len(todo)} to rerank{dropped}", file=sys.stderr)
        pairs = ((queries[qid], [corpus[docid] for docid in candidates[qid]]) for qid in todo)
        failures = failures_path.open("w", encoding="utf-8") if args.skip_failed else None
        try:
            with tqdm(total=len(candidates), initial=len(output.complete), unit="query",
                      disable=args.no_progress) as bar:
                for position, outcome in client.rerank_as_completed(
                    pairs, return_exceptions=args.skip_failed, **_scoring(args),
                ):
                    qid = todo[position]
                    if isinstance(outcome, Rank1Error):
                        assert failures is not None
                        failures.write(_failure_record(qid, outcome))
                        failures.flush()
                        failed.append(qid)
                        print(f"rank1: query {qid} failed, skipped: {outcome}", file=sys.stderr)
                    else:
                        output.write(qid, [(candidates[qid][r.index], r.score) for r in outcome.results], args.tag)
                    bar.update()
        except Rank1Error as error:
            qid = todo[error.position] if error.position is not None and error.position < len(todo) else None
            where = f" (query {qid})" if qid is not None else ""
            print(f"rank1: the run stopped{where}; finished queries are kept in {args.out}. Rerun to resume, or "
                  "add --skip-failed to skip failing queries", file=sys.stderr)
            raise
        finally:
            if failures is not None:
                failures.close()
    if failed:
        print(f"rank1: {len(failed)} queries failed and were skipped (logged in {failures_path}); rerunning "
              "retries them", file=sys.stderr)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from .evaluate import EvaluationFailed, evaluate, load_collection

    collection = load_collection(run=args.run, qrels=args.qrels, queries=args.queries, corpus=args.corpus,
                                 dataset=args.dataset, top_k=args.top_k)
    options = {name: getattr(args, name) for name in ("instruction", "prompt", "rethink", "truncate", "priority")}
    with _client(args) as client:
        try:
            report = evaluate(
                client, collection, budgets=args.budgets, top_k=args.top_k, model_id=args.model_id,
                cache=args.cache, out_dir=args.out, skip_failed=args.skip_failed, progress=not args.no_progress,
                plots=not args.no_plots, **options,
            )
        except EvaluationFailed as error:
            print(f"rank1: error: {error}\nrank1: the pairs scored so far are cached; rerun to retry the failed "
                  "queries, or add --skip-failed", file=sys.stderr)
            return 1
    print(report.table())
    print(f"rank1: report in {args.out} ({', '.join(sorted(path.name for path in report.files.values()))})",
          file=sys.stderr)
    return 0


def _health(args: argparse.Namespace) -> int:
    with _client(args) as client:
        health = client.health(timeout=args.timeout)
    for name, value in (("live", health.live), ("ready", health.ready), (f"model {args.model} ready",
                                                                            health.model_ready)):
        print(f"{name}: {'yes' if value else 'no'}")
    return 0 if health.ready and health.model_ready else 1


COMMANDS = {"rerank": _rerank, "rerank-run": _rerank_run, "evaluate": _evaluate, "health": _health}


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``rank1``; returns the exit status: 0 ok, 1 a server or connection error (or not ready), 2 bad input
    (files, options, or a request the server refused as invalid)."""
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ImportError as error:  # an optional dependency (the evaluate extra, ir_datasets)
        print(f"rank1: error: {error}", file=sys.stderr)
        return 2
    except (ValueError, OSError) as error:  # input files, options, and requests the server refused as invalid
        print(f"rank1: error: {error}", file=sys.stderr)
        return 2
    except Rank1Error as error:
        print(f"rank1: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
