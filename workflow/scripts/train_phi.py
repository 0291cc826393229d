"""Rule `train_phi` (workflow/rules/phi.smk): adapter for diffloc.phi.jobs.train_phi."""

from diffloc.phi.jobs import train_phi
from diffloc.runtime import job_log

smk = snakemake  # noqa: F821
with job_log(smk.log[0]):
    train_phi(
        train=list(smk.input.train),
        val=list(smk.input.val),
        model=smk.output.model,
        log_csv=smk.output.log_csv,
        phi=smk.params.phi,
        seed=smk.params.seed,
        upsample=smk.params.upsample,
        checkpoint=smk.params.checkpoint,
    )
