"""Rule `fig6` (workflow/rules/figures.smk): adapter for diffloc.figures.jobs.fig6."""

from diffloc.figures.jobs import fig6
from diffloc.runtime import job_log

smk = snakemake  # noqa: F821
with job_log(smk.log[0]):
    fig6(
        per_image=smk.input.per_image,
        coverage=smk.input.coverage,
        reliability=smk.input.reliability,
        z_hist=smk.input.z_hist,
        png=smk.output.png,
        pdf=smk.output.pdf,
    )
