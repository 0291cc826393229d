"""Rule `simulate` (workflow/rules/simulate.smk): adapter for diffloc.simulate.jobs.simulate."""

from diffloc.runtime import job_log
from diffloc.simulate.jobs import simulate

smk = snakemake  # noqa: F821
with job_log(smk.log[0]):
    simulate(shard=smk.params.shard, npz=smk.output.npz, parquet=smk.output.parquet)
