"""Every setting of the gateway: one dataclass, filled from command-line flags, each with an environment variable.

A flag wins over its variable, the variable over the default. Secrets are never flags: callers' keys come from
``RANK1_GATEWAY_API_KEYS`` (comma-separated) and/or a file (``--api-keys-file``, one key a line, ``#`` comments);
the gateway's own key for the Rank1 server from ``RANK1_GATEWAY_GRPC_API_KEY`` or ``--grpc-api-key-file``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from rank1_client._constants import (
    DEFAULT_API_KEY_NAME,
    DEFAULT_CHUNK_SIZE,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MODEL_NAME,
    DEFAULT_TIMEOUT,
    DEFAULT_URL,
)

ENV_PREFIX = "RANK1_GATEWAY_"
API_KEYS_ENV = ENV_PREFIX + "API_KEYS"
GRPC_API_KEY_ENV = ENV_PREFIX + "GRPC_API_KEY"
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


@dataclass(frozen=True)
class GatewaySettings:
    """What the gateway listens on, what it accepts, and how it reaches the Rank1 server.

    Attributes:
        host, port: Where the HTTP server listens.
        grpc_url: ``host:port`` of the Rank1 server's gRPC endpoint (in the Helm chart: Triton on localhost).
        grpc_ssl, grpc_root_certificates, grpc_client_certificate, grpc_client_key: TLS to the server, as the
            client's arguments of the same names.
        grpc_api_key, grpc_api_key_name: The server's restricted-protocol key (the client's ``api_key``).
        api_keys: Keys callers must send as ``Authorization: Bearer <key>``; empty: every caller is accepted.
        timeout: Seconds one HTTP request may take end to end (gRPC deadline of each request too); 504 after it.
        grpc_max_retries: Retries of a gRPC request after a transient failure, before answering 429/503.
        chunk_size: Documents per gRPC request (at most the server's ``max_documents``).
        max_concurrency: gRPC requests one HTTP request keeps in flight.
        max_body_bytes: Larger request bodies are refused with 413.
        max_documents: More documents in one request are refused with 400.
        max_text_chars: Longer queries, documents, instructions or prompts are refused with 400.
        max_concurrent_requests: Rerank requests in flight at once; more are refused with 429 (0: no limit).
        retry_after_s: The ``Retry-After`` of 429 and 503 answers.
        served_model_name: The ``model`` named in responses (any ``model`` is accepted in requests).
        tokenizer: ``tokenizer.json`` (or its folder) of the served model, for ``max_tokens_per_doc``.
        health_timeout: Seconds a health check of the server may take.
        log_level: uvicorn's log level.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    grpc_url: str = DEFAULT_URL
    grpc_ssl: bool = False
    grpc_root_certificates: Path | None = None
    grpc_client_certificate: Path | None = None
    grpc_client_key: Path | None = None
    grpc_api_key: str | None = field(default=None, repr=False)
    grpc_api_key_name: str = DEFAULT_API_KEY_NAME
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    timeout: float = DEFAULT_TIMEOUT
    grpc_max_retries: int = 1
    chunk_size: int = DEFAULT_CHUNK_SIZE
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    max_body_bytes: int = 8 * 1024 * 1024
    max_documents: int = 1000
    max_text_chars: int = 100_000
    max_concurrent_requests: int = 128
    retry_after_s: int = 1
    served_model_name: str = DEFAULT_MODEL_NAME
    tokenizer: Path | None = None
    health_timeout: float = 5.0
    log_level: str = "info"

    def __post_init__(self) -> None:
        for name in ("port", "chunk_size", "max_concurrency", "max_body_bytes", "max_documents", "max_text_chars"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("grpc_max_retries", "max_concurrent_requests", "retry_after_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")
        if self.timeout <= 0 or self.health_timeout <= 0:
            raise ValueError("timeout and health_timeout must be positive")
        if self.log_level not in LOG_LEVELS:
            raise ValueError(f"log_level must be one of {', '.join(LOG_LEVELS)}, got {self.log_level!r}")
        if any(not key for key in self.api_keys):
            raise ValueError("api_keys must not contain empty keys")

    def client_arguments(self) -> dict[str, Any]:
        """Keyword arguments of ``AsyncRank1Client`` for the gateway's own connection to the server."""
        return {
            "ssl": self.grpc_ssl,
            "root_certificates": self.grpc_root_certificates,
            "client_certificate": self.grpc_client_certificate,
            "client_key": self.grpc_client_key,
            "api_key": self.grpc_api_key,
            "api_key_name": self.grpc_api_key_name,
            "timeout": self.timeout,
            "max_retries": self.grpc_max_retries,
            "chunk_size": self.chunk_size,
            "max_concurrency": self.max_concurrency,
        }


def read_keys(path: Path) -> list[str]:
    """Keys of a key file: one a line; blank lines and ``#`` comments skipped."""
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {text!r}")


# flag -> (settings field, type, help). Each flag's variable is RANK1_GATEWAY_<FIELD IN UPPER CASE>.
_FLAGS: dict[str, tuple[str, Callable[[str], Any], str]] = {
    "--host": ("host", str, "address to listen on (the chart: 0.0.0.0)"),
    "--port": ("port", int, "HTTP port"),
    "--grpc-url": ("grpc_url", str, "host:port of the Rank1 server's gRPC endpoint"),
    "--grpc-ssl": ("grpc_ssl", _bool, "use TLS to the server (implied by a certificate)"),
    "--grpc-root-certificates": ("grpc_root_certificates", Path, "PEM CA of the server's certificate"),
    "--grpc-client-certificate": ("grpc_client_certificate", Path, "PEM client certificate (mutual TLS)"),
    "--grpc-client-key": ("grpc_client_key", Path, "PEM key of the client certificate"),
    "--grpc-api-key-name": ("grpc_api_key_name", str, "<key> of the server's --grpc-restricted-protocol"),
    "--timeout": ("timeout", float, "seconds a request may take; 504 after that"),
    "--grpc-max-retries": ("grpc_max_retries", int, "gRPC retries after queue-full / unreachable"),
    "--chunk-size": ("chunk_size", int, "documents per gRPC request (<= the server's max_documents)"),
    "--max-concurrency": ("max_concurrency", int, "gRPC requests in flight per HTTP request"),
    "--max-body-bytes": ("max_body_bytes", int, "larger bodies answer 413"),
    "--max-documents": ("max_documents", int, "more documents per request answer 400"),
    "--max-text-chars": ("max_text_chars", int, "longer query/document/instruction/prompt answers 400"),
    "--max-concurrent-requests": ("max_concurrent_requests", int, "rerank requests at once; more answer 429 (0: any)"),
    "--retry-after": ("retry_after_s", int, "Retry-After seconds of 429/503 answers"),
    "--served-model-name": ("served_model_name", str, "model name put in responses"),
    "--tokenizer": ("tokenizer", Path, "tokenizer.json or its folder, for max_tokens_per_doc"),
    "--health-timeout": ("health_timeout", float, "seconds a health check may take"),
    "--log-level": ("log_level", str, "uvicorn log level"),
}


def env_name(field_name: str) -> str:
    """The environment variable of a settings field."""
    return ENV_PREFIX + field_name.upper()


def build_parser() -> argparse.ArgumentParser:
    """The ``rank1-gateway`` command line: one flag per setting, defaults from the environment."""
    defaults = {f.name: f.default for f in fields(GatewaySettings)}
    parser = argparse.ArgumentParser(
        prog="rank1-gateway",
        description="HTTP rerank API (Cohere v1/v2, Jina, TEI, vLLM shapes) in front of a Rank1 Triton server.",
        epilog=f"Caller keys: {API_KEYS_ENV} (comma-separated) and/or --api-keys-file; none: no authentication. "
        f"The server's API key: {GRPC_API_KEY_ENV} or --grpc-api-key-file.",
    )
    for flag, (name, convert, help_text) in _FLAGS.items():
        # Boolean flags work bare (--grpc-ssl) or with a value (--grpc-ssl=false).
        extra: dict[str, Any] = {"nargs": "?", "const": "true"} if convert is _bool else {}
        parser.add_argument(flag, dest=name, default=None, **extra,
                            help=f"{help_text} (env {env_name(name)}, default {defaults[name]})")
    parser.add_argument("--api-keys-file", type=Path, default=None,
                        help=f"file of caller keys, one a line (env {env_name('api_keys_file')})")
    parser.add_argument("--grpc-api-key-file", type=Path, default=None,
                        help=f"file holding the server's API key (env {env_name('grpc_api_key_file')})")
    return parser


def settings_from(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> GatewaySettings:
    """Settings from flags (``argv``) over environment variables (``environ``, default ``os.environ``)."""
    environ = os.environ if environ is None else environ
    args = build_parser().parse_args(argv)
    values: dict[str, Any] = {}
    for flag, (name, convert, _) in _FLAGS.items():
        raw = getattr(args, name)
        if raw is None:
            raw = environ.get(env_name(name))
        if raw is None:
            continue
        try:
            values[name] = convert(raw)
        except ValueError as error:
            raise SystemExit(f"rank1-gateway: {flag} / {env_name(name)}: {error}") from None

    keys = [key.strip() for key in environ.get(API_KEYS_ENV, "").split(",") if key.strip()]
    keys_file = args.api_keys_file or (Path(environ[env_name("api_keys_file")])
                                       if environ.get(env_name("api_keys_file")) else None)
    if keys_file is not None:
        try:
            keys += read_keys(keys_file)
        except OSError as error:
            raise SystemExit(f"rank1-gateway: API keys file: {error}") from None
    values["api_keys"] = tuple(dict.fromkeys(keys))

    grpc_key = environ.get(GRPC_API_KEY_ENV) or None
    grpc_key_file = args.grpc_api_key_file or (Path(environ[env_name("grpc_api_key_file")])
                                               if environ.get(env_name("grpc_api_key_file")) else None)
    if grpc_key_file is not None:
        try:
            grpc_key = grpc_key_file.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise SystemExit(f"rank1-gateway: gRPC API key file: {error}") from None
    values["grpc_api_key"] = grpc_key
    try:
        return GatewaySettings(**values)
    except ValueError as error:
        raise SystemExit(f"rank1-gateway: {error}") from None
