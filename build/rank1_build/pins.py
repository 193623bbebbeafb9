"""Pinned versions and the paths they imply inside NVIDIA's Triton TensorRT-LLM container.

Sources (see docs/engines.md):
- Triton ``docs/introduction/compatibility.md``: ``nvcr.io/nvidia/tritonserver:26.05-trtllm-python-py3`` is Triton
  2.69 and ships TensorRT-LLM 1.2.1 (TensorRT 10.14.1.48, Python 3.12.3); 26.04, 26.06 and 26.07 ship the same 1.2.1.
- ``triton-inference-server/tensorrtllm_backend`` branch ``r26.05``, ``dockerfile/Dockerfile.triton.trt_llm_backend``:
  ``TENSORRTLLM_VER=1.2.1``; ``WORKDIR /app`` with TensorRT-LLM's ``triton_backend/scripts`` copied to ``scripts``,
  ``triton_backend/all_models`` to ``all_models``, ``triton_backend/tools`` to ``tools`` and ``examples`` to
  ``examples``.
"""

TRTLLM_VERSION = "1.2.1"
TRITON_VERSION = "2.69"
TRITON_IMAGE = "nvcr.io/nvidia/tritonserver:26.05-trtllm-python-py3"
MODELOPT_VERSION = "0.47.0"

# The TensorRT-LLM backend root of the container (`--trtllm-backend-root`) and what the build uses under it.
CONTAINER_BACKEND_ROOT = "/app"
CONTAINER_EXAMPLES_DIR = f"{CONTAINER_BACKEND_ROOT}/examples"
CONTAINER_LAUNCH_SCRIPT = f"{CONTAINER_BACKEND_ROOT}/scripts/launch_triton_server.py"
# NVIDIA's config template of the C++-backend engine model, and the tool that fills it (relative to the root).
ENGINE_TEMPLATE = "all_models/inflight_batcher_llm/tensorrt_llm/config.pbtxt"
FILL_TEMPLATE = "tools/fill_template.py"
TRITONSERVER = "/opt/tritonserver/bin/tritonserver"
