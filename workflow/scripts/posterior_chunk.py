"""Rule `posterior`: K posterior samples of psi for a chunk of images of one set, summarised."""

import logging
import sys
import time

import torch
from tqdm import tqdm

from diffloc import seeding
from diffloc.data.posterior import save_posterior
from diffloc.data.shards import image_range, read_yhat
from diffloc.provenance import versions
from diffloc.psi.diffusion import Sampler, load_psi
from diffloc.psi.posterior import concat_summaries, summarize
from diffloc.runtime import log_allocation, resolve_device

log = logging.getLogger("diffloc.posterior")


def run(
    model_path: str,
    set_name: str,
    chunk: int,
    start: int,
    stop: int,
    yhat_paths: list[str],
    sampler_cfg: dict,
    summary_cfg: dict,
    device_name: str,
    seed: int,
    out: str,
    threads: int,
    progress: bool = True,
) -> None:
    """Sample images [start, stop) of `set_name` (phi's yhat as condition) and save the summary."""
    torch.set_num_threads(threads)
    device = resolve_device(device_name)
    log_allocation(log, device)
    net, diffusion, meta = load_psi(model_path, device)
    sampler, k = Sampler.from_config(sampler_cfg), sampler_cfg["k"]
    yhat = torch.from_numpy(image_range(yhat_paths, start, stop, lambda p: read_yhat(p)[0])).to(
        device
    )
    generator = torch.Generator(device).manual_seed(
        seeding.torch_seed(seed, "posterior", set_name, chunk)
    )
    group = max(1, sampler_cfg["batch_size"] // k)
    began, parts = time.perf_counter(), []
    bar = tqdm(
        range(0, len(yhat), group),
        desc=f"posterior {set_name}/{chunk}",
        unit="group",
        disable=not progress,
        file=sys.stderr,
        mininterval=1.0 if sys.stderr.isatty() else 30.0,
    )
    for i in bar:
        samples = diffusion.sample(
            net, yhat[i : i + group], k, generator, sampler, sampler_cfg["batch_size"]
        )
        parts.append(summarize(samples, summary_cfg["quantiles"], summary_cfg["raw_samples"]))
    seconds = time.perf_counter() - began
    metadata = {
        "set": set_name,
        "chunk": chunk,
        "images": [start, stop],
        "n_images": stop - start,
        "k": k,
        "sampler": sampler_cfg,
        "psi_fingerprint": meta["fingerprint"],
        "seed_key": ["posterior", set_name, chunk],
        "device": str(device),
        "versions": versions(),
    }
    save_posterior(out, concat_summaries(parts), metadata)
    log.info(
        "%s chunk %d: images %d..%d, K = %d, %.2f s per image",
        set_name,
        chunk,
        start,
        stop - 1,
        k,
        seconds / (stop - start),
    )


if "snakemake" in globals():
    logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, force=True)  # noqa: F821
    smk = snakemake  # noqa: F821
    start, stop = smk.params.images
    run(
        smk.input.model,
        smk.wildcards.split,
        int(smk.wildcards.chunk),
        start,
        stop,
        list(smk.input.yhat),
        smk.params.sampler,
        smk.params.summary,
        smk.params.device,
        smk.params.seed,
        smk.output[0],
        smk.threads,
    )
