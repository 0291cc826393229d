"""Training pairs of each network as lazily loaded shard sources (`diffloc.training.batches`)."""

from pathlib import Path

import numpy as np

from diffloc.data.condition import Condition, shard_photons
from diffloc.data.files import ShardError
from diffloc.data.shards import read_shard, read_yhat, shard_kde, shard_size
from diffloc.training.batches import ShardSource


def load_photons_and_kde(
    npz_path: str | Path, parquet_path: str | Path | None = None, sigma_y: float | None = None
) -> dict[str, np.ndarray]:
    """phi's training pair of a simulated shard: photons (x - o)/g [N, H, W] and its true KDEs y
    [N, sH, sW], at kernel width `sigma_y` (HR px; default: the shard's own, else rendered from
    the emitter table at `parquet_path`)."""
    shard = read_shard(npz_path, parquet_path)
    photons = shard.camera.photoelectrons(shard.x).astype(np.float32)
    y = shard.y if sigma_y is None else shard_kde(shard, sigma_y)
    return {"photons": photons, "y": y}


def phi_sources(
    npz_paths: list[str | Path],
    parquet_paths: list[str | Path] | None = None,
    sigma_y: float | None = None,
) -> list[ShardSource]:
    """Shard sources of (photons, y) pairs for phi, loaded only when a batch needs them; y at KDE
    width `sigma_y` (HR px, default the shards' own; another width needs `parquet_paths`)."""
    parquet = [None] * len(npz_paths) if parquet_paths is None else list(parquet_paths)
    if len(parquet) != len(npz_paths):
        raise ValueError(f"{len(parquet)} emitter tables for {len(npz_paths)} data shards")
    return [
        ShardSource(shard_size(p), lambda p=p, t=t: load_photons_and_kde(p, t, sigma_y))
        for p, t in zip(map(Path, npz_paths), parquet, strict=True)
    ]


def load_condition_and_kde(
    yhat_path: str | Path, npz_path: str | Path, condition: Condition
) -> dict[str, np.ndarray]:
    """psi's training pair of a shard: its condition `cond` [N, C, sH, sW] (phi's yhat and, for
    yhat_x, the camera images x in photons, (x - offset) / gain) and the true KDE y [N, sH, sW]."""
    yhat, meta = read_yhat(yhat_path)
    shard = read_shard(npz_path)
    if meta.get("data_config_hash") != shard.metadata["config_hash"]:
        raise ShardError(
            f"{yhat_path}: made from data with config hash {meta.get('data_config_hash')}, "
            f"but {npz_path} has {shard.metadata['config_hash']}; rerun infer_phi"
        )
    if yhat.shape != shard.y.shape:
        raise ShardError(f"{yhat_path}: yhat shape {list(yhat.shape)} differs from y in {npz_path}")
    return {"cond": condition.build(yhat, shard_photons(shard)), "y": shard.y}


def psi_sources(
    yhat_paths: list[str | Path], npz_paths: list[str | Path], condition: Condition
) -> list[ShardSource]:
    """Shard sources of (condition, y) pairs for psi, loaded only when a batch needs them."""
    if len(yhat_paths) != len(npz_paths):
        raise ValueError(f"{len(yhat_paths)} yhat files for {len(npz_paths)} data shards")
    return [
        ShardSource(shard_size(p), lambda p=p, d=d: load_condition_and_kde(p, d, condition))
        for p, d in zip(yhat_paths, npz_paths, strict=True)
    ]
