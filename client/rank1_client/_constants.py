"""Every default of the client in one place."""

from __future__ import annotations

DEFAULT_URL = "localhost:8001"
"""gRPC endpoint (``host:port``) of a local Triton server."""

DEFAULT_MODEL_NAME = "rank1"
"""The entry model of the Rank1 repository."""

DEFAULT_TIMEOUT = 600.0
"""Seconds one request to the server may take (the gRPC deadline); each retry gets a fresh one."""

DEFAULT_DEADLINE: float | None = None
"""Seconds a whole call (every chunk and retry) may take; ``None``: no bound beyond the per-request ``timeout``."""

DEFAULT_HEALTH_TIMEOUT = 10.0
"""Seconds a whole health or readiness check may take (its three calls together)."""

READINESS_CHECK_TIMEOUT = 2.0
"""Seconds the server's readiness check may take after a ``NOT_FOUND`` "unknown model" answer."""

UNKNOWN_MODEL_RETRIES = 2
"""Retries after "unknown model" when the server's readiness could not be read to tell a typo from a draining server."""

DEFAULT_MAX_RETRIES = 3
"""Retries of one request after a transient failure (queue full, rate-limited, draining, connection refused)."""

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

SUBCHANNEL_POOL_OPTION = ("grpc.use_local_subchannel_pool", 1)
"""Each channel gets its own connections, so a new channel (after a connection failure) really reconnects instead
of reusing the process-wide pool's connection to the same (draining) pod."""
