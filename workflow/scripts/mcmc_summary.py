"""Rule `mcmc_summary` (workflow/rules/mcmc.smk): adapter for diffloc.mcmc.jobs.mcmc_summary."""

from diffloc.mcmc.jobs import mcmc_summary
from diffloc.runtime import job_log

smk = snakemake  # noqa: F821
with job_log(smk.log[0]):
    mcmc_summary(diagnostics=list(smk.input.diagnostics), csv=smk.output.csv)
