"""Rule `fig4` (workflow/rules/figures.smk): adapter for diffloc.figures.jobs.fig4."""

from diffloc.figures.jobs import fig4
from diffloc.runtime import job_log

smk = snakemake  # noqa: F821
with job_log(smk.log[0]):
    fig4(
        posterior=list(smk.input.posterior),
        npz=list(smk.input.npz),
        yhat=list(smk.input.yhat),
        png=smk.output.png,
        pdf=smk.output.pdf,
        n_images=smk.params.n_images,
    )
