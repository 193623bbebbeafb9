"""Triton engine model ``tensorrt_llm`` on the PyTorch engine; logic in ``rank1_triton.triton_models.engine_model``."""

import triton_python_backend_utils as pb_utils

from rank1_triton.triton_models.engine_model import TorchEngineModel


class TritonPythonModel(TorchEngineModel):
    """NVIDIA's TensorRT-LLM tensor contract, served by the batched PyTorch engine."""

    def __init__(self) -> None:
        super().__init__(pb_utils)
