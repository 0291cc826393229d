"""Rule `calibration_ablation`: join the sampler ablation's metrics with its measured seconds
per image and write the recommendation (which setting gives calibrated uncertainty fastest)."""

import logging

import pandas as pd

from diffloc.calibration.ablation import recommend
from diffloc.data.files import save_csv

log = logging.getLogger("diffloc.calibration")


def run(
    metrics: list[str],
    timings: list[str],
    max_coverage_error: float,
    ratio_bounds: list[float],
    out_csv: str,
    out_recommendation: str,
) -> None:
    """One table (metrics + seconds per image, not reproducible: timings) and one sentence."""
    table = pd.concat([pd.read_csv(p) for p in metrics], ignore_index=True)
    timing = pd.concat([pd.read_csv(p) for p in timings], ignore_index=True)
    table = table.merge(timing, on=["sampler", "steps", "k"], how="left", validate="one_to_one")
    best = recommend(table, max_coverage_error, ratio_bounds)
    log.info("%s", best["text"])
    save_csv(table, out_csv, float_format="%.6g")
    save_csv(pd.DataFrame([best]), out_recommendation, float_format="%.6g")


if "snakemake" in globals():
    logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, force=True)  # noqa: F821
    smk = snakemake  # noqa: F821
    run(
        list(smk.input.metrics),
        list(smk.input.timings),
        smk.params.max_coverage_error,
        smk.params.ratio_bounds,
        smk.output.csv,
        smk.output.recommendation,
    )
