"""Figure 7: the sampler ablation, calibration against cost. (a) mean |coverage - nominal| of
central intervals on dense test pixels, (b) the std ratio to MCMC (beta = 1) on isolated
emitters when measured, else the coverage of the 90 % interval, both against the network
evaluations per image (exact; the measured seconds per image on a second axis); one colour per
sampler kind, one marker per K, points of the same kind and K joined in order of S (labelled),
the recommended setting starred."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter, NullFormatter

K_MARKERS = ("v", "s", "o", "D", "^", "P")


def figure7(
    table: pd.DataFrame,
    recommendation: dict,
    max_coverage_error: float,
    seconds_per_evaluation: float,
    device: str,
) -> plt.Figure:
    """Two panels from metrics/calibration_ablation.csv and the recommendation row; the top axis
    converts network evaluations to seconds at `seconds_per_evaluation` (measured on `device`)."""
    has_ratio = "std_ratio_mcmc" in table and np.isfinite(table["std_ratio_mcmc"]).any()
    x_col = "network_evaluations_per_image"
    cost = table[x_col].to_numpy()
    lo, hi = cost.min() / 1.4, cost.max() * 1.4
    fig, axes = plt.subplots(1, 2, figsize=(11.0, 4.8), layout="constrained")
    kinds = list(dict.fromkeys(table["sampler"]))
    ks = sorted(table["k"].unique())
    markers = dict(zip(ks, K_MARKERS, strict=False))
    panels = [
        ("coverage_error", "mean |coverage - tested level| (50/80/90/95 %)", "calibration error")
    ]
    if has_ratio:
        panels.append(("std_ratio_mcmc", "median RMS std ratio psi / MCMC (β = 1)", "std vs MCMC"))
    else:
        panels.append(("coverage_90", "coverage of the central 90 % interval", "90 % coverage"))
    for ax, (column, ylabel, title) in zip(axes, panels, strict=True):
        for i, kind in enumerate(kinds):
            for k in ks:
                rows = table[(table["sampler"] == kind) & (table["k"] == k)].sort_values("steps")
                if not len(rows):
                    continue
                ax.plot(
                    rows[x_col],
                    rows[column],
                    color=f"C{i}",
                    marker=markers[k],
                    ms=5,
                    lw=0.8,
                    alpha=0.9,
                )
                for row in rows.itertuples():
                    ax.annotate(
                        f"{row.steps}",
                        (getattr(row, x_col), getattr(row, column)),
                        textcoords="offset points",
                        xytext=(3, 3),
                        fontsize=6,
                        color=f"C{i}",
                    )
        ax.plot(
            recommendation[x_col],
            recommendation[column],
            marker="*",
            ms=16,
            mfc="gold",
            mec="black",
            ls="none",
            zorder=5,
        )
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        decades = [m * 10.0**e for e in range(0, 8) for m in (1, 2, 5)]
        ax.set_xticks([t for t in decades if lo <= t <= hi])
        ax.set_xlim(lo, hi)
        ax.set_xlabel("network evaluations per image (log scale)")
        top = ax.secondary_xaxis(
            "top",
            functions=(
                lambda n: n * seconds_per_evaluation,
                lambda s: s / seconds_per_evaluation,
            ),
        )
        top.set_xlabel(f"≈ seconds per image on {device} (measured)", fontsize=7)
        top.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.2g}"))
        top.xaxis.set_minor_formatter(NullFormatter())
        top.tick_params(labelsize=7)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
    axes[0].axhline(max_coverage_error, color="black", lw=0.8, ls="--")
    if has_ratio:
        axes[1].axhspan(0.8, 1.25, color="black", alpha=0.08)
        axes[1].axhline(1.0, color="black", lw=0.8)
        axes[1].set_yscale("log")
    else:
        axes[1].axhline(0.9, color="black", lw=0.8)
    handles = [plt.Line2D([], [], color=f"C{i}", lw=2, label=kind) for i, kind in enumerate(kinds)]
    handles += [
        plt.Line2D([], [], color="black", marker=markers[k], ls="none", label=f"K = {k}")
        for k in ks
    ]
    handles.append(
        plt.Line2D(
            [], [], marker="*", ms=12, mfc="gold", mec="black", ls="none", label="recommended"
        )
    )
    handles.append(
        plt.Line2D(
            [], [], color="black", ls="--", lw=0.8, label=f"tolerance {max_coverage_error:g}"
        )
    )
    fig.legend(
        handles=handles,
        loc="outside right center",
        fontsize=7,
        title="colour: sampler\nmarker: samples K\nnumbers: steps S",
        title_fontsize=7,
    )
    k_max = max(ks)
    images = f"{int(table['n_test_images'].iloc[0])} dense test image(s)"
    if has_ratio:
        images += f", {int(table['n_isolated_images'].iloc[0])} isolated"
    fig.suptitle(
        f"Sampler ablation on {images}; K < {k_max}: the first K samples of the K = {k_max} run",
        fontsize=8,
    )
    return fig
