"""Shared look of the figures, and atomic PNG + PDF saving."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # figures are files; never open a window

import matplotlib.pyplot as plt
import numpy as np
from mpl_toolkits.axes_grid1 import make_axes_locatable

from diffloc.data.files import atomic_path

CRLB_COLOR = "tab:red"  # the paper draws the Cramer-Rao bound in red
RC = {
    "figure.dpi": 100,
    "savefig.dpi": 200,
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "image.cmap": "magma",
}
plt.rcParams.update(RC)


def save_figure(fig: plt.Figure, png: str | Path, pdf: str | Path) -> None:
    """Write `fig` to PNG and PDF (each atomically, tight bounding box), then close it."""
    for path, fmt in ((png, "png"), (pdf, "pdf")):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, bbox_inches="tight")
    plt.close(fig)


def kde_colour_limit(y0: np.ndarray) -> float:
    """Upper colour limit of KDE panels (KDE units): 1 for max-normalised KDEs, the truth's
    maximum for molecule-unit (`peak`) KDEs that exceed 1."""
    return max(1.0, float(np.max(y0)))


def image_panel(
    ax: plt.Axes,
    image: np.ndarray,
    pixel_nm: float,
    title: str,
    label: str,
    **imshow_kwargs,
) -> None:
    """Show a 2-D image with axes in nm (origin at the image corner) and a labelled colour bar."""
    extent_nm = (0.0, image.shape[1] * pixel_nm, image.shape[0] * pixel_nm, 0.0)
    shown = ax.imshow(image, extent=extent_nm, interpolation="nearest", **imshow_kwargs)
    ax.set_title(title)
    ax.set_xlabel("v (nm)")
    ax.set_ylabel("u (nm)")
    cax = make_axes_locatable(ax).append_axes("right", size="5%", pad=0.05)
    ax.figure.colorbar(shown, cax=cax, label=label)


def inner_axes_unlabelled(axes: np.ndarray) -> None:
    """In a grid of image panels keep the u axis labels on the first column only."""
    for ax in axes[:, 1:].ravel():
        ax.set_ylabel("")
        ax.tick_params(labelleft=False)
