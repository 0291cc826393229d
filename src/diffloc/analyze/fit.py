"""Photons and background of each localisation, and its Cramer-Rao bound, on camera windows.

For a localisation at LR position (u, v) (pixel i covers [i, i + 1); u rows, v columns) the
(2 r + 1)^2 camera pixels around the pixel that holds it are converted to Poisson-approximation
counts n_k = (x_k - o_k)/g_k + w_k^2/g_k^2 (Huang et al. 2013; physics.camera). With the
position fixed at the localisation, the expected counts are linear in the photons i0 and the
background b (photons per pixel): omega'_k = i0 P_k + b + w_k^2/g_k^2, P_k the pixel integral of
the PSF (physics.psf). (i0, b) is their Poisson maximum-likelihood estimate, by iteratively
reweighted least squares (weights 1/omega'_k), vectorised over localisations. Pixels beyond the
frame are left out. Light of a neighbour inside the window raises both estimates.

The bound is the CRLB of (u, v) with i0 a nuisance parameter and b known (the formula of
physics.crlb, I_ij = sum_k (1/omega'_k) d omega'_k/d theta_i d omega'_k/d theta_j) at the
estimated i0 and b, on the same window and the window's own camera maps (sCMOS: per pixel).
"""

import numpy as np

from diffloc.physics.camera import Camera
from diffloc.physics.psf import pixel_integral_gradients, pixel_integrals

IRLS_ITERATIONS = 12
MIN_RATE = 1e-3  # photons: floor of omega' in the weights (a pixel with no light, no noise)


def windows(
    images: np.ndarray, index: np.ndarray, u: np.ndarray, v: np.ndarray, r: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(values [L, w, w], inside [L, w, w], first row [L], first col [L]) of the w = 2 r + 1
    pixels around floor(u), floor(v) in images[index] ([N, H, W]; maps [H, W] use index=None)."""
    h, w = images.shape[-2:]
    a = np.arange(-r, r + 1)
    top = np.floor(u).astype(np.intp) - r
    left = np.floor(v).astype(np.intp) - r
    rows, cols = top[:, None] + r + a, left[:, None] + r + a
    inside = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
    rr, cc = np.clip(rows, 0, h - 1)[:, :, None], np.clip(cols, 0, w - 1)[:, None, :]
    values = images[rr, cc] if index is None else images[index[:, None, None], rr, cc]
    return values.astype(np.float64), inside, top, left


def psf_windows(
    u: np.ndarray, v: np.ndarray, top: np.ndarray, left: np.ndarray, r: int, sigma: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-axis pixel integrals (eu, ev) [L, w] and their derivatives by the centre (gu, gv)."""
    w = 2 * r + 1
    lu, lv = u - top, v - left
    return (
        pixel_integrals(lu, w, sigma),
        pixel_integrals(lv, w, sigma),
        pixel_integral_gradients(lu, w, sigma),
        pixel_integral_gradients(lv, w, sigma),
    )


def fit_photons_background(
    counts: np.ndarray, readout: np.ndarray, psf: np.ndarray, inside: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Poisson MLE (i0, b) [L] each, photons and photons per pixel, of windows of counts n,
    readout terms w^2/g^2 and PSF pixel integrals P (all [L, w, w]), pixels where `inside`."""
    mask = inside.astype(np.float64)
    y = (counts - readout) * mask
    p = psf * mask
    weight = mask.copy()
    theta = np.zeros((len(counts), 2))
    for _ in range(IRLS_ITERATIONS):
        spp, sp, s1 = (np.einsum("lij,lij->l", weight, a) for a in (p * p, p, mask))
        spy, sy = np.einsum("lij,lij->l", weight, p * y), np.einsum("lij,lij->l", weight, y)
        det = spp * s1 - sp * sp
        safe = np.where(det > 0, det, 1.0)
        i0 = np.where(det > 0, (s1 * spy - sp * sy) / safe, 0.0)
        b = np.where(det > 0, (spp * sy - sp * spy) / safe, sy / np.maximum(s1, 1.0))
        theta = np.stack([np.maximum(i0, 1.0), np.maximum(b, 0.0)], axis=1)
        rate = theta[:, :1, None] * psf + theta[:, 1:, None] + readout
        weight = mask / np.maximum(rate, MIN_RATE)
    return theta[:, 0], theta[:, 1]


def crlb_windows(
    photons: np.ndarray,
    background: np.ndarray,
    readout: np.ndarray,
    inside: np.ndarray,
    eu: np.ndarray,
    ev: np.ndarray,
    gu: np.ndarray,
    gv: np.ndarray,
) -> np.ndarray:
    """sqrt(CRLB) of (u, v, i0) [L, 3] in LR px and photons at photons i0 and background b [L]
    (i0 fitted, b known), from the window's readout terms and PSF integrals (see `psf_windows`)."""
    i0 = photons[:, None, None]
    psf = eu[:, :, None] * ev[:, None, :]
    rate = i0 * psf + background[:, None, None] + readout
    grads = np.stack(
        [i0 * gu[:, :, None] * ev[:, None, :], i0 * eu[:, :, None] * gv[:, None, :], psf], axis=1
    )
    weight = inside / np.maximum(rate, MIN_RATE)
    info = np.einsum("lipq,ljpq,lpq->lij", grads, grads, weight)
    var = np.diagonal(np.linalg.inv(info), axis1=-2, axis2=-1)
    return np.sqrt(var)


def photometry(
    counts: np.ndarray,
    camera: Camera,
    index: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    r: int,
    sigma: float,
) -> dict[str, np.ndarray]:
    """photons, background (photons/px), crlb_u, crlb_v (LR px), crlb_photons (photons) [L] of
    localisations at (u, v) (LR px) in frames counts[index] ([N, H, W], Poisson-approximation
    counts of `camera`)."""
    if len(u) == 0:
        empty = np.zeros(0)
        keys = ("photons", "background", "crlb_u", "crlb_v", "crlb_photons")
        return {key: empty for key in keys}
    g, _, w2 = (m.astype(np.float64) for m in (camera.gain, camera.offset, camera.readout_var))
    n, inside, top, left = windows(counts, index, u, v, r)
    readout, _, _, _ = windows(w2 / g**2, None, u, v, r)
    eu, ev, gu, gv = psf_windows(u, v, top, left, r, sigma)
    psf = eu[:, :, None] * ev[:, None, :]
    photons, background = fit_photons_background(n, readout, psf, inside)
    bound = crlb_windows(photons, background, readout, inside, eu, ev, gu, gv)
    return {
        "photons": photons,
        "background": background,
        "crlb_u": bound[:, 0],
        "crlb_v": bound[:, 1],
        "crlb_photons": bound[:, 2],
    }
