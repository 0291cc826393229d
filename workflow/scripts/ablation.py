"""Rule `ablation`: sample psi with every step count of one sampler kind (K = max(k) per image,
subsampled to each k) on the ablation images; write calibration metrics and, separately, the
measured seconds per image (timings are not reproducible; the metrics file is)."""

import logging

import pandas as pd
import torch

from diffloc import seeding
from diffloc.calibration.ablation import draw, grid, subsample_rows, timing_rows, warm_up
from diffloc.calibration.inputs import read_estimates, read_mcmc_set, read_truth
from diffloc.data.files import atomic_path, save_csv
from diffloc.psi.diffusion import load_psi
from diffloc.runtime import describe_device, log_allocation, resolve_device

log = logging.getLogger("diffloc.ablation")


def run(
    model_path: str,
    kind: str,
    ablation: dict,
    reference: dict,
    test: dict[str, list[str]],
    isolated: dict[str, list[str]],
    levels: list[float],
    floor: float,
    device_name: str,
    seed: int,
    threads: int,
    out_csv: str,
    out_timing: str,
) -> None:
    """Runs of `kind` in the grid (calibration.ablation + the study's sampler `reference`);
    `test`: {npz, yhat}; `isolated`: {npz, yhat, maps} (MCMC beta = 1 maps)."""
    torch.set_num_threads(threads)
    device = resolve_device(device_name)
    log_allocation(log, device)
    net, diffusion, _ = load_psi(model_path, device)
    ks, n_test, n_iso = ablation["k"], ablation["test_images"], ablation["isolated_images"]
    y0 = read_truth(test["npz"], n_test)
    yhat = {"test": read_estimates(test["yhat"], n_test)}
    y0_iso = mcmc_std = None
    if n_iso:
        y0_iso = read_truth(isolated["npz"], n_iso)
        yhat["isolated"] = read_estimates(isolated["yhat"], n_iso)
        maps = read_mcmc_set(isolated["maps"])
        at = {int(image): i for i, image in enumerate(maps["image"])}
        mcmc_std = maps["std"][[at[i] for i in range(n_iso)]]
    cond = {name: torch.from_numpy(c).to(device) for name, c in yhat.items()}
    for c in cond.values():
        warm_up(diffusion, net, c, max(ks), ablation["batch_size"])
    metrics, timings = [], []
    for r in (r for r in grid(ablation, reference) if r.kind == kind):
        samples, seconds = {}, 0.0
        for name, c in cond.items():
            generator = torch.Generator(device).manual_seed(
                seeding.torch_seed(seed, "ablation", r.kind, r.steps, name)
            )
            samples[name], took = draw(
                diffusion, net, c, max(ks), generator, r, ablation["batch_size"]
            )
            seconds += took
        per_image = seconds / sum(len(c) for c in yhat.values())
        log.info(
            "%s S = %d (%s): %.3f s per image for K = %d on %s, %d threads",
            r.kind,
            r.steps,
            r.spacing,
            per_image,
            max(ks),
            describe_device(device),
            threads,
        )
        metrics.append(
            subsample_rows(
                r,
                ks,
                samples["test"],
                y0,
                samples.get("isolated"),
                y0_iso,
                mcmc_std,
                levels,
                floor,
            )
        )
        timings.append(timing_rows(r, ks, per_image).assign(device=describe_device(device)))
    save_csv(pd.concat(metrics, ignore_index=True), out_csv, float_format="%.9g")
    with atomic_path(out_timing) as tmp:
        pd.concat(timings, ignore_index=True).assign(threads=threads).to_csv(
            tmp, index=False, float_format="%.6g"
        )


if "snakemake" in globals():
    logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, force=True)  # noqa: F821
    smk = snakemake  # noqa: F821
    p = smk.params
    run(
        smk.input.model,
        smk.wildcards.sampler,
        p.ablation,
        p.reference,
        p.test,
        p.isolated,
        p.levels,
        p.floor,
        p.device,
        p.seed,
        smk.threads,
        smk.output.csv,
        smk.output.timing,
    )
