"""Rule `photon_sweep` (workflow/rules/localize.smk): adapter for diffloc.localize.jobs.photon_sweep."""

from diffloc.localize.jobs import photon_sweep
from diffloc.runtime import grouped, job_log

smk = snakemake  # noqa: F821
with job_log(smk.log[0]):
    photon_sweep(
        tables=grouped(smk.input, "tables"),
        npz=grouped(smk.input, "npz"),
        parquet=grouped(smk.input, "parquet"),
        sweep=smk.output.sweep,
        photons=smk.params.photons,
        sigma_x=smk.params.sigma_x,
        background=smk.params.background,
        pixel_size_nm=smk.params.pixel_size_nm,
        sigma_y=smk.params.sigma_y,
        detector=smk.params.detector,
    )
