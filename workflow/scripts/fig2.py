"""Rule `fig2` (workflow/rules/figures.smk): adapter for diffloc.figures.jobs.fig2."""

from diffloc.figures.jobs import fig2
from diffloc.runtime import job_log

smk = snakemake  # noqa: F821
with job_log(smk.log[0]):
    fig2(
        npz=smk.input.npz,
        parquet=smk.input.parquet,
        chains=list(smk.input.chains),
        maps=list(smk.input.maps),
        diagnostics=list(smk.input.diagnostics),
        png=smk.output.png,
        pdf=smk.output.pdf,
        figure=smk.params.figure,
        settings=smk.params.settings,
        geometry=smk.params.geometry,
    )
