"""Rule `fig1` (workflow/rules/figures.smk): adapter for diffloc.figures.jobs.fig1."""

from diffloc.figures.jobs import fig1
from diffloc.runtime import job_log

smk = snakemake  # noqa: F821
with job_log(smk.log[0]):
    fig1(
        npz=smk.input.npz,
        parquet=smk.input.parquet,
        png=smk.output.png,
        pdf=smk.output.pdf,
        image=smk.params.image,
    )
