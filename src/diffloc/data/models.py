"""Model files `models/{phi,psi}.pt`: weights, model config and metadata, loaded without running code."""

import io
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from diffloc.data.files import REBUILD_HINT, ModelFileError, atomic_path


def save_model(path: Path, model: nn.Module, config: dict, metadata: dict) -> None:
    """Write a network's weights (CPU tensors), its model config and metadata, atomically and
    byte-reproducibly (serialised in memory, so the archive's inner folder name is fixed and
    does not follow the temporary file's name)."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    buffer = io.BytesIO()
    torch.save({"state_dict": state, "config": config, "metadata": metadata}, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def load_model(path: Path, build: Callable[[dict], nn.Module]) -> tuple[nn.Module, dict]:
    """Load a network saved by `save_model` (weights_only: no code from the file runs);
    ModelFileError naming the file if it is missing or not a diffloc model."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: model file is missing")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        model = build(saved["config"])
        model.load_state_dict(saved["state_dict"])
    except Exception as exc:
        raise ModelFileError(
            f"{path}: not a valid diffloc model file ({type(exc).__name__}: {exc}); {REBUILD_HINT}"
        ) from exc
    model.eval()
    return model, saved["metadata"]


def read_model_metadata(path: str | Path) -> dict:
    """The metadata of a model file (provenance, machine), without building the network."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: model file is missing")
    try:
        return dict(torch.load(path, map_location="cpu", weights_only=True)["metadata"])
    except Exception as exc:
        raise ModelFileError(
            f"{path}: not a valid diffloc model file ({type(exc).__name__}: {exc}); {REBUILD_HINT}"
        ) from exc
