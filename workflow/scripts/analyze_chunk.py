"""Rule `analyze_chunk` (workflow/rules/analyze.smk): adapter for diffloc.analyze.jobs.analyze_chunk."""

from diffloc.analyze.jobs import analyze_chunk
from diffloc.runtime import job_log

smk = snakemake  # noqa: F821
with job_log(smk.log[0]):
    analyze_chunk(
        movie=smk.input.movie,
        models=smk.params.models,
        table=smk.output.table,
        sums=smk.output.sums,
        frames=list(smk.params.frames),
        camera=dict(smk.params.camera),
        analyze=dict(smk.params.analyze),
        config=smk.params.config,
        seed=smk.params.seed,
    )
