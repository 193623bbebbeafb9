"""Rerank a few passages with a running Rank1 server and print them best first.

    python client/examples/rerank_example.py --url localhost:8001
    python client/examples/rerank_example.py --url rank1.example.com:443 --root-cert ca.pem --api-key "$RANK1_API_KEY"
"""

from __future__ import annotations

import argparse
import os

from rank1_client import Document, Rank1Client, Rank1Error

QUERY = "How do cats keep themselves clean?"
DOCUMENTS: list[Document] = [
    {"title": "Grooming", "text": "Cats spend up to half of their waking hours licking their fur clean."},
    "The Danube flows through ten countries before reaching the Black Sea.",
    {"title": "Cat tongues", "text": "Tiny hooks on a cat's tongue work like a comb that removes dirt and loose hair."},
    "Lentil soup needs about forty minutes of simmering.",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="localhost:8001", help="gRPC endpoint host:port")
    parser.add_argument("--root-cert", help="CA certificate (PEM) for a TLS endpoint")
    parser.add_argument("--api-key", default=os.environ.get("RANK1_API_KEY"), help="API key, if the server wants one")
    parser.add_argument("--max-reasoning-tokens", type=int, default=256, help="thinking budget per passage")
    args = parser.parse_args()

    with Rank1Client(args.url, root_certificates=args.root_cert, api_key=args.api_key) as client:
        try:
            response = client.rerank(QUERY, DOCUMENTS, max_reasoning_tokens=args.max_reasoning_tokens,
                                     return_reasoning=True)
        except Rank1Error as error:
            print(f"reranking failed: {error}")
            return 1

    print(f"query: {QUERY}")
    for rank, result in enumerate(response.results, 1):
        passage = DOCUMENTS[result.index]
        text = passage if isinstance(passage, str) else passage["text"]
        reasoning = (result.reasoning or "").strip().splitlines()
        print(f"{rank}. score={result.score:.3f}  {text}")
        print(f"   reasoning ({result.reasoning_tokens} tokens{', forced' if result.forced else ''}): "
              f"{reasoning[0] if reasoning else ''}")
    print(f"{response.usage.documents} passages, {response.usage.reasoning_tokens} reasoning tokens")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
