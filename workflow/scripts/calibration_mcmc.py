"""Rule `calibration_mcmc`: psi's std maps of isolated emitters against the MCMC push-forward std
(every MCMC setting, every photon count): per-image ratios and correlations, bootstrap medians."""

import logging

from diffloc import seeding
from diffloc.calibration.inputs import read_mcmc_set, read_posterior_set, read_truth
from diffloc.calibration.tables import IsolatedSet, mcmc_per_image, mcmc_summary
from diffloc.data.files import save_csv

log = logging.getLogger("diffloc.calibration")


def run(
    sets: dict[str, dict],
    betas: dict[str, float],
    n_images: int,
    floor: float,
    n_boot: int,
    seed: int,
    out_csv: str,
    out_per_image: str,
) -> None:
    """`sets`: set name -> {photons, posterior: [npz], npz: [data npz], maps: {setting: [npz]}};
    psi's first n_images of each set are compared with the MCMC maps of the same images."""
    loaded = []
    for name, files in sets.items():
        post = read_posterior_set(files["posterior"], n_images)
        loaded.append(
            IsolatedSet(
                name,
                float(files["photons"]),
                read_truth(files["npz"], n_images),
                post["mean"],
                post["std"],
                {s: (betas[s], read_mcmc_set(paths)) for s, paths in files["maps"].items()},
            )
        )
    per_image = mcmc_per_image(loaded, floor)
    summary = mcmc_summary(per_image, n_boot, seeding.rng(seed, "calibration", "mcmc"))
    for row in summary.itertuples():
        log.info(
            "%s (beta %g) %s: median ratio %.3f [%.3f, %.3f], median r %.3f (%d images)",
            row.setting,
            row.beta,
            row.set,
            row.median_ratio,
            row.ratio_lo,
            row.ratio_hi,
            row.median_pearson,
            row.n_images,
        )
    save_csv(per_image, out_per_image, float_format="%.9g")
    save_csv(summary, out_csv, float_format="%.9g")


if "snakemake" in globals():
    logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, force=True)  # noqa: F821
    smk = snakemake  # noqa: F821
    run(
        smk.params.sets,
        smk.params.betas,
        smk.params.n_images,
        smk.params.floor,
        smk.params.bootstrap,
        smk.params.seed,
        smk.output.csv,
        smk.output.per_image,
    )
