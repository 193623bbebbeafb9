"""The ``tensorrt_llm`` model config of a TensorRT-LLM build: NVIDIA's own template, filled with NVIDIA's own tool.

Inside the container the backend ships the template and the filler (tensorrtllm_backend branch r26.05,
``dockerfile/Dockerfile.triton.trt_llm_backend``: ``WORKDIR /app``, ``COPY … triton_backend/all_models all_models``,
``COPY … triton_backend/tools tools``). The build does what NVIDIA documents (tensorrtllm_backend r26.05
``docs/model_config.md`` and ``docs/guided_decoding.md``, "C++ Backend"):

    cp /app/all_models/inflight_batcher_llm/tensorrt_llm/config.pbtxt OUT/repository/tensorrt_llm/config.pbtxt
    python3 /app/tools/fill_template.py -i OUT/repository/tensorrt_llm/config.pbtxt key:value,key:value,...

then checks the result (:func:`finish_config`: no ``${`` left, the keys the backend needs present with the values
given) and appends the two parameters the ``rank1`` entry model reads (:func:`project_parameters`).

:data:`KEYS` is the one list of what the project fills: every ``${key}`` of the r26.05-era template
(``triton_backend/all_models/inflight_batcher_llm/tensorrt_llm/config.pbtxt`` of NVIDIA/TensorRT-LLM), each with
its value rule and the NVIDIA source that reads it. ``MIS`` is ``triton_backend/inflight_batcher_llm/src/
model_instance_state.cc`` and ``MS`` ``…/src/model_state.cc``. Every key gets a value, because a ``${…}`` left in a
non-string field (``max_batch_size``, ``decoupled``, ``data_type``) does not parse, and because
``MIS getGuidedDecodingConfigFromParams()`` reads ``tokenizer_dir``, ``xgrammar_tokenizer_info_path`` and
``guided_decoding_backend`` with ``GetParameter`` outside any ``try``: a config without them fails to load
("Cannot find parameter with name: …", ``MS GetParameter<std::string>``).

The empty value means "the backend's own default" and behaves exactly like NVIDIA's unfilled ``${key}``: the typed
``MS GetParameter<T>`` conversions throw on it (``std::stoi``/``std::stof``/``std::stoull``, "Cannot convert  to a
boolean.", ``utils.cc csvStrToVecInt``'s non-empty check) and the caller's ``catch`` keeps its default; the
string keys test ``.empty()`` (``getGuidedDecodingConfigFromParams``), ``std::filesystem::exists("")``
(``encoder_model_path``; ``lora_prefetch_dir`` in ``peftCacheManager.cpp prefetchLoraWeights``) or split to an
empty list (``MS LoadParameters``: ``gpu_device_ids``, ``participant_ids``).

``fill_template.py`` (``triton_backend/tools/fill_template.py``): its second argument is split on ``,`` and then
each item on ``:``, both honouring a backslash escape (``split()``); ``key, value = …`` accepts exactly one colon;
``assert key in pbtxt.template`` refuses keys the template lacks; ``Template.safe_substitute`` leaves unknown
``${…}``; ``max_queue_size`` and ``max_queue_delay_microseconds`` default to 0.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rank1_triton.contract import FUSED_ANSWER_STEP_PARAMETER, MAX_CONTEXT_PARAMETER
from rank1_triton.launch.repository import PLACEHOLDER_PATTERN

from .configs import ServingOptions
from .errors import BuildRefusal
from .pins import ENGINE_TEMPLATE, FILL_TEMPLATE
from .sizing import EngineShape

TEMPLATE_SOURCE = "NVIDIA/TensorRT-LLM triton_backend/all_models/inflight_batcher_llm/tensorrt_llm/config.pbtxt"
MIS = "model_instance_state.cc"
MS = "model_state.cc"
UNSET = ""
CPP_BACKEND = "tensorrtllm"
LOGITS_DATATYPE = "TYPE_FP32"
# Characters fill_template.py's argument cannot carry as we write it (no escapes), or that break the pbtxt string.
_UNCARRIED = {",": "comma", ":": "colon", "\\": "backslash", '"': "double quote", "\n": "newline", "$": "dollar"}
_PARAMETER = re.compile(r'key:\s*"([^"]+)"\s*value:\s*\{\s*string_value:\s*"([^"]*)"')


@dataclass(frozen=True)
class FillContext:
    """What the values depend on: where the engine is served from, its shape, the serving options, the format."""

    engine_dir: str
    shape: EngineShape
    options: ServingOptions
    paged_context_fmha: bool = True  # False where trtllm-build turns it off (formats.paged_context_fmha_lost)

    @property
    def kv_cache_reuse(self) -> bool:
        """Block reuse needs paged context FMHA (TrtGptModelInflightBatching::fixExecutorConfig)."""
        return self.paged_context_fmha and self.options.enable_kv_cache_reuse

    @property
    def chunked_context(self) -> bool:
        """Chunked context needs paged context FMHA (executorImpl.cpp fixExecutorConfig)."""
        return self.paged_context_fmha


@dataclass(frozen=True)
class FillKey:
    """One ``${name}`` of NVIDIA's template: its value rule, what it sets, and the NVIDIA code that reads it."""

    name: str
    value: Callable[[FillContext], str]
    rule: str
    source: str
    sets: str  # the config field or parameter the placeholder is in
    required: bool = False  # NVIDIA's template must have it (the build fails if it does not)


