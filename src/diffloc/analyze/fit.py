"""Position, photons and background of each localisation, and its Cramer-Rao bound, on camera
windows around phi's detections (`photometry`).

For a localisation at LR position (u, v) (pixel i covers [i, i + 1); u rows, v columns) the
(2 r + 1)^2 camera pixels around the pixel that holds it are converted to Poisson-approximation
counts n_k = (x_k - o_k)/g_k + w_k^2/g_k^2 (Huang et al. 2013; physics.camera). With the
position fixed at the localisation, the expected counts are linear in the photons i0 and the
background b (photons per pixel): omega'_k = i0 P_k + b + w_k^2/g_k^2, P_k the pixel integral of
the PSF (physics.psf). (i0, b) is their Poisson maximum-likelihood estimate, by iteratively
reweighted least squares (weights 1/omega'_k), vectorised over localisations. Pixels beyond the
frame are left out. Light of a neighbour inside the window raises both estimates.

With `position="mle"` the position is fitted too: theta = (u, v, i0, b) maximises the same
Poisson likelihood by Fisher scoring (theta += I^-1 grad log L, grad_j = sum_k (n_k/omega'_k - 1)
d omega'_k/d theta_j), started at the detection and the (i0, b) fit there, vectorised over
localisations; a step that lowers the likelihood is halved until it does not (else the
localisation keeps its estimate), and the position stays within `MAX_SHIFT` LR px of the
detection and inside the window. This is the standard SMLM estimator, unbiased with variance
near the CRLB for an isolated emitter (Smith et al. 2010); phi's detection only starts it.

Overlapping emitters: each fit knows its neighbours' light (block coordinate ascent towards
their joint MLE), one emitter found twice is merged, and emitters phi missed are found in the
fits' residual (see `photometry`).

The bound is the CRLB of (u, v) with i0 a nuisance parameter and b known (the formula of
physics.crlb, I_ij = sum_k (1/omega'_k) d omega'_k/d theta_i d omega'_k/d theta_j) at the
estimated position, i0 and b, on the same window and the window's own camera maps (sCMOS: per
pixel).
"""

from dataclasses import dataclass, fields

import numpy as np
from scipy import ndimage

from diffloc.physics.camera import Camera
from diffloc.physics.psf import pixel_integral_gradients, pixel_integrals

IRLS_ITERATIONS = 12
MIN_RATE = 1e-3  # photons: floor of omega' in the weights (a pixel with no light, no noise)
POSITIONS = ("kde", "mle")  # analyze.position: phi's refined detection | Poisson MLE on the camera
SCORING_ITERATIONS = 12
MAX_STEP = 0.5  # LR px: largest position change of one scoring step
MAX_SHIFT = 1.0  # LR px: largest distance of the fitted position from the detection, per axis
BACKTRACKS = 4  # halvings of a step that lowers the likelihood
CONVERGED = 1e-4  # LR px: a localisation whose step moves it less has converged
PASS_CONVERGED = 1e-3  # LR px: neighbour passes stop when no crowded fit moves more
NEIGHBOUR_PASSES = 20  # refits of localisations with neighbours, with the neighbours' light known
PASS_ITERATIONS = 3  # scoring steps per refit after the first pass (the neighbours move too)


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
        score = np.einsum("lkpq,lpq->lk", grads, (n - rate) * weight)
        info = np.einsum("lipq,ljpq,lpq->lij", grads, grads, weight)
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


def neighbour_pairs(
    index: np.ndarray, u: np.ndarray, v: np.ndarray, reach: float
) -> tuple[np.ndarray, np.ndarray]:
    """Ordered pairs (a, b) of localisations in the same frame within `reach` LR px per axis
    (both orders: b's light falls into a's window)."""
    order = np.lexsort((u, index))
    a, b = [], []
    frame_of, u_sorted = index[order], u[order]
    for shift in range(1, len(order)):
        same = (frame_of[shift:] == frame_of[:-shift]) & (
            u_sorted[shift:] - u_sorted[:-shift] <= reach
        )
        if not same.any():
            break
        i, j = order[:-shift][same], order[shift:][same]
        close = np.abs(v[i] - v[j]) <= reach
        a.append(i[close])
        b.append(j[close])
    if not a:
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    a, b = np.concatenate(a), np.concatenate(b)
    return np.concatenate([a, b]), np.concatenate([b, a])


