"""Figure 4: the first test images by index (not cherry-picked): camera image x, phi's yhat,
psi's posterior mean and standard deviation, and the truth y0."""

import matplotlib.pyplot as plt
import numpy as np

from diffloc.figures.style import image_panel, inner_axes_unlabelled, kde_colour_limit


def figure4(
    x: np.ndarray,
    yhat: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray,
    y0: np.ndarray,
    k: int,
    lr_pixel_nm: float,
    hr_pixel_nm: float,
) -> plt.Figure:
    """One row per image (arrays [N, ...]); KDE columns share one scale, [0, max(1, truth's
    maximum)] (kde.normalize: max -> [0, 1]), std has its own."""
    n = len(x)
    top = kde_colour_limit(y0)
    fig, axes = plt.subplots(n, 5, figsize=(15.5, 2.9 * n), layout="constrained", squeeze=False)
    fig.get_layout_engine().set(w_pad=0.12)
    std_max = float(np.max(std))
    for i in range(n):
        cols = [
            (x[i], lr_pixel_nm, "camera image x", "ADU", {}),
            (yhat[i], hr_pixel_nm, "phi's estimate yhat", "KDE", {"vmin": 0, "vmax": top}),
            (mean[i], hr_pixel_nm, f"posterior mean (K = {k})", "KDE", {"vmin": 0, "vmax": top}),
            (
                std[i],
                hr_pixel_nm,
                "posterior std",
                "KDE std",
                {"vmin": 0, "vmax": std_max, "cmap": "viridis"},
            ),
            (y0[i], hr_pixel_nm, "truth y0", "KDE", {"vmin": 0, "vmax": top}),
        ]
        for ax, (image, pixel, title, label, kw) in zip(axes[i], cols, strict=True):
            image_panel(ax, image, pixel, f"test image {i}: {title}", label, **kw)
    inner_axes_unlabelled(axes)
    return fig
