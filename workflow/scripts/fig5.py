"""Rule `fig5` (workflow/rules/figures.smk): adapter for diffloc.figures.jobs.fig5."""

from diffloc.figures.jobs import fig5
from diffloc.runtime import job_log

smk = snakemake  # noqa: F821
with job_log(smk.log[0]):
    fig5(
        sweep=smk.input.sweep,
        localization=smk.input.localization,
        png=smk.output.png,
        pdf=smk.output.pdf,
    )