def _const(value: str) -> Callable[[FillContext], str]:
    return lambda _: value


def _bool(flag: bool) -> str:
    return "true" if flag else "false"


def _unset(name: str, source: str, sets: str | None = None) -> FillKey:
    return FillKey(name, _const(UNSET), "empty: the backend's default", source, sets or f'parameter "{name}"')


KEYS: tuple[FillKey, ...] = (
    # --- fields that are not strings: they must always be filled, or the config does not parse ---------------
    FillKey("triton_backend", _const(CPP_BACKEND), "tensorrtllm: NVIDIA's C++ backend (executor API)",
            "template `backend:`; tensorrtllm_backend docs/model_config.md", "backend", required=True),
    FillKey("triton_max_batch_size", lambda c: str(c.shape.max_batch_size), "the engine's --max_batch_size",
            "template `max_batch_size`, `dynamic_batching.preferred_batch_size`; docs/model_config.md",
            "max_batch_size", required=True),
    FillKey("decoupled_mode", _const("false"),
            "false: the entry model's BLS calls are not decoupled (rank1_triton/engines/triton_bls.py)",
            f"template `model_transaction_policy.decoupled`; {MS} LoadParameters; utils.cc "
            "createRequestsFromInputTensors", "model_transaction_policy.decoupled", required=True),
    FillKey("max_queue_delay_microseconds", lambda c: str(c.options.max_queue_delay_microseconds),
            "--max-queue-delay-us (0: the executor batches in flight)",
            "template `dynamic_batching`; fill_template.py main() default 0",
            "dynamic_batching.max_queue_delay_microseconds", required=True),
    FillKey("max_queue_size", lambda c: str(c.options.max_queue_size), "--max-queue-size (bounded queue)",
            f"template `default_queue_policy`; {MIS} getExecutorConfigFromParams (ExecutorConfig maxQueueSize)",
            "dynamic_batching.default_queue_policy.max_queue_size", required=True),
    FillKey("logits_datatype", _const(LOGITS_DATATYPE), "TYPE_FP32: the engine is built with --logits_dtype float32",
            f"template `data_type` of generation_logits, context_logits, draft_logits; {MS} LoadParameters "
            "(mLogitsDataType)", "output generation_logits data_type", required=True),
    FillKey("encoder_input_features_data_type", _const("TYPE_BF16"),
            "TYPE_BF16, the engine's dtype (a decoder-only engine never receives the input)",
            "template input `encoder_input_features`; docs/model_config.md", "input encoder_input_features data_type"),
    FillKey("prompt_embedding_table_data_type", _const("TYPE_BF16"),
            "TYPE_BF16, the engine's dtype (\"float16 (model data type)\" in docs/model_config.md; unused by Rank1)",
            "template input `prompt_embedding_table`", "input prompt_embedding_table data_type"),
    # --- string parameters with a project value ----------------------------------------------------------------
    FillKey("max_beam_width", _const("1"), "1: greedy", f"{MIS} getExecutorConfigFromParams",
            'parameter "max_beam_width"'),
    FillKey("batching_strategy", _const("inflight_fused_batching"), "inflight_fused_batching: in-flight batching",
            f"{MIS} getBatchingTypeFromParams (no default)", 'parameter "gpt_model_type"', required=True),
    FillKey("engine_dir", lambda c: c.engine_dir, "SERVE_ROOT/engine: where the pod sees the engine",
            f"{MIS} ModelInstanceState::ModelInstanceState (must exist)", 'parameter "gpt_model_path"',
            required=True),
    FillKey("batch_scheduler_policy", lambda c: c.options.batch_scheduler_policy, "--scheduler-policy",
            f"{MIS} getSchedulerConfigFromParams (default guaranteed_no_evict)", 'parameter "batch_scheduler_policy"',
            required=True),
    FillKey("kv_cache_free_gpu_mem_fraction", lambda c: str(c.options.kv_cache_free_gpu_mem_fraction),
            "--kv-cache-free-gpu-mem-fraction", f"{MIS} getKvCacheConfigFromParams",
            'parameter "kv_cache_free_gpu_mem_fraction"', required=True),
    FillKey("enable_kv_cache_reuse", lambda c: _bool(c.kv_cache_reuse),
            "true: the answer step reuses the reasoning phase's blocks; false with --no-kv-cache-reuse or when the "
            "engine has no paged context FMHA", f"{MIS} getKvCacheConfigFromParams (default true)",
            'parameter "enable_kv_cache_reuse"', required=True),
    FillKey("enable_chunked_context", lambda c: _bool(c.chunked_context),
            "true: answer-step inputs exceed --max_num_tokens; false when the engine has no paged context FMHA",
            f"{MIS} getExecutorConfigFromParams (default false)", 'parameter "enable_chunked_context"', required=True),
    FillKey("exclude_input_in_output", _const("true"), "true: what the entry model sends with every request",
            f"{MIS} ModelInstanceState::ModelInstanceState", 'parameter "exclude_input_in_output"'),
    FillKey("decoding_mode", _const("top_k"), "top_k: greedy (runtime_top_k 1) needs no top-p machinery",
            f"{MIS} getExecutorConfigFromParams", 'parameter "decoding_mode"'),
    # --- guided decoding: read without a default, so always present; empty switches it off --------------------
    FillKey("tokenizer_dir", _const(UNSET), "empty: the C++ backend's guided decoding does not use it",
            f"{MIS} getGuidedDecodingConfigFromParams (GetParameter, no default)", 'parameter "tokenizer_dir"',
            required=True),
    FillKey("xgrammar_tokenizer_info_path", _const(UNSET), "empty: no guided decoding",
            f"{MIS} getGuidedDecodingConfigFromParams (GetParameter, no default)",
            'parameter "xgrammar_tokenizer_info_path"', required=True),
    FillKey("guided_decoding_backend", _const(UNSET), "empty: no guided decoding",
            f"{MIS} getGuidedDecodingConfigFromParams (GetParameter, no default)",
            'parameter "guided_decoding_backend"', required=True),
    # --- left to the backend's default ---------------------------------------------------------------------------
    _unset("encoder_engine_dir", f"{MIS} ModelInstanceState::ModelInstanceState (decoder-only)",
           'parameter "encoder_model_path"'),
    _unset("max_tokens_in_paged_kv_cache", f"{MIS} getKvCacheConfigFromParams (the memory fraction decides)"),
    _unset("max_attention_window_size", f"{MIS} getKvCacheConfigFromParams (max_seq_len)"),
    _unset("sink_token_length", f"{MIS} getKvCacheConfigFromParams"),
    _unset("cross_kv_cache_fraction", f"{MIS} getKvCacheConfigFromParams; must stay unset for a decoder-only model "
                                      "(trtGptModelInflightBatching.cpp)"),
    _unset("kv_cache_host_memory_bytes", f"{MIS} getKvCacheConfigFromParams (no host offload)"),
    _unset("kv_cache_onboard_blocks", f"{MIS} getKvCacheConfigFromParams (true, which paged context FMHA needs)"),
    _unset("enable_trt_overlap", f"{MIS} getExecutorConfigFromParams (false)"),
    _unset("cancellation_check_period_ms", f"{MIS} ModelInstanceState::ModelInstanceState (100 ms)"),
    _unset("stats_check_period_ms", f"{MIS} ModelInstanceState::ModelInstanceState (100 ms)"),
    _unset("iter_stats_max_iterations", f"{MIS} getExecutorConfigFromParams"),
    _unset("request_stats_max_iterations", f"{MIS} getExecutorConfigFromParams"),
    _unset("normalize_log_probs", f"{MIS} getExecutorConfigFromParams (true; Rank1 reads logits, not log probs)"),
    _unset("gpu_device_ids", f"{MS} LoadParameters (all visible GPUs)"),
    _unset("participant_ids", f"{MS} LoadParameters"),
    _unset("num_nodes", f"{MIS} getParallelConfigFromParams (1)"),
    _unset("lora_cache_optimal_adapter_size", f"{MIS} getPeftCacheConfigFromParams"),
    _unset("lora_cache_max_adapter_size", f"{MIS} getPeftCacheConfigFromParams"),
    _unset("lora_cache_gpu_memory_fraction", f"{MIS} getPeftCacheConfigFromParams"),
    _unset("lora_cache_host_memory_bytes", f"{MIS} getPeftCacheConfigFromParams"),
    _unset("lora_prefetch_dir", f"{MIS} getPeftCacheConfigFromParams"),
    _unset("lookahead_window_size", f"{MIS} getExecutorConfigFromParams (read only with decoding_mode lookahead)"),
    _unset("lookahead_ngram_size", f"{MIS} getExecutorConfigFromParams (read only with decoding_mode lookahead)"),
    _unset("lookahead_verification_set_size",
           f"{MIS} getExecutorConfigFromParams (read only with decoding_mode lookahead)"),
    _unset("medusa_choices", f"{MIS} getExecutorConfigFromParams"),
    _unset("eagle_choices", f"{MIS} getExecutorConfigFromParams"),
    _unset("gpu_weights_percent", f"{MIS} getExecutorConfigFromParams (1.0)"),
    _unset("enable_context_fmha_fp32_acc", f"{MIS} getExtendedRuntimePerfKnobConfigFromParams (false)"),
    _unset("multi_block_mode", f"{MIS} getExtendedRuntimePerfKnobConfigFromParams (true)"),
    _unset("cuda_graph_mode", f"{MIS} getExtendedRuntimePerfKnobConfigFromParams (false)"),
    _unset("cuda_graph_cache_size", f"{MIS} getExtendedRuntimePerfKnobConfigFromParams (0)"),
    _unset("speculative_decoding_fast_logits", f"{MIS} getSpeculativeDecodingConfigFromParams (false)"),
)
KEY_NAMES: tuple[str, ...] = tuple(key.name for key in KEYS)
REQUIRED_KEYS: tuple[str, ...] = tuple(key.name for key in KEYS if key.required)
# The config parameters (not template keys) the backend reads without a default or that Rank1's design needs.
REQUIRED_PARAMETERS: dict[str, str] = {
    key.name: key.sets.split('"')[1] for key in KEYS if key.required and key.sets.startswith("parameter")
}


