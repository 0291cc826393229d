"""What a run was made of, for its report: software versions and a summary of its datasets."""

import importlib.metadata
import platform
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import diffloc
from diffloc.io import load_npz, read_emitters

DATASET_COLUMNS = (
    "split",
    "shards",
    "images",
    "emitters",
    "emitters_per_image",
    "photons_per_emitter",
)


def versions() -> dict[str, str]:
    """Versions of the software that computes an artifact, stored in its metadata."""
    return {
        "diffloc": diffloc.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": str(torch.__version__),
    }


def package_versions(distribution: str = "diffloc") -> dict[str, str]:
    """Versions of Python, `distribution` and every package it requires."""
    out = {
        "python": platform.python_version(),
        distribution: importlib.metadata.version(distribution),
    }
    for requirement in importlib.metadata.requires(distribution) or []:
        if "extra ==" in requirement:
            continue
        name = re.split(r"[<>=!~;\[\s]", requirement, maxsplit=1)[0]
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def dataset_table(shards: Sequence[tuple[str | Path, str | Path]]) -> pd.DataFrame:
    """One row per split over (npz, parquet) shard pairs: counts, mean emitters and photons."""
    rows = []
    for npz, parquet in shards:
        _, meta = load_npz(npz, ())
        emitters, _ = read_emitters(parquet, int(meta["n_images"]))
        rows.append(
            {
                "split": meta["split"],
                "images": int(meta["n_images"]),
                "emitters": len(emitters),
                "photons": float(emitters["photons"].sum()),
            }
        )
    if not rows:
        raise ValueError("dataset_table needs at least one shard")
    frame = pd.DataFrame(rows)
    table = frame.groupby("split", sort=False).agg(
        shards=("images", "size"),
        images=("images", "sum"),
        emitters=("emitters", "sum"),
        photons=("photons", "sum"),
    )
    table["emitters_per_image"] = table["emitters"] / table["images"]
    table["photons_per_emitter"] = table["photons"] / table["emitters"].where(table["emitters"] > 0)
    return table.reset_index()[list(DATASET_COLUMNS)]
