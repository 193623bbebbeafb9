"""rank1-triton: serving the Rank1 reasoning reranker (arXiv 2502.18418).

The library holds the Rank1 algorithm (prompts, safe tokenization, scoring rules), the token-level
engines it runs on, and the tooling that assembles and serves a Triton model repository.
"""

__version__ = "0.1.0"