def template_path(backend_root: str) -> str:
    """NVIDIA's template under the TensorRT-LLM backend root (``--trtllm-backend-root``)."""
    return f"{backend_root.rstrip('/')}/{ENGINE_TEMPLATE}"


def fill_template_path(backend_root: str) -> str:
    """NVIDIA's ``fill_template.py`` under the backend root."""
    return f"{backend_root.rstrip('/')}/{FILL_TEMPLATE}"


def fill_values(context: FillContext) -> dict[str, str]:
    """The value of every key of :data:`KEYS`, in template order; BuildRefusal if fill_template cannot carry one."""
    values = {key.name: key.value(context) for key in KEYS}
    for name, value in values.items():
        check_value(name, value)
    return values


def check_value(name: str, value: str) -> None:
    """BuildRefusal for a value that ``fill_template.py``'s ``key:value,…`` argument (or the pbtxt) cannot carry."""
    bad = [word for char, word in _UNCARRIED.items() if char in value]
    if bad:
        raise BuildRefusal(
            f"{name}={value!r}: NVIDIA's fill_template.py splits its argument on ',' and ':' "
            f"(triton_backend/tools/fill_template.py split()), and the value lands in a quoted pbtxt string; "
            f"it cannot carry a {' or '.join(bad)}. Use a path without those characters (e.g. --serve-root)"
        )


