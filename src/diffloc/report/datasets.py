"""A run's dataset summary for its report: one row per split (shards, images, emitters, photons)."""

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from diffloc.data.files import load_npz
from diffloc.data.shards import read_emitters

DATASET_COLUMNS = (
    "split",
    "shards",
    "images",
    "emitters",
    "emitters_per_image",
    "photons_per_emitter",
)


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
