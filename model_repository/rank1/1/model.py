"""Triton entry model ``rank1``; the logic lives in ``rank1_triton.triton_models.entry_model``."""

import triton_python_backend_utils as pb_utils

from rank1_triton.triton_models.entry_model import Rank1EntryModel


class TritonPythonModel(Rank1EntryModel):
    """Rank1 reranking over the ``tensorrt_llm`` engine model."""

    def __init__(self) -> None:
        super().__init__(pb_utils)
