"""Scored pairs on disk, so that an interrupted evaluation continues where it stopped.

A pair is keyed by what determines its score: the model (``model_id``), the scoring options (budget, instruction,
prompt, rethink, truncate) and the exact query and passage text. SQLite commits each finished query at once; a
killed run loses at most the queries in flight.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """CREATE TABLE IF NOT EXISTS pairs (
    key TEXT PRIMARY KEY, score REAL NOT NULL, reasoning_tokens INTEGER NOT NULL, forced INTEGER NOT NULL,
    truncated INTEGER NOT NULL)"""


@dataclass(frozen=True)
class PairScore:
    """What the server returned for one (query, passage) pair."""

    score: float
    reasoning_tokens: int
    forced: bool
    truncated: bool


def pair_key(model_id: str, options: Mapping[str, Any], query: str, passage: str) -> str:
    """The cache key of one pair: a SHA-256 over the model, the options and both texts."""
    material = json.dumps([model_id, dict(sorted(options.items())), query, passage], ensure_ascii=False)
    return hashlib.sha256(material.encode("utf-8", errors="surrogatepass")).hexdigest()


class PairCache:
    """A SQLite file of scored pairs (``path=None``: in memory, nothing kept)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(":memory:" if path is None else str(path))
        if path is not None:
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(SCHEMA)
        self._db.commit()

    def get_many(self, keys: Iterable[str]) -> dict[str, PairScore]:
        """The cached pairs among ``keys``."""
        found: dict[str, PairScore] = {}
        wanted = list(dict.fromkeys(keys))
        for start in range(0, len(wanted), 500):
            batch = wanted[start:start + 500]
            rows = self._db.execute(
                f"SELECT key, score, reasoning_tokens, forced, truncated FROM pairs WHERE key IN "
                f"({','.join('?' * len(batch))})", batch)
            for key, score, tokens, forced, truncated in rows:
                found[key] = PairScore(score, tokens, bool(forced), bool(truncated))
        return found

    def put_many(self, pairs: Mapping[str, PairScore]) -> None:
        """Store pairs and make them durable (one transaction)."""
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO pairs VALUES (?, ?, ?, ?, ?)",
                [(key, p.score, p.reasoning_tokens, int(p.forced), int(p.truncated)) for key, p in pairs.items()])

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM pairs").fetchone()[0])

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> PairCache:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
