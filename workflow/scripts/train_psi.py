"""Rule `train_psi` (workflow/rules/psi.smk): adapter for diffloc.psi.jobs.train_psi."""

from diffloc.psi.jobs import train_psi
from diffloc.runtime import job_log

smk = snakemake  # noqa: F821
with job_log(smk.log[0]):
    train_psi(
        train_yhat=list(smk.input.train_yhat),
        train_npz=list(smk.input.train_npz),
        val_yhat=list(smk.input.val_yhat),
        val_npz=list(smk.input.val_npz),
        model=smk.output.model,
        log_csv=smk.output.log_csv,
        psi=smk.params.psi,
        seed=smk.params.seed,
        checkpoint=smk.params.checkpoint,
    )
