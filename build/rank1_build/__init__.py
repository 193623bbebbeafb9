"""Build TensorRT-LLM engines of Rank1 checkpoints and the Triton repository that serves them.

Modules, one job each: ``model`` (read a checkpoint's config.json), ``catalog`` (published Rank1 configs for
dry runs), ``formats`` (quantization formats, GPU generations, support matrix), ``validate`` (refusals),
``sizing`` (engine limits from Rank1's shapes, memory estimates), ``plan`` (the command lines), ``configs``
(the Triton model configs), ``runner`` (run or print a plan), ``quantize`` (ModelOpt quantization, run in
``.venv-quantize``), ``gate`` (the quality gate), ``serve`` (the container's launcher),
``cli`` (``python -m rank1_build``).
"""

__version__ = "0.1.0"
