"""Model files `models/{phi,psi}.pt`: weights, model config and metadata, loaded without running code."""

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from diffloc.data.files import atomic_path


def save_model(path: Path, model: nn.Module, config: dict, metadata: dict) -> None:
    """Write a network's weights (CPU tensors), its model config and metadata, atomically."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save({"state_dict": state, "config": config, "metadata": metadata}, tmp)


def load_model(path: Path, build: Callable[[dict], nn.Module]) -> tuple[nn.Module, dict]:
    """Load a network saved by `save_model` (weights_only: no code from the file runs)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: model file is missing")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        model = build(saved["config"])
        model.load_state_dict(saved["state_dict"])
    except Exception as exc:
        raise RuntimeError(
            f"{path}: not a valid diffloc model file ({type(exc).__name__}: {exc})"
        ) from exc
    model.eval()
    return model, saved["metadata"]
