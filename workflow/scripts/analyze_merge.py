"""Rule `analyze_merge` (workflow/rules/analyze.smk): adapter for diffloc.analyze.jobs.analyze_merge."""

from diffloc.analyze.jobs import analyze_merge
from diffloc.runtime import job_log

smk = snakemake  # noqa: F821
with job_log(smk.log[0]):
    analyze_merge(
        tables=list(smk.input.tables),
        sums=list(smk.input.sums),
        outputs={key: smk.output[key] for key in smk.output.keys()},
    )
