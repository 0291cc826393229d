"""Rule `ablation` (workflow/rules/calibration.smk): adapter for diffloc.calibration.jobs.ablation."""

from diffloc.calibration.jobs import ablation
from diffloc.runtime import job_log

smk = snakemake  # noqa: F821
with job_log(smk.log[0]):
    ablation(
        model=smk.input.model,
        npz=list(smk.input.npz),
        yhat=list(smk.input.yhat),
        iso_npz=list(smk.input.iso_npz),
        iso_yhat=list(smk.input.iso_yhat),
        maps=list(smk.input.maps),
        csv=smk.output.csv,
        timing=smk.output.timing,
        sampler=smk.wildcards.sampler,
        condition=smk.params.condition,
        ablation=smk.params.ablation,
        reference=smk.params.reference,
        levels=smk.params.levels,
        quantile_method=smk.params.quantile_method,
        floor=smk.params.floor,
        device=smk.params.device,
        seed=smk.params.seed,
    )
