"""docs/engines.md stays equal to what the tool does; build/Dockerfile is checked statically (no docker here)."""

import json
import re
from pathlib import Path

from conftest import ROOT

from rank1_build.catalog import catalog_spec
from rank1_build.configs import ServingOptions
from rank1_build.engine_config import KEY_NAMES, FillContext, fill_argument, fill_values
from rank1_build.formats import FORMATS, Quant
from rank1_build.pins import TRITON_IMAGE, TRITON_VERSION, TRTLLM_VERSION
from rank1_build.plan import BuildRequest, OutputLayout, build_steps, download_step, engine_config_steps, launch_step
from rank1_build.sizing import EngineShape
from rank1_build.tables import render_tables

DOC = (ROOT / "docs" / "engines.md").read_text(encoding="utf-8")
DOCKERFILE = (ROOT / "build" / "Dockerfile").read_text(encoding="utf-8")


def test_doc_tables_are_the_tools_output():
    match = re.search(r"<!-- rank1_build tables: begin -->\n(.*?)<!-- rank1_build tables: end -->", DOC, re.S)
    assert match, "docs/engines.md lost its table markers"
    assert match.group(1) == render_tables()


def test_doc_commands_are_the_planned_commands():
    layout = OutputLayout(Path("/models"))
    spec = catalog_spec("jhu-clsp/rank1-7b")
    for quant in Quant:
        request = BuildRequest(spec=spec, model_dir=layout.hf_dir, quant=quant,
                               kv_cache=FORMATS[quant].default_kv_cache, tp_size=1, shape=EngineShape(),
                               layout=layout)
        for step in build_steps(request):
            assert f"\n{step.shell()}\n" in DOC, f"{quant.value}: {step.name} line differs from the plan"
    fill = fill_values(FillContext(engine_dir="/models/engine", shape=EngineShape(), options=ServingOptions()))
    for step in engine_config_steps(request, fill_argument(fill)):
        assert f"\n{step.shell()}\n" in DOC, f"{step.name} line differs from the plan"
    assert download_step("jhu-clsp/rank1-7b", layout).shell() in DOC
    assert launch_step(1, layout.repository).shell() in DOC


def test_doc_names_every_key_the_build_fills_and_every_refusal():
    for name in KEY_NAMES:
        assert f"`{name}`" in DOC, name
    for needle in ("INT8/INT4 quantization is not supported on SM>=100.", "SmoothQuant is not supported on SM>=100.",
                   "Paged Context FMHA is disabled because it doesn't work with int8 kv cache currently.",
                   "FP8 Paged Context FMHA is disabled because FP8 context FMHA is disabled.",
                   "--no-kv-cache-reuse", "fixExecutorConfig", "executorConfigIsValid",
                   "getGuidedDecodingConfigFromParams", "/app/tools/fill_template.py", "--trtllm-backend-root",
                   "--trtllm-examples", "--serve-root", "/mnt/models", "modelRepository.mountPath",
                   "build/gpu_check.py", "--engine torch", "serve_root"):
        assert needle in DOC, needle
    assert "shared/" not in DOC, "the project does not cite its shared research notes"
    assert "config.tensorrtllm.pbtxt" not in DOC


def test_doc_names_the_pins_the_bugs_and_its_sources():
    for needle in (TRITON_IMAGE, f"TensorRT-LLM {TRTLLM_VERSION}", f"Triton {TRITON_VERSION}",
                   "docs/introduction/compatibility.md", "tensorrt_llm/builder.py",
                   "triton_backend/inflight_batcher_llm/src/model_instance_state.cc",
                   "triton_backend/tools/fill_template.py",
                   "#2088", "#598", "rank1-32b", "--world_size", "--logits_dtype float32",
                   "examples/models/core/qwen/README.md", "examples/models/core/llama/README.md",
                   "examples/quantization/quantize.py", "tensorrt_llm/commands/build.py",
                   "tensorrt_llm/plugin/plugin.py", "docs/source/legacy/advanced/kv-cache-reuse.md",
                   "triton_backend/all_models/inflight_batcher_llm/tensorrt_llm/config.pbtxt",
                   "docs/source/legacy/tensorrt-backend-removal.md", "LLM API"):
        assert needle in DOC, needle


def instructions(name: str) -> list[str]:
    """Arguments of every ``name`` instruction, continuation lines joined, comments dropped."""
    lines = [line for line in DOCKERFILE.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    return [line.split(None, 1)[1] for line in joined.splitlines() if line.startswith(f"{name} ")]


def test_image_is_the_pinned_triton_trtllm_container():
    assert instructions("FROM") == [TRITON_IMAGE]
    assert TRITON_IMAGE == "nvcr.io/nvidia/tritonserver:26.05-trtllm-python-py3"


def test_image_installs_the_library_without_touching_the_containers_torch():
    run = " ".join(instructions("RUN"))
    assert "pip3 install --no-cache-dir --no-deps /opt/rank1-triton/python_backend" in run
    assert 'python3 -c "import rank1_triton, tritonclient.grpc.model_config_pb2"' in run
    assert 'pip3 install --no-cache-dir "tritonclient[grpc]' in run  # the entry model parses Triton configs


def test_image_copies_what_exists_and_what_pip_needs():
    copies = [line.split() for line in instructions("COPY")]
    sources = {source.rstrip("/"): target for source, target in copies}
    for source in ("python_backend", "model_repository", "build/rank1_build", "build/gpu_check.py"):
        assert (ROOT / source).exists(), source
        assert source in sources
    readme = re.search(r'^readme\s*=\s*"([^"]+)"', (ROOT / "python_backend" / "pyproject.toml").read_text(), re.M)
    assert ("README.md" in sources) == (readme is not None and readme.group(1) == "../README.md")
    # rank1_triton's assembler looks for the templates at this path inside the image.
    source = (ROOT / "python_backend" / "rank1_triton" / "launch" / "repository.py").read_text()
    assert f'Path("{sources["model_repository"].rstrip("/")}")' in source


def test_image_default_command_serves_the_mounted_engine_folder():
    assert json.loads(instructions("ENTRYPOINT")[0]) == ["python3", "-m", "rank1_build"]
    assert json.loads(instructions("CMD")[0]) == ["serve", "/engines"]
    env = " ".join(instructions("ENV"))
    assert "PYTHONPATH=/opt/rank1-triton/build" in env
    build_target = next(target for source, target in (line.split() for line in instructions("COPY"))
                        if source.startswith("build/rank1_build"))
    assert build_target.rstrip("/") == "/opt/rank1-triton/build/rank1_build"
    assert '"/engines"' in instructions("VOLUME")[0]
    assert "Triton 2.69" in DOCKERFILE and "config.tensorrtllm.pbtxt" not in DOCKERFILE


def test_quantization_environment_is_pinned_and_installable_idempotently():
    from rank1_build.pins import MODELOPT_VERSION

    requirements = (ROOT / "build" / "requirements-quantize.txt").read_text().split("\n")
    pins = [line for line in requirements if line and not line.startswith("#")]
    assert pins == ["torch==2.13.0", f"nvidia-modelopt=={MODELOPT_VERSION}", "transformers>=4.57,<5.15",
                    "accelerate>=1.0.0", "requests", "safetensors", "pytest"]
    installer = (ROOT / "build" / "install_quantize_env.sh").read_text()
    assert "requirements-quantize.txt" in installer and ".venv-quantize" in installer
    assert "exit 0" in installer.split("python3 -m venv")[0], "an existing, working environment is left alone"
