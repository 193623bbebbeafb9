"""Building rank1 requests with tritonclient."""

from __future__ import annotations

import numpy as np
import tritonclient.grpc as grpcclient


def bytes_input(name: str, values: list[str | bytes]) -> grpcclient.InferInput:
    data = np.array([v if isinstance(v, bytes) else v.encode() for v in values], dtype=np.object_)
    tensor = grpcclient.InferInput(name, [len(values)], "BYTES")
    tensor.set_data_from_numpy(data)
    return tensor


def rerank_inputs(query, documents, instruction=None, prompt=None) -> list[grpcclient.InferInput]:
    inputs = [bytes_input("query", [query]), bytes_input("documents", documents)]
    if instruction is not None:
        inputs.append(bytes_input("instruction", [instruction]))
    if prompt is not None:
        inputs.append(bytes_input("prompt", [prompt]))
    return inputs
