"""Rule `calibration_ablation` (workflow/rules/calibration.smk): adapter for diffloc.calibration.jobs.calibration_ablation."""

from diffloc.calibration.jobs import calibration_ablation
from diffloc.runtime import job_log

smk = snakemake  # noqa: F821
with job_log(smk.log[0]):
    calibration_ablation(
        metrics=list(smk.input.metrics),
        timings=list(smk.input.timings),
        csv=smk.output.csv,
        recommendation=smk.output.recommendation,
        timing=smk.output.timing,
        max_coverage_error=smk.params.max_coverage_error,
        ratio_bounds=smk.params.ratio_bounds,
    )
