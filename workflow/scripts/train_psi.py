"""Rule `train_psi`: train the conditional diffusion model psi on (yhat, y) pairs of psi_train."""

import logging
from pathlib import Path

import torch

from diffloc import seeding
from diffloc.config import config_hash
from diffloc.data.files import load_npz
from diffloc.psi.diffusion import build_psi
from diffloc.runtime import log_allocation, resolve_device
from diffloc.training.batches import sequential_batches
from diffloc.training.loop import TrainSettings, to_tensors, train_and_save
from diffloc.training.pairs import psi_sources

log = logging.getLogger("diffloc.train_psi")


def run(
    psi_cfg: dict,
    seed: int,
    train_yhat: list[str],
    train_npz: list[str],
    val_yhat: list[str],
    val_npz: list[str],
    model_path: str,
    log_csv: str,
    checkpoint: str,
    threads: int,
    progress: bool = True,
    on_step=None,
) -> None:
    """Train psi (resuming from `checkpoint` if it matches); save its EMA weights and log.

    `psi_cfg` holds the `geometry` and `diffusion` config sections.
    """
    torch.set_num_threads(threads)
    diffusion_cfg = psi_cfg["diffusion"]
    settings = TrainSettings.from_config(diffusion_cfg["train"])
    device = resolve_device(settings.device)
    log_allocation(log, device)
    inputs = [load_npz(p, ())[1] for p in (*train_yhat, *val_yhat)]
    fingerprint = config_hash(
        {
            "psi": psi_cfg,
            "seed": seed,
            "inputs": [(m["data_config_hash"], m["phi_fingerprint"]) for m in inputs],
        }
    )
    torch.manual_seed(seeding.torch_seed(seed, "psi", "init"))
    net, diffusion = build_psi(psi_cfg)
    sources, val_sources = psi_sources(train_yhat, train_npz), psi_sources(val_yhat, val_npz)
    first_val = to_tensors(
        next(sequential_batches(val_sources, settings.batch_size)), torch.device("cpu")
    )
    report = diffusion.schedule_report(first_val["y"], first_val["yhat"])
    log.info(
        "psi: %d parameters; schedule gamma_T = %.3g, SNR_T = %.3g, prior KL (eq. 7) %.3g nats per "
        "background pixel, %.3g nats per pixel on validation data",
        sum(p.numel() for p in net.parameters()),
        report["gamma_T"],
        report["snr_T"],
        report["prior_kl_background"],
        report["prior_kl_data"],
    )

    def loss(model, batch, generator):
        return diffusion.training_loss(model, batch["y"], batch["yhat"], generator)

    train_and_save(
        net,
        loss,
        sources,
        val_sources,
        settings,
        seed=seed,
        key=("psi",),
        model_path=Path(model_path),
        model_config=psi_cfg,
        metadata={"network": "psi", "config": psi_cfg, "schedule": report},
        checkpoint=Path(checkpoint),
        log_csv=Path(log_csv),
        fingerprint=fingerprint,
        progress=progress,
        on_step=on_step,
    )


if "snakemake" in globals():
    logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, force=True)  # noqa: F821
    smk = snakemake  # noqa: F821
    run(
        smk.params.psi,
        smk.params.seed,
        list(smk.input.train_yhat),
        list(smk.input.train_npz),
        list(smk.input.val_yhat),
        list(smk.input.val_npz),
        smk.output.model,
        smk.output.log_csv,
        smk.params.checkpoint,
        smk.threads,
    )
