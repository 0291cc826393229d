"""How useful psi's posteriors are: posterior-mean error against phi's, and whether the
uncertainty sits on the emitters (support) rather than on the empty background."""

import numpy as np


def posterior_quality(
    y0: np.ndarray, yhat: np.ndarray, mean: np.ndarray, std: np.ndarray, floor: float
) -> dict[str, float]:
    """Metrics over images [N, H, W] in KDE units.

    mse_phi, mse_posterior_mean: mean squared error of yhat and of the posterior mean to y0;
    mse_ratio: their ratio (< 1: the posterior mean is better). Support: pixels where y0 or the
    posterior mean is >= floor. std_support, std_background: mean posterior std on and off the
    support; std_concentration: fraction of the total posterior variance on the support;
    support_fraction: fraction of pixels on the support.
    """
    shapes = {a.shape for a in (y0, yhat, mean, std)}
    if len(shapes) != 1 or len(next(iter(shapes))) != 3:
        raise ValueError(
            f"y0, yhat, mean and std must share one [N, H, W] shape, got {sorted(shapes)}"
        )
    y0, yhat, mean, std = (np.asarray(a, dtype=np.float64) for a in (y0, yhat, mean, std))
    support = (y0 >= floor) | (mean >= floor)
    mse_phi, mse_mean = float(np.mean((yhat - y0) ** 2)), float(np.mean((mean - y0) ** 2))
    var = std**2
    return {
        "n_images": len(y0),
        "mse_phi": mse_phi,
        "mse_posterior_mean": mse_mean,
        "mse_ratio": mse_mean / mse_phi,
        "std_support": float(std[support].mean()),
        "std_background": float(std[~support].mean()),
        "std_concentration": float(var[support].sum() / var.sum()),
        "support_fraction": float(support.mean()),
    }
