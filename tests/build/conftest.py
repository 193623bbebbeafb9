"""Fixtures of the build-tool tests: import paths, Rank1-shaped checkpoints, a stand-in for NVIDIA's container files.

NVIDIA's template and fill_template.py are not available here. :func:`synthetic_template` writes a small template
from ``rank1_build.engine_config.KEYS`` (each ``${key}`` in the kind of field NVIDIA's template puts it in, the
contract tensors of ``rank1_triton.contract``), and :data:`FILL_TOOL` is a stand-in for ``tools/fill_template.py``
written here from its documented command line (``fill_template.py -i <file> key:value,...``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
for _path in (ROOT / "build", ROOT / "python_backend"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from rank1_build.catalog import RANK1_CHECKPOINTS  # noqa: E402
from rank1_build.engine_config import KEYS  # noqa: E402
from rank1_triton.contract import ENGINE_INPUTS, ENGINE_OUTPUTS  # noqa: E402

# One published checkpoint per architecture family: Qwen2.5, Llama 3.1, Mistral-Small-2501.
ARCH_MODELS = {
    "qwen2": "jhu-clsp/rank1-7b",
    "llama": "jhu-clsp/rank1-llama3-8b",
    "mistral": "jhu-clsp/rank1-mistral-2501-24b",
}

# The stand-in fill tool: same command line and substitution rules as NVIDIA's (split on unescaped ',' then ':',
# keys must occur in the file, unknown ${...} left alone, queue settings default to 0).
FILL_TOOL = '''\
import argparse, string, sys

def split(text, sep):
    out, cur, esc = [], "", False
    for ch in text:
        if esc:
            cur, esc = cur + ch, False
        elif ch == "\\\\":
            esc = True
        elif ch == sep:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    return out + [cur]

parser = argparse.ArgumentParser()
parser.add_argument("file_path")
parser.add_argument("substitutions")
parser.add_argument("-i", "--in_place", action="store_true")
args = parser.parse_args()
text = open(args.file_path).read()
values = {"max_queue_size": 0, "max_queue_delay_microseconds": 0}
for item in split(args.substitutions, ","):
    key, value = split(item, ":")
    assert key in text, f"key '{key}' does not exist in the file {args.file_path}."
    values[key] = value
result = string.Template(text).safe_substitute(values)
if args.in_place:
    open(args.file_path, "w").write(result)
else:
    sys.stdout.write(result)
'''


def _tensor(spec, data_type: str | None = None) -> str:
    dims = ", ".join(str(d) for d in spec.dims)
    parts = [f'name: "{spec.name}"', f"data_type: {data_type or spec.data_type}", f"dims: [ {dims} ]"]
    if spec.dims == (1,):
        parts.append("reshape: { shape: [ ] }")
    if getattr(spec, "optional", False):
        parts.append("optional: true")
    return "  {\n    " + "\n    ".join(parts) + "\n  }"


def synthetic_template(drop: tuple[str, ...] = (), extra: tuple[str, ...] = ()) -> str:
    """A template shaped like NVIDIA's, with every key of KEYS (minus ``drop``, plus unknown ``extra`` keys)."""
    inputs = [_tensor(spec) for spec in ENGINE_INPUTS]
    inputs.append('  {\n    name: "encoder_input_features"\n    data_type: ${encoder_input_features_data_type}\n'
                  "    dims: [ -1, -1 ]\n    optional: true\n  }")
    inputs.append('  {\n    name: "prompt_embedding_table"\n    data_type: ${prompt_embedding_table_data_type}\n'
                  "    dims: [ -1, -1 ]\n    optional: true\n  }")
    outputs = [_tensor(spec, "${logits_datatype}" if spec.name == "generation_logits" else None)
               for spec in ENGINE_OUTPUTS]
    parameters = []
    for key in KEYS:
        if key.sets.startswith("parameter"):
            parameter = key.sets.split('"')[1]
            parameters.append(f'parameters: {{\n  key: "{parameter}"\n  value: {{\n    string_value: "${{{key.name}}}"'
                              "\n  }\n}")
    parameters += [f'parameters: {{\n  key: "{name}"\n  value: {{\n    string_value: "${{{name}}}"\n  }}\n}}'
                   for name in extra]
    text = "\n".join([
        'name: "tensorrt_llm"',
        'backend: "${triton_backend}"',
        "max_batch_size: ${triton_max_batch_size}",
        "model_transaction_policy {\n  decoupled: ${decoupled_mode}\n}",
        "dynamic_batching {\n    preferred_batch_size: [ ${triton_max_batch_size} ]\n"
        "    max_queue_delay_microseconds: ${max_queue_delay_microseconds}\n"
        "    default_queue_policy: { max_queue_size: ${max_queue_size} }\n}",
        "input [\n" + ",\n".join(inputs) + "\n]",
        "output [\n" + ",\n".join(outputs) + "\n]",
        "instance_group [\n  {\n    count: 1\n    kind : KIND_CPU\n  }\n]",
        'parameters: {\n  key: "FORCE_CPU_ONLY_INPUT_TENSORS"\n  value: {\n    string_value: "no"\n  }\n}',
        *parameters,
        "",
    ])
    for name in drop:
        text = "\n".join(line for line in text.split("\n") if f"${{{name}}}" not in line)
    return text


def make_container(root: Path, template: str | None = None) -> Path:
    """A backend root like NVIDIA's /app: examples scripts, the template, a fill_template.py stand-in."""
    for script in ("quantization/quantize.py", "models/core/qwen/convert_checkpoint.py",
                   "models/core/llama/convert_checkpoint.py"):
        path = root / "examples" / script
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("# stand-in\n", encoding="utf-8")
    template_path = root / "all_models" / "inflight_batcher_llm" / "tensorrt_llm" / "config.pbtxt"
    template_path.parent.mkdir(parents=True, exist_ok=True)
    template_path.write_text(template if template is not None else synthetic_template(), encoding="utf-8")
    (root / "tools").mkdir(parents=True, exist_ok=True)
    (root / "tools" / "fill_template.py").write_text(FILL_TOOL, encoding="utf-8")
    return root


@pytest.fixture
def container(tmp_path: Path) -> Path:
    """A stand-in for the container's /app (pass it as --trtllm-backend-root and <root>/examples)."""
    return make_container(tmp_path / "app")


def write_checkpoint(directory: Path, config: dict) -> Path:
    """A checkpoint directory with config.json and tokenizer files (no weights: only dry runs read it)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config), encoding="utf-8")
    (directory / "tokenizer.json").write_text('{"model": {"type": "BPE"}}', encoding="utf-8")
    (directory / "tokenizer_config.json").write_text("{}", encoding="utf-8")
    (directory / "model.safetensors").write_bytes(b"weights are not copied")
    return directory


@pytest.fixture
def checkpoint_dir(tmp_path: Path):
    """Factory: a local checkpoint with the config of a published Rank1 model (``arch`` key of ARCH_MODELS)."""

    def make(arch: str = "qwen2", **overrides) -> Path:
        config = {**RANK1_CHECKPOINTS[ARCH_MODELS[arch]], **overrides}
        return write_checkpoint(tmp_path / f"hf-{arch}", config)

    return make
