"""The ``tensorrt_llm`` engine model on CPU (or CUDA): NVIDIA's tensor contract over the PyTorch engine."""

from __future__ import annotations

import json
import logging
from types import ModuleType

import torch

from ..contract import FUSED_ANSWER_STEP_PARAMETER, MAX_CONTEXT_PARAMETER
from ..engines.base import GenerationRequest
from ..engines.tensors import ENGINE_INPUT_NAMES, named_tensors, parse_request, result_tensors
from ..engines.torch_engine import TorchEngine
from ..errors import RequestError
from .model_config import parameters_of

LOGGER = logging.getLogger("rank1_triton.engine")


class TorchEngineModel:
    """Implements ``TritonPythonModel``: each batch of requests from the dynamic batcher is one engine call."""

    def __init__(self, pb_utils: ModuleType) -> None:
        self._pb = pb_utils

    def initialize(self, args: dict[str, str]) -> None:
        """Load the checkpoint named by the config's ``model_dir`` parameter."""
        config = json.loads(args["model_config"])
        parameters = parameters_of(config)
        threads = int(parameters.get("num_threads", "0"))
        if threads > 0:
            torch.set_num_threads(threads)
        self.engine = TorchEngine(
            parameters["model_dir"],
            dtype=parameters.get("dtype", "float32"),
            device=parameters.get("device", "cpu"),
            max_batch_size=max(int(config.get("max_batch_size", 64)), 1),
            max_context_tokens=int(parameters[MAX_CONTEXT_PARAMETER]),
            fused_answer_step=parameters.get(FUSED_ANSWER_STEP_PARAMETER, "true").lower() == "true",
        )
        self.default_end_id = int(parameters.get("default_end_id", "-1"))

    def execute(self, requests: list) -> list:
        """Parse each request on its own (a bad one gets INVALID_ARG), then run the valid ones together."""
        pb = self._pb
        responses: list = [None] * len(requests)
        valid: list[tuple[int, GenerationRequest]] = []
        for index, request in enumerate(requests):
            try:
                tensors = named_tensors(pb.get_input_tensor_by_name, request, ENGINE_INPUT_NAMES)
                parsed = parse_request(tensors, default_end_id=self.default_end_id, default_pad_id=self.default_end_id)
                self.engine.check(parsed)
                valid.append((index, parsed))
            except RequestError as error:
                responses[index] = pb.InferenceResponse(error=pb.TritonError(str(error), pb.TritonError.INVALID_ARG))
        if valid:
            try:
                results = self.engine.generate([parsed for _, parsed in valid])
            except Exception as error:
                LOGGER.exception("engine batch failed")
                failure = pb.TritonError(f"engine failure: {error}", pb.TritonError.INTERNAL)
                for index, _ in valid:
                    responses[index] = pb.InferenceResponse(error=failure)
                return responses
            for (index, _), result in zip(valid, results, strict=True):
                tensors = [pb.Tensor(name, value) for name, value in result_tensors(result).items()]
                responses[index] = pb.InferenceResponse(output_tensors=tensors)
        return responses
