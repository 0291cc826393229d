"""Job functions of the psi stage: one per rule of workflow/rules/psi.smk."""

import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from diffloc import seeding
from diffloc.config import config_hash, crop_step
from diffloc.data.condition import Condition, read_condition
from diffloc.data.files import load_npz, save_csv
from diffloc.data.posterior import load_posterior, save_posterior
from diffloc.data.shards import image_range, read_shard, read_yhat
from diffloc.provenance import versions
from diffloc.psi.crops import random_crops
from diffloc.psi.diffusion import Sampler, build_psi, load_psi
from diffloc.psi.posterior import sample_summaries
from diffloc.psi.quality import posterior_quality
from diffloc.runtime import log_allocation, resolve_device, torch_threads
from diffloc.training.batches import sequential_batches
from diffloc.training.loop import TrainSettings, to_tensors, train_and_save
from diffloc.training.pairs import psi_sources

log = logging.getLogger(__name__)


def train_psi(
    *,
    train_yhat: list[str],
    train_npz: list[str],
    val_yhat: list[str],
    val_npz: list[str],
    model: str | Path,
    log_csv: str | Path,
    psi: dict,
    seed: int,
    checkpoint: str | Path,
    progress: bool = True,
    on_step: Callable[[int], None] | None = None,
) -> None:
    """Train psi on (condition, y) pairs (y in KDE units, [0, 1]; the condition of
    `diffusion.condition`: phi's yhat, and for yhat_x the data shards' camera images in photons,
    `diffloc.data.condition`); save its EMA weights and a loss log.

    `psi` holds the `geometry` and `diffusion` config sections. Training resumes from
    `checkpoint` when it belongs to the same config and data; `on_step(step)` is called after
    every step (tests use it to interrupt training).
    """
    diffusion_cfg = psi["diffusion"]
    settings = TrainSettings.from_config(diffusion_cfg["train"])
    device = resolve_device(settings.device)
    log_allocation(log, device)
    inputs = [load_npz(p, ())[1] for p in (*train_yhat, *val_yhat)]
    fingerprint = config_hash(
        {
            "psi": psi,
            "seed": seed,
            "inputs": [(m["data_config_hash"], m["phi_fingerprint"]) for m in inputs],
        }
    )
    torch.manual_seed(seeding.torch_seed(seed, "psi", "init"))
    net, diffusion = build_psi(psi)
    condition = Condition.from_config(psi)
    sources = psi_sources(train_yhat, train_npz, condition)
    val_sources = psi_sources(val_yhat, val_npz, condition)
    first_val = to_tensors(
        next(sequential_batches(val_sources, settings.batch_size)), torch.device("cpu")
    )
    report = diffusion.schedule_report(first_val["y"], first_val["cond"][:, :1])
    log.info(
        "psi: %d parameters; schedule gamma_T = %.3g, SNR_T = %.3g, prior KL (eq. 7) %.3g nats per "
        "background pixel, %.3g nats per pixel on validation data",
        sum(p.numel() for p in net.parameters()),
        report["gamma_T"],
        report["snr_T"],
        report["prior_kl_background"],
        report["prior_kl_data"],
    )

    crop = diffusion_cfg["train_crop"]
    step = crop_step(psi["geometry"], diffusion_cfg["unet"])

    def loss(model, batch, generator):
        y, cond = batch["y"], batch["cond"]
        if crop:
            y, cond = random_crops(y, cond, crop, step, generator)
        return diffusion.training_loss(model, y, cond, generator)

    train_and_save(
        net,
        loss,
        sources,
        val_sources,
        settings,
        seed=seed,
        key=("psi",),
        model_path=Path(model),
        model_config=psi,
        metadata={"network": "psi", "config": psi, "schedule": report},
        checkpoint=Path(checkpoint),
        log_csv=Path(log_csv),
        fingerprint=fingerprint,
        progress=progress,
        on_step=on_step,
    )


def posterior(
    *,
    model: str | Path,
    yhat: list[str],
    npz: list[str],
    condition: str,
    posterior: str | Path,
    split: str,
    chunk: int,
    images: list[int],
    sampler: dict,
    summary: dict,
    device: str,
    seed: int,
    progress: bool = True,
) -> None:
    """Draw K posterior samples of psi for images [start, stop) = `images` of `split` and save
    their per-image summaries (KDE units) to `posterior`. psi is conditioned on `condition`
    (diffusion.condition) built from the split's yhat files and, for yhat_x, its data shards
    `npz`; torch runs on `sampler["threads"]` CPU threads (pinned: the samples depend on it)."""
    with torch_threads(sampler["threads"]):
        start, stop = images
        torch_device = resolve_device(device)
        log_allocation(log, torch_device)
        net, diffusion, meta = load_psi(model, torch_device, condition)
        method, k = Sampler.from_config(sampler), sampler["k"]
        cond = read_condition(Condition.from_config(meta["config"]), yhat, npz, start, stop)
        cond = torch.from_numpy(cond).to(torch_device)
        generator = torch.Generator(torch_device).manual_seed(
            seeding.torch_seed(seed, "posterior", split, chunk)
        )
        began = time.perf_counter()
        summaries = sample_summaries(
            diffusion,
            net,
            cond,
            generator,
            method,
            k,
            sampler["batch_size"],
            summary["quantiles"],
            summary["raw_samples"],
            summary["quantile_method"],
            progress=progress,
            desc=f"posterior {split}/{chunk}",
        )
        seconds = time.perf_counter() - began
        metadata = {
            "set": split,
            "chunk": chunk,
            "images": [start, stop],
            "n_images": stop - start,
            "k": k,
            "sampler": sampler,
            "condition": condition,
            "psi_fingerprint": meta["fingerprint"],
            "seed_key": ["posterior", split, chunk],
            "device": str(torch_device),
            "versions": versions(),
        }
        save_posterior(posterior, summaries, metadata)
        log.info(
            "%s chunk %d: images %d..%d, K = %d, %.2f s per image",
            split,
            chunk,
            start,
            stop - 1,
            k,
            seconds / (stop - start),
        )


def psi_metrics(
    *,
    posterior: list[str],
    npz: list[str],
    yhat: list[str],
    metrics: str | Path,
    floor: float,
    max_mse_ratio: float,
) -> None:
    """Write one row for the test images psi sampled: posterior-mean MSE against phi's (KDE units
    squared), std concentration on the support, and whether the MSE ratio passes its bound."""
    summaries = [load_posterior(p)[0] for p in posterior]
    mean = np.concatenate([s["mean"] for s in summaries])
    std = np.concatenate([s["std"] for s in summaries])
    n = len(mean)
    y0 = image_range(npz, 0, n, lambda p: read_shard(p).y)
    yhat_images = image_range(yhat, 0, n, lambda p: read_yhat(p)[0])
    row = {
        "set": "test",
        **posterior_quality(y0, yhat_images, mean, std, floor),
        "support_floor": floor,
    }
    row["max_mse_ratio"] = max_mse_ratio
    row["passed"] = row["mse_ratio"] <= max_mse_ratio
    log.info("%s", row)
    save_csv(pd.DataFrame([row]), metrics)
