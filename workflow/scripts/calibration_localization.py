"""Rule `calibration_localization` (workflow/rules/calibration.smk): adapter for diffloc.calibration.jobs.calibration_localization."""

from diffloc.calibration.jobs import calibration_localization
from diffloc.runtime import grouped, job_log

smk = snakemake  # noqa: F821
with job_log(smk.log[0]):
    calibration_localization(
        posterior=grouped(smk.input, "posterior"),
        npz=grouped(smk.input, "npz"),
        parquet=grouped(smk.input, "parquet"),
        diagnostics=grouped(smk.input, "diagnostics"),
        csv=smk.output.csv,
        tracks=smk.output.tracks,
        photons=smk.params.photons,
        n_images=smk.params.n_images,
        config=smk.params.config,
        levels=smk.params.levels,
        samples=smk.params.samples,
    )
