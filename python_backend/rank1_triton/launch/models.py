"""Resolving ``--model``: a local checkpoint folder or a Hugging Face hub id such as ``jhu-clsp/rank1-7b``."""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelNotAvailableError

DEFAULT_MODEL = "jhu-clsp/rank1-0.5b"

def resolve_model(name_or_path: str) -> Path:
    """A local folder as is; a hub id through ``huggingface_hub.snapshot_download`` (cached, resumable)."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotAvailableError(f"{path} has no config.json: pass a Hugging Face checkpoint folder")
        return path.resolve()
    if path.is_absolute() or name_or_path.startswith("."):
        raise ModelNotAvailableError(f"model folder {path} does not exist")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name_or_path, allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt"]))
    except Exception as error:
        raise ModelNotAvailableError(
            f"could not download {name_or_path!r} from the Hugging Face hub ({type(error).__name__}: {error}); "
            "check the name and network access, or pass a local checkpoint folder"
        ) from error
