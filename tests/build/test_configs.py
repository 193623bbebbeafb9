"""Serving options, the entry model's values, and the repository layout rank1_triton's assembler writes for a build."""

from pathlib import Path

import pytest
from conftest import synthetic_template
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from rank1_build.configs import ServingOptions, entry_values, model_repository_dir, write_repository
from rank1_build.engine_config import FillContext, fill_argument, fill_values, finish_config, render_like_fill_template
from rank1_build.sizing import EngineShape
from rank1_triton.errors import TemplateError
from rank1_triton.launch.repository import placeholders, relocate_repository


def values(**options):
    return entry_values(tokenizer_dir="/models/tokenizer", shape=EngineShape(), options=ServingOptions(**options))


def filled_engine_config() -> str:
    context = FillContext(engine_dir="/models/engine", shape=EngineShape(), options=ServingOptions())
    fill = fill_values(context)
    return finish_config(render_like_fill_template(synthetic_template(), fill_argument(fill)), fill, context, "t")


def parse(path: Path) -> model_config_pb2.ModelConfig:
    return text_format.Parse(path.read_text(encoding="utf-8"), model_config_pb2.ModelConfig())


def test_entry_values_are_exactly_the_entry_templates_placeholders():
    template = (model_repository_dir() / "rank1" / "config.pbtxt").read_text(encoding="utf-8")
    assert set(values()) == placeholders(template)
    filled = values(max_documents=50, rank1_instance_count=2)
    assert filled["engine_model_name"] == "tensorrt_llm"
    assert filled["default_max_reasoning_tokens"] == "8192"
    assert (filled["max_documents"], filled["rank1_instance_count"]) == ("50", "2")
    assert filled["tokenizer_dir"] == "/models/tokenizer"
    assert ServingOptions().max_queue_size > 0  # bounded by default: overload is rejected, not buffered


def test_the_tensorrt_llm_repository_holds_nvidias_filled_config_and_no_python_engine(tmp_path):
    repository = write_repository(tmp_path / "repo", values(), engine_config=filled_engine_config())
    assert sorted(p.name for p in repository.iterdir()) == ["rank1", "tensorrt_llm"]
    assert sorted(p.name for p in (repository / "tensorrt_llm").iterdir()) == ["1", "config.pbtxt"]
    assert not list((repository / "tensorrt_llm" / "1").iterdir())
    engine = parse(repository / "tensorrt_llm" / "config.pbtxt")
    assert engine.backend == "tensorrtllm"
    entry = parse(repository / "rank1" / "config.pbtxt")
    assert entry.parameters["tokenizer_dir"].string_value == "/models/tokenizer"
    assert not list(repository.rglob("*.tensorrtllm.pbtxt"))


def test_without_the_engine_config_the_fill_step_writes_it(tmp_path):
    repository = write_repository(tmp_path / "repo", values())
    assert not (repository / "tensorrt_llm" / "config.pbtxt").exists()
    assert (repository / "tensorrt_llm" / "1").is_dir()


def test_values_no_template_uses_are_refused(tmp_path):
    with pytest.raises(TemplateError, match="no template uses: engine_dir"):
        write_repository(tmp_path / "repo", {**values(), "engine_dir": "/models/engine"})
    partial = values()
    del partial["tokenizer_dir"]
    with pytest.raises(TemplateError, match="needs values for: tokenizer_dir"):
        write_repository(tmp_path / "repo", partial)


def test_relocation_moves_only_paths_under_the_old_root(tmp_path):
    built = write_repository(tmp_path / "built", values(), engine_config=filled_engine_config().replace(
        'key: "FORCE_CPU_ONLY_INPUT_TENSORS"', 'key: "other_path"\n  value: { string_value: "/models2/x" } }\n'
                                               'parameters: {\n  key: "FORCE_CPU_ONLY_INPUT_TENSORS"'))
    moved = relocate_repository(built, tmp_path / "moved", "/models", "/mnt/models")
    engine = parse(moved / "tensorrt_llm" / "config.pbtxt")
    assert engine.parameters["gpt_model_path"].string_value == "/mnt/models/engine"
    assert engine.parameters["other_path"].string_value == "/models2/x"
    assert parse(moved / "rank1" / "config.pbtxt").parameters["tokenizer_dir"].string_value == "/mnt/models/tokenizer"
    assert parse(built / "tensorrt_llm" / "config.pbtxt").parameters["gpt_model_path"].string_value == (
        "/models/engine")


@pytest.mark.parametrize(
    "options",
    [{"batch_scheduler_policy": "fifo"}, {"kv_cache_free_gpu_mem_fraction": 0.0}, {"max_documents": 0},
     {"max_queue_size": -1}, {"queue_timeout_microseconds": -5}],
)
def test_serving_options_are_checked(options):
    with pytest.raises(ValueError):
        ServingOptions(**options)
