"""Figure 3: the conditional diffusion pipeline on one test image, from camera image x and
phi's estimate yhat through the reverse trajectory y_T ... y_0 to a posterior sample."""

import matplotlib.pyplot as plt
import numpy as np

from diffloc.figures.style import image_panel, inner_axes_unlabelled, kde_colour_limit


def snapshot_indices(n_steps: int, n_snapshots: int) -> list[int]:
    """Evenly spread indices into a trajectory of n_steps + 1 states, first and last included."""
    return sorted({round(i) for i in np.linspace(0, n_steps, n_snapshots)})


def figure3(
    x: np.ndarray,
    yhat: np.ndarray,
    y0: np.ndarray,
    t: list[int],
    y_t: np.ndarray,
    y0_hat: np.ndarray,
    lr_pixel_nm: float,
    hr_pixel_nm: float,
    n_snapshots: int = 5,
) -> plt.Figure:
    """Top: x (ADU), yhat, the sample, the truth y0. Middle: the state y_t at a few steps of the
    reverse run (clipped to the KDE scale, [0, max(1, truth's maximum)], for display). Bottom:
    the network's prediction of y_0 there."""
    top_value = kde_colour_limit(y0)
    picks = snapshot_indices(len(t) - 1, n_snapshots)
    cols = max(4, len(picks))
    fig, axes = plt.subplots(3, cols, figsize=(2.7 * cols, 7.9), layout="constrained")
    for ax in axes.ravel():
        ax.set_visible(False)
    top = [
        (x, lr_pixel_nm, "camera image x", "ADU", {}),
        (
            yhat,
            hr_pixel_nm,
            "phi's estimate yhat (condition)",
            "KDE",
            {"vmin": 0, "vmax": top_value},
        ),
        (y_t[-1], hr_pixel_nm, "posterior sample y_0 ~ psi", "KDE", {"vmin": 0, "vmax": top_value}),
        (y0, hr_pixel_nm, "truth y0", "KDE", {"vmin": 0, "vmax": top_value}),
    ]
    for ax, (image, pixel, title, label, kw) in zip(axes[0], top, strict=False):
        ax.set_visible(True)
        image_panel(ax, image, pixel, title, label, **kw)
    for col, i in enumerate(picks):
        for row, (stack, name) in enumerate(
            ((y_t, "state y_t"), (y0_hat, "predicted y_0")), start=1
        ):
            ax = axes[row, col]
            ax.set_visible(True)
            image_panel(
                ax,
                np.clip(stack[i], 0, top_value),
                hr_pixel_nm,
                f"{name}, t = {t[i]}",
                "KDE",
                vmin=0,
                vmax=top_value,
            )
    inner_axes_unlabelled(axes)
    fig.suptitle("Conditional diffusion: reverse trajectory from noise (left) to a sample (right)")
    return fig