def fill_argument(values: Mapping[str, str], keys: Sequence[str] | None = None) -> str:
    """``key:value,key:value,…`` for ``fill_template.py``; only ``keys`` (default: all) in :data:`KEYS` order."""
    chosen = [name for name in KEY_NAMES if name in values and (keys is None or name in keys)]
    unknown = sorted(set(values) - set(KEY_NAMES))
    if unknown:
        raise ValueError(f"not keys of NVIDIA's template: {', '.join(unknown)}")
    for name in chosen:
        check_value(name, values[name])
    argument = ",".join(f"{name}:{values[name]}" for name in chosen)
    assert parse_fill_argument(argument) == {name: values[name] for name in chosen}, "fill argument round trip"
    return argument


def _split_escaped(text: str, delimiter: str) -> list[str]:
    """Split on ``delimiter`` where a backslash makes the next character literal (fill_template.py's rule)."""
    parts, current, escaped = [], [], False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == delimiter:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def parse_fill_argument(argument: str) -> dict[str, str]:
    """What ``fill_template.py`` makes of its substitutions argument; ValueError where it would fail."""
    parsed: dict[str, str] = {}
    for item in _split_escaped(argument, ","):
        fields = _split_escaped(item, ":")
        if len(fields) != 2:
            raise ValueError(f"{item!r}: fill_template.py needs exactly one ':' per item (key:value)")
        parsed[fields[0]] = fields[1]
    return parsed


