"""Rule `localize` (workflow/rules/localize.smk): adapter for diffloc.localize.jobs.localize."""

from diffloc.localize.jobs import localize
from diffloc.runtime import grouped, job_log

smk = snakemake  # noqa: F821
with job_log(smk.log[0]):
    localize(
        kde=grouped(smk.input, "kde"),
        npz=grouped(smk.input, "npz"),
        parquet=grouped(smk.input, "parquet"),
        tables=list(smk.output.tables),
        metrics=list(smk.output.metrics),
        splits=smk.params.splits,
        config=smk.params.config,
        source=smk.wildcards.source,
        photons=smk.params.photons,
        sigma_y=smk.params.sigma_y,
    )
