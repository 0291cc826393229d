"""Rule `localize` (workflow/rules/localize.smk): adapter for diffloc.localize.jobs.localize."""

from diffloc.localize.jobs import localize
from diffloc.runtime import job_log

smk = snakemake  # noqa: F821
with job_log(smk.log[0]):
    localize(
        kde=list(smk.input.kde),
        npz=list(smk.input.npz),
        parquet=list(smk.input.parquet),
        table=smk.output.table,
        metrics=smk.output.metrics,
        config=smk.params.config,
        source=smk.wildcards.source,
        split=smk.wildcards.split,
        photons=smk.params.photons,
        sigma_y=smk.params.sigma_y,
    )