def render_like_fill_template(template: str, argument: str) -> str:
    """The text ``fill_template.py -i`` would write (its documented behaviour), for tests and previews."""
    values: dict[str, str] = {"max_queue_size": "0", "max_queue_delay_microseconds": "0"}
    for key, value in parse_fill_argument(argument).items():
        if key not in template:
            raise ValueError(f"key '{key}' does not exist in the template")
        values[key] = value
    return string.Template(template).safe_substitute(values)


def template_placeholders(text: str) -> list[str]:
    """The ``${name}`` fields of a template, in order of first appearance."""
    return list(dict.fromkeys(PLACEHOLDER_PATTERN.findall(text)))


def check_template(text: str, where: str) -> list[str]:
    """The keys to pass for this template; BuildRefusal if NVIDIA's template changed in a way the build must know."""
    present = set(template_placeholders(text))
    missing = [name for name in REQUIRED_KEYS if name not in present]
    unknown = [name for name in template_placeholders(text) if name not in KEY_NAMES]
    problems = []
    if missing:
        problems.append(f"it has no ${{{'}, ${'.join(missing)}}}, which the build must fill")
    if unknown:
        problems.append(f"it has ${{{'}, ${'.join(unknown)}}}, which rank1_build does not know how to fill")
    if problems:
        raise BuildRefusal(
            f"{where}: NVIDIA's template changed ({'; '.join(problems)}). rank1_build fills the template of "
            f"TensorRT-LLM 1.2.1 (nvcr.io/nvidia/tritonserver:26.05-trtllm-python-py3); update KEYS in "
            "build/rank1_build/engine_config.py for this container"
        )
    return [name for name in KEY_NAMES if name in present]


def filled_parameters(text: str) -> dict[str, str]:
    """The ``parameters`` of a config as key -> string_value (NVIDIA's multi-line layout or one-line)."""
    return dict(_PARAMETER.findall(text))


