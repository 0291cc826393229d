"""Rule `phi_targets` (workflow/rules/localize.smk): adapter for diffloc.localize.jobs.phi_targets."""

from diffloc.localize.jobs import phi_targets
from diffloc.runtime import job_log

smk = snakemake  # noqa: F821
with job_log(smk.log[0]):
    phi_targets(
        metrics=list(smk.input.metrics),
        sweeps=list(smk.input.sweeps),
        localization=smk.output.localization,
        sweep=smk.output.sweep,
        checks=smk.output.checks,
        targets=smk.params.targets,
        split=smk.params.split,
    )
