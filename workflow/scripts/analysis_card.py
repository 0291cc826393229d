"""Rule `analysis_card` (workflow/rules/analyze.smk): adapter for diffloc.analyze.jobs.analysis_card."""

from diffloc.analyze.jobs import analysis_card
from diffloc.runtime import job_log

smk = snakemake  # noqa: F821
with job_log(smk.log[0]):
    analysis_card(
        phi=smk.input.phi, psi=smk.input.psi, card=smk.output.card, config=smk.params.config
    )
