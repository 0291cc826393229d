"""Job functions of the phi stage: one per rule of workflow/rules/phi.smk."""

import logging
import time
from collections.abc import Callable
from pathlib import Path

import torch

from diffloc import seeding
from diffloc.config import config_hash
from diffloc.data.files import load_npz, save_npz
from diffloc.data.models import load_model
from diffloc.data.shards import read_shard
from diffloc.phi.network import Phi, build_phi, load_phi_model, phi_loss, predict_kde
from diffloc.provenance import versions
from diffloc.runtime import log_allocation, resolve_device, torch_threads
from diffloc.training.loop import TrainSettings, train_and_save
from diffloc.training.pairs import phi_sources

log = logging.getLogger(__name__)


def train_phi(
    *,
    train: list[str],
    train_emitters: list[str],
    val: list[str],
    val_emitters: list[str],
    model: str | Path,
    log_csv: str | Path,
    phi: dict,
    seed: int,
    upsample: int,
    sigma_y: float,
    ceiling: float,
    checkpoint: str | Path,
    progress: bool = True,
    on_step: Callable[[int], None] | None = None,
) -> None:
    """Train phi on `train` shards, validated on `val`, towards true KDEs of kernel width
    `sigma_y` (HR px; rendered from the emitter tables where the shards hold another width),
    yhat clamped to [0, ceiling] (`kde_ceiling`); save weights, loss log (MSE per step)."""
    settings = TrainSettings.from_config(phi["train"])
    log_allocation(log, resolve_device(settings.device))
    data_hashes = [load_npz(p, ())[1]["config_hash"] for p in (*train, *val)]
    fingerprint = config_hash(
        {"phi": phi, "seed": seed, "data": data_hashes, "sigma_y": sigma_y, "ceiling": ceiling}
    )
    torch.manual_seed(seeding.torch_seed(seed, "phi", "init"))  # weight initialisation
    network = build_phi(phi["model"], upsample, ceiling)
    log.info(
        "phi: %d parameters, %d training shards, %d validation shards, %s",
        sum(p.numel() for p in network.parameters()),
        len(train),
        len(val),
        settings,
    )
    train_and_save(
        network,
        phi_loss,
        phi_sources(train, train_emitters, sigma_y),
        phi_sources(val, val_emitters, sigma_y),
        settings,
        seed=seed,
        key=("phi",),
        model_path=Path(model),
        model_config={**phi["model"], "upsample": upsample, "ceiling": ceiling},
        metadata={"network": "phi", "sigma_y": sigma_y},
        checkpoint=Path(checkpoint),
        log_csv=Path(log_csv),
        fingerprint=fingerprint,
        progress=progress,
        on_step=on_step,
    )


def infer_phi(
    *,
    model: str | Path,
    npz: list[str],
    yhat: list[str],
    batch_size: int,
    device: str,
    threads: int = 1,
) -> None:
    """Predict yhat (float32 [N, sH, sW] in [0, kde ceiling]) for every image of data shard
    npz[i] into yhat[i] with phi, on `threads` torch CPU threads (pinned by the config: the
    float results depend on it); one job for many shards."""
    if len(npz) != len(yhat):
        raise ValueError(f"{len(npz)} data shards but {len(yhat)} yhat outputs")
    with torch_threads(threads):
        network, model_meta = load_model(model, load_phi_model)
        for source, target in zip(npz, yhat, strict=True):
            _infer_shard(network, model_meta, source, target, batch_size, device)


def _infer_shard(
    network: Phi, model_meta: dict, npz: str, yhat: str, batch_size: int, device: str
) -> None:
    """phi's yhat of one data shard, with provenance."""
    start = time.perf_counter()
    shard = read_shard(npz)
    photons = shard.camera.photoelectrons(shard.x)
    kde = predict_kde(network, photons, batch_size, resolve_device(device))
    metadata = {
        "n_images": shard.n_images,
        "split": shard.metadata["split"],
        "shard": shard.metadata["shard"],
        "data_config_hash": shard.metadata["config_hash"],
        "phi_fingerprint": model_meta["fingerprint"],
        "versions": versions(),
    }
    save_npz(yhat, {"yhat": kde}, metadata)
    log.info(
        "%s: %d images in %.2f s -> %s", npz, shard.n_images, time.perf_counter() - start, yhat
    )
