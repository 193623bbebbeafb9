"""Files of the ``rank1`` tool: documents, queries and corpus (JSON lines), run files, and a resumable output run."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .types import Document

ID_KEYS = ("_id", "id", "docid", "qid")


class InputFileError(ValueError):
    """An input file could not be read; the message names the file and line."""


def _json_lines(path: Path) -> Iterator[tuple[int, Any]]:
    try:
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if line.strip():
                    try:
                        yield number, json.loads(line)
                    except json.JSONDecodeError as error:
                        raise InputFileError(f"{path}:{number}: not valid JSON ({error.msg})") from None
    except OSError as error:
        raise InputFileError(f"{path}: {error.strerror or error}") from None


def _record_id(record: Mapping[str, Any]) -> str | None:
    for key in ID_KEYS:
        if key in record:
            return str(record[key])
    return None


def _document(record: Mapping[str, Any]) -> Document:
    """``{"title", "text"}`` with the title only when given (a title, even empty, is scored as "title text")."""
    title = record.get("title")
    return {"text": record["text"]} if title is None else {"title": str(title), "text": record["text"]}


@dataclass(frozen=True)
class InputDocument:
    """A document from a file: its id (when the file gives one) and the document to score."""

    id: str | None
    document: Document


def read_documents(path: Path) -> list[InputDocument]:
    """Documents, one JSON value a line: a string, or an object with ``text``, optional ``title`` and ``id``."""
    documents = []
    for number, record in _json_lines(path):
        if isinstance(record, str):
            documents.append(InputDocument(None, record))
        elif isinstance(record, dict) and isinstance(record.get("text"), str):
            documents.append(InputDocument(_record_id(record), _document(record)))
        else:
            raise InputFileError(f"{path}:{number}: expected a string or an object with a 'text' string")
    return documents


def read_queries(path: Path) -> dict[str, str]:
    """Queries by id from JSON lines ``{"_id" | "id" | "qid": ..., "text" | "query": ...}`` (BEIR layout)."""
    queries = {}
    for number, record in _json_lines(path):
        qid = _record_id(record) if isinstance(record, dict) else None
        text = record.get("text", record.get("query")) if isinstance(record, dict) else None
        if qid is None or not isinstance(text, str):
            raise InputFileError(f"{path}:{number}: expected an object with an id ('_id' or 'id') and 'text'")
        queries[qid] = text
    return queries


def read_corpus(path: Path, wanted: set[str]) -> dict[str, Document]:
    """The ``wanted`` documents of a JSON-lines corpus ``{"_id": ..., "title"?: ..., "text": ...}`` (BEIR layout).

    Only the wanted documents are kept, so a corpus of millions of passages does not fill memory.
    """
    corpus: dict[str, Document] = {}
    for number, record in _json_lines(path):
        docid = _record_id(record) if isinstance(record, dict) else None
        if docid is None or not isinstance(record.get("text"), str):
            raise InputFileError(f"{path}:{number}: expected an object with an id ('_id' or 'id') and 'text'")
        if docid in wanted:
            corpus[docid] = _document(record)
    return corpus


def _trec_run(path: Path) -> Iterator[tuple[str, str, float]]:
    try:
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                fields = line.split()
                if not fields:
                    continue
                try:
                    qid, _q0, docid, _rank, score = fields[:5]
                    yield qid, docid, float(score)
                except ValueError:
                    raise InputFileError(f"{path}:{number}: expected 'qid Q0 docid rank score tag'") from None
    except OSError as error:
        raise InputFileError(f"{path}: {error.strerror or error}") from None


def _json_run(path: Path) -> Iterator[tuple[str, str, float]]:
    try:
        run = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise InputFileError(f"{path}: not a readable JSON run ({error})") from None
    if not isinstance(run, dict) or not all(isinstance(scores, dict) for scores in run.values()):
        raise InputFileError(f"{path}: expected a JSON object {{qid: {{docid: score}}}}")
    for qid, scores in run.items():
        for docid, score in scores.items():
            yield str(qid), str(docid), float(score)


def read_scored_run(path: Path, top_k: int | None = None) -> dict[str, list[tuple[str, float]]]:
    """The ``top_k`` best ``(docid, score)`` of each query of a first-stage run, best first, queries in file order.

    Accepts a TREC run (``qid Q0 docid rank score tag`` lines) or Rank1's JSON run ``{qid: {docid: score}}``;
    ties keep the file's order, a document listed twice for a query keeps its best score.
    """
    try:
        with path.open(encoding="utf-8") as file:
            is_json = file.read(64).lstrip().startswith("{")
    except OSError as error:
        raise InputFileError(f"{path}: {error.strerror or error}") from None
    candidates: dict[str, dict[str, float]] = {}
    for qid, docid, score in (_json_run(path) if is_json else _trec_run(path)):
        scores = candidates.setdefault(qid, {})
        scores[docid] = max(score, scores.get(docid, score))  # a document listed twice counts once
    return {
        qid: sorted(scores.items(), key=lambda item: -item[1])[:top_k]
        for qid, scores in candidates.items()
    }


def read_run(path: Path, top_k: int) -> dict[str, list[str]]:
    """The ``top_k`` best documents of each query of a first-stage run (see :func:`read_scored_run`)."""
    return {qid: [docid for docid, _ in ranked] for qid, ranked in read_scored_run(path, top_k).items()}


def trec_lines(qid: str, ranked: Iterable[tuple[str, float]], tag: str) -> str:
    """TREC run lines ``qid Q0 docid rank score tag`` for documents given best first."""
    return "".join(f"{qid} Q0 {docid} {rank} {score:.8f} {tag}\n" for rank, (docid, score) in enumerate(ranked, 1))


class ResumableRun:
    """An output run file that keeps every finished query across crashes.

    Each query's lines are written at once, then flushed and fsynced. Opening an existing file keeps only the
    queries that are complete (as many well-formed lines as expected), so a query cut short by a crash is
    removed and redone.
    """

    def __init__(self, path: Path, expected: Mapping[str, int]) -> None:
        self.path = path
        self.complete: set[str] = set()
        self.dropped_lines = 0
        if path.exists():
            self._keep_complete(expected)
        self._file = path.open("a", encoding="utf-8")

    def _keep_complete(self, expected: Mapping[str, int]) -> None:
        lines: dict[str, list[str]] = {}
        total = 0
        with self.path.open(encoding="utf-8", errors="replace") as existing:
            for line in existing:
                total += 1
                fields = line.split()
                if line.endswith("\n") and len(fields) == 6 and fields[1] == "Q0":
                    lines.setdefault(fields[0], []).append(line)
        self.complete = {qid for qid, found in lines.items() if len(found) == expected.get(qid)}
        kept = [line for qid in lines if qid in self.complete for line in lines[qid]]
        self.dropped_lines = total - len(kept)
        if self.dropped_lines:
            temporary = self.path.with_name(self.path.name + ".tmp")
            temporary.write_text("".join(kept), encoding="utf-8")
            os.replace(temporary, self.path)

    def write(self, qid: str, ranked: Iterable[tuple[str, float]], tag: str) -> None:
        """Append one finished query and make it durable."""
        self._file.write(trec_lines(qid, ranked, tag))
        self._file.flush()
        os.fsync(self._file.fileno())
        self.complete.add(qid)

    def close(self) -> None:
        """Close the file."""
        self._file.close()

    def __enter__(self) -> ResumableRun:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
