"""Rule `report` (workflow/rules/report.smk): adapter for diffloc.report.jobs.report."""

from diffloc.report.jobs import report
from diffloc.runtime import job_log

smk = snakemake  # noqa: F821
with job_log(smk.log[0]):
    report(
        targets=list(smk.input.targets),
        config_yaml=smk.input.config_yaml,
        html=smk.output.html,
        snakefile=smk.params.snakefile,
    )
