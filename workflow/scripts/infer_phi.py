"""Rule `infer_phi` (workflow/rules/phi.smk): adapter for diffloc.phi.jobs.infer_phi."""

from diffloc.phi.jobs import infer_phi
from diffloc.runtime import job_log

smk = snakemake  # noqa: F821
with job_log(smk.log[0]):
    infer_phi(
        model=smk.input.model,
        npz=list(smk.input.npz),
        yhat=list(smk.output.yhat),
        batch_size=smk.params.batch_size,
        device=smk.params.device,
        threads=smk.params.threads,
    )