def neighbour_light(
    a: np.ndarray,
    b: np.ndarray,
    theta: np.ndarray,
    top: np.ndarray,
    left: np.ndarray,
    r: int,
    sigma: float,
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """Expected photons [L, w, w] (or [len(rows), w, w] for the localisations `rows`) that the
    other localisations b (at theta [L, 4]) put into the window of each localisation a."""
    w = 2 * r + 1
    if rows is not None:
        where = np.full(len(theta), -1)
        where[rows] = np.arange(len(rows))
        pick = where[a] >= 0
        a, b, target, size = a[pick], b[pick], where[a[pick]], len(rows)
    else:
        target, size = a, len(theta)
    if len(a) == 0:
        return np.zeros((size, w, w))
    eu = pixel_integrals(theta[b, 0] - top[a], w, sigma)
    ev = pixel_integrals(theta[b, 1] - left[a], w, sigma)
    light = theta[b, 2, None, None] * eu[:, :, None] * ev[:, None, :]
    flat = (target[:, None] * (w * w) + np.arange(w * w)).ravel()
    total = np.bincount(flat, weights=light.ravel(), minlength=size * w * w)
    return total.reshape(size, w, w)


def frame_model(
    image: np.ndarray, theta: np.ndarray, shape: tuple[int, int, int], sigma: float
) -> np.ndarray:
    """Expected photons [N, H, W] of the localisations theta = (u, v, i0, b) [L, 4] in frames
    `image` [L] of a stack of `shape` (their PSFs only, no background)."""
    n, h, w = shape
    counts = np.bincount(image, minlength=n)
    order = np.argsort(image, kind="stable")
    slot = np.empty(len(image), np.intp)
    slot[order] = np.arange(len(image)) - np.repeat(np.cumsum(counts) - counts, counts)
    m = max(1, int(counts.max(initial=0)))
    eu, ev = np.zeros((n, m, h)), np.zeros((n, m, w))
    eu[image, slot] = theta[:, 2, None] * pixel_integrals(theta[:, 0], h, sigma)
    ev[image, slot] = pixel_integrals(theta[:, 1], w, sigma)
    return np.einsum("nmh,nmw->nhw", eu, ev)


def residual_candidates(
    counts: np.ndarray,
    readout: np.ndarray,
    image: np.ndarray,
    theta: np.ndarray,
    r: int,
    sigma: float,
    min_snr: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames, u, v (LR px, pixel centres) of emitters the localisations theta [L, 4] in frames
    `image` miss: local maxima of a PSF-matched filter of the residual counts - readout - fitted
    PSFs - background (each frame's median) whose SNR (the filtered photons over their Poisson
    std) is >= min_snr. counts [N, H, W], readout [H, W] (w^2/g^2)."""
    model = frame_model(image, theta, counts.shape, sigma)
    signal = counts - readout
    background = np.median(signal - model, axis=(1, 2), keepdims=True)
    residual = signal - model - background
    e = pixel_integrals(np.float64(r + 0.5), 2 * r + 1, sigma)  # the PSF is separable
    norm = (e**2).sum() ** 2  # sum of the squared 2-D kernel

    def correlate(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        rows = ndimage.correlate1d(image, kernel, axis=1, mode="constant")
        return ndimage.correlate1d(rows, kernel, axis=2, mode="constant")

    rate = np.maximum(model + background + readout, MIN_RATE)
    photons = correlate(residual, e) / norm
    variance = correlate(rate, e**2) / norm**2
    snr = photons / np.sqrt(variance)
    peak = (snr == ndimage.maximum_filter(snr, size=(1, 3, 3), mode="nearest")) & (snr >= min_snr)
    frame, u, v = np.nonzero(peak)
    return frame, u + 0.5, v + 0.5


@dataclass
class _Fits:
    """Localisations being fitted: frame, detection index (-1: found in the residual), theta =
    (u, v, i0, b) [L, 4], and their windows (see `windows`)."""

    image: np.ndarray
    detection: np.ndarray
    theta: np.ndarray
    counts: np.ndarray
    readout: np.ndarray
    inside: np.ndarray
    top: np.ndarray
    left: np.ndarray

    def subset(self, rows: np.ndarray) -> "_Fits":
        return _Fits(*(getattr(self, f.name)[rows] for f in fields(self)))

    @classmethod
    def cut(
        cls,
        counts: np.ndarray,
        readout_map: np.ndarray,
        image: np.ndarray,
        detection: np.ndarray,
        theta: np.ndarray,
        r: int,
    ) -> "_Fits":
        """The windows of localisations theta [L, 4] in frames `image` of counts [N, H, W]."""
        n, inside, top, left = windows(counts, image, theta[:, 0], theta[:, 1], r)
        readout, _, _, _ = windows(readout_map, None, theta[:, 0], theta[:, 1], r)
        return cls(image, detection, theta, n, readout, inside, top, left)

    def concat(self, other: "_Fits") -> "_Fits":
        return _Fits(
            *(np.concatenate([getattr(self, f.name), getattr(other, f.name)]) for f in fields(self))
        )


def colour_classes(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A colour [n] per node of the graph with edges (a, b) (both orders) such that no edge joins
    two nodes of one colour: round c colours every uncoloured node whose uncoloured neighbours
    all have larger indices (an independent set), until all are coloured."""
    colour = np.full(n, -1)
    c = 0
    while (colour < 0).any():
        open_ = colour < 0
        blocked = np.zeros(n, bool)
        edge = open_[a] & open_[b] & (b < a)
        blocked[a[edge]] = True
        colour[open_ & ~blocked] = c
        c += 1
    return colour


def _joint_passes(
    fits: _Fits, r: int, sigma: float, shape: tuple[int, int], first: np.ndarray | None = None
) -> np.ndarray:
    """Refit the localisations `first` (bool [L]; default all) and their neighbours with the
    neighbours' light known, then again those whose neighbourhood moved by PASS_CONVERGED, up to
    NEIGHBOUR_PASSES times: block coordinate ascent
    towards the joint MLE of overlapping emitters, one colour class (no two neighbours, see
    `colour_classes`) at a time so each refit sees its neighbours' latest fits. fits.theta is
    updated; returns the neighbours' light [L, w, w] at the end."""
    a, b = neighbour_pairs(fits.image, fits.theta[:, 0], fits.theta[:, 1], r + 3 * sigma + 0.5)
    colour = colour_classes(len(fits.theta), a, b)
    active = np.ones(len(fits.theta), bool) if first is None else first.copy()
    active[a[active[b]]] = True
    for rep in range(NEIGHBOUR_PASSES):
        moved = np.zeros(len(fits.theta), bool)
        for c in range(colour.max(initial=-1) + 1):
            rows = np.flatnonzero((colour == c) & active)
            if len(rows) == 0:
                continue
            extra = neighbour_light(a, b, fits.theta, fits.top, fits.left, r, sigma, rows)
            before = fits.theta[rows, :2].copy()
            fits.theta[rows] = fit_position(
                fits.counts[rows], fits.readout[rows] + extra, fits.inside[rows],
                fits.top[rows], fits.left[rows], fits.theta[rows], r, sigma, shape,
                SCORING_ITERATIONS if rep == 0 else PASS_ITERATIONS,
            )  # fmt: skip
            moved[rows] = np.abs(fits.theta[rows, :2] - before).max(axis=1) >= PASS_CONVERGED
        active = np.zeros(len(fits.theta), bool)
        active[a[moved[b]]] = True  # a neighbour moved: refit
        if not active.any():
            break
    return neighbour_light(a, b, fits.theta, fits.top, fits.left, r, sigma)


def photometry(
    counts: np.ndarray,
    camera: Camera,
    index: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    r: int,
    sigma: float,
    position: str = "kde",
    min_snr: float = 0.0,
    merge_px: float = 1.0,
    residual_search: bool = False,
) -> dict[str, np.ndarray]:
    """Localisations from detections at (u, v) (LR px) in frames counts[index] ([N, H, W],
    Poisson-approximation counts of `camera`): `image` (frame within counts), `detection`
    (index into u, v; -1 for an emitter found in the residual), u, v (LR px: the detection for
    position="kde", the Poisson MLE for "mle"), photons, background (photons/px), crlb_u,
    crlb_v (LR px), crlb_photons (photons) [K].

    (i0, b) are fitted at each detection, and detections whose i0 < min_snr sqrt(CRLB of i0)
    dropped. With "mle": of detections in one frame closer than `merge_px` (one emitter found
    twice, a split KDE blob) only the brightest stays; every localisation is refitted (u, v, i0,
    b) with the light of its neighbours (within reach of its window, at their current fits)
    known, the crowded ones again until they settle (block-Jacobi towards the joint MLE of
    overlapping emitters, `_joint_passes`); with `residual_search` the emitters phi missed
    (`residual_candidates`, e.g. the second of a pair merged in phi's KDE) are added, each
    tested for significance with its neighbours' light known, and the passes repeated; fits
    that converged within merge_px of a brighter one are dropped. Bounds include the neighbours'
    light as background, and the significance test is repeated on the final fits.
    """
    if position not in POSITIONS:
        raise ValueError(f"position must be one of {POSITIONS}, got {position!r}")
    g, _, w2 = (m.astype(np.float64) for m in (camera.gain, camera.offset, camera.readout_var))
    readout_map = np.broadcast_to(w2 / g**2, counts.shape[1:])
    shape = counts.shape[1:]
    u, v = np.asarray(u, np.float64), np.asarray(v, np.float64)
    image = np.asarray(index, np.intp)
    theta = np.column_stack([u, v, np.zeros((len(u), 2))])
    fits = _Fits.cut(counts, readout_map, image, np.arange(len(u)), theta, r)
    _fit_intensity(fits, np.zeros_like(fits.readout), r, sigma)
    fits = fits.subset(_significant(fits, np.zeros_like(fits.readout), r, sigma, min_snr))
    extra = np.zeros_like(fits.readout)
    if position == "mle" and len(fits.theta):
        fits = fits.subset(_unique_emitters(fits.image, fits.theta, merge_px))
        extra = _joint_passes(fits, r, sigma, shape)
        if residual_search:
            frame, cu, cv = residual_candidates(
                counts, readout_map, fits.image, fits.theta, r, sigma, max(min_snr, 1.0)
            )
            theta = np.column_stack([cu, cv, np.zeros((len(cu), 2))])
            more = _Fits.cut(counts, readout_map, frame, np.full(len(cu), -1), theta, r)
            everyone = fits.concat(more)
            a, b = neighbour_pairs(
                everyone.image, everyone.theta[:, 0], everyone.theta[:, 1], r + 3 * sigma + 0.5
            )
            light = neighbour_light(a, b, everyone.theta, everyone.top, everyone.left, r, sigma)[
                len(fits.theta) :
            ]
            _fit_intensity(more, light, r, sigma)
            fits = fits.concat(more)
            new = np.arange(len(fits.theta)) >= len(fits.theta) - len(more.theta)
            extra = _joint_passes(fits, r, sigma, shape, new)
        unique = _unique_emitters(fits.image, fits.theta, merge_px)
        fits, extra = fits.subset(unique), extra[unique]
    bound = _bounds(fits.theta, fits.readout + extra, fits.inside, fits.top, fits.left, r, sigma)
    significant = fits.theta[:, 2] >= min_snr * bound[:, 2]
    fits, bound = fits.subset(significant), bound[significant]
    return {
        "image": fits.image,
        "detection": fits.detection,
        **dict(zip(("u", "v", "photons", "background"), fits.theta.T, strict=True)),
        "crlb_u": bound[:, 0],
        "crlb_v": bound[:, 1],
        "crlb_photons": bound[:, 2],
    }


def _fit_intensity(fits: _Fits, extra: np.ndarray, r: int, sigma: float) -> None:
    """Set fits.theta's (i0, b) to their Poisson MLE at the current positions, with the known
    light `extra` [L, w, w] (neighbours) added to the model."""
    t = fits.theta
    eu, ev, _, _ = psf_windows(t[:, 0], t[:, 1], fits.top, fits.left, r, sigma)
    psf = eu[:, :, None] * ev[:, None, :]
    t[:, 2], t[:, 3] = fit_photons_background(fits.counts, fits.readout + extra, psf, fits.inside)


def _significant(
    fits: _Fits, extra: np.ndarray, r: int, sigma: float, min_snr: float
) -> np.ndarray:
    """Whether each fit's i0 >= min_snr sqrt(CRLB of i0), neighbours' light `extra` known."""
    t = fits.theta
    bound = _bounds(t, fits.readout + extra, fits.inside, fits.top, fits.left, r, sigma)
    return t[:, 2] >= min_snr * bound[:, 2]


def _bounds(
    theta: np.ndarray,
    readout: np.ndarray,
    inside: np.ndarray,
    top: np.ndarray,
    left: np.ndarray,
    r: int,
    sigma: float,
) -> np.ndarray:
    """sqrt(CRLB) of (u, v, i0) [L, 3] at theta = (u, v, i0, b) [L, 4] (see crlb_windows)."""
    eu, ev, gu, gv = psf_windows(theta[:, 0], theta[:, 1], top, left, r, sigma)
    return crlb_windows(theta[:, 2], theta[:, 3], readout, inside, eu, ev, gu, gv)


def _unique_emitters(index: np.ndarray, theta: np.ndarray, merge_px: float) -> np.ndarray:
    """Indices into theta [L, 4] of the localisations kept when, of those in one frame closer
    than merge_px (LR px), only the brightest (largest i0) stays."""
    order = np.argsort(-theta[:, 2], kind="stable")
    a, b = neighbour_pairs(index, theta[:, 0], theta[:, 1], merge_px)
    close = np.hypot(theta[a, 0] - theta[b, 0], theta[a, 1] - theta[b, 1]) < merge_px
    rank = np.empty(len(theta), np.intp)
    rank[order] = np.arange(len(theta))
    dropped = np.zeros(len(theta), bool)
    a, b = a[close], b[close]
    pairs = np.argsort(rank[a], kind="stable")  # brighter first: a bright one suppresses b
    for i, j in zip(a[pairs], b[pairs], strict=True):
        if not dropped[i] and rank[i] < rank[j]:
            dropped[j] = True
    return np.flatnonzero(~dropped)
