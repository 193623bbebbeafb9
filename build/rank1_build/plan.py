"""Command planning: the exact command lines of a Rank1 engine build, as argv lists.

The commands follow TensorRT-LLM 1.2.1's documented recipes (docs/engines.md lists the sources):
``examples/models/core/{qwen,llama}/convert_checkpoint.py`` for BF16, INT8 weight-only, INT8 SmoothQuant and the
INT8 KV cache; ``examples/quantization/quantize.py`` (NVIDIA ModelOpt) for FP8 and INT4 AWQ; ``trtllm-build``
(``tensorrt_llm/commands/build.py`` + ``tensorrt_llm/plugin/plugin.py``) for the engine; NVIDIA's
``triton_backend/tools/fill_template.py`` over NVIDIA's ``tensorrt_llm/config.pbtxt`` template for the engine model's
config (:mod:`rank1_build.engine_config`); and ``triton_backend/scripts/launch_triton_server.py`` for serving with
``--world_size``.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from rank1_triton.contract import ENGINE_MODEL_NAME

from .errors import BuildRefusal
from .formats import AWQ_GROUP_SIZE, FORMATS, KVCache, Quant
from .model import ModelSpec
from .pins import CONTAINER_BACKEND_ROOT, CONTAINER_EXAMPLES_DIR, CONTAINER_LAUNCH_SCRIPT
from .sizing import TOKENS_PER_BLOCK, EngineShape
from .validate import architecture_support

# Rank1 checkpoints are bfloat16; FP16 risks overflow in Qwen2.5 activations and changes the scores.
DTYPE = "bfloat16"
SMOOTHQUANT_ALPHA = "0.5"
# Calibration sample counts of the Qwen/Llama READMEs (FP8 and SmoothQuant 512, AWQ 32).
CALIB_SIZE: dict[Quant, int] = {Quant.FP8: 512, Quant.INT8_SQ: 512, Quant.INT4_AWQ: 32}
_QUANTIZE_PY_QFORMAT = {Quant.FP8: "fp8", Quant.INT4_AWQ: "int4_awq"}


class Quantizer(str, Enum):
    """Who writes the TensorRT-LLM checkpoint of a calibrated format."""

    NVIDIA = "nvidia"  # NVIDIA's example scripts inside the Triton TensorRT-LLM container
    MODELOPT = "modelopt"  # rank1_build.quantize: ModelOpt directly, calibrated on Rank1 text you provide


@dataclass(frozen=True)
class Step:
    """One command of the build."""

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)

    def shell(self) -> str:
        """The command as one shell line (environment assignments first)."""
        assignments = [f"{key}={shlex.quote(value)}" for key, value in self.env.items()]
        return " ".join([*assignments, shlex.join(self.argv)])


@dataclass(frozen=True)
class OutputLayout:
    """Where a build writes its artefacts under ``--output``."""

    root: Path

    @property
    def hf_dir(self) -> Path:
        """The downloaded Hugging Face checkpoint (when --model is a hub id)."""
        return self.root / "hf"

    @property
    def checkpoint(self) -> Path:
        """The TensorRT-LLM checkpoint (config.json + rank<N>.safetensors)."""
        return self.root / "checkpoint"

    @property
    def engine(self) -> Path:
        """The TensorRT engines (config.json + rank<N>.engine)."""
        return self.root / "engine"

    @property
    def tokenizer(self) -> Path:
        """The tokenizer files the entry model loads."""
        return self.root / "tokenizer"

    @property
    def repository(self) -> Path:
        """The assembled Triton model repository."""
        return self.root / "repository"

    @property
    def engine_config(self) -> Path:
        """The engine model's config: NVIDIA's template, filled in place by fill_template.py."""
        return self.repository / ENGINE_MODEL_NAME / "config.pbtxt"

    @property
    def manifest(self) -> Path:
        """build.json: what was built and how to serve it."""
        return self.root / "build.json"

    @property
    def commands(self) -> Path:
        """commands.sh: every command of the build, for inspection or a manual re-run."""
        return self.root / "commands.sh"


@dataclass(frozen=True)
class Calibration:
    """Calibration data: a dataset for NVIDIA's scripts, or a JSONL of Rank1 texts for the ModelOpt quantizer."""

    dataset: str | None = None
    texts: Path | None = None
    size: int | None = None


@dataclass(frozen=True)
class BuildRequest:
    """Everything the plan depends on."""

    spec: ModelSpec
    model_dir: Path
    quant: Quant
    kv_cache: KVCache | None
    tp_size: int
    shape: EngineShape
    layout: OutputLayout
    quantizer: Quantizer = Quantizer.NVIDIA
    calibration: Calibration = Calibration()
    examples_dir: str = CONTAINER_EXAMPLES_DIR
    quantize_python: str = "python3"
    build_package_dir: Path = Path(__file__).resolve().parent.parent
    backend_root: str = CONTAINER_BACKEND_ROOT


def download_step(model_id: str, layout: OutputLayout) -> Step:
    """Fetch a hub checkpoint (``hf`` is huggingface_hub's CLI)."""
    return Step("download", ("hf", "download", model_id, "--local-dir", str(layout.hf_dir)))


def _calibrates(request: BuildRequest) -> bool:
    return FORMATS[request.quant].calibrated or request.kv_cache is not None


