"""Crowded frames: which localisations are neighbours, an order to refit them in, duplicates,
and the emitters phi missed (found in the fits' residual). Positions in LR px.
"""

import numpy as np
from scipy import ndimage

from diffloc.analyze.fit import MIN_RATE
from diffloc.physics.psf import pixel_integrals


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
    return np.matmul(eu.transpose(0, 2, 1), ev)


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


def colour_classes(n: int, a: np.ndarray, b: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """A colour [n] per node of the graph with edges (a, b) (both orders) such that no edge joins
    two nodes of one colour, with few colours: the greedy colouring (each node takes the
    smallest colour none of its neighbours has) in the order of a scrambled priority, built in
    rounds (Jones and Plassmann 1993): a round colours every uncoloured node whose uncoloured
    neighbours all have lower priority. At most (largest degree + 1) colours. The priority is a
    hash of a node's rank among the nodes of its `frame` [n] (edges join nodes of one frame), so
    a frame's colours do not depend on the other frames; unscrambled, a chain of neighbours
    ordered by index (detections sorted along a frame's rows) took one round and one colour per
    node."""
    order = np.argsort(frame, kind="stable")
    first = np.searchsorted(frame[order], frame[order], side="left")
    rank = np.empty(n, np.uint64)
    rank[order] = (np.arange(n) - first).astype(np.uint64)
    priority = rank * np.uint64(0x9E3779B97F4A7C15)  # odd factor: a bijection mod 2^64
    higher = priority[b] > priority[a]  # no ties: ranks within a frame are distinct
    colour = np.full(n, -1)
    while (colour < 0).any():
        open_ = colour < 0
        blocked = np.zeros(n, bool)
        blocked[a[open_[a] & open_[b] & higher]] = True
        now = np.flatnonzero(open_ & ~blocked)
        where = np.full(n, -1)
        where[now] = np.arange(len(now))
        edge = (where[a] >= 0) & ~open_[b]  # a coloured now, b coloured before
        used = np.zeros((len(now), colour.max(initial=-1) + 2), bool)
        used[where[a[edge]], colour[b[edge]]] = True
        colour[now] = np.argmin(used, axis=1)  # the first colour no neighbour has
    return colour


def unique_emitters(index: np.ndarray, theta: np.ndarray, merge_px: float) -> np.ndarray:
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
