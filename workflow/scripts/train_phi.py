"""Rule `train_phi`: train the KDE network phi on phi_train, validate on val, save weights."""

import logging
from pathlib import Path

import torch

from diffloc import seeding
from diffloc.config import config_hash
from diffloc.data.files import load_npz
from diffloc.phi.network import build_phi, phi_loss
from diffloc.runtime import log_allocation, resolve_device
from diffloc.training.loop import TrainSettings, train_and_save
from diffloc.training.pairs import phi_sources

log = logging.getLogger("diffloc.train_phi")


def run(
    phi_cfg: dict,
    seed: int,
    upsample: int,
    train_npz: list[str],
    val_npz: list[str],
    model_path: str,
    log_csv: str,
    checkpoint: str,
    threads: int,
    progress: bool = True,
    on_step=None,
) -> None:
    """Train phi (resuming from `checkpoint` if it matches) and write the model and its log."""
    torch.set_num_threads(threads)
    settings = TrainSettings.from_config(phi_cfg["train"])
    log_allocation(log, resolve_device(settings.device))
    data_hashes = [load_npz(p, ())[1]["config_hash"] for p in (*train_npz, *val_npz)]
    fingerprint = config_hash({"phi": phi_cfg, "seed": seed, "data": data_hashes})
    torch.manual_seed(seeding.torch_seed(seed, "phi", "init"))  # weight initialisation
    model = build_phi(phi_cfg["model"], upsample)
    log.info(
        "phi: %d parameters, %d training shards, %d validation shards, %s",
        sum(p.numel() for p in model.parameters()),
        len(train_npz),
        len(val_npz),
        settings,
    )
    train_and_save(
        model,
        phi_loss,
        phi_sources(train_npz),
        phi_sources(val_npz),
        settings,
        seed=seed,
        key=("phi",),
        model_path=Path(model_path),
        model_config={**phi_cfg["model"], "upsample": upsample},
        metadata={"network": "phi"},
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
        smk.params.phi,
        smk.params.seed,
        smk.params.upsample,
        list(smk.input.train),
        list(smk.input.val),
        smk.output.model,
        smk.output.log_csv,
        smk.params.checkpoint,
        smk.threads,
    )
