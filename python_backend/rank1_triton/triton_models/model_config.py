"""Reading Triton model configs: our parameters and the engine model's advertised capabilities."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from ..contract import FUSED_ANSWER_STEP_PARAMETER, MAX_CONTEXT_PARAMETER
from ..engines.base import EngineCapabilities


def parameters_of(model_config: Mapping) -> dict[str, str]:
    """The ``parameters`` of a model config as Triton passes it to ``initialize`` (JSON), unfilled ones dropped."""
    values = {key: value.get("string_value", "") for key, value in model_config.get("parameters", {}).items()}
    return {key: value for key, value in values.items() if value and not value.startswith("${")}


def load_config(path: Path) -> model_config_pb2.ModelConfig:
    """Parse a ``config.pbtxt`` (protobuf text format) into Triton's ModelConfig message."""
    return text_format.Parse(path.read_text(encoding="utf-8"), model_config_pb2.ModelConfig())


def engine_capabilities(config_path: Path) -> EngineCapabilities:
    """What the engine model's config advertises: the fused answer step, the context length, the batch size."""
    config = load_config(config_path)
    parameters = {key: value.string_value for key, value in config.parameters.items()}
    fused = parameters.get(FUSED_ANSWER_STEP_PARAMETER, "false").lower() == "true"
    context = parameters.get(MAX_CONTEXT_PARAMETER, "")
    if not context.isdigit():
        raise ValueError(f"{config_path}: parameter {MAX_CONTEXT_PARAMETER} must be the engine's context length")
    return EngineCapabilities(fused_answer_step=fused, max_context_tokens=int(context),
                              max_batch_size=config.max_batch_size)


def is_decoupled(config_path: Path) -> bool:
    """Whether a model config sets ``model_transaction_policy { decoupled: true }``."""
    return load_config(config_path).model_transaction_policy.decoupled
