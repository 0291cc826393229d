"""Rule `train_phi` (workflow/rules/phi.smk): adapter for diffloc.phi.jobs.train_phi."""

from diffloc.phi.jobs import train_phi
from diffloc.runtime import job_log

smk = snakemake  # noqa: F821
with job_log(smk.log[0]):
    train_phi(
        train=list(smk.input.train),
        train_emitters=list(smk.input.train_emitters),
        val=list(smk.input.val),
        val_emitters=list(smk.input.val_emitters),
        model=smk.output.model,
        log_csv=smk.output.log_csv,
        phi=smk.params.phi,
        seed=smk.params.seed,
        upsample=smk.params.upsample,
        sigma_y=smk.params.sigma_y,
        ceiling=smk.params.ceiling,
        checkpoint=smk.params.checkpoint,
    )
