"""Rule `fig7`: Figure 7 (sampler ablation: calibration error against seconds per image)."""

import pandas as pd

from diffloc.figures.fig7 import make_fig7
from diffloc.figures.style import save_figure


def run(ablation: str, recommendation: str, max_coverage_error: float, png: str, pdf: str) -> None:
    """Figure 7 from metrics/calibration_ablation.csv and metrics/calibration_recommendation.csv."""
    table = pd.read_csv(ablation)
    best = pd.read_csv(recommendation).iloc[0].to_dict()
    device = ", ".join(sorted(set(table["device"].astype(str))))
    threads = ", ".join(str(t) for t in sorted(set(table["threads"])))
    fig = make_fig7(table, best, max_coverage_error, f"{device}, {threads} threads")
    save_figure(fig, png, pdf)


if "snakemake" in globals():
    smk = snakemake  # noqa: F821
    run(
        smk.input.ablation,
        smk.input.recommendation,
        smk.params.max_coverage_error,
        smk.output.png,
        smk.output.pdf,
    )
