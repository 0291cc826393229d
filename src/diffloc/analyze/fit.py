"""One emitter's fit on a camera window: photons, background, position and the Cramer-Rao bound.

For a localisation at LR position (u, v) (pixel i covers [i, i + 1); u rows, v columns) the
(2 r + 1)^2 camera pixels around the pixel that holds it are converted to Poisson-approximation
counts n_k = (x_k - o_k)/g_k + w_k^2/g_k^2 (Huang et al. 2013; physics.camera). With the
position fixed, the expected counts are linear in the photons i0 and the background b (photons
per pixel): omega'_k = i0 P_k + b + w_k^2/g_k^2 (+ any known light, e.g. neighbours'), P_k the
pixel integral of the PSF (physics.psf). (i0, b) is their Poisson maximum-likelihood estimate,
by iteratively reweighted least squares (weights 1/omega'_k), vectorised over localisations.
Pixels beyond the frame are left out.

`fit_position` fits the position too: theta = (u, v, i0, b) maximises the same Poisson
likelihood by Fisher scoring (theta += I^-1 grad log L, grad_j = sum_k (n_k/omega'_k - 1)
d omega'_k/d theta_j), vectorised over localisations; a step that lowers the likelihood is
halved until it does not (else the localisation keeps its estimate), and the position stays
within `MAX_SHIFT` LR px of its start and inside the window. This is the standard SMLM
estimator, unbiased with variance near the CRLB for an isolated emitter (Smith et al. 2010).

The bound is the CRLB of (u, v) with i0 a nuisance parameter and b known (the formula of
physics.crlb, I_ij = sum_k (1/omega'_k) d omega'_k/d theta_i d omega'_k/d theta_j) on the same
window and the window's own camera maps (sCMOS: per pixel).
"""

import numpy as np

from diffloc.physics.crlb import information_matrix
from diffloc.physics.psf import pixel_integral_gradients, pixel_integrals

IRLS_ITERATIONS = 12
MIN_RATE = 1e-3  # photons: floor of omega' in the weights (a pixel with no light, no noise)
SCORING_ITERATIONS = 12
MAX_STEP = 0.5  # LR px: largest position change of one scoring step
MAX_SHIFT = 1.0  # LR px: largest distance of the fitted position from the detection, per axis
BACKTRACKS = 4  # halvings of a step that lowers the likelihood
CONVERGED = 1e-4  # LR px: a localisation whose step moves it less has converged


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
    centres = np.stack([u - top, v - left], axis=1)  # both axes in one call of each
    e, g = pixel_integrals(centres, w, sigma), pixel_integral_gradients(centres, w, sigma)
    return e[:, 0], e[:, 1], g[:, 0], g[:, 1]


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
    pixels = weight.shape[1] * weight.shape[2]  # explicit: no -1, which is undefined for L = 0
    info = information_matrix(grads.reshape(len(grads), 3, pixels), weight.reshape(-1, pixels))
    var = np.diagonal(np.linalg.inv(info), axis1=-2, axis2=-1)
    return np.sqrt(var)


