"""Figure 5: phi's localisation error per photon count beside the Cramer-Rao bound, and detection
on dense test images (phi beside the oracle, the same detector on y0) against the KDE width."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import NullFormatter, ScalarFormatter

from diffloc.figures.style import CRLB_COLOR

# phi+LoG errors that the method's authors report at 200 / 500 / 1000 photons: 0.97 / 0.75 /
# 0.66 HR px of 27.1 nm, drawn beside ours for comparison.
PAPER_ERRORS_NM = {200: 26.0, 500: 20.0, 1000: 18.0}
PAPER_RECALL = 0.85  # the paper's dense recall at i0 = 200 (a sigma_y = 1.5 number)
WIDTH_STYLE = ("o-", "s--", "^-.", "v:", "D-")


def _log_axes(ax: plt.Axes) -> None:
    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(ScalarFormatter())
        axis.set_minor_formatter(NullFormatter())


def _sweep_panel(ax: plt.Axes, sweep: pd.DataFrame, detector: str) -> None:
    """Lateral RMSE (nm) vs photons, one line per KDE width, with sqrt(CRLB)."""
    widths = sorted(sweep["sigma_y_hr"].unique())
    for k, sigma_y in enumerate(widths):
        part = sweep[sweep["sigma_y_hr"] == sigma_y].sort_values("photons")
        photons = part["photons"].to_numpy(dtype=float)
        ax.plot(
            photons,
            part["rmse_nm"],
            WIDTH_STYLE[k % len(WIDTH_STYLE)],
            color=plt.cm.viridis(k / max(len(widths) - 1, 1) * 0.8),
            label=f"phi + {detector}, sigma_y = {sigma_y:g} HR px",
        )
        for p, recall, rmse in zip(photons, part["recall"], part["rmse_nm"], strict=True):
            if recall < 0.99:
                ax.annotate(
                    f"recall {recall:.2f}",
                    (p, rmse),
                    textcoords="offset points",
                    xytext=(4, 6),
                    fontsize=7,
                )
    bound = sweep.drop_duplicates("photons").sort_values("photons")
    photons = bound["photons"].to_numpy(dtype=float)
    ax.plot(photons, bound["crlb_nm"], "-", color=CRLB_COLOR, lw=2, label="sqrt(CRLB), lateral")
    ax.plot(photons, 1.5 * bound["crlb_nm"], ":", color=CRLB_COLOR, lw=1, label="1.5 x sqrt(CRLB)")
    paper = np.array(list(PAPER_ERRORS_NM.items()), dtype=float)
    ax.plot(*paper.T, "x", color="0.4", ms=7, label="authors' phi (paper, sec. 4, as reported)")
    _log_axes(ax)
    ax.set_yticks([2, 5, 10, 20, 50])
    ax.set_xlabel("photons per emitter, i0")
    ax.set_ylabel("lateral localisation error (nm)")
    ax.set_title("(a) Isolated emitters: RMSE vs Cramer-Rao bound")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower left", fontsize=7)


def _dense_panels(bx: plt.Axes, cx: plt.Axes, dense: pd.DataFrame, split: str) -> None:
    """Precision / recall and RMSE (nm) of phi and the oracle against the KDE width."""
    sources = (("phi", "tab:blue", "phi (yhat)", -11), ("oracle", "0.45", "oracle (y0)", 5))
    for source, color, name, dy in sources:
        part = dense[dense["source"] == source].sort_values("sigma_y_hr")
        widths = part["sigma_y_hr"].to_numpy(dtype=float)
        bx.plot(widths, part["recall"], "o-", color=color, label=f"{name} recall")
        bx.plot(widths, part["precision"], "s:", color=color, label=f"{name} precision")
        cx.plot(widths, part["rmse_nm"], "o-", color=color, label=name)
        for w, r in zip(widths, part["recall"], strict=True):
            bx.annotate(
                f"{r:.2f}", (w, r), textcoords="offset points", xytext=(-8, dy), fontsize=7,
                ha="right", color=color,
            )  # fmt: skip
    bx.axhline(PAPER_RECALL, color="0.6", lw=1, ls="--", label=f"paper's recall {PAPER_RECALL}")
    for ax in (bx, cx):
        ax.set_xlabel("KDE width sigma_y (HR px)")
        ax.set_xticks(sorted(dense["sigma_y_hr"].unique()))
        ax.margins(x=0.2)
        ax.grid(True, alpha=0.3)
    bx.set_ylim(0, 1.05)
    bx.set_ylabel("fraction of emitters / detections")
    bx.set_title(f"(b) Dense '{split}' images: detection\n(one-to-one, <= 135 nm)")
    bx.legend(loc="lower left", fontsize=7)
    cx.set_ylim(bottom=0)
    cx.set_ylabel("lateral RMSE of matched detections (nm)")
    cx.set_title(f"(c) Dense '{split}' images: error")
    cx.legend(loc="lower right", fontsize=7)


def figure5(sweep: pd.DataFrame, localization: pd.DataFrame, split: str) -> plt.Figure:
    """Three panels: isolated RMSE (nm) vs photons per KDE width with sqrt(CRLB); dense
    precision / recall and dense RMSE (nm) against the KDE width, phi beside the oracle."""
    dense = localization[
        (localization["split"] == split) & (localization["convention"] == "one_to_one")
    ]
    detectors = sorted(set(sweep["detector"]) | set(dense["detector"]))
    detector = "/".join(detectors)
    fig, (ax, bx, cx) = plt.subplots(
        1, 3, figsize=(12.5, 3.9), gridspec_kw={"width_ratios": [1.4, 1, 1]}
    )
    _sweep_panel(ax, sweep, detector)
    _dense_panels(bx, cx, dense, split)
    fig.suptitle(f"phi's localisation, detector: {detector} (the oracle runs the same on y0)")
    fig.tight_layout()
    return fig
