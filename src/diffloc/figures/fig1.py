"""Figure 1: the generative model of one image, from emitter positions to camera image and KDE."""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Circle
from mpl_toolkits.axes_grid1 import make_axes_locatable

from diffloc.data.shards import Shard
from diffloc.figures.style import image_panel
from diffloc.physics.psf import expected_counts

MARKER = {"marker": "+", "s": 30, "linewidths": 0.9, "color": "cyan"}
KDE_LABEL = {"max": "y (each image scaled to max 1)", "peak": "y (one emitter peaks at 1)"}


def _photons_text(photons: np.ndarray) -> str:
    """'i0 = 200 photons' for equal brightness, else the range."""
    if len(photons) and np.ptp(photons) == 0:
        return f"i0 = {photons[0]:g} photons each"
    return f"i0 = {photons.min():.0f}-{photons.max():.0f} photons"


def _emitter_panel(ax: plt.Axes, u_nm, v_nm, photons, cfg: dict) -> None:
    """Field of view with the LR pixel grid, the emitter disc and the true emitter positions."""
    size, pixel_nm = cfg["geometry"]["lr_size"], cfg["geometry"]["pixel_size_nm"]
    extent = size * pixel_nm
    for edge in np.arange(size + 1) * pixel_nm:
        ax.axhline(edge, color="0.88", lw=0.5, zorder=0)
        ax.axvline(edge, color="0.88", lw=0.5, zorder=0)
    radius = cfg["scene"]["disc_radius"]
    centre = extent / 2.0
    ax.add_patch(
        Circle(
            (centre, centre),
            radius * pixel_nm,
            fill=False,
            ls="--",
            lw=0.8,
            color="0.4",
            label=f"disc, r = {radius:g} px = {radius * pixel_nm:.0f} nm",
        )
    )
    ax.scatter(v_nm, u_nm, s=18, color="tab:blue", zorder=3, label=_photons_text(photons))
    ax.set_xlim(0, extent)
    ax.set_ylim(extent, 0)
    ax.set_aspect("equal")
    ax.set_title(f"a  emitters θ: {len(u_nm)} true positions")
    ax.set_xlabel("v (nm)")
    ax.set_ylabel("u (nm)")
    ax.legend(loc="upper left", fontsize=7, framealpha=0.9)
    # an empty colour-bar slot keeps this panel the same size as the image panels
    make_axes_locatable(ax).append_axes("right", size="5%", pad=0.05).axis("off")


def figure1(shard: Shard, image: int) -> plt.Figure:
    """Four panels for image `image` of a shard: emitters θ, expected counts ω, camera image x, KDE y."""
    if not 0 <= image < shard.n_images:
        raise IndexError(f"image {image} is outside the shard's {shard.n_images} images")
    if shard.emitters is None:
        raise ValueError("Figure 1 needs the shard's emitter table (read it with its .parquet)")
    cfg = shard.metadata["config"]
    geo, psf = cfg["geometry"], cfg["psf"]
    pixel_nm, s = geo["pixel_size_nm"], geo["upsample"]
    rows = shard.emitters[shard.emitters["image"] == image]
    u_px, v_px, photons = (rows[c].to_numpy() for c in ("u_px", "v_px", "photons"))
    omega = expected_counts(u_px, v_px, photons, geo["lr_size"], psf["sigma_x"], psf["background"])
    u_nm, v_nm = u_px * pixel_nm, v_px * pixel_nm

    fig, axes = plt.subplots(2, 2, figsize=(7.4, 7.6), layout="constrained")
    fig.get_layout_engine().set(hspace=0.05, wspace=0.15)
    _emitter_panel(axes[0, 0], u_nm, v_nm, photons, cfg)
    image_panel(
        axes[0, 1],
        omega,
        pixel_nm,
        f"b  expected counts ω (PSF σ = {psf['sigma_x']:g} px)",
        "expected photons per pixel",
    )
    image_panel(
        axes[1, 0],
        shard.x[image],
        pixel_nm,
        "c  camera image x = g·Poisson(ω) + readout",
        "camera signal (ADU)",
    )
    image_panel(
        axes[1, 1],
        shard.y[image],
        pixel_nm / s,
        f"d  KDE y on the {s}x grid (σ_y = {cfg['kde']['sigma_y']:g} HR px)",
        KDE_LABEL[cfg["kde"]["normalize"]],
        vmin=0,
    )
    for ax in (axes[0, 1], axes[1, 0], axes[1, 1]):
        ax.scatter(v_nm, u_nm, **MARKER, label="true position")
    axes[1, 1].legend(loc="lower right", fontsize=7, framealpha=0.7)
    for ax in axes[:, 1]:
        ax.set_ylabel("")  # the left column names the shared u axis
    size = geo["lr_size"]
    fig.suptitle(
        f"Generative model of one test image ({size}x{size} camera pixels of {pixel_nm:g} nm):\n"
        "positions θ → expected counts ω → noisy camera image x;  positions θ → KDE target y",
        fontsize=9,
    )
    return fig
