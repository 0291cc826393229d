"""Kernel density estimate y on the super-resolved grid (paper eq. 3).

Emitter positions come in LR pixels; an emitter at LR position theta sits at HR position
upsample * theta (no half-pixel shift). Kernel widths are in HR pixels.
"""

import math
from typing import Literal

import numpy as np

from diffloc.physics.psf import gaussian_image

Normalize = Literal["max", "peak"]


def isolated_peak(sigma_y: float) -> float:
    """Peak value of one emitter's kernel when it sits on an HR pixel centre (the `peak` scale)."""
    return math.erf(0.5 / (math.sqrt(2.0) * sigma_y)) ** 2


def kde_scale(y: np.ndarray, mode: Normalize, sigma_y: float) -> np.ndarray:
    """Divisor that normalises KDEs [..., H, W] (broadcastable): `max` -> each image's maximum
    (1 for an empty image, which stays 0); `peak` -> `isolated_peak(sigma_y)`, so values count
    molecules."""
    if mode == "max":
        peak = y.max(axis=(-2, -1), keepdims=True)
        return np.where(peak > 0, peak, 1).astype(y.dtype)
    if mode == "peak":
        return np.asarray(isolated_peak(sigma_y), dtype=y.dtype)
    raise ValueError(f"kde normalisation must be 'max' or 'peak', got {mode!r}")


def normalize_kde(y: np.ndarray, mode: Normalize, sigma_y: float) -> np.ndarray:
    """Normalised copy of raw KDEs [..., H, W] (see `kde_scale`)."""
    return y / kde_scale(y, mode, sigma_y)


def kde_images(
    u: np.ndarray,
    v: np.ndarray,
    weights: np.ndarray,
    lr_size: int,
    upsample: int,
    sigma_y: float,
    normalize: Normalize,
    dtype: type = np.float32,
) -> np.ndarray:
    """Normalised KDEs [..., s*H, s*W] for emitters at LR positions (u, v) [..., M].

    `weights` is 1 for a real emitter and 0 for padding (molecule count, not brightness).
    """
    s = upsample
    y = gaussian_image(s * np.asarray(u), s * np.asarray(v), weights, s * lr_size, sigma_y, dtype)
    y /= kde_scale(y, normalize, sigma_y)
    return y


def kde_from_emitters(
    image: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    n_images: int,
    lr_size: int,
    upsample: int,
    sigma_y: float,
    normalize: Normalize,
) -> np.ndarray:
    """KDEs [n_images, s*H, s*W] (float32) of emitters listed one per row: image index and LR
    position (u, v); images without emitters stay 0. Same values as the simulation's KDEs."""
    image = np.asarray(image, dtype=np.int64)
    counts = np.bincount(image, minlength=n_images)
    if len(counts) > n_images:
        raise ValueError(f"emitter image indices reach {image.max()}, only {n_images} images")
    order = np.argsort(image, kind="stable")
    rows = image[order]
    slot = np.arange(len(rows)) - (np.cumsum(counts) - counts)[rows]
    shape = (n_images, max(int(counts.max(initial=0)), 1))
    pu, pv, weights = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    pu[rows, slot] = np.asarray(u, dtype=np.float64)[order]
    pv[rows, slot] = np.asarray(v, dtype=np.float64)[order]
    weights[rows, slot] = 1.0
    return kde_images(pu, pv, weights, lr_size, upsample, sigma_y, normalize)
