"""Rule `fig7` (workflow/rules/figures.smk): adapter for diffloc.figures.jobs.fig7."""

from diffloc.figures.jobs import fig7
from diffloc.runtime import job_log

smk = snakemake  # noqa: F821
with job_log(smk.log[0]):
    fig7(
        ablation=smk.input.ablation,
        recommendation=smk.input.recommendation,
        timing=smk.input.timing,
        png=smk.output.png,
        pdf=smk.output.pdf,
        max_coverage_error=smk.params.max_coverage_error,
    )
