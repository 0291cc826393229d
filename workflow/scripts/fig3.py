"""Rule `fig3` (workflow/rules/figures.smk): adapter for diffloc.figures.jobs.fig3."""

from diffloc.figures.jobs import fig3
from diffloc.runtime import job_log

smk = snakemake  # noqa: F821
with job_log(smk.log[0]):
    fig3(
        model=smk.input.model,
        npz=smk.input.npz,
        yhat=smk.input.yhat,
        png=smk.output.png,
        pdf=smk.output.pdf,
        image=smk.params.image,
        sampler=smk.params.sampler,
        seed=smk.params.seed,
    )
