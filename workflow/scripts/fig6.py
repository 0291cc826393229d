"""Rule `fig6`: Figure 6 (calibration of psi's uncertainty) from the calibration tables."""

import pandas as pd

from diffloc.figures.fig6 import make_fig6
from diffloc.figures.style import save_figure


def run(per_image: str, coverage: str, reliability: str, z_hist: str, png: str, pdf: str) -> None:
    """Figure 6 from calibration/mcmc_per_image.csv, metrics/calibration_coverage.csv,
    calibration/reliability.csv and calibration/z_histogram.csv."""
    fig = make_fig6(*(pd.read_csv(p) for p in (per_image, coverage, reliability, z_hist)))
    save_figure(fig, png, pdf)


if "snakemake" in globals():
    smk = snakemake  # noqa: F821
    run(
        smk.input.per_image,
        smk.input.coverage,
        smk.input.reliability,
        smk.input.z_hist,
        smk.output.png,
        smk.output.pdf,
    )
