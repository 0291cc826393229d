"""Figure 2: MCMC posterior of one isolated emitter and its push-forward to the KDE's std.

One row per sampler setting (beta = 1 and the paper's beta = 0.2): the camera image x with the
true position, the posterior samples of (u, v) with marginal histograms, and sqrt(Var(y)), the
per-pixel posterior std of the KDE. Axes are in nm from the image corner (u down, v across).
"""

import math
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Ellipse
from mpl_toolkits.axes_grid1 import make_axes_locatable

from diffloc.figures.style import CRLB_COLOR, image_panel

TRUTH_STYLE = {"marker": "+", "color": "cyan", "s": 120, "linewidths": 1.5, "zorder": 5}
CROP_HR_PX = 16  # the std map is shown within +-16 HR px of the emitter (it is ~0 beyond)


def setting_label(name: str, setting: dict) -> str:
    """Short row label of a sampler setting, e.g. 'paper: β = 0.2 (2.2x wider), s² = 0.05'."""
    beta = setting["beta"]
    width = "true posterior" if beta == 1 else f"{1 / math.sqrt(beta):.1f}x wider"
    proposal = "adapted s" if setting["adapt"] else f"s² = {setting['proposal_var']:g}"
    return f"{name}: β = {beta:g} ({width}), {proposal}"


@dataclass(frozen=True)
class PosteriorRow:
    """One setting's results for the figure's emitter.

    label: setting description; u_px, v_px [S]: posterior samples (LR px); std_map [sH, sW]:
    sqrt(Var(y)) (KDE units); acceptance: post-burn-in rate; std_nm, crlb_nm: (u, v) posterior
    std and sqrt(CRLB) in nm.
    """

    label: str
    u_px: np.ndarray
    v_px: np.ndarray
    std_map: np.ndarray
    acceptance: float
    std_nm: tuple[float, float]
    crlb_nm: tuple[float, float]


def _samples_panel(
    ax: plt.Axes, row: PosteriorRow, truth_nm: np.ndarray, half_nm: float, pixel_nm: float
) -> None:
    """Scatter of the samples (nm) with marginal histograms, truth, and the numbers in a box."""
    u_nm, v_nm = row.u_px * pixel_nm, row.v_px * pixel_nm
    ax.scatter(
        v_nm, u_nm, s=2, alpha=0.25, color="tab:blue", rasterized=True, label="posterior sample"
    )
    ax.scatter(truth_nm[1], truth_nm[0], **TRUTH_STYLE, label="true position")
    ax.add_patch(
        Ellipse(
            (truth_nm[1], truth_nm[0]),
            4 * row.crlb_nm[1],
            4 * row.crlb_nm[0],
            fill=False,
            color=CRLB_COLOR,
            ls="--",
            lw=1.2,
            label="2 sqrt(CRLB) around the truth",
            zorder=4,
        )
    )
    ax.set_xlim(truth_nm[1] - half_nm, truth_nm[1] + half_nm)
    ax.set_ylim(truth_nm[0] + half_nm, truth_nm[0] - half_nm)  # u grows downwards, as in the images
    ax.set_aspect("equal")
    ax.set_xlabel("v (nm)")
    ax.set_ylabel("u (nm)")
    text = (
        f"acceptance {row.acceptance:.2f}\n"
        f"posterior std: u {row.std_nm[0]:.1f} nm, v {row.std_nm[1]:.1f} nm\n"
        f"sqrt(CRLB):    u {row.crlb_nm[0]:.1f} nm, v {row.crlb_nm[1]:.1f} nm"
    )
    ax.text(
        0.02,
        0.02,
        text,
        transform=ax.transAxes,
        fontsize=7,
        family="monospace",
        va="bottom",
        bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "0.7"},
    )
    ax.legend(loc="upper right", fontsize=7, markerscale=2, framealpha=0.85)
    divider = make_axes_locatable(ax)
    top = divider.append_axes("top", size="22%", pad=0.05, sharex=ax)
    right = divider.append_axes("right", size="22%", pad=0.05, sharey=ax)
    bins = np.linspace(-half_nm, half_nm, 41)
    top.hist(v_nm, bins=bins + truth_nm[1], color="tab:blue", alpha=0.7)
    right.hist(u_nm, bins=bins + truth_nm[0], color="tab:blue", alpha=0.7, orientation="horizontal")
    top.axvline(truth_nm[1], color="cyan", lw=1)
    right.axhline(truth_nm[0], color="cyan", lw=1)
    top.set_title("posterior samples of (u, v)")
    for hist_ax in (top, right):
        hist_ax.tick_params(labelbottom=False, labelleft=False, left=False, bottom=False)
        for side in ("top", "right", "left", "bottom"):
            hist_ax.spines[side].set_visible(False)


def figure2(
    x_adu: np.ndarray,
    truth_px: tuple[float, float],
    photons: float,
    rows: list[PosteriorRow],
    pixel_nm: float,
    upsample: int,
) -> plt.Figure:
    """Figure 2 for the camera image x [H, W] (ADU) of one emitter at `truth_px` (LR px)."""
    truth_nm = np.asarray(truth_px, dtype=np.float64) * pixel_nm
    spread = max(max(row.std_nm) for row in rows)
    half_nm = max(6.0 * spread, 0.5 * pixel_nm)  # the samples' window: +-6 of the widest std
    crop_nm = CROP_HR_PX * pixel_nm / upsample
    vmax = max(float(row.std_map.max()) for row in rows)
    fig, axes = plt.subplots(len(rows), 3, figsize=(13.5, 4.3 * len(rows)), squeeze=False)
    for r, row in enumerate(rows):
        ax_x, ax_post, ax_std = axes[r]
        image_panel(ax_x, x_adu, pixel_nm, f"{row.label}\ncamera image x", "camera counts (ADU)")
        ax_x.scatter(truth_nm[1], truth_nm[0], **TRUTH_STYLE)
        _samples_panel(ax_post, row, truth_nm, half_nm, pixel_nm)
        image_panel(
            ax_std,
            row.std_map,
            pixel_nm / upsample,
            "sqrt Var(y): posterior std of the KDE",
            "posterior std of y (KDE units)",
            vmin=0.0,
            vmax=vmax,
        )
        ax_std.set_xlim(truth_nm[1] - crop_nm, truth_nm[1] + crop_nm)
        ax_std.set_ylim(truth_nm[0] + crop_nm, truth_nm[0] - crop_nm)
        ax_std.scatter(truth_nm[1], truth_nm[0], **TRUTH_STYLE)
    fig.suptitle(
        f"MCMC reference posterior of an isolated emitter (i0 = {photons:.0f} photons) and its "
        "push-forward to the KDE (+: true position; CRLB: Cramer-Rao lower bound)",
        y=1.0,
    )
    fig.tight_layout()
    return fig
