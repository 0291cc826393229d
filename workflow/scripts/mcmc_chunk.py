"""Rule `mcmc` (workflow/rules/mcmc.smk): adapter for diffloc.mcmc.jobs.mcmc."""

from diffloc.mcmc.jobs import mcmc
from diffloc.runtime import job_log

smk = snakemake  # noqa: F821
with job_log(smk.log[0]):
    mcmc(
        npz=list(smk.input.npz),
        parquet=list(smk.input.parquet),
        chains=smk.output.chains,
        maps=smk.output.maps,
        diagnostics=smk.output.diagnostics,
        chunk=smk.params.chunk,
    )
