"""Rule `calibration_targets` (workflow/rules/calibration.smk): adapter for diffloc.calibration.jobs.calibration_targets."""

from diffloc.calibration.jobs import calibration_targets
from diffloc.runtime import job_log

smk = snakemake  # noqa: F821
with job_log(smk.log[0]):
    calibration_targets(
        mcmc=smk.input.mcmc,
        coverage=smk.input.coverage,
        psi=smk.input.psi,
        csv=smk.output.csv,
        targets=smk.params.targets,
        max_mse_ratio=smk.params.max_mse_ratio,
    )
