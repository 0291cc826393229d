"""Whether a localisation is an emitter or a background fluctuation: the score test of "no
emitter at this position" (analyze.significance: score).

On the localisation's (2 r + 1)^2 camera window, with P_k the PSF's pixel integrals at its fitted
position and w_k = b + w^2/g^2 + the other localisations' light (the counts expected without
it), z = sum_k P_k (n_k - w_k) / w_k / sqrt(sum_k P_k^2 / w_k): the score (matched-filter)
statistic, mean 0 and variance 1 where there is no emitter, i0 sqrt(sum P^2 / w) on average
where there is one of i0 photons. The background b (photons per px) is the mean residual (counts
- readout - every localisation's PSF) over the ring of pixels up to RING_PX beyond the window:
~300 pixels, so its noise adds ~1 % to z's spread. The alternative, the Wald ratio
i0 / sqrt(CRLB of i0) with (i0, b) fitted on the window itself (analyze.significance: wald), has
a numerator whose spread includes the background fit's noise while the CRLB holds b known, so
fluctuations pass it more often than its threshold says.
"""

import numpy as np

from diffloc.analyze.crowd import frame_model
from diffloc.analyze.fit import MIN_RATE, psf_windows, windows

RING_PX = 6  # LR px: the background ring reaches this far beyond the fit window


def ring_background(
    residual: np.ndarray, image: np.ndarray, u: np.ndarray, v: np.ndarray, r: int
) -> np.ndarray:
    """Mean of `residual` [N, H, W] (photons per px) over the pixels of frame image [L] at
    Chebyshev distance r + 1 ... r + RING_PX from the pixel holding (u, v) (LR px), inside the
    frame [L]."""
    outer = r + RING_PX
    values, inside, _, _ = windows(residual, image, u, v, outer)
    a = np.abs(np.arange(-outer, outer + 1))
    ring = inside & (np.maximum(a[:, None], a[None, :]) > r)
    return (values * ring).sum(axis=(1, 2)) / np.maximum(ring.sum(axis=(1, 2)), 1)


def score_statistic(
    counts: np.ndarray,
    readout_map: np.ndarray,
    image: np.ndarray,
    theta: np.ndarray,
    r: int,
    sigma: float,
) -> np.ndarray:
    """z [L] of localisations theta = (u, v, i0, b) [L, 4] (LR px, photons) in frames image [L]
    of Poisson-approximation counts [N, H, W] with readout terms w^2/g^2 [H, W]; PSF std
    `sigma` LR px."""
    u, v = theta[:, 0], theta[:, 1]
    model = frame_model(image, theta, counts.shape, sigma)
    background = ring_background(counts - readout_map - model, image, u, v, r)
    n, inside, top, left = windows(counts, image, u, v, r)
    readout = windows(np.ascontiguousarray(readout_map), None, u, v, r)[0]
    eu, ev, _, _ = psf_windows(u, v, top, left, r, sigma)
    psf = eu[:, :, None] * ev[:, None, :]
    others = windows(model, image, u, v, r)[0] - theta[:, 2, None, None] * psf
    null = np.maximum(background[:, None, None] + readout + others, MIN_RATE)
    score = np.einsum("lij->l", inside * psf * (n - null) / null)
    information = np.einsum("lij->l", inside * psf**2 / null)
    return score / np.sqrt(information)