def _nvidia_checkpoint_step(request: BuildRequest) -> Step:
    common = ("--model_dir", str(request.model_dir), "--output_dir", str(request.layout.checkpoint),
              "--dtype", DTYPE, "--tp_size", str(request.tp_size))
    dataset = ("--calib_dataset", request.calibration.dataset) if request.calibration.dataset else ()
    if request.quant in _QUANTIZE_PY_QFORMAT:
        size = request.calibration.size or CALIB_SIZE[request.quant]
        argv = ["python3", f"{request.examples_dir}/quantization/quantize.py", *common,
                "--qformat", _QUANTIZE_PY_QFORMAT[request.quant], "--calib_size", str(size)]
        if request.quant is Quant.INT4_AWQ:
            argv += ["--awq_block_size", str(AWQ_GROUP_SIZE)]
        if request.kv_cache is not None:
            argv += ["--kv_cache_dtype", request.kv_cache.value]
        return Step("quantize", (*argv, *dataset))
    script = f"{request.examples_dir}/{architecture_support(request.spec).example_dir}/convert_checkpoint.py"
    argv = ["python3", script, *common]
    if request.quant is Quant.INT8_WO:
        argv += ["--use_weight_only", "--weight_only_precision", "int8"]
    if request.quant is Quant.INT8_SQ:
        argv += ["--smoothquant", SMOOTHQUANT_ALPHA, "--per_token", "--per_channel"]
    if request.kv_cache is KVCache.INT8:
        argv += ["--int8_kv_cache"]
    return Step("convert", (*argv, *(dataset if _calibrates(request) else ())))


def _modelopt_checkpoint_step(request: BuildRequest) -> Step:
    if not FORMATS[request.quant].calibrated:
        raise BuildRefusal(
            f"--quantizer modelopt calibrates fp8, int8-sq and int4-awq; {request.quant.value} needs no "
            "calibration, use --quantizer nvidia (convert_checkpoint.py)"
        )
    if request.calibration.texts is None:
        raise BuildRefusal("--quantizer modelopt needs --calib-texts (a JSONL of Rank1 prompts with reasoning)")
    size = request.calibration.size or CALIB_SIZE[request.quant]
    argv = [request.quantize_python, "-m", "rank1_build", "quantize",
            "--model", str(request.model_dir), "--output", str(request.layout.checkpoint),
            "--qformat", request.quant.value, "--tp-size", str(request.tp_size),
            "--calib-texts", str(request.calibration.texts), "--calib-size", str(size), "--device", "cuda"]
    if request.kv_cache is not None:
        argv += ["--kv-cache", request.kv_cache.value]
    return Step("quantize", tuple(argv), {"PYTHONPATH": str(request.build_package_dir)})


def checkpoint_step(request: BuildRequest) -> Step:
    """Hugging Face checkpoint -> TensorRT-LLM checkpoint (convert, or quantize with calibration)."""
    if request.quantizer is Quantizer.MODELOPT:
        if request.calibration.dataset:
            raise BuildRefusal("--calib-dataset is for NVIDIA's scripts; --quantizer modelopt reads --calib-texts")
        return _modelopt_checkpoint_step(request)
    if request.calibration.texts:
        raise BuildRefusal("--calib-texts is for --quantizer modelopt; NVIDIA's scripts take --calib-dataset")
    return _nvidia_checkpoint_step(request)


def uses_examples(request: BuildRequest) -> str | None:
    """The script of NVIDIA's examples folder the checkpoint step runs, or None (the ModelOpt quantizer)."""
    argv = checkpoint_step(request).argv
    return argv[1] if argv[1].startswith(request.examples_dir) else None


def engine_step(request: BuildRequest) -> Step:
    """TensorRT-LLM checkpoint -> engine, with the flags Rank1's two-phase scoring needs (docs/engines.md).

    No ``--use_fp8_context_fmha``: tensorrt_llm/builder.py build() turns FP8 context FMHA on by itself for an FP8
    KV cache with paged context FMHA on SM 89+ ("FP8 Context FMHA is enabled to support FP8 Paged Context FMHA."),
    so ``disable`` would change nothing.
    """
    shape = request.shape
    argv = [
        "trtllm-build",
        "--checkpoint_dir", str(request.layout.checkpoint),
        "--output_dir", str(request.layout.engine),
        "--max_batch_size", str(shape.max_batch_size),
        "--max_input_len", str(shape.max_input_len),
        "--max_seq_len", str(shape.max_seq_len),
        "--max_num_tokens", str(shape.max_num_tokens),
        "--kv_cache_type", "paged",
        "--tokens_per_block", str(TOKENS_PER_BLOCK),
        "--use_paged_context_fmha", "enable",
        "--multiple_profiles", "enable",
        "--gather_generation_logits",
        "--logits_dtype", "float32",
        "--gemm_plugin", "disable" if request.quant is Quant.FP8 else "auto",
    ]
    return Step("trtllm-build", tuple(argv))


def engine_config_steps(request: BuildRequest, argument: str) -> list[Step]:
    """Copy NVIDIA's template into the repository and fill it in place with NVIDIA's fill_template.py."""
    from .engine_config import fill_template_path, template_path

    config = str(request.layout.engine_config)
    return [
        Step("install-template", ("cp", template_path(request.backend_root), config)),
        Step("fill-template", ("python3", fill_template_path(request.backend_root), "-i", config, argument)),
    ]


def launch_step(tp_size: int, repository: Path) -> Step:
    """Serve the repository with NVIDIA's launcher: one MPI rank (one tritonserver) per TP rank."""
    return Step("launch", ("python3", CONTAINER_LAUNCH_SCRIPT, "--world_size", str(tp_size),
                           "--model_repo", str(repository), "--tensorrt_llm_model_name", ENGINE_MODEL_NAME))


def build_steps(request: BuildRequest) -> list[Step]:
    """The commands that turn a local Hugging Face checkpoint into engines, in order."""
    return [checkpoint_step(request), engine_step(request)]
