"""Rule `posterior` (workflow/rules/psi.smk): adapter for diffloc.psi.jobs.posterior."""

from diffloc.psi.jobs import posterior
from diffloc.runtime import job_log

smk = snakemake  # noqa: F821
with job_log(smk.log[0]):
    posterior(
        model=smk.input.model,
        yhat=list(smk.input.yhat),
        npz=list(smk.input.npz),
        condition=smk.params.condition,
        posterior=smk.output.posterior,
        split=smk.wildcards.split,
        chunk=int(smk.wildcards.chunk),
        images=list(smk.params.images),
        sampler=smk.params.sampler,
        summary=smk.params.summary,
        device=smk.params.device,
        seed=smk.params.seed,
    )
