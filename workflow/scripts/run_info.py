"""Rule `run_info` (workflow/rules/report.smk): adapter for diffloc.report.jobs.run_info."""

from diffloc.report.jobs import run_info
from diffloc.runtime import job_log

smk = snakemake  # noqa: F821
with job_log(smk.log[0]):
    run_info(
        npz=list(smk.input.npz),
        parquet=list(smk.input.parquet),
        models=list(smk.input.models),
        config_yaml=smk.output.config_yaml,
        versions=smk.output.versions,
        datasets=smk.output.datasets,
        machine=smk.output.machine,
        config=dict(smk.params.config),
    )
