"""``python -m rank1_build``: build, quantize, compare, serve, tables.

Exit status: 0 done (gate passed), 1 a command or the quality gate failed, 2 refused (the message says why).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from rank1_triton.contract import (
    DEFAULT_MAX_CONTEXT_TOKENS,
    DEFAULT_MAX_REASONING_TOKENS,
    ENTRY_MODEL_NAME,
    TORCH_DTYPES,
)
from rank1_triton.launch.launcher import Ports

from .configs import SCHEDULER_POLICIES, ServingOptions
from .errors import BuildRefusal
from .formats import FORMATS, KVCache, Quant
from .pins import CONTAINER_BACKEND_ROOT, CONTAINER_EXAMPLES_DIR, TRTLLM_VERSION
from .plan import CALIB_SIZE, BuildRequest, Calibration, OutputLayout, Quantizer
from .sizing import DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_NUM_TOKENS, EngineShape
from .validate import check_format, check_tensor_parallel, detect_compute_capability, validate

EXIT_OK, EXIT_FAILED, EXIT_REFUSED = 0, 1, 2
ENGINE_TRTLLM, ENGINE_TORCH = "tensorrt-llm", "torch"
ENGINES = (ENGINE_TRTLLM, ENGINE_TORCH)
QUANT_NONE = "none"
TORCH_QUANTS = (QUANT_NONE, Quant.BF16.value)
# The Helm chart's default modelRepository.mountPath (deploy/helm/rank1-triton/values.yaml).
DEFAULT_SERVE_ROOT = "/models"


def _add_build(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "build", help=f"Rank1 checkpoint -> TensorRT-LLM {TRTLLM_VERSION} engine (or the PyTorch engine) -> one "
                      "folder the Helm chart serves",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--model", required=True, help="checkpoint directory or hub id (jhu-clsp/rank1-7b)")
    parser.add_argument("--engine", choices=ENGINES, default=ENGINE_TRTLLM,
                        help="tensorrt-llm: engines for NVIDIA's C++ backend (GPU); torch: the PyTorch engine "
                             "(CPU or CUDA, no quantization)")
    parser.add_argument("--quant", choices=[*(q.value for q in Quant), QUANT_NONE],
                        help="weight format (tensorrt-llm: required; torch: bf16 or none)")
    parser.add_argument("--kv-cache", choices=[kv.value for kv in KVCache],
                        help="quantized KV cache (default: fp8 with --quant fp8, else bf16)")
    parser.add_argument("--tp-size", type=int, default=1, help="tensor-parallel GPUs (launch world_size)")
    parser.add_argument("--gpu-cc", type=float, help="compute capability of the serving GPU (default: nvidia-smi)")
    parser.add_argument("--output", type=Path, required=True,
                        help="the build folder: build.json, engine/, tokenizer/, repository/")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, write build.json, run nothing")
    parser.add_argument("--serve-root", type=Path, default=Path(DEFAULT_SERVE_ROOT),
                        help="where --output is mounted when served: the Helm chart's modelRepository.mountPath "
                             "(KServe: /mnt/models); the configs name SERVE_ROOT/engine and SERVE_ROOT/tokenizer")
    group = parser.add_argument_group("checkpoint (tensorrt-llm)")
    group.add_argument("--quantizer", choices=[q.value for q in Quantizer], default=Quantizer.NVIDIA.value)
    group.add_argument("--calib-dataset", help="calibration dataset for NVIDIA's scripts (--calib_dataset)")
    group.add_argument("--calib-texts", type=Path, help="JSONL of Rank1 texts for --quantizer modelopt")
    group.add_argument("--calib-size", type=int, help=f"calibration samples (default {CALIB_SIZE})")
    group.add_argument("--trtllm-examples", default=CONTAINER_EXAMPLES_DIR, help="TensorRT-LLM examples folder")
    group.add_argument("--trtllm-backend-root", default=CONTAINER_BACKEND_ROOT,
                       help="TensorRT-LLM backend root: all_models/inflight_batcher_llm/tensorrt_llm/config.pbtxt "
                            "and tools/fill_template.py")
    group.add_argument("--quantize-python", default="python3", help="python of the quantization environment")
    group = parser.add_argument_group("engine limits")
    group.add_argument("--max-context-tokens", type=int, default=DEFAULT_MAX_CONTEXT_TOKENS,
                       help="prompt + reasoning + answer of one judgment (trtllm-build --max_seq_len)")
    group.add_argument("--max-reasoning-tokens", type=int, default=DEFAULT_MAX_REASONING_TOKENS,
                       help="largest reasoning budget (the entry model's default budget)")
    group.add_argument("--max-batch-size", type=int, default=DEFAULT_MAX_BATCH_SIZE)
    group.add_argument("--max-num-tokens", type=int, default=DEFAULT_MAX_NUM_TOKENS)
    group = parser.add_argument_group("serving")
    defaults = ServingOptions()
    group.add_argument("--max-documents", type=int, default=defaults.max_documents)
    group.add_argument("--rank1-instances", type=int, help=f"default {defaults.rank1_instance_count} "
                                                           "(torch: rank1_triton's default)")
    group.add_argument("--scheduler-policy", choices=SCHEDULER_POLICIES,
                       help=f"tensorrt-llm (default {defaults.batch_scheduler_policy})")
    group.add_argument("--kv-cache-free-gpu-mem-fraction", type=float,
                       help=f"tensorrt-llm (default {defaults.kv_cache_free_gpu_mem_fraction})")
    group.add_argument("--no-kv-cache-reuse", action="store_true",
                       help="tensorrt-llm: build a format whose engine loses paged context FMHA (INT8 KV cache, "
                            "FP8 KV cache without FP8 weights); every answer step then prefills again")
    group.add_argument("--max-queue-size", type=int, default=defaults.max_queue_size)
    group.add_argument("--max-queue-delay-us", type=int,
                       help=f"tensorrt-llm (default {defaults.max_queue_delay_microseconds}; the PyTorch engine's "
                            "in-flight scheduler has no batching delay)")
    group.add_argument("--queue-timeout-us", type=int, default=0,
                       help="refused: NVIDIA's template has no queue timeout, the in-flight scheduler no batcher")
    group = parser.add_argument_group("PyTorch engine (--engine torch)")
    group.add_argument("--device", choices=["cpu", "cuda"], help="default cpu")
    group.add_argument("--dtype", choices=TORCH_DTYPES, help="default float32 (bfloat16 with --quant bf16)")
    group.add_argument("--num-threads", type=int, help="CPU threads of the engine model")


def _add_quantize(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("quantize", help="ModelOpt: Hugging Face checkpoint -> TensorRT-LLM checkpoint")
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--qformat", required=True, choices=[q.value for q in FORMATS if FORMATS[q].calibrated])
    parser.add_argument("--kv-cache", choices=[kv.value for kv in KVCache])
    parser.add_argument("--tp-size", type=int, default=1)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--calib-texts", type=Path, help="JSONL with a 'text' field per line")
    source.add_argument("--calib-random-tokens", action="store_true", help="random ids: tiny test models only")
    parser.add_argument("--calib-size", type=int)
    parser.add_argument("--calib-max-length", type=int, default=512)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")


def _add_compare(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("compare", help="quality gate: one dev set through two served repositories")
    parser.add_argument("--baseline", required=True, help="gRPC host:port of the reference server (e.g. BF16)")
    parser.add_argument("--candidate", required=True, help="gRPC host:port of the server under test (e.g. FP8)")
    parser.add_argument("--dev-set", type=Path, required=True, help="JSONL: query_id, query, documents, relevance")
    parser.add_argument("--model-name", default=ENTRY_MODEL_NAME)
    parser.add_argument("--min-spearman", type=float, default=0.90)
    parser.add_argument("--min-top10-overlap", type=float, default=0.80)
    parser.add_argument("--max-ndcg10-drop", type=float, default=0.02)
    parser.add_argument("--timeout", type=float, help="seconds per request")
    parser.add_argument("--report", type=Path, help="write the full report as JSON")


def _add_serve(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="serve a build folder (the container's default command)")
    parser.add_argument("engine_folder", type=Path, help="the --output folder of build, where it is mounted")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/rank1-serve"),
                        help="where the repository is moved to when the folder is not mounted at its serve_root")
    ports = Ports()
    parser.add_argument("--http-port", type=int, default=ports.http)
    parser.add_argument("--grpc-port", type=int, default=ports.grpc)
    parser.add_argument("--metrics-port", type=int, default=ports.metrics)
    parser.add_argument("--dry-run", action="store_true", help="prepare the repository, print the command")


def parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    top = argparse.ArgumentParser(prog="python -m rank1_build", description=__doc__)
    subparsers = top.add_subparsers(dest="command", required=True)
    _add_build(subparsers)
    _add_quantize(subparsers)
    _add_compare(subparsers)
    _add_serve(subparsers)
    subparsers.add_parser("tables", help="print the format and memory tables of docs/engines.md")
    return top


def _given(value: object, default: object) -> object:
    return default if value is None else value


def _refuse_given(args: argparse.Namespace, names: dict[str, object], why: str) -> None:
    for name, unset in names.items():
        if getattr(args, name) != unset:
            raise BuildRefusal(f"--{name.replace('_', '-')}: {why}")


def _serve_root(args: argparse.Namespace) -> Path:
    from .engine_config import check_value

    if not args.serve_root.is_absolute():
        raise BuildRefusal(f"--serve-root {args.serve_root}: must be an absolute path (the mount point)")
    check_value("--serve-root", str(args.serve_root))
    return args.serve_root


def _build(args: argparse.Namespace) -> int:
    if args.engine == ENGINE_TORCH:
        return _build_torch(args)
    return _build_trtllm(args)


def _build_trtllm(args: argparse.Namespace) -> int:
    from .model import inspect_model
    from .runner import preflight_container, preflight_spec, resolve_model, run_build

    _refuse_given(args, {"device": None, "dtype": None, "num_threads": None}, "an option of --engine torch")
    if args.quant is None:
        raise BuildRefusal(f"--engine {ENGINE_TRTLLM} needs --quant ({', '.join(q.value for q in Quant)})")
    if args.quant == QUANT_NONE:
        raise BuildRefusal("--quant none is for --engine torch; an unquantized TensorRT-LLM engine is --quant bf16")
    quant = Quant(args.quant)
    kv_cache = KVCache(args.kv_cache) if args.kv_cache else FORMATS[quant].default_kv_cache
    compute_capability = args.gpu_cc if args.gpu_cc is not None else detect_compute_capability()
    if compute_capability is None:
        raise BuildRefusal("no NVIDIA GPU visible to nvidia-smi: pass --gpu-cc of the serving GPU (9.0 for H100)")
    shape = EngineShape(args.max_context_tokens, args.max_reasoning_tokens, args.max_batch_size, args.max_num_tokens)
    defaults = ServingOptions()
    try:
        options = ServingOptions(
            max_documents=args.max_documents,
            rank1_instance_count=_given(args.rank1_instances, defaults.rank1_instance_count),
            max_queue_size=args.max_queue_size,
            max_queue_delay_microseconds=_given(args.max_queue_delay_us, defaults.max_queue_delay_microseconds),
            batch_scheduler_policy=_given(args.scheduler_policy, defaults.batch_scheduler_policy),
            kv_cache_free_gpu_mem_fraction=_given(args.kv_cache_free_gpu_mem_fraction,
                                                  defaults.kv_cache_free_gpu_mem_fraction),
            enable_kv_cache_reuse=not args.no_kv_cache_reuse,
        )
    except ValueError as error:
        raise BuildRefusal(str(error)) from None
    if args.queue_timeout_us:
        raise BuildRefusal("--queue-timeout-us: NVIDIA's tensorrt_llm template sets no queue timeout "
                           "(dynamic_batching has only max_queue_delay_microseconds and max_queue_size); omit it")
    serve_root = _serve_root(args)
    layout = OutputLayout(args.output.resolve())
    reuse = not args.no_kv_cache_reuse
    local = Path(args.model).is_dir()
    early = inspect_model(Path(args.model)) if local else preflight_spec(args.model)
    if early is not None:
        validate(early, quant, kv_cache, args.tp_size, compute_capability, shape, kv_cache_reuse=reuse)
    template_keys = None
    if not args.dry_run:
        examples = args.trtllm_examples if Quantizer(args.quantizer) is Quantizer.NVIDIA else None
        template_keys = preflight_container(examples, args.trtllm_backend_root)
    spec, model_dir, download = resolve_model(args.model, layout, dry_run=args.dry_run, echo=print)
    for warning in validate(spec, quant, kv_cache, args.tp_size, compute_capability, shape, kv_cache_reuse=reuse):
        print(f"warning: {warning}", file=sys.stderr)
    request = BuildRequest(
        spec=spec, model_dir=model_dir.resolve(), quant=quant, kv_cache=kv_cache, tp_size=args.tp_size,
        shape=shape, layout=layout, quantizer=Quantizer(args.quantizer),
        calibration=Calibration(args.calib_dataset, args.calib_texts.resolve() if args.calib_texts else None,
                                args.calib_size),
        examples_dir=args.trtllm_examples, quantize_python=args.quantize_python,
        backend_root=args.trtllm_backend_root,
    )
    run_build(request, options, model=args.model, compute_capability=compute_capability, serve_root=serve_root,
              download=download, dry_run=args.dry_run, template_keys=template_keys)
    return EXIT_OK


def _build_torch(args: argparse.Namespace) -> int:
    from rank1_triton.launch.values import TorchServingOptions

    from .runner import run_torch_build

    why = f"an option of --engine {ENGINE_TRTLLM}; --engine torch serves the checkpoint as it is"
    _refuse_given(args, {"kv_cache": None, "tp_size": 1, "gpu_cc": None, "quantizer": Quantizer.NVIDIA.value,
                         "calib_dataset": None, "calib_texts": None, "calib_size": None, "scheduler_policy": None,
                         "kv_cache_free_gpu_mem_fraction": None, "no_kv_cache_reuse": False}, why)
    quant = args.quant or QUANT_NONE
    if quant not in TORCH_QUANTS:
        raise BuildRefusal(f"--quant {quant}: --engine torch runs the Hugging Face checkpoint unquantized (--quant "
                           f"bf16 or none); quantized formats need --engine {ENGINE_TRTLLM} on a GPU")
    dtype = args.dtype or ("bfloat16" if quant == Quant.BF16.value else "float32")
    if quant == Quant.BF16.value and dtype != "bfloat16":
        raise BuildRefusal(f"--quant bf16 --dtype {dtype}: pick one (--quant bf16 means --dtype bfloat16)")
    defaults = TorchServingOptions()
    try:
        options = TorchServingOptions(
            dtype=dtype, device=_given(args.device, defaults.device),
            num_threads=_given(args.num_threads, defaults.num_threads),
            entry_instances=_given(args.rank1_instances, defaults.entry_instances), max_batch_size=args.max_batch_size,
            max_queue_size=args.max_queue_size,
            max_queue_delay_microseconds=_given(args.max_queue_delay_us, defaults.max_queue_delay_microseconds),
            queue_timeout_microseconds=args.queue_timeout_us, max_documents=args.max_documents,
            default_max_reasoning_tokens=args.max_reasoning_tokens, max_context_tokens=args.max_context_tokens,
        )
    except (TypeError, ValueError) as error:
        raise BuildRefusal(str(error)) from None
    if min(options.max_batch_size, options.max_documents, options.entry_instances, options.num_threads) < 1:
        raise BuildRefusal("--max-batch-size, --max-documents, --rank1-instances and --num-threads must be 1 or more")
    if min(options.max_queue_size, options.max_queue_delay_microseconds, options.queue_timeout_microseconds) < 0:
        raise BuildRefusal("--max-queue-size, --max-queue-delay-us and --queue-timeout-us must be 0 or more")
    run_torch_build(args.model, OutputLayout(args.output.resolve()), options, serve_root=_serve_root(args),
                    quant=quant, dry_run=args.dry_run)
    return EXIT_OK


def _quantize(args: argparse.Namespace) -> int:
    from .model import inspect_model
    from .quantize import CalibrationSource, quantize_checkpoint

    quant = Quant(args.qformat)
    kv_cache = KVCache(args.kv_cache) if args.kv_cache else FORMATS[quant].default_kv_cache
    spec = inspect_model(args.model)
    check_format(spec, quant, kv_cache)
    check_tensor_parallel(spec, quant, args.tp_size)
    source = CalibrationSource(args.calib_texts, args.calib_size or CALIB_SIZE[quant], args.calib_max_length)
    summary = quantize_checkpoint(args.model, args.output, quant, kv_cache, tp_size=args.tp_size,
                                  calibration=source, device=args.device)
    print(json.dumps(summary))
    return EXIT_OK


def _compare(args: argparse.Namespace) -> int:
    from tritonclient.utils import InferenceServerException

    from .gate import Thresholds, load_dev_set, run_gate

    thresholds = Thresholds(args.min_spearman, args.min_top10_overlap, args.max_ndcg10_drop)
    try:
        dev = load_dev_set(args.dev_set)
    except (OSError, ValueError) as error:
        raise BuildRefusal(f"--dev-set: {error}") from None
    try:
        report = run_gate(args.baseline, args.candidate, dev, thresholds, model_name=args.model_name,
                          timeout_s=args.timeout)
    except InferenceServerException as error:
        print(f"failed: {error}", file=sys.stderr)
        return EXIT_FAILED
    if args.report:
        args.report.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    ndcg = "n/a (no relevance labels)" if report.ndcg10_delta is None else f"{report.ndcg10_delta:+.4f}"
    print(f"queries {len(report.queries)}  Spearman {report.mean_spearman:.4f}  "
          f"top-10 overlap {report.mean_top10_overlap:.4f}  nDCG@10 delta {ndcg}")
    for failure in report.failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    return EXIT_OK if report.passed else EXIT_FAILED


def _serve(args: argparse.Namespace) -> int:
    from .serve import serve

    serve(args.engine_folder, args.workdir, ports=Ports(args.http_port, args.grpc_port, args.metrics_port),
          dry_run=args.dry_run)
    return EXIT_OK


def _tables(_: argparse.Namespace) -> int:
    from .tables import render_tables

    print(render_tables(), end="")
    return EXIT_OK


_COMMANDS = {"build": _build, "quantize": _quantize, "compare": _compare, "serve": _serve, "tables": _tables}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return the exit status."""
    args = parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except BuildRefusal as refusal:
        print(f"refused: {refusal}", file=sys.stderr)
        return EXIT_REFUSED
    except subprocess.CalledProcessError as error:
        print(f"failed: {' '.join(map(str, error.cmd))} exited with {error.returncode}", file=sys.stderr)
        return EXIT_FAILED
