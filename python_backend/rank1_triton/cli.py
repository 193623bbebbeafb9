"""``rank1-triton``: serve Rank1 from Triton, or run the quick-start demo."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import tempfile
import time
from pathlib import Path

from .contract import SCHEDULERS, TORCH_DTYPES
from .errors import ModelNotAvailableError, ServerStartError
from .launch.launcher import Ports, TritonServer
from .launch.local import torch_server
from .launch.models import DEFAULT_MODEL, resolve_model
from .launch.values import STATIC_BATCHING_DELAY_US, TorchServingOptions

LOGGER = logging.getLogger("rank1_triton")


def _add_server_arguments(parser: argparse.ArgumentParser) -> None:
    ports = Ports()
    parser.add_argument("--http-port", type=int, default=ports.http)
    parser.add_argument("--grpc-port", type=int, default=ports.grpc)
    parser.add_argument("--metrics-port", type=int, default=ports.metrics)
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="where the assembled repository and the server log go (default: a temp folder)")
    parser.add_argument("--startup-timeout", type=float, default=600.0, help="seconds to wait for readiness")
    parser.add_argument("--triton-arg", action="append", default=[], metavar="FLAG",
                        help="extra tritonserver flag, repeatable (e.g. --triton-arg=--grpc-use-ssl=true)")


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(prog="rank1-triton", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="assemble a repository for a checkpoint and start tritonserver")
    defaults = TorchServingOptions()
    serve.add_argument("--model", default=DEFAULT_MODEL, help="hub id or local checkpoint folder")
    serve.add_argument("--device", choices=["cpu", "cuda"], default=defaults.device)
    serve.add_argument("--dtype", choices=TORCH_DTYPES, default=defaults.dtype)
    serve.add_argument("--threads", type=int, default=defaults.num_threads,
                       help="torch threads of the engine (0: torch's default)")
    serve.add_argument("--entry-instances", type=int, default=defaults.entry_instances,
                       help="rank1 requests served at once")
    serve.add_argument("--max-context-tokens", type=int, default=defaults.max_context_tokens)
    serve.add_argument("--scheduler", choices=SCHEDULERS, default=defaults.scheduler,
                       help="engine batching: in-flight (sequences join between steps) or static")
    serve.add_argument("--max-num-tokens", type=int, default=defaults.max_num_tokens,
                       help="tokens one in-flight engine step feeds through the model (long prefills are chunked)")
    serve.add_argument("--dry-run", action="store_true", help="assemble the repository, print the command, stop")
    _add_server_arguments(serve)

    repository = commands.add_parser("serve-repository", help="serve an already assembled model repository")
    repository.add_argument("--model-repository", type=Path, required=True)
    _add_server_arguments(repository)
    return parser


def _run_until_signal(server: TritonServer, timeout_s: float) -> int:
    stop = {"requested": False}

    def request_stop(signum: int, _frame: object) -> None:
        stop["requested"] = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        server.start(timeout_s)
    except ServerStartError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"rank1 is ready: gRPC {server.grpc_url}, HTTP localhost:{server.ports.http}, metrics {server.metrics_url}")
    print(f"server log: {server.log_path}. Ctrl-C stops it.")
    try:
        while not stop["requested"]:
            if not server.running:
                print(f"error: tritonserver exited; log tail:\n{server.log_tail()}", file=sys.stderr)
                return 1
            time.sleep(0.5)
    finally:
        print("stopping tritonserver ...")
        server.stop()
    return 0


def _serve(args: argparse.Namespace) -> int:
    try:
        model_dir = resolve_model(args.model)
    except ModelNotAvailableError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="rank1-triton-"))
    options = TorchServingOptions(dtype=args.dtype, device=args.device, num_threads=args.threads,
                                  entry_instances=args.entry_instances, max_context_tokens=args.max_context_tokens,
                                  scheduler=args.scheduler, max_num_tokens=args.max_num_tokens,
                                  max_queue_delay_microseconds=STATIC_BATCHING_DELAY_US if args.scheduler == "static"
                                  else 0)
    server = torch_server(model_dir, work_dir, options,
                          ports=Ports(args.http_port, args.grpc_port, args.metrics_port), extra_args=args.triton_arg)
    if args.dry_run:
        print(f"repository: {server.repository}")
        print(" ".join(server.command()))
        return 0
    return _run_until_signal(server, args.startup_timeout)


def _serve_repository(args: argparse.Namespace) -> int:
    if not args.model_repository.is_dir():
        print(f"error: model repository {args.model_repository} does not exist", file=sys.stderr)
        return 2
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="rank1-triton-"))
    server = TritonServer(args.model_repository, work_dir, Ports(args.http_port, args.grpc_port, args.metrics_port),
                          extra_args=args.triton_arg)
    return _run_until_signal(server, args.startup_timeout)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``rank1-triton``."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.command == "serve":
        return _serve(args)
    return _serve_repository(args)


if __name__ == "__main__":
    sys.exit(main())
