"""Build TensorRT-LLM engines of Rank1 checkpoints and the Triton repository that serves them.

Modules, one job each: ``model`` (read a checkpoint's config.json), ``catalog`` (published Rank1 configs for
dry runs), ``formats`` (quantization formats, GPU generations, support matrix), ``validate`` (refusals),
``sizing`` (engine limits from Rank1's shapes, memory estimates), ``plan`` (the command lines), ``configs``
(serving options, the entry model's values, the repository assembly), ``engine_config`` (the engine model's config:
NVIDIA's template filled with NVIDIA's fill_template.py, the one list of keys), ``runner`` (run or print a plan,
write the build folder), ``quantize`` (ModelOpt quantization, run in ``.venv-quantize``), ``gate`` (the quality
gate), ``serve`` (the container's launcher), ``cli`` (``python -m rank1_build``). ``build/gpu_check.py`` is the
GPU check (docs/engines.md).
"""

__version__ = "0.1.0"
