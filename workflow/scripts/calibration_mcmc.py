"""Rule `calibration_mcmc` (workflow/rules/calibration.smk): adapter for diffloc.calibration.jobs.calibration_mcmc."""

from diffloc.calibration.jobs import calibration_mcmc
from diffloc.runtime import grouped, job_log

smk = snakemake  # noqa: F821
with job_log(smk.log[0]):
    calibration_mcmc(
        posterior=grouped(smk.input, "posterior"),
        npz=grouped(smk.input, "npz"),
        maps=grouped(smk.input, "maps"),
        csv=smk.output.csv,
        per_image=smk.output.per_image,
        photons=smk.params.photons,
        betas=smk.params.betas,
        n_images=smk.params.n_images,
        floor=smk.params.floor,
        bootstrap=smk.params.bootstrap,
        seed=smk.params.seed,
    )
