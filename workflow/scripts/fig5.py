"""Rule `fig5`: draw Figure 5 from the photon sweep and the localisation metrics."""

import pandas as pd

from diffloc.figures.fig5 import make_fig5
from diffloc.figures.style import save_figure


def run(sweep_csv: str, localization_csv: str, sigma_y: float, png: str, pdf: str) -> None:
    """Write fig5.png and fig5.pdf."""
    fig = make_fig5(pd.read_csv(sweep_csv), pd.read_csv(localization_csv), "test", sigma_y)
    save_figure(fig, png, pdf)


if "snakemake" in globals():
    smk = snakemake  # noqa: F821
    run(smk.input.sweep, smk.input.localization, smk.params.sigma_y, smk.output.png, smk.output.pdf)
