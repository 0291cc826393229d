"""Rule `psi_metrics` (workflow/rules/psi.smk): adapter for diffloc.psi.jobs.psi_metrics."""

from diffloc.psi.jobs import psi_metrics
from diffloc.runtime import job_log

smk = snakemake  # noqa: F821
with job_log(smk.log[0]):
    psi_metrics(
        posterior=list(smk.input.posterior),
        npz=list(smk.input.npz),
        yhat=list(smk.input.yhat),
        metrics=smk.output.metrics,
        floor=smk.params.floor,
        max_mse_ratio=smk.params.max_mse_ratio,
    )