def project_parameters(context: FillContext) -> dict[str, str]:
    """The parameters the ``rank1`` entry model reads from the engine model (rank1_triton.contract)."""
    return {FUSED_ANSWER_STEP_PARAMETER: "false", MAX_CONTEXT_PARAMETER: str(context.shape.max_seq_len)}


def project_parameters_text(parameters: Mapping[str, str]) -> str:
    """The appended pbtxt lines."""
    lines = ["", "# Appended by `python -m rank1_build build`: capabilities the rank1 entry model reads "
                 "(rank1_triton.contract): no fused answer step, and the engine's max_seq_len."]
    lines += [f'parameters: {{ key: "{key}" value: {{ string_value: "{value}" }} }}' for key, value in
              parameters.items()]
    return "\n".join(lines) + "\n"


def finish_config(text: str, values: Mapping[str, str], context: FillContext, where: str) -> str:
    """Check a config ``fill_template.py`` wrote and append the project's parameters; BuildRefusal on any gap."""
    left = template_placeholders(text)
    if left:
        raise BuildRefusal(f"{where}: fill_template.py left ${{{'}, ${'.join(left)}}} unfilled")
    parameters = filled_parameters(text)
    wrong = [f"{parameter} (expected {values[name]!r}, found {parameters.get(parameter)!r})"
             for name, parameter in REQUIRED_PARAMETERS.items() if parameters.get(parameter) != values[name]]
    backend = re.search(r'^backend:\s*"([^"]*)"', text, re.M)
    if backend is None or backend.group(1) != CPP_BACKEND:
        wrong.append(f'backend (expected "{CPP_BACKEND}")')
    logits = re.search(r'name:\s*"generation_logits"\s*data_type:\s*(\w+)', text)
    if logits is None or logits.group(1) != LOGITS_DATATYPE:
        wrong.append(f"generation_logits data_type (expected {LOGITS_DATATYPE})")
    extra = project_parameters(context)
    clash = sorted(set(extra) & set(parameters))
    if clash:
        wrong.append(f"{', '.join(clash)} already set by NVIDIA's template")
    if wrong:
        raise BuildRefusal(f"{where}: the filled config does not say what the build needs: {'; '.join(wrong)}")
    finished = text.rstrip("\n") + "\n" + project_parameters_text(extra)
    _parse_if_possible(finished, where)
    return finished


def _parse_if_possible(text: str, where: str) -> None:
    """Parse as Triton's ModelConfig where tritonclient is installed (the image has it; planning does not need it)."""
    try:
        from google.protobuf import text_format
        from tritonclient.grpc import model_config_pb2
    except ImportError:
        return
    try:
        text_format.Parse(text, model_config_pb2.ModelConfig())
    except text_format.ParseError as error:
        raise BuildRefusal(f"{where}: the filled config is not a valid Triton ModelConfig: {error}") from None


def describe(values: Mapping[str, str], extra: Mapping[str, str]) -> list[str]:
    """Comment lines for ``--dry-run``: every value with its rule and source."""
    width = max(len(name) for name in values)
    lines = [f"# fill values ({len(values)} keys of {TEMPLATE_SOURCE}; rule [NVIDIA source]):"]
    by_name = {key.name: key for key in KEYS}
    for name, value in values.items():
        key = by_name[name]
        shown = value if value else '""'
        lines.append(f"#   {name:<{width}} = {shown}  ({key.rule}) [{key.source}]")
    lines.append("# appended after filling: " + ", ".join(f"{k} = {v}" for k, v in extra.items()))
    return lines


def read_template(backend_root: str) -> tuple[Path, str]:
    """NVIDIA's template text; BuildRefusal naming --trtllm-backend-root if it is missing."""
    path = Path(template_path(backend_root))
    if not path.is_file():
        raise BuildRefusal(
            f"no {path}: --trtllm-backend-root {backend_root} is not the TensorRT-LLM backend root of NVIDIA's "
            "container (26.05 copies triton_backend/all_models to /app/all_models: tensorrtllm_backend r26.05 "
            "dockerfile/Dockerfile.triton.trt_llm_backend)"
        )
    return path, path.read_text(encoding="utf-8")