def _log_likelihood(counts: np.ndarray, rate: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Poisson log-likelihood [L] of counts given rates (both [L, w, w]) up to a constant."""
    rate = np.maximum(rate, MIN_RATE)
    return np.einsum("lij->l", (counts * np.log(rate) - rate) * mask)


def _rate_and_gradients(
    theta: np.ndarray,
    readout: np.ndarray,
    mask: np.ndarray,
    top: np.ndarray,
    left: np.ndarray,
    r: int,
    sigma: float,
) -> tuple[np.ndarray, np.ndarray]:
    """omega' [L, w, w] at theta = (u, v, i0, b) [L, 4] and its derivatives [L, 4, w, w]."""
    eu, ev, gu, gv = psf_windows(theta[:, 0], theta[:, 1], top, left, r, sigma)
    psf = eu[:, :, None] * ev[:, None, :]
    i0 = theta[:, 2, None, None]
    rate = i0 * psf + theta[:, 3, None, None] + readout
    grads = np.stack(
        [i0 * gu[:, :, None] * ev[:, None, :], i0 * eu[:, :, None] * gv[:, None, :], psf, mask],
        axis=1,
    )
    return rate, grads


def fit_position(
    counts: np.ndarray,
    readout: np.ndarray,
    inside: np.ndarray,
    top: np.ndarray,
    left: np.ndarray,
    theta: np.ndarray,
    r: int,
    sigma: float,
    shape: tuple[int, int] | None = None,
    iterations: int = SCORING_ITERATIONS,
) -> np.ndarray:
    """Poisson MLE theta = (u, v, i0, b) [L, 4] (LR px, photons, photons/px) of windows of counts
    and readout terms [L, w, w] (window origins top, left [L]), by at most `iterations` Fisher
    scoring steps from `theta`, positions kept within the frame of `shape` (LR px) when given.
    Localisations leave the iteration once a step moves them by less than CONVERGED."""
    mask = inside.astype(np.float64)
    theta = theta.astype(np.float64).copy()
    origin = np.stack([top, left], axis=1).astype(np.float64)
    low = np.maximum(theta[:, :2] - MAX_SHIFT, origin + 0.5)
    high = np.minimum(theta[:, :2] + MAX_SHIFT, origin + 2 * r + 0.5)
    if shape is not None:
        low = np.maximum(low, 0.0)
        high = np.minimum(high, np.asarray(shape, np.float64) - 1e-6)

    def evaluate(t: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, ...]:
        rate, grads = _rate_and_gradients(
            t, readout[rows], mask[rows], top[rows], left[rows], r, sigma
        )
        return rate, grads, _log_likelihood(counts[rows], rate, mask[rows])

    active = np.arange(len(theta))
    rate, grads, ll = evaluate(theta, active)
    for _ in range(iterations):
        m, n = mask[active], counts[active]
        weight = m / np.maximum(rate, MIN_RATE)
        flat, flat_weight = grads.reshape(len(grads), 4, -1), weight.reshape(len(grads), -1)
        score = np.matmul(flat, ((n - rate) * weight).reshape(len(flat), -1, 1))[:, :, 0]
        info = information_matrix(flat, flat_weight)
        info += np.eye(4) * 1e-9 * np.maximum(np.diagonal(info, axis1=1, axis2=2), 1e-12)[:, None]
        step = np.linalg.solve(info, score[:, :, None])[:, :, 0]
        step[:, :2] = np.clip(step[:, :2], -MAX_STEP, MAX_STEP)
        step = np.where(np.isfinite(step), step, 0.0)
        new = theta[active].copy()
        new_rate, new_grads, new_ll = rate.copy(), grads.copy(), ll.copy()
        pending = np.arange(len(active))  # positions within `active` still looking for a step
        for _ in range(BACKTRACKS + 1):
            rows = active[pending]
            trial = theta[rows] + step[pending]
            trial[:, :2] = np.clip(trial[:, :2], low[rows], high[rows])
            trial[:, 2:] = np.maximum(trial[:, 2:], [1.0, 0.0])
            t_rate, t_grads, t_ll = evaluate(trial, rows)
            ok = t_ll >= ll[pending] - 1e-9 * np.abs(ll[pending])
            hit = pending[ok]
            new[hit], new_rate[hit], new_grads[hit], new_ll[hit] = (
                trial[ok],
                t_rate[ok],
                t_grads[ok],
                t_ll[ok],
            )
            pending = pending[~ok]
            if len(pending) == 0:
                break
            step[pending] *= 0.5
        moved = np.abs(new[:, :2] - theta[active, :2]).max(axis=1)
        theta[active] = new
        going = moved >= CONVERGED
        going[pending] = False  # no step raises the likelihood: at its maximum
        active = active[going]
        if len(active) == 0:
            break
        rate, grads, ll = new_rate[going], new_grads[going], new_ll[going]
    return theta


def bounds(
    theta: np.ndarray,
    readout: np.ndarray,
    inside: np.ndarray,
    top: np.ndarray,
    left: np.ndarray,
    r: int,
    sigma: float,
) -> np.ndarray:
    """sqrt(CRLB) of (u, v, i0) [L, 3] (LR px, photons) at theta = (u, v, i0, b) [L, 4] (see crlb_windows)."""
    eu, ev, gu, gv = psf_windows(theta[:, 0], theta[:, 1], top, left, r, sigma)
    return crlb_windows(theta[:, 2], theta[:, 3], readout, inside, eu, ev, gu, gv)
