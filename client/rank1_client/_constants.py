"""Every default of the client in one place."""

from __future__ import annotations

DEFAULT_URL = "localhost:8001"
"""gRPC endpoint (``host:port``) of a local Triton server."""

DEFAULT_MODEL_NAME = "rank1"
"""The entry model of the Rank1 repository."""

DEFAULT_TIMEOUT = 600.0
"""Seconds one request to the server may take (the gRPC deadline); each retry gets a fresh one."""

DEFAULT_HEALTH_TIMEOUT = 10.0
"""Seconds a health or readiness check may take."""

DEFAULT_MAX_RETRIES = 3
"""Retries of one request after a transient failure (queue full, server draining, connection refused)."""

INITIAL_RETRY_DELAY = 0.5
"""Seconds before the first retry; doubles with every further retry."""

MAX_RETRY_DELAY = 8.0
"""Upper bound of the delay between two retries, in seconds."""

RETRY_JITTER = 0.5
"""Each delay is shortened by a random fraction in ``[0, RETRY_JITTER)`` so that clients do not retry in step."""

DEFAULT_CHUNK_SIZE = 16
"""Documents per request; longer lists are split. Must not exceed the server's ``max_documents`` (default 256)."""

DEFAULT_MAX_CONCURRENCY = 8
"""Requests one client call keeps in flight at once (chunks of one query and queries of ``rerank_many``)."""

DEFAULT_API_KEY_NAME = "rank1-api-key"
"""The ``<key>`` of the server's ``--grpc-restricted-protocol=<protocols>:<key>=<value>`` (the Helm chart's default)."""

RESTRICTED_PROTOCOL_HEADER_PREFIX = "triton-grpc-protocol-"
"""Triton expects a restricted protocol's key in the gRPC metadata ``triton-grpc-protocol-<key>``."""

MAX_GRPC_MESSAGE_BYTES = 2**31 - 1
"""Send and receive limit of the gRPC channel (tritonclient's own default)."""
