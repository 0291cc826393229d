"""Rule `calibration_coverage` (workflow/rules/calibration.smk): adapter for diffloc.calibration.jobs.calibration_coverage."""

from diffloc.calibration.jobs import calibration_coverage
from diffloc.runtime import grouped, job_log

smk = snakemake  # noqa: F821
with job_log(smk.log[0]):
    calibration_coverage(
        posterior=grouped(smk.input, "posterior"),
        npz=grouped(smk.input, "npz"),
        yhat=grouped(smk.input, "yhat"),
        csv=smk.output.csv,
        reliability=smk.output.reliability,
        z_hist=smk.output.z_hist,
        n_test=smk.params.n_test,
        n_val=smk.params.n_val,
        levels=smk.params.levels,
        recalibration_level=smk.params.recalibration_level,
        floor=smk.params.floor,
        bootstrap=smk.params.bootstrap,
        z_histogram=smk.params.z_histogram,
        seed=smk.params.seed,
    )
