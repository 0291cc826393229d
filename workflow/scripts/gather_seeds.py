"""Rule `gather_seeds` (workflow/rules/calibration.smk): adapter for
diffloc.calibration.jobs.gather_seeds."""

from diffloc.calibration.jobs import gather_seeds
from diffloc.runtime import job_log

smk = snakemake  # noqa: F821
with job_log(smk.log[0]):
    gather_seeds(
        tables=list(smk.input.tables), seeds=list(smk.params.seeds), csv=list(smk.output.csv)
    )
