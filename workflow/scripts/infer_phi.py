"""Rule `infer_phi`: predict yhat for every image of one shard with the trained phi."""

import logging
import time

import torch

from diffloc.data.files import save_npz
from diffloc.data.models import load_model
from diffloc.data.shards import read_shard
from diffloc.phi.network import build_phi, predict_kde
from diffloc.provenance import versions
from diffloc.runtime import resolve_device

log = logging.getLogger("diffloc.infer_phi")


def run(
    model_path: str, shard_npz: str, out_npz: str, batch_size: int, device: str, threads: int
) -> None:
    """Write yhat float32 [N, sH, sW] in [0, 1] for the shard's images, with provenance."""
    torch.set_num_threads(threads)
    start = time.perf_counter()
    model, model_meta = load_model(model_path, lambda cfg: build_phi(cfg, cfg["upsample"]))
    shard = read_shard(shard_npz)
    photons = shard.camera.photoelectrons(shard.x)
    yhat = predict_kde(model, photons, batch_size, resolve_device(device))
    metadata = {
        "n_images": shard.n_images,
        "split": shard.metadata["split"],
        "shard": shard.metadata["shard"],
        "data_config_hash": shard.metadata["config_hash"],
        "phi_fingerprint": model_meta["fingerprint"],
        "versions": versions(),
    }
    save_npz(out_npz, {"yhat": yhat}, metadata)
    log.info(
        "%s: %d images in %.2f s -> %s",
        shard_npz,
        shard.n_images,
        time.perf_counter() - start,
        out_npz,
    )


if "snakemake" in globals():
    logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, force=True)  # noqa: F821
    smk = snakemake  # noqa: F821
    run(
        smk.input.model,
        smk.input.npz,
        smk.output[0],
        smk.params.batch_size,
        smk.params.device,
        smk.threads,
    )
