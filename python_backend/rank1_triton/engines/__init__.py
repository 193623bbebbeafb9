"""Token-level engines that speak the tensor contract of NVIDIA's TensorRT-LLM Triton model."""

from .base import Engine, EngineCapabilities, GenerationRequest, GenerationResult

__all__ = ["Engine", "EngineCapabilities", "GenerationRequest", "GenerationResult"]
